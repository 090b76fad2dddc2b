"""compare_conditions: donor-level inference on simulated cohorts and hand tables."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

import noa_omics as noa

from .conftest import donor_table

SWITCHED_TYPES = ["spermatocyte", "round_spermatid"]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# --- simulated cohort with planted apoptosis ------------------------------------------------------


def test_intrinsic_score_separates_apoptotic_cells(apoptosis_cohort):
    adata = apoptosis_cohort
    score = adata.obsm["noa_score_genes"]["apoptosis_intrinsic"].to_numpy()
    mask = ((adata.obs["condition"] == "apoptotic") & adata.obs["truth_cell_type"].isin(SWITCHED_TYPES)).to_numpy()
    truth = adata.obs["truth_apoptosis"].to_numpy()[mask]
    assert 0.2 < truth.mean() < 0.6  # ~40% switched on, the rest are the negatives
    assert roc_auc_score(truth, score[mask]) >= 0.9


@pytest.mark.parametrize("method", ["welch", "permutation", "mixed"])
def test_switched_donors_found_and_others_not_flagged(apoptosis_cohort, method):
    res = _quiet(
        noa.tl.compare_conditions, apoptosis_cohort, value_key="apoptosis_intrinsic", sample_key="donor",
        condition_key="condition", reference="control", groupby="noa_cell_type", method=method,
    )
    assert set(res["condition"]) == {"apoptotic", "endocrine"}
    hit = res[(res["condition"] == "apoptotic") & res["group"].isin(SWITCHED_TYPES)]
    assert len(hit) == 2
    assert (hit["n_samples"] == 3).all() and (hit["n_reference_samples"] == 4).all()
    assert (hit["ci_low"] > 0).all()
    assert (hit["effect"] > 0.1).all()
    counts = apoptosis_cohort.obs.groupby(["noa_cell_type", "condition"], observed=True).size()
    for row in hit.itertuples():
        assert row.n_cells == counts[(row.group, "apoptotic")]
        assert row.n_reference_cells == counts[(row.group, "control")]
    # the endocrine donors carry no apoptosis switch: nothing is flagged
    unswitched = res[(res["condition"] == "endocrine") & (res["n_reference_samples"] >= 2)]
    assert len(unswitched) >= 10
    assert (unswitched["qvalue"] >= 0.05).all()
    assert ((unswitched["ci_low"] <= 0) & (unswitched["ci_high"] >= 0)).mean() >= 0.9


def test_value_lookup_from_obsm_and_score_key(apoptosis_cohort):
    adata = apoptosis_cohort
    kwargs = dict(sample_key="donor", condition_key="condition", reference="control")
    by_default = _quiet(noa.tl.compare_conditions, adata, value_key="apoptosis_intrinsic", **kwargs)
    by_key = _quiet(noa.tl.compare_conditions, adata, value_key="apoptosis_intrinsic",
                    score_key="noa_score_genes", **kwargs)
    pd.testing.assert_frame_equal(by_default, by_key)
    frame = adata.obs[["donor", "condition", "noa_cell_type"]].copy()
    frame["apoptosis_intrinsic"] = adata.obsm["noa_score_genes"]["apoptosis_intrinsic"].to_numpy()
    from_frame = _quiet(noa.tl.compare_conditions, frame, value_key="apoptosis_intrinsic", **kwargs)
    pd.testing.assert_frame_equal(by_default, from_frame)


# --- pseudoreplication ------------------------------------------------------------------------------


def test_one_donor_with_many_shifted_cells_gives_nan_p():
    cells = donor_table((1, 3), cells_per_donor=3000, donor_sd=0.5, shift=0.5, seed=1)
    case = cells.loc[cells["condition"] == "case", "score"]
    control = cells.loc[cells["condition"] == "control", "score"]
    assert stats.ttest_ind(case, control).pvalue < 1e-10  # what a cell-level test would claim
    for method in ("welch", "permutation", "mixed"):
        with pytest.warns(UserWarning, match="fewer than 2 samples"):
            res = noa.tl.compare_conditions(cells, value_key="score", sample_key="donor", condition_key="condition",
                                            reference="control", method=method)
        row = res.iloc[0]
        assert np.isnan(row["pvalue"]) and np.isnan(row["ci_low"]) and np.isnan(row["qvalue"])
        assert np.isfinite(row["effect"])
        assert (row["n_samples"], row["n_reference_samples"]) == (1, 3)


def test_two_vs_three_donors_shift_inside_donor_noise_is_not_significant():
    cells = donor_table((2, 3), cells_per_donor=2000, donor_sd=1.0, shift=0.3, seed=4)
    case = cells.loc[cells["condition"] == "case", "score"]
    control = cells.loc[cells["condition"] == "control", "score"]
    assert stats.ttest_ind(case, control).pvalue < 1e-10  # pseudoreplicated cell-level p
    for method in ("welch", "permutation"):
        res = noa.tl.compare_conditions(cells, value_key="score", sample_key="donor", condition_key="condition",
                                        reference="control", method=method)
        assert res["pvalue"].iloc[0] > 0.01
        assert res["ci_low"].iloc[0] < 0 < res["ci_high"].iloc[0]


# --- germ stages and composition ------------------------------------------------------------------


def test_broad_class_comparison_is_adjusted_for_stage_composition():
    rng = np.random.default_rng(0)
    frames = []
    for d in range(6):
        arrest = d >= 3
        stages = ["spermatocyte"] * 150 + ([] if arrest else ["round_spermatid"] * 150)
        base = np.where(np.array(stages) == "spermatocyte", 1.0, 0.0)  # stage effect, no condition effect
        frames.append(pd.DataFrame({
            "donor": f"d{d}", "condition": "arrest" if arrest else "control", "noa_cell_type": stages,
            "noa_cell_class": "germ", "score": base + rng.normal(0, 0.3, len(stages)) + rng.normal(0, 0.05),
        }))
    cells = pd.concat(frames, ignore_index=True)
    kwargs = dict(value_key="score", sample_key="donor", condition_key="condition", reference="control",
                  groupby="noa_cell_class")
    pooled = noa.tl.compare_conditions(cells, stratify=False, **kwargs).iloc[0]
    adjusted = noa.tl.compare_conditions(cells, **kwargs).iloc[0]
    assert pooled["effect"] == pytest.approx(0.5, abs=0.05)  # composition artefact
    assert adjusted["adjusted_by"] == "cell_type" and pooled["adjusted_by"] is None
    assert abs(adjusted["effect"]) < 0.05
    assert adjusted["ci_low"] < 0 < adjusted["ci_high"]
    with pytest.warns(UserWarning, match="round_spermatid / arrest"):  # arrested donors: no spermatids
        by_stage = noa.tl.compare_conditions(cells, **{**kwargs, "groupby": "noa_cell_type"})
    sc = by_stage[by_stage["group"] == "spermatocyte"].iloc[0]
    assert abs(sc["effect"]) < 0.1 and sc["adjusted_by"] is None


# --- confounders ------------------------------------------------------------------------------------


def test_stress_effect_tracking_dissociation_is_flagged():
    rng = np.random.default_rng(5)
    frames = []
    for d in range(8):
        case = d >= 4
        dissociation = (1.0 if case else 0.0) + rng.normal(0, 0.1)
        n = 100
        frames.append(pd.DataFrame({
            "donor": f"d{d}", "condition": "case" if case else "control",
            "control_dissociation": dissociation + rng.normal(0, 0.5, n),
            "stress_heat": 0.8 * dissociation + rng.normal(0, 0.5, n),
            "stress_er": rng.normal(0, 0.5, n) + rng.normal(0, 0.1),
            "apoptosis_intrinsic": rng.normal(0, 0.5, n),
        }))
    cells = pd.concat(frames, ignore_index=True)
    with pytest.warns(UserWarning, match="track the dissociation control"):
        res = noa.tl.compare_conditions(cells, value_key=["stress_heat", "stress_er", "apoptosis_intrinsic"],
                                        sample_key="donor", condition_key="condition", reference="control")
    res = res.set_index("variable")
    assert bool(res.loc["stress_heat", "dissociation_confounded"]) is True
    assert bool(res.loc["stress_er", "dissociation_confounded"]) is False
    assert pd.isna(res.loc["apoptosis_intrinsic", "dissociation_confounded"])
    assert res.loc["stress_heat", "dissociation_pvalue"] < 0.05
    assert "control_dissociation" not in res.index  # the control is a column, not a row


def test_stress_without_dissociation_control_warns():
    cells = donor_table((3, 3), seed=2).rename(columns={"score": "stress_oxidative"})
    with pytest.warns(UserWarning, match="dissociation confounding was not checked"):
        noa.tl.compare_conditions(cells, value_key="stress_oxidative", sample_key="donor", condition_key="condition",
                                  reference="control")


# --- mixed model ------------------------------------------------------------------------------------


def test_mixed_model_with_covariate():
    rng = np.random.default_rng(7)
    frames = []
    for d in range(10):
        case = d >= 5
        depth = rng.normal(0, 1, 200)
        frames.append(pd.DataFrame({
            "donor": f"d{d}", "condition": "case" if case else "control", "depth": depth,
            "score": 0.8 * case + 0.5 * depth + rng.normal(0, 0.3) + rng.normal(0, 1, 200),
        }))
    cells = pd.concat(frames, ignore_index=True)
    res = noa.tl.compare_conditions(cells, value_key="score", sample_key="donor", condition_key="condition",
                                    reference="control", method="mixed", covariates=["depth"]).iloc[0]
    assert res["ci_low"] < 0.8 < res["ci_high"]
    assert res["pvalue"] < 0.05 and res["method"] == "mixed"
    with pytest.warns(UserWarning, match="only used by method='mixed'"):
        noa.tl.compare_conditions(cells, value_key="score", sample_key="donor", condition_key="condition",
                                  reference="control", covariates=["depth"])


# --- bad input --------------------------------------------------------------------------------------


def test_missing_columns_raise_keyerror_listing_available(apoptosis_cohort):
    cells = donor_table((2, 2))
    with pytest.raises(KeyError, match=r"nope.*available columns.*donor"):
        noa.tl.compare_conditions(cells, value_key="nope", sample_key="donor", condition_key="condition",
                                  reference="control")
    with pytest.raises(KeyError, match=r"patient.*available columns"):
        noa.tl.compare_conditions(cells, value_key="score", sample_key="patient", condition_key="condition",
                                  reference="control")
    with pytest.raises(KeyError, match=r"not_a_set.*apoptosis_intrinsic"):
        noa.tl.compare_conditions(apoptosis_cohort, value_key="not_a_set", sample_key="donor",
                                  condition_key="condition", reference="control")
    with pytest.raises(KeyError, match="obsm"):
        noa.tl.compare_conditions(apoptosis_cohort, value_key="apoptosis_intrinsic", sample_key="donor",
                                  condition_key="condition", reference="control", score_key="noa_ucell")


def test_absent_reference_lists_conditions():
    cells = donor_table((2, 2))
    with pytest.raises(ValueError, match=r"'healthy' not found.*\['case', 'control'\]"):
        noa.tl.compare_conditions(cells, value_key="score", sample_key="donor", condition_key="condition",
                                  reference="healthy")


def test_sample_in_two_conditions_and_bad_method():
    cells = donor_table((2, 2))
    cells.loc[0, "condition"] = "control"
    with pytest.raises(ValueError, match="more than one"):
        noa.tl.compare_conditions(cells, value_key="score", sample_key="donor", condition_key="condition",
                                  reference="control")
    with pytest.raises(ValueError, match="unknown method"):
        noa.tl.compare_conditions(donor_table((2, 2)), value_key="score", sample_key="donor",
                                  condition_key="condition", reference="control", method="ttest")


def test_condition_without_cells_of_a_type_gives_nan_row():
    cells = donor_table((3, 3), seed=3)
    cells["cell_type"] = np.where(np.arange(len(cells)) % 2, "sertoli", "spermatocyte")
    # the case donors have no spermatocytes (Sertoli-cell-only)
    cells = cells[~((cells["condition"] == "case") & (cells["cell_type"] == "spermatocyte"))]
    with pytest.warns(UserWarning, match="no sample with at least 10 cell"):
        res = noa.tl.compare_conditions(cells, value_key="score", sample_key="donor", condition_key="condition",
                                        reference="control", groupby="cell_type")
    res = res.set_index("group")
    assert res.loc["spermatocyte", "n_samples"] == 0
    assert np.isnan(res.loc["spermatocyte", ["effect", "pvalue", "qvalue", "ci_low"]].astype(float)).all()
    assert np.isfinite(res.loc["sertoli", "pvalue"])


def test_nan_values_warn_and_min_cells_filters_samples():
    cells = donor_table((3, 3), cells_per_donor=20, seed=6)
    cells.loc[:4, "score"] = np.nan
    with pytest.warns(UserWarning, match="5 cell"):
        res = noa.tl.compare_conditions(cells, value_key="score", sample_key="donor", condition_key="condition",
                                        reference="control")
    assert res["n_cells"].iloc[0] == 55
    res = _quiet(noa.tl.compare_conditions, cells, value_key="score", sample_key="donor", condition_key="condition",
                 reference="control", min_cells=16)
    assert res["n_samples"].iloc[0] == 2  # the donor with 15 valid cells is left out


def test_opposite_sign_dissociation_is_not_a_confound():
    """Kills a flag that ignores the same-sign condition: stress up, dissociation down in the case
    donors, both p < 0.05 -> ``dissociation_confounded`` is False and no warning is emitted."""
    rng = np.random.default_rng(8)
    frames = []
    for d in range(8):
        case = d >= 4
        frames.append(pd.DataFrame({
            "donor": f"d{d}", "condition": "case" if case else "control",
            "control_dissociation": (-1.0 if case else 0.0) + rng.normal(0, 0.1) + rng.normal(0, 0.5, 100),
            "stress_heat": (1.0 if case else 0.0) + rng.normal(0, 0.1) + rng.normal(0, 0.5, 100),
        }))
    cells = pd.concat(frames, ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the confounding warning must not fire
        res = noa.tl.compare_conditions(cells, value_key="stress_heat", sample_key="donor",
                                        condition_key="condition", reference="control")
    row = res.set_index("variable").loc["stress_heat"]
    assert row["pvalue"] < 0.05 and row["effect"] > 0
    assert row["dissociation_pvalue"] < 0.05 and row["dissociation_effect"] < 0
    assert bool(row["dissociation_confounded"]) is False


def test_rows_name_their_condition_reference_and_method():
    """Each row says what was compared with what (a dropped ``reference`` entry survived mutation
    testing): condition, reference, method and the donor counts of both sides."""
    cells = donor_table((3, 4), cells_per_donor=20, seed=2)
    res = noa.tl.compare_conditions(cells, value_key="score", sample_key="donor", condition_key="condition",
                                    reference="control")
    row = res.iloc[0]
    assert row["variable"] == "score" and row["condition"] == "case" and row["reference"] == "control"
    assert row["method"] == "welch" and row["n_samples"] == 3 and row["n_reference_samples"] == 4
    assert row["n_cells"] == 60 and row["n_reference_cells"] == 80
def test_min_cells_default_leaves_out_donor_means_of_a_few_cells():
    """A donor mean over 2 cells no longer counts by default (issue 17 item 11)."""
    import inspect

    assert inspect.signature(noa.tl.compare_conditions).parameters["min_cells"].default == 10
    rng = np.random.default_rng(0)
    rows = []
    for donor, condition, n in [("c1", "control", 40), ("c2", "control", 40), ("c3", "control", 40),
                                ("n1", "noa", 40), ("n2", "noa", 40), ("n3", "noa", 2)]:
        shift = 5.0 if donor == "n3" else (1.0 if condition == "noa" else 0.0)  # n3: 2 outlying cells
        rows += [{"donor": donor, "condition": condition, "score": shift + rng.normal(0, 0.3)} for _ in range(n)]
    cells = pd.DataFrame(rows)
    with pytest.warns(UserWarning, match=r"left out with fewer than min_cells=10 cells: \['n3 \(score / noa: 2\)'\]"):
        res = noa.tl.compare_conditions(cells, value_key="score", sample_key="donor", condition_key="condition",
                                        reference="control")
    assert res["n_samples"].iloc[0] == 2 and res["effect"].iloc[0] == pytest.approx(1.0, abs=0.2)
    every = noa.tl.compare_conditions(cells, value_key="score", sample_key="donor", condition_key="condition",
                                      reference="control", min_cells=1)
    assert every["n_samples"].iloc[0] == 3 and every["effect"].iloc[0] > 2.0  # 2 cells moved the effect


# --- round 3 of mutation testing (docs/mutation.md): argument names, params, auto-scoring --------


def test_bad_design_arguments_name_the_argument():
    """Each error names the argument that is wrong (not a placeholder)."""
    table = donor_table((3, 3))
    with pytest.raises(ValueError, match=r"`covariates` must be a column name"):
        noa.tl.compare_conditions(table, value_key="score", sample_key="donor", condition_key="condition",
                                  reference="control", covariates=[1], method="mixed")
    with pytest.raises(ValueError, match=r"`sample_key` must be a column name, got 5"):
        noa.tl.compare_conditions(table, value_key="score", sample_key=5, condition_key="condition",
                                  reference="control")
    with pytest.raises(ValueError, match=r"`condition_key` must be a column name, got None"):
        noa.tl.compare_conditions(table, value_key="score", sample_key="donor", condition_key=None,
                                  reference="control")


def test_params_record_the_reference_under_its_name():
    res = _quiet(noa.tl.compare_conditions, donor_table((3, 3), shift=1.0), value_key="score",
                 sample_key="donor", condition_key="condition", reference="control")
    params = res.attrs["params"]
    assert params["reference"] == "control" and "REFERENCE" not in params
    assert params["sample_key"] == "donor" and params["condition_key"] == "condition"


def test_few_donor_warning_ends_with_the_list_when_ten_or_fewer():
    """With one donor on a side the warning lists the comparison and nothing after the list."""
    table = donor_table((1, 3), shift=1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        noa.tl.compare_conditions(table, value_key="score", sample_key="donor", condition_key="condition",
                                  reference="control")
    few = [str(w.message) for w in caught if "fewer than 2 samples" in str(w.message)]
    assert len(few) == 1 and few[0].endswith("]"), few


def test_curated_set_absent_from_obs_is_scored_on_the_fly(demo_annotated):
    """A curated set named in value_key but in neither obs nor obsm is scored from the expression
    (without it the comparison has no column to read and raises KeyError)."""
    adata = demo_annotated.copy()
    for key in [k for k in adata.obsm if k.startswith("noa_")]:
        del adata.obsm[key]
    assert "apoptosis_intrinsic" not in adata.obs.columns
    res = _quiet(noa.tl.compare_conditions, adata, value_key="apoptosis_intrinsic", sample_key="donor",
                 condition_key="condition", reference="control")
    assert len(res) and np.isfinite(res["effect"]).any()
    with pytest.raises(KeyError):
        _quiet(noa.tl.compare_conditions, adata, value_key="not_a_curated_set", sample_key="donor",
               condition_key="condition", reference="control")


def test_mixed_model_is_powell_first_like_a_direct_statsmodels_fit():
    """method='mixed' is statsmodels MixedLM (REML, random donor intercept) fitted with Powell first;
    the effect, SE-based CI and p equal a direct fit with the same optimiser."""
    import statsmodels.formula.api as smf

    table = donor_table((4, 4), shift=0.8, donor_sd=0.5, cells_per_donor=60, seed=3)
    res = _quiet(noa.tl.compare_conditions, table, value_key="score", sample_key="donor",
                 condition_key="condition", reference="control", method="mixed")
    frame = pd.DataFrame({"value": table["score"], "treated": (table["condition"] == "case").astype(float),
                          "sample": table["donor"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm("value ~ treated", frame, groups=frame["sample"]).fit(reml=True, method=["powell"])
    row = res.iloc[0]
    np.testing.assert_allclose(row["effect"], fit.params["treated"], rtol=1e-9)
    np.testing.assert_allclose(row["pvalue"], fit.pvalues["treated"], rtol=1e-9)
