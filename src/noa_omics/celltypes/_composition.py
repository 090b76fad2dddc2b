r"""Donor-level comparison of cell-type and germ-stage proportions (:func:`compare_composition`).

NOA is first of all a loss of germ cells, a change of composition. Proportions are compared
between conditions with the donor as the unit, propeller-style (Phipson et al. 2022): per-donor
proportions are transformed (logit with a 0.5 pseudo-count, or arcsine square root), a two-group
linear model is fitted per cell type, the residual variances are shrunk across cell types by
empirical Bayes (Smyth 2004) and a moderated t gives the p-value. Cells of one donor are not
independent replicates: a cell-level chi-square on the pooled counts ignores donor-to-donor
variation of the proportions and is wildly anti-conservative (see
``benchmarks/bench_composition.py``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .._validation import _preview, check_in
from .._vocabulary import CELL_CLASSES, CELL_TYPE_TO_CLASS, CELL_TYPES, GERM_STAGES
from ._stats import fit_f_prior
from ._utils import cell_table, sample_conditions

LEVELS = ("fine", "broad", "germ_stage")
TRANSFORMS = ("logit", "asin_sqrt")
#: Pseudo-count added to every count before the logit (as in propeller).
PSEUDO_COUNT = 0.5

RESULT_COLUMNS = [
    "cell_type",
    "level",
    "condition",
    "reference",
    "n_samples",
    "n_reference_samples",
    "n_cells",
    "n_reference_cells",
    "proportion",
    "reference_proportion",
    "proportion_difference",
    "proportion_ratio",
    "transform",
    "effect",
    "ci_low",
    "ci_high",
    "statistic",
    "df",
    "prior_df",
    "pvalue",
    "qvalue",
]


def compare_composition(
    data: AnnData | pd.DataFrame,
    *,
    sample_key: str,
    condition_key: str,
    reference: Any,
    cell_type_key: str = "noa_cell_type",
    level: str = "fine",
    transform: str = "logit",
    confidence: float = 0.95,
    min_cells: int = 1,
) -> pd.DataFrame:
    r"""Compare per-donor cell-type (or germ-stage) proportions between conditions.

    For each sample :math:`s` and cell type :math:`k` with counts :math:`n_{sk}` and
    :math:`N_s = \sum_k n_{sk}`:

    - proportions :math:`p_{sk} = n_{sk}/N_s`;
    - transformed values, ``transform="logit"``: :math:`y_{sk} = \operatorname{logit}
      \frac{n_{sk} + 0.5}{N_s + 0.5K}` (the pseudo-count keeps absent types finite);
      ``"asin_sqrt"``: :math:`y_{sk} = \arcsin\sqrt{p_{sk}}`;
    - for each non-reference condition, a two-group linear model per cell type on the
      condition's (:math:`n_x`) and the reference's (:math:`n_y`) samples: effect
      :math:`\hat\beta_k = \bar y_{x,k} - \bar y_{y,k}` with pooled residual variance
      :math:`s_k^2` on :math:`d = n_x + n_y - 2` degrees of freedom;
    - empirical-Bayes moderation across the :math:`K` cell types (limma's ``squeezeVar``, fitted
      by moments of :math:`\log s_k^2`, Smyth 2004): prior :math:`(d_0, s_0^2)`,
      :math:`\tilde s_k^2 = (d_0 s_0^2 + d s_k^2)/(d_0 + d)`;
    - moderated :math:`\tilde t_k = \hat\beta_k / (\tilde s_k\sqrt{1/n_x + 1/n_y})` on
      :math:`d + d_0` degrees of freedom, two-sided p, and the interval
      :math:`\hat\beta_k \pm t_{d+d_0, 1-\alpha/2}\,\tilde s_k\sqrt{1/n_x+1/n_y}`;
    - ``qvalue``: Benjamini-Hochberg over every p-value of the call.

    The compositional constraint (proportions sum to one, so losing germ cells raises every
    somatic proportion) is respected by testing proportions of the donor's own total, by the
    variance-stabilising transform and by reporting the shift of each type rather than treating
    types as independent counts; read a rise of every somatic type with a germ loss as one
    event.

    Parameters
    ----------
    data
        AnnData (columns read from ``obs``) or a per-cell DataFrame.
    sample_key, condition_key
        Sample (donor) id and its condition; every sample must belong to one condition.
    reference
        Reference condition; every other condition is compared with it.
    cell_type_key
        Fine cell-type column (the vocabulary of ``noa_cell_type``).
    level
        ``"fine"``: the 12 fine types; ``"broad"``: the broad classes (germ, sertoli, leydig,
        peritubular_myoid, endothelial, immune, other); ``"germ_stage"``: proportions of the
        five germ stages among germ cells (samples without germ cells are left out, with a
        warning).
    transform
        ``"logit"`` (default) or ``"asin_sqrt"``; the scale of ``effect`` and its interval.
    confidence
        Level of the interval.
    min_cells
        Samples with fewer cells at the level are left out, with a warning.

    Returns
    -------
    pandas.DataFrame
        One row per cell type x condition: ``cell_type``, ``level``, ``condition``,
        ``reference``, ``n_samples``, ``n_reference_samples``, ``n_cells``,
        ``n_reference_cells``, ``proportion`` / ``reference_proportion`` (means of the donor
        proportions), ``proportion_difference``, ``proportion_ratio``, ``transform``,
        ``effect`` (difference of mean transformed proportions: a log odds ratio for the logit),
        ``ci_low``, ``ci_high``, ``statistic`` (moderated t), ``df`` (:math:`d + d_0`),
        ``prior_df`` (:math:`d_0`), ``pvalue``, ``qvalue``. The per-sample counts are in
        ``result.attrs["counts"]`` (sample -> category -> count) and the parameters in ``result.attrs["params"]``. With fewer
        than two samples on a side the p-value and interval are NaN and a warning is emitted.

    References
    ----------
    Phipson B, Sim CB, Porrello ER, Hewitt AW, Powell J, Oshlack A (2022) propeller: testing for
    differences in cell type proportions in single cell data. Bioinformatics 38:4720. Smyth GK
    (2004) Stat Appl Genet Mol Biol 3:3. Benjamini Y, Hochberg Y (1995) J R Stat Soc B 57:289.

    Examples
    --------
    >>> res = noa.tl.compare_composition(adata, sample_key="donor", condition_key="condition",
    ...                                  reference="control", level="broad")  # doctest: +SKIP
    """
    check_in(level, LEVELS, name="level")
    check_in(transform, TRANSFORMS, name="transform")
    for name, key in (("sample_key", sample_key), ("condition_key", condition_key), ("cell_type_key", cell_type_key)):
        if not isinstance(key, str):
            raise ValueError(f"`{name}` must be a column name, got {key!r}.")
    if not 0 < float(confidence) < 1:
        raise ValueError(f"`confidence` must be in (0, 1), got {confidence!r}.")
    if int(min_cells) < 1:
        raise ValueError(f"`min_cells` must be at least 1, got {min_cells}.")
    cells, _ = cell_table(data, columns=[sample_key, condition_key, cell_type_key], values=[])
    present = sample_conditions(cells, sample_key=sample_key, condition_key=condition_key, reference=reference)
    conditions = [c for c in present if c != reference]
    if not conditions:
        raise ValueError(
            f"only the reference condition {reference!r} is present in {condition_key!r}; nothing to compare."
        )
    counts = sample_counts(cells, sample_key=sample_key, cell_type_key=cell_type_key, level=level)
    totals = counts.sum(axis=1)
    small = totals.index[totals < int(min_cells)]
    if len(small):
        warnings.warn(
            f"{len(small)} sample(s) with fewer than {int(min_cells)} cell(s) at level {level!r} left out of the "
            f"composition comparison: {_preview(small)}.",
            UserWarning,
            stacklevel=2,
        )
        counts = counts.drop(index=small)
    sample_condition = cells.groupby(sample_key, observed=True)[condition_key].first()
    sample_condition = sample_condition.reindex(counts.index)

    rows: list[dict[str, Any]] = []
    few: list[str] = []
    for condition in conditions:
        x = counts[(sample_condition == condition).to_numpy()]
        y = counts[(sample_condition == reference).to_numpy()]
        if len(x) < 2 or len(y) < 2:
            few.append(f"{condition} ({len(x)} vs {len(y)} samples)")
        rows.extend(_compare_counts(x.to_numpy(float), y.to_numpy(float), list(counts.columns),
                                    transform=transform, confidence=float(confidence),
                                    condition=condition, reference=reference, level=level))
    if few:
        warnings.warn(
            f"fewer than 2 samples on a side for {few}: p-values and intervals set to NaN (cells of one donor are "
            "not independent replicates; add donors).",
            UserWarning,
            stacklevel=2,
        )
    result = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    p = result["pvalue"].to_numpy(dtype=float)
    ok = np.isfinite(p)
    q = np.full(len(result), np.nan)
    if ok.any():
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    result["qvalue"] = q
    result.attrs["counts"] = {str(k): {str(c): int(v) for c, v in row.items()} for k, row in counts.iterrows()}
    result.attrs["params"] = {
        "sample_key": sample_key,
        "condition_key": condition_key,
        "reference": reference,
        "cell_type_key": cell_type_key,
        "level": level,
        "transform": transform,
        "confidence": float(confidence),
        "min_cells": int(min_cells),
        "pseudo_count": PSEUDO_COUNT,
    }
    return result


def sample_counts(cells: pd.DataFrame, *, sample_key: str, cell_type_key: str, level: str) -> pd.DataFrame:
    """Samples x categories cell counts at ``level`` (vocabulary order, then other labels).

    Cells without a cell type are left out with a warning; at ``level="germ_stage"`` only germ
    stages count and samples without germ cells are left out with a warning.
    """
    check_in(level, LEVELS, name="level")
    labels = cells[cell_type_key]
    missing = labels.isna()
    if missing.any():
        warnings.warn(
            f"{int(missing.sum())} cell(s) without a {cell_type_key!r} label left out of the composition.",
            UserWarning,
            stacklevel=3,
        )
    labels = labels[~missing].astype(str)
    samples = cells.loc[~missing, sample_key]
    if level == "broad":
        labels = labels.map(lambda t: CELL_TYPE_TO_CLASS.get(t, t if t in CELL_CLASSES else "other"))
        order: tuple[str, ...] = CELL_CLASSES
    elif level == "germ_stage":
        keep = labels.isin(GERM_STAGES).to_numpy()
        labels, order = labels[keep], GERM_STAGES
    else:
        order = CELL_TYPES
    all_samples = pd.Index(pd.unique(cells[sample_key].dropna()))
    table = pd.crosstab(samples.loc[labels.index].to_numpy(), labels.to_numpy())
    table = table.reindex(index=all_samples, fill_value=0)
    if level == "germ_stage":
        columns = list(GERM_STAGES)
        empty = table.index[table.sum(axis=1) == 0]
        if len(empty):
            warnings.warn(
                f"{len(empty)} sample(s) without germ cells have no germ-stage composition and are left out: "
                f"{_preview(empty)}.",
                UserWarning,
                stacklevel=3,
            )
            table = table.drop(index=empty)
    else:
        extra = sorted(c for c in table.columns if c not in order)
        columns = [c for c in order if c in table.columns] + extra
    table = table.reindex(columns=columns, fill_value=0).astype(np.int64)
    table.index.name = sample_key
    table.columns.name = level
    return table


def transform_proportions(counts: np.ndarray, transform: str = "logit") -> np.ndarray:
    r"""Per-sample transformed proportions of a samples x categories count matrix.

    ``"logit"``: :math:`\operatorname{logit}((n+0.5)/(N+0.5K))`; ``"asin_sqrt"``:
    :math:`\arcsin\sqrt{n/N}`.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=1, keepdims=True)
    if transform == "logit":
        prop = (counts + PSEUDO_COUNT) / (total + PSEUDO_COUNT * counts.shape[1])
        return np.log(prop) - np.log1p(-prop)
    check_in(transform, TRANSFORMS, name="transform")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.arcsin(np.sqrt(counts / total))


