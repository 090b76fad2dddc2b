"""Pairs of the same small cohort in the symbol-named and the CELLxGENE layout (built once)."""

from __future__ import annotations

import pytest

import noa_omics as noa

from .layouts import cellxgene_layout, symbol_layout


@pytest.fixture(scope="session")
def human_pair():
    sym = symbol_layout(noa.datasets.demo_testis(seed=0, n_cells=500))
    return sym, cellxgene_layout(sym, "human")


@pytest.fixture(scope="session")
def mouse_pair():
    sym = symbol_layout(noa.datasets.demo_testis(seed=1, n_cells=400, species="mouse"))
    return sym, cellxgene_layout(sym, "mouse")
