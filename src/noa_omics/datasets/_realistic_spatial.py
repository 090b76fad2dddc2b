"""Simulated testis section with irregular, tightly packed tubules: ``noa.datasets.realistic_spatial``.

Unlike :func:`~noa_omics.datasets.demo_spatial` (near-round ellipses on a loose layout), the
tubule cross-sections here are shapely polygons that imitate what a pathologist outlines on an
H&E slide of human testis:

- **shape classes** (``truth_shape``): ``round`` (aspect 1-1.3), ``elongated`` (oblique cut of a
  convoluted tube: aspect 1.5-3), ``irregular`` (strong low-frequency boundary perturbation) and
  ``bent`` (kidney-shaped: an elongated section bent along an arc); every outline also gets a
  mild random Fourier perturbation :math:`R(t) = 1 + \\sum_{k=2}^{5} a_k \\cos(k t + \\phi_k)`;
- **tight packing**: each tubule is pushed along a random ray against an already placed one until
  the gap between outlines is ``gap_range`` cell diameters (about one wall layer: touching walls
  and a thin interstitium), so most tubules touch one or more neighbours;
- tubules cut by the section edge, diameters varying by ``radius_range``; Sertoli-cell-only
  tubules are narrower (``sco_shrink``) and hold a ring of Sertoli nuclei near the basement
  membrane (1.2-2.5 cells deep) around an empty or small lumen; hypospermatogenic tubules keep
  15-40 % of their germ cells; maturation arrest stops at spermatocytes;
- peritubular myoid cells on a one-cell band outside every outline, Leydig cells in interstitial
  clusters.

Cells are the positions of a jittered hexagonal lattice (one per cell diameter) that are kept
according to where they fall, as in ``demo_spatial``; the germ stage follows the relative depth
:math:`d / ((1 - \\ell) D)` (:math:`d` distance to the outline, :math:`D` the tubule's largest
depth, :math:`\\ell` the lumen fraction).
"""

from __future__ import annotations

from collections.abc import Mapping
import numpy as np
import pandas as pd
import shapely
from anndata import AnnData
from scipy.spatial import cKDTree

from .._vocabulary import CELL_TYPES
from ._demo_spatial import (
    _CELL_SPACING,
    _DEFAULT_MIX,
    _draw_histologies,
    _finalise_obs,
    _hex_lattice,
    _normalise_mix,
)

__all__ = ["realistic_spatial", "SHAPE_CLASSES"]

#: Shape classes of the simulated cross-sections (``obs["truth_shape"]``).
SHAPE_CLASSES: tuple[str, ...] = ("round", "elongated", "irregular", "bent")
_DEFAULT_SHAPES: dict[str, float] = {"round": 0.35, "elongated": 0.3, "irregular": 0.2, "bent": 0.15}

_INTERSTITIAL_TYPES = ("endothelial", "macrophage", "t_cell", "other", "leydig")
_INTERSTITIAL_P = (0.45, 0.2, 0.12, 0.08, 0.15)
_STAGE_BOUNDS = (0.2, 0.47, 0.73)
_GERM = np.array(["spermatogonia", "spermatocyte", "round_spermatid", "elongating_spermatid"], dtype=object)


