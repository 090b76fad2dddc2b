"""SpatialData in and out: cells from a table (+ coordinates), tubules back as a shapes element."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from anndata import AnnData

__all__ = ["from_spatialdata", "tubules_to_spatialdata"]


def _require_spatialdata():
    try:
        import spatialdata
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "SpatialData support needs the `spatialdata` package: pip install 'noa-omics[spatial]'."
        ) from err
    return spatialdata


def from_spatialdata(
    sdata,
    *,
    table_key: str = "table",
    coordinate_system: str = "global",
    spatial_key: str = "spatial",
) -> AnnData:
    """Cells of a SpatialData object as an AnnData with coordinates in ``obsm[spatial_key]``.

    The cell table ``sdata.tables[table_key]`` is copied. Coordinates come from the shapes or
    points element the table annotates (``spatialdata_attrs`` ``region`` / ``instance_key``:
    the cell circles or boundaries of spatialdata-io's Xenium, MERSCOPE, CosMx and Visium HD
    readers), mapped to ``coordinate_system``, the centroid of each cell's geometry; when the
    table annotates no such element, ``table.obsm["spatial"]`` is used as is.

    Parameters
    ----------
    sdata
        A :class:`spatialdata.SpatialData`.
    table_key
        Name of the cell table.
    coordinate_system
        Target coordinate system of the coordinates (and of the tubule shapes written back).
    spatial_key
        ``obsm`` key written.

    Returns
    -------
    AnnData
        A copy of the table with ``obsm[spatial_key]`` and ``uns["noa_spatialdata"]`` (table,
        region, coordinate system).
    """
    sd = _require_spatialdata()
    if table_key not in sdata.tables:
        raise KeyError(f"table {table_key!r} not found in the SpatialData object; tables: {list(sdata.tables)}.")
    table = sdata.tables[table_key]
    attrs = table.uns.get("spatialdata_attrs", {})
    region = attrs.get("region")
    regions = [region] if isinstance(region, str) else list(region or [])
    regions = [r for r in regions if r in sdata.shapes or r in sdata.points]
    adata = table.copy()
    if regions:
        region_key, instance_key = attrs.get("region_key"), attrs.get("instance_key")
        xy = np.full((adata.n_obs, 2), np.nan)
        for name in regions:
            element = sdata.shapes[name] if name in sdata.shapes else sdata.points[name]
            if coordinate_system not in sd.transformations.get_transformation(element, get_all=True):
                raise ValueError(f"element {name!r} has no transformation to coordinate system {coordinate_system!r}.")
            moved = sd.transform(element, to_coordinate_system=coordinate_system)
            if name in sdata.shapes:
                centres = shapely.centroid(moved.geometry.to_numpy())
                pts = pd.DataFrame({"x": shapely.get_x(centres), "y": shapely.get_y(centres)}, index=moved.index)
            else:
                moved = moved.compute()
                pts = pd.DataFrame({"x": moved["x"].to_numpy(), "y": moved["y"].to_numpy()}, index=moved.index)
            rows = np.ones(adata.n_obs, dtype=bool) if region_key is None else (
                adata.obs[region_key].astype(str).to_numpy() == name)
            keys = adata.obs[instance_key].to_numpy()[rows] if instance_key else adata.obs_names[rows]
            found = pts.reindex(keys)
            if found.isna().any().any():
                raise ValueError(
                    f"{int(found.isna().any(axis=1).sum())} cell(s) of table {table_key!r} have no geometry "
                    f"in element {name!r} (instance key {instance_key!r}); check the table annotation."
                )
            xy[rows] = found.to_numpy()
        if np.isnan(xy).any():
            raise ValueError(f"some cells of table {table_key!r} belong to no region in {regions}; check `region_key`.")
    elif "spatial" in adata.obsm:
        xy = np.asarray(adata.obsm["spatial"], dtype=float)[:, :2]
    else:
        raise ValueError(
            f"table {table_key!r} annotates no shapes/points element and has no obsm['spatial']; "
            "give the cell coordinates."
        )
    adata.obsm[spatial_key] = xy
    adata.uns["noa_spatialdata"] = {"table": table_key, "regions": regions, "coordinate_system": coordinate_system}
    return adata


def tubules_to_spatialdata(
    sdata,
    shapes,
    *,
    key: str = "tubules",
    coordinate_system: str = "global",
    overwrite: bool = False,
):
    """Add tubule outlines (:func:`~noa_omics.spatial.tubule_shapes`) as a SpatialData shapes element.

    Parameters
    ----------
    sdata
        The :class:`spatialdata.SpatialData` the cells came from (changed in place and returned).
    shapes
        GeoDataFrame of polygons in the coordinates of ``coordinate_system`` (the
        coordinates :func:`from_spatialdata` returned); the tubule ids become the index.
    key
        Name of the shapes element.
    coordinate_system
        Coordinate system of the outlines (identity transformation).
    overwrite
        Replace an existing element of that name.

    Returns
    -------
    spatialdata.SpatialData
        ``sdata`` with ``sdata.shapes[key]``.
    """
    _require_spatialdata()
    from spatialdata.models import ShapesModel
    from spatialdata.transformations import Identity

    if key in sdata.shapes and not overwrite:
        raise ValueError(f"shapes element {key!r} exists; pass overwrite=True or another `key`.")
    gdf = shapes.copy()
    if "tubule" in gdf.columns:
        gdf = gdf.set_index("tubule", drop=False)
        gdf.index = gdf.index.astype(str)
        gdf.index.name = None
    element = ShapesModel.parse(gdf, transformations={coordinate_system: Identity()})
    sdata.shapes[key] = element
    return sdata
