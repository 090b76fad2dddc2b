"""Tubule outlines and sizes from segmented cells: ``tubule_shapes``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import shapely
from anndata import AnnData
from scipy.spatial import Delaunay, QhullError, cKDTree

from .._validation import check_adata, check_obs_key, check_spatial
from ._utils import EPITHELIAL_TYPES, WALL_TYPES, cell_types, check_tubule_key, nn_spacing

__all__ = ["tubule_shapes", "tubule_sizes", "outline_cells"]


def outline_cells(points: np.ndarray, spacing: float, max_edge: float = 3.0, grow: float = 0.5) -> shapely.Geometry:
    r"""Outline of a group of cells: a hole-free alpha shape of their centres, half a cell wider.

    The Delaunay triangles of the cell centres whose longest edge is at most ``max_edge``
    :math:`\cdot s` (:math:`s` the cell spacing) are joined (an alpha shape; Edelsbrunner et al.
    1983), interior holes are dropped (the lumen belongs to the tubule) and the outline is grown
    by ``grow`` :math:`\cdot s` (default :math:`s/2`, from the outermost nuclei to about the
    basement membrane; negative shrinks). ``max_edge`` bridges
    the gaps of a sparse (hypospermatogenic) epithelium; several pieces give a MultiPolygon.

    References
    ----------
    Edelsbrunner H, Kirkpatrick D, Seidel R (1983) On the shape of a set of points in the plane.
    IEEE Trans Inf Theory 29:551-559.
    """
    pts = np.unique(np.asarray(points, dtype=float), axis=0)
    pieces = []
    if len(pts) >= 3:
        try:
            tri = Delaunay(pts)
        except QhullError:  # collinear cells
            tri = None
        if tri is not None:
            corners = pts[tri.simplices]  # (n, 3, 2)
            edges = np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2).max(axis=1)
            keep = corners[edges <= max_edge * spacing]
            if len(keep):
                triangles = shapely.polygons(np.concatenate([keep, keep[:, :1]], axis=1))
                pieces = [shapely.coverage_union_all(triangles)]
    if not pieces:
        pieces = [shapely.multipoints(pts).convex_hull] if len(pts) else []
    if not pieces:
        return shapely.Polygon()
    merged = pieces[0]
    parts = [shapely.Polygon(p.exterior) for p in getattr(merged, "geoms", [merged]) if not p.is_empty]
    return _polygonal(shapely.union_all([shapely.buffer(p, grow * spacing, quad_segs=3) for p in parts]))


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Hole-free Polygon or MultiPolygon of the polygonal parts of ``geom`` (empty Polygon if none)."""
    parts = [shapely.Polygon(p.exterior) for p in getattr(geom, "geoms", [geom])
             if isinstance(p, shapely.Polygon) and not p.is_empty]
    if not parts:
        return shapely.Polygon()
    if len(parts) > 1:
        merged = shapely.union_all(parts)
        parts = [shapely.Polygon(p.exterior) for p in getattr(merged, "geoms", [merged])]
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def tubule_shapes(
    adata: AnnData,
    *,
    tubule_key: str = "noa_tubule",
    spatial_key: str = "spatial",
    cell_type_key: str | None = "noa_cell_type",
    sample_key: str | None = None,
    max_edge: float = 3.0,
    epithelial_types: Sequence[str] = EPITHELIAL_TYPES,
    wall_types: Sequence[str] = WALL_TYPES,
):
    r"""One shapely outline per tubule with its area, diameter, elongation and wall thickness.

    Parameters
    ----------
    adata
        Cells with tubule ids (``obs[tubule_key]``, e.g. from
        :func:`~noa_omics.spatial.assign_tubules` or
        :func:`~noa_omics.spatial.assign_tubules_from_outlines`) and coordinates.
    tubule_key
        ``obs`` column of tubule ids (NA outside tubules).
    spatial_key
        ``obsm`` key of the coordinates; outlines and sizes are in the same unit.
    cell_type_key
        ``obs`` column of cell types: the outline is drawn around the epithelial cells
        (``epithelial_types``) and wall cells (``wall_types``) give the wall thickness. With None
        every cell of the tubule is outlined and ``wall_thickness`` is NaN.
    sample_key
        ``obs`` column of the section; the cell spacing is estimated per section and the column
        is added to the result.
    max_edge
        Longest Delaunay edge inside an outline (see :func:`outline_cells`), in cell spacings:
        the larger of the section's spacing and that of the tubule's own epithelial cells.
    epithelial_types, wall_types
        Cell types of the epithelium and of the wall.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per tubule: ``tubule``, ``geometry`` (Polygon, or MultiPolygon when the
        epithelium is in pieces), ``n_cells`` (cells outlined), ``area``,
        ``equivalent_diameter`` :math:`2\sqrt{A/\pi}`, ``elongation`` (long / short side of the
        minimum rotated rectangle, 1 for a disc), ``wall_thickness`` (median distance of the
        tubule's wall cells outside the outline to it, plus half a cell spacing; NaN without
        wall cells) and ``sample`` with ``sample_key``.

    Examples
    --------
    >>> import noa_omics as noa
    >>> adata = noa.datasets.demo_spatial(seed=0, n_tubules=10, expression=False)
    >>> _ = noa.spatial.assign_tubules(adata)
    >>> shapes = noa.spatial.tubule_shapes(adata)
    >>> bool((shapes["equivalent_diameter"] > 0).all())
    True
    """
    import geopandas as gpd

    check_adata(adata, min_vars=0)
    check_tubule_key(adata, tubule_key)
    coords = check_spatial(adata, spatial_key)
    if not np.isfinite(max_edge) or max_edge <= 0:
        raise ValueError(f"`max_edge` must be a positive number, got {max_edge}.")
    if cell_type_key is None:
        types = None
    else:
        types = cell_types(adata, cell_type_key)
    if sample_key is not None:
        check_obs_key(adata, sample_key, what="sample column")
        samples = adata.obs[sample_key].astype(str).to_numpy()
    else:
        samples = np.full(adata.n_obs, "all", dtype=object)
    tubule = adata.obs[tubule_key]
    assigned = tubule.notna().to_numpy()
    if not assigned.any():
        raise ValueError(
            f"no cell has a tubule in `adata.obs[{tubule_key!r}]`; run "
            "`noa.spatial.assign_tubules` (or `assign_tubules_from_outlines`) first."
        )
    ids = tubule.astype(object).where(tubule.notna(), None).to_numpy()
    if types is None:
        is_epi = np.ones(adata.n_obs, dtype=bool)
        is_wall = np.zeros(adata.n_obs, dtype=bool)
    else:
        is_epi = np.isin(types, list(epithelial_types))
        is_wall = np.isin(types, list(wall_types))
    rows = []
    for sample in pd.unique(samples):
        in_sample = samples == sample
        spacing = nn_spacing(coords[in_sample])
        sel = in_sample & assigned
        codes, names = pd.factorize(pd.Series(ids[sel]).astype(str))
        pos = np.flatnonzero(sel)
        epi = is_epi[pos]
        # tubules without epithelial cells are outlined on all their cells
        has_epi = np.bincount(codes[epi], minlength=len(names)) > 0
        epi = epi | ~has_epi[codes]
        # a sparse epithelium (hypospermatogenesis) is outlined at its own, wider spacing
        local = _local_spacing(coords[pos[epi]], codes[epi], len(names), spacing)
        outlines = _alpha_outlines(coords[pos[epi]], codes[epi], len(names), local * max_edge, local, 0.5)
        # the wall cells line the basement membrane: the outline of epithelium + wall, half a
        # cell inside, closes the gaps of a sparse epithelium (edges up to twice `max_edge`)
        walled_cells = epi | is_wall[pos]
        n_wall = np.bincount(codes[is_wall[pos] & ~epi], minlength=len(names))
        walled = _alpha_outlines(coords[pos[walled_cells]], codes[walled_cells], len(names),
                                 np.full(len(names), 2 * max_edge * spacing), np.full(len(names), spacing), -0.5)
        for k, tid in enumerate(names):
            geom = outlines[k]
            if n_wall[k] >= 3 and not walled[k].is_empty:
                geom = _polygonal(shapely.union_all([geom, walled[k]]))
            wall_xy = coords[pos[(codes == k) & is_wall[pos] & ~epi]]
            n_epi = int(np.sum((codes == k) & epi))
            rows.append(_describe(tid, geom, wall_xy, spacing, n_epi, sample))
    table = pd.DataFrame(rows)
    gdf = gpd.GeoDataFrame(table, geometry="geometry")
    if sample_key is None:
        gdf = gdf.drop(columns="sample")
    else:
        gdf = gdf.rename(columns={"sample": sample_key})
    gdf.attrs["params"] = {"tubule_key": tubule_key, "spatial_key": spatial_key,
                           "cell_type_key": cell_type_key, "max_edge": float(max_edge)}
    return gdf