def realistic_spatial(
    seed: int = 0,
    *,
    n_tubules: int = 60,
    histology_mix: Mapping[str, float] | None = None,
    shape_mix: Mapping[str, float] | None = None,
    radius_range: tuple[float, float] = (4.5, 8.0),
    sco_shrink: float = 0.75,
    sco_ring: tuple[float, float] = (1.2, 2.5),
    wall_occupancy: float = 0.75,
    gap_range: tuple[float, float] = (0.8, 2.0),
    free_fraction: float = 0.1,
    max_aspect: float = 3.0,
    jitter: float = 0.15,
    label_noise: float = 0.02,
    rotation: float = 0.0,
    unit_scale: float = 1.0,
    sample: str = "realistic_section",
) -> AnnData:
    """Simulated section with irregular, elongated and bent tubules packed tightly.

    Parameters
    ----------
    seed
        Random seed; the same seed gives the same AnnData.
    n_tubules
        Tubules to place (fewer when the packing fails to place some; see ``uns``).
    histology_mix
        Fraction of tubules per histology; default 40 % normal, 20 % of each NOA pattern.
    shape_mix
        Fraction of tubules per shape class (:data:`SHAPE_CLASSES`).
    radius_range
        Range of the equivalent radius (cell diameters) before the Sertoli-cell-only shrink.
    sco_shrink
        Radius factor of Sertoli-cell-only tubules.
    sco_ring
        Range of the depth (cell diameters from the outline) of the Sertoli ring of
        Sertoli-cell-only tubules; inside it the lumen is empty but for stray nuclei.
    wall_occupancy
        Probability that a lattice position on the wall band holds a peritubular myoid cell.
    gap_range
        Gap between neighbouring outlines (cell diameters); 1 is one shared wall layer.
    free_fraction
        Fraction of tubules placed at random instead of against a neighbour.
    max_aspect
        Largest major/minor aspect of elongated and bent sections.
    jitter
        Standard deviation of the lattice jitter (cell diameters).
    label_noise
        Fraction of cells whose ``noa_cell_type`` is replaced by a random other type.
    rotation
        Rotation of the whole section (radians) after simulation.
    unit_scale
        Multiplies every coordinate (one cell diameter is ``10 * unit_scale`` units).
    sample
        Section name (``obs["sample"]``).

    Returns
    -------
    AnnData
        ``obsm["spatial"]``; ``obs``: ``noa_cell_type``, ``noa_cell_class``, ``truth_cell_type``,
        ``truth_tubule`` (NA in the interstitium; peritubular myoid cells belong to the nearest
        tubule's wall), ``truth_histology``, ``truth_shape``, ``sample``, ``section``.
        ``uns["realistic_spatial"]``: ``params`` and ``tubules`` (id, histology, shape, cut,
        n_neighbours touching, area, equivalent_diameter, outline as WKT in output units).

    Examples
    --------
    >>> import noa_omics as noa
    >>> adata = noa.datasets.realistic_spatial(seed=0, n_tubules=12)
    >>> sorted(adata.obs["truth_shape"].dropna().unique())[:1]
    ['bent']
    """
    _check(n_tubules, radius_range, gap_range, max_aspect, label_noise, unit_scale, sco_shrink)
    rng = np.random.default_rng(seed)
    mix = _normalise_mix(histology_mix if histology_mix is not None else _DEFAULT_MIX)
    shapes_p = _shape_mix(shape_mix)
    histology = _draw_histologies(rng, n_tubules, mix)
    shape = rng.choice(np.array(SHAPE_CLASSES, dtype=object), size=n_tubules,
                       p=[shapes_p[s] for s in SHAPE_CLASSES])
    radius = rng.uniform(*radius_range, size=n_tubules)
    radius = np.where(histology == "sertoli_cell_only", sco_shrink * radius, radius)
    outlines = [_outline(rng, r, s, max_aspect) for r, s in zip(radius, shape)]
    # large tubules first: small ones then fill the gaps
    order = np.argsort(-radius, kind="stable")
    placed, width = _pack(rng, [outlines[i] for i in order], gap_range, free_fraction)
    keep = [k for k, g in enumerate(placed) if g is not None]
    idx = order[keep]
    polys = [placed[k] for k in keep]
    histology, shape = histology[idx], shape[idx]

    obs, xy, table = _cells(rng, polys, histology, shape, width, jitter, label_noise, sample,
                            sco_ring, wall_occupancy)
    if rotation:
        c, s = np.cos(rotation), np.sin(rotation)
        xy = xy @ np.array([[c, s], [-s, c]])
    xy = xy * _CELL_SPACING * unit_scale
    transform = np.array([[np.cos(rotation), -np.sin(rotation)], [np.sin(rotation), np.cos(rotation)]])
    table["outline_wkt"] = [
        shapely.affinity.affine_transform(
            p, [*(transform.ravel() * _CELL_SPACING * unit_scale), 0, 0]).wkt
        for p in polys
    ]
    scale = _CELL_SPACING * unit_scale
    table["area"] = [p.area * scale**2 for p in polys]
    table["equivalent_diameter"] = 2 * np.sqrt(table["area"] / np.pi)

    obs.index = pd.Index([f"cell_{k}" for k in range(len(obs))])
    obs = _finalise_obs(obs)
    obs["truth_shape"] = pd.Categorical(obs["truth_shape"], categories=list(SHAPE_CLASSES))
    adata = AnnData(obs=obs)
    adata.obsm["spatial"] = xy
    adata.uns["realistic_spatial"] = {
        "params": {
            "seed": int(seed), "n_tubules": int(n_tubules), "n_placed": len(polys),
            "radius_range": [float(v) for v in radius_range], "sco_shrink": float(sco_shrink),
            "sco_ring": [float(v) for v in sco_ring], "wall_occupancy": float(wall_occupancy),
            "gap_range": [float(v) for v in gap_range], "free_fraction": float(free_fraction),
            "max_aspect": float(max_aspect), "jitter": float(jitter), "label_noise": float(label_noise),
            "rotation": float(rotation), "unit_scale": float(unit_scale),
            "cell_spacing": float(scale),
        },
        "tubules": table,
    }
    return adata


