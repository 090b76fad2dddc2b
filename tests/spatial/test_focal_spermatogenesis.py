"""Focal spermatogenesis per sample in niche_summary: few normal tubules among SCO vs uniform damage."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import noa_omics as noa
from noa_omics.spatial._summary import FOCAL_COLUMNS, focal_spermatogenesis


def _grid_section(sample: str, side: float, n: int = 15, seed: int = 0) -> ad.AnnData:
    """Cells on a square grid spanning [0, side]^2 (hull area side²) with a few cell types."""
    rng = np.random.default_rng(seed)
    g = np.linspace(0, side, n)
    xy = np.array([(x, y) for x in g for y in g])
    types = rng.choice(["sertoli", "spermatocyte", "leydig", "macrophage"], len(xy))
    obs = pd.DataFrame({"sample": sample, "noa_cell_type": types}, index=[f"{sample}_{i}" for i in range(len(xy))])
    adata = ad.AnnData(obs=obs)
    adata.obsm["spatial"] = xy
    return adata


def _metrics(sample: str, stages: list[str | None], johnsen: list[int], nci: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample": sample,
            "most_advanced_stage": stages,
            "johnsen_like": johnsen,
            "niche_collapse_index": nci,
            "histology": [
                "normal" if s == "elongating_spermatid" else "sertoli_cell_only" if s is None else "maturation_arrest"
                for s in stages
            ],
        },
        index=[f"{sample}_t{i}" for i in range(len(stages))],
    )


@pytest.fixture(scope="module")
def focal_vs_uniform():
    """20 tubules each: 'focal' = 3 complete tubules (NCI 0.1) among 17 SCO (NCI 0.9);
    'uniform' = 20 spermatocyte-arrest tubules at the same mean NCI (0.78)."""
    focal = _metrics("focal", ["elongating_spermatid"] * 3 + [None] * 17, [10] * 3 + [2] * 17, [0.1] * 3 + [0.9] * 17)
    mean_nci = focal["niche_collapse_index"].mean()
    uniform = _metrics("uniform", ["spermatocyte"] * 20, [4] * 20, [mean_nci] * 20)
    metrics = pd.concat([focal, uniform])
    adata = ad.concat([_grid_section("focal", 1000.0), _grid_section("uniform", 1000.0, seed=1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = noa.spatial.niche_summary(adata, sample_key="sample", metrics=metrics, n_perms=10)
    return table, mean_nci


def test_same_mean_nci_told_apart(focal_vs_uniform):
    table, mean_nci = focal_vs_uniform
    assert table.loc["focal", "mean_niche_collapse_index"] == pytest.approx(mean_nci)
    assert table.loc["uniform", "mean_niche_collapse_index"] == pytest.approx(mean_nci)
    f, u = table.loc["focal"], table.loc["uniform"]
    assert f["n_complete_tubules"] == 3 and u["n_complete_tubules"] == 0
    assert f["frac_complete_tubules"] == pytest.approx(0.15)
    assert f["frac_complete_tubules_low"] > 0  # the interval excludes "no complete tubule"
    assert u["frac_complete_tubules"] == 0 and u["frac_complete_tubules_high"] < f["frac_complete_tubules_high"]
    assert f["best_johnsen_like"] == 10 and u["best_johnsen_like"] == 4
    assert f["johnsen_like_p90"] == pytest.approx(np.quantile([10] * 3 + [2] * 17, 0.9))
    assert f["spermatid_tubules_per_mm2"] > 0 and u["spermatid_tubules_per_mm2"] == 0


def test_wilson_and_poisson_intervals_by_hand(focal_vs_uniform):
    table, _ = focal_vs_uniform
    z = stats.norm.ppf(0.975)
    p, n = 3 / 20, 20
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert table.loc["focal", "frac_complete_tubules_low"] == pytest.approx(centre - half)
    assert table.loc["focal", "frac_complete_tubules_high"] == pytest.approx(centre + half)
    # 1000 x 1000 units of 1 µm = 1 mm²: density = count; Garwood interval of 3
    assert table.loc["focal", "section_area_mm2"] == pytest.approx(1.0, rel=1e-6)
    assert table.loc["focal", "spermatid_tubules_per_mm2"] == pytest.approx(3.0, rel=1e-6)
    assert table.loc["focal", "spermatid_tubules_per_mm2_low"] == pytest.approx(stats.chi2.ppf(0.025, 6) / 2, rel=1e-6)
    assert table.loc["focal", "spermatid_tubules_per_mm2_high"] == pytest.approx(stats.chi2.ppf(0.975, 8) / 2, rel=1e-6)


def test_microns_per_unit_and_given_area():
    metrics = _metrics("s", ["elongating_spermatid", "round_spermatid", None], [10, 7, 2], [0.1, 0.3, 1.0])
    adata = _grid_section("s", 100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scaled = noa.spatial.niche_summary(adata, sample_key="sample", metrics=metrics, n_perms=10,
                                           microns_per_unit=10.0)
        given = noa.spatial.niche_summary(adata, sample_key="sample", metrics=metrics, n_perms=10,
                                          section_area={"s": 4.0})
    # 100 units x 10 µm = 1 mm per side
    assert scaled.loc["s", "section_area_mm2"] == pytest.approx(1.0, rel=1e-6)
    assert scaled.loc["s", "n_spermatid_tubules"] == 2
    assert scaled.loc["s", "spermatid_tubules_per_mm2"] == pytest.approx(2.0, rel=1e-6)
    assert given.loc["s", "spermatid_tubules_per_mm2"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="microns_per_unit"):
        noa.spatial.niche_summary(adata, sample_key="sample", metrics=metrics, microns_per_unit=0)
    with pytest.raises(KeyError, match="section_area"):
        noa.spatial.niche_summary(adata, sample_key="sample", metrics=metrics, section_area={"other": 1.0})


def test_simulated_sections_focal_vs_arrest():
    """Through tubule_metrics on simulated cells: a focal SCO section keeps complete tubules."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = noa.datasets.demo_spatial(seed=0, n_tubules=30, expression=False, sample="focal",
                                      histology_mix={"sertoli_cell_only": 0.85, "normal": 0.15})
        b = noa.datasets.demo_spatial(seed=1, n_tubules=30, expression=False, sample="arrest",
                                      histology_mix={"maturation_arrest": 1.0})
        both = ad.concat([a, b])
        both.obs_names_make_unique()
        metrics = noa.spatial.tubule_metrics(both, tubule_key="truth_tubule", sample_key="sample")
        table = noa.spatial.niche_summary(both, sample_key="sample", tubule_key="truth_tubule", metrics=metrics,
                                          n_perms=10)
    truth = metrics.groupby("sample")["most_advanced_stage"].apply(lambda s: (s == "elongating_spermatid").sum())
    assert table.loc["focal", "n_complete_tubules"] == truth["focal"] > 0
    assert table.loc["arrest", "n_complete_tubules"] == 0
    assert table.loc["focal", "best_johnsen_like"] >= 9 > table.loc["arrest", "best_johnsen_like"]
    for col in FOCAL_COLUMNS:
        assert col in table.columns


def test_focal_function_without_tubules():
    metrics = _metrics("a", ["elongating_spermatid"], [10], [0.1])
    out = focal_spermatogenesis(metrics, ["a", "b"], pd.Series({"a": 2.0, "b": 1.0}))
    assert out.loc["b", "n_complete_tubules"] == 0
    assert np.isnan(out.loc["b", "frac_complete_tubules"])
    assert out.loc["a", "spermatid_tubules_per_mm2"] == pytest.approx(0.5)
