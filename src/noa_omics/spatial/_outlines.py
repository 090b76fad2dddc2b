"""Tubule outlines in and out: QuPath / GeoJSON ``read_outlines``, ``write_outlines`` and
``assign_tubules_from_outlines`` (cells -> the outline that contains them)."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from anndata import AnnData

from .._io import write_text
from .._validation import check_adata, check_spatial

__all__ = ["read_outlines", "write_outlines", "assign_tubules_from_outlines"]

#: Colour QuPath shows for the written tubules (packed RGB as QuPath stores it: 0xRRGGBB).
_TUBULE_RGB = (62, 140, 200)


def _classification(properties: dict[str, Any]) -> str | None:
    value = properties.get("classification")
    if isinstance(value, dict):  # QuPath >= 0.3: {"name": "Tubule", "color": [r, g, b]}
        value = value.get("name", value.get("names"))
        if isinstance(value, list):
            value = ": ".join(map(str, value))
    if value is None:  # QuPath 0.2 and some exporters
        value = properties.get("classification_name", properties.get("class"))
    return None if value is None else str(value)


def _features(data: Any, path: str) -> list[dict[str, Any]]:
    if isinstance(data, list):  # QuPath "export as array"
        return data
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        return list(data.get("features", []))
    if isinstance(data, dict) and data.get("type") == "Feature":
        return [data]
    raise ValueError(
        f"{path!r} is not a GeoJSON FeatureCollection, Feature or array of Features; export the "
        "annotations from QuPath with File > Export objects as GeoJSON."
    )


def _affine(pixel_size: float | None, transform: Any) -> list[float] | None:
    """Shapely affine parameters ``[a, b, d, e, xoff, yoff]`` of ``transform`` after ``pixel_size``."""
    scale = 1.0
    if pixel_size is not None:
        scale = float(pixel_size)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"`pixel_size` must be a positive number, got {pixel_size}.")
    matrix = np.eye(3)
    if transform is not None:
        m = np.asarray(transform, dtype=float)
        if m.shape not in ((2, 3), (3, 3)) or not np.isfinite(m).all():
            raise ValueError(
                "`transform` must be a finite 2x3 or 3x3 affine matrix [[a, b, xoff], [d, e, yoff]] "
                f"mapping outline to cell coordinates, got shape {m.shape}."
            )
        matrix[:2] = m[:2]
    matrix = matrix @ np.diag([scale, scale, 1.0])
    if np.allclose(matrix, np.eye(3)):
        return None
    return [matrix[0, 0], matrix[0, 1], matrix[1, 0], matrix[1, 1], matrix[0, 2], matrix[1, 2]]


def read_outlines(
    path: str | os.PathLike[str],
    *,
    classes: str | Sequence[str] | None = None,
    pixel_size: float | None = None,
    transform: Any = None,
):
    """Read tubule outlines from a QuPath / GeoJSON FeatureCollection.

    Parameters
    ----------
    path
        GeoJSON file: a FeatureCollection, a single Feature or an array of Features (QuPath's
        *Export objects as GeoJSON*). Polygons and MultiPolygons (holes kept) are read; other
        geometries (points, lines) are skipped with a warning.
    classes
        Keep only features with these classification names (QuPath writes
        ``properties.classification`` as ``{"name": ...}``, older files as a string).
    pixel_size
        Size of one outline unit (e.g. an image pixel) in the unit of the cell coordinates;
        coordinates are multiplied by it.
    transform
        Affine matrix ``[[a, b, xoff], [d, e, yoff]]`` (2x3 or 3x3) applied after ``pixel_size``,
        mapping outline coordinates to cell coordinates (e.g. image to Xenium micrometres).

    Returns
    -------
    geopandas.GeoDataFrame
        ``tubule`` (``properties.name``, else the feature ``id``, else ``T0001``...),
        ``classification`` and ``geometry``, one row per kept feature.
    """
    import geopandas as gpd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"outline file {str(path)!r} not found.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(path)!r} is not valid JSON ({err}); give a GeoJSON file.") from None
    features = _features(data, str(path))
    affine = _affine(pixel_size, transform)
    wanted = None if classes is None else ({classes} if isinstance(classes, str) else set(classes))
    rows, skipped, seen_classes = [], {}, set()
    for k, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("geometry") is None:
            skipped["no geometry"] = skipped.get("no geometry", 0) + 1
            continue
        props = feature.get("properties") or {}
        cls = _classification(props)
        seen_classes.add(cls)
        if wanted is not None and cls not in wanted:
            continue
        geom = shapely.geometry.shape(feature["geometry"])
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            skipped[geom.geom_type] = skipped.get(geom.geom_type, 0) + 1
            continue
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
            polys = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type in ("Polygon", "MultiPolygon")]
            geom = shapely.union_all(polys) if polys else shapely.Polygon()
        if affine is not None:
            geom = shapely.affinity.affine_transform(geom, affine)
        name = props.get("name", feature.get("id"))
        rows.append({"tubule": None if name is None else str(name), "classification": cls, "geometry": geom})
    if skipped:
        warnings.warn(
            f"read_outlines skipped {sum(skipped.values())} feature(s) of {str(path)!r} that are not "
            f"polygons ({dict(sorted(skipped.items()))}).",
            UserWarning,
            stacklevel=2,
        )
    if not rows:
        hint = f" (classes in the file: {sorted(map(str, seen_classes))})" if wanted is not None else ""
        raise ValueError(f"no polygon outline read from {str(path)!r}{hint}; check `classes` and the file.")
    table = pd.DataFrame(rows)
    missing = table["tubule"].isna()
    table.loc[missing, "tubule"] = [f"T{k + 1:04d}" for k in np.flatnonzero(missing)]
    if table["tubule"].duplicated().any():  # names need not be unique in QuPath
        dup = table["tubule"].duplicated(keep=False)
        table.loc[dup, "tubule"] = [f"{n}_{k + 1}" for n, k in zip(table.loc[dup, "tubule"], np.flatnonzero(dup))]
    return gpd.GeoDataFrame(table, geometry="geometry")


def write_outlines(
    shapes,
    path: str | os.PathLike[str],
    *,
    id_key: str = "tubule",
    classification: str = "Tubule",
    measurements: Iterable[str] | None = None,
) -> Path:
    """Write outlines as a GeoJSON FeatureCollection that QuPath opens (File > Import objects).

    Parameters
    ----------
    shapes
        GeoDataFrame with polygon geometries, e.g. :func:`~noa_omics.spatial.tubule_shapes`.
    path
        Output ``.geojson`` file, written atomically.
    id_key
        Column written as each annotation's ``name``.
    classification
        QuPath class name of every annotation.
    measurements
        Numeric columns written as QuPath measurements; default every numeric column.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import geopandas as gpd

    if not isinstance(shapes, gpd.GeoDataFrame):
        raise TypeError(
            f"`shapes` must be a geopandas.GeoDataFrame (e.g. from tubule_shapes), got {type(shapes).__name__}."
        )
    if id_key not in shapes.columns:
        raise KeyError(f"column {id_key!r} not found in `shapes`; give `id_key`, the tubule id column.")
    kinds = set(shapes.geometry.geom_type.dropna())
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise ValueError(f"write_outlines writes polygons; `shapes` holds {sorted(kinds)}.")
    if measurements is None:
        measurements = [c for c in shapes.columns
                        if c not in (id_key, shapes.geometry.name) and pd.api.types.is_numeric_dtype(shapes[c])]
    measurements = list(measurements)
    features = []
    for _, row in shapes.iterrows():
        geom = row[shapes.geometry.name]
        if geom is None or geom.is_empty:
            continue
        props: dict[str, Any] = {
            "objectType": "annotation",
            "name": str(row[id_key]),
            "classification": {"name": classification, "color": list(_TUBULE_RGB)},
            "isLocked": False,
        }
        values = {m: float(row[m]) for m in measurements if pd.notna(row[m])}
        if values:
            props["measurements"] = values
        features.append({"type": "Feature", "id": str(row[id_key]),
                         "geometry": json.loads(shapely.to_geojson(geom)), "properties": props})
    if not features:
        raise ValueError("`shapes` has no non-empty outline to write.")
    return write_text(path, json.dumps({"type": "FeatureCollection", "features": features}))


