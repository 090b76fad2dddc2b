"""Simulated testis section(s) with known seminiferous tubules: ``noa.datasets.demo_spatial``.

The simulation is geometric, not image based. Tubule cross-sections are ellipses placed in a
rectangular window (some touching a neighbour, some cut by the window edge). A jittered hexagonal
lattice of candidate cell positions (one per cell diameter) is laid over the window and each
position becomes a cell or stays empty, according to where it falls:

- inside a tubule, at normalised radius :math:`\\rho < 1` (``rho = 1`` on the basement membrane):
  Sertoli cells at the base, germ cells in radial stage order (SSC/spermatogonia at the wall,
  spermatocytes, round then elongating spermatids toward the lumen), an empty lumen;
- on the wall band just outside :math:`\\rho = 1`: peritubular myoid cells;
- in the interstitium: Leydig, endothelial, macrophage, T cells and a few ``other``.

The four histologies (:data:`noa_omics._vocabulary.HISTOLOGIES`) change the epithelium:
``normal`` (all stages, dense), ``hypospermatogenesis`` (all stages, ~30 % of the germ cells),
``maturation_arrest`` (nothing beyond spermatocytes) and ``sertoli_cell_only`` (a ring of Sertoli
cells around an empty lumen, smaller tubule). Optionally a small targeted panel of counts is
simulated from the curated gene sets (Xenium-like, ~250 genes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from scipy.spatial import cKDTree

from .._vocabulary import CELL_CLASSES, CELL_TYPE_TO_CLASS, CELL_TYPES, GERM_STAGES, HISTOLOGIES

__all__ = ["demo_spatial"]

#: Cell spacing (one cell diameter) of the simulated lattice, in base units before ``unit_scale``.
_CELL_SPACING = 10.0

#: Default histology mix of a single demo section.
_DEFAULT_MIX: dict[str, float] = {
    "normal": 0.4,
    "hypospermatogenesis": 0.2,
    "maturation_arrest": 0.2,
    "sertoli_cell_only": 0.2,
}

#: Histology mixes of multi-section cohorts: controls, then NOA patterns cycled over NOA donors.
_CONTROL_MIX: dict[str, float] = {
    "normal": 0.85,
    "hypospermatogenesis": 0.1,
    "maturation_arrest": 0.05,
    "sertoli_cell_only": 0.0,
}
_NOA_MIXES: tuple[dict[str, float], ...] = (
    {"normal": 0.1, "hypospermatogenesis": 0.1, "maturation_arrest": 0.1, "sertoli_cell_only": 0.7},
    {"normal": 0.1, "hypospermatogenesis": 0.1, "maturation_arrest": 0.6, "sertoli_cell_only": 0.2},
    {"normal": 0.25, "hypospermatogenesis": 0.25, "maturation_arrest": 0.25, "sertoli_cell_only": 0.25},
    {"normal": 0.2, "hypospermatogenesis": 0.6, "maturation_arrest": 0.1, "sertoli_cell_only": 0.1},
)

#: Interstitial composition (probabilities, in this order).
_INTERSTITIAL_TYPES = ("leydig", "endothelial", "macrophage", "t_cell", "other")
_INTERSTITIAL_P = (0.42, 0.3, 0.13, 0.1, 0.05)

#: Relative depth (0 at the basement membrane, 1 at the lumen) where each germ stage ends.
_STAGE_BOUNDS = (0.2, 0.47, 0.73)


def demo_spatial(
    seed: int = 0,
    *,
    n_tubules: int = 60,
    histology_mix: Mapping[str, float] | Sequence[Mapping[str, float]] | None = None,
    sample: str = "demo_section",
    unit_scale: float = 1.0,
    expression: bool = True,
    touching: float = 0.2,
    sections: int = 1,
    sections_per_donor: int = 1,
    label_noise: float = 0.01,
    radius_range: tuple[float, float] = (4.5, 7.0),
    occupancy: float = 0.5,
) -> AnnData:
    """Simulated testis section(s) with seminiferous tubules of known histology.

    Parameters
    ----------
    seed
        Random seed; the same seed gives the same AnnData.
    n_tubules
        Number of tubules per section (tubules cut by the section edge included).
    histology_mix
        Fraction of tubules per histology (keys from :data:`~noa_omics._vocabulary.HISTOLOGIES`,
        normalised to sum 1), or one mapping per section. Default: 40 % normal and 20 % of each
        NOA pattern for a single section; for ``sections > 1``, controls get a mostly normal mix
        and NOA donors cycle through Sertoli-cell-only-rich, arrest-rich, mixed and
        hypospermatogenesis-rich mixes.
    sample
        Sample (section) name for a single section; with ``sections > 1`` sections are named
        ``f"{sample}_{i}"``.
    unit_scale
        Multiplies every coordinate (one cell diameter is ``10 * unit_scale`` units), so that code
        cannot rely on micrometres.
    expression
        Simulate a targeted panel (counts in ``X`` and ``layers["counts"]``) from the curated
        human gene sets (:func:`noa_omics.genesets.load`). With False, ``X`` has no genes.
    touching
        Probability that a tubule is placed touching an already placed one.
    sections
        Number of sections (one sample each); see ``sections_per_donor``.
    sections_per_donor
        Consecutive sections that come from the same donor. Donors alternate between
        ``condition`` ``"control"`` (even donor index) and ``"NOA"`` (odd).
    label_noise
        Fraction of cells whose ``noa_cell_type`` annotation is replaced by a random other type
        (annotation error); the simulated truth stays in ``truth_cell_type``.
    radius_range
        Range of tubule radii in cell diameters (Sertoli-cell-only tubules are 15 % smaller).
    occupancy
        Target fraction of the section area covered by tubules.

    Returns
    -------
    AnnData
        ``obsm["spatial"]`` (x, y); ``obs`` columns ``noa_cell_type`` (annotation),
        ``noa_cell_class``, ``truth_cell_type``, ``truth_tubule`` (tubule id, NA in the
        interstitium; peritubular myoid cells belong to their tubule's wall),
        ``truth_histology`` (the cell's tubule histology, NA in the interstitium), ``sample``,
        ``section``, ``donor``, ``condition``. ``uns["demo_spatial"]`` holds the parameters and
        ``"tubules"``: the truth per tubule (id, sample, histology, center_x, center_y, radius,
        semi-axes, angle, touching, cut).

    Examples
    --------
    >>> import noa_omics as noa
    >>> adata = noa.datasets.demo_spatial(seed=0, n_tubules=30, expression=False)
    >>> adata.obsm["spatial"].shape[1]
    2
    """
    _check_params(n_tubules, unit_scale, touching, sections, sections_per_donor, label_noise,
                  radius_range, occupancy)
    mixes = _section_mixes(histology_mix, sections, sections_per_donor)
    rng = np.random.default_rng(seed)
    section_seeds = rng.integers(0, 2**32 - 1, size=sections)

    frames, coords, tubule_tables = [], [], []
    for i in range(sections):
        name = sample if sections == 1 else f"{sample}_{i}"
        donor_index = i // sections_per_donor
        donor = "donor_0" if sections == 1 else f"donor_{donor_index}"
        condition = "control" if donor_index % 2 == 0 else "NOA"
        obs, xy, tubules = _simulate_section(
            np.random.default_rng(section_seeds[i]),
            n_tubules=n_tubules,
            mix=mixes[i],
            name=name,
            touching=touching,
            label_noise=label_noise,
            radius_range=radius_range,
            occupancy=occupancy,
        )
        obs["donor"] = donor
        obs["condition"] = condition
        tubules["donor"] = donor
        tubules["condition"] = condition
        frames.append(obs)
        coords.append(xy)
        tubule_tables.append(tubules)

    obs = pd.concat(frames, ignore_index=True)
    obs.index = pd.Index([f"cell_{k}" for k in range(len(obs))])
    xy = np.vstack(coords) * unit_scale
    tubules = pd.concat(tubule_tables, ignore_index=True)
    for col in ("center_x", "center_y", "radius", "semi_major", "semi_minor"):
        tubules[col] = tubules[col] * unit_scale

    obs = _finalise_obs(obs)
    if expression:
        X, var = _simulate_expression(np.random.default_rng(seed + 7919), obs)
        adata = AnnData(X=X, obs=obs, var=var)
        adata.layers["counts"] = X.copy()
    else:
        adata = AnnData(obs=obs)
    adata.obsm["spatial"] = xy
    adata.uns["demo_spatial"] = {
        "params": {
            "seed": int(seed),
            "n_tubules": int(n_tubules),
            "unit_scale": float(unit_scale),
            "cell_spacing": float(_CELL_SPACING * unit_scale),
            "touching": float(touching),
            "sections": int(sections),
            "sections_per_donor": int(sections_per_donor),
            "label_noise": float(label_noise),
            "radius_range": [float(r) for r in radius_range],
            "occupancy": float(occupancy),
            "expression": bool(expression),
        },
        "tubules": tubules,
    }
    return adata


# --------------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------------


def _check_params(n_tubules, unit_scale, touching, sections, sections_per_donor, label_noise,
                  radius_range, occupancy) -> None:
    if int(n_tubules) < 1:
        raise ValueError(f"`n_tubules` must be >= 1, got {n_tubules}.")
    if not np.isfinite(unit_scale) or unit_scale <= 0:
        raise ValueError(f"`unit_scale` must be a positive number, got {unit_scale}.")
    if not 0 <= touching <= 1:
        raise ValueError(f"`touching` is a probability in [0, 1], got {touching}.")
    if int(sections) < 1 or int(sections_per_donor) < 1:
        raise ValueError("`sections` and `sections_per_donor` must be >= 1.")
    if not 0 <= label_noise < 1:
        raise ValueError(f"`label_noise` must be in [0, 1), got {label_noise}.")
    lo, hi = radius_range
    if not 2 <= lo <= hi:
        raise ValueError(f"`radius_range` must be (low, high) with 2 <= low <= high, got {radius_range}.")
    if not 0.05 <= occupancy <= 0.7:
        raise ValueError(f"`occupancy` must be in [0.05, 0.7], got {occupancy}.")


def _normalise_mix(mix: Mapping[str, float]) -> dict[str, float]:
    unknown = set(mix) - set(HISTOLOGIES)
    if unknown:
        raise ValueError(f"unknown histology {sorted(unknown)} in `histology_mix`; use {list(HISTOLOGIES)}.")
    weights = np.array([float(mix.get(h, 0.0)) for h in HISTOLOGIES])
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("`histology_mix` needs non-negative fractions with a positive sum.")
    return dict(zip(HISTOLOGIES, weights / weights.sum()))


def _section_mixes(histology_mix, sections: int, sections_per_donor: int) -> list[dict[str, float]]:
    if histology_mix is None:
        if sections == 1:
            return [_normalise_mix(_DEFAULT_MIX)]
        mixes = []
        for i in range(sections):
            donor_index = i // sections_per_donor
            if donor_index % 2 == 0:
                mixes.append(_normalise_mix(_CONTROL_MIX))
            else:
                mixes.append(_normalise_mix(_NOA_MIXES[(donor_index // 2) % len(_NOA_MIXES)]))
        return mixes
    if isinstance(histology_mix, Mapping):
        return [_normalise_mix(histology_mix)] * sections
    mixes = [_normalise_mix(m) for m in histology_mix]
    if len(mixes) != sections:
        raise ValueError(f"`histology_mix` has {len(mixes)} mappings for {sections} sections; give one per section.")
    return mixes


def _draw_histologies(rng: np.random.Generator, n: int, mix: Mapping[str, float]) -> np.ndarray:
    """Histology per tubule with counts as close to the mix as possible (largest remainders)."""
    p = np.array([mix[h] for h in HISTOLOGIES])
    counts = np.floor(p * n).astype(int)
    rest = n - counts.sum()
    if rest:
        order = np.argsort(-(p * n - counts), kind="stable")
        counts[order[:rest]] += 1
    labels = np.repeat(np.array(HISTOLOGIES, dtype=object), counts)
    return rng.permutation(labels)


def _directional_radius(semi_a: float, semi_b: float, angle: float, direction: float) -> float:
    """Distance from an ellipse's centre to its boundary along ``direction`` (radians)."""
    phi = direction - angle
    return semi_a * semi_b / np.hypot(semi_b * np.cos(phi), semi_a * np.sin(phi))


def _place_tubules(rng, semi_a, semi_b, angle, touching, occupancy):
    """Centres (in cell diameters) of non-overlapping ellipses, some touching; returns (centres, width, touch flags)."""
    n = len(semi_a)
    area = float(np.sum(np.pi * semi_a * semi_b))
    width = np.sqrt(area / occupancy)
    gap = 2.0  # two wall layers between non-touching tubules
    for _attempt in range(50):
        centres = np.full((n, 2), np.nan)
        touch = np.zeros(n, dtype=bool)
        ok = True
        for i in range(n):
            placed = np.flatnonzero(np.isfinite(centres[:, 0]))
            done = False
            for _try in range(400):
                if placed.size and rng.random() < touching:
                    j = int(rng.choice(placed))
                    direction = rng.uniform(0, 2 * np.pi)
                    # walls in contact: at most one shared layer of wall cells between the epithelia
                    dist = (
                        _directional_radius(semi_a[j], semi_b[j], angle[j], direction)
                        + _directional_radius(semi_a[i], semi_b[i], angle[i], direction + np.pi)
                        + rng.uniform(0.0, 1.0)
                    )
                    candidate = centres[j] + dist * np.array([np.cos(direction), np.sin(direction)])
                    others = placed[placed != j]
                    is_touch = True
                else:
                    margin = 0.4 * semi_a[i]
                    candidate = rng.uniform(-margin, width + margin, size=2)
                    others = placed
                    is_touch = False
                if not (-0.5 * semi_a[i] <= candidate[0] <= width + 0.5 * semi_a[i]
                        and -0.5 * semi_a[i] <= candidate[1] <= width + 0.5 * semi_a[i]):
                    continue
                if others.size:
                    d = np.hypot(*(centres[others] - candidate).T)
                    if np.any(d < semi_a[others] + semi_a[i] + gap):
                        continue
                centres[i] = candidate
                touch[i] = is_touch
                if is_touch:
                    touch[j] = True
                done = True
                break
            if not done:
                ok = False
                break
        if ok:
            return centres, width, touch
        width *= 1.05
    raise RuntimeError("could not place the tubules; lower `occupancy`.")  # pragma: no cover


def _hex_lattice(rng, width: float, jitter: float = 0.12) -> np.ndarray:
    dy = np.sqrt(3) / 2
    ys = np.arange(0.0, width + 1e-9, dy)
    xs = np.arange(0.0, width + 1e-9, 1.0)
    gx, gy = np.meshgrid(xs, ys)
    gx = gx + (np.arange(len(ys)) % 2)[:, None] * 0.5
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    pts = pts + rng.normal(0.0, jitter, size=pts.shape)
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= width) & (pts[:, 1] >= 0) & (pts[:, 1] <= width)
    return pts[inside]


def _simulate_section(rng, *, n_tubules, mix, name, touching, label_noise, radius_range, occupancy):
    histology = _draw_histologies(rng, n_tubules, mix)
    radius = rng.uniform(*radius_range, size=n_tubules)
    radius = np.where(histology == "sertoli_cell_only", 0.85 * radius, radius)
    aspect = rng.uniform(0.75, 1.0, size=n_tubules)  # minor / major
    semi_a = radius / np.sqrt(aspect)
    semi_b = radius * np.sqrt(aspect)
    angle = rng.uniform(0, np.pi, size=n_tubules)
    lumen = np.where(histology == "sertoli_cell_only", 0.0, rng.uniform(0.2, 0.35, size=n_tubules))
    centres, width, touch = _place_tubules(rng, semi_a, semi_b, angle, touching, occupancy)

    pts = _hex_lattice(rng, width)
    # normalised elliptical radius to the nearest few tubules; keep the smallest
    k = min(6, n_tubules)
    _, idx = cKDTree(centres).query(pts, k=k)
    idx = idx.reshape(len(pts), k)
    dx = pts[:, 0, None] - centres[idx, 0]
    dy = pts[:, 1, None] - centres[idx, 1]
    c, s = np.cos(angle[idx]), np.sin(angle[idx])
    u = (c * dx + s * dy) / semi_a[idx]
    v = (-s * dx + c * dy) / semi_b[idx]
    rho_all = np.hypot(u, v)
    best = np.argmin(rho_all, axis=1)
    rows = np.arange(len(pts))
    tub = idx[rows, best]
    rho = rho_all[rows, best]
    r_eff = radius[tub]
    depth_abs = (1.0 - rho) * r_eff  # cell diameters from the basement membrane (inside)

    n = len(pts)
    cell_type = np.full(n, None, dtype=object)
    u01 = rng.random((n, 4))
    noise = rng.normal(0.0, 0.06, size=n)

    inside = rho < 1.0
    wall = (~inside) & (rho < 1.0 + 1.0 / r_eff)
    inter = ~(inside | wall)

    # wall: peritubular myoid cells
    cell_type[wall & (u01[:, 0] < 0.75)] = "peritubular_myoid"
    # interstitium
    keep_int = inter & (u01[:, 0] < 0.33)
    cum = np.cumsum(_INTERSTITIAL_P)
    which = np.searchsorted(cum, u01[:, 1] * cum[-1])
    cell_type[keep_int] = np.array(_INTERSTITIAL_TYPES, dtype=object)[which[keep_int]]

    # epithelium
    hist = histology[tub]
    rel = (1.0 - rho) / np.maximum(1.0 - lumen[tub], 1e-9) + noise  # 0 at wall, 1 at lumen
    in_lumen = rho < lumen[tub]
    sertoli = inside & ~in_lumen & (u01[:, 2] < np.where(depth_abs < 1.2, 0.35, 0.02))
    stage = np.searchsorted(np.array(_STAGE_BOUNDS), rel)  # 0 basal, 1 spermatocyte, 2 round, 3 elongating
    germ_type = np.array(["spermatogonia", "spermatocyte", "round_spermatid", "elongating_spermatid"],
                         dtype=object)[stage]
    germ_type[(stage == 0) & (u01[:, 3] < 0.25)] = "SSC"
    germ = inside & ~in_lumen & ~sertoli

    is_sco = hist == "sertoli_cell_only"
    is_hypo = hist == "hypospermatogenesis"
    is_ma = hist == "maturation_arrest"
    keep_germ = germ & ~is_sco
    keep_germ &= ~(is_hypo & (u01[:, 0] >= 0.3))
    arrested = is_ma & (stage >= 2)
    keep_germ &= ~(arrested & (u01[:, 0] >= 0.35))
    germ_type = np.where(arrested, "spermatocyte", germ_type)
    cell_type[keep_germ] = germ_type[keep_germ]
    cell_type[sertoli & ~is_sco] = "sertoli"
    # SCO: columnar Sertoli ring one to two cells deep, empty lumen
    sco_ring = inside & is_sco & (depth_abs < 1.7) & (u01[:, 2] < 0.85)
    cell_type[sco_ring] = "sertoli"

    keep = cell_type != None  # noqa: E711 (object array)
    pts, cell_type, tub, wall_or_in = pts[keep], cell_type[keep], tub[keep], (inside | wall)[keep]

    truth_tubule = np.where(wall_or_in, tub, -1)
    tub_ids = np.array([f"{name}:t{i:04d}" for i in range(n_tubules)], dtype=object)
    # tubules cut by the section edge: any part of the ellipse outside the window
    cut = (centres[:, 0] - semi_a < 0) | (centres[:, 0] + semi_a > width) | \
          (centres[:, 1] - semi_a < 0) | (centres[:, 1] + semi_a > width)
    n_cells = np.bincount(truth_tubule[truth_tubule >= 0], minlength=n_tubules)

    annotated = cell_type.copy()
    flip = rng.random(len(annotated)) < label_noise
    if flip.any():
        offsets = rng.integers(1, len(CELL_TYPES), size=int(flip.sum()))
        codes = np.array([CELL_TYPES.index(t) for t in cell_type[flip]])
        annotated[flip] = np.array(CELL_TYPES, dtype=object)[(codes + offsets) % len(CELL_TYPES)]

    obs = pd.DataFrame(
        {
            "noa_cell_type": annotated,
            "truth_cell_type": cell_type,
            "truth_tubule": np.where(truth_tubule >= 0, tub_ids[np.maximum(truth_tubule, 0)], None),
            "truth_histology": np.where(truth_tubule >= 0, histology[np.maximum(truth_tubule, 0)], None),
            "sample": name,
            "section": name,
        }
    )
    tubules = pd.DataFrame(
        {
            "tubule": tub_ids,
            "sample": name,
            "histology": histology,
            "center_x": centres[:, 0] * _CELL_SPACING,
            "center_y": centres[:, 1] * _CELL_SPACING,
            "radius": radius * _CELL_SPACING,
            "semi_major": semi_a * _CELL_SPACING,
            "semi_minor": semi_b * _CELL_SPACING,
            "angle": angle,
            "touching": touch,
            "cut": cut,
            "n_cells": n_cells,
        }
    )
    # drop tubules that kept no cell inside the window
    tubules = tubules[tubules["n_cells"] > 0].reset_index(drop=True)
    return obs, pts * _CELL_SPACING, tubules


def _finalise_obs(obs: pd.DataFrame) -> pd.DataFrame:
    obs = obs.copy()
    obs["noa_cell_class"] = pd.Categorical(
        [CELL_TYPE_TO_CLASS[t] for t in obs["noa_cell_type"]],
        categories=list(CELL_CLASSES),
    )
    for col in ("noa_cell_type", "truth_cell_type"):
        obs[col] = pd.Categorical(obs[col], categories=list(CELL_TYPES))
    obs["truth_histology"] = pd.Categorical(obs["truth_histology"], categories=list(HISTOLOGIES))
    obs["truth_tubule"] = pd.Categorical(obs["truth_tubule"])
    for col in ("sample", "section", "donor", "condition"):
        obs[col] = pd.Categorical(obs[col])
    return obs


# --------------------------------------------------------------------------------------------
# expression
# --------------------------------------------------------------------------------------------

#: Gene sets used for the panel and the number of genes taken from each (in library order).
_PANEL_SETS: dict[str, int] = {
    **{f"marker_{t}": 12 for t in CELL_TYPES if t != "other"},
    "niche_btb": 20,
    "sertoli_immaturity": 15,
    "apoptosis_intrinsic": 10,
    "apoptosis_extrinsic": 8,
    "apoptosis_checkpoint": 8,
    "apoptosis_execution": 8,
    "apoptosis_antiapoptotic": 8,
    "stress_oxidative": 5,
    "stress_heat": 5,
    "inflammation": 8,
    "endocrine_leydig_steroidogenesis": 6,
    "endocrine_sertoli_response": 6,
    "leydig_immaturity": 5,
    "epigenetic_regulation": 5,
    "control_dissociation": 5,
}

_APOPTOSIS_SETS = ("apoptosis_intrinsic", "apoptosis_extrinsic", "apoptosis_checkpoint", "apoptosis_execution")


def _panel(library: Any) -> tuple[list[str], dict[str, list[str]]]:
    genes: list[str] = []
    members: dict[str, list[str]] = {}
    for name, k in _PANEL_SETS.items():
        if name not in library:
            continue
        chosen = [g for g in library[name].genes][:k]
        members[name] = chosen
        genes.extend(chosen)
    genes = list(dict.fromkeys(genes))
    return genes, members


def _simulate_expression(rng: np.random.Generator, obs: pd.DataFrame) -> tuple[sp.csr_matrix, pd.DataFrame]:
    """Negative-binomial counts of a targeted panel given the true cell types and tubule histology."""
    from ..genesets import load  # upstream package; imported lazily so datasets stays light

    library = load("human")
    genes, members = _panel(library)
    if not genes:
        raise RuntimeError("the curated human gene-set library yielded no panel genes.")  # pragma: no cover
    col = {g: j for j, g in enumerate(genes)}
    types = list(CELL_TYPES)
    mu = np.full((len(types), len(genes)), 0.05)

    def _set(name: str, rows: Sequence[str], value: float) -> None:
        for g in members.get(name, ()):
            for t in rows:
                mu[types.index(t), col[g]] = max(mu[types.index(t), col[g]], value)

    for t in types:
        if t != "other":
            _set(f"marker_{t}", [t], 4.0)
    _set("niche_btb", ["sertoli"], 2.0)
    _set("sertoli_immaturity", ["sertoli"], 0.3)
    for name in _APOPTOSIS_SETS + ("apoptosis_antiapoptotic",):
        _set(name, types, 0.3)
        _set(name, list(GERM_STAGES), 0.6)
    _set("inflammation", types, 0.2)
    _set("inflammation", ["macrophage", "t_cell"], 1.5)
    _set("endocrine_leydig_steroidogenesis", ["leydig"], 3.0)
    _set("endocrine_sertoli_response", ["sertoli"], 1.5)
    _set("leydig_immaturity", ["leydig"], 0.3)
    for name in ("stress_oxidative", "stress_heat", "epigenetic_regulation", "control_dissociation"):
        _set(name, types, 0.3)

    truth = obs["truth_cell_type"].astype(str).to_numpy()
    rows = np.array([types.index(t) for t in truth])
    lam = mu[rows]  # cells x genes
    hist = obs["truth_histology"].astype(object).to_numpy()

    def _scale(mask: np.ndarray, name: str, factor: float) -> None:
        cols = [col[g] for g in members.get(name, ())]
        if cols and mask.any():
            lam[np.ix_(mask, cols)] *= factor

    sertoli = truth == "sertoli"
    germ = np.isin(truth, GERM_STAGES)
    sco = hist == "sertoli_cell_only"
    # simulated niche failure in SCO tubules: barrier genes down, immaturity programme up
    # (iNOA Sertoli cells are immature, Zhao et al. 2020)
    _scale(sertoli & sco, "niche_btb", 0.25)
    _scale(sertoli & sco, "sertoli_immaturity", 6.0)
    _scale(sertoli & (hist == "maturation_arrest"), "niche_btb", 0.6)
    _scale(sertoli & (hist == "maturation_arrest"), "sertoli_immaturity", 2.0)
    for name in _APOPTOSIS_SETS:
        _scale(germ & (hist == "maturation_arrest"), name, 2.5)
        _scale(germ & (hist == "hypospermatogenesis"), name, 1.6)

    size = rng.lognormal(0.0, 0.3, size=len(obs))[:, None]
    theta = 5.0
    counts = rng.poisson(rng.gamma(theta, lam * size / theta))
    X = sp.csr_matrix(counts.astype(np.float32))
    var = pd.DataFrame(index=pd.Index(genes, name="gene"))
    var["panel_sets"] = [",".join(n for n, gs in members.items() if g in gs) for g in genes]
    return X, var


#: Tubule histology mix of a section from a donor of each (single-cell) histology: the donor's own
#: pattern dominates, with the focal mixture seen in NOA biopsies (mixed atrophy).
_DONOR_MIXES: dict[str, dict[str, float]] = {
    "normal": {"normal": 0.85, "hypospermatogenesis": 0.15, "maturation_arrest": 0.0, "sertoli_cell_only": 0.0},
    "hypospermatogenesis": {"normal": 0.25, "hypospermatogenesis": 0.6, "maturation_arrest": 0.1,
                            "sertoli_cell_only": 0.05},
    "maturation_arrest": {"normal": 0.1, "hypospermatogenesis": 0.1, "maturation_arrest": 0.7,
                          "sertoli_cell_only": 0.1},
    "sertoli_cell_only": {"normal": 0.0, "hypospermatogenesis": 0.05, "maturation_arrest": 0.05,
                          "sertoli_cell_only": 0.9},
}


def demo_spatial_for_donors(donors: pd.DataFrame, seed: int = 0, **kwargs: Any) -> AnnData:
    """One simulated section per donor, with a tubule histology mix that follows the donor's histology.

    Used by the demo pipeline so that sections and single-cell samples share donor ids, and the
    spatial niche-collapse index can enter the donor's multi-hit ``niche`` axis.

    Parameters
    ----------
    donors
        One row per donor with columns ``donor``, ``condition`` and ``histology`` (a vocabulary
        histology), e.g. ``demo_testis(...).uns["demo"]["donors"]``.
    seed
        Random seed.
    **kwargs
        Passed to :func:`demo_spatial` (e.g. ``n_tubules``, ``expression``); ``sections``,
        ``sections_per_donor``, ``histology_mix`` and ``sample`` are set here.

    Returns
    -------
    AnnData as :func:`demo_spatial`, with ``obs["sample"]``, ``obs["section"]`` and ``obs["donor"]`` equal
    to the donor id and ``obs["condition"]`` the donor's condition.
    """
    missing = [c for c in ("donor", "condition", "histology") if c not in donors.columns]
    if missing:
        raise KeyError(f"`donors` lacks column(s) {missing}; pass a table with donor, condition and histology.")
    if len(donors) == 0:
        raise ValueError("`donors` is empty; give at least one donor.")
    unknown = sorted(set(donors["histology"].astype(str)) - set(_DONOR_MIXES))
    if unknown:
        raise ValueError(f"unknown histology {unknown} in `donors`; use one of {list(_DONOR_MIXES)}.")
    for fixed in ("sections", "sections_per_donor", "histology_mix", "sample"):
        if fixed in kwargs:
            raise ValueError(f"`{fixed}` is set by demo_spatial_for_donors; do not pass it.")
    ids = donors["donor"].astype(str).tolist()
    conditions = donors["condition"].astype(str).tolist()
    mixes = [_DONOR_MIXES[h] for h in donors["histology"].astype(str)]
    adata = demo_spatial(seed, sections=len(ids), histology_mix=mixes, sample="section", **kwargs)
    rename = {f"section_{i}": donor for i, donor in enumerate(ids)} if len(ids) > 1 else {"section": ids[0]}
    by_section = adata.obs["sample"].astype(str).map(rename)
    condition_of = dict(zip(ids, conditions))
    for column in ("sample", "section", "donor"):
        adata.obs[column] = pd.Categorical(by_section, categories=ids)
    adata.obs["condition"] = pd.Categorical(by_section.map(condition_of))
    tubules = adata.uns["demo_spatial"]["tubules"]
    tubules["donor"] = tubules["sample"].astype(str).map(rename)
    tubules["condition"] = tubules["donor"].map(condition_of)
    tubules["sample"] = tubules["donor"]
    return adata