def _check(n_tubules, radius_range, gap_range, max_aspect, label_noise, unit_scale, sco_shrink) -> None:
    if int(n_tubules) < 1:
        raise ValueError(f"`n_tubules` must be >= 1, got {n_tubules}.")
    lo, hi = radius_range
    if not 2 <= lo <= hi:
        raise ValueError(f"`radius_range` must be (low, high) with 2 <= low <= high, got {radius_range}.")
    glo, ghi = gap_range
    if not 0.5 <= glo <= ghi:
        raise ValueError(f"`gap_range` must be (low, high) with 0.5 <= low <= high, got {gap_range}.")
    if not 1 <= max_aspect <= 5:
        raise ValueError(f"`max_aspect` must be in [1, 5], got {max_aspect}.")
    if not 0 <= label_noise < 1:
        raise ValueError(f"`label_noise` must be in [0, 1), got {label_noise}.")
    if not np.isfinite(unit_scale) or unit_scale <= 0:
        raise ValueError(f"`unit_scale` must be a positive number, got {unit_scale}.")
    if not 0.3 <= sco_shrink <= 1:
        raise ValueError(f"`sco_shrink` must be in [0.3, 1], got {sco_shrink}.")


def _shape_mix(shape_mix: Mapping[str, float] | None) -> dict[str, float]:
    mix = dict(_DEFAULT_SHAPES if shape_mix is None else shape_mix)
    unknown = set(mix) - set(SHAPE_CLASSES)
    if unknown:
        raise ValueError(f"unknown shape class {sorted(unknown)} in `shape_mix`; use {list(SHAPE_CLASSES)}.")
    w = np.array([float(mix.get(s, 0.0)) for s in SHAPE_CLASSES])
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("`shape_mix` needs non-negative fractions with a positive sum.")
    return dict(zip(SHAPE_CLASSES, w / w.sum()))


def _outline(rng: np.random.Generator, radius: float, shape: str, max_aspect: float) -> shapely.Polygon:
    """A closed outline centred at the origin with equivalent radius ``radius`` (cell diameters)."""
    t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    amp = {"round": 0.04, "elongated": 0.05, "irregular": 0.16, "bent": 0.05}[shape]
    r = np.ones_like(t)
    for k in range(2, 6):
        r += rng.uniform(0, amp) / (k - 1) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    if shape == "round":
        aspect = rng.uniform(1.0, 1.3)
    elif shape == "irregular":
        aspect = rng.uniform(1.0, 1.6)
    else:
        aspect = rng.uniform(1.5, max(1.5, max_aspect))
    x = np.sqrt(aspect) * r * np.cos(t)
    y = r * np.sin(t) / np.sqrt(aspect)
    if shape == "bent":
        # bend the long axis along an arc of curvature kappa (a kidney / U-turn section)
        half = np.sqrt(aspect)
        kappa = rng.uniform(0.5, 1.1) / half
        rad = 1.0 / kappa
        x, y = (rad - y) * np.sin(kappa * x), rad - (rad - y) * np.cos(kappa * x)
    poly = shapely.make_valid(shapely.Polygon(np.column_stack([x, y])))
    if poly.geom_type != "Polygon":
        poly = max(getattr(poly, "geoms", [poly]), key=lambda g: g.area)
    poly = shapely.affinity.scale(poly, radius / np.sqrt(poly.area / np.pi),
                                  radius / np.sqrt(poly.area / np.pi), origin="centroid")
    poly = shapely.affinity.rotate(poly, rng.uniform(0, 360), origin="centroid")
    c = poly.centroid
    return shapely.affinity.translate(poly, -c.x, -c.y)


