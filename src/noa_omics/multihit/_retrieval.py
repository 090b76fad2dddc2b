r"""``noa.tl.retrieval_model``: sperm-retrieval (TESE) biomarker harness with nested cross-validation.

Any per-donor table (the multi-hit table, tubule metrics, clinical covariates) is turned into a
design matrix (numeric columns; categorical columns one-hot encoded; free text dropped) and
evaluated by nested cross-validation:

- outer loop: repeated stratified :math:`K`-fold; each donor is predicted by a model that never
  saw it; the AUROC and Brier score are computed on the pooled out-of-fold predictions (averaged
  over repeats);
- inner loop: the hyper-parameters (the inverse penalty :math:`C` of the logistic regression by
  default, with :class:`~sklearn.linear_model.LogisticRegressionCV`) are tuned by stratified
  cross-validation on the outer training donors only;
- imputation and scaling are steps of the pipeline, fitted on the outer training donors only
  (the inner folds of the logistic model share that label-free scaling).

Uncertainty: a percentile bootstrap over donors of the out-of-fold AUROC (95% interval) and a
permutation test in which the outcome is permuted and the *whole* nested cross-validation is rerun,
:math:`p = (1 + \#\{b: \mathrm{AUROC}_b \ge \mathrm{AUROC}\}) / (1 + B)` (Phipson & Smyth 2010).

References
----------
Varma S & Simon R (2006). Bias in error estimation when using cross-validation for model
selection. BMC Bioinformatics 7:91. doi:10.1186/1471-2105-7-91

Phipson B & Smyth GK (2010). Permutation p-values should never be zero: calculating exact
p-values when permutations are randomly drawn. Stat Appl Genet Mol Biol 9(1), Article 39.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .._validation import _preview, check_frame_columns

ESTIMATORS: tuple[str, ...] = ("logistic", "random_forest")
#: Minimum donors per outcome class, whatever the number of folds.
MIN_PER_CLASS = 5
_TRUE = {"1", "true", "yes", "y", "success", "successful", "positive", "retrieved"}
_FALSE = {"0", "false", "no", "n", "failure", "failed", "negative", "not_retrieved"}


@dataclass
class RetrievalResult:
    """Result of :func:`retrieval_model`.

    Attributes
    ----------
    auroc
        Area under the ROC curve of the pooled out-of-fold predictions.
    auroc_ci
        Percentile bootstrap 95% interval (low, high) of ``auroc``, resampling donors.
    brier
        Brier score of the out-of-fold probabilities (0 perfect, 0.25 = always 0.5).
    permutation_pvalue
        :math:`(1 + \\#\\{\\mathrm{AUROC}_{perm} \\ge \\mathrm{AUROC}\\}) / (1 + B)`; NaN when
        ``n_permutations=0``.
    importances
        Per feature: ``coefficient`` (logistic regression on standardised features) or
        ``model_importance`` (e.g. impurity importance of a forest) of the model refitted on all
        donors, and ``permutation_importance`` / ``permutation_importance_sd``: the drop of the
        out-of-fold AUROC when the feature is permuted within each held-out fold.
    calibration
        Reliability curve: ``bin``, ``mean_predicted``, ``observed_fraction``, ``n``.
    predictions
        Out-of-fold probability of success per donor (mean over repeats).
    null_aurocs
        AUROC of each permutation.
    outcome
        The outcome as 0/1 per donor.
    params
        Parameters, features used and dropped, class counts, tuned hyper-parameters.
    """

    auroc: float
    auroc_ci: tuple[float, float]
    brier: float
    permutation_pvalue: float
    importances: pd.DataFrame
    calibration: pd.DataFrame
    predictions: pd.Series
    null_aurocs: np.ndarray = field(repr=False)
    outcome: pd.Series = field(repr=False)
    params: dict = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        """One line: AUROC with its interval, Brier score and permutation p-value."""
        lo, hi = self.auroc_ci
        return (
            f"AUROC {self.auroc:.3f} (95% CI {lo:.3f}-{hi:.3f}), Brier {self.brier:.3f}, "
            f"permutation p = {self.permutation_pvalue:.3g} "
            f"({self.params.get('n_donors')} donors, {self.params.get('n_positive')} successes)"
        )


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _as_binary(y: pd.Series) -> pd.Series:
    if y.isna().any():
        raise ValueError(
            f"the outcome is missing for donor(s) {list(y.index[y.isna()][:10])}; "
            "drop those donors (features.loc[...]) or give them an outcome."
        )
    if pd.api.types.is_bool_dtype(y):
        return y.astype(int)
    if pd.api.types.is_numeric_dtype(y):
        values = set(np.unique(y.to_numpy(dtype=float)))
        if values <= {0.0, 1.0}:
            return y.astype(int)
        raise ValueError(
            f"a numeric outcome must be 0/1 (1 = sperm retrieved); got values {sorted(values)[:10]}."
        )
    text = y.astype(str).str.strip().str.lower()
    unknown = sorted(set(text) - _TRUE - _FALSE)
    if unknown:
        raise ValueError(
            f"cannot read outcome value(s) {unknown[:10]} as success/failure; use booleans, 0/1 or "
            "yes/no (1/True/yes = sperm retrieved)."
        )
    return text.isin(_TRUE).astype(int)


def _outcome(features: pd.DataFrame, outcome: Any) -> tuple[pd.DataFrame, pd.Series]:
    if isinstance(outcome, str):
        check_frame_columns(features, [outcome], name="features")
        y = features[outcome]
        X = features.drop(columns=[outcome])
    elif isinstance(outcome, pd.Series):
        missing = [i for i in features.index if i not in outcome.index]
        if missing:
            raise ValueError(
                f"the outcome has no value for donor(s) {missing[:10]} of the feature table; "
                "index the outcome Series by the same donor ids as `features`."
            )
        y = outcome.reindex(features.index)
        X = features
    elif isinstance(outcome, (Sequence, np.ndarray)):
        if len(outcome) != len(features):
            raise ValueError(
                f"the outcome has {len(outcome)} values but `features` has {len(features)} rows; "
                "give one outcome per donor (or a Series indexed by donor)."
            )
        y = pd.Series(np.asarray(outcome), index=features.index)
        X = features
    else:
        raise TypeError(
            "`outcome` must be a column name of `features`, a Series indexed by donor or a list, "
            f"got {type(outcome).__name__}."
        )
    return X, _as_binary(pd.Series(y, index=features.index, name="outcome"))


def design_matrix(
    features: pd.DataFrame, feature_columns: Sequence[str] | None = None, *, max_levels: int = 10
) -> tuple[pd.DataFrame, list[str]]:
    """Numeric design matrix: numeric and boolean columns as they are, categorical columns with at
    most ``max_levels`` levels one-hot encoded; free text and all-missing columns are dropped.

    Returns the matrix and the names of the dropped columns.
    """
    if feature_columns is not None:
        check_frame_columns(features, list(feature_columns), name="features")
        features = features[list(feature_columns)]
    parts, dropped = [], []
    for col in features.columns:
        s = features[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            s = s.astype(float)
            if s.isna().all():
                dropped.append(str(col))
                continue
            parts.append(s.rename(str(col)))
        else:
            levels = s.dropna().astype(str).unique()
            if len(levels) < 2 or len(levels) > max_levels or len(levels) >= len(s):
                dropped.append(str(col))
                continue
            dummies = pd.get_dummies(s.astype("string"), prefix=str(col), prefix_sep="=", dtype=float)
            parts.extend(dummies[c] for c in dummies.columns)
    if not parts:
        raise ValueError(
            f"`features` has no numeric or categorical column to learn from (columns: {_preview(features.columns)}; "
            f"dropped as free text, constant or empty: {dropped}). Pass a per-donor table with numeric columns."
        )
    return pd.concat(parts, axis=1), dropped


#: Inverse penalties tried for the default logistic regression.
LOGISTIC_CS: tuple[float, ...] = tuple(np.logspace(-3, 2, 6))


def _logistic_cv(inner_folds: int, random_state: int, Cs: Sequence[float]) -> LogisticRegressionCV:
    kwargs: dict[str, Any] = {
        "Cs": list(Cs),
        "cv": StratifiedKFold(n_splits=inner_folds, shuffle=True, random_state=random_state),
        "scoring": "roc_auc",
        "max_iter": 2000,
        "solver": "lbfgs",
    }
    params = LogisticRegressionCV().get_params()
    if "l1_ratios" in params:  # scikit-learn >= 1.8: L2 penalty is l1_ratio 0
        kwargs["l1_ratios"] = (0.0,)
    if "use_legacy_attributes" in params:
        kwargs["use_legacy_attributes"] = False
    return LogisticRegressionCV(**kwargs)


def _pipeline(
    estimator: Any, random_state: int, param_grid: Mapping | None, inner_folds: int
) -> tuple[Pipeline, dict]:
    """The model pipeline and the grid tuned by GridSearchCV (empty when tuning is built in)."""
    if isinstance(estimator, str):
        if estimator == "logistic":
            Cs = LOGISTIC_CS
            if param_grid is not None:
                extra = sorted(set(k.removeprefix("model__") for k in param_grid) - {"C", "Cs"})
                if extra:
                    raise ValueError(
                        f"param_grid for the default logistic model may only set 'C' (got {extra}); pass your own "
                        "scikit-learn estimator to tune other parameters."
                    )
                Cs = tuple(next(iter(param_grid.values())))
            model = _logistic_cv(inner_folds, random_state, Cs)
            steps = [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler()), ("model", model)]
            return Pipeline(steps), {}
        elif estimator == "random_forest":
            # forests are insensitive enough to their settings to skip tuning by default (and
            # tuning multiplies the cost by the grid size x inner folds); pass param_grid to tune
            model = RandomForestClassifier(n_estimators=200, min_samples_leaf=3, random_state=random_state, n_jobs=1)
            grid = {}
            steps = [("impute", SimpleImputer(strategy="median")), ("model", model)]
        else:
            raise ValueError(
                f"unknown estimator {estimator!r}; use one of {list(ESTIMATORS)} or pass a scikit-learn classifier."
            )
    elif isinstance(estimator, BaseEstimator) and hasattr(estimator, "fit"):
        if not (hasattr(estimator, "predict_proba") or hasattr(estimator, "decision_function")):
            raise ValueError(
                f"estimator {type(estimator).__name__} has neither predict_proba nor decision_function; "
                "pass a classifier."
            )
        model = clone(estimator)
        if "random_state" in model.get_params():
            model.set_params(random_state=random_state)
        steps = [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler()), ("model", model)]
        grid = {}
    else:
        raise TypeError(
            f"`estimator` must be {list(ESTIMATORS)} or a scikit-learn classifier, got {type(estimator).__name__}."
        )
    if param_grid is not None:
        grid = {k if k.startswith("model__") else f"model__{k}": list(v) for k, v in param_grid.items()}
    return Pipeline(steps), grid


def _tuned(pipe: Pipeline, grid: dict) -> bool:
    return bool(grid) or isinstance(pipe.named_steps["model"], LogisticRegressionCV)


def auroc_score(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half).

    Equal to :func:`sklearn.metrics.roc_auc_score` for binary outcomes, without its input
    validation overhead (it is called thousands of times by the bootstrap and the permutations).
    """
    y = np.asarray(y)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return np.nan
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _needed_per_class(outer_folds: int, inner_folds: int, tuned: bool) -> int:
    need = max(outer_folds, MIN_PER_CLASS)
    if tuned:
        # the outer training part of the smaller class must still fill the inner folds
        while need - math.ceil(need / outer_folds) < inner_folds:
            need += 1
    return need


