"""QuPath / GeoJSON outlines: read (hand-written file with holes and MultiPolygons), write, assign."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import noa_omics as noa


def _square(x0, y0, size):
    return [[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size], [x0, y0]]


@pytest.fixture()
def qupath_file(tmp_path):
    """A QuPath-style export written by hand: a polygon with a hole, a MultiPolygon, a point,
    classification as an object (QuPath >= 0.3) and as a string (older exports)."""
    features = [
        {"type": "Feature", "id": "uuid-1",
         "geometry": {"type": "Polygon", "coordinates": [_square(0, 0, 100), _square(40, 40, 20)]},
         "properties": {"objectType": "annotation", "name": "tub_A",
                        "classification": {"name": "Tubule", "color": [255, 0, 0]}}},
        {"type": "Feature", "id": "uuid-2",
         "geometry": {"type": "MultiPolygon",
                      "coordinates": [[_square(200, 0, 50)], [_square(300, 0, 50)]]},
         "properties": {"objectType": "annotation", "classification": "Tubule"}},
        {"type": "Feature", "id": "uuid-3",
         "geometry": {"type": "Polygon", "coordinates": [_square(0, 200, 100)]},
         "properties": {"objectType": "annotation", "name": "vessel",
                        "classification": {"name": "Vessel"}}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]},
         "properties": {"classification": {"name": "Tubule"}}},
    ]
    path = tmp_path / "qupath.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _cells():
    xy = np.array([[10, 10], [50, 50], [90, 90],  # tub_A, its hole, tub_A
                   [225, 25], [325, 25],            # both parts of the MultiPolygon
                   [50, 250], [150, 150]], dtype=float)  # vessel, nothing
    adata = AnnData(obs=pd.DataFrame(index=[f"c{i}" for i in range(len(xy))]))
    adata.obsm["spatial"] = xy
    return adata


def test_read_qupath_file(qupath_file):
    with pytest.warns(UserWarning, match="not polygons"):
        outlines = noa.spatial.read_outlines(qupath_file, classes="Tubule")
    assert list(outlines["tubule"]) == ["tub_A", "uuid-2"]
    assert list(outlines["classification"]) == ["Tubule", "Tubule"]
    assert outlines.geometry.iloc[0].area == pytest.approx(100 * 100 - 20 * 20)  # hole kept
    assert outlines.geometry.iloc[1].geom_type == "MultiPolygon"


def test_assign_from_qupath_outlines(qupath_file):
    with pytest.warns(UserWarning):
        outlines = noa.spatial.read_outlines(qupath_file)
    adata = _cells()
    labels = noa.spatial.assign_tubules_from_outlines(adata, outlines)
    assert list(labels.astype(object).where(labels.notna(), None)) == [
        "tub_A", None, "tub_A", "uuid-2", "uuid-2", "vessel", None]
    assert adata.obs["noa_tubule"].equals(labels)


def test_pixel_size_and_transform(qupath_file):
    with pytest.warns(UserWarning):
        scaled = noa.spatial.read_outlines(qupath_file, classes=["Tubule"], pixel_size=0.5,
                                           transform=[[1, 0, 1000], [0, 1, 0]])
    minx, miny, maxx, maxy = scaled.geometry.iloc[0].bounds
    assert (minx, miny, maxx, maxy) == pytest.approx((1000, 0, 1050, 50))


def test_bad_outline_input(tmp_path, qupath_file):
    with pytest.raises(FileNotFoundError):
        noa.spatial.read_outlines(tmp_path / "missing.geojson")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        noa.spatial.read_outlines(bad)
    with pytest.raises(ValueError, match="classes in the file"):
        noa.spatial.read_outlines(qupath_file, classes="Nerve")
    with pytest.raises(ValueError, match="transform"):
        noa.spatial.read_outlines(qupath_file, transform=[[1, 0], [0, 1]])
    with pytest.warns(UserWarning):
        outlines = noa.spatial.read_outlines(qupath_file)
    far = _cells()
    far.obsm["spatial"] = far.obsm["spatial"] + 1e6
    with pytest.raises(ValueError, match="no cell lies inside any outline"):
        noa.spatial.assign_tubules_from_outlines(far, outlines)


def test_geojson_round_trip_reproduces_tubule_ids(tmp_path):
    adata = noa.datasets.realistic_spatial(seed=5, n_tubules=12)
    labels = noa.spatial.assign_tubules(adata)
    shapes = noa.spatial.tubule_shapes(adata)
    path = noa.spatial.write_outlines(shapes, tmp_path / "tubules.geojson")
    data = json.loads(path.read_text())
    assert data["type"] == "FeatureCollection"
    assert data["features"][0]["properties"]["classification"]["name"] == "Tubule"
    assert "area" in data["features"][0]["properties"]["measurements"]
    back = noa.spatial.read_outlines(path)
    assert set(back["tubule"]) == set(shapes["tubule"])
    again = noa.spatial.assign_tubules_from_outlines(adata, back, key_added="from_outlines")
    epi = adata.obs["noa_cell_type"].isin(noa.spatial._utils.EPITHELIAL_TYPES).to_numpy() & labels.notna().to_numpy()
    same = (again[epi].astype(str) == labels[epi].astype(str)).mean()
    assert same >= 0.99  # outlines enclose their epithelium
    agreement = noa.spatial.tubule_agreement(again, labels, cells=epi)
    assert agreement["recovered_fraction"] == 1.0


def test_write_outlines_bad_input(tmp_path):
    import geopandas as gpd
    import shapely

    with pytest.raises(TypeError, match="GeoDataFrame"):
        noa.spatial.write_outlines(pd.DataFrame({"tubule": ["a"]}), tmp_path / "x.geojson")
    points = gpd.GeoDataFrame({"tubule": ["a"]}, geometry=[shapely.Point(0, 0)])
    with pytest.raises(ValueError, match="polygons"):
        noa.spatial.write_outlines(points, tmp_path / "x.geojson")
    assert not (tmp_path / "x.geojson").exists()
