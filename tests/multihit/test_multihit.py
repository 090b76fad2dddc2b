"""noa.tl.multihit on a simulated cohort with planted truth and on hand-made scores."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml

import noa_omics as noa
from noa_omics._vocabulary import APOPTOSIS_CONTEXTS, AXES, HISTOLOGIES
from noa_omics.multihit import load_axes, load_rules, robust_z

from .conftest import COHORT, make_handmade

CONTROLS = [d for d, (c, _) in COHORT.items() if c == "control"]
SCO = ["S1", "S2"]
APOPTOTIC = ["A1", "A2", "R1", "R2"]  # germ apoptosis switched on, intact niche
#: single planted upstream hit -> the axis it must raise
HITS = {
    "H_endocrine": "endocrine",
    "H_oxidative": "oxidative",
    "H_xist": "genetic",
    "H_azf": "genetic",
    "H_inflammation": "inflammation",
}


# --------------------------------------------------------------------------------------------
# simulated cohort
# --------------------------------------------------------------------------------------------


def test_table_layout(cohort):
    assert list(cohort.index) == sorted(COHORT)
    for col in [*AXES, "germ_apoptosis", "germ_fraction", "most_advanced_stage", "histology",
                "apoptosis_context", "evidence"]:
        assert col in cohort.columns
    assert set(cohort["apoptosis_context"]) <= set(APOPTOSIS_CONTEXTS)
    assert cohort.loc[CONTROLS, "is_reference"].all()
    assert not cohort.drop(index=CONTROLS)["is_reference"].any()


def test_histology_per_donor(cohort):
    expected = pd.Series({d: h for d, (_, h) in COHORT.items()})
    called = cohort["histology"]
    assert set(called) <= set(HISTOLOGIES)
    pd.testing.assert_series_equal(called.sort_index(), expected.sort_index(), check_names=False)
    assert (cohort.loc[SCO, "most_advanced_stage"] == "none").all()
    assert (cohort.loc[["M1", "M2", "G1"], "most_advanced_stage"] == "spermatocyte").all()
    assert (cohort.loc[CONTROLS, "most_advanced_stage"] == "elongating_spermatid").all()


def test_sco_irreversible_and_niche(cohort):
    assert (cohort.loc[SCO, "apoptosis_context"] == "irreversible").all()
    # apoptosis-only donors keep an intact niche and germ cells: never irreversible
    assert not (cohort.loc[["A1", "A2"], "apoptosis_context"] == "irreversible").any()
    assert cohort.loc[SCO, "niche"].min() > cohort.loc[CONTROLS, "niche"].max()
    # no germ cells: germ apoptosis is not evaluable, and the table says why
    assert cohort.loc[SCO, "germ_apoptosis"].isna().all()
    assert all("germ" in m for m in cohort.loc[SCO, "missing_ingredients"])


def test_evidence_sentences(cohort):
    for sample, row in cohort.iterrows():
        text = row["evidence"]
        assert text.startswith(f"{sample}: {row['apoptosis_context']}")
        assert f"histology {row['histology']}" in text
    assert "oxidative z=" in cohort.loc["R2", "evidence"]
    assert "germ apoptosis z=" in cohort.loc["R2", "evidence"]
    assert "not evaluable" in cohort.loc["S1", "evidence"]


@pytest.mark.parametrize("donor,axis", list(HITS.items()))
def test_planted_hit_raises_its_axis(cohort, donor, axis):
    assert cohort.loc[donor, axis] > cohort.loc[CONTROLS, axis].max()
    assert cohort.loc[donor, axis] >= 3.0


def test_correctable_stressor_is_potentially_reversible(cohort):
    assert cohort.loc["R1", "endocrine"] > cohort.loc[CONTROLS, "endocrine"].max()
    assert cohort.loc["R2", "oxidative"] > cohort.loc[CONTROLS, "oxidative"].max()
    assert (cohort.loc[["R1", "R2"], "apoptosis_context"] == "potentially_reversible").all()
    assert (cohort.loc[["R1", "R2"], "rule"] == "correctable_stressor").all()


def test_germ_apoptosis_of_apoptotic_donors_above_controls(cohort):
    assert cohort.loc[APOPTOTIC, "germ_apoptosis"].min() > cohort.loc[CONTROLS, "germ_apoptosis"].max()
    # checkpoint apoptosis in spermatocytes of the arrested donors
    assert cohort.loc[["M1", "M2", "G1"], "meiotic_checkpoint"].min() > cohort.loc[CONTROLS, "meiotic_checkpoint"].max()


def test_genetic_arrest_is_protective(cohort):
    """AZF deletion + meiotic arrest with checkpoint apoptosis: protective culling."""
    assert cohort.loc["G1", "apoptosis_context"] == "protective"
    assert cohort.loc["G1", "rule"] == "genetic_checkpoint_culling"
    assert cohort.loc["G1", "genetic"] > cohort.loc[CONTROLS + ["M1", "M2"], "genetic"].max()


def test_controls_are_not_elevated(cohort):
    """Controls: apoptosis not elevated and no upstream hit (no longer lumped into indeterminate)."""
    assert (cohort.loc[CONTROLS, "apoptosis_context"] == "not_elevated").all()
    assert (cohort.loc[CONTROLS, "rule"] == "apoptosis_not_elevated").all()


def test_hits_without_apoptosis_are_not_elevated_with_hit_in_evidence(cohort):
    """Endocrine / AZF hit with physiological apoptosis: not_elevated, the upstream hit named."""
    for donor, axis in (("H_endocrine", "endocrine"), ("H_azf", "genetic")):
        row = cohort.loc[donor]
        assert row["apoptosis_context"] == "not_elevated", row["evidence"]
        assert row["rule"] == "upstream_hit_without_apoptosis"
        assert f"{axis} z=" in row["evidence"]


def test_meiotic_arrest_with_checkpoint_apoptosis_is_protective(cohort):
    """Maturation arrest, checkpoint apoptosis, intact niche, no genetic hit: protective culling."""
    assert (cohort.loc[["M1", "M2"], "apoptosis_context"] == "protective").all()
    assert (cohort.loc[["M1", "M2"], "rule"] == "meiotic_arrest_checkpoint").all()


def test_apoptosis_without_cause_is_indeterminate(cohort):
    assert (cohort.loc[["A1", "A2"], "apoptosis_context"] == "indeterminate").all()
    assert (cohort.loc[["A1", "A2"], "rule"] == "elevated_without_cause").all()


def test_annotate_testis_path(cohort_adata):
    """Through noa.tl.annotate_testis labels instead of the truth: SCO donors stay irreversible."""
    adata = cohort_adata[cohort_adata.obs["sample"].isin(CONTROLS + SCO + ["R2"])].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noa.tl.annotate_testis(adata, key_added="annotated")
        table = noa.tl.multihit(
            adata, sample_key="sample", reference="control", condition_key="condition",
            cell_type_key="annotated", inplace=False,
        )
    assert (table.loc[SCO, "histology"] == "sertoli_cell_only").all()
    assert (table.loc[SCO, "apoptosis_context"] == "irreversible").all()
    assert table.loc["R2", "oxidative"] > table.loc[CONTROLS, "oxidative"].max()


# --------------------------------------------------------------------------------------------
# storage
# --------------------------------------------------------------------------------------------


def test_inplace_stores_uns_and_survives_h5ad(handmade, tmp_path):
    before = handmade.obs.copy()
    table = noa.tl.multihit(handmade, sample_key="sample", reference="control", condition_key="condition",
                            score_key="scores", key_added="mh")
    pd.testing.assert_frame_equal(handmade.obs, before)  # obs untouched
    stored = handmade.uns["mh"]
    assert stored["params"]["reference"] == ["P1", "P2", "P3", "P4"]
    assert stored["geneset_version"] == noa.genesets.load("human").version
    assert yaml.safe_load(stored["rules"])["thresholds"]["apoptosis_high"] == 3.0
    assert set(stored["ingredients"]["block"]) >= set(AXES)
    path = tmp_path / "mh.h5ad"
    handmade.write_h5ad(path)
    back = ad.read_h5ad(path)
    restored = back.uns["mh"]["table"].set_index("sample")
    pd.testing.assert_series_equal(restored["apoptosis_context"], table["apoptosis_context"], check_names=False)
    np.testing.assert_allclose(restored["niche"].to_numpy(float), table["niche"].to_numpy(float))


def test_inplace_false_leaves_adata(handmade):
    keys = set(handmade.uns)
    noa.tl.multihit(handmade, sample_key="sample", reference="control", condition_key="condition",
                    score_key="scores", inplace=False)
    assert set(handmade.uns) == keys


# --------------------------------------------------------------------------------------------
# hand-computed values
# --------------------------------------------------------------------------------------------


def test_robust_z_hand_computed():
    x = pd.Series({"a": 1.0, "b": 2.0, "c": 4.0, "d": 10.0, "e": 7.0})
    z, center, scale = robust_z(x, ["a", "b", "c", "d"], sd_floor=0.0, mad_floor=0.0)
    # median of 1, 2, 4, 10 = 3; |dev| = 2, 1, 1, 7 -> MAD = 1.5
    assert center == 3.0
    assert scale == pytest.approx(1.4826 * 1.5)
    assert z["e"] == pytest.approx(4.0 / (1.4826 * 1.5))
    # SD floor binds when two reference donors coincide
    z2, _, s2 = robust_z(pd.Series([0.0, 0.0, 3.0, 9.0]), [0, 1, 2], sd_floor=0.5, mad_floor=0.0)
    assert s2 == pytest.approx(0.5 * np.std([0.0, 0.0, 3.0], ddof=1))
    # all-equal reference: only the pooled floor keeps the scale positive
    z3, _, s3 = robust_z(pd.Series([0.0, 0.0, 0.0, 1.0]), [0, 1, 2], sd_floor=0.5, mad_floor=0.1)
    assert s3 == pytest.approx(0.1 * np.std([0, 0, 0, 1.0], ddof=1))
    assert z3[3] == pytest.approx(1.0 / s3)
    z4, _, _ = robust_z(pd.Series([2.0, 2.0, 2.0]), [0, 1])
    assert (z4 == 0).all()
    # the donor's own standard error widens its scale
    z5, _, s5 = robust_z(x, ["a", "b", "c", "d"], sd_floor=0.0, mad_floor=0.0, se=pd.Series({"e": 8.0}))
    assert z5["e"] == pytest.approx(4.0 / 8.0)
    assert z5["a"] == pytest.approx((1.0 - 3.0) / s5)


def test_axis_is_weighted_mean_of_signed_z():
    """Endocrine: steroidogenesis down (-1), immaturity up (+1), Sertoli response down (-1, w 0.5)."""
    shifts = {("P5", "endocrine_leydig_steroidogenesis"): -0.3, ("P5", "leydig_immaturity"): 0.3}
    adata = make_handmade(shifts)
    table = noa.tl.multihit(adata, sample_key="sample", reference=["P1", "P2", "P3", "P4"],
                            score_key="scores", inplace=False)
    # reference donor values -0.02, -0.01, 0.01, 0.02 (per-cell constant, so SE = 0):
    # median 0, MAD 0.015 -> 1.4826 * 0.015; SD floor 0.5 * SD(ref) is smaller; cell-type
    # adjustment subtracts the reference median (0) per type.
    scale = max(1.4826 * 0.015, 0.5 * np.std([-0.02, -0.01, 0.01, 0.02], ddof=1))
    z_ster = -(-0.3) / scale
    z_imm = 0.3 / scale
    z_sert = -0.0 / scale
    expected = (1.0 * z_ster + 1.0 * z_imm + 0.5 * z_sert) / 2.5
    # the pooled floor (0.1 x SD over all six donors) must not bind here
    assert table.loc["P5", "endocrine"] == pytest.approx(expected, rel=1e-6)


def test_axis_with_asymmetric_reference_is_median_centred():
    """A second test of robust-z centring (kills a mean-centred z): the reference donors' values
    -0.02, -0.01, 0.01, 0.12 (P4 shifted by +0.1) have median 0 but mean 0.025."""
    shifts = {("P5", "endocrine_leydig_steroidogenesis"): -0.3, ("P5", "leydig_immaturity"): 0.3,
              ("P4", "endocrine_leydig_steroidogenesis"): 0.1}
    adata = make_handmade(shifts)
    table = noa.tl.multihit(adata, sample_key="sample", reference=["P1", "P2", "P3", "P4"],
                            score_key="scores", inplace=False)
    skewed = np.array([-0.02, -0.01, 0.01, 0.12])
    # median 0; |dev| 0.02, 0.01, 0.01, 0.12 -> MAD 0.015; the SD floor 0.5 SD(ref) binds here
    scale_ster = max(1.4826 * 0.015, 0.5 * np.std(skewed, ddof=1))
    scale = max(1.4826 * 0.015, 0.5 * np.std([-0.02, -0.01, 0.01, 0.02], ddof=1))
    z_ster = -(-0.3 - 0.0) / scale_ster
    z_imm = 0.3 / scale
    expected = (1.0 * z_ster + 1.0 * z_imm + 0.5 * 0.0) / 2.5
    assert table.loc["P5", "endocrine"] == pytest.approx(expected, rel=1e-6)
    mean_centred = (-(-0.3 - skewed.mean()) / scale_ster + z_imm) / 2.5
    assert abs(expected - mean_centred) > 0.1  # the test can tell the two centres apart


def test_missing_cell_types_are_noted_not_fatal(handmade):
    table = noa.tl.multihit(handmade, sample_key="sample", reference="control", condition_key="condition",
                            score_key="scores", inplace=False)
    assert np.isnan(table.loc["P6", "germ_apoptosis"])
    assert np.isfinite(table.loc["P6", "oxidative"])  # Sertoli ingredients remain
    assert "oxidative.oxidative_germ" in table.loc["P6", "missing_ingredients"]
    assert table.loc["P6", "histology"] == "sertoli_cell_only"


# --------------------------------------------------------------------------------------------
# configuration overrides
# --------------------------------------------------------------------------------------------


def test_rules_threshold_override_changes_call(cohort_adata):
    sub = cohort_adata[cohort_adata.obs["sample"].isin(CONTROLS + ["R1", "R2"])].copy()
    kw = dict(sample_key="sample", reference="control", condition_key="condition", inplace=False)
    base = noa.tl.multihit(sub, **kw)
    assert (base.loc[["R1", "R2"], "apoptosis_context"] == "potentially_reversible").all()
    strict = noa.tl.multihit(sub, rules={"thresholds": {"apoptosis_high": 100.0}}, **kw)
    assert (strict.loc[["R1", "R2"], "apoptosis_context"] == "not_elevated").all()
    # axes are untouched by a rules override
    pd.testing.assert_series_equal(base["oxidative"], strict["oxidative"])


def test_axes_weight_override_from_yaml_file(tmp_path):
    shifts = {("P5", "endocrine_leydig_steroidogenesis"): -0.3}
    adata = make_handmade(shifts)
    kw = dict(sample_key="sample", reference=["P1", "P2", "P3", "P4"], score_key="scores", inplace=False)
    base = noa.tl.multihit(adata, **kw)
    path = tmp_path / "axes.yaml"
    path.write_text(yaml.safe_dump(
        {"axes": {"endocrine": {"ingredients": {"leydig_immaturity": {"weight": 0.0},
                                                 "sertoli_hormone_response": None}}}}
    ))
    over = noa.tl.multihit(adata, axes=str(path), **kw)
    # only the steroidogenesis ingredient is left with weight: the axis equals its z
    assert over.loc["P5", "endocrine"] == pytest.approx(base.loc["P5", "endocrine"] * 2.5)
    assert over.loc["P5", "genetic"] == base.loc["P5", "genetic"]


def test_rules_list_override_and_validation():
    rules = load_rules({"rules": [{"id": "all_protective", "context": "protective", "when": {}}]})
    assert [r["id"] for r in rules.rules] == ["all_protective"]
    with pytest.raises(ValueError, match="unknown field 'nich'"):
        load_rules({"rules": [{"id": "x", "context": "protective", "when": {"nich": {"ge": 1}}}]},
                   fields={"niche"})
    with pytest.raises(ValueError, match=r"threshold '\$nope' is not defined"):
        load_rules({"rules": [{"id": "x", "context": "protective", "when": {"niche": {"ge": "$nope"}}}]})
    with pytest.raises(ValueError, match="context must be one of"):
        load_rules({"rules": [{"id": "x", "context": "maybe", "when": {}}]})


def test_axes_config_validation():
    with pytest.raises(ValueError, match="unknown axis"):
        load_axes({"axes": {"hormonal": {"ingredients": {}}}})
    with pytest.raises(ValueError, match="unknown cell type or class 'sertolli'"):
        load_axes({"axes": {"niche": {"ingredients": {"barrier_loss": {"cell_types": ["sertolli"]}}}}})
    with pytest.raises(ValueError, match="sign must be 1, -1 or 'abs'"):
        load_axes({"axes": {"niche": {"ingredients": {"barrier_loss": {"sign": 2}}}}})
    assert load_axes(species="mouse").axes["genetic"][2].gene == "Xist"


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


def test_unknown_reference_condition(handmade):
    with pytest.raises(ValueError, match=r"reference condition 'healthy'.*available values: \['case', 'control'\]"):
        noa.tl.multihit(handmade, sample_key="sample", reference="healthy", condition_key="condition",
                        score_key="scores")


def test_unknown_reference_samples(handmade):
    with pytest.raises(ValueError, match=r"reference sample\(s\) \['X9'\] not found.*P1"):
        noa.tl.multihit(handmade, sample_key="sample", reference=["P1", "X9"], score_key="scores")
    with pytest.raises(ValueError, match="at least 2 reference samples"):
        noa.tl.multihit(handmade, sample_key="sample", reference=["P1"], score_key="scores")
    with pytest.raises(ValueError, match="pass condition_key"):
        noa.tl.multihit(handmade, sample_key="sample", reference="control", score_key="scores")


def test_missing_sample_key(handmade):
    with pytest.raises(KeyError, match="'donor' not found in `adata.obs`"):
        noa.tl.multihit(handmade, sample_key="donor", score_key="scores")


def test_missing_gene_sets_are_listed(handmade):
    scores = handmade.obsm["scores"].drop(columns=["stress_heat", "niche_btb"])
    handmade.obsm["partial"] = scores
    with pytest.raises(KeyError, match=r"\['stress_heat', 'niche_btb'\]"):
        noa.tl.multihit(handmade, sample_key="sample", score_key="partial")
    with pytest.raises(KeyError, match=r"\['no_such_set'\].*not in the human library"):
        noa.tl.multihit(handmade, sample_key="sample", axes={
            "axes": {"niche": {"ingredients": {"extra": {"signal": "score", "gene_set": "no_such_set"}}}}})


def test_axis_without_any_measurable_ingredient(handmade):
    # no Leydig or Sertoli cell anywhere: the endocrine axis cannot be measured in any donor
    sub = handmade[~handmade.obs["noa_cell_type"].isin(["leydig", "sertoli"])].copy()
    with pytest.raises(ValueError, match=r"endocrine <- leydig_steroidogenesis: fewer than 10 leydig cells"):
        noa.tl.multihit(sub, sample_key="sample", score_key="scores")
    table = noa.tl.multihit(sub, sample_key="sample", score_key="scores", allow_missing_axes=True, inplace=False)
    assert table["endocrine"].isna().all()


def test_no_vocabulary_cell_types(handmade):
    handmade.obs["noa_cell_type"] = "cluster_1"
    with pytest.raises(ValueError, match="annotate_testis"):
        noa.tl.multihit(handmade, sample_key="sample", score_key="scores")


def test_spatial_table_joins_niche_axis_and_histology(handmade):
    kw = dict(sample_key="sample", reference="control", condition_key="condition", score_key="scores",
              inplace=False)
    base = noa.tl.multihit(handmade, **kw)
    assert base["histology_source"].eq("composition").all()
    # the per-sample table of noa.spatial.niche_summary: sample column, NCI and predominant histology
    spatial = pd.DataFrame({
        "sample": ["P1", "P2", "P3", "P4", "P5"],
        "median_niche_collapse_index": [0.10, 0.12, 0.09, 0.11, 0.80],
        "histology": ["normal", "normal", "normal", "normal", "hypospermatogenesis"],
    })
    with_sp = noa.tl.multihit(handmade, spatial=spatial, **kw)
    assert with_sp.loc["P5", "niche"] > base.loc["P5", "niche"] + 1.0
    assert with_sp.loc["P5", "histology"] == "hypospermatogenesis"
    assert with_sp.loc["P5", "histology_source"] == "spatial"
    # P6 is absent from the spatial table: composition call, NCI noted as missing
    assert with_sp.loc["P6", "histology_source"] == "composition"
    assert "niche.niche_collapse_index (sample absent from the spatial table)" in with_sp.loc["P6", "missing_ingredients"]
    with pytest.raises(ValueError, match="one row per sample"):
        noa.tl.multihit(handmade, spatial=pd.concat([spatial, spatial]), **kw)


def test_docs_page_lists_every_ingredient_and_rule():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "multihit.md").read_text(encoding="utf-8")
    config = load_axes()
    for block, ingredients in config.blocks.items():
        for ing in ingredients:
            assert f"`{ing.name}`" in text, f"docs/multihit.md does not describe ingredient {block}.{ing.name}"
    for rule in load_rules().rules:
        assert f"`{rule['id']}`" in text, f"docs/multihit.md does not describe rule {rule['id']}"


def test_gene_expression_log_normalises_counts():
    from scipy import sparse

    from noa_omics.multihit._axes import gene_expression

    adata = ad.AnnData(sparse.csr_matrix(np.array([[0, 5, 5], [2, 0, 8]], dtype=np.float32)))
    adata.var_names = ["XIST", "A", "B"]
    np.testing.assert_allclose(gene_expression(adata, "XIST"), [0.0, np.log1p(2 / 10 * 1e4)])
    np.testing.assert_allclose(gene_expression(adata, "XIST", normalise=False), [0.0, 2.0])
    assert gene_expression(adata, "TSIX") is None


def test_focal_spermatogenesis_columns_join_table_and_retrieval_design(handmade):
    from noa_omics.multihit._retrieval import design_matrix

    kw = dict(sample_key="sample", reference="control", condition_key="condition", score_key="scores",
              inplace=False)
    spatial = pd.DataFrame({
        "sample": ["P1", "P2", "P3", "P4", "P5"],
        "median_niche_collapse_index": [0.10, 0.12, 0.09, 0.11, 0.80],
        "frac_complete_tubules": [0.9, 0.8, 0.95, 0.85, 0.15],
        "best_johnsen_like": [10, 10, 10, 10, 10],
        "spermatid_tubules_per_mm2": [20.0, 18.0, 22.0, 19.0, 1.5],
    })
    table = noa.tl.multihit(handmade, spatial=spatial, **kw)
    assert table.loc["P5", "frac_complete_tubules"] == pytest.approx(0.15)
    assert table.loc["P5", "spermatid_tubules_per_mm2"] == pytest.approx(1.5)
    assert np.isnan(table.loc["P6", "best_johnsen_like"])  # absent from the spatial table
    assert "frac_complete_tubules_low" not in table.columns  # only the columns given
    X, _ = design_matrix(table)
    assert {"frac_complete_tubules", "best_johnsen_like", "spermatid_tubules_per_mm2"} <= set(X.columns)
