"""annotate_testis on the simulated demo cohort (planted truth) and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

import noa_omics as noa
from noa_omics._vocabulary import CELL_TYPES, GERM_STAGES


def _accuracy(adata: AnnData, key: str = "noa_cell_type") -> tuple[float, float]:
    truth = adata.obs["truth_cell_type"].astype(str).to_numpy()
    pred = adata.obs[key].astype(str).to_numpy()
    broad = (adata.obs["truth_cell_class"].astype(str).to_numpy() == adata.obs["noa_cell_class"].astype(str).to_numpy())
    return float(broad.mean()), float((truth == pred).mean())


def test_accuracy_on_demo(demo_annotated):
    broad, fine = _accuracy(demo_annotated)
    assert broad >= 0.95
    assert fine >= 0.85
    confusion = pd.crosstab(demo_annotated.obs["truth_cell_type"].astype(str),
                            demo_annotated.obs["noa_cell_type"].astype(str))
    recall = {t: confusion.loc[t, t] / confusion.loc[t].sum() for t in CELL_TYPES if t != "other"}
    assert min(recall[t] for t in CELL_TYPES if t not in GERM_STAGES and t != "other") >= 0.95
    assert min(recall[t] for t in GERM_STAGES) >= 0.6


def test_outputs_and_uns(demo_annotated):
    obs = demo_annotated.obs
    assert list(obs["noa_cell_type"].cat.categories) == list(CELL_TYPES)
    assert set(obs["noa_cell_class"].astype(str)) <= {"germ", "sertoli", "leydig", "peritubular_myoid",
                                                       "endothelial", "immune", "other"}
    confidence = obs["noa_cell_type_confidence"].to_numpy()
    assert np.isfinite(confidence).all() and confidence.min() >= 0 and confidence.max() <= 1
    germ = obs["noa_cell_type"].isin(GERM_STAGES).to_numpy()
    position = obs["noa_cell_type_germ_position"].to_numpy()
    assert np.isfinite(position[germ]).all() and np.isnan(position[~germ]).all()
    # the stage position follows the simulated pseudotime
    t = obs["truth_pseudotime"].to_numpy()
    both = germ & np.isfinite(t)
    assert np.corrcoef(position[both], t[both])[0, 1] > 0.9
    uns = demo_annotated.uns["noa_cell_type"]
    assert uns["geneset_version"] == noa.genesets.load("human").version
    assert uns["params"]["species"] == "human" and uns["params"]["normalised_here"] is True
    assert set(uns["marker_genes"]) == set(CELL_TYPES) - {"other"}


def test_input_not_mutated_and_inplace_false():
    adata = noa.datasets.demo_testis(seed=3, n_cells=800)
    before_x = adata.X.copy()
    before_obs = adata.obs.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = noa.tl.annotate_testis(adata, inplace=False)
    assert (adata.X != before_x).nnz == 0 if sp.issparse(before_x) else np.array_equal(adata.X, before_x)
    pd.testing.assert_frame_equal(adata.obs, before_obs)
    assert "noa_cell_type" not in adata.uns and len(adata.obsm) == 0 and len(adata.obsp) == 0
    assert isinstance(labels, pd.Series) and labels.index.equals(adata.obs_names)
    # same input, same output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = noa.tl.annotate_testis(adata, inplace=False)
    pd.testing.assert_series_equal(labels, again)


def test_existing_graph_and_clusters_and_lognormalised_input(demo_annotated):
    import scanpy as sc

    adata = demo_annotated.copy()
    for key in ("noa_cell_type", "noa_cell_class"):
        del adata.obs[key]
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)  # X log-normalised now: used as is
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.pca(adata, n_comps=30, random_state=0)
        sc.pp.neighbors(adata, n_neighbors=15, random_state=0)
        noa.tl.annotate_testis(adata)
    assert adata.uns["noa_cell_type"]["params"]["graph"] == "obsp['connectivities']"
    assert adata.uns["noa_cell_type"]["params"]["normalised_here"] is False
    broad, fine = _accuracy(adata)
    assert broad >= 0.95 and fine >= 0.85
    adata.obs["cluster"] = adata.obs["noa_cell_type"].astype(str)  # stand-in for leiden clusters
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noa.tl.annotate_testis(adata, cluster_key="cluster", key_added="by_cluster", class_key="by_cluster_class")
    assert (adata.obs["by_cluster"].astype(str) == adata.obs["noa_cell_type"].astype(str)).mean() > 0.95


def test_mouse_smoke():
    adata = noa.datasets.demo_testis(seed=0, n_cells=1500, species="mouse")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noa.tl.annotate_testis(adata)
    assert adata.uns["noa_cell_type"]["params"]["species"] == "mouse"
    broad, fine = _accuracy(adata)
    assert broad >= 0.9 and fine >= 0.8


def test_all_zero_cells_are_other_with_zero_confidence():
    adata = noa.datasets.demo_testis(seed=4, n_cells=600)
    x = adata.X.tolil() if sp.issparse(adata.X) else adata.X
    x[:5] = 0
    adata.X = sp.csr_matrix(x) if sp.issparse(adata.X) else x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noa.tl.annotate_testis(adata)
    assert (adata.obs["noa_cell_type"].iloc[:5] == "other").all()
    assert (adata.obs["noa_cell_type_confidence"].iloc[:5] == 0).all()
    assert adata.obs["noa_cell_type_confidence"].notna().all()
    assert adata.obs["noa_cell_type"].notna().all()


def test_min_confidence_moves_only_low_confidence_cells_to_other(demo_annotated):
    """Cells below ``min_confidence`` become ``other`` and every other cell keeps its label: a
    function that calls every cell ``other`` fails (the median threshold leaves half the cells)."""
    adata = demo_annotated.copy()
    confidence = demo_annotated.obs["noa_cell_type_confidence"].to_numpy()
    base = demo_annotated.obs["noa_cell_type"].astype(str).to_numpy()
    for threshold in (0.5, float(np.median(confidence[base != "other"]))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            strict = noa.tl.annotate_testis(adata, min_confidence=threshold, inplace=False)
        strict = strict.astype(str).to_numpy()
        low = confidence < threshold
        assert (strict[low] == "other").all()
        assert (~low).sum() > 0
        np.testing.assert_array_equal(strict[~low], base[~low])
    assert 0 < low.sum() < len(low)  # the median threshold splits the cells


def test_no_marker_overlap_and_bad_input():
    rng = np.random.default_rng(0)
    adata = AnnData(X=rng.poisson(1.0, (50, 30)).astype(float),
                    var=pd.DataFrame(index=[f"GENE{i}" for i in range(30)]))
    with pytest.raises(ValueError, match="none of the curated human marker genes"):
        noa.tl.annotate_testis(adata, species="human")
    demo = noa.datasets.demo_testis(seed=0, n_cells=300)
    with pytest.raises(ValueError, match="none of the curated mouse marker genes"):
        noa.tl.annotate_testis(demo, species="mouse")
    with pytest.raises(KeyError, match=r"leiden.*available columns"):
        noa.tl.annotate_testis(demo, cluster_key="leiden")
    with pytest.raises(KeyError, match="layer 'spliced' not found"):
        noa.tl.annotate_testis(demo, layer="spliced")
    with pytest.raises(ValueError, match="unknown species"):
        noa.tl.annotate_testis(demo, species="rat")
    with pytest.raises(TypeError, match="AnnData"):
        noa.tl.annotate_testis(demo.obs)
