"""tubule_shapes: outlines against the simulated truth polygons; tubule_metrics size columns."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shapely

import noa_omics as noa


@pytest.fixture(scope="module")
def section():
    return noa.datasets.realistic_spatial(seed=7, n_tubules=20)


def test_outlines_match_truth(section):
    shapes = noa.spatial.tubule_shapes(section, tubule_key="truth_tubule").set_index("tubule")
    truth = section.uns["realistic_spatial"]["tubules"].set_index("tubule")
    whole = truth[~truth["cut"]].index.intersection(shapes.index)
    assert len(whole) >= 5
    ratio = shapes.loc[whole, "area"] / truth.loc[whole, "area"]
    assert ratio.between(0.85, 1.25).all()  # measured 1.04-1.15
    iou = [shapely.from_wkt(truth.loc[t, "outline_wkt"]).intersection(shapes.loc[t, "geometry"]).area
           / shapely.from_wkt(truth.loc[t, "outline_wkt"]).union(shapes.loc[t, "geometry"]).area for t in whole]
    assert min(iou) >= 0.8
    assert np.allclose(shapes["equivalent_diameter"], 2 * np.sqrt(shapes["area"] / np.pi))
    elongated = truth.loc[whole, "shape"] == "elongated"
    if elongated.any() and (truth.loc[whole, "shape"] == "round").any():
        assert shapes.loc[whole][elongated.to_numpy()]["elongation"].median() > \
            shapes.loc[whole][(truth.loc[whole, "shape"] == "round").to_numpy()]["elongation"].median()
    assert shapes["wall_thickness"].notna().mean() > 0.9


def test_scale_free_and_sample_column(section):
    scaled = section.copy()
    scaled.obsm["spatial"] = scaled.obsm["spatial"] * 3.0
    a = noa.spatial.tubule_shapes(section, tubule_key="truth_tubule")
    b = noa.spatial.tubule_shapes(scaled, tubule_key="truth_tubule", sample_key="sample")
    np.testing.assert_allclose(b["area"].to_numpy(), 9 * a["area"].to_numpy(), rtol=1e-6)
    assert (b["sample"] == "realistic_section").all()


def test_metrics_gain_area_and_diameter(section):
    adata = section.copy()
    noa.spatial.assign_tubules(adata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few reference tubules in a small section
        metrics = noa.spatial.tubule_metrics(adata)
    shapes = noa.spatial.tubule_shapes(adata).set_index("tubule")
    assert np.allclose(metrics["area"], shapes.loc[metrics.index, "area"])
    assert np.allclose(metrics["diameter"], shapes.loc[metrics.index, "equivalent_diameter"])


def test_bad_input(section):
    with pytest.raises(KeyError, match="assign_tubules"):
        noa.spatial.tubule_shapes(section, tubule_key="nope")
    with pytest.raises(ValueError, match="max_edge"):
        noa.spatial.tubule_shapes(section, tubule_key="truth_tubule", max_edge=0)



def test_metrics_without_sizes(section):
    adata = section.copy()
    noa.spatial.assign_tubules(adata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        metrics = noa.spatial.tubule_metrics(adata, sizes=False)
    assert "area" not in metrics and "diameter" not in metrics
    assert metrics.attrs["params"]["sizes"] is False
