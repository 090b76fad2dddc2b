"""Donor-level statistics against scipy / statsmodels and hand-computed values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

import noa_omics as noa
from noa_omics.celltypes._stats import (
    fit_f_prior,
    hedges_g,
    moderated_t_rows,
    permutation_test,
    welch_t_rows,
    welch_test,
)

# donor means of a small hand table: 4 case donors, 3 control donors
CASE = np.array([1.2, 2.5, 3.1, 2.2])
CONTROL = np.array([0.1, 0.5, 1.7])


def _per_cell(case: np.ndarray, control: np.ndarray, cells: int = 3) -> pd.DataFrame:
    """Cells whose donor means are exactly ``case`` / ``control`` (symmetric offsets)."""
    offsets = np.linspace(-0.5, 0.5, cells)
    rows = []
    for condition, means in (("case", case), ("control", control)):
        for i, mean in enumerate(means):
            rows += [{"donor": f"{condition}{i}", "condition": condition, "score": mean + o} for o in offsets]
    return pd.DataFrame(rows)


def test_welch_matches_scipy():
    result = welch_test(CASE, CONTROL)
    ref = stats.ttest_ind(CASE, CONTROL, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert result.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert result.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    assert result.df == pytest.approx(ref.df, rel=1e-12)
    assert (result.ci_low, result.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)


def test_compare_conditions_welch_equals_scipy_on_donor_means():
    cells = _per_cell(CASE, CONTROL)
    res = noa.tl.compare_conditions(cells, value_key="score", sample_key="donor", condition_key="condition",
                                    reference="control", min_cells=1)  # 3 cells per donor by design
    row = res.iloc[0]
    ref = stats.ttest_ind(CASE, CONTROL, equal_var=False)
    assert row["effect"] == pytest.approx(CASE.mean() - CONTROL.mean())
    assert row["pvalue"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert (row["n_samples"], row["n_reference_samples"]) == (4, 3)
    assert (row["n_cells"], row["n_reference_cells"]) == (12, 9)
    assert row["ci_low"] == pytest.approx(ref.confidence_interval().low, rel=1e-10)


def test_hedges_g_hand_value():
    # pooled variance ((4-1)*var(CASE) + (3-1)*var(CONTROL)) / 5, correction 1 - 3/(4*7-9)
    pooled = (3 * CASE.var(ddof=1) + 2 * CONTROL.var(ddof=1)) / 5
    expected = (1 - 3 / 19) * (CASE.mean() - CONTROL.mean()) / math.sqrt(pooled)
    assert hedges_g(CASE, CONTROL) == pytest.approx(expected, rel=1e-12)


def test_permutation_exact_equals_hand_enumeration():
    # tiny table: 2 vs 3 donors -> C(5, 2) = 10 relabellings
    x, y = np.array([3.0, 5.0]), np.array([1.0, 2.0, 4.0])
    pooled = np.concatenate([x, y])
    observed = abs(x.mean() - y.mean())  # 4 - 7/3 = 1.667
    hits = 0
    for chosen in itertools.combinations(range(5), 2):
        rest = [i for i in range(5) if i not in chosen]
        hits += abs(pooled[list(chosen)].mean() - pooled[rest].mean()) >= observed - 1e-12
    # by hand, |mean(pair) - mean(rest)| for the 10 pairs: {3,5} 1.67, {3,1} 1.67, {5,4} 2.5, {1,2} 2.5
    # reach the observed 1.67; {3,2} {3,4} {5,2} {1,4} give 0.83 and {5,1} {2,4} give 0 -> p = 4/10
    assert hits == 4
    p, exact = permutation_test(x, y)
    assert exact
    assert p == pytest.approx(0.4)
    res = noa.tl.compare_conditions(_per_cell(x, y), value_key="score", sample_key="donor",
                                    condition_key="condition", reference="control", method="permutation", min_cells=1)
    assert res["pvalue"].iloc[0] == pytest.approx(0.4)


def test_permutation_monte_carlo_is_seeded_and_close_to_exact():
    rng = np.random.default_rng(3)
    x, y = rng.normal(1.0, 1.0, 12), rng.normal(0.0, 1.0, 12)  # C(24, 12) = 2.7e6 -> Monte Carlo
    p1, exact = permutation_test(x, y, n_permutations=2000, random_state=5)
    p2, _ = permutation_test(x, y, n_permutations=2000, random_state=5)
    assert not exact and p1 == p2
    assert p1 >= 1 / 2001
    reference = stats.ttest_ind(x, y).pvalue
    assert abs(p1 - reference) < 0.03


def test_qvalue_is_benjamini_hochberg_over_all_tests():
    rng = np.random.default_rng(0)
    frames = []
    for d in range(10):
        condition = ["control", "a", "b"][d % 3] if d < 9 else "a"
        frames.append(pd.DataFrame({
            "donor": f"d{d}", "condition": condition,
            "s1": rng.normal(d % 3, 1, 20), "s2": rng.normal(0, 1, 20),
        }))
    cells = pd.concat(frames, ignore_index=True)
    res = noa.tl.compare_conditions(cells, value_key=["s1", "s2"], sample_key="donor", condition_key="condition",
                                    reference="control")
    assert len(res) == 4
    expected = multipletests(res["pvalue"].to_numpy(), method="fdr_bh")[1]
    np.testing.assert_allclose(res["qvalue"].to_numpy(), expected, rtol=1e-12)


def test_welch_rows_match_scipy():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 3)), rng.normal(size=(50, 4))
    t, df = welch_t_rows(x, y)
    ref = stats.ttest_ind(x, y, axis=1, equal_var=False)
    np.testing.assert_allclose(t, ref.statistic, rtol=1e-10)
    np.testing.assert_allclose(df, ref.df, rtol=1e-10)


def test_moderated_t_recovers_planted_genes_and_prior():
    rng = np.random.default_rng(2)
    # true gene variances drawn from a scaled inverse chi-square prior with d0 = 6, s0^2 = 0.5
    d0, s0 = 6.0, 0.5
    sigma2 = d0 * s0 / rng.chisquare(d0, 4000)
    x = rng.normal(0, np.sqrt(sigma2)[:, None], (4000, 3))
    y = rng.normal(0, np.sqrt(sigma2)[:, None], (4000, 3))
    x[:40] += 3.0
    t = moderated_t_rows(x, y)
    order = np.argsort(-t)
    assert len(set(order[:40]) & set(range(40))) >= 30
    residual = np.concatenate([x[40:] - x[40:].mean(1, keepdims=True), y[40:] - y[40:].mean(1, keepdims=True)], 1)
    est_d0, est_s0 = fit_f_prior((residual**2).sum(1) / 4, 4)
    assert 3 < est_d0 < 12
    assert est_s0 == pytest.approx(s0, rel=0.25)


def test_monte_carlo_p_counts_the_observed_labelling_exactly():
    """Kills ``p = hits / B`` (must be ``(1 + hits) / (1 + B)``, Phipson & Smyth 2010).

    C(24, 12) = 2.7e6 labellings -> Monte Carlo. The groups are 100 apart, so no random relabelling
    (except the observed one or its mirror, probability 7e-7 per draw) reaches the observed
    difference: hits = 0 and the p-value is exactly 1 / (1 + B), never 0.
    """
    x = np.arange(12, dtype=float) + 100.0
    y = np.arange(12, dtype=float)
    for n_draws in (9, 19, 99):
        p, exact = permutation_test(x, y, n_permutations=n_draws, random_state=1)
        assert not exact
        assert p == 1.0 / (1.0 + n_draws)
    # every relabelling reaches |T_obs| = 0 when all values are equal: hits = B, p = 1
    p, exact = permutation_test(np.ones(12), np.ones(12), n_permutations=9, random_state=1)
    assert not exact and p == 1.0
    # through compare_conditions (donor means are exactly x and y)
    res = noa.tl.compare_conditions(_per_cell(x, y), value_key="score", sample_key="donor",
                                    condition_key="condition", reference="control", method="permutation",
                                    n_permutations=19, min_cells=1)
    assert res["pvalue"].iloc[0] == 1.0 / 20.0


def test_qvalue_hand_computed_benjamini_hochberg():
    """A second test of the BH step (kills q = p and a wrong rank order), by the hand formula
    q_(i) = min_{j >= i} p_(j) m / j, not by statsmodels."""
    rng = np.random.default_rng(11)
    frames = []
    for d in range(8):
        case = d >= 4
        frames.append(pd.DataFrame({
            "donor": f"d{d}", "condition": "case" if case else "control",
            "strong": rng.normal(2.0 if case else 0.0, 0.3, 10) + rng.normal(0, 0.3),
            "medium": rng.normal(0.8 if case else 0.0, 0.3, 10) + rng.normal(0, 0.3),
            "null": rng.normal(0.0, 0.3, 10) + rng.normal(0, 0.3),
        }))
    cells = pd.concat(frames, ignore_index=True)
    res = noa.tl.compare_conditions(cells, value_key=["strong", "medium", "null"], sample_key="donor",
                                    condition_key="condition", reference="control")
    p = res["pvalue"].to_numpy()
    m = len(p)
    order = np.argsort(p)
    q_sorted = [min(p[order[j]] * m / (j + 1) for j in range(i, m)) for i in range(m)]
    expected = np.empty(m)
    expected[order] = np.minimum(q_sorted, 1.0)
    np.testing.assert_allclose(res["qvalue"].to_numpy(), expected, rtol=1e-12)
    assert res["qvalue"].iloc[int(order[0])] == pytest.approx(3 * p[order[0]], rel=1e-12)
    assert (res["qvalue"] > res["pvalue"]).sum() >= 1


# --- edge cases and closed forms (found by mutation testing, scripts/mutation.py) ----------------


def test_welch_and_hedges_edge_cases():
    """Fewer than two values: effect kept, the rest NaN; two values per side are enough."""
    one = welch_test(np.array([2.0]), np.array([0.0, 1.0, 2.0]))
    assert one.effect == pytest.approx(1.0)
    assert all(math.isnan(v) for v in (one.statistic, one.df, one.pvalue, one.ci_low, one.ci_high))
    flat = welch_test(np.array([1.0, 1.0]), np.array([0.0, 0.0]))
    assert flat.effect == 1.0 and math.isnan(flat.pvalue) and math.isnan(flat.ci_low)
    empty = welch_test(np.array([]), np.array([0.0, 1.0]))
    assert math.isnan(empty.effect)
    nan_dropped = welch_test(np.array([1.0, np.nan, 3.0]), np.array([0.0, 1.0]))
    ref = stats.ttest_ind([1.0, 3.0], [0.0, 1.0], equal_var=False)
    assert nan_dropped.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    x, y = np.array([1.0, 3.0]), np.array([0.0, 1.0])
    pooled = (np.var(x, ddof=1) + np.var(y, ddof=1)) / 2
    assert hedges_g(x, y) == pytest.approx((1 - 3 / 7) * 1.5 / math.sqrt(pooled), rel=1e-12)
    assert math.isnan(hedges_g(np.array([1.0]), y)) and math.isnan(hedges_g(x, np.array([1.0])))
    assert math.isnan(hedges_g(np.array([1.0, 1.0]), np.array([2.0, 2.0])))
    # 90% interval: narrower than the 95% one, same centre, scipy's t quantile
    r90 = welch_test(CASE, CONTROL, confidence=0.9)
    r95 = welch_test(CASE, CONTROL)
    half = stats.t.ppf(0.95, r90.df) * (r90.effect / r90.statistic)
    assert r90.ci_high - r90.effect == pytest.approx(half, rel=1e-10)
    assert r90.ci_high - r90.ci_low < r95.ci_high - r95.ci_low


def test_permutation_edges_and_exact_threshold():
    assert math.isnan(permutation_test(np.array([1.0]), np.array([1.0, 2.0]))[0])
    assert math.isnan(permutation_test(np.array([1.0, 2.0]), np.array([np.nan, 2.0]))[0])
    # C(14, 7) = 3432 <= 10,000 labellings: enumerated even when n_permutations is small
    rng = np.random.default_rng(0)
    x, y = rng.normal(1, 1, 7), rng.normal(0, 1, 7)
    p, exact = permutation_test(x, y, n_permutations=10)
    assert exact
    pooled = np.concatenate([x, y])
    observed = abs(x.mean() - y.mean())
    hits = sum(abs(pooled[list(c)].mean() - np.delete(pooled, list(c)).mean()) >= observed - 1e-12
               for c in itertools.combinations(range(14), 7))
    assert p == pytest.approx(hits / math.comb(14, 7), abs=1e-15)
    # C(16, 8) = 12870 > 10,000 -> Monte Carlo unless n_permutations reaches it
    x2, y2 = rng.normal(1, 1, 8), rng.normal(0, 1, 8)
    assert not permutation_test(x2, y2, n_permutations=100)[1]
    assert permutation_test(x2, y2, n_permutations=12870)[1]


def test_welch_rows_flat_rows_and_moderated_t_closed_form():
    x = np.array([[1.0, 2.0, 4.0], [5.0, 5.0, 5.0]])
    y = np.array([[0.0, 1.0, 1.0, 2.0], [5.0, 5.0, 5.0, 5.0]])
    t, df = welch_t_rows(x, y)
    assert t[1] == 0.0 and np.isnan(df[1])
    rng = np.random.default_rng(5)
    x = rng.normal(0, rng.uniform(0.5, 2, (300, 1)), (300, 3))
    y = rng.normal(0, rng.uniform(0.5, 2, (300, 1)), (300, 4))
    s2 = (((x - x.mean(1, keepdims=True)) ** 2).sum(1) + ((y - y.mean(1, keepdims=True)) ** 2).sum(1)) / 5
    d0, s0_sq = fit_f_prior(s2, 5)
    post = np.full_like(s2, s0_sq) if math.isinf(d0) else (d0 * s0_sq + 5 * s2) / (d0 + 5)
    expected = (x.mean(1) - y.mean(1)) / np.sqrt(post * (1 / 3 + 1 / 4))
    np.testing.assert_allclose(moderated_t_rows(x, y), expected, rtol=1e-12)
    # equal variances everywhere (s_g^2 = 1 on d = 4): d0 = inf, every gene uses
    # s0^2 = exp(log 1 - digamma(2) + log 2)
    from scipy import special

    flat = np.tile([[0.0, 1.0, 2.0]], (5, 1))
    t0 = moderated_t_rows(flat + np.arange(5)[:, None], flat)
    s0_sq = math.exp(-float(special.digamma(2.0)) + math.log(2.0))
    np.testing.assert_allclose(t0, np.arange(5) / np.sqrt(s0_sq * (2 / 3)), rtol=1e-12)


def test_trigamma_inverse_and_prior_edges():
    from scipy import special

    from noa_omics.celltypes._stats import _trigamma_inverse

    for value in (1e-4, 0.01, 0.3, 1.0, 5.0, 100.0, 1e5):
        y = _trigamma_inverse(value)
        assert float(special.polygamma(1, y)) == pytest.approx(value, rel=1e-6), value
    assert _trigamma_inverse(1e8) == pytest.approx(1 / math.sqrt(1e8))
    assert _trigamma_inverse(1e-7) == pytest.approx(1e7)
    assert fit_f_prior(np.array([1.0, 4.0]), 3) == (math.inf, 2.5)
    assert fit_f_prior(np.array([np.nan, 0.0]), 3) == (math.inf, 0.0)
    d0, s0 = fit_f_prior(np.full(10, 2.0), 4)  # no spread: no moderation, s0^2 from the mean
    e = math.log(2.0) - float(special.digamma(2.0)) + math.log(2.0)
    assert math.isinf(d0) and s0 == pytest.approx(math.exp(e))
