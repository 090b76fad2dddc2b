r"""``score_genes``: set mean minus the mean of expression-matched control genes (Seurat/scanpy).

The algorithm and defaults are those of :func:`scanpy.tl.score_genes` (Satija et al. 2015;
Tirosh et al. 2016). For a set :math:`S` and cell :math:`i`,

.. math::

   \mathrm{score}_{i,S} = \frac{1}{|S|}\sum_{g \in S} x_{ig}
                          - \frac{1}{|C_S|}\sum_{g \in C_S} x_{ig},

where the control set :math:`C_S` is built from the gene pool :math:`P` (all genes by default):
genes are ranked by their mean :math:`\bar{x}_g` over all cells (``rank(method="min")``), cut
into bins :math:`b_g = \lfloor \mathrm{rank}_g / n \rfloor` with
:math:`n = \mathrm{round}(|P| / (n_\mathrm{bins} - 1))`, and for every bin that holds a gene of
:math:`S`, ``ctrl_size`` genes of that bin are drawn without replacement (all of them when the
bin is smaller); set genes are then removed from the draw (``ctrl_as_ref=True``) or from the bin
before drawing (``ctrl_as_ref=False``).

Matching scanpy: the draw of each set uses a fresh ``numpy.random.RandomState(random_state)``
and calls ``choice(len(bin), ctrl_size, replace=False)`` per bin in increasing bin order, which
is the call sequence of ``np.random.seed(random_state)`` followed by ``pandas.Series.sample`` in
scanpy. Scoring several sets in one call therefore gives, for each set, the score scanpy gives
when that set is scored alone. The gene means that define the bins are computed as scanpy's
scipy/numpy calls compute them (column sums in cell order, in float32 for float32 data; dense
float32 means rounded to float32), so the bins and control genes are the same. Remaining
difference: the per-cell set and control means are float64 sums here, while scipy sums a
float32 row in float32, so scores differ from scanpy's by float32 rounding (about 1e-7).

All sets are scored in one pass as :math:`S = XW`, with :math:`W_{gS} = 1/|S|` for
:math:`g \in S` and :math:`-1/|C_S|` for :math:`g \in C_S`.

References
----------
Satija R, Farrell JA, Gennert D, Schier AF, Regev A (2015). Spatial reconstruction of
single-cell gene expression data. Nat Biotechnol 33:495-502. doi:10.1038/nbt.3192

Tirosh I et al. (2016). Dissecting the multicellular ecosystem of metastatic melanoma by
single-cell RNA-seq. Science 352:189-196. doi:10.1126/science.aad0501
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import check_positive_int
from ._base import Context, MethodMeta, ScoringError, membership, unknown_params
from ._kernels import linear_scores
from ._linear import LinearPlan, score_linear_block

_DEFAULTS = {"ctrl_size": 50, "n_bins": 25, "ctrl_as_ref": True, "gene_pool": None, "nan_policy": "raise"}
NAN_POLICIES = ("raise", "omit")


def _check_params(params: dict[str, Any], n_vars: int) -> dict[str, Any]:
    unknown_params(params, _DEFAULTS, "score_genes")
    out = {**_DEFAULTS, **params}
    for key in ("ctrl_size", "n_bins"):
        out[key] = check_positive_int(out[key], name=key)
    if out["n_bins"] < 2:
        raise ValueError(f"`n_bins` must be at least 2, got {out['n_bins']}.")
    out["ctrl_as_ref"] = bool(out["ctrl_as_ref"])
    if out["nan_policy"] not in NAN_POLICIES:
        raise ValueError(f"`nan_policy` must be one of {NAN_POLICIES}, got {out['nan_policy']!r}.")
    if out["gene_pool"] is not None:
        if isinstance(out["gene_pool"], str):
            raise ValueError("`gene_pool` must be a list of gene names, not one string.")
        out["gene_pool"] = [str(g) for g in out["gene_pool"]]
    return out


def _pool_positions(gene_names: pd.Index, gene_pool: list[str] | None) -> np.ndarray:
    """Column positions of the gene pool, in the order scanpy uses for it."""
    if gene_pool is None:
        return np.arange(len(gene_names))
    pool = pd.Index(gene_pool, dtype="string").intersection(gene_names.astype("string"))
    if len(pool) == 0:
        raise ValueError("none of the `gene_pool` genes is in the data; pass gene names present in var_names.")
    return gene_names.get_indexer(pool.astype(str))


def control_genes(
    set_idx: np.ndarray,
    cut_groups: dict[float, np.ndarray],
    gene_cut: pd.Series,
    *,
    ctrl_size: int,
    ctrl_as_ref: bool,
    random_state: int | None,
) -> np.ndarray:
    """Control genes of one set (column positions), drawn as scanpy draws them."""
    rng = np.random.RandomState(random_state)
    in_set = set(set_idx.tolist())
    set_cuts = gene_cut.reindex(set_idx).dropna().to_numpy()
    control: set[int] = set()
    for cut in np.unique(set_cuts):
        candidates = cut_groups[cut]
        if not ctrl_as_ref:
            candidates = candidates[~np.isin(candidates, set_idx)]
        if candidates.size == 0:
            warnings.warn(f"score_genes: no control genes in expression bin {cut:g}.", UserWarning, stacklevel=4)
        if ctrl_size < candidates.size:
            candidates = candidates[rng.choice(candidates.size, size=ctrl_size, replace=False)]
        control.update(g for g in candidates.tolist() if g not in in_set)
    return np.array(sorted(control), dtype=np.int64)


def _gene_means(stats, nan_policy: str) -> np.ndarray:
    """Gene means that define the expression bins: scanpy's float32-faithful means, or with
    ``nan_policy="omit"`` the NaN-ignoring means (``np.nanmean``; a gene of NaN only has none)."""
    if nan_policy == "omit" and stats.n_nan_gene is not None and stats.n_nan_gene.any():
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = stats.sum / (stats.n_obs - stats.n_nan_gene)
        if stats.dense_float32:
            mean = mean.astype(np.float32).astype(np.float64)
        return mean
    return stats.mean_scanpy


def expression_bins(means: pd.Series, n_bins: int) -> pd.Series:
    """Bin of each pool gene by its mean: ``rank(method="min") // round(|P| / (n_bins - 1))``.

    With fewer than about ``(n_bins - 1) / 2`` pool genes the bin width rounds to 0; scanpy's
    ``rank // 0`` then puts every gene in one bin (infinity), and so do we (bin 0).
    """
    n_items = int(np.round(len(means) / (n_bins - 1)))
    if n_items == 0:
        return pd.Series(0.0, index=means.index)
    return means.rank(method="min") // n_items


def _prepare(ctx: Context):
    params = ctx.params
    stats = ctx.stats
    pool = _pool_positions(ctx.gene_names, params["gene_pool"])
    means = pd.Series(_gene_means(stats, params["nan_policy"])[pool], index=pool)
    means = means[np.isfinite(means)]
    if len(means) == 0:
        raise ValueError("score_genes: no pool gene has a finite mean; check the matrix and `gene_pool`.")
    gene_cut = expression_bins(means, params["n_bins"])
    # pool positions per bin, in pool order (the order pandas samples from)
    cut_groups = {cut: grp.index.to_numpy() for cut, grp in gene_cut.groupby(gene_cut, sort=False)}
    weights, genes, n_control, controls = [], [], [], []
    for name, idx in zip(ctx.set_names, ctx.sets):
        ctrl = control_genes(
            idx, cut_groups, gene_cut, ctrl_size=params["ctrl_size"], ctrl_as_ref=params["ctrl_as_ref"],
            random_state=ctx.random_state,
        )
        if ctrl.size == 0:
            hint = "pass ctrl_as_ref=False or a larger gene_pool" if params["ctrl_as_ref"] else "pass a larger gene_pool"
            raise ScoringError(f"score_genes: no control genes found for set {name!r}; {hint}.")
        genes.append(np.concatenate([idx, ctrl]))
        weights.append(np.concatenate([np.full(idx.size, 1.0 / idx.size), np.full(ctrl.size, -1.0 / ctrl.size)]))
        n_control.append(ctrl.size)
        controls.append(ctrl)
    if params["nan_policy"] == "omit" and stats.n_nonfinite:
        return _nan_plan(ctx.sets, controls, len(ctx.gene_names))
    ptr, set_id, val = membership(genes, len(ctx.gene_names), weights)
    return LinearPlan(ptr, set_id, val, np.zeros(len(ctx.sets)), np.array(n_control))


@dataclass
class NanMeanPlan:
    """``nan_policy="omit"``: set and control genes as two 0/1 layouts (sums and NaN counts)."""

    set_layout: tuple[np.ndarray, np.ndarray, np.ndarray]
    ctrl_layout: tuple[np.ndarray, np.ndarray, np.ndarray]
    set_size: np.ndarray
    ctrl_size: np.ndarray
    n_control: np.ndarray


def _nan_plan(sets, controls, n_vars: int) -> NanMeanPlan:
    sizes = np.array([s.size for s in sets], dtype=np.float64)
    ctrl_sizes = np.array([c.size for c in controls], dtype=np.float64)
    return NanMeanPlan(membership(sets, n_vars), membership(controls, n_vars), sizes, ctrl_sizes,
                       ctrl_sizes.astype(int))


def _nan_means(block, layout, size: np.ndarray, parallel: bool) -> np.ndarray:
    """Per cell and set, the mean over the set's genes of the non-NaN values (scanpy's nan-mean)."""
    zeros = np.zeros(size.size)
    if sp.issparse(block):
        isnan = np.isnan(block.data)
        filled = sp.csr_matrix((np.where(isnan, 0.0, block.data), block.indices, block.indptr), shape=block.shape)
        mask = sp.csr_matrix((isnan.astype(np.float64), block.indices, block.indptr), shape=block.shape)
    else:
        isnan = np.isnan(block)
        filled, mask = np.where(isnan, 0.0, block), isnan.astype(np.float64)
    total = linear_scores(filled, *layout, zeros, parallel)
    n_nan = linear_scores(mask, *layout, zeros, parallel)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / (size - n_nan)


def _score_block(block, plan, parallel: bool) -> np.ndarray:
    if isinstance(plan, NanMeanPlan):
        return (_nan_means(block, plan.set_layout, plan.set_size, parallel)
                - _nan_means(block, plan.ctrl_layout, plan.ctrl_size, parallel))
    return score_linear_block(block, plan, parallel)


META = MethodMeta(
    name="score_genes",
    description="set mean minus the mean of expression-matched random control genes (scanpy/Seurat)",
    input="log-normalised expression (a warning is given for raw counts)",
    reference="Satija et al. 2015 doi:10.1038/nbt.3192; Tirosh et al. 2016 doi:10.1126/science.aad0501",
    defaults=_DEFAULTS,
    needs_gene_stats=True,
    nonnegative=False,
    check_params=_check_params,
    prepare=_prepare,
    score_block=_score_block,
    extra={"warn_counts": True, "native_sum": True, "stats": ("sum",)},
)
