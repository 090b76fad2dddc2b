"""noa.tl.retrieval_model: nested cross-validation harness for sperm-retrieval prediction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import noa_omics as noa
from noa_omics.multihit._retrieval import auroc_score, design_matrix

FAST = dict(outer_folds=5, inner_folds=3, n_bootstrap=500)


def donor_features(n: int = 60, seed: int = 0, effect: float = 2.0) -> tuple[pd.DataFrame, pd.Series]:
    """A multihit-like per-donor table; retrieval success depends on niche and germ apoptosis."""
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"D{i:02d}" for i in range(n)], name="sample")
    table = pd.DataFrame(rng.normal(size=(n, 6)), index=idx,
                         columns=["genetic", "endocrine", "oxidative", "epigenetic", "inflammation", "niche"])
    table["germ_apoptosis"] = rng.normal(size=n)
    table.loc[idx[:5], "germ_apoptosis"] = np.nan  # SCO-like donors: not evaluable
    table["histology"] = rng.choice(["normal", "maturation_arrest", "sertoli_cell_only"], size=n)
    table["evidence"] = [f"{i}: sentence" for i in idx]  # free text: must be dropped
    logit = -effect * table["niche"] - 0.5 * effect * table["germ_apoptosis"].fillna(0.0)
    success = pd.Series(rng.random(n) < 1.0 / (1.0 + np.exp(-logit)), index=idx, name="tese_success")
    return table, success


@pytest.fixture(scope="module")
def signal_result():
    table, success = donor_features()
    return noa.tl.retrieval_model(table, success, n_permutations=19, random_state=0, **FAST), success


def test_signal_auroc_above_chance(signal_result):
    result, success = signal_result
    lo, hi = result.auroc_ci
    assert lo > 0.5
    assert lo <= result.auroc <= hi
    assert result.permutation_pvalue == pytest.approx(1 / 20)  # no permutation reached the real AUROC
    assert result.importances.index[0] == "niche"
    assert result.importances.loc["niche", "coefficient"] < 0  # more niche damage, less retrieval
    assert "evidence" in result.params["dropped"]
    assert "histology=sertoli_cell_only" in result.importances.index
    # out-of-fold predictions, one per donor, and a reliability table that adds up
    assert list(result.predictions.index) == list(success.index)
    assert result.predictions.between(0, 1).all()
    assert result.calibration["n"].sum() == len(success)
    assert result.brier == pytest.approx(np.mean((result.predictions - success.astype(int)) ** 2))
    assert result.auroc == pytest.approx(roc_auc_score(success.astype(int), result.predictions))


def test_permuted_outcome_is_not_significant():
    table, success = donor_features()
    shuffled = pd.Series(np.random.default_rng(5).permutation(success.to_numpy()), index=success.index)
    result = noa.tl.retrieval_model(table, shuffled, n_permutations=30, random_state=0, **FAST)
    lo, hi = result.auroc_ci
    assert lo < 0.5 < hi
    assert result.permutation_pvalue > 0.05
    assert len(result.null_aurocs) == 30


def test_pure_noise_many_features_is_not_optimistic():
    """300 noise columns, 30 donors: an in-sample fit would separate them perfectly."""
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(30, 300)), columns=[f"g{i}" for i in range(300)])
    y = np.array([0, 1] * 15)
    in_sample = LogisticRegression(C=100.0, max_iter=5000).fit(X, y)
    assert roc_auc_score(y, in_sample.predict_proba(X)[:, 1]) == 1.0
    result = noa.tl.retrieval_model(X, y, n_permutations=0, random_state=0, n_bootstrap=500)
    lo, hi = result.auroc_ci
    assert lo < 0.5 < hi
    assert np.isnan(result.permutation_pvalue)


def test_same_seed_same_result():
    table, success = donor_features(n=40, seed=2)
    a = noa.tl.retrieval_model(table, success, n_permutations=2, n_bootstrap=100, random_state=3)
    b = noa.tl.retrieval_model(table, success, n_permutations=2, n_bootstrap=100, random_state=3)
    pd.testing.assert_series_equal(a.predictions, b.predictions)
    assert a.auroc_ci == b.auroc_ci and a.permutation_pvalue == b.permutation_pvalue


def test_outcome_as_column_and_strings():
    table, success = donor_features(n=40, seed=4)
    table["tese"] = np.where(success, "yes", "no")
    result = noa.tl.retrieval_model(table, "tese", n_permutations=0, n_bootstrap=50)
    assert "tese" not in result.params["features"]
    assert result.outcome.sum() == success.sum()


def test_random_forest_and_custom_estimator():
    table, success = donor_features()
    forest = noa.tl.retrieval_model(table, success, estimator="random_forest", n_permutations=0, n_bootstrap=200)
    assert forest.auroc_ci[0] > 0.5
    assert "model_importance" in forest.importances.columns
    custom = noa.tl.retrieval_model(table, success, estimator=LogisticRegression(C=0.5), n_permutations=0,
                                    n_bootstrap=200)
    assert custom.auroc > 0.6


def test_auroc_score_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    p = np.round(rng.random(50), 1)  # many ties
    assert auroc_score(y, p) == pytest.approx(roc_auc_score(y, p))


def test_design_matrix_one_hot_and_drops():
    frame = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0], "ok": [True, False, True, False],
                          "h": ["x", "y", "x", "y"], "empty": [np.nan] * 4, "txt": ["p", "q", "r", "s"]})
    X, dropped = design_matrix(frame)
    assert list(X.columns) == ["a", "ok", "h=x", "h=y"]
    assert sorted(dropped) == ["empty", "txt"]


# --------------------------------------------------------------------------------------------
# refusals
# --------------------------------------------------------------------------------------------


def test_too_few_donors_per_class():
    table, _ = donor_features(n=20)
    y = pd.Series([1] * 4 + [0] * 16, index=table.index)
    with pytest.raises(ValueError, match=r"4 with and 16 without retrieval; at least 5 per class are needed"):
        noa.tl.retrieval_model(table, y)
    y = pd.Series([1] * 6 + [0] * 14, index=table.index)
    with pytest.raises(ValueError, match="at least 10 per class"):
        noa.tl.retrieval_model(table, y, outer_folds=10)


def test_constant_outcome():
    table, _ = donor_features(n=20)
    with pytest.raises(ValueError, match="outcome is constant"):
        noa.tl.retrieval_model(table, pd.Series(True, index=table.index))


def test_no_numeric_features():
    frame = pd.DataFrame({"evidence": [f"s{i}" for i in range(20)]})
    with pytest.raises(ValueError, match="no numeric or categorical column"):
        noa.tl.retrieval_model(frame, [0, 1] * 10)


def test_outcome_misaligned_or_unreadable():
    table, success = donor_features(n=20)
    with pytest.raises(ValueError, match="no value for donor"):
        noa.tl.retrieval_model(table, success.iloc[:-2])
    with pytest.raises(ValueError, match="cannot read outcome value"):
        noa.tl.retrieval_model(table, pd.Series("maybe", index=table.index))
    with pytest.raises(ValueError, match="must be 0/1"):
        noa.tl.retrieval_model(table, pd.Series(np.arange(20), index=table.index))
