r"""Simulated single-cell testis cohort with planted ground truth (:func:`demo_testis`).

Generative model
----------------
For cell :math:`c` of donor :math:`d` with cell type :math:`k` and gene :math:`g`:

.. math::

    \eta_{cg} &= b_g + \Delta_{k g} + \varepsilon_{dg} + \sum_p \pi_{p}(c)\, \lambda_{pg} \\
    \mu_{cg}  &= L_c \, \frac{m_{cg} e^{\eta_{cg}}}{\sum_{g'} e^{\eta_{cg'}}} \\
    Y_{cg}    &\sim \operatorname{NB}(\mu_{cg}, \phi_g), \qquad
    \operatorname{Var} Y_{cg} = \mu_{cg} + \phi_g \mu_{cg}^2

- :math:`b_g`: gene baseline (log abundance; housekeeping high, programme genes low).
- :math:`\Delta_{kg}`: cell-type profile: a type-specific shift of every gene,
  :math:`\mathcal N(0, 0.5^2)`, plus the type's marker programme (:math:`\log` fold
  :math:`\mathcal U(\log 6, \log 20)` on ``marker_<type>`` genes). Germ cells carry a pseudotime
  :math:`t \in [0, 1]` and :math:`\Delta_{\cdot g}(t) = \sum_s w_s(t) \Delta_{sg}`, with Gaussian
  kernel weights :math:`w_s(t) \propto \exp(-(t - c_s)^2 / 2\sigma^2)` (:math:`\sigma = 0.12`)
  around the stage centres, so markers ramp smoothly and are also expressed, lower, in the
  neighbouring stages.
- :math:`\varepsilon_{dg} \sim \mathcal N(0, 0.2^2)`: donor random effect (log-normal per donor x gene).
- :math:`\pi_p(c)\lambda_{pg}`: programmes switched on in cell :math:`c` (apoptosis, stress,
  endocrine, niche, inflammation, epigenetic, dissociation) with log fold :math:`\lambda_{pg}`.
- :math:`m_{cg} \in \{0, 1\}`: hard zeros (XIST in 46,XY donors; deleted AZF genes).
- :math:`L_c \sim \operatorname{LogNormal}(\log M_k, 0.5^2)`: library size with type median
  :math:`M_k` between 1,200 and 4,500 UMI.
- :math:`\phi_g \sim \mathcal U(0.2, 0.5)`: gene dispersion. Sampled as a gamma-Poisson mixture.

``other`` cells are doublet-like: the mean of the profiles of two cells of the donor, with the sum
of their library sizes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._validation import check_positive_int, check_species
from .._vocabulary import CELL_CLASSES, CELL_TYPE_TO_CLASS, CELL_TYPES, GERM_STAGES
from ._donors import DonorSpec, default_cohort
from ._programmes import (
    AZF_REGIONS,
    XIST,
    Y_BROAD,
    Y_GERM,
    Programmes,
    background_names,
    housekeeping,
    load_programmes,
    marker_cell_types,
    mitochondrial,
)

#: Pseudotime bin edges of the germ stages (SSC, spermatogonia, spermatocyte, round, elongating).
STAGE_EDGES: tuple[float, ...] = (0.0, 0.12, 0.30, 0.58, 0.80, 1.0)
STAGE_CENTRES: tuple[float, ...] = tuple((a + b) / 2 for a, b in zip(STAGE_EDGES[:-1], STAGE_EDGES[1:]))
KERNEL_WIDTH = 0.12

SOMATIC_TYPES: tuple[str, ...] = tuple(t for t in CELL_TYPES if t not in GERM_STAGES and t != "other")
#: Relative abundance of the somatic types (before donor composition multipliers).
SOMATIC_WEIGHTS: dict[str, float] = {
    "sertoli": 0.36,
    "leydig": 0.20,
    "peritubular_myoid": 0.16,
    "endothelial": 0.14,
    "macrophage": 0.09,
    "t_cell": 0.05,
}
#: Median library size (UMI) per somatic type and per germ stage.
LIBRARY_MEDIAN: dict[str, float] = {
    "SSC": 2500.0,
    "spermatogonia": 3000.0,
    "spermatocyte": 4500.0,
    "round_spermatid": 3500.0,
    "elongating_spermatid": 1800.0,
    "sertoli": 2500.0,
    "leydig": 3000.0,
    "peritubular_myoid": 2500.0,
    "endothelial": 2500.0,
    "macrophage": 2000.0,
    "t_cell": 1200.0,
}

PARAMS: dict[str, float] = {
    "n_background": 1500,
    "library_sdlog": 0.5,
    "donor_effect_sd": 0.2,
    "type_shift_sd": 0.5,
    "marker_logfold_low": float(np.log(6.0)),
    "marker_logfold_high": float(np.log(20.0)),
    "dispersion_low": 0.2,
    "dispersion_high": 0.5,
    "kernel_width": KERNEL_WIDTH,
    "other_fraction": 0.02,
}

_LN2 = float(np.log(2.0))


def _unique(genes: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(genes))


def stage_of(t: np.ndarray) -> np.ndarray:
    """Germ stage (index into ``GERM_STAGES``) of pseudotime values (bins of :data:`STAGE_EDGES`)."""
    idx = np.searchsorted(np.asarray(STAGE_EDGES[1:-1]), t, side="right")
    return idx.astype(int)


class _Universe:
    """Gene universe, gene-level parameters and programme index arrays."""

    def __init__(self, programmes: Programmes, rng: np.random.Generator, n_background: int):
        species = programmes.species
        self.species = species
        set_genes = _unique(g for genes in programmes.sets.values() for g in genes)
        y_genes = _unique(
            list(Y_BROAD[species]) + list(Y_GERM[species]) + [g for r in AZF_REGIONS[species].values() for g in r]
        )
        hk = list(housekeeping(species))
        mito = list(mitochondrial(species))
        named = _unique(set_genes + [XIST[species]] + y_genes + hk + mito)
        n_bg = max(n_background - len(hk) - len(mito), 0)  # the background includes housekeeping + mito
        genes = _unique(named + list(background_names(n_bg, species)))
        self.genes = pd.Index(genes)
        self.n = len(genes)
        self.pos = {g: i for i, g in enumerate(genes)}
        self.programmes = programmes

        gene_class = np.full(self.n, "background", dtype=object)
        gene_class[self.idx(hk)] = "housekeeping"
        gene_class[self.idx(mito)] = "mitochondrial"
        gene_class[self.idx(set_genes)] = "gene_set"
        gene_class[self.idx(y_genes)] = "chrY"
        gene_class[self.idx([XIST[species]])] = "XIST"
        self.gene_class = gene_class

        # gene baselines (log abundance, up to a constant)
        base = rng.normal(0.0, 1.2, self.n)
        is_hk = gene_class == "housekeeping"
        base[is_hk] = rng.normal(3.5, 0.7, is_hk.sum())
        ribo = np.array([g.upper().startswith(("RPL", "RPS")) for g in genes])
        base[ribo] += 1.0
        is_mt = gene_class == "mitochondrial"
        base[is_mt] = rng.normal(3.0, 0.5, is_mt.sum())
        is_set = (gene_class == "gene_set") | (gene_class == "chrY")
        base[is_set] = rng.normal(-0.5, 0.8, is_set.sum())
        marker_genes = self.idx(g for t in marker_cell_types() for g in programmes.marker(t))
        base[marker_genes] = rng.normal(-2.0, 0.6, len(marker_genes))
        base[self.idx([XIST[species]])] = 4.0  # XIST is among the most abundant transcripts when expressed
        self.base = base
        self.dispersion = rng.uniform(PARAMS["dispersion_low"], PARAMS["dispersion_high"], self.n)

        # cell-type profiles: global shift + marker programme
        lo, hi = PARAMS["marker_logfold_low"], PARAMS["marker_logfold_high"]
        profiles = {}
        for cell_type in marker_cell_types():
            delta = rng.normal(0.0, PARAMS["type_shift_sd"], self.n)
            markers = self.idx(programmes.marker(cell_type))
            boost = 1.3 if cell_type in GERM_STAGES else 1.0  # germ kernels dilute the stage programme
            delta[markers] += boost * rng.uniform(lo, hi, len(markers))
            profiles[cell_type] = delta
        y_germ = self.idx(g for g in y_genes if g not in Y_BROAD[species])
        for stage in GERM_STAGES[:3]:
            profiles[stage][y_germ] += rng.uniform(np.log(4.0), np.log(12.0), len(y_germ))
        for cell_type in SOMATIC_TYPES:
            profiles[cell_type][y_germ] -= 2.0
        self.profiles = profiles
        self.germ_profiles = np.vstack([profiles[s] for s in GERM_STAGES])  # (5, G)

        self.y_germ = y_germ
        self.xist = self.pos[XIST[species]]

    def idx(self, genes: Iterable[str]) -> np.ndarray:
        """Positions of the genes present in the universe (unknown genes are ignored)."""
        return np.array(sorted({self.pos[g] for g in genes if g in self.pos}), dtype=int)

    def set_idx(self, *names: str) -> np.ndarray:
        return self.idx(g for name in names for g in self.programmes.get(name))

    def azf_deleted(self, region: bool | str) -> np.ndarray:
        if not region:
            return np.array([], dtype=int)
        regions = AZF_REGIONS[self.species]
        if self.species == "mouse":  # no AZFc genes in mouse: any AZF loss removes every Y ortholog
            genes = [g for r in regions.values() for g in r]
        else:
            letters = "c" if region is True else str(region)
            genes = [g for letter in letters for g in regions[letter]]
        return self.idx(genes)


def _germ_weights(t: np.ndarray) -> np.ndarray:
    centres = np.asarray(STAGE_CENTRES)
    w = np.exp(-((t[:, None] - centres[None, :]) ** 2) / (2 * KERNEL_WIDTH**2))
    return w / w.sum(axis=1, keepdims=True)


def _sample_nb(mu: np.ndarray, dispersion: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r"""Negative binomial counts with mean ``mu`` and :math:`\mathrm{Var} = \mu + \phi\mu^2` (gamma-Poisson)."""
    shape = np.broadcast_to(1.0 / dispersion, mu.shape)
    lam = rng.standard_gamma(shape) * (mu * dispersion)
    return rng.poisson(lam)


def _allocate(total: int, specs: Sequence[DonorSpec]) -> list[int]:
    fixed = sum(s.n_cells for s in specs if s.n_cells is not None)
    free = [i for i, s in enumerate(specs) if s.n_cells is None]
    sizes = [s.n_cells or 0 for s in specs]
    if free:
        remaining = total - fixed
        if remaining < len(free):
            raise ValueError(
                f"n_cells={total} leaves {remaining} cells for {len(free)} donors without an explicit n_cells "
                f"({fixed} are fixed by the specs); raise n_cells or give every donor an n_cells."
            )
        share = np.full(len(free), remaining // len(free))
        share[: remaining % len(free)] += 1
        for i, n in zip(free, share):
            sizes[i] = int(n)
    return sizes


def _donor_cells(spec: DonorSpec, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cell types (array of str) and pseudotimes (NaN for somatic) of one donor."""
    n_other = rng.binomial(n, PARAMS["other_fraction"])
    n_germ = rng.binomial(n - n_other, spec.expected_germ_fraction())
    n_somatic = n - n_other - n_germ
    weights = np.array([SOMATIC_WEIGHTS[t] * spec.composition.get(t, 1.0) for t in SOMATIC_TYPES])
    immune = np.isin(np.array(SOMATIC_TYPES), ["macrophage", "t_cell"])
    weights[immune] *= 1.0 + spec.hits.inflammation
    if weights.sum() <= 0:
        raise ValueError(f"donor spec {spec.donor!r}: `composition` removes every somatic cell type; keep some > 0.")
    somatic = rng.choice(np.array(SOMATIC_TYPES), size=n_somatic, p=weights / weights.sum())
    t_max = STAGE_EDGES[GERM_STAGES.index(spec.last_stage()) + 1]
    t = rng.uniform(0.0, t_max, n_germ)
    if spec.last_stage() != GERM_STAGES[-1]:
        t = np.minimum(t, np.nextafter(t_max, 0.0))
    germ = np.array(GERM_STAGES)[stage_of(t)]
    types = np.concatenate([germ, somatic, np.full(n_other, "other")]).astype(object)
    pseudotime = np.concatenate([t, np.full(n_somatic + n_other, np.nan)])
    order = rng.permutation(n)
    return types[order], pseudotime[order]


