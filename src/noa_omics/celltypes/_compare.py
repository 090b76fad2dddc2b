r"""Donor-level comparison of per-cell values between conditions (:func:`compare_conditions`).

The sample (donor), not the cell, is the unit of replication: cells of one donor share its
genotype, age, biopsy and dissociation, so treating thousands of cells as independent
observations makes p-values arbitrarily small for differences that do not replicate across
donors (pseudoreplication; Squair et al. 2021, Nat Commun 12:5692; Zimmerman et al. 2021,
Nat Commun 12:738). Per-cell values are therefore averaged per sample first and the sample
means are compared, or a mixed model with a donor random intercept is fitted.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from statsmodels.stats.multitest import multipletests

from .._validation import check_in
from .._vocabulary import GERM_STAGES
from ._stats import MAX_EXACT_PERMUTATIONS, hedges_g, permutation_test, welch_test
from ._utils import as_key_list, cell_table, levels, sample_conditions

METHODS = ("welch", "permutation", "mixed")
#: Gene-set name prefix of the stress sets checked against the dissociation control.
STRESS_PREFIX = "stress_"
_STRATUM = "__noa_stratum__"

RESULT_COLUMNS = [
    "variable",
    "group",
    "condition",
    "reference",
    "method",
    "n_samples",
    "n_reference_samples",
    "n_cells",
    "n_reference_cells",
    "mean",
    "reference_mean",
    "effect",
    "effect_std",
    "ci_low",
    "ci_high",
    "statistic",
    "df",
    "pvalue",
    "qvalue",
    "adjusted_by",
]


def compare_conditions(
    data: AnnData | pd.DataFrame,
    *,
    value_key: str | Sequence[str],
    sample_key: str,
    condition_key: str,
    reference: Any,
    groupby: str | None = None,
    method: str = "welch",
    covariates: Sequence[str] | None = None,
    score_key: str | None = None,
    cell_type_key: str | None = "noa_cell_type",
    stratify: bool = True,
    n_permutations: int = MAX_EXACT_PERMUTATIONS,
    random_state: int = 0,
    min_cells: int = 10,
    control_key: str | None = "control_dissociation",
    alpha: float = 0.05,
    gene_symbols: str | None = None,
    layer: str | None = None,
    species: str | None = None,
) -> pd.DataFrame:
    r"""Compare per-cell values (scores) between conditions with the sample as the unit.

    For every value, group and non-reference condition: per-cell values are averaged per
    sample (:math:`\bar v_s`, samples with fewer than ``min_cells`` cells in the group are left
    out), then the sample means of the condition (:math:`x`, :math:`n_x` samples) are compared
    with those of the reference (:math:`y`, :math:`n_y` samples).

    - ``effect`` :math:`= \bar x - \bar y`, the difference of donor means (for ``"mixed"``,
      the fixed effect of the condition).
    - ``effect_std``: Hedges' :math:`g = J\,(\bar x-\bar y)/s_p` with
      :math:`s_p^2 = \frac{(n_x-1)s_x^2 + (n_y-1)s_y^2}{n_x+n_y-2}` and
      :math:`J = 1 - \frac{3}{4(n_x+n_y)-9}`.
    - ``method="welch"``: :math:`t = (\bar x - \bar y)/\sqrt{s_x^2/n_x + s_y^2/n_y}` on
      Welch-Satterthwaite :math:`\nu = \frac{(s_x^2/n_x + s_y^2/n_y)^2}{\frac{(s_x^2/n_x)^2}{n_x-1}
      + \frac{(s_y^2/n_y)^2}{n_y-1}}` degrees of freedom; two-sided p; 95% CI
      :math:`\bar x - \bar y \pm t_{\nu,0.975}\,\mathrm{SE}`.
    - ``method="permutation"``: two-sided p of :math:`|\bar x - \bar y|` over relabellings of
      the samples, enumerated exactly when :math:`\binom{n_x+n_y}{n_x} \le
      \max(n\_permutations, 10^4)`, else ``n_permutations`` Monte Carlo relabellings with
      :math:`p = (1+b)/(1+B)`. The CI is the Welch interval (a permutation test has no
      interval of its own; a bootstrap over 3-6 donors would be too coarse).
    - ``method="mixed"``: :class:`statsmodels.regression.mixed_linear_model.MixedLM` on the
      per-cell values, :math:`v_{ci} = \beta_0 + \beta_1 [\text{condition}] +
      \gamma^\top \text{covariates} + u_{s(c)} + \varepsilon_{ci}` with a random intercept
      :math:`u_s \sim N(0, \tau^2)` per sample (REML); effect :math:`\hat\beta_1`, Wald p and
      95% CI. The Wald test is anti-conservative with few donors; prefer Welch or permutation
      below ~10 donors per side.
    - ``qvalue``: Benjamini-Hochberg over every p-value of the call
      (:func:`statsmodels.stats.multitest.multipletests`, ``fdr_bh``).

    With fewer than two samples on a side the p-value and CI are NaN and a warning is emitted:
    one donor carries no information about donor-to-donor variation, however many cells it has.

    Parameters
    ----------
    data
        AnnData (values looked up in ``obs``, then in the score tables of ``obsm``, e.g.
        ``obsm["noa_score_genes"]["apoptosis_intrinsic"]``) or a per-cell DataFrame.
    value_key
        One value (gene-set score or numeric obs column) or a list of them.
    sample_key, condition_key
        Columns with the sample (donor) id and its condition; each sample must have one
        condition.
    reference
        The reference condition (e.g. ``"control"``); every other condition is compared with it.
    groupby
        Optional column (e.g. ``"noa_cell_type"``) to compare within each of its groups. Germ
        stages are cell types, so ``groupby="noa_cell_type"`` compares within stage: pooling germ
        cells would confound apoptosis with stage composition (arrested testes lack late stages).
        When a group holds several germ stages (``groupby="noa_cell_class"`` or no ``groupby``) and
        ``stratify`` is true, values are centred within each ``cell_type_key`` type among the
        cells of the comparison before averaging per sample (for ``"mixed"`` the type enters as a
        fixed effect); ``adjusted_by`` then says ``"cell_type"``.
    method
        ``"welch"`` (default), ``"permutation"`` or ``"mixed"``.
    covariates
        Per-cell numeric columns (e.g. depth, mitochondrial fraction) used as fixed effects by
        ``"mixed"``; ignored with a warning by the other methods.
    score_key
        obsm key of the score table to read values from (AnnData only); default: ``obs``, then
        any obsm score table, preferring ``noa_score_genes``.
    cell_type_key
        Fine cell-type column used for stage stratification (skipped when absent).
    stratify
        Centre within cell type when a group contains several germ stages (see ``groupby``).
    n_permutations
        Monte Carlo relabellings (and the exact-enumeration threshold, at least 10,000).
    random_state
        Seed of the Monte Carlo permutations.
    min_cells
        Minimum cells of a sample in a group for the sample to count (default 10). A donor mean
        over one or two cells is mostly sampling noise of those cells, yet it weighs as much as
        a donor mean over hundreds; with 10 cells the standard error of a donor mean is about
        a third of the per-cell standard deviation. Samples left out are named in one warning;
        pass ``min_cells=1`` to keep every sample.
    control_key
        Dissociation-stress control score. When a value starts with ``stress_`` the same
        comparison is run on it and reported in ``dissociation_effect`` /
        ``dissociation_pvalue``; ``dissociation_confounded`` is true (and a warning is emitted)
        when both the stress and the dissociation effect have p < ``alpha`` with the same sign
        (NA when either p-value is NaN).
    alpha
        Level for the dissociation-confounding flag.
    gene_symbols, layer, species
        Used when the comparison scores: a ``value_key`` (or the dissociation control) that is a
        curated gene-set name found neither in ``obs`` nor in a score table is scored here with
        ``noa.tl.score(method="score_genes")`` on the log-normalised ``layer`` (``"raw"``:
        ``raw.X``; raw counts are normalised on a copy), genes matched by the package rule
        (``gene_symbols`` column, or the well-known symbol column for Ensembl ``var_names``;
        :mod:`noa_omics._identifiers`). ``adata`` is not modified.

    Returns
    -------
    pandas.DataFrame
        One row per value x group x condition with columns ``variable``, ``group`` (None without
        ``groupby``), ``condition``, ``reference``, ``method``, ``n_samples``,
        ``n_reference_samples``, ``n_cells``, ``n_reference_cells``, ``mean``,
        ``reference_mean`` (means of donor means), ``effect``, ``effect_std``, ``ci_low``,
        ``ci_high``, ``statistic`` (t; |mean difference| for permutation; z for mixed), ``df``,
        ``pvalue``, ``qvalue``, ``adjusted_by`` and, for stress values, the dissociation
        columns. Comparisons without samples on a side give a row of NaN and a warning.

    References
    ----------
    Welch BL (1947) Biometrika 34:28. Satterthwaite FE (1946) Biometrics Bull 2:110. Hedges LV
    (1981) J Educ Stat 6:107. Phipson B, Smyth GK (2010) Stat Appl Genet Mol Biol 9:39.
    Benjamini Y, Hochberg Y (1995) J R Stat Soc B 57:289. Squair JW et al. (2021) Nat Commun
    12:5692.

    Examples
    --------
    >>> res = noa.tl.compare_conditions(adata, value_key="apoptosis_intrinsic", sample_key="donor",
    ...                                 condition_key="condition", reference="control",
    ...                                 groupby="noa_cell_type")  # doctest: +SKIP
    """
    keys = as_key_list(value_key)
    check_in(method, METHODS, name="method")
    covariates = as_key_list(covariates, name="covariates") if covariates else []
    if covariates and method != "mixed":
        warnings.warn(
            f"covariates {covariates} are only used by method='mixed'; they are ignored by {method!r}.",
            UserWarning,
            stacklevel=2,
        )
        covariates = []
    if int(min_cells) < 1:
        raise ValueError(f"`min_cells` must be at least 1, got {min_cells}.")
    for name, key in (("sample_key", sample_key), ("condition_key", condition_key)):
        if not isinstance(key, str):
            raise ValueError(f"`{name}` must be a column name, got {key!r}.")
    stress = [k for k in keys if k.startswith(STRESS_PREFIX)]
    optional = [control_key] if stress and control_key and control_key not in keys else []
    type_key = cell_type_key if stratify and cell_type_key and cell_type_key != groupby else None
    if type_key is not None and not _has_column(data, type_key):
        type_key = None
    if score_key is None:
        data = _score_absent_sets(data, [*keys, *optional], gene_symbols=gene_symbols, layer=layer, species=species,
                                  design=(sample_key, condition_key, groupby, reference))
    cells, found = cell_table(
        data,
        columns=[sample_key, condition_key, groupby, type_key, *covariates],
        values=[*keys, *covariates],
        score_key=score_key,
        optional_values=optional,
    )
    if stress and control_key and control_key not in keys and not found:
        warnings.warn(
            f"stress value(s) {stress} requested but the dissociation control {control_key!r} was not found; "
            "dissociation confounding was not checked (score the `control_dissociation` set too).",
            UserWarning,
            stacklevel=2,
        )
    conditions = _conditions(cells, sample_key=sample_key, condition_key=condition_key, reference=reference)
    groups: list[Any] = [None] if groupby is None else levels(cells[groupby])
    tested = [*keys, *[k for k in found if k not in keys]]

    rows: list[dict[str, Any]] = []
    problems: dict[str, list[str]] = {"empty": [], "few": [], "flat": [], "fit": []}
    for key in tested:
        n_nan = int(cells[key].isna().sum())
        if n_nan:
            warnings.warn(
                f"{n_nan} cell(s) have no value for {key!r} (NaN) and are left out of its comparison.",
                UserWarning,
                stacklevel=2,
            )
        for group in groups:
            sub = cells if group is None else cells[cells[groupby] == group]
            sub = sub[sub[key].notna()]
            for condition in conditions:
                rows.append(
                    _compare_one(
                        sub,
                        key=key,
                        group=group,
                        condition=condition,
                        reference=reference,
                        sample_key=sample_key,
                        condition_key=condition_key,
                        type_key=type_key,
                        covariates=covariates,
                        method=method,
                        n_permutations=n_permutations,
                        random_state=random_state,
                        min_cells=int(min_cells),
                        problems=problems,
                    )
                )
    result = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    _warn_problems(problems, min_cells=int(min_cells))
    if optional and found:
        control = result[result["variable"] == control_key]
        result = result[result["variable"] != control_key].reset_index(drop=True)
        result = _attach_dissociation(result, control, stress=stress, alpha=alpha, control_key=control_key)
    pvalues = result["pvalue"].to_numpy(dtype=float)
    ok = np.isfinite(pvalues)
    q = np.full(len(result), np.nan)
    if ok.any():
        q[ok] = multipletests(pvalues[ok], method="fdr_bh")[1]
    result["qvalue"] = q
    if groupby is None:
        result["group"] = None
    result.attrs["params"] = {
        "value_key": keys,
        "sample_key": sample_key,
        "condition_key": condition_key,
        "reference": reference,
        "groupby": groupby,
        "method": method,
        "covariates": covariates,
        "min_cells": int(min_cells),
        "n_permutations": int(n_permutations),
        "random_state": random_state,
        "gene_symbols": gene_symbols,
    }
    return result


#: obsm key of the scores computed by :func:`compare_conditions` (on a light copy, never on the input).
SCORED_HERE_KEY = "noa_compare_scores"


def _score_absent_sets(data: Any, keys: list[str], *, gene_symbols: str | None, layer: str | None,
                       species: str | None, design: tuple) -> Any:
    """``data`` with the curated gene sets named in ``keys`` but absent from ``obs`` and the score
    tables scored (in a light AnnData sharing ``obs``); ``data`` itself when nothing is to score."""
    from ..genesets import detect_species, load
    from ..scoring import score
    from ._utils import log_normalized_view, score_tables

    if not isinstance(data, AnnData):
        return data
    sample_key, condition_key, groupby, reference = design
    if any(c is not None and c not in data.obs.columns for c in (sample_key, condition_key, groupby)):
        return data  # the design error is reported by cell_table, before any scoring
    present = set(data.obs[condition_key].dropna().unique())
    if reference not in present or len(present) < 2:
        return data
    tables = score_tables(data)
    absent = [k for k in keys if k not in data.obs.columns and not any(k in t.columns for t in tables.values())]
    if not absent or data.n_vars == 0:
        return data
    view, _ = log_normalized_view(data, layer, gene_symbols=gene_symbols)
    species = species or detect_species(view.var_names)
    if species is None:
        return data
    library = load(species)
    wanted = {k: list(library[k].genes) for k in absent if k in library}
    if not wanted:
        return data
    scored = score(view, wanted, species=species, inplace=False)
    return AnnData(obs=data.obs, obsm={**tables, SCORED_HERE_KEY: scored})


def _has_column(data: Any, key: str) -> bool:
    if isinstance(data, AnnData):
        return key in data.obs.columns
    return isinstance(data, pd.DataFrame) and key in data.columns



def _conditions(cells: pd.DataFrame, *, sample_key: str, condition_key: str, reference: Any) -> list[Any]:
    present = sample_conditions(cells, sample_key=sample_key, condition_key=condition_key, reference=reference)
    others = [c for c in present if c != reference]
    if not others:
        raise ValueError(
            f"only the reference condition {reference!r} is present in {condition_key!r}; nothing to compare."
        )
    return others


def _sample_means(cells: pd.DataFrame, key: str, sample_key: str, min_cells: int) -> tuple[np.ndarray, int]:
    stats = cells.groupby(sample_key, observed=True)[key].agg(["mean", "size"])
    stats = stats[stats["size"] >= min_cells]
    return stats["mean"].to_numpy(dtype=float), int(stats["size"].sum())


def _n_germ_stages(cells: pd.DataFrame, type_key: str | None) -> int:
    if type_key is None:
        return 0
    return len(set(cells[type_key].dropna().astype(str)) & set(GERM_STAGES))


def _compare_one(
    sub: pd.DataFrame,
    *,
    key: str,
    group: Any,
    condition: Any,
    reference: Any,
    sample_key: str,
    condition_key: str,
    type_key: str | None,
    covariates: list[str],
    method: str,
    n_permutations: int,
    random_state: int,
    min_cells: int,
    problems: dict[str, list[str]],
) -> dict[str, Any]:
    label = f"{key}" + ("" if group is None else f" / {group}") + f" / {condition}"
    pair = sub[sub[condition_key].isin([condition, reference])]
    stratified = _n_germ_stages(pair, type_key) > 1
    if stratified:
        pair = pair.copy()
        type_mean = pair.groupby(pair[type_key].astype(object))[key].transform("mean")
        pair[key] = pair[key] - type_mean
    x, n_cells = _sample_means(pair[pair[condition_key] == condition], key, sample_key, min_cells)
    y, n_ref_cells = _sample_means(pair[pair[condition_key] == reference], key, sample_key, min_cells)
    sizes = pair.groupby(sample_key, observed=True).size()
    problems.setdefault("small", []).extend(f"{s} ({label}: {n})" for s, n in sizes[sizes < min_cells].items())
    row: dict[str, Any] = {
        "variable": key,
        "group": group,
        "condition": condition,
        "reference": reference,
        "method": method,
        "n_samples": len(x),
        "n_reference_samples": len(y),
        "n_cells": n_cells,
        "n_reference_cells": n_ref_cells,
        "mean": float(x.mean()) if len(x) else math.nan,
        "reference_mean": float(y.mean()) if len(y) else math.nan,
        "effect": math.nan,
        "effect_std": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "statistic": math.nan,
        "df": math.nan,
        "pvalue": math.nan,
        "qvalue": math.nan,
        "adjusted_by": "cell_type" if stratified else None,
    }
    if stratified:
        # centred values: report the raw donor means, not the centred ones
        raw_x, _ = _sample_means(sub[sub[condition_key] == condition], key, sample_key, min_cells)
        raw_y, _ = _sample_means(sub[sub[condition_key] == reference], key, sample_key, min_cells)
        row["mean"] = float(raw_x.mean()) if len(raw_x) else math.nan
        row["reference_mean"] = float(raw_y.mean()) if len(raw_y) else math.nan
    if not len(x) or not len(y):
        problems["empty"].append(label)
        return row
    row["effect"] = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        problems["few"].append(f"{label} ({len(x)} vs {len(y)} samples)")
        return row
    row["effect_std"] = hedges_g(x, y)
    welch = welch_test(x, y)
    if not np.isfinite(welch.pvalue) and method != "mixed":
        problems["flat"].append(label)
        return row
    row.update(ci_low=welch.ci_low, ci_high=welch.ci_high, statistic=welch.statistic, df=welch.df, pvalue=welch.pvalue)
    if method == "permutation":
        p, _exact = permutation_test(x, y, n_permutations=n_permutations, random_state=random_state)
        row.update(statistic=abs(row["effect"]), df=math.nan, pvalue=p)
    elif method == "mixed":
        fit = _mixed(pair, key=key, sample_key=sample_key, condition_key=condition_key, condition=condition,
                     type_key=type_key if stratified else None, covariates=covariates, min_cells=min_cells)
        if fit is None:
            problems["fit"].append(label)
            row.update(ci_low=math.nan, ci_high=math.nan, statistic=math.nan, df=math.nan, pvalue=math.nan)
        else:
            row.update(fit)
    return row


def _mixed(
    pair: pd.DataFrame,
    *,
    key: str,
    sample_key: str,
    condition_key: str,
    condition: Any,
    type_key: str | None,
    covariates: list[str],
    min_cells: int,
) -> dict[str, float] | None:
    import statsmodels.formula.api as smf

    sizes = pair.groupby(sample_key, observed=True)[key].transform("size")
    pair = pair[(sizes >= min_cells).to_numpy()]
    frame = pd.DataFrame(
        {
            "value": pair[key].to_numpy(dtype=float),
            "treated": (pair[condition_key] == condition).to_numpy(dtype=float),
            "sample": pair[sample_key].astype(str).to_numpy(),
        }
    )
    terms = ["treated"]
    for i, cov in enumerate(covariates):
        frame[f"cov{i}"] = pair[cov].to_numpy(dtype=float)
        terms.append(f"cov{i}")
    if type_key is not None:
        frame["stratum"] = pair[type_key].astype(str).to_numpy()
        terms.append("C(stratum)")
    frame = frame.dropna()
    # statsmodels' default L-BFGS can stop at a degenerate point (all-zero coefficients, NaN
    # standard errors) when the donor variance is near 0 and covariates are present; Powell and
    # Nelder-Mead do not, so they go first.
    for optimizer in ("powell", "nm", "lbfgs"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = smf.mixedlm("value ~ " + " + ".join(terms), frame, groups=frame["sample"])
                fit = model.fit(reml=True, method=[optimizer])
            ci = fit.conf_int().loc["treated"]
            out = {
                "effect": float(fit.params["treated"]),
                "statistic": float(fit.tvalues["treated"]),
                "df": math.nan,
                "pvalue": float(fit.pvalues["treated"]),
                "ci_low": float(ci.iloc[0]),
                "ci_high": float(ci.iloc[1]),
            }
        except (np.linalg.LinAlgError, ValueError, KeyError, IndexError):
            continue
        if fit.converged and all(np.isfinite(v) for k, v in out.items() if k != "df"):
            return out
    return None


def _warn_problems(problems: dict[str, list[str]], *, min_cells: int) -> None:
    small = problems.get("small", [])
    if small:
        warnings.warn(
            f"{len(small)} sample x comparison pair(s) left out with fewer than min_cells={min_cells} cells: "
            f"{small[:10]}{' ...' if len(small) > 10 else ''} (pass min_cells=1 to keep them).",
            UserWarning,
            stacklevel=3,
        )
    if problems["empty"]:
        warnings.warn(
            f"no sample with at least {min_cells} cell(s) on one side for {len(problems['empty'])} comparison(s) "
            f"(row kept with NaN): {problems['empty'][:10]}{' ...' if len(problems['empty']) > 10 else ''}",
            UserWarning,
            stacklevel=3,
        )
    if problems["few"]:
        warnings.warn(
            f"fewer than 2 samples on a side for {len(problems['few'])} comparison(s): p-value and CI set to NaN "
            "(cells of one donor are not independent replicates; add donors): "
            f"{problems['few'][:10]}{' ...' if len(problems['few']) > 10 else ''}",
            UserWarning,
            stacklevel=3,
        )
    if problems["flat"]:
        warnings.warn(
            f"no variation between samples for {len(problems['flat'])} comparison(s); p-value and CI set to NaN: "
            f"{problems['flat'][:10]}",
            UserWarning,
            stacklevel=3,
        )
    if problems["fit"]:
        warnings.warn(
            f"the mixed model could not be fitted for {len(problems['fit'])} comparison(s); p-value and CI set to "
            f"NaN: {problems['fit'][:10]}",
            UserWarning,
            stacklevel=3,
        )


def _attach_dissociation(
    result: pd.DataFrame, control: pd.DataFrame, *, stress: list[str], alpha: float, control_key: str
) -> pd.DataFrame:
    lookup = control.set_index(["group", "condition"], drop=False)
    effects, pvalues, flags = [], [], []
    flagged = []
    for row in result.itertuples(index=False):
        if row.variable not in stress:
            effects.append(math.nan)
            pvalues.append(math.nan)
            flags.append(None)
            continue
        try:
            ctrl = lookup.loc[(row.group, row.condition)]
            if isinstance(ctrl, pd.DataFrame):
                ctrl = ctrl.iloc[0]
            d_effect, d_p = float(ctrl["effect"]), float(ctrl["pvalue"])
        except KeyError:
            d_effect, d_p = math.nan, math.nan
        if not (np.isfinite(d_p) and np.isfinite(row.pvalue)):
            effects.append(d_effect)
            pvalues.append(d_p)
            flags.append(None)  # not assessable without both p-values
            continue
        confounded = bool(d_p < alpha and row.pvalue < alpha and np.sign(d_effect) == np.sign(row.effect))
        if confounded:
            flagged.append(f"{row.variable}" + ("" if row.group is None else f" / {row.group}") + f" / {row.condition}")
        effects.append(d_effect)
        pvalues.append(d_p)
        flags.append(confounded)
    result = result.copy()
    result["dissociation_effect"] = effects
    result["dissociation_pvalue"] = pvalues
    result["dissociation_confounded"] = pd.array(flags, dtype="boolean")
    if flagged:
        warnings.warn(
            f"stress effect(s) {flagged} track the dissociation control {control_key!r} (same sign, both p < {alpha}); "
            "they may reflect tissue dissociation rather than in-vivo stress.",
            UserWarning,
            stacklevel=3,
        )
    return result
