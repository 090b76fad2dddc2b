"""Shared fixtures of the gene-set tests."""

from __future__ import annotations

import pytest

import noa_omics as noa


@pytest.fixture(scope="session")
def human():
    return noa.genesets.load("human")


@pytest.fixture(scope="session")
def mouse():
    return noa.genesets.load("mouse")