def _log_profile(types: np.ndarray, pseudotime: np.ndarray, u: _Universe) -> np.ndarray:
    # zeros, not np.empty: the rows of `other` (doublet) cells are replaced by their partners' mix
    # later, but every arithmetic step before that touches them too
    eta = np.zeros((len(types), u.n))
    germ = ~np.isnan(pseudotime)
    if germ.any():
        eta[germ] = _germ_weights(pseudotime[germ]) @ u.germ_profiles
    for cell_type in SOMATIC_TYPES:
        sel = types == cell_type
        if sel.any():
            eta[sel] = u.profiles[cell_type]
    return eta


def _simulate_donor(
    spec: DonorSpec, n: int, u: _Universe, rng: np.random.Generator
) -> tuple[sp.csr_matrix, pd.DataFrame, dict[str, Any]]:
    types, pseudotime = _donor_cells(spec, n, rng)
    is_other = types == "other"
    # doublet-like cells: two partner cells drawn from the donor's non-doublet composition
    partners = np.flatnonzero(~is_other)
    n_other = int(is_other.sum())
    if n_other and len(partners) == 0:
        raise ValueError(f"donor {spec.donor!r} has too few cells to form doublets; raise its n_cells.")
    pair = rng.choice(partners, size=(n_other, 2)) if n_other else np.zeros((0, 2), dtype=int)

    eta = _log_profile(types, pseudotime, u)
    eta += u.base
    eta += rng.normal(0.0, PARAMS["donor_effect_sd"], u.n)  # donor x gene random effect

    germ = ~np.isnan(pseudotime)
    cls = np.array([CELL_TYPE_TO_CLASS[t] for t in types])
    sertoli = types == "sertoli"
    leydig = types == "leydig"
    somatic = ~germ & ~is_other
    hits = spec.hits

    def shift(rows: np.ndarray, genes: np.ndarray, value: float) -> None:
        if value and rows.any() and len(genes):
            eta[np.ix_(np.flatnonzero(rows), genes)] += value

    shift(germ | sertoli, u.set_idx("stress_oxidative", "stress_heat"), hits.oxidative * _LN2)
    shift(germ, u.set_idx("epigenetic_regulation"), hits.epigenetic * _LN2)
    shift(leydig, u.set_idx("endocrine_leydig_steroidogenesis"), -hits.endocrine * _LN2)
    shift(leydig, u.set_idx("leydig_immaturity"), hits.endocrine * _LN2)
    shift(sertoli, u.set_idx("sertoli_immaturity"), hits.niche * _LN2)
    shift(sertoli, u.set_idx("niche_btb"), -hits.niche * _LN2)
    shift(somatic, u.set_idx("inflammation"), hits.inflammation * _LN2)

    # germ-cell apoptosis (truth_apoptosis)
    apoptotic = np.zeros(n, dtype=bool)
    if spec.apoptosis is not None:
        eligible = np.flatnonzero(np.isin(types, spec.apoptosis.cell_types))
        hit = rng.random(len(eligible)) < spec.apoptosis.fraction
        apoptotic[eligible[hit]] = True
        missing = [s for s in spec.apoptosis.sets if not len(u.set_idx(s))]
        if missing:
            raise ValueError(
                f"donor spec {spec.donor!r}: apoptosis set(s) {missing} are not in the gene-set library "
                f"({u.programmes.version}); use names from noa.genesets.load({u.species!r}).names."
            )
        shift(apoptotic, u.set_idx(*spec.apoptosis.sets), float(np.log(spec.apoptosis.fold)))

    # dissociation programme: donor strength x cell-level variation, independent of the hits
    dissociation = spec.dissociation if spec.dissociation is not None else float(rng.uniform(0.0, 1.0))
    dis_genes = u.set_idx("control_dissociation")
    if len(dis_genes):
        eta[:, dis_genes] += (dissociation * _LN2 * rng.uniform(0.5, 1.5, n))[:, None]

    eta -= eta.max(axis=1, keepdims=True)
    prob = np.exp(eta)
    mask = np.ones(u.n)
    if not hits.genetic_xist:
        mask[u.xist] = 0.0
    deleted = u.azf_deleted(hits.genetic_azf_loss)
    mask[deleted] = 0.0
    prob *= mask
    prob /= prob.sum(axis=1, keepdims=True)

    median = np.array([LIBRARY_MEDIAN.get(t, 0.0) for t in types])
    germ_median = np.interp(pseudotime[germ], STAGE_CENTRES, [LIBRARY_MEDIAN[s] for s in GERM_STAGES])
    median[germ] = germ_median
    library = np.exp(rng.normal(np.log(np.maximum(median, 1.0)), PARAMS["library_sdlog"]))
    if n_other:
        rows = np.flatnonzero(is_other)
        prob[rows] = 0.5 * (prob[pair[:, 0]] + prob[pair[:, 1]])
        library[rows] = library[pair[:, 0]] + library[pair[:, 1]]
        apoptotic[rows] = False

    counts = _sample_nb(prob * library[:, None], u.dispersion, rng)
    X = sp.csr_matrix(counts.astype(np.float32))
    obs = pd.DataFrame(
        {
            "truth_cell_type": types,
            "truth_cell_class": cls,
            "truth_apoptosis": apoptotic,
            "truth_pseudotime": pseudotime,
        }
    )
    truth = {
        "n_cells": n,
        "n_germ": int(germ.sum()),
        "germ_fraction": float(germ.mean()) if n else 0.0,
        "expected_germ_fraction": spec.expected_germ_fraction(),
        "last_stage": spec.last_stage() if spec.expected_germ_fraction() > 0 else "",
        "n_apoptotic": int(apoptotic.sum()),
        "dissociation": dissociation,
        "azf_deleted_genes": ",".join(u.genes[deleted]),
    }
    return X, obs, truth


