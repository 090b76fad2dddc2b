r"""``zmean``: mean over the set's genes of per-gene z-scores across cells.

For gene :math:`g` with mean :math:`\mu_g` and population standard deviation
:math:`\sigma_g` over all :math:`n` cells,

.. math::

   \mu_g = \frac{1}{n}\sum_i x_{ig}, \qquad
   \sigma_g = \sqrt{\frac{1}{n}\sum_i x_{ig}^2 - \mu_g^2}, \qquad
   \mathrm{score}_{i,S} = \frac{1}{|S|}\sum_{g \in S} \frac{x_{ig} - \mu_g}{\sigma_g}.

Genes with zero variance (the same value in every cell) have no z-score: they are left out of
the set and listed with the set's missing genes. The statistics come from one streaming pass
(float64 sums of :math:`x` and :math:`x^2`); the scores are then one sparse product
:math:`S = XW + b` with :math:`W_{gS} = 1/(|S|\sigma_g)` and
:math:`b_S = -\frac{1}{|S|}\sum_{g\in S}\mu_g/\sigma_g`, so the sparse matrix is never centred.

The score depends on the scale of the data: on raw counts a few highly expressed cells dominate
each gene's mean and SD, and per-cell library size enters every z-score, so ``noa.tl.score``
warns when the matrix looks like raw counts (as for ``score_genes``); normalise and log1p first.

The z-scored mean is the classic "average z-score" signature score, e.g. Lee E, Chuang H-Y,
Kim J-W, Ideker T, Kim S (2008) Inferring pathway activity toward precise disease
classification. PLoS Comput Biol 4:e1000217. doi:10.1371/journal.pcbi.1000217
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Context, GeneStats, MethodMeta, membership, unknown_params
from ._linear import LinearPlan, score_linear_block

_DEFAULTS: dict[str, Any] = {}


def _check_params(params: dict[str, Any], n_vars: int) -> dict[str, Any]:
    unknown_params(params, _DEFAULTS, "zmean")
    return {}


def _usable_genes(stats: GeneStats, params: dict[str, Any]) -> np.ndarray:
    # `var > 0` also guards genes whose variance is below float64 resolution of E[x^2] - E[x]^2
    return ~stats.constant & (stats.var > 0)


def _prepare(ctx: Context) -> LinearPlan:
    stats = ctx.stats
    mean = stats.mean
    sd = np.sqrt(stats.var)
    weights, offsets = [], []
    for idx in ctx.sets:
        inv = 1.0 / (idx.size * sd[idx])
        weights.append(inv)
        offsets.append(-float(np.sum(mean[idx] * inv)))
    ptr, set_id, val = membership(ctx.sets, len(ctx.gene_names), weights)
    return LinearPlan(ptr, set_id, val, np.array(offsets, dtype=np.float64), np.zeros(len(ctx.sets), dtype=int))


META = MethodMeta(
    name="zmean",
    description="mean of per-gene z-scores (population SD over all cells)",
    input="log-normalised expression (a warning is given for raw counts)",
    reference="Lee et al. 2008 doi:10.1371/journal.pcbi.1000217",
    defaults=_DEFAULTS,
    needs_gene_stats=True,
    nonnegative=False,
    check_params=_check_params,
    prepare=_prepare,
    score_block=score_linear_block,
    usable_genes=_usable_genes,
    extra={"warn_counts": True, "stats": ("sum", "sumsq", "extent")},
)
