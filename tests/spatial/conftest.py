"""Fixtures of the spatial tests: small simulated sections with known tubules (built once)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

import noa_omics as noa

#: Simulated sections covering the hard cases: touching and edge-cut tubules (in every
#: section), a section with many touching tubules, a Sertoli-cell-only-rich and a
#: hypospermatogenesis-rich section, and a mixed-histology section.
SECTIONS = {
    "mixed": dict(seed=0, n_tubules=50),
    "touching": dict(seed=1, n_tubules=50, touching=0.6),
    "sco_rich": dict(seed=2, n_tubules=50, histology_mix={"sertoli_cell_only": 0.8, "normal": 0.2}),
    "hypo_rich": dict(seed=3, n_tubules=50, histology_mix={"hypospermatogenesis": 0.6, "normal": 0.4}),
}


def segmentation_scores(adata, labels: pd.Series) -> dict[str, float]:
    """ARI over cells inside true tubules (NA predicted = its own cluster) and interstitial leak."""
    truth = adata.obs["truth_tubule"]
    inside = truth.notna().to_numpy()
    pred = labels.astype(object).where(labels.notna(), "NA").astype(str).to_numpy()
    return {
        "ari": adjusted_rand_score(truth[inside].astype(str), pred[inside]),
        "leak": float(labels[~inside].notna().mean()),
    }


def matched_truth(adata, key: str = "noa_tubule") -> pd.Series:
    """True tubule of each predicted tubule: the most frequent ``truth_tubule`` of its cells."""
    obs = adata.obs[adata.obs[key].notna()]
    return obs.groupby(key, observed=True)["truth_tubule"].agg(
        lambda v: v.astype(object).value_counts().index[0] if v.notna().any() else None
    )


@pytest.fixture(scope="session")
def sections():
    return {name: noa.datasets.demo_spatial(expression=False, **kw) for name, kw in SECTIONS.items()}


@pytest.fixture(scope="session")
def mixed_segmented(sections):
    adata = sections["mixed"].copy()
    noa.spatial.assign_tubules(adata)
    return adata


@pytest.fixture(scope="session")
def cohort():
    """Four sections from four donors (two control, two NOA), segmented per section."""
    adata = noa.datasets.demo_spatial(seed=4, n_tubules=25, sections=4, expression=False)
    noa.spatial.assign_tubules(adata, sample_key="sample")
    return adata


@pytest.fixture(scope="session")
def scored():
    """A mixed section with expression and scanpy gene-set scores in ``obsm["scores"]``."""
    import scanpy as sc

    adata = noa.datasets.demo_spatial(seed=5, n_tubules=40)
    norm = adata.copy()
    sc.pp.normalize_total(norm)
    sc.pp.log1p(norm)
    library = noa.genesets.load("human")
    scores = pd.DataFrame(index=adata.obs_names)
    for name in ("niche_btb", "sertoli_immaturity", "apoptosis_intrinsic"):
        genes = [g for g in library[name].genes if g in norm.var_names]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.tl.score_genes(norm, genes, score_name=name, ctrl_size=50, random_state=0)
        scores[name] = norm.obs[name].to_numpy()
    adata.obsm["scores"] = scores
    noa.spatial.assign_tubules(adata)
    return adata


def quiet_metrics(adata, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return noa.spatial.tubule_metrics(adata, **kwargs)