def _truth_row(spec: DonorSpec, realised: Mapping[str, Any]) -> dict[str, Any]:
    apo = spec.apoptosis
    hits = spec.hits
    azf = hits.genetic_azf_loss
    return {
        "donor": spec.donor,
        "condition": spec.condition,
        "histology": spec.histology,
        "arrest_stage": spec.arrest_stage or "",
        **realised,
        "apoptosis_sets": ",".join(apo.sets) if apo else "",
        "apoptosis_cell_types": ",".join(apo.cell_types) if apo else "",
        "apoptosis_fraction": apo.fraction if apo else 0.0,
        "apoptosis_fold": apo.fold if apo else 1.0,
        "hit_genetic_xist": bool(hits.genetic_xist),
        "hit_genetic_azf_loss": ("c" if azf is True else str(azf)) if azf else "",
        "hit_endocrine": hits.endocrine,
        "hit_oxidative": hits.oxidative,
        "hit_inflammation": hits.inflammation,
        "hit_niche": hits.niche,
        "hit_epigenetic": hits.epigenetic,
        "truth_genetic": float(hits.genetic),
        "truth_endocrine": hits.endocrine,
        "truth_oxidative": hits.oxidative,
        "truth_epigenetic": hits.epigenetic,
        "truth_inflammation": hits.inflammation,
        "truth_niche": hits.niche,
    }


