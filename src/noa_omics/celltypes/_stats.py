r"""Donor-level statistics shared by :func:`compare_conditions` and :func:`enrichment`.

Two-sample comparisons of per-sample (per-donor) values: Welch's t test with the
Welch-Satterthwaite degrees of freedom, Hedges' :math:`g`, an exact or Monte Carlo permutation
test over sample labels, and vectorised Welch / moderated t statistics for many genes at once.
All functions take plain arrays; the callers aggregate cells to samples first.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

#: Largest number of label assignments enumerated exactly by :func:`permutation_test`.
MAX_EXACT_PERMUTATIONS = 10_000


@dataclass(frozen=True)
class TwoSampleResult:
    """Result of a two-sample comparison ``x`` (condition) vs ``y`` (reference)."""

    effect: float
    statistic: float
    df: float
    pvalue: float
    ci_low: float
    ci_high: float


def _clean(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr[np.isfinite(arr)]


def welch_test(x: np.ndarray, y: np.ndarray, *, confidence: float = 0.95) -> TwoSampleResult:
    r"""Welch's unequal-variance t test of :math:`\bar x - \bar y` with its confidence interval.

    .. math::

        t = \frac{\bar x - \bar y}{\sqrt{s_x^2/n_x + s_y^2/n_y}}, \qquad
        \nu = \frac{(s_x^2/n_x + s_y^2/n_y)^2}
                   {\frac{(s_x^2/n_x)^2}{n_x - 1} + \frac{(s_y^2/n_y)^2}{n_y - 1}}

    (Welch 1947; Satterthwaite 1946), two-sided :math:`p = 2\,P(T_\nu > |t|)` and interval
    :math:`\bar x - \bar y \pm t_{\nu, 1-\alpha/2}\,\mathrm{SE}`. Identical to
    ``scipy.stats.ttest_ind(x, y, equal_var=False)``.

    With fewer than two values on a side, or no variance on both sides, the p-value, statistic
    and interval are NaN (the effect is still reported when both sides have a value).
    """
    x, y = _clean(x), _clean(y)
    nx, ny = len(x), len(y)
    effect = float(x.mean() - y.mean()) if nx and ny else math.nan
    if nx < 2 or ny < 2:
        return TwoSampleResult(effect, math.nan, math.nan, math.nan, math.nan, math.nan)
    vx, vy = x.var(ddof=1) / nx, y.var(ddof=1) / ny
    se2 = vx + vy
    if not se2 > 0:
        return TwoSampleResult(effect, math.nan, math.nan, math.nan, math.nan, math.nan)
    se = math.sqrt(se2)
    df = se2**2 / (vx**2 / (nx - 1) + vy**2 / (ny - 1))
    t = effect / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(0.5 + confidence / 2, df) * se)
    return TwoSampleResult(effect, float(t), float(df), p, effect - half, effect + half)


def hedges_g(x: np.ndarray, y: np.ndarray) -> float:
    r"""Hedges' bias-corrected standardised mean difference of ``x`` vs ``y``.

    .. math::

        s_p = \sqrt{\frac{(n_x-1)s_x^2 + (n_y-1)s_y^2}{n_x+n_y-2}}, \qquad
        g = \Bigl(1 - \frac{3}{4(n_x+n_y) - 9}\Bigr)\frac{\bar x - \bar y}{s_p}

    (Hedges 1981). NaN with fewer than two values on a side or zero pooled variance.
    """
    x, y = _clean(x), _clean(y)
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        return math.nan
    pooled = ((nx - 1) * x.var(ddof=1) + (ny - 1) * y.var(ddof=1)) / (nx + ny - 2)
    if not pooled > 0:
        return math.nan
    correction = 1.0 - 3.0 / (4.0 * (nx + ny) - 9.0)
    return float(correction * (x.mean() - y.mean()) / math.sqrt(pooled))


def n_label_permutations(nx: int, ny: int) -> int:
    """Number of distinct ways to assign ``nx`` of ``nx + ny`` samples to the condition."""
    return math.comb(nx + ny, nx)


def permutation_test(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_permutations: int = MAX_EXACT_PERMUTATIONS,
    random_state: int | np.random.Generator | None = 0,
) -> tuple[float, bool]:
    r"""Two-sided permutation p-value of :math:`\bar x - \bar y` over sample labels.

    The samples of both groups are pooled and every assignment of :math:`n_x` of them to the
    condition is a relabelling. When the number of assignments
    :math:`\binom{n_x+n_y}{n_x}` is at most ``max(n_permutations, 10000)`` all of them are
    enumerated and

    .. math:: p = \frac{\#\{\pi : |T_\pi| \ge |T_{obs}|\}}{\binom{n_x+n_y}{n_x}}

    (the observed labelling is one of the :math:`\pi`). Otherwise ``n_permutations`` random
    relabellings are drawn and :math:`p = (1 + \#\{|T_\pi| \ge |T_{obs}|\}) / (1 + B)`
    (Phipson & Smyth 2010). The smallest attainable exact p-value is
    :math:`2/\binom{n_x+n_y}{n_x}` for balanced groups (0.1 with 3 vs 3 donors).

    Returns
    -------
    (pvalue, exact)
        ``exact`` tells whether the labellings were enumerated. The p-value is NaN with fewer
        than two values on a side.
    """
    x, y = _clean(x), _clean(y)
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        return math.nan, False
    pooled = np.concatenate([x, y])
    total = pooled.sum()
    n = nx + ny
    observed = abs(x.mean() - y.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(pooled).max()))
    n_assignments = n_label_permutations(nx, ny)
    if n_assignments <= max(int(n_permutations), MAX_EXACT_PERMUTATIONS):
        index = np.fromiter(
            itertools.chain.from_iterable(itertools.combinations(range(n), nx)), dtype=np.int64
        ).reshape(n_assignments, nx)
        sum_x = pooled[index].sum(axis=1)
        diff = np.abs(sum_x / nx - (total - sum_x) / ny)
        return float(np.mean(diff >= observed - tolerance)), True
    rng = np.random.default_rng(random_state)
    n_draws = int(n_permutations)
    keys = rng.random((n_draws, n))
    index = np.argpartition(keys, nx - 1, axis=1)[:, :nx]
    sum_x = pooled[index].sum(axis=1)
    diff = np.abs(sum_x / nx - (total - sum_x) / ny)
    hits = int(np.sum(diff >= observed - tolerance))
    return (1 + hits) / (1 + n_draws), False


def welch_t_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Welch t statistic and degrees of freedom for every row (gene) of ``x`` vs ``y``.

    ``x`` is genes x condition samples, ``y`` genes x reference samples (at least two columns
    each). Rows without variance on both sides get t = 0 (no evidence either way).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    nx, ny = x.shape[1], y.shape[1]
    vx = x.var(axis=1, ddof=1) / nx
    vy = y.var(axis=1, ddof=1) / ny
    se2 = vx + vy
    diff = x.mean(axis=1) - y.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se2 > 0, diff / np.sqrt(se2), 0.0)
        df = np.where(se2 > 0, se2**2 / (vx**2 / (nx - 1) + vy**2 / (ny - 1)), np.nan)
    return t, df


def _trigamma_inverse(value: np.ndarray | float) -> float:
    """Solve ``polygamma(1, y) = value`` for y by Newton's method (Smyth 2004, appendix)."""
    value = float(value)
    if value > 1e7:
        return 1.0 / math.sqrt(value)
    if value < 1e-6:
        return 1.0 / value
    y = 0.5 + 1.0 / value
    for _ in range(50):
        tri = float(special.polygamma(1, y))
        step = tri * (1.0 - tri / value) / float(special.polygamma(2, y))
        y += step
        if -step / y < 1e-8:
            break
    return y


def fit_f_prior(variances: np.ndarray, df: float) -> tuple[float, float]:
    r"""Empirical-Bayes prior :math:`(d_0, s_0^2)` for gene variances (Smyth 2004).

    Moments of :math:`z_g = \log s_g^2`: :math:`E[z] = \log s_0^2 + \psi(d/2) - \psi(d_0/2)
    + \log(d_0/d)` and :math:`\mathrm{Var}[z] = \psi'(d/2) + \psi'(d_0/2)`. Returns
    :math:`d_0 = \infty` (no moderation spread) when the observed variance of :math:`z` is
    explained by sampling alone.
    """
    variances = np.asarray(variances, dtype=np.float64)
    variances = variances[np.isfinite(variances) & (variances > 0)]
    if len(variances) < 3:
        return math.inf, float(np.median(variances)) if len(variances) else 0.0
    z = np.log(variances)
    e = z - special.digamma(df / 2) + math.log(df / 2)
    excess = float(np.var(e, ddof=1) - special.polygamma(1, df / 2))
    if excess <= 0:
        return math.inf, float(math.exp(e.mean()))
    d0 = 2.0 * _trigamma_inverse(excess)
    s0_sq = math.exp(e.mean() + special.digamma(d0 / 2) - math.log(d0 / 2))
    return d0, s0_sq


def moderated_t_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""limma-style moderated t statistic for every row of ``x`` (condition) vs ``y`` (reference).

    Two-group linear model with a pooled residual variance :math:`s_g^2` on
    :math:`d = n_x + n_y - 2` degrees of freedom, shrunk towards a common prior
    (:func:`fit_f_prior`):

    .. math::

        \tilde s_g^2 = \frac{d_0 s_0^2 + d\,s_g^2}{d_0 + d}, \qquad
        \tilde t_g = \frac{\bar x_g - \bar y_g}{\tilde s_g \sqrt{1/n_x + 1/n_y}}

    (Smyth 2004, Stat Appl Genet Mol Biol 3:3). Rows with zero posterior variance get 0.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    nx, ny = x.shape[1], y.shape[1]
    d = nx + ny - 2
    ss = ((x - x.mean(axis=1, keepdims=True)) ** 2).sum(axis=1) + ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(
        axis=1
    )
    s2 = ss / d
    d0, s0_sq = fit_f_prior(s2, d)
    # d0 = inf: the spread of the sample variances is pure sampling noise, all genes share s0^2.
    post = np.full_like(s2, s0_sq) if math.isinf(d0) else (d0 * s0_sq + d * s2) / (d0 + d)
    diff = x.mean(axis=1) - y.mean(axis=1)
    scale = np.sqrt(post * (1.0 / nx + 1.0 / ny))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, diff / scale, 0.0)