def moderated_two_group(
    x: np.ndarray, y: np.ndarray, *, confidence: float = 0.95
) -> dict[str, np.ndarray | float]:
    r"""Per-column two-group effect, moderated t, p-value and interval (columns = categories).

    ``x`` is condition samples x categories, ``y`` reference samples x categories (transformed
    values). Variances are squeezed across the columns (:func:`._stats.fit_f_prior`).
    """
    nx, ny = x.shape[0], y.shape[0]
    k = x.shape[1]
    effect = x.mean(axis=0) - y.mean(axis=0) if nx and ny else np.full(k, np.nan)
    nan = np.full(k, np.nan)
    if nx < 2 or ny < 2:
        return {"effect": effect, "t": nan, "df": math.nan, "d0": math.nan, "p": nan, "low": nan, "high": nan}
    d = nx + ny - 2
    ss = ((x - x.mean(axis=0)) ** 2).sum(axis=0) + ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    s2 = ss / d
    d0, s0_sq = fit_f_prior(s2, d)
    if math.isinf(d0):
        post = np.full(k, s0_sq)
        df_total = math.inf
    else:
        post = (d0 * s0_sq + d * s2) / (d0 + d)
        df_total = d + d0
    se = np.sqrt(post * (1.0 / nx + 1.0 / ny))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, effect / se, np.nan)
    dist = stats.norm if math.isinf(df_total) else stats.t(df_total)
    p = 2 * dist.sf(np.abs(t))
    half = dist.ppf(0.5 + confidence / 2) * se
    half = np.where(se > 0, half, np.nan)
    return {"effect": effect, "t": t, "df": df_total, "d0": d0, "p": p, "low": effect - half, "high": effect + half}