def assign_tubules_from_outlines(
    adata: AnnData,
    outlines,
    *,
    spatial_key: str = "spatial",
    key_added: str = "noa_tubule",
    id_key: str = "tubule",
    inplace: bool = True,
) -> pd.Series:
    """Assign each cell to the outline that contains it (NA outside every outline).

    Parameters
    ----------
    adata
        Cells with coordinates in ``obsm[spatial_key]`` in the unit of the outlines (see
        ``pixel_size`` / ``transform`` of :func:`read_outlines`).
    outlines
        GeoDataFrame of polygons (:func:`read_outlines`, :func:`tubule_shapes`) or a GeoJSON path.
    spatial_key
        ``obsm`` key of the coordinates.
    key_added
        ``obs`` column of the tubule ids, the same column :func:`assign_tubules` writes, so every
        downstream step runs on it.
    id_key
        Column of ``outlines`` with the tubule ids.
    inplace
        Write ``obs[key_added]`` and ``uns[key_added]``.

    Returns
    -------
    pandas.Series
        Categorical tubule id per cell. A cell inside overlapping outlines takes the smallest.
        Outlines without any cell are reported in one warning.
    """
    import geopandas as gpd

    check_adata(adata, min_vars=0)
    coords = check_spatial(adata, spatial_key)
    if isinstance(outlines, (str, os.PathLike)):
        outlines = read_outlines(outlines)
    if not isinstance(outlines, gpd.GeoDataFrame):
        raise TypeError(f"`outlines` must be a GeoDataFrame or a GeoJSON path, got {type(outlines).__name__}.")
    if id_key not in outlines.columns:
        raise KeyError(f"column {id_key!r} not found in `outlines`; give `id_key`, the tubule id column.")
    if len(outlines) == 0:
        raise ValueError("`outlines` is empty; nothing to assign cells to.")
    if outlines[id_key].duplicated().any():
        raise ValueError(f"`outlines[{id_key!r}]` has duplicated ids; make them unique first.")
    geoms = outlines.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    cell_idx, poly_idx = tree.query(shapely.points(coords), predicate="within")
    labels = np.full(adata.n_obs, None, dtype=object)
    if cell_idx.size:
        order = np.lexsort((shapely.area(geoms[poly_idx]), cell_idx))  # smallest outline first
        cell_idx, poly_idx = cell_idx[order], poly_idx[order]
        first = np.r_[True, cell_idx[1:] != cell_idx[:-1]]
        ids = outlines[id_key].astype(str).to_numpy()
        labels[cell_idx[first]] = ids[poly_idx[first]]
    else:
        lo, hi = coords.min(axis=0), coords.max(axis=0)
        b = outlines.total_bounds
        raise ValueError(
            f"no cell lies inside any outline (cells span x {lo[0]:.4g}..{hi[0]:.4g}, y {lo[1]:.4g}.."
            f"{hi[1]:.4g}; outlines x {b[0]:.4g}..{b[2]:.4g}, y {b[1]:.4g}..{b[3]:.4g}); map the "
            "outlines to the cell coordinates with `read_outlines(..., pixel_size=..., transform=...)`."
        )
    used = set(labels[labels != None])  # noqa: E711
    empty = [str(t) for t in outlines[id_key].astype(str) if t not in used]
    if empty:
        warnings.warn(
            f"{len(empty)} outline(s) contain no cell and get no tubule id (e.g. {empty[:5]}).",
            UserWarning,
            stacklevel=2,
        )
    categories = [str(t) for t in outlines[id_key].astype(str) if t in used]
    result = pd.Series(pd.Categorical(labels, categories=categories), index=adata.obs_names, name=key_added)
    if inplace:
        adata.obs[key_added] = result
        adata.uns[key_added] = {"params": {"method": "outlines", "spatial_key": spatial_key,
                                           "n_outlines": int(len(outlines)), "n_empty": len(empty)}}
    return result