def _pack(rng, outlines, gap_range, free_fraction, occupancy: float = 0.62):
    """Place outlines tightly: push each one along a random ray against a placed neighbour."""
    total = sum(p.area for p in outlines)
    width = float(np.sqrt(total / occupancy))
    placed: list[shapely.Polygon | None] = []
    done: list[shapely.Polygon] = []
    for poly in outlines:
        reach = np.sqrt(poly.area / np.pi) * 2
        result = None
        for _try in range(60):
            gap = rng.uniform(*gap_range)
            if not done or rng.random() < free_fraction:
                centre = rng.uniform(-0.3 * reach, width + 0.3 * reach, size=2)
                cand = shapely.affinity.translate(poly, *centre)
                if done and min(shapely.distance(cand, np.array(done, dtype=object))) < gap:
                    continue
            else:
                j = int(rng.integers(len(done)))
                anchor = done[j].centroid
                direction = rng.uniform(0, 2 * np.pi)
                unit = np.array([np.cos(direction), np.sin(direction)])
                lo, hi = 0.0, reach + 2 * np.sqrt(done[j].area / np.pi) + 2 * gap_range[1]
                for _ in range(14):  # bisection on the gap to the anchor
                    mid = 0.5 * (lo + hi)
                    probe = shapely.affinity.translate(poly, *(np.array([anchor.x, anchor.y]) + mid * unit))
                    if probe.distance(done[j]) < gap:
                        lo = mid
                    else:
                        hi = mid
                cand = shapely.affinity.translate(poly, *(np.array([anchor.x, anchor.y]) + hi * unit))
                d = shapely.distance(cand, np.array(done, dtype=object))
                if d.min() < 0.95 * gap_range[0]:
                    continue
            c = cand.centroid
            if not (-0.3 * reach <= c.x <= width + 0.3 * reach and -0.3 * reach <= c.y <= width + 0.3 * reach):
                continue
            result = cand
            break
        placed.append(result)
        if result is not None:
            done.append(result)
    return placed, width


