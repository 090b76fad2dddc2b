"""SpatialData round trip: cells from a table annotating cell circles, tubules back as shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import noa_omics as noa

sd = pytest.importorskip("spatialdata")


def _sdata(adata, scale=2.0):
    """A SpatialData object like spatialdata-io's: circles in pixels, a scale to 'global'."""
    import geopandas as gpd
    import shapely
    from spatialdata.models import ShapesModel, TableModel
    from spatialdata.transformations import Scale

    pixels = adata.obsm["spatial"] / scale
    circles = gpd.GeoDataFrame({"radius": np.full(adata.n_obs, 3.0)},
                               geometry=shapely.points(pixels), index=np.arange(adata.n_obs))
    circles = ShapesModel.parse(circles, transformations={"global": Scale([scale, scale], axes=("x", "y"))})
    table = adata.copy()
    del table.obsm["spatial"]
    table.obs["region"] = pd.Categorical(["cell_circles"] * table.n_obs)
    table.obs["cell_id"] = np.arange(table.n_obs)
    table = TableModel.parse(table, region="cell_circles", region_key="region", instance_key="cell_id")
    return sd.SpatialData(shapes={"cell_circles": circles}, tables={"table": table})


def test_spatialdata_round_trip():
    adata = noa.datasets.realistic_spatial(seed=2, n_tubules=10)
    sdata = _sdata(adata)
    cells = noa.spatial.from_spatialdata(sdata)
    np.testing.assert_allclose(cells.obsm["spatial"], adata.obsm["spatial"], atol=1e-9)
    labels = noa.spatial.assign_tubules(cells)
    shapes = noa.spatial.tubule_shapes(cells)
    noa.spatial.tubules_to_spatialdata(sdata, shapes)
    assert "tubules" in sdata.shapes
    element = sdata.shapes["tubules"]
    assert set(element.index) == set(labels.dropna().astype(str))
    # the shapes element assigns the cells back to the same tubules
    back = noa.spatial.assign_tubules_from_outlines(cells, element, key_added="again")
    epi = cells.obs["noa_cell_type"].isin(noa.spatial._utils.EPITHELIAL_TYPES).to_numpy() & labels.notna().to_numpy()
    assert (back[epi].astype(str) == labels[epi].astype(str)).mean() >= 0.99
    with pytest.raises(ValueError, match="overwrite"):
        noa.spatial.tubules_to_spatialdata(sdata, shapes)


def test_spatialdata_bad_input():
    adata = noa.datasets.realistic_spatial(seed=2, n_tubules=4)
    sdata = _sdata(adata)
    with pytest.raises(KeyError, match="table 'cells' not found"):
        noa.spatial.from_spatialdata(sdata, table_key="cells")
    with pytest.raises(ValueError, match="coordinate system"):
        noa.spatial.from_spatialdata(sdata, coordinate_system="microns")
