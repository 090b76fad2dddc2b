"""annotate_testis at bead/bin depth on an independent continuum simulator, panels, noise, space."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

import noa_omics as noa
from noa_omics._vocabulary import CELL_TYPE_TO_CLASS, CELL_TYPES
from noa_omics.celltypes._likelihood import count_matrix, log_normalise, zmean_scores
from noa_omics.datasets._continuum import continuum_testis, thin_counts


def _naive(adata: AnnData) -> np.ndarray:
    """Naive baseline: mean z-score of the log-normalised marker genes, argmax."""
    library = noa.genesets.load("human")
    types = [t for t in CELL_TYPES if t != "other"]
    index = {g: i for i, g in enumerate(adata.var_names)}
    sets = [np.array([index[g] for g in library[f"marker_{t}"].genes if g in index]) for t in types]
    scores = zmean_scores(log_normalise(sp.csr_matrix(adata.X, dtype=np.float64)), sets)
    return np.array(types, dtype=object)[scores.argmax(axis=1)]


def _accuracy(adata: AnnData, predicted) -> tuple[float, float]:
    truth = adata.obs["truth_cell_type"].astype(str).to_numpy()
    predicted = np.asarray(predicted, dtype=str)
    broad = np.array([CELL_TYPE_TO_CLASS[t] for t in truth]) == np.array([CELL_TYPE_TO_CLASS[t] for t in predicted])
    return float(broad.mean()), float((truth == predicted).mean())


def _annotate(adata: AnnData, **kwargs) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return noa.tl.annotate_testis(adata, **kwargs)


@pytest.fixture(scope="module")
def shallow():
    """2,500 cells at a median 250 UMI with 5-15% ambient RNA, annotated."""
    adata = continuum_testis(2500, depth=250, seed=11)
    _annotate(adata)
    return adata


def test_low_depth_beats_naive_and_floor(shallow):
    broad, fine = _accuracy(shallow, shallow.obs["noa_cell_type"])
    naive_broad, naive_fine = _accuracy(shallow, _naive(shallow))
    assert broad >= 0.93 and fine >= 0.80
    assert broad >= naive_broad + 0.1 and fine >= naive_fine + 0.1


def test_confidence_is_a_probability_close_to_accuracy(shallow):
    confidence = shallow.obs["noa_cell_type_confidence"].to_numpy()
    assert np.isfinite(confidence).all() and confidence.min() >= 0 and confidence.max() <= 1
    correct = shallow.obs["noa_cell_type"].astype(str).to_numpy() == shallow.obs["truth_cell_type"].astype(str).to_numpy()
    # calibrated on average, and more confident calls are more often right
    assert abs(confidence.mean() - correct.mean()) < 0.12
    high = confidence >= np.quantile(confidence, 0.5)
    assert correct[high].mean() > correct[~high].mean() + 0.05
    params = shallow.uns["noa_cell_type"]["params"]
    assert params["method"] == "likelihood" and params["temperature"] > 1


def test_no_loss_at_normal_depth():
    adata = continuum_testis(2000, depth=1500, seed=12)
    labels = _annotate(adata)
    broad, fine = _accuracy(adata, labels)
    naive_broad, naive_fine = _accuracy(adata, _naive(adata))
    assert broad >= 0.98 and fine >= 0.92
    assert fine >= naive_fine and broad >= naive_broad


def test_demo_thinned_beats_naive():
    demo = noa.datasets.demo_testis(seed=5, n_cells=2000)
    for seed in (0, 1):
        thinned = thin_counts(demo, 250, seed=seed)
        assert np.median(thinned.obs_vector("n_counts") if "n_counts" in thinned.obs else
                         np.asarray(thinned.X.sum(axis=1)).ravel()) == pytest.approx(250, rel=0.1)
        broad, fine = _accuracy(thinned, _annotate(thinned))
        naive_broad, naive_fine = _accuracy(thinned, _naive(thinned))
        assert broad >= 0.93 and fine >= 0.80
        assert fine > naive_fine + 0.1


def test_spatial_neighbours_help_on_a_shallow_section():
    section = continuum_testis(2500, depth=150, seed=2, spatial=True)
    without = _accuracy(section, _annotate(section.copy(), spatial_key=None))
    spatial = section.copy()
    with_space = _accuracy(spatial, _annotate(spatial))
    assert spatial.uns["noa_cell_type"]["params"]["spatial_key"] == "spatial"
    assert with_space[0] >= without[0] + 0.01
    assert with_space[1] >= without[1]


def test_pure_noise_is_other_with_a_warning():
    rng = np.random.default_rng(0)
    genes = continuum_testis(200, depth=200, seed=0).var_names
    for x in (rng.poisson(0.3, (800, len(genes))), rng.negative_binomial(2, 0.85, (800, len(genes)))):
        noise = AnnData(X=sp.csr_matrix(x.astype(np.float32)), var=pd.DataFrame(index=genes))
        with pytest.warns(UserWarning, match="no cell-type signal"):
            labels = noa.tl.annotate_testis(noise, species="human")
        assert (labels == "other").all()
        assert (noise.obs["noa_cell_type_confidence"] == 0).all()
        assert noise.uns["noa_cell_type"]["marker_enrichment"]["pooled"] < 1.2


def test_panel_coverage_and_warning():
    full = noa.tl.panel_coverage(continuum_testis(100, seed=0).var_names)
    assert set(full.index) == set(CELL_TYPES) - {"other"}
    assert full["sufficient"].all() and (full["n_core_present"] == full["n_core"]).all()
    panel = continuum_testis(1500, depth=300, seed=3, panel=500, panel_marker_fraction=0.4)
    table = noa.tl.panel_coverage(panel.var_names)
    weak = table.index[~table["sufficient"]]
    assert len(weak) > 0
    with pytest.warns(UserWarning, match="panel lacks markers") as record:
        noa.tl.annotate_testis(panel)
    message = " ".join(str(w.message) for w in record if "panel lacks" in str(w.message))
    assert all(t in message for t in weak)
    # dropping SOX9 from an otherwise complete list is reported as missing for sertoli
    genes = [g for g in continuum_testis(100, seed=0).var_names if g != "SOX9"]
    assert "SOX9" in noa.tl.panel_coverage(genes).loc["sertoli", "core_missing"].split(";")


def test_500_gene_panel_accuracy():
    panel = continuum_testis(2500, depth=250, seed=4, panel=500)
    assert panel.n_vars == 500
    broad, fine = _accuracy(panel, _annotate(panel))
    naive_broad, naive_fine = _accuracy(panel, _naive(panel))
    assert broad >= 0.93 and fine >= 0.80 and fine > naive_fine


def test_log_normalised_input_recovers_counts(shallow):
    counts = sp.csr_matrix(shallow.X)
    logx = log_normalise(counts.astype(np.float64))
    recovered = count_matrix(logx, is_counts=False)
    np.testing.assert_allclose(recovered.toarray(), counts.toarray(), rtol=1e-6)
    view = AnnData(X=logx, obs=shallow.obs[["truth_cell_type", "truth_cell_class"]].copy(), var=shallow.var.copy())
    labels = _annotate(view)
    assert (labels.to_numpy() == shallow.obs["noa_cell_type"].to_numpy()).mean() > 0.99


def test_deterministic_and_not_mutating():
    adata = continuum_testis(1200, depth=200, seed=6, spatial=True)
    before = adata.X.copy()
    first = _annotate(adata, inplace=False)
    second = _annotate(adata, inplace=False)
    pd.testing.assert_series_equal(first, second)
    assert (adata.X != before).nnz == 0 and "noa_cell_type" not in adata.obs


def test_bad_weights():
    adata = continuum_testis(200, depth=200, seed=0)
    with pytest.raises(ValueError, match="spatial_weight"):
        noa.tl.annotate_testis(adata, spatial_weight=-1)
    with pytest.raises(ValueError, match="unknown annotation `method`"):
        noa.tl.annotate_testis(adata, method="magic")


def test_marker_score_method_still_available():
    adata = noa.datasets.demo_testis(seed=2, n_cells=1500)
    labels = _annotate(adata, method="score_genes")
    broad, fine = _accuracy(adata, labels)
    assert adata.uns["noa_cell_type"]["params"]["method"] == "score_genes"
    assert broad >= 0.95 and fine >= 0.85
