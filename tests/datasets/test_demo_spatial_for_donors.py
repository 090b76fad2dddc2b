"""Donor-matched spatial demo: sections share the single-cell donor ids and follow their histology."""

import pandas as pd
import pytest

import noa_omics as noa


def _donors():
    return pd.DataFrame(
        {
            "donor": ["A", "B", "C"],
            "condition": ["control", "sertoli_cell_only", "maturation_arrest"],
            "histology": ["normal", "sertoli_cell_only", "maturation_arrest"],
        }
    )


def test_sections_named_after_donors_with_their_histology():
    adata = noa.datasets.demo_spatial_for_donors(_donors(), seed=1, n_tubules=12, expression=False)
    assert list(adata.obs["sample"].cat.categories) == ["A", "B", "C"]
    assert (adata.obs["sample"].astype(str) == adata.obs["donor"].astype(str)).all()
    cond = adata.obs.groupby("sample", observed=True)["condition"].first().astype(str)
    assert cond.to_dict() == {"A": "control", "B": "sertoli_cell_only", "C": "maturation_arrest"}
    tubules = adata.uns["demo_spatial"]["tubules"]
    dominant = tubules.groupby("sample")["histology"].agg(lambda h: h.value_counts().idxmax())
    assert dominant.to_dict() == {"A": "normal", "B": "sertoli_cell_only", "C": "maturation_arrest"}


def test_same_seed_same_section():
    a = noa.datasets.demo_spatial_for_donors(_donors(), seed=3, n_tubules=8, expression=False)
    b = noa.datasets.demo_spatial_for_donors(_donors(), seed=3, n_tubules=8, expression=False)
    assert (a.obsm["spatial"] == b.obsm["spatial"]).all()


@pytest.mark.parametrize(
    ("table", "kwargs", "exc", "match"),
    [
        (pd.DataFrame({"donor": ["A"]}), {}, KeyError, "condition"),
        (pd.DataFrame({"donor": ["A"], "condition": ["x"], "histology": ["weird"]}), {}, ValueError, "unknown histology"),
        (_donors(), {"sections": 2}, ValueError, "sections"),
    ],
)
def test_bad_donor_tables(table, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        noa.datasets.demo_spatial_for_donors(table, **kwargs)
