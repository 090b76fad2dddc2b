"""Fixtures of the multi-hit tests: one simulated cohort with planted truth (built once), and a
small hand-made AnnData with precomputed per-cell scores (no scoring, known answers)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from anndata import AnnData

import noa_omics as noa
from noa_omics.multihit import load_axes

#: Germ-cell apoptosis switched on in 30% of spermatogonia, spermatocytes and round spermatids.
APOPTOSIS = {
    "sets": ["apoptosis_intrinsic", "apoptosis_execution"],
    "cell_types": ["spermatogonia", "spermatocyte", "round_spermatid"],
    "fraction": 0.3,
    "fold": 3.0,
}
PHYSIOLOGICAL = {"sets": ["apoptosis_intrinsic"], "cell_types": ["spermatogonia", "spermatocyte"],
                 "fraction": 0.03, "fold": 2.5}
CHECKPOINT = {"sets": ["apoptosis_checkpoint", "apoptosis_intrinsic"], "cell_types": ["spermatocyte"],
              "fraction": 0.4, "fold": 3.0}

#: donor -> (condition, expected histology); the specs are built in `cohort_specs`.
COHORT = {
    **{f"C{i}": ("control", "normal") for i in range(1, 5)},
    "S1": ("sertoli_cell_only", "sertoli_cell_only"),
    "S2": ("sertoli_cell_only", "sertoli_cell_only"),
    "M1": ("maturation_arrest", "maturation_arrest"),
    "M2": ("maturation_arrest", "maturation_arrest"),
    "G1": ("arrest_genetic", "maturation_arrest"),
    "A1": ("apoptosis_only", "normal"),
    "A2": ("apoptosis_only", "normal"),
    "R1": ("apoptosis_endocrine", "normal"),
    "R2": ("apoptosis_oxidative", "normal"),
    "H_endocrine": ("hit", "normal"),
    "H_oxidative": ("hit", "normal"),
    "H_xist": ("hit", "normal"),
    "H_azf": ("hit", "normal"),
    "H_inflammation": ("hit", "normal"),
}


def cohort_specs(n_cells: int = 300) -> list[dict]:
    specs = []
    for donor, (condition, histology) in COHORT.items():
        spec: dict = {"donor": donor, "condition": condition, "histology": histology, "n_cells": n_cells}
        if condition == "control":
            spec["apoptosis"] = PHYSIOLOGICAL
        elif condition == "sertoli_cell_only":
            spec["hits"] = {"niche": 1.5}
        elif condition == "maturation_arrest":
            spec.update(arrest_stage="spermatocyte", apoptosis=CHECKPOINT)
        elif condition == "arrest_genetic":  # AZF deletion with meiotic arrest and checkpoint apoptosis
            spec.update(arrest_stage="spermatocyte", apoptosis=CHECKPOINT, germ_fraction=0.4,
                        hits={"genetic_azf_loss": True})
        elif condition == "apoptosis_only":
            spec["apoptosis"] = APOPTOSIS
        elif condition == "apoptosis_endocrine":
            spec.update(apoptosis=APOPTOSIS, hits={"endocrine": 1.5})
        elif condition == "apoptosis_oxidative":
            spec.update(apoptosis=APOPTOSIS, hits={"oxidative": 1.5})
        else:
            hit = donor.removeprefix("H_")
            spec["hits"] = {
                "endocrine": {"endocrine": 1.5},
                "oxidative": {"oxidative": 1.5},
                "xist": {"genetic_xist": True},
                "azf": {"genetic_azf_loss": True},
                "inflammation": {"inflammation": 1.5},
            }[hit]
            spec["germ_fraction"] = 0.6  # the genetic hits would otherwise deplete germ cells
            spec["apoptosis"] = PHYSIOLOGICAL
        specs.append(spec)
    return specs


@pytest.fixture(scope="session")
def cohort_adata() -> AnnData:
    """18 simulated donors x 300 cells, log-normalised, truth cell types as labels."""
    adata = noa.datasets.demo_testis(seed=3, donors=cohort_specs())
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.obs["noa_cell_type"] = adata.obs["truth_cell_type"].astype(str)
    return adata


@pytest.fixture(scope="session")
def cohort(cohort_adata) -> pd.DataFrame:
    """multihit table of the cohort against the control donors (adata not modified)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return noa.tl.multihit(
            cohort_adata, sample_key="sample", reference="control", condition_key="condition", inplace=False
        )


# --------------------------------------------------------------------------------------------
# hand-made data
# --------------------------------------------------------------------------------------------

#: cells per donor and fine type in the hand-made AnnData
HANDMADE_TYPES = {
    "spermatogonia": 20,
    "spermatocyte": 20,
    "round_spermatid": 20,
    "elongating_spermatid": 20,
    "sertoli": 20,
    "leydig": 20,
    "peritubular_myoid": 10,
    "endothelial": 10,
    "macrophage": 10,
}


def make_handmade(shifts: dict | None = None, *, sco: tuple[str, ...] = ("P6",)) -> AnnData:
    """Six donors P1-P6 (P1-P4 controls); per-cell scores of every set needed by axes.yaml are
    exactly ``donor offset + shift`` (no noise), so donor values and z-scores are known in
    closed form. ``shifts`` maps (donor, set) -> added score; donors in ``sco`` have no germ cell.
    """
    shifts = shifts or {}
    needed = load_axes().gene_sets()
    offsets = {"P1": -0.02, "P2": -0.01, "P3": 0.01, "P4": 0.02, "P5": 0.0, "P6": 0.0}
    rows, cond = [], []
    for donor, off in offsets.items():
        for t, n in HANDMADE_TYPES.items():
            if donor in sco and t in noa._vocabulary.GERM_STAGES:
                continue
            for _ in range(n):
                rows.append((donor, t, off))
    obs = pd.DataFrame(rows, columns=["sample", "noa_cell_type", "offset"])
    obs["condition"] = np.where(obs["sample"].isin(["P1", "P2", "P3", "P4"]), "control", "case")
    obs.index = [f"c{i}" for i in range(len(obs))]
    scores = pd.DataFrame({s: obs["offset"].to_numpy(dtype=float) for s in needed}, index=obs.index)
    for (donor, name), value in shifts.items():
        scores.loc[obs["sample"] == donor, name] += value
    genes = ["XIST", "GAPDH", "ACTB", "SOX9", "DDX4"]
    X = np.ones((len(obs), len(genes)), dtype=np.float32)
    X[:, 0] = 0.0  # XIST silent
    adata = AnnData(X=X, obs=obs.drop(columns="offset"))
    adata.var_names = genes
    adata.obsm["scores"] = scores
    return adata


@pytest.fixture
def handmade() -> AnnData:
    return make_handmade()
