"""Per-tubule metrics ``noa.spatial.tubule_metrics``: hand-computed values and simulated truth."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import noa_omics as noa
from noa_omics._vocabulary import HISTOLOGIES

from .conftest import matched_truth, quiet_metrics

EDGE_ANGLES = np.pi / 8 + np.arange(8) * np.pi / 4  # normals of the octagon's edges
APOTHEM = 10 * np.cos(np.pi / 8)


def _ring(radius, angles, centre=(0.0, 0.0)):
    return np.column_stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)])


def hand_tubules() -> AnnData:
    """Three tubules with hand-computable metrics.

    ``A`` (centre 0, 0): octagon of 8 myoid cells (radius 10), 6 spermatogonia at radius 8,
    6 spermatocytes at 6, 4 round spermatids at 4, 3 elongating spermatids at 2 (on the edge
    normals, so depths tie within a ring), 3 Sertoli cells at radius 7.
    ``B`` (centre 100, 0): 8 myoid cells and 10 Sertoli cells (Sertoli cell only).
    ``C`` (centre 0, 100): 8 myoid, 4 Sertoli, 6 spermatogonia, 8 spermatocytes (arrest).
    """
    parts = []

    def add(kind, xy, tubule):
        parts.append(pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "noa_cell_type": kind, "tub": tubule}))

    octagon = np.arange(8) * np.pi / 4
    add("peritubular_myoid", _ring(10, octagon), "A")
    add("spermatogonia", _ring(8, EDGE_ANGLES[:6]), "A")
    add("spermatocyte", _ring(6, EDGE_ANGLES[:6]), "A")
    add("round_spermatid", _ring(4, EDGE_ANGLES[:4]), "A")
    add("elongating_spermatid", _ring(2, EDGE_ANGLES[:3]), "A")
    add("sertoli", _ring(7, np.array([0.1, 2.0, 4.0])), "A")
    add("peritubular_myoid", _ring(10, octagon, (100, 0)), "B")
    add("sertoli", _ring(8, np.linspace(0, 2 * np.pi, 10, endpoint=False), (100, 0)), "B")
    add("peritubular_myoid", _ring(10, octagon, (0, 100)), "C")
    add("sertoli", _ring(8, np.array([0.3, 1.9, 3.5, 5.1]), (0, 100)), "C")
    add("spermatogonia", _ring(8, EDGE_ANGLES[:6], (0, 100)), "C")
    add("spermatocyte", _ring(5, np.linspace(0, 2 * np.pi, 8, endpoint=False), (0, 100)), "C")
    add("leydig", np.array([[50.0, 50.0], [55.0, 45.0]]), None)
    df = pd.concat(parts, ignore_index=True)
    adata = AnnData(obs=pd.DataFrame({
        "noa_cell_type": pd.Categorical(df["noa_cell_type"]),
        "noa_tubule": pd.Categorical(df["tub"]),
    }, index=[f"c{i}" for i in range(len(df))]))
    adata.obsm["spatial"] = df[["x", "y"]].to_numpy()
    return adata


def test_hand_computed_values():
    adata = hand_tubules()
    m = noa.spatial.tubule_metrics(adata, expected_germ_fraction=0.8, hypo_ratio=2.0)
    a, b, c = m.loc["A"], m.loc["B"], m.loc["C"]
    assert a["n_cells"] == 30 and a["n_germ"] == 19 and a["n_sertoli"] == 3 and a["n_peritubular_myoid"] == 8
    assert a["n_SSC"] == 0 and a["n_spermatocyte"] == 6
    assert a["frac_round_spermatid"] == pytest.approx(4 / 19)
    assert a["germ_fraction"] == pytest.approx(19 / 30)
    assert a["germ_per_sertoli"] == pytest.approx(19 / 3)
    assert a["most_advanced_stage"] == "elongating_spermatid"
    assert a["stage_completeness"] == pytest.approx(0.8)  # SSC missing
    assert a["radial_order"] == pytest.approx(1.0)
    assert a["histology"] == "normal" and a["johnsen_like"] == 10
    # NCI = (0.3 * (1 - 0.8) + 0.3 * (1 - (19/30)/0.8) + 0.2 * 0) / 0.8
    expected = (0.3 * 0.2 + 0.3 * (1 - (19 / 30) / 0.8)) / 0.8
    assert a["niche_collapse_index"] == pytest.approx(expected)
    assert a["nci_radial_disorder"] == pytest.approx(0.0)

    assert b["histology"] == "sertoli_cell_only" and b["johnsen_like"] == 2
    assert pd.isna(b["most_advanced_stage"]) and np.isnan(b["radial_order"])
    assert b["niche_collapse_index"] == pytest.approx(1.0)

    assert c["histology"] == "maturation_arrest" and c["most_advanced_stage"] == "spermatocyte"
    assert c["johnsen_like"] == 5  # 14 germ cells / 4 Sertoli = 3.5 >= hypo_ratio 2: "many"
    assert c["stage_completeness"] == pytest.approx(0.4)
    assert c["radial_order"] > 0.8
    assert m.index.tolist() == ["A", "B", "C"]
    assert set(m["histology"].cat.categories) == set(HISTOLOGIES)
    assert m["x"].loc["B"] == pytest.approx(100.0, abs=1e-9)


def test_hand_computed_nci_with_sertoli_scores():
    """Kills an NCI that leaves the Sertoli-dysfunction term out (and a mean-centred robust z):
    hand-computed term sigma(mean_tubule(z_imm - z_btb)), z = (v - median) / (1.4826 MAD) over all
    Sertoli cells, with skewed scores so that mean and median differ."""
    adata = hand_tubules()
    rng = np.random.default_rng(4)
    n = adata.n_obs
    sertoli = (adata.obs["noa_cell_type"] == "sertoli").to_numpy()
    imm = rng.exponential(1.0, n)  # skewed: mean != median
    btb = rng.exponential(0.5, n) - 0.2
    imm[~sertoli] = 50.0  # non-Sertoli cells must not enter the z-scores
    btb[~sertoli] = -50.0
    adata.obsm["scores"] = pd.DataFrame({"sertoli_immaturity": imm, "niche_btb": btb}, index=adata.obs_names)
    m = noa.spatial.tubule_metrics(adata, expected_germ_fraction=0.8, hypo_ratio=2.0, score_key="scores")

    def rz(v):
        med = np.median(v[sertoli])
        return (v - med) / (1.4826 * np.median(np.abs(v[sertoli] - med)))

    per_cell = rz(imm) - rz(btb)
    tub = adata.obs["noa_tubule"].astype(object).to_numpy()
    term = {t: 1.0 / (1.0 + np.exp(-per_cell[sertoli & (tub == t)].mean())) for t in ("A", "B", "C")}
    assert 0.05 < min(term.values()) and max(term.values()) < 0.95  # the term is informative here
    for t in ("A", "B", "C"):
        assert m.loc[t, "sertoli_dysfunction"] == pytest.approx(term[t], rel=1e-12)
        assert m.loc[t, "nci_sertoli_dysfunction"] == pytest.approx(term[t], rel=1e-12)
    # A: incompleteness 0.2, germ depletion 1 - (19/30)/0.8, radial disorder 0; all four weights
    expected_a = 0.3 * 0.2 + 0.3 * (1 - (19 / 30) / 0.8) + 0.2 * 0.0 + 0.2 * term["A"]
    assert m.loc["A", "niche_collapse_index"] == pytest.approx(expected_a, rel=1e-12)
    # B (Sertoli cell only): the three structural terms are 1, the Sertoli term pulls it below 1
    assert m.loc["B", "niche_collapse_index"] == pytest.approx(0.8 + 0.2 * term["B"], rel=1e-12)
    radial_c = (1 - m.loc["C", "radial_order"]) / 2
    expected_c = 0.3 * 0.6 + 0.3 * (1 - min(1.0, (14 / 26) / 0.8)) + 0.2 * radial_c + 0.2 * term["C"]
    assert m.loc["C", "niche_collapse_index"] == pytest.approx(expected_c, rel=1e-12)


def test_radial_order_sign_and_few_germ_johnsen():
    adata = hand_tubules()
    obs = adata.obs.copy()
    cell_type = obs["noa_cell_type"].astype(str).to_numpy()
    in_a = (obs["noa_tubule"] == "A").to_numpy()
    # invert tubule A: spermatids at the wall, spermatogonia at the lumen
    swap = {"spermatogonia": "elongating_spermatid", "elongating_spermatid": "spermatogonia",
            "spermatocyte": "round_spermatid", "round_spermatid": "spermatocyte"}
    cell_type[in_a] = [swap.get(t, t) for t in cell_type[in_a]]
    adata.obs["noa_cell_type"] = pd.Categorical(cell_type)
    m = noa.spatial.tubule_metrics(adata, expected_germ_fraction=0.8, hypo_ratio=10.0)
    assert m.loc["A", "radial_order"] == pytest.approx(-1.0)
    assert m.loc["A", "nci_radial_disorder"] == pytest.approx(1.0)
    # 19 / 3 germ cells per Sertoli cell < 10: few germ cells -> hypospermatogenesis, Johnsen 8
    assert m.loc["A", "histology"] == "hypospermatogenesis" and m.loc["A", "johnsen_like"] == 8
    assert m.loc["C", "johnsen_like"] == 4


def test_histology_accuracy(mixed_segmented):
    m = quiet_metrics(mixed_segmented)
    tubules = mixed_segmented.uns["demo_spatial"]["tubules"].set_index("tubule")
    truth = tubules.loc[matched_truth(mixed_segmented).reindex(m.index), "histology"].to_numpy()
    accuracy = float(np.mean(truth == m["histology"].astype(str).to_numpy()))
    assert accuracy >= 0.85


def test_nci_ordering_and_radial_order(mixed_segmented):
    m = quiet_metrics(mixed_segmented)
    tubules = mixed_segmented.uns["demo_spatial"]["tubules"].set_index("tubule")
    truth = pd.Series(tubules.loc[matched_truth(mixed_segmented).reindex(m.index), "histology"].to_numpy(),
                      index=m.index)
    nci = m["niche_collapse_index"].groupby(truth).median()
    assert nci["normal"] < nci["hypospermatogenesis"] < nci["sertoli_cell_only"]
    assert nci["normal"] < nci["maturation_arrest"] < nci["sertoli_cell_only"]
    assert m["niche_collapse_index"].between(0, 1).all()
    radial = m["radial_order"].groupby(truth).median()
    assert radial["normal"] > 0.7
    johnsen = m["johnsen_like"].groupby(truth).median()
    assert johnsen["normal"] >= 9 and johnsen["sertoli_cell_only"] == 2
    assert johnsen["maturation_arrest"] in (4, 5)


def test_shuffled_stages_lose_radial_order(mixed_segmented):
    adata = mixed_segmented.copy()
    m = quiet_metrics(adata)
    normal = m.index[m["histology"] == "normal"]
    rng = np.random.default_rng(0)
    cell_type = adata.obs["noa_cell_type"].astype(str).to_numpy()
    tub = adata.obs["noa_tubule"].astype(object).to_numpy()
    germ = np.isin(cell_type, ["SSC", "spermatogonia", "spermatocyte", "round_spermatid", "elongating_spermatid"])
    for t in normal:
        idx = np.flatnonzero((tub == t) & germ)
        cell_type[idx] = rng.permutation(cell_type[idx])
    adata.obs["noa_cell_type"] = pd.Categorical(cell_type)
    shuffled = quiet_metrics(adata)
    assert shuffled.loc[normal, "radial_order"].median() < 0.3
    assert shuffled.loc[normal, "radial_order"].median() < m.loc[normal, "radial_order"].median() - 0.5
    # same counts, so only the radial term moves the index
    pd.testing.assert_series_equal(shuffled.loc[normal, "stage_completeness"], m.loc[normal, "stage_completeness"])
    assert shuffled.loc[normal, "niche_collapse_index"].median() > m.loc[normal, "niche_collapse_index"].median() + 0.05


def test_expression_terms(scored):
    m = quiet_metrics(scored, score_key="scores")
    assert {"germ_apoptosis", "sertoli_dysfunction", "nci_sertoli_dysfunction"} <= set(m.columns)
    tubules = scored.uns["demo_spatial"]["tubules"].set_index("tubule")
    truth = pd.Series(tubules.loc[matched_truth(scored).reindex(m.index), "histology"].to_numpy(), index=m.index)
    dysfunction = m["sertoli_dysfunction"].groupby(truth).median()
    assert dysfunction["sertoli_cell_only"] > dysfunction["normal"] + 0.3
    apoptosis = m["germ_apoptosis"].groupby(truth).median()
    assert apoptosis["maturation_arrest"] > apoptosis["normal"]
    nci = m["niche_collapse_index"].groupby(truth).median()
    assert nci["normal"] < nci["hypospermatogenesis"] < nci["sertoli_cell_only"]
    # without scores the Sertoli term is absent and the weights re-normalise
    plain = quiet_metrics(scored)
    assert "sertoli_dysfunction" not in plain.columns
    assert plain["nci_sertoli_dysfunction"].isna().all()


def test_weights_and_parameters(mixed_segmented):
    only_completeness = quiet_metrics(mixed_segmented, weights={"incompleteness": 1.0})
    np.testing.assert_allclose(only_completeness["niche_collapse_index"],
                               1 - only_completeness["stage_completeness"])
    m = quiet_metrics(mixed_segmented, obs_keys=["donor"], sample_key="sample")
    assert (m["sample"] == "demo_section").all() and (m["donor"] == "donor_0").all()
    params = m.attrs["params"]
    assert params["hypo_ratio_source"] == "estimated" and params["hypo_ratio"] > 0
    with pytest.raises(ValueError, match="weights"):
        noa.spatial.tubule_metrics(mixed_segmented, weights={"size": 1.0})
    with pytest.raises(ValueError, match="weights"):
        noa.spatial.tubule_metrics(mixed_segmented, weights={"incompleteness": -1.0})


def test_threshold_warning_without_reference_tubules():
    adata = hand_tubules()
    with pytest.warns(UserWarning, match="hypo_ratio"):
        m = noa.spatial.tubule_metrics(adata)
    assert m.attrs["params"]["hypo_ratio_source"] == "unavailable"
    assert (m["histology"] != "hypospermatogenesis").all()


def test_bad_inputs(mixed_segmented):
    adata = mixed_segmented
    with pytest.raises(KeyError, match="assign_tubules"):
        noa.spatial.tubule_metrics(adata, tubule_key="tubes")
    with pytest.raises(KeyError, match="score"):
        noa.spatial.tubule_metrics(adata, score_key="noa_score_genes")
    bad = adata.copy()
    bad.obsm["scores"] = np.zeros((adata.n_obs, 2))
    with pytest.raises(ValueError, match="DataFrame"):
        noa.spatial.tubule_metrics(bad, score_key="scores")
    bad = adata.copy()
    bad.obs["noa_tubule"] = pd.Categorical([None] * adata.n_obs, categories=["T0001"])
    with pytest.raises(ValueError, match="no cell has a tubule"):
        noa.spatial.tubule_metrics(bad)
    bad = adata.copy()
    bad.obs["half"] = np.where(np.arange(adata.n_obs) % 2 == 0, "s1", "s2")
    with pytest.raises(ValueError, match="spans several samples"):
        noa.spatial.tubule_metrics(bad, sample_key="half")
    with pytest.raises(KeyError):
        noa.spatial.tubule_metrics(adata, obs_keys=["patient"])


def test_does_not_mutate(mixed_segmented):
    obs = mixed_segmented.obs.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noa.spatial.tubule_metrics(mixed_segmented)
    pd.testing.assert_frame_equal(mixed_segmented.obs, obs)
