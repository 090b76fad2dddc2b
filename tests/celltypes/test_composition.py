"""compare_composition: donor-level proportions, moderated t, FPR control vs cell-level chi-square."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import noa_omics as noa
from noa_omics.celltypes._composition import (
    cell_level_chisquare,
    moderated_two_group,
    sample_counts,
    transform_proportions,
)
from noa_omics.celltypes._stats import fit_f_prior
from noa_omics.datasets._composition_cohort import simulate_counts

KW = {"sample_key": "donor", "condition_key": "condition", "reference": "control"}


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _cells(counts: dict[str, dict[str, int]], conditions: dict[str, str]) -> pd.DataFrame:
    rows = [
        {"donor": d, "condition": conditions[d], "noa_cell_type": t}
        for d, per_type in counts.items()
        for t, n in per_type.items()
        for _ in range(n)
    ]
    return pd.DataFrame(rows)


def test_hand_computed_logit_effect_and_moderated_t():
    counts = {
        "a1": {"sertoli": 10, "leydig": 30, "spermatocyte": 60},
        "a2": {"sertoli": 20, "leydig": 30, "spermatocyte": 50},
        "a3": {"sertoli": 15, "leydig": 25, "spermatocyte": 60},
        "c1": {"sertoli": 40, "leydig": 20, "spermatocyte": 40},
        "c2": {"sertoli": 30, "leydig": 30, "spermatocyte": 40},
        "c3": {"sertoli": 35, "leydig": 25, "spermatocyte": 40},
    }
    cond = {d: ("case" if d.startswith("a") else "control") for d in counts}
    res = noa.tl.compare_composition(_cells(counts, cond), **KW)
    row = res.set_index("cell_type").loc["sertoli"]
    # by hand: logit((n + 0.5) / (N + 1.5)), N = 100 per donor
    y = {d: math.log((c["sertoli"] + 0.5) / (100 + 1.5) / (1 - (c["sertoli"] + 0.5) / 101.5)) for d, c in counts.items()}
    x_case = np.array([y["a1"], y["a2"], y["a3"]])
    x_ctrl = np.array([y["c1"], y["c2"], y["c3"]])
    assert row["effect"] == pytest.approx(x_case.mean() - x_ctrl.mean())
    assert row["proportion"] == pytest.approx(0.15)
    assert row["reference_proportion"] == pytest.approx(0.35)
    assert row["proportion_difference"] == pytest.approx(-0.20)
    # moderated t by hand from the variances of the three types
    names = ["sertoli", "leydig", "spermatocyte"]
    s2 = []
    for t in names:
        yy = {d: math.log((c[t] + 0.5) / (101.5 - c[t] - 0.5)) for d, c in counts.items()}
        a = np.array([yy[d] for d in ("a1", "a2", "a3")])
        b = np.array([yy[d] for d in ("c1", "c2", "c3")])
        s2.append((((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum()) / 4)
    d0, s0 = fit_f_prior(np.array(s2), 4)
    post = s0 if math.isinf(d0) else (d0 * s0 + 4 * s2[0]) / (d0 + 4)
    t = (x_case.mean() - x_ctrl.mean()) / math.sqrt(post * (2 / 3))
    assert row["statistic"] == pytest.approx(t)
    df = math.inf if math.isinf(d0) else 4 + d0
    p = 2 * (stats.norm.sf(abs(t)) if math.isinf(df) else stats.t.sf(abs(t), df))
    assert row["pvalue"] == pytest.approx(p)
    assert row["ci_low"] < row["effect"] < row["ci_high"]


def test_columns_and_contract():
    cells = noa.datasets.composition_cohort((3, 3), seed=2)
    res = noa.tl.compare_composition(cells, **KW)
    for col in ("cell_type", "condition", "n_samples", "n_reference_samples", "effect", "ci_low", "ci_high",
                "pvalue", "qvalue"):
        assert col in res.columns
    assert (res["n_samples"] == 3).all() and (res["n_reference_samples"] == 3).all()
    assert res["qvalue"].ge(res["pvalue"] - 1e-12).all()
    assert list(res["cell_type"])[:5] == list(noa.datasets._composition_cohort.DEFAULT_PROPORTIONS)[:5]


def test_levels_broad_and_germ_stage():
    cells = noa.datasets.composition_cohort((3, 3), seed=3)
    broad = noa.tl.compare_composition(cells, level="broad", **KW)
    assert set(broad["cell_type"]) == {"germ", "sertoli", "leydig", "peritubular_myoid", "endothelial", "immune",
                                       "other"}
    germ = noa.tl.compare_composition(cells, level="germ_stage", **KW)
    assert list(germ["cell_type"]) == list(noa._vocabulary.GERM_STAGES)
    # germ-stage proportions are among germ cells: they sum to one per side
    assert germ["proportion"].sum() == pytest.approx(1.0)
    counts = sample_counts(cells, sample_key="donor", cell_type_key="noa_cell_type", level="broad")
    fine = sample_counts(cells, sample_key="donor", cell_type_key="noa_cell_type", level="fine")
    assert (counts["germ"] == fine[list(noa._vocabulary.GERM_STAGES)].sum(axis=1)).all()
    assert (counts["immune"] == fine["macrophage"] + fine["t_cell"]).all()


def test_germ_stage_leaves_out_sco_donor_with_warning():
    counts = {
        "a1": {"sertoli": 50},
        "a2": {"sertoli": 20, "spermatocyte": 30},
        "a3": {"sertoli": 20, "spermatocyte": 20, "round_spermatid": 5},
        "c1": {"sertoli": 10, "spermatocyte": 30, "round_spermatid": 30},
        "c2": {"sertoli": 10, "spermatocyte": 20, "round_spermatid": 40},
    }
    cond = {d: ("case" if d.startswith("a") else "control") for d in counts}
    with pytest.warns(UserWarning, match="without germ cells"):
        res = noa.tl.compare_composition(_cells(counts, cond), level="germ_stage", **KW)
    assert (res["n_samples"] == 2).all()


def test_detects_planted_loss():
    cells = noa.datasets.composition_cohort((6, 6), shift={"spermatocyte": 0.25}, concentration=100, seed=4)
    res = noa.tl.compare_composition(cells, **KW).set_index("cell_type")
    assert res.loc["spermatocyte", "qvalue"] < 0.05
    assert res.loc["spermatocyte", "effect"] < 0
    assert res.loc["spermatocyte", "ci_high"] < 0


def test_refuses_pseudoreplication():
    cells = noa.datasets.composition_cohort((1, 3), seed=5)
    with pytest.warns(UserWarning, match="fewer than 2 samples"):
        res = noa.tl.compare_composition(cells, **KW)
    assert res["pvalue"].isna().all() and res["ci_low"].isna().all()
    assert res["effect"].notna().all()
    mixed = cells.copy()
    mixed.loc[mixed.index[:5], "condition"] = "control"  # case_1 now has cells in both conditions
    with pytest.raises(ValueError, match="more than one"):
        noa.tl.compare_composition(mixed, **KW)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"level": "tissue"}, "level"),
        ({"transform": "log"}, "transform"),
        ({"reference": "healthy"}, "reference condition"),
        ({"cell_type_key": "cluster"}, "cluster"),
        ({"min_cells": 0}, "min_cells"),
    ],
)
def test_bad_input(kwargs, match):
    cells = noa.datasets.composition_cohort((2, 2), seed=6)
    with pytest.raises((ValueError, KeyError), match=match):
        noa.tl.compare_composition(cells, **{**KW, **kwargs})


def test_anndata_input_and_no_mutation():
    from anndata import AnnData

    cells = noa.datasets.composition_cohort((3, 3), seed=7)
    adata = AnnData(obs=cells.set_axis(cells.index.astype(str)))
    before = adata.obs.copy()
    a = noa.tl.compare_composition(adata, **KW)
    b = noa.tl.compare_composition(cells, **KW)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(adata.obs, before)


def test_transform_asin_sqrt_by_hand():
    counts = np.array([[25, 75], [0, 100]])
    out = transform_proportions(counts, "asin_sqrt")
    assert out[0, 0] == pytest.approx(math.asin(0.5))
    assert out[1, 0] == 0.0


def test_false_positive_rate_controlled_and_chisquare_anticonservative():
    """100 null cohorts with donor-level Dirichlet overdispersion, 4 vs 4 donors, 12 types."""
    rejected, rejected_chisq, n = 0, 0, 0
    for seed in range(100):
        counts, _, sides, *_ = simulate_counts((4, 4), concentration=50.0, seed=seed)
        x, y = counts[sides == 0].astype(float), counts[sides == 1].astype(float)
        fit = moderated_two_group(transform_proportions(x), transform_proportions(y))
        rejected += int((fit["p"] < 0.05).sum())
        rejected_chisq += int((cell_level_chisquare(x, y) < 0.05).sum())
        n += x.shape[1]
    fpr, fpr_chisq = rejected / n, rejected_chisq / n
    assert fpr <= 0.1, fpr
    assert fpr_chisq >= 0.3, fpr_chisq  # wildly anti-conservative: cells are not replicates


def test_moderated_two_group_matches_public_function():
    cells = noa.datasets.composition_cohort((4, 5), seed=8)
    res = noa.tl.compare_composition(cells, **KW)
    counts = sample_counts(cells, sample_key="donor", cell_type_key="noa_cell_type", level="fine")
    case = counts.index.str.startswith("case")
    fit = moderated_two_group(transform_proportions(counts[case].to_numpy(float)),
                              transform_proportions(counts[~case].to_numpy(float)))
    np.testing.assert_allclose(res["pvalue"].to_numpy(), fit["p"])


def test_simulated_counts_match_cohort_table():
    cells = noa.datasets.composition_cohort((2, 3), shift={"sertoli": 2.0}, seed=9)
    counts, donors, sides, *_ = simulate_counts((2, 3), shift={"sertoli": 2.0}, seed=9)
    table = sample_counts(cells, sample_key="donor", cell_type_key="noa_cell_type", level="fine")
    np.testing.assert_array_equal(table.loc[donors].to_numpy(), counts)
    assert cells.attrs["truth"]["shifted"] == ["sertoli"]