def _local_spacing(xy: np.ndarray, codes: np.ndarray, n: int, spacing: float) -> np.ndarray:
    """Per tubule: the larger of the section spacing and the median distance from each of its
    cells to the nearest other cell of the same tubule."""
    local = np.full(n, spacing)
    if len(xy) < 2:
        return local
    k = min(8, len(xy))
    dist, idx = cKDTree(xy).query(xy, k=k)
    same = codes[idx] == codes[:, None]
    same[:, 0] = False
    nearest = np.where(same, dist, np.inf).min(axis=1)
    ok = np.isfinite(nearest)
    med = pd.Series(nearest[ok]).groupby(codes[ok]).median()
    local[med.index.to_numpy()] = np.maximum(spacing, med.to_numpy())
    return local


def _alpha_outlines(xy: np.ndarray, codes: np.ndarray, n: int, max_edge: np.ndarray,
                    spacing: np.ndarray, grow: float) -> list:
    """:func:`outline_cells` for every tubule code at once, from one Delaunay triangulation.

    Triangles whose three cells belong to one tubule and whose longest edge is at most that
    tubule's ``max_edge`` are joined per tubule; holes are dropped and the outline is grown by
    ``grow`` times the tubule's ``spacing``.
    """
    empty = [shapely.Polygon() for _ in range(n)]
    if len(xy) < 3:
        return empty
    try:
        tri = Delaunay(xy)
    except QhullError:  # all cells collinear
        return empty
    simplices = tri.simplices
    labels = codes[simplices]
    same = (labels[:, 0] == labels[:, 1]) & (labels[:, 1] == labels[:, 2])
    corners = xy[simplices[same]]
    owner = labels[same, 0]
    edges = np.linalg.norm(corners - corners[:, [1, 2, 0]], axis=2).max(axis=1)
    keep = edges <= max_edge[owner]
    corners, owner = corners[keep], owner[keep]
    if len(owner) == 0:
        return empty
    triangles = shapely.polygons(np.concatenate([corners, corners[:, :1]], axis=1))
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(n + 1))
    out = list(empty)
    for k in range(n):
        group = triangles[order[bounds[k]:bounds[k + 1]]]
        if len(group) == 0:
            continue
        merged = shapely.coverage_union_all(group)
        parts = shapely.get_parts(merged)
        filled = shapely.polygons(shapely.get_exterior_ring(parts))
        out[k] = _polygonal(shapely.union_all(shapely.buffer(filled, grow * spacing[k], quad_segs=3)))
    return out