#: Cells of the default demo data set: the same for :func:`demo_testis` and ``noa-omics demo``.
DEMO_N_CELLS = 4000


def demo_testis(
    seed: int = 0,
    *,
    n_cells: int = DEMO_N_CELLS,
    donors: Sequence[DonorSpec | Mapping[str, Any]] | None = None,
    species: str = "human",
) -> AnnData:
    r"""Simulated single-cell RNA-seq counts of a testis cohort with planted ground truth.

    A **simulation**, not real data: a donor cohort (default :func:`default_cohort`: controls,
    Sertoli-cell-only, maturation arrest, hypospermatogenesis, Klinefelter, AZFc deletion and
    apoptosis/stress donors) whose cells follow the generative model of
    :mod:`noa_omics.datasets._demo_testis`:

    .. math::

        Y_{cg} \sim \operatorname{NB}\!\left(L_c\,\operatorname{softmax}_g(\eta_{cg}),\ \phi_g\right),\quad
        \eta_{cg} = b_g + \Delta_{k(c)g} + \varepsilon_{dg} + \textstyle\sum_p \pi_p(c)\lambda_{pg}

    with library size :math:`L_c \sim \operatorname{LogNormal}`, gene dispersion
    :math:`\phi_g \in [0.2, 0.5]`, donor effects :math:`\varepsilon_{dg} \sim \mathcal N(0, 0.2^2)`,
    cell-type profiles :math:`\Delta` (germ cells on a pseudotime continuum) and programmes
    :math:`\lambda` taken from the curated gene sets (:func:`noa_omics.genesets.load`).

    Parameters
    ----------
    seed
        Seed of the :class:`numpy.random.Generator`; the same seed gives identical output.
    n_cells
        Total number of cells, shared equally by the donors whose spec has no ``n_cells``.
        Ignored when every donor spec sets ``n_cells``.
    donors
        Donor specs (:class:`DonorSpec` or dicts, see :meth:`DonorSpec.from_dict`); None uses
        :func:`default_cohort`.
    species
        ``"human"`` or ``"mouse"`` (mouse symbols from the mouse gene-set library).

    Returns
    -------
    AnnData
        ``X`` and ``layers["counts"]``: float32 CSR UMI counts; ``var_names``: gene symbols
        (``var["gene_class"]``: ``gene_set``, ``chrY``, ``XIST``, ``housekeeping``,
        ``mitochondrial``, ``background``); ``obs``: ``sample`` (= ``donor``), ``donor``,
        ``condition``, ``histology``, ``truth_cell_type``, ``truth_cell_class``,
        ``truth_apoptosis`` (bool), ``truth_pseudotime`` (NaN for non-germ cells);
        ``uns["demo"]``: seed, parameters, gene-set library version and ``donors``, the per-donor
        truth table (the hits planted, one row per donor).

    Examples
    --------
    >>> import noa_omics as noa
    >>> adata = noa.datasets.demo_testis(seed=0, n_cells=2000)
    >>> adata.obs.groupby("condition", observed=True)["truth_apoptosis"].mean()  # doctest: +SKIP
    """
    species = check_species(species, allow_none=False)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}.")
    n_cells = check_positive_int(n_cells, name="n_cells")
    if donors is None:
        specs = default_cohort()
    else:
        if isinstance(donors, (str, Mapping)) or not isinstance(donors, Sequence):
            raise TypeError("`donors` must be a list of DonorSpec or dicts (one per donor), or None.")
        specs = [DonorSpec.from_dict(d) for d in donors]
        if not specs:
            raise ValueError("`donors` is empty; give at least one donor spec or None for the default cohort.")
    ids = [s.donor for s in specs]
    dup = sorted({d for d in ids if ids.count(d) > 1})
    if dup:
        raise ValueError(f"donor ids must be unique; repeated: {dup}.")
    sizes = _allocate(int(n_cells), specs)

    rng = np.random.default_rng(int(seed))
    programmes = load_programmes(species)
    universe = _Universe(programmes, rng, int(PARAMS["n_background"]))

    blocks, frames, rows = [], [], []
    for spec, n in zip(specs, sizes):
        X, obs, realised = _simulate_donor(spec, n, universe, rng)
        obs.insert(0, "histology", spec.histology)
        obs.insert(0, "condition", spec.condition)
        obs.insert(0, "donor", spec.donor)
        obs.insert(0, "sample", spec.donor)
        obs.index = [f"{spec.donor}_{i:05d}" for i in range(n)]
        blocks.append(X)
        frames.append(obs)
        rows.append(_truth_row(spec, realised))

    obs = pd.concat(frames)
    for key in ("sample", "donor"):
        obs[key] = pd.Categorical(obs[key], categories=ids)
    obs["condition"] = pd.Categorical(obs["condition"], categories=_unique(s.condition for s in specs))
    obs["histology"] = pd.Categorical(obs["histology"])
    obs["truth_cell_type"] = pd.Categorical(obs["truth_cell_type"], categories=list(CELL_TYPES))
    obs["truth_cell_class"] = pd.Categorical(
        obs["truth_cell_class"], categories=list(CELL_CLASSES)
    )
    obs["truth_apoptosis"] = obs["truth_apoptosis"].astype(bool)
    obs["truth_pseudotime"] = obs["truth_pseudotime"].astype(float)

    X = sp.vstack(blocks, format="csr").astype(np.float32)
    var = pd.DataFrame({"gene_class": pd.Categorical(universe.gene_class)}, index=universe.genes)
    adata = AnnData(X=X, obs=obs, var=var)
    adata.layers["counts"] = X.copy()
    adata.uns["demo"] = {
        "generator": "noa_omics.datasets.demo_testis",
        "simulated": True,
        "seed": int(seed),
        "n_cells": int(adata.n_obs),
        "species": species,
        "genesets_version": programmes.version,
        "params": {k: float(v) for k, v in PARAMS.items()},
        "stage_edges": list(STAGE_EDGES),
        "donors": pd.DataFrame(rows).set_index("donor", drop=False).rename_axis(None),
    }
    return adata
