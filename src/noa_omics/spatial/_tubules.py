"""Seminiferous-tubule segmentation from cell coordinates and cell types: ``assign_tubules``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from .._validation import check_adata, check_spatial
from ._utils import EPITHELIAL_TYPES, WALL_TYPES, cell_types, isin, nn_spacing, sections

__all__ = ["assign_tubules"]

#: Largest raster (pixels) of one section; about 3 GB of working memory at the limit.
_MAX_PIXELS = 50_000_000
#: Pixels per nearest-neighbour query block.
_QUERY_BLOCK = 1_000_000


def assign_tubules(
    adata: AnnData,
    *,
    cell_type_key: str = "noa_cell_type",
    spatial_key: str = "spatial",
    key_added: str = "noa_tubule",
    sample_key: str | None = None,
    inplace: bool = True,
    pixel_size: float = 0.75,
    n_vote: int = 6,
    empty_distance: float = 3.0,
    lumen_max_cells: int = 2,
    split_depth: float = 0.33,
    wall_distance: float = 2.0,
    snap_distance: float = 1.5,
    min_cells: int = 5,
    lumen_rim: float = 0.6,
    barrier_neighbours: int = 1,
    epithelial_types: Sequence[str] = EPITHELIAL_TYPES,
    wall_types: Sequence[str] = WALL_TYPES,
) -> pd.Series:
    r"""Assign every cell to a seminiferous tubule (or NA in the interstitium).

    The segmentation works in units of the section's own cell spacing :math:`s` (the median
    nearest-neighbour distance), so the coordinates can be in any unit. Per section:

    1. **Raster.** A grid of pixel size ``pixel_size`` :math:`\cdot s` covers the section. Each pixel
       gets the fraction of tubule-epithelium cells (germ + Sertoli, ``epithelial_types``) among
       its ``n_vote`` nearest cells; it is epithelium when that fraction is at least 1/2, and
       *empty* when no cell lies within ``empty_distance`` :math:`\cdot s`. Voting on neighbours
       rather than thresholding a density keeps sparse (hypospermatogenic) tubules whole.
    2. **Lumen filling.** (a) Connected empty areas whose rim is epithelium (at least
       ``lumen_rim`` of the distinct cells nearest to the pixels just outside the area are
       epithelial) are lumen cores and are filled, so the empty lumen of a Sertoli-cell-only
       tubule is recovered even when its Sertoli ring is too thin or gappy to enclose it.
       (b) Connected non-epithelial regions that contain at most ``lumen_max_cells``
       non-epithelial cells are holes and are filled. Regions (and cores) touching the section
       edge (lumens of cut tubules) are filled only when smaller than the typical tubule
       cross-section, so empty space outside the tissue is not.
    3. **Splitting touching tubules.** The depth map :math:`D` is the Euclidean distance
       transform of the filled mask, capped by the distance to the nearest *barrier* cell
       (the wall cells between two touching tubules carve a valley). Barriers are the
       non-epithelial cells except isolated ones: a cell other than a wall cell with fewer than
       ``barrier_neighbours`` non-epithelial cells among its 6 nearest neighbours is an
       annotation error inside the epithelium and carves nothing (otherwise every mislabelled
       cell punches a pit into :math:`D` and large tubules split). A marker-controlled
       watershed of :math:`-D` (markers: h-maxima of :math:`D`, :math:`h` = 0.5 pixel;
       Beucher & Meyer 1993) over-segments, then neighbouring basins are merged from the highest
       saddle down unless the valley between them is deep:

       .. math:: \text{merge } a, b \iff v_{ab} \ge (1 - \texttt{split\_depth}) \min(p_a, p_b)

       with :math:`p` the basin peaks of :math:`D` and :math:`v_{ab}` the highest :math:`D` on
       their common border. The relative criterion splits a small Sertoli-cell-only tubule from
       a large neighbour as well as two large tubules, and keeps elongated cross-sections whole.
    4. **Cells.** Epithelial cells take the label of their pixel (or of the nearest label within
       ``snap_distance`` :math:`\cdot s`); peritubular myoid cells (``wall_types``) take the nearest
       label within ``wall_distance`` :math:`\cdot s`; every other cell type (Leydig, endothelial,
       immune, other) is interstitial (NA): the seminiferous epithelium is avascular and holds no
       Leydig cells. Tubules with fewer than ``min_cells`` epithelial cells are dropped (NA).

    Parameters
    ----------
    adata
        Cells with coordinates in ``obsm[spatial_key]`` and fine cell types in ``obs[cell_type_key]``
        (vocabulary of :data:`noa_omics._vocabulary.CELL_TYPES`).
    cell_type_key
        ``obs`` column with the cell types.
    spatial_key
        ``obsm`` key of the (n_cells, 2) coordinates, in any unit.
    key_added
        ``obs`` column for the tubule ids (with ``inplace=True``), also the ``uns`` key of the
        parameters.
    sample_key
        ``obs`` column naming the section/sample; each section is segmented on its own and tubule
        ids are prefixed with the section name (``"<section>:T0001"``). Required when several
        sections share a coordinate system.
    inplace
        Write ``obs[key_added]`` and ``uns[key_added]``; with False ``adata`` is left untouched.
    pixel_size
        Raster pixel size in cell spacings.
    n_vote
        Nearest cells voting on each pixel's class.
    empty_distance
        A pixel with no cell closer than this (cell spacings) is empty.
    lumen_max_cells
        Largest number of non-epithelial cells a region may hold and still be filled as a lumen.
    split_depth
        Minimal depth of the distance-transform valley between two tubules, as a fraction of the
        lower of their two peaks, to keep them apart. Lower splits more.
    wall_distance
        Largest distance (cell spacings) from a wall cell to its tubule's mask.
    snap_distance
        Largest distance (cell spacings) from an epithelial cell outside the mask to a tubule.
    min_cells
        Smallest number of epithelial cells of a tubule.
    lumen_rim
        Smallest epithelial fraction of the rim of an empty area filled as a lumen core; 1
        disables the lumen cores.
    barrier_neighbours
        Non-epithelial neighbours (of 6) a non-wall cell needs to act as a barrier; 0 makes
        every non-epithelial cell a barrier (version 0.1.0).
    epithelial_types, wall_types
        Cell types of the tubule epithelium and of its wall.

    Returns
    -------
    pandas.Series
        Categorical tubule id per cell (index ``adata.obs_names``, NA outside tubules).

    Notes
    -----
    ``uns[key_added]`` holds the parameters and per section the estimated cell spacing
    (``spacing``, data units), the pixel size in data units, the typical tubule radius and the
    number of tubules.

    References
    ----------
    Beucher S, Meyer F (1993) The morphological approach to segmentation: the watershed
    transformation. In: Mathematical Morphology in Image Processing, pp. 433-481.

    Examples
    --------
    >>> import noa_omics as noa
    >>> adata = noa.datasets.demo_spatial(seed=0, n_tubules=20, expression=False)
    >>> tubules = noa.spatial.assign_tubules(adata)
    >>> bool(tubules.notna().any())
    True
    """
    check_adata(adata, min_vars=0)
    coords = check_spatial(adata, spatial_key)
    types = cell_types(adata, cell_type_key)
    params = {
        "cell_type_key": cell_type_key,
        "spatial_key": spatial_key,
        "sample_key": sample_key,
        "pixel_size": float(pixel_size),
        "n_vote": int(n_vote),
        "empty_distance": float(empty_distance),
        "lumen_max_cells": int(lumen_max_cells),
        "split_depth": float(split_depth),
        "wall_distance": float(wall_distance),
        "snap_distance": float(snap_distance),
        "min_cells": int(min_cells),
        "lumen_rim": float(lumen_rim),
        "barrier_neighbours": int(barrier_neighbours),
        "epithelial_types": list(epithelial_types),
        "wall_types": list(wall_types),
    }
    _check_params(params)

    labels = np.full(adata.n_obs, None, dtype=object)
    per_section: dict[str, dict[str, Any]] = {}
    for name, pos in sections(adata, sample_key):
        where = "" if name is None else f" in section {name!r}"
        epithelial = isin(types[pos], epithelial_types)
        if epithelial.sum() < min_cells:
            raise ValueError(
                f"found {int(epithelial.sum())} tubule-epithelium cells (germ or Sertoli){where}; "
                f"at least {min_cells} are needed to find tubules. Check `{cell_type_key}` (it must "
                "use the vocabulary cell types) or drop sections without seminiferous epithelium."
            )
        section_labels, info = _segment_section(
            coords[pos], epithelial, isin(types[pos], wall_types), **_kernel_params(params)
        )
        prefix = "" if name is None else f"{name}:"
        ids = np.array([f"{prefix}T{k:04d}" for k in range(1, int(section_labels.max(initial=0)) + 1)],
                       dtype=object)
        has = section_labels > 0
        labels[pos[has]] = ids[section_labels[has] - 1]
        per_section["all" if name is None else name] = info

    categories = list(dict.fromkeys(v for v in labels if v is not None))
    result = pd.Series(pd.Categorical(labels, categories=categories), index=adata.obs_names, name=key_added)
    if inplace:
        adata.obs[key_added] = result
        adata.uns[key_added] = {"params": params, "sections": per_section}
    return result


def _check_params(params: dict[str, Any]) -> None:
    for name in ("pixel_size", "empty_distance", "split_depth", "wall_distance", "snap_distance"):
        value = params[name]
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"`{name}` must be a positive number, got {value}.")
    if params["n_vote"] < 1:
        raise ValueError(f"`n_vote` must be >= 1, got {params['n_vote']}.")
    if params["min_cells"] < 1 or params["lumen_max_cells"] < 0:
        raise ValueError("`min_cells` must be >= 1 and `lumen_max_cells` >= 0.")
    if not 0 <= params["lumen_rim"] <= 1:
        raise ValueError(f"`lumen_rim` is a fraction in [0, 1], got {params['lumen_rim']}.")
    if not 0 <= params["barrier_neighbours"] <= 6:
        raise ValueError(f"`barrier_neighbours` must be in 0..6, got {params['barrier_neighbours']}.")
    if not params["epithelial_types"]:
        raise ValueError("`epithelial_types` is empty; give the germ and Sertoli cell types.")


def _kernel_params(params: dict[str, Any]) -> dict[str, Any]:
    keys = ("pixel_size", "n_vote", "empty_distance", "lumen_max_cells", "split_depth",
            "wall_distance", "snap_distance", "min_cells", "lumen_rim", "barrier_neighbours")
    return {k: params[k] for k in keys}


def _segment_section(
    coords: np.ndarray,
    epithelial: np.ndarray,
    wall: np.ndarray,
    *,
    pixel_size: float,
    n_vote: int,
    empty_distance: float,
    lumen_max_cells: int,
    split_depth: float,
    wall_distance: float,
    snap_distance: float,
    min_cells: int,
    lumen_rim: float,
    barrier_neighbours: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Labels (0 = none, 1..K) for the cells of one section, and the section's scale estimates."""
    spacing = nn_spacing(coords)
    # everything below is in units of the cell spacing, so the data unit never matters
    z = (coords - coords.min(axis=0)) / spacing
    shape = tuple(int(np.floor(z[:, k].max() / pixel_size)) + 1 for k in (1, 0))  # rows = y
    cell_px = np.floor(z / pixel_size).astype(np.int64)
    rows, cols = cell_px[:, 1], cell_px[:, 0]

    n_pixels = shape[0] * shape[1]
    if n_pixels > _MAX_PIXELS:
        raise ValueError(
            f"the section spans {shape[1] * pixel_size:.0f} x {shape[0] * pixel_size:.0f} cell spacings "
            f"({n_pixels:.2e} pixels); check the coordinates for outliers, or pass `sample_key` when "
            "several sections share one coordinate frame."
        )

    # 1. class vote of the nearest cells at every pixel centre (in row blocks to bound memory)
    tree = cKDTree(z)
    k = min(n_vote, len(z))
    vote = np.empty(shape)
    nearest_cell = np.empty(shape)
    nearest_index = np.empty(shape, dtype=np.int64)
    xs = (np.arange(shape[1]) + 0.5) * pixel_size
    step = max(1, _QUERY_BLOCK // shape[1])
    for start in range(0, shape[0], step):
        ys = (np.arange(start, min(start + step, shape[0])) + 0.5) * pixel_size
        gx, gy = np.meshgrid(xs, ys)
        dist, idx = tree.query(np.column_stack([gx.ravel(), gy.ravel()]), k=k)
        dist, idx = dist.reshape(-1, k), idx.reshape(-1, k)
        vote[start : start + len(ys)] = epithelial[idx].mean(axis=1).reshape(len(ys), -1)
        nearest_cell[start : start + len(ys)] = dist[:, 0].reshape(len(ys), -1)
        nearest_index[start : start + len(ys)] = idx[:, 0].reshape(len(ys), -1)
    empty = nearest_cell > empty_distance
    mask = (vote >= 0.5) & ~empty

    # 2a. lumen cores: cell-free areas whose rim is epithelium (the empty lumen of a Sertoli ring,
    # even when the ring is too thin or gappy to enclose it in the mask)
    inner_cores, edge_cores = _lumen_cores(empty, nearest_index, epithelial, lumen_rim)
    mask |= inner_cores
    if edge_cores.any():  # cut by the section edge: only up to a typical tubule's size
        cores, n_cores = ndi.label(edge_cores)
        small = np.bincount(cores.ravel(), minlength=n_cores + 1) <= _typical_area(mask)
        small[0] = False
        mask |= small[cores]

    # 2. fill lumens: non-epithelial regions (almost) free of non-epithelial cells
    holes, n_holes = ndi.label(~mask)
    if n_holes:
        other_cells = np.bincount(holes[rows[~epithelial], cols[~epithelial]], minlength=n_holes + 1)
        area = np.bincount(holes.ravel(), minlength=n_holes + 1)
        border = np.zeros(n_holes + 1, dtype=bool)
        for edge in (holes[0], holes[-1], holes[:, 0], holes[:, -1]):
            border[edge] = True
        cell_free = other_cells <= lumen_max_cells
        cell_free[0] = False
        inner = cell_free & ~border
        mask |= inner[holes]
        typical_area = _typical_area(mask)
        edge_lumen = cell_free & border & (area <= typical_area)
        mask |= edge_lumen[holes]

    # 3. split touching tubules: watershed from h-maxima markers, then merge shallow valleys
    # depth = distance to the mask edge or to the nearest non-epithelial cell, whichever is
    # closer: the wall cells between touching tubules then carve the valley the watershed needs
    distance = ndi.distance_transform_edt(mask)
    barrier = _barrier_cells(tree, epithelial, wall, barrier_neighbours)
    if barrier.any():
        rr, cc = np.nonzero(mask)
        centres = (np.column_stack([cc, rr]) + 0.5) * pixel_size
        to_other, _ = cKDTree(z[barrier]).query(centres, k=1)
        distance[rr, cc] = np.minimum(distance[rr, cc], to_other / pixel_size)
    regions, n_regions = ndi.label(mask)
    if n_regions == 0:
        return np.zeros(len(z), dtype=np.int64), _info(spacing, pixel_size, 0.0, 0)
    peaks = np.asarray(ndi.maximum(distance, regions, index=np.arange(1, n_regions + 1)))
    typical_radius = float(np.median(peaks))
    markers_mask = h_maxima(distance, 0.5).astype(bool)
    # every region needs a marker, also those too thin to have an h-maximum
    unmarked = np.setdiff1d(np.arange(1, n_regions + 1), np.unique(regions[markers_mask]))
    if unmarked.size:
        for r, c in ndi.maximum_position(distance, regions, index=unmarked):
            markers_mask[r, c] = True
    markers, _ = ndi.label(markers_mask, structure=np.ones((3, 3)))
    basins = watershed(-distance, markers, mask=mask)
    segmented = _merge_shallow(basins, distance, split_depth)

    # 4. cells -> labels; cells just outside the mask snap to the nearest labelled pixel
    outside = segmented == 0
    gap, (near_r, near_c) = ndi.distance_transform_edt(outside, return_indices=True)
    nearest = segmented[near_r, near_c]
    gap_cells = gap[rows, cols] * pixel_size
    cell_label = np.zeros(len(z), dtype=np.int64)
    epi_ok = epithelial & (gap_cells <= snap_distance)
    cell_label[epi_ok] = nearest[rows[epi_ok], cols[epi_ok]]
    wall_ok = wall & ~epithelial & (gap_cells <= wall_distance)
    cell_label[wall_ok] = nearest[rows[wall_ok], cols[wall_ok]]

    # drop tubules with too few epithelial cells; renumber the rest 1..K (raster order of markers)
    n_epi = np.bincount(cell_label[epithelial], minlength=segmented.max() + 1)
    small = n_epi < min_cells
    small[0] = True
    cell_label[small[cell_label]] = 0
    kept = np.unique(cell_label[cell_label > 0])
    remap = np.zeros(segmented.max() + 1, dtype=np.int64)
    remap[kept] = np.arange(1, kept.size + 1)
    cell_label = remap[cell_label]
    return cell_label, _info(spacing, pixel_size, typical_radius, int(kept.size))


def _merge_shallow(basins: np.ndarray, distance: np.ndarray, split_depth: float) -> np.ndarray:
    """Merge neighbouring watershed basins separated by a shallow valley.

    Two basins with peaks :math:`p_a, p_b` and saddle :math:`v` (the highest distance value on
    their common border) stay apart only if :math:`v < (1 - \\texttt{split\\_depth}) \\min(p_a, p_b)`,
    i.e. when the valley is deeper than ``split_depth`` times the lower peak. Basins are merged
    from the highest saddle down (a union-find over the basin adjacency graph).
    """
    n = int(basins.max())
    if n <= 1:
        return basins
    peak = np.zeros(n + 1)
    peak[1:] = ndi.maximum(distance, basins, index=np.arange(1, n + 1))
    pairs = []
    for a, b, da, db in (
        (basins[:, :-1], basins[:, 1:], distance[:, :-1], distance[:, 1:]),
        (basins[:-1, :], basins[1:, :], distance[:-1, :], distance[1:, :]),
        (basins[:-1, :-1], basins[1:, 1:], distance[:-1, :-1], distance[1:, 1:]),
        (basins[:-1, 1:], basins[1:, :-1], distance[:-1, 1:], distance[1:, :-1]),
    ):
        touch = (a != b) & (a > 0) & (b > 0)
        lo, hi = np.minimum(a[touch], b[touch]), np.maximum(a[touch], b[touch])
        pairs.append(pd.DataFrame({"a": lo, "b": hi, "v": np.minimum(da[touch], db[touch])}))
    edges = pd.concat(pairs).groupby(["a", "b"], sort=False)["v"].max().reset_index()
    edges = edges.sort_values(["v", "a", "b"], ascending=[False, True, True], kind="stable")
    parent = np.arange(n + 1)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, v in edges[["a", "b", "v"]].itertuples(index=False):
        ra, rb = find(int(a)), find(int(b))
        if ra == rb:
            continue
        if v >= (1.0 - split_depth) * min(peak[ra], peak[rb]):
            keep, drop = min(ra, rb), max(ra, rb)
            parent[drop] = keep
            peak[keep] = max(peak[keep], peak[drop])
    root = np.array([find(i) for i in range(n + 1)])
    return root[basins]


def _lumen_cores(empty: np.ndarray, nearest_index: np.ndarray, epithelial: np.ndarray,
                 lumen_rim: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell-free components of ``empty`` whose rim cells (the nearest cell of each pixel just
    outside the component) are at least ``lumen_rim`` epithelial: (inside, on the raster edge)."""
    cores, n = ndi.label(empty)
    if n == 0 or lumen_rim >= 1:
        return np.zeros_like(empty), np.zeros_like(empty)
    rim = ndi.grey_dilation(cores, size=(3, 3))
    rim[cores > 0] = 0
    rr, cc = np.nonzero(rim)
    pairs = pd.DataFrame({"core": rim[rr, cc], "cell": nearest_index[rr, cc]}).drop_duplicates()
    frac = pairs.assign(epi=epithelial[pairs["cell"].to_numpy()]).groupby("core")["epi"].mean()
    fill = np.zeros(n + 1, dtype=bool)
    fill[frac.index.to_numpy()] = frac.to_numpy() >= lumen_rim
    fill[0] = False
    on_edge = np.zeros(n + 1, dtype=bool)
    for edge in (cores[0], cores[-1], cores[:, 0], cores[:, -1]):
        on_edge[edge] = True
    return (fill & ~on_edge)[cores], (fill & on_edge)[cores]


def _barrier_cells(tree: cKDTree, epithelial: np.ndarray, wall: np.ndarray, barrier_neighbours: int) -> np.ndarray:
    """Non-epithelial cells that are wall or interstitium, not a mislabelled cell inside the epithelium.

    A non-epithelial cell other than a wall cell (peritubular myoid) with fewer than
    ``barrier_neighbours`` non-epithelial cells among its 6 nearest neighbours is *isolated*: an
    annotation error inside the epithelium (the interstitium is a tissue, not one cell alone).
    It carves no valley. Wall cells always do: two touching tubules may share one sparse layer.
    """
    other = ~epithelial
    if barrier_neighbours == 0 or not other.any() or len(epithelial) < 7:
        return other
    _, idx = tree.query(tree.data[other], k=7)
    isolated = (other[idx[:, 1:]].sum(axis=1) < barrier_neighbours) & ~wall[other]
    barrier = other.copy()
    barrier[other] = ~isolated
    return barrier


def _typical_area(mask: np.ndarray) -> float:
    """Median pixel area of the filled connected regions of ``mask`` (a typical tubule)."""
    regions, n = ndi.label(ndi.binary_fill_holes(mask))
    if n == 0:
        return 0.0
    return float(np.median(np.bincount(regions.ravel())[1:]))


def _info(spacing: float, pixel_size: float, typical_radius_px: float, n_tubules: int) -> dict[str, Any]:
    return {
        "spacing": spacing,
        "pixel_size": pixel_size * spacing,
        "typical_radius": typical_radius_px * pixel_size * spacing,
        "n_tubules": n_tubules,
    }
