"""Score accessors: scores in obsm reach scanpy's plots (issue 17 item 12)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from anndata import AnnData  # noqa: E402

import noa_omics as noa  # noqa: E402


@pytest.fixture
def scored() -> AnnData:
    rng = np.random.default_rng(0)
    n = 50
    adata = AnnData(X=rng.random((n, 5)).astype(np.float32),
                    obs=pd.DataFrame({"noa_cell_type": pd.Categorical(["sertoli", "leydig"] * 25)},
                                     index=[f"c{i}" for i in range(n)]))
    adata.obsm["X_umap"] = rng.normal(size=(n, 2))
    adata.obsm["noa_score_genes"] = pd.DataFrame({"apoptosis_intrinsic": rng.normal(size=n),
                                                  "stress_heat": rng.normal(size=n)}, index=adata.obs_names)
    adata.obsm["noa_ucell"] = pd.DataFrame({"apoptosis_intrinsic": rng.random(n)}, index=adata.obs_names)
    adata.uns["noa_score_genes"] = {"method": "score_genes"}
    return adata


def test_get_scores_is_an_anndata_of_the_table(scored):
    before = scored.copy()
    scores = noa.tl.get_scores(scored)
    assert list(scores.var_names) == ["apoptosis_intrinsic", "stress_heat"]
    np.testing.assert_array_equal(scores.X, scored.obsm["noa_score_genes"].to_numpy())
    assert list(scores.obs_names) == list(scored.obs_names)
    assert "X_umap" in scores.obsm and "noa_ucell" not in scores.obsm
    assert scores.uns["noa_scores_from"] == "noa_score_genes"
    ucell = noa.tl.get_scores(scored, "noa_ucell")
    np.testing.assert_array_equal(ucell.X[:, 0], scored.obsm["noa_ucell"]["apoptosis_intrinsic"].to_numpy())
    assert list(scored.obs.columns) == list(before.obs.columns)  # input untouched


def test_scanpy_plots_take_a_set_name(scored):
    import matplotlib.pyplot as plt
    import scanpy as sc

    with pytest.raises(KeyError):  # the habit that failed before
        sc.pl.umap(scored, color="apoptosis_intrinsic", show=False)
    ax = sc.pl.umap(noa.tl.get_scores(scored), color="apoptosis_intrinsic", show=False)
    assert ax.get_title() == "apoptosis_intrinsic"
    noa.tl.scores_to_obs(scored, ["apoptosis_intrinsic"])
    sc.pl.umap(scored, color="apoptosis_intrinsic", show=False)
    plt.close("all")


def test_scores_to_obs_copies_and_refuses_to_overwrite(scored):
    names = noa.tl.scores_to_obs(scored, "stress_heat")
    assert names == ["stress_heat"]
    np.testing.assert_array_equal(scored.obs["stress_heat"], scored.obsm["noa_score_genes"]["stress_heat"])
    with pytest.raises(ValueError, match="already has column"):
        noa.tl.scores_to_obs(scored, "stress_heat")
    assert noa.tl.scores_to_obs(scored, key="noa_ucell", prefix="ucell_") == ["ucell_apoptosis_intrinsic"]
    assert noa.tl.scores_to_obs(scored, "stress_heat", overwrite=True) == ["stress_heat"]


def test_accessor_errors_name_the_fix(scored):
    with pytest.raises(KeyError, match=r"available score tables: \['noa_score_genes', 'noa_ucell'\]"):
        noa.tl.get_scores(scored, "noa_aucell")
    with pytest.raises(KeyError, match=r"gene set\(s\) \['niche_btb'\] not in"):
        noa.tl.get_scores(scored, columns=["niche_btb"])
    with pytest.raises(KeyError, match="run noa.tl.score"):
        noa.tl.get_scores(AnnData(X=np.zeros((3, 2))))