# --------------------------------------------------------------------------------------------
# Nested cross-validation
# --------------------------------------------------------------------------------------------


def _proba(model: Any, X: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)[:, 1]
    d = model.decision_function(X)
    return 1.0 / (1.0 + np.exp(-d))


def _nested_cv(
    X: np.ndarray,
    y: np.ndarray,
    pipe: Pipeline,
    grid: dict,
    *,
    outer_folds: int,
    inner_folds: int,
    n_repeats: int,
    seed: int,
    keep_models: bool = False,
) -> tuple[np.ndarray, list]:
    """Out-of-fold probabilities (mean over repeats) and, optionally, the fitted fold models."""
    outer = RepeatedStratifiedKFold(n_splits=outer_folds, n_repeats=n_repeats, random_state=seed)
    oof = np.zeros((n_repeats, len(y)))
    models = []
    for i, (train, test) in enumerate(outer.split(X, y)):
        if grid:
            inner = StratifiedKFold(n_splits=inner_folds, shuffle=True, random_state=seed + i)
            model = GridSearchCV(clone(pipe), grid, cv=inner, scoring="roc_auc", refit=True, n_jobs=1)
        else:
            model = clone(pipe)
        model.fit(X[train], y[train])
        oof[i // outer_folds, test] = _proba(model, X[test])
        if keep_models:
            models.append((i // outer_folds, test, model))
    return oof.mean(axis=0), models


def _bootstrap_ci(y: np.ndarray, p: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> tuple[float, float]:
    if n_bootstrap <= 0:
        return (np.nan, np.nan)
    n = len(y)
    stats = []
    for _ in range(n_bootstrap):
        idx = rng.integers(0, n, n)
        yb = y[idx]
        if yb.min() == yb.max():
            continue
        stats.append(auroc_score(yb, p[idx]))
    if not stats:
        return (np.nan, np.nan)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return (float(lo), float(hi))


def _calibration(y: np.ndarray, p: np.ndarray, n_bins: int) -> pd.DataFrame:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            rows.append(
                {
                    "bin": f"{edges[b]:.2f}-{edges[b + 1]:.2f}",
                    "mean_predicted": float(p[sel].mean()),
                    "observed_fraction": float(y[sel].mean()),
                    "n": int(sel.sum()),
                }
            )
    return pd.DataFrame(rows, columns=["bin", "mean_predicted", "observed_fraction", "n"])


def _oof_permutation_importance(
    X: np.ndarray, y: np.ndarray, models: list, n_repeats_cv: int, n_rounds: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Drop of the pooled out-of-fold AUROC when one feature is permuted inside each held-out fold.

    All permuted copies of a held-out fold go through its model in one batched prediction.
    """
    n, n_feat = X.shape
    base_oof = np.zeros((n_repeats_cv, n))
    perm_oof = np.zeros((n_feat, n_rounds, n_repeats_cv, n))
    for rep, test, model in models:
        Xt = X[test]
        m = len(test)
        base_oof[rep, test] = _proba(model, Xt)
        chunk = max(1, 50_000 // (m * n_rounds))  # features per batched prediction
        for start in range(0, n_feat, chunk):
            stop = min(n_feat, start + chunk)
            batch = np.repeat(Xt[None, None], stop - start, axis=0).repeat(n_rounds, axis=1)
            for jj, j in enumerate(range(start, stop)):
                for r in range(n_rounds):
                    batch[jj, r, :, j] = Xt[rng.permutation(m), j]
            pred = _proba(model, batch.reshape(-1, n_feat)).reshape(stop - start, n_rounds, m)
            block = perm_oof[start:stop, :, rep]  # view
            block[:, :, test] = pred
    base = auroc_score(y, base_oof.mean(axis=0))
    drops = np.array(
        [[base - auroc_score(y, perm_oof[j, r].mean(axis=0)) for r in range(n_rounds)] for j in range(n_feat)]
    )
    sd = drops.std(axis=1, ddof=1) if n_rounds > 1 else np.zeros(n_feat)
    return drops.mean(axis=1), sd


def _best_params(final: Any) -> dict:
    if isinstance(final, GridSearchCV):
        return {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in final.best_params_.items()}
    est = final.named_steps["model"]
    if isinstance(est, LogisticRegressionCV):
        return {"C": float(np.ravel(est.C_)[0])}
    return {}


def _refit_importance(model: Any, names: list[str]) -> tuple[str, np.ndarray]:
    final = model.best_estimator_ if isinstance(model, GridSearchCV) else model
    est = final.named_steps["model"]
    if hasattr(est, "coef_"):
        return "coefficient", np.ravel(est.coef_)[: len(names)]
    if hasattr(est, "feature_importances_"):
        return "model_importance", np.asarray(est.feature_importances_)
    return "model_importance", np.full(len(names), np.nan)


def retrieval_model(
    features: pd.DataFrame,
    outcome: str | pd.Series | Sequence,
    *,
    estimator: str | BaseEstimator = "logistic",
    random_state: int = 0,
    outer_folds: int = 5,
    inner_folds: int = 3,
    n_repeats: int = 1,
    n_bootstrap: int = 1000,
    n_permutations: int = 100,
    feature_columns: Sequence[str] | None = None,
    param_grid: Mapping[str, Sequence] | None = None,
    n_bins: int = 5,
    importance_rounds: int = 10,
) -> RetrievalResult:
    r"""Predict sperm-retrieval success per donor with nested cross-validation.

    Parameters
    ----------
    features
        Per-donor table, one row per donor (e.g. the :func:`~noa_omics.tl.multihit` table,
        ``noa.spatial.niche_summary`` or clinical covariates). Numeric and boolean columns are used
        as they are; categorical columns with 2-10 levels are one-hot encoded; free text (such as
        ``evidence``) and all-missing columns are dropped (listed in ``params["dropped"]``).
        Missing values are imputed (median of the training donors) inside the pipeline.
    outcome
        Retrieval success: a column name of ``features``, a Series indexed by donor, or a list in
        row order; booleans, 0/1 or yes/no (1 = sperm retrieved).
    estimator
        ``"logistic"`` (default: median imputation, standardisation, L2-penalised logistic
        regression with :math:`C \in \{10^{-3}, \dots, 10^{2}\}` tuned by inner CV on the AUROC),
        ``"random_forest"`` (200 trees, ``min_samples_leaf=3``; tuned only when ``param_grid`` is
        given) or any scikit-learn classifier (imputed and standardised; tuned only when
        ``param_grid`` is given). Each permutation reruns the nested CV, so slow estimators need a
        smaller ``n_permutations``.
    random_state
        Seed of the folds, the bootstrap and the permutations; same seed, same result.
    outer_folds, inner_folds
        Folds of the outer (evaluation) and inner (tuning) stratified cross-validation.
    n_repeats
        Repeats of the outer cross-validation with different splits; a donor's prediction is the
        mean over repeats.
    n_bootstrap
        Bootstrap resamples of donors for ``auroc_ci``.
    n_permutations
        Outcome permutations for ``permutation_pvalue``; each reruns the whole nested CV
        (0 skips the test).
    feature_columns
        Columns of ``features`` to use (default: all but the outcome).
    param_grid
        Hyper-parameter grid of the model (keys with or without the ``model__`` prefix).
    n_bins
        Equal-width probability bins of the calibration curve.
    importance_rounds
        Permutations per feature for the out-of-fold permutation importance.

    Returns
    -------
    RetrievalResult

    Raises
    ------
    ValueError
        Constant outcome; fewer donors in a class than the cross-validation needs
        (:math:`\max(K_{outer}, 5)`, more when the inner folds need it); no usable feature column.

    Notes
    -----
    Every reported number comes from donors that the model did not see while fitting or tuning:
    the AUROC is never computed in-sample. With few donors the interval is wide; report it.
    """
    if not isinstance(features, pd.DataFrame):
        raise TypeError(f"`features` must be a per-donor DataFrame, got {type(features).__name__}.")
    for name, value, low in (
        ("outer_folds", outer_folds, 2),
        ("inner_folds", inner_folds, 2),
        ("n_repeats", n_repeats, 1),
        ("n_bootstrap", n_bootstrap, 0),
        ("n_permutations", n_permutations, 0),
        ("n_bins", n_bins, 1),
        ("importance_rounds", importance_rounds, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"`{name}` must be an integer >= {low}, got {value!r}.")
    if not features.index.is_unique:
        raise ValueError("`features` must have one row per donor (its index has duplicates).")
    X_frame, y = _outcome(features, outcome)
    counts = y.value_counts()
    if len(counts) < 2:
        raise ValueError(
            f"the outcome is constant (all {'successes' if y.iloc[0] == 1 else 'failures'}, {len(y)} donors); "
            "a retrieval model needs donors with and without sperm retrieval."
        )
    pipe, grid = _pipeline(estimator, random_state, param_grid, inner_folds)
    need = _needed_per_class(outer_folds, inner_folds, _tuned(pipe, grid))
    n_pos, n_neg = int(counts.get(1, 0)), int(counts.get(0, 0))
    if min(n_pos, n_neg) < need:
        raise ValueError(
            f"too few donors per outcome class for {outer_folds}-fold nested cross-validation "
            f"(inner {inner_folds} folds): {n_pos} with and {n_neg} without retrieval; at least {need} "
            f"per class are needed. Add donors or lower outer_folds/inner_folds."
        )
    design, dropped = design_matrix(X_frame, feature_columns)
    names = list(design.columns)
    X = design.to_numpy(dtype=float)
    infinite = np.isinf(X)
    if infinite.any():
        raise ValueError(
            f"feature column(s) {[names[j] for j in np.flatnonzero(infinite.any(axis=0))]} hold infinite values "
            f"(donor(s) {list(design.index[infinite.any(axis=1)][:10])}); replace them with NaN (imputed inside "
            "the cross-validation) or with finite values."
        )
    yv = y.to_numpy()

    with threadpool_limits(limits=1), warnings.catch_warnings():
        # small problems: BLAS threads only add overhead; weak penalties on separable folds stop
        # at max_iter, which is expected while scanning C and not worth a warning per fit
        warnings.simplefilter("ignore", ConvergenceWarning)
        oof, models = _nested_cv(
            X, yv, pipe, grid, outer_folds=outer_folds, inner_folds=inner_folds, n_repeats=n_repeats,
            seed=random_state, keep_models=True,
        )
        auroc = auroc_score(yv, oof)
        ci = _bootstrap_ci(yv, oof, n_bootstrap, np.random.default_rng(random_state))
        brier = float(brier_score_loss(yv, oof))

        null = []
        perm_rng = np.random.default_rng(random_state + 1)
        for b in range(n_permutations):
            yp = perm_rng.permutation(yv)
            p_b, _ = _nested_cv(
                X, yp, pipe, grid, outer_folds=outer_folds, inner_folds=inner_folds, n_repeats=n_repeats,
                seed=random_state + 1 + b,
            )
            null.append(auroc_score(yp, p_b))
        null = np.asarray(null, dtype=float)
        pvalue = float((1 + np.sum(null >= auroc)) / (1 + len(null))) if len(null) else np.nan

        # refit on all donors (hyper-parameters tuned by CV on all donors) for the coefficients
        if grid:
            final = GridSearchCV(
                clone(pipe), grid, scoring="roc_auc", refit=True, n_jobs=1,
                cv=StratifiedKFold(n_splits=inner_folds, shuffle=True, random_state=random_state),
            )
        else:
            final = clone(pipe)
        final.fit(X, yv)
        kind, model_imp = _refit_importance(final, names)
        perm_mean, perm_sd = _oof_permutation_importance(
            X, yv, models, n_repeats, importance_rounds, np.random.default_rng(random_state + 2)
        )
    importances = pd.DataFrame(
        {kind: model_imp, "permutation_importance": perm_mean, "permutation_importance_sd": perm_sd},
        index=pd.Index(names, name="feature"),
    ).sort_values("permutation_importance", ascending=False)

    params = {
        "estimator": estimator if isinstance(estimator, str) else type(estimator).__name__,
        "random_state": random_state,
        "outer_folds": outer_folds,
        "inner_folds": inner_folds,
        "n_repeats": n_repeats,
        "n_bootstrap": n_bootstrap,
        "n_permutations": n_permutations,
        "param_grid": {k: [v if isinstance(v, (int, float, str)) else str(v) for v in vals] for k, vals in grid.items()},
        "best_params": _best_params(final),
        "features": names,
        "dropped": dropped,
        "n_donors": int(len(yv)),
        "n_positive": n_pos,
        "n_negative": n_neg,
    }
    return RetrievalResult(
        auroc=auroc,
        auroc_ci=ci,
        brier=brier,
        permutation_pvalue=pvalue,
        importances=importances,
        calibration=_calibration(yv, oof, n_bins),
        predictions=pd.Series(oof, index=features.index, name="probability"),
        null_aurocs=null,
        outcome=y,
        params=params,
    )
