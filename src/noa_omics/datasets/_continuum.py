r"""Independent low-depth testis simulator: a germ-cell continuum with ambient RNA (:func:`continuum_testis`).

Written for benchmarking annotation at bead/bin depth; it shares no code or parameters with
:func:`noa.datasets.demo_testis`, so a method tuned on one is checked on the other.

Generative model
----------------
Genes are the union of the curated ``marker_<type>`` sets plus anonymous background genes
(``NC00001``...). For cell :math:`c` with type :math:`k` (germ cells: pseudotime :math:`t_c`):

.. math::

    \log \theta_{cg} &= b_g + D_{kg} + \sum_s w_s(t_c)\,(S_{sg} + D_{sg}) + r_g t_c\,[c\ \text{germ}] \\
    p_{cg} &= \theta_{cg} / \textstyle\sum_{g'} \theta_{cg'}, \qquad
    \mu_{cg} = L_c\,\bigl((1-\rho_c)\,\bar p^{\text{mix}}_{cg} + \rho_c\, a_g\bigr) \\
    Y_{cg} &\sim \text{Gamma-Poisson}(\mu_{cg}, \phi = 0.3)

- :math:`b_g \sim \mathcal N(0, 1.2^2)` background, :math:`\mathcal N(0.5, 1)` marker genes.
- :math:`D_{kg}`: type differences on ~12% of background genes, :math:`\mathcal N(0, 0.8^2)`;
  marker genes of type :math:`k` get a log fold :math:`\mathcal U(\log 3, \log 30)`, and 25% of
  each curated set is left *unexpressed* (fold 0): curated lists hold weak markers.
- Germ continuum: stage programmes overlap with Laplace-shaped weights
  :math:`w_s(t) \propto \exp(-|t - c_s| / 0.09)` around stage centres (stage boundaries at
  0.14, 0.36, 0.62, 0.82), a shared germ programme, and linear ramp genes :math:`r_g t`.
- :math:`\rho_c \sim \mathcal U(\text{ambient})` ambient fraction; the ambient profile :math:`a`
  is the depth-weighted mean profile of all cells (spermatocyte/spermatid-rich, as in real testis).
- :math:`L_c \sim \text{LogNormal}(\log(\text{depth}\cdot m_k), \text{depth\_sd}^2)` with per-type
  multipliers :math:`m_k` (spermatocytes 1.5x, T cells 0.5x, ...).
- ``spatial=True``: cells on a jittered 10 um lattice inside circular tubules (germ stages from
  the basement membrane to the lumen, Sertoli at the base, a myoid ring) and interstitium;
  each bead mixes its own cell's profile with its lattice neighbours' (``bead_mixing``):
  :math:`\bar p^{\text{mix}}_c = (1-m) p_c + m\,\text{mean}_{j \in N(c)} p_j`.
- ``panel=n``: keep only ``n`` genes (a fraction ``panel_marker_fraction`` of each marker set
  plus background genes), as on an imaging panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from scipy.spatial import cKDTree

from .._vocabulary import CELL_TYPE_TO_CLASS, CELL_TYPES, GERM_STAGES

__all__ = ["continuum_testis", "express_section", "thin_counts"]

_EDGES = (0.0, 0.14, 0.36, 0.62, 0.82, 1.0)
_CENTRES = tuple((a + b) / 2 for a, b in zip(_EDGES[:-1], _EDGES[1:]))
_SOMATIC = {"sertoli": 0.36, "leydig": 0.18, "peritubular_myoid": 0.15, "endothelial": 0.13, "macrophage": 0.11,
            "t_cell": 0.07}
_DEPTH_MULT = {"SSC": 0.8, "spermatogonia": 1.0, "spermatocyte": 1.5, "round_spermatid": 1.2,
               "elongating_spermatid": 0.8, "sertoli": 1.0, "leydig": 0.9, "peritubular_myoid": 0.7,
               "endothelial": 0.7, "macrophage": 0.8, "t_cell": 0.5}
_TYPES = tuple(t for t in CELL_TYPES if t != "other")


def _markers(species: str) -> dict[str, list[str]]:
    from ..genesets import load

    library = load(species)
    return {t: list(library[f"marker_{t}"].genes) for t in _TYPES}


def _universe(rng, species: str, n_genes: int):
    markers = _markers(species)
    marker_genes = list(dict.fromkeys(g for t in _TYPES for g in markers[t]))
    n_background = max(n_genes - len(marker_genes), 50)
    genes = marker_genes + [f"NC{i:05d}" for i in range(n_background)]
    n_all = len(genes)
    is_marker = np.arange(n_all) < len(marker_genes)
    base = np.where(is_marker, rng.normal(0.5, 1.0, n_all), rng.normal(0.0, 1.2, n_all))
    index = {g: i for i, g in enumerate(genes)}
    shift = np.zeros((len(_TYPES), n_all))
    for k, t in enumerate(_TYPES):
        de = (~is_marker) & (rng.random(n_all) < 0.12)
        shift[k, de] = rng.normal(0.0, 0.8, de.sum())
        members = [index[g] for g in markers[t]]
        fold = rng.uniform(np.log(3), np.log(30), len(members))
        fold[rng.random(len(members)) < 0.25] = 0.0
        shift[k, members] += fold
    germ_shared = (~is_marker) & (rng.random(n_all) < 0.04)
    for k in range(len(GERM_STAGES)):
        shift[k, germ_shared] += 1.2
    ramp = np.where((~is_marker) & (rng.random(n_all) < 0.05), rng.normal(0, 1.5, n_all), 0.0)
    return genes, base, shift, ramp


def _germ_weights(t: np.ndarray) -> np.ndarray:
    w = np.exp(-np.abs(t[:, None] - np.asarray(_CENTRES)[None, :]) / 0.09)
    return w / w.sum(axis=1, keepdims=True)


def _stage(t: np.ndarray) -> np.ndarray:
    return np.array(GERM_STAGES, dtype=object)[np.clip(np.searchsorted(_EDGES, t, side="right") - 1, 0, 4)]


def _profiles(types: np.ndarray, t: np.ndarray, base, shift, ramp) -> np.ndarray:
    idx = {x: i for i, x in enumerate(_TYPES)}
    log_theta = np.empty((len(types), len(base)))
    germ = np.isin(types, GERM_STAGES)
    som = ~germ
    if som.any():
        log_theta[som] = base + shift[[idx[x] for x in types[som]]]
    if germ.any():
        w = _germ_weights(t[germ])
        log_theta[germ] = base + w @ shift[: len(GERM_STAGES)] + t[germ, None] * ramp[None, :]
    log_theta -= log_theta.max(axis=1, keepdims=True)
    theta = np.exp(log_theta)
    return theta / theta.sum(axis=1, keepdims=True)


def _composition(rng, n: int, germ_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    n_germ = int(round(n * germ_fraction))
    t = np.full(n, np.nan)
    t[:n_germ] = rng.beta(1.1, 1.1, n_germ)
    som = list(_SOMATIC)
    p = np.array([_SOMATIC[s] for s in som])
    types = np.empty(n, dtype=object)
    types[:n_germ] = _stage(t[:n_germ])
    types[n_germ:] = rng.choice(som, n - n_germ, p=p / p.sum())
    order = rng.permutation(n)
    return types[order], t[order]


def _spatial_layout(rng, n: int, spacing: float = 10.0):
    """Cells on a jittered lattice: circular tubules (radial germ order) in interstitium."""
    side = spacing * np.sqrt(n)
    xs = np.arange(0, side, spacing)
    grid = np.array([(x + (j % 2) * spacing / 2, y) for j, y in enumerate(xs) for x in xs])[:n]
    grid += rng.normal(0, 0.12 * spacing, grid.shape)
    radius = rng.uniform(7, 11, 64) * spacing
    centres = []
    for _ in range(2000):  # non-overlapping tubules by rejection
        c = rng.uniform(0, side, 2)
        r = radius[len(centres) % 64]
        if all(np.hypot(*(c - c2)) > r + r2 + 2.5 * spacing for c2, r2 in centres):
            centres.append((c, r))
    types = np.empty(len(grid), dtype=object)
    t = np.full(len(grid), np.nan)
    tubule = np.full(len(grid), -1)
    rho = np.full(len(grid), np.inf)
    for i, (c, r) in enumerate(centres):
        d = np.hypot(*(grid - c).T) / r
        closer = d < rho
        rho[closer], tubule[closer] = d[closer], i
    wall = (rho >= 1.0) & (rho < 1.0 + 1.3 * spacing / np.array([centres[i][1] for i in tubule.clip(0)]))
    inside = rho < 1.0
    inter = ~inside & ~wall
    types[wall] = "peritubular_myoid"
    som = ["leydig", "endothelial", "macrophage", "t_cell"]
    p = np.array([0.4, 0.3, 0.2, 0.1])
    types[inter] = rng.choice(som, int(inter.sum()), p=p)
    r_in = rho[inside]
    tt = np.clip(1.0 - (r_in - 0.25) / 0.72 + rng.normal(0, 0.07, r_in.size), 0.0, 0.999)
    sertoli = (r_in > 0.85) & (rng.random(r_in.size) < 0.35)
    inside_types = _stage(tt)
    inside_types[sertoli] = "sertoli"
    types[inside] = inside_types
    t_in = np.where(sertoli, np.nan, tt)
    t[inside] = t_in
    return grid, types, t, np.where(inside | wall, tubule, -1)


def _sample_counts(rng, types, t, coords, base, shift, ramp, *, depth, depth_sd, ambient, bead_mixing, dispersion,
                  spacing: float = 10.0):
    n = len(types)
    p = _profiles(types, t, base, shift, ramp)
    if coords is not None and bead_mixing > 0:
        tree = cKDTree(coords)
        pairs = tree.query_pairs(1.5 * spacing, output_type="ndarray")
        adj = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)).tocsr()
        adj = adj + adj.T
        deg = np.asarray(adj.sum(axis=1)).ravel()
        neigh = sp.diags(np.divide(1.0, deg, out=np.zeros(n), where=deg > 0)) @ adj @ p
        m = np.where(deg > 0, bead_mixing, 0.0)[:, None]
        p = (1 - m) * p + m * neigh
    mult = np.array([_DEPTH_MULT.get(x, 1.0) for x in types])
    library = rng.lognormal(np.log(depth * mult), depth_sd)
    ambient_profile = (library[:, None] * p).sum(axis=0)
    ambient_profile /= ambient_profile.sum()
    rho_c = rng.uniform(*ambient, n)
    mu = library[:, None] * ((1 - rho_c[:, None]) * p + rho_c[:, None] * ambient_profile[None, :])
    return rng.poisson(rng.gamma(1.0 / dispersion, mu * dispersion)), rho_c


def express_section(section: AnnData, depth: float, *, spacing: float | None = None, bead_mixing: float = 0.25,
                    ambient: tuple[float, float] = (0.05, 0.15), depth_sd: float = 0.5, n_genes: int = 2000,
                    seed: int = 0) -> AnnData:
    """Counts at ``depth`` for a section layout with ``obs["truth_cell_type"]`` and ``obsm["spatial"]``.

    Gives, e.g., :func:`noa.datasets.demo_spatial` geometry and histology this module's expression
    model: germ cells get a pseudotime drawn uniformly within their stage's bin; each bead mixes
    with its neighbours within 1.5 ``spacing`` (default: the median nearest-neighbour distance).
    Other cells (``other``) are given a random somatic profile. Returns a copy with counts in ``X``.
    """
    rng = np.random.default_rng(seed)
    genes, base, shift, ramp = _universe(rng, "human", n_genes)
    types = section.obs["truth_cell_type"].astype(str).to_numpy().astype(object)
    types = np.where(types == "other", rng.choice(list(_SOMATIC), len(types)), types)
    t = np.full(len(types), np.nan)
    for i, stage in enumerate(GERM_STAGES):
        member = types == stage
        t[member] = rng.uniform(_EDGES[i], _EDGES[i + 1], member.sum())
    coords = np.asarray(section.obsm["spatial"], dtype=np.float64)
    if spacing is None:
        spacing = float(np.median(cKDTree(coords).query(coords, k=2)[0][:, 1]))
    counts, rho_c = _sample_counts(rng, types, t, coords, base, shift, ramp, depth=depth, depth_sd=depth_sd,
                                   ambient=ambient, bead_mixing=bead_mixing, dispersion=0.3, spacing=spacing)
    obs = section.obs.copy()
    obs["truth_pseudotime"] = t
    obs["ambient_fraction"] = rho_c
    out = AnnData(X=sp.csr_matrix(counts.astype(np.float32)), obs=obs, var=pd.DataFrame(index=genes))
    out.obsm["spatial"] = coords
    return out


def continuum_testis(
    n_cells: int = 3000,
    *,
    depth: float = 250.0,
    depth_sd: float = 0.5,
    ambient: tuple[float, float] = (0.05, 0.15),
    n_genes: int = 2000,
    panel: int | None = None,
    panel_marker_fraction: float = 1.0,
    spatial: bool = False,
    bead_mixing: float = 0.25,
    germ_fraction: float = 0.45,
    dispersion: float = 0.3,
    species: str = "human",
    seed: int = 0,
) -> AnnData:
    """Simulated testis cells (or beads) at a chosen depth with ambient RNA; see the module docstring.

    Returns raw counts (CSR) with ``obs`` ``truth_cell_type``, ``truth_cell_class``,
    ``truth_pseudotime``, ``ambient_fraction``, ``n_counts`` and, with ``spatial=True``,
    ``obsm["spatial"]`` (um) and ``obs["truth_tubule"]``. ``uns["continuum"]`` holds the parameters.
    """
    rng = np.random.default_rng(seed)
    genes, base, shift, ramp = _universe(rng, species, n_genes)
    if spatial:
        coords, types, t, tubule = _spatial_layout(rng, n_cells)
    else:
        types, t = _composition(rng, n_cells, germ_fraction)
        coords, tubule = None, None
    counts, rho_c = _sample_counts(rng, types, t, coords if spatial else None, base, shift, ramp, depth=depth,
                                   depth_sd=depth_sd, ambient=ambient, bead_mixing=bead_mixing, dispersion=dispersion)
    n = len(types)
    keep = np.arange(len(genes))
    if panel is not None:
        keep = _panel_genes(rng, genes, species, panel, panel_marker_fraction)
    x = sp.csr_matrix(counts[:, keep].astype(np.float32))
    obs = pd.DataFrame(
        {
            "truth_cell_type": pd.Categorical(types, categories=list(CELL_TYPES)),
            "truth_cell_class": [CELL_TYPE_TO_CLASS[x] for x in types],
            "truth_pseudotime": t,
            "ambient_fraction": rho_c,
            "n_counts": np.asarray(x.sum(axis=1)).ravel(),
        },
        index=[f"cell{i:06d}" for i in range(n)],
    )
    adata = AnnData(X=x, obs=obs, var=pd.DataFrame(index=[genes[i] for i in keep]))
    if spatial:
        adata.obsm["spatial"] = coords
        adata.obs["truth_tubule"] = pd.array(np.where(tubule >= 0, tubule, -1), dtype="Int64")
        adata.obs.loc[adata.obs["truth_tubule"] < 0, "truth_tubule"] = pd.NA
    adata.uns["continuum"] = {"depth": depth, "depth_sd": depth_sd, "ambient": list(ambient), "seed": seed,
                              "panel": panel, "spatial": spatial, "bead_mixing": bead_mixing}
    return adata


def _panel_genes(rng, genes, species, size, marker_fraction) -> np.ndarray:
    markers = _markers(species)
    index = {g: i for i, g in enumerate(genes)}
    chosen: list[int] = []
    for t in _TYPES:
        members = [index[g] for g in markers[t]]
        n_keep = int(round(marker_fraction * len(members)))
        chosen.extend(rng.permutation(members)[:n_keep].tolist())
    chosen = list(dict.fromkeys(chosen))
    background = [i for i, g in enumerate(genes) if g.startswith("NC")]
    n_bg = max(0, size - len(chosen))
    chosen += rng.choice(background, min(n_bg, len(background)), replace=False).tolist()
    return np.sort(np.array(chosen))


def thin_counts(adata: AnnData, depth: float, *, seed: int = 0) -> AnnData:
    """A copy with counts binomially downsampled so the median cell has ``depth`` counts.

    Every count is kept with probability :math:`\\min(1, \\text{depth} / \\text{median}_c n_c)`, so the
    log-normal spread of depths is preserved.
    """
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix(adata.X, copy=True)
    totals = np.asarray(x.sum(axis=1)).ravel()
    keep = min(1.0, float(depth) / float(np.median(totals[totals > 0])))
    x.data = rng.binomial(np.rint(x.data).astype(np.int64), keep).astype(np.float32)
    x.eliminate_zeros()
    out = adata.copy()
    out.X = x
    if "n_counts" in out.obs:
        out.obs["n_counts"] = np.asarray(x.sum(axis=1)).ravel()
    return out