def _cells(rng, polys, histology, shape, width, jitter, label_noise, name, sco_ring_range, wall_occupancy):
    n_tub = len(polys)
    pts = _hex_lattice(rng, width, jitter=jitter)
    points = shapely.points(pts)
    tree = shapely.STRtree(polys)
    inside_idx, tub_idx = tree.query(points, predicate="within")
    tub = np.full(len(pts), -1)
    tub[inside_idx] = tub_idx
    inside = tub >= 0
    near_idx, near_tub = tree.query_nearest(points[~inside], max_distance=1.0, all_matches=False)
    wall_tub = np.full(len(pts), -1)
    wall_tub[np.flatnonzero(~inside)[near_idx]] = near_tub
    wall = wall_tub >= 0

    depth = np.zeros(len(pts))
    boundaries = np.array([p.exterior for p in polys], dtype=object)
    depth[inside] = shapely.distance(points[inside], boundaries[tub[inside]])
    max_depth = np.zeros(n_tub)
    np.maximum.at(max_depth, tub[inside], depth[inside])
    max_depth = np.maximum(max_depth, 1.0)

    hist = np.where(inside, histology[np.maximum(tub, 0)], None)
    is_sco = hist == "sertoli_cell_only"
    lumen = rng.uniform(0.2, 0.35, size=n_tub)
    sco_ring = rng.uniform(*sco_ring_range, size=n_tub)
    hypo_keep = rng.uniform(0.15, 0.4, size=n_tub)
    t = np.maximum(tub, 0)
    rel = depth / np.maximum((1 - lumen[t]) * max_depth[t], 1e-9) + rng.normal(0, 0.06, len(pts))
    in_lumen = inside & (depth > (1 - lumen[t]) * max_depth[t])
    u = rng.random((len(pts), 4))

    cell_type = np.full(len(pts), None, dtype=object)
    cell_type[wall & (u[:, 0] < wall_occupancy)] = "peritubular_myoid"

    inter = ~inside & ~wall
    leydig_p = _leydig_field(rng, pts, inter)
    keep_int = inter & (u[:, 0] < np.maximum(0.3, leydig_p))
    cum = np.cumsum(_INTERSTITIAL_P)
    which = np.searchsorted(cum, u[:, 1] * cum[-1])
    kind = np.array(_INTERSTITIAL_TYPES, dtype=object)[which]
    kind[u[:, 2] < leydig_p] = "leydig"
    cell_type[keep_int] = kind[keep_int]

    stage = np.searchsorted(np.array(_STAGE_BOUNDS), rel)
    germ_type = _GERM[np.minimum(stage, 3)].copy()
    germ_type[(stage == 0) & (u[:, 3] < 0.25)] = "SSC"
    sertoli = inside & ~in_lumen & (u[:, 2] < np.where(depth < 1.2, 0.35, 0.02))
    germ = inside & ~in_lumen & ~sertoli & ~is_sco
    is_hypo = hist == "hypospermatogenesis"
    germ &= ~(is_hypo & (u[:, 0] >= hypo_keep[t]))
    arrested = (hist == "maturation_arrest") & (stage >= 2)
    germ &= ~(arrested & (u[:, 0] >= 0.35))
    germ_type = np.where(arrested, "spermatocyte", germ_type)
    cell_type[germ] = germ_type[germ]
    cell_type[sertoli & ~is_sco] = "sertoli"
    ring = inside & is_sco & (depth < sco_ring[t]) & (u[:, 2] < 0.85)
    stray = inside & is_sco & (depth >= sco_ring[t]) & (u[:, 2] < 0.04)
    cell_type[ring | stray] = "sertoli"

    keep = cell_type != None  # noqa: E711
    truth = np.where(inside, tub, wall_tub)[keep]
    pts, cell_type = pts[keep], cell_type[keep]
    ids = np.array([f"{name}:t{i:04d}" for i in range(n_tub)], dtype=object)
    annotated = cell_type.copy()
    flip = rng.random(len(annotated)) < label_noise
    if flip.any():
        offsets = rng.integers(1, len(CELL_TYPES), size=int(flip.sum()))
        codes = np.array([CELL_TYPES.index(c) for c in cell_type[flip]])
        annotated[flip] = np.array(CELL_TYPES, dtype=object)[(codes + offsets) % len(CELL_TYPES)]
    has = truth >= 0
    obs = pd.DataFrame({
        "noa_cell_type": annotated,
        "truth_cell_type": cell_type,
        "truth_tubule": np.where(has, ids[np.maximum(truth, 0)], None),
        "truth_histology": np.where(has, histology[np.maximum(truth, 0)], None),
        "truth_shape": np.where(has, shape[np.maximum(truth, 0)], None),
        "sample": name,
        "section": name,
    })
    obs["donor"] = "donor_0"
    obs["condition"] = "NOA"
    box = shapely.box(0, 0, width, width)
    touching = [int((shapely.distance(p, np.array(polys, dtype=object)) < 1.05).sum() - 1) for p in polys]
    table = pd.DataFrame({
        "tubule": ids,
        "sample": name,
        "histology": histology,
        "shape": shape,
        "cut": [not box.contains(p) for p in polys],
        "touching": touching,
        "n_cells": np.bincount(truth[has], minlength=n_tub),
    })
    return obs, pts, table


def _leydig_field(rng, pts, inter) -> np.ndarray:
    """Probability of a Leydig cell: high near a few cluster centres in the interstitium."""
    candidates = np.flatnonzero(inter)
    if candidates.size == 0:
        return np.zeros(len(pts))
    n_clusters = max(1, candidates.size // 150)
    centres = pts[rng.choice(candidates, size=n_clusters, replace=False)]
    d, _ = cKDTree(centres).query(pts, k=1)
    return np.where(d < 2.5, 0.85, 0.0)

