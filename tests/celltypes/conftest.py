"""Shared fixtures of the cell-type tests: small simulated cohorts (session scope, built once)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import noa_omics as noa

#: Intrinsic apoptosis switched on in 40% of the spermatocytes and round spermatids.
SWITCH = {
    "sets": ["apoptosis_intrinsic"],
    "cell_types": ["spermatocyte", "round_spermatid"],
    "fraction": 0.4,
    "fold": 3.0,
}


@pytest.fixture(scope="session")
def demo_annotated():
    """demo_testis (3,000 cells, human, default 13-donor cohort), annotated."""
    adata = noa.datasets.demo_testis(seed=0, n_cells=3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noa.tl.annotate_testis(adata)
    return adata


@pytest.fixture(scope="session")
def apoptosis_cohort():
    """4 controls, 3 donors with the apoptosis switch, 3 donors with an endocrine hit only.

    Annotated with annotate_testis and scored with score_genes (obsm["noa_score_genes"]).
    """
    donors = [
        *({"donor": f"C{i}", "condition": "control", "n_cells": 400} for i in range(1, 5)),
        *({"donor": f"A{i}", "condition": "apoptotic", "n_cells": 400, "apoptosis": SWITCH} for i in range(1, 4)),
        *({"donor": f"N{i}", "condition": "endocrine", "n_cells": 400, "hits": {"endocrine": 1.0}} for i in range(1, 4)),
    ]
    adata = noa.datasets.demo_testis(seed=1, donors=donors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noa.tl.annotate_testis(adata)
        noa.tl.score(adata, method="score_genes")
    return adata


def donor_table(
    n_per_side: tuple[int, int],
    *,
    cells_per_donor: int = 200,
    donor_sd: float = 1.0,
    cell_sd: float = 1.0,
    shift: float = 0.0,
    seed: int = 0,
    conditions: tuple[str, str] = ("case", "control"),
) -> pd.DataFrame:
    """Per-cell table: donors with a random donor effect; ``shift`` added to the case cells."""
    rng = np.random.default_rng(seed)
    frames = []
    for side, (condition, n_donors) in enumerate(zip(conditions, n_per_side)):
        for d in range(n_donors):
            donor_effect = rng.normal(0.0, donor_sd)
            values = donor_effect + rng.normal(0.0, cell_sd, cells_per_donor) + (shift if side == 0 else 0.0)
            frames.append(
                pd.DataFrame({"donor": f"{condition}_{d}", "condition": condition, "score": values})
            )
    return pd.concat(frames, ignore_index=True)
