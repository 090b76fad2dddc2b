"""The simulated section generator ``noa.datasets.demo_spatial``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import noa_omics as noa
from noa_omics._vocabulary import CELL_TYPES, GERM_STAGES, HISTOLOGIES


def test_same_seed_same_data_and_other_seed_differs():
    a = noa.datasets.demo_spatial(seed=11, n_tubules=15)
    b = noa.datasets.demo_spatial(seed=11, n_tubules=15)
    c = noa.datasets.demo_spatial(seed=12, n_tubules=15)
    pd.testing.assert_frame_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.obsm["spatial"], b.obsm["spatial"])
    assert (a.X != b.X).nnz == 0
    assert a.n_obs != c.n_obs or not np.array_equal(a.obsm["spatial"], c.obsm["spatial"])


def test_structure_and_truth(sections):
    adata = sections["mixed"]
    for col in ("noa_cell_type", "noa_cell_class", "truth_cell_type", "truth_tubule", "truth_histology",
                "sample", "section", "donor", "condition"):
        assert col in adata.obs.columns
    assert adata.obsm["spatial"].shape == (adata.n_obs, 2)
    assert set(adata.obs["noa_cell_type"].cat.categories) == set(CELL_TYPES)
    tubules = adata.uns["demo_spatial"]["tubules"]
    for col in ("tubule", "histology", "center_x", "center_y", "radius", "touching", "cut"):
        assert col in tubules.columns
    assert set(tubules["histology"]) <= set(HISTOLOGIES)
    # the per-cell truth agrees with the per-tubule truth
    per_cell = adata.obs.dropna(subset=["truth_tubule"]).groupby("truth_tubule", observed=True)["truth_histology"].first()
    expected = tubules.set_index("tubule")["histology"]
    assert (per_cell.astype(str) == expected.reindex(per_cell.index)).all()
    # interstitial cells have no tubule; tubule interiors hold no interstitial cell type
    truth = adata.obs["truth_cell_type"].astype(str)
    inter = truth.isin(["leydig", "endothelial", "macrophage", "t_cell", "other"])
    assert adata.obs.loc[inter, "truth_tubule"].isna().all()
    # some tubules touch and some are cut by the section edge
    assert tubules["touching"].any() and tubules["cut"].any()


def test_histology_patterns(sections):
    obs = sections["mixed"].obs
    truth = obs["truth_cell_type"].astype(str)
    hist = obs["truth_histology"].astype(object)
    sco = (hist == "sertoli_cell_only").to_numpy()
    assert not truth[sco].isin(GERM_STAGES).any()
    assert (truth[sco] == "sertoli").sum() > 0
    ma = (hist == "maturation_arrest").to_numpy()
    assert not truth[ma].isin(["round_spermatid", "elongating_spermatid"]).any()
    # hypospermatogenesis: all stages but fewer germ cells per Sertoli cell than normal
    ratio = {}
    for h in ("normal", "hypospermatogenesis"):
        m = (hist == h).to_numpy()
        assert set(GERM_STAGES) <= set(truth[m])
        ratio[h] = truth[m].isin(GERM_STAGES).sum() / (truth[m] == "sertoli").sum()
    assert ratio["hypospermatogenesis"] < 0.5 * ratio["normal"]


def test_radial_stage_order_in_normal_tubules(sections):
    adata = sections["mixed"]
    tubules = adata.uns["demo_spatial"]["tubules"].set_index("tubule")
    obs = adata.obs
    normal = obs["truth_histology"].astype(object).eq("normal").to_numpy()
    germ = obs["truth_cell_type"].astype(str).isin(GERM_STAGES).to_numpy()
    sel = normal & germ
    centre = tubules.loc[obs.loc[sel, "truth_tubule"].astype(str), ["center_x", "center_y"]].to_numpy()
    dist = np.hypot(*(adata.obsm["spatial"][sel] - centre).T)
    rank = obs.loc[sel, "truth_cell_type"].astype(str).map({s: k for k, s in enumerate(GERM_STAGES)})
    by_stage = pd.Series(dist).groupby(rank.to_numpy()).mean()
    # later stages lie closer to the tubule centre (SSC and spermatogonia share the basal layer)
    assert by_stage.loc[2] > by_stage.loc[3] > by_stage.loc[4]
    assert by_stage.loc[1] > by_stage.loc[2]


def test_unit_scale_multiplies_coordinates():
    a = noa.datasets.demo_spatial(seed=3, n_tubules=10, expression=False)
    b = noa.datasets.demo_spatial(seed=3, n_tubules=10, expression=False, unit_scale=0.37)
    np.testing.assert_allclose(b.obsm["spatial"], 0.37 * a.obsm["spatial"])
    np.testing.assert_allclose(b.uns["demo_spatial"]["tubules"]["radius"],
                               0.37 * a.uns["demo_spatial"]["tubules"]["radius"])


def test_histology_mix_is_respected():
    adata = noa.datasets.demo_spatial(seed=1, n_tubules=20, expression=False,
                                      histology_mix={"sertoli_cell_only": 1.0})
    assert set(adata.uns["demo_spatial"]["tubules"]["histology"]) == {"sertoli_cell_only"}
    assert not adata.obs["truth_cell_type"].astype(str).isin(GERM_STAGES).any()


def test_expression_panel(scored):
    adata = scored
    assert 150 <= adata.n_vars <= 300
    counts = adata.layers["counts"]
    assert np.allclose(counts.data, np.round(counts.data)) and counts.data.min() >= 0
    library = noa.genesets.load("human")
    assert set(adata.var_names) <= set().union(*(set(gs.genes) for gs in library.values()))
    # Sertoli cells of SCO tubules: barrier genes down, immaturity genes up
    scores = adata.obsm["scores"]
    truth = adata.obs["truth_cell_type"].astype(str).to_numpy() == "sertoli"
    sco = adata.obs["truth_histology"].astype(object).eq("sertoli_cell_only").to_numpy()
    normal = adata.obs["truth_histology"].astype(object).eq("normal").to_numpy()
    assert scores.loc[truth & sco, "niche_btb"].mean() < scores.loc[truth & normal, "niche_btb"].mean()
    assert scores.loc[truth & sco, "sertoli_immaturity"].mean() > scores.loc[truth & normal, "sertoli_immaturity"].mean()


def test_cohort_sections_donors_conditions():
    adata = noa.datasets.demo_spatial(seed=0, n_tubules=8, sections=4, sections_per_donor=2, expression=False)
    per_sample = adata.obs.groupby("sample", observed=True)[["donor", "condition"]].first()
    assert len(per_sample) == 4
    assert per_sample["donor"].nunique() == 2
    assert set(per_sample["condition"]) == {"control", "NOA"}
    assert adata.obs_names.is_unique
    tub = adata.uns["demo_spatial"]["tubules"]
    assert tub["tubule"].is_unique and set(tub["sample"]) == set(per_sample.index)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_tubules": 0},
        {"unit_scale": 0},
        {"touching": 1.5},
        {"histology_mix": {"azoospermia": 1.0}},
        {"histology_mix": [{"normal": 1.0}], "sections": 2},
        {"label_noise": 1.0},
    ],
)
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        noa.datasets.demo_spatial(expression=False, **kwargs)