def _compare_counts(
    x: np.ndarray,
    y: np.ndarray,
    categories: list[str],
    *,
    transform: str,
    confidence: float,
    condition: Any,
    reference: Any,
    level: str,
) -> list[dict[str, Any]]:
    fit = moderated_two_group(transform_proportions(x, transform), transform_proportions(y, transform),
                              confidence=confidence)
    px = x / x.sum(axis=1, keepdims=True) if len(x) else np.empty((0, len(categories)))
    py = y / y.sum(axis=1, keepdims=True) if len(y) else np.empty((0, len(categories)))
    rows = []
    for j, name in enumerate(categories):
        mx = float(px[:, j].mean()) if len(px) else math.nan
        my = float(py[:, j].mean()) if len(py) else math.nan
        rows.append(
            {
                "cell_type": name,
                "level": level,
                "condition": condition,
                "reference": reference,
                "n_samples": len(x),
                "n_reference_samples": len(y),
                "n_cells": int(x[:, j].sum()) if len(x) else 0,
                "n_reference_cells": int(y[:, j].sum()) if len(y) else 0,
                "proportion": mx,
                "reference_proportion": my,
                "proportion_difference": mx - my,
                "proportion_ratio": mx / my if my > 0 else math.nan,
                "transform": transform,
                "effect": float(fit["effect"][j]),
                "ci_low": float(fit["low"][j]),
                "ci_high": float(fit["high"][j]),
                "statistic": float(fit["t"][j]),
                "df": float(fit["df"]),
                "prior_df": float(fit["d0"]),
                "pvalue": float(fit["p"][j]),
                "qvalue": math.nan,
            }
        )
    return rows


def cell_level_chisquare(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""Per-category p-values of the cell-level chi-square test (the pseudoreplicated baseline).

    Counts of all samples of a side are pooled and each category is tested against all others
    with the 2 x 2 Pearson chi-square (no continuity correction), treating every cell as an
    independent observation. Shown only to demonstrate why it must not be used: it ignores the
    donor-to-donor variation of proportions.
    """
    a = np.asarray(x, dtype=np.float64).sum(axis=0)
    b = np.asarray(y, dtype=np.float64).sum(axis=0)
    pvalues = np.full(len(a), np.nan)
    for j in range(len(a)):
        table = np.array([[a[j], a.sum() - a[j]], [b[j], b.sum() - b[j]]])
        if (table.sum(axis=0) > 0).all() and (table.sum(axis=1) > 0).all():
            pvalues[j] = stats.chi2_contingency(table, correction=False)[1]
    return pvalues