def _describe(tid, geom, wall_xy, spacing, n_cells, sample) -> dict:
    area = float(geom.area)
    if geom.is_empty or area == 0:
        elongation = np.nan
    else:
        rect = shapely.minimum_rotated_rectangle(geom)
        xy = np.asarray(rect.exterior.coords)[:4] if rect.geom_type == "Polygon" else None
        if xy is None:
            elongation = np.nan
        else:
            sides = np.hypot(*np.diff(np.vstack([xy, xy[:1]]), axis=0).T)[:2]
            elongation = float(sides.max() / max(sides.min(), 1e-12))
    wall_thickness = np.nan
    if len(wall_xy) and not geom.is_empty:
        pts = shapely.points(wall_xy)
        outside = ~shapely.contains_xy(geom, wall_xy[:, 0], wall_xy[:, 1])
        if outside.any():
            wall_thickness = float(np.median(shapely.distance(pts[outside], geom)) + 0.5 * spacing)
    return {
        "tubule": tid,
        "geometry": geom,
        "n_cells": int(n_cells),
        "area": area,
        "equivalent_diameter": float(2 * np.sqrt(area / np.pi)),
        "elongation": elongation,
        "wall_thickness": wall_thickness,
        "sample": sample,
    }


def tubule_sizes(adata: AnnData, **kwargs) -> pd.DataFrame:
    """``area`` and ``equivalent_diameter`` per tubule (index: tubule id), from :func:`tubule_shapes`."""
    shapes = tubule_shapes(adata, **kwargs)
    return pd.DataFrame(
        {"area": shapes["area"].to_numpy(), "equivalent_diameter": shapes["equivalent_diameter"].to_numpy()},
        index=pd.Index(shapes["tubule"].astype(str), name="tubule"),
    )
