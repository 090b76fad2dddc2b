"""Build the same data in two layouts: symbol-named (the demo's) and CELLxGENE's.

CELLxGENE layout: Ensembl-like ids (stable, synthetic: ``ENSG`` + 11 digits derived from the symbol,
with a version suffix) as ``var_names``, the symbols in a categorical ``var["feature_name"]``, the
raw counts in ``raw.X`` (``raw.var`` without ``feature_name``, as in many exports), log-normalised
``X``, donors in ``obs["donor_id"]`` and the CELLxGENE obs columns with Cell Ontology labels.
"""

from __future__ import annotations

import zlib

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

#: CELLxGENE-style labels (Cell Ontology names and ids) per noa-omics cell type.
CL = {
    "SSC": ("spermatogonium", "CL:0000020"), "spermatogonia": ("spermatogonium", "CL:0000020"),
    "spermatocyte": ("spermatocyte", "CL:0000017"), "round_spermatid": ("spermatid", "CL:0000018"),
    "elongating_spermatid": ("spermatid", "CL:0000018"), "sertoli": ("Sertoli cell", "CL:0000216"),
    "leydig": ("Leydig cell", "CL:0000178"), "peritubular_myoid": ("peritubular myoid cell", "CL:0002481"),
    "endothelial": ("endothelial cell", "CL:0000115"), "macrophage": ("macrophage", "CL:0000235"),
    "t_cell": ("T cell", "CL:0000084"), "other": ("male germ cell", "CL:0000015"),
}


def fake_ensembl(symbols, species: str = "human") -> list[str]:
    """A stable, unique Ensembl-like gene id per symbol (with a version suffix)."""
    prefix = "ENSG" if species == "human" else "ENSMUSG"
    out, seen = [], set()
    for s in symbols:
        n = zlib.crc32(str(s).encode()) % 10**11
        while n in seen:
            n = (n + 1) % 10**11
        seen.add(n)
        out.append(f"{prefix}{n:011d}.{n % 7 + 1}")
    return out


def symbol_layout(adata: ad.AnnData) -> ad.AnnData:
    """The demo layout made explicit: counts in ``layers['counts']``, log-normalised ``X``."""
    out = adata.copy()
    counts = sp.csr_matrix(out.layers["counts"], dtype=np.float32)
    out.layers["counts"] = counts
    norm = ad.AnnData(counts.copy())
    sc.pp.normalize_total(norm, target_sum=1e4)
    sc.pp.log1p(norm)
    out.X = norm.X
    return out


def cellxgene_layout(sym: ad.AnnData, species: str = "human") -> ad.AnnData:
    """``sym`` (from :func:`symbol_layout`) in the CELLxGENE layout (same numbers, other names)."""
    ids = fake_ensembl(sym.var_names, species)
    var = pd.DataFrame(
        {"feature_name": pd.Categorical(sym.var_names.astype(str)), "feature_biotype": "gene",
         "feature_reference": "NCBITaxon:9606" if species == "human" else "NCBITaxon:10090"},
        index=pd.Index(ids),
    )
    obs = pd.DataFrame(index=sym.obs_names.copy())
    donor = sym.obs["donor"]
    order = list(donor.cat.categories) if isinstance(donor.dtype, pd.CategoricalDtype) else sorted(donor.unique())
    obs["donor_id"] = pd.Categorical(donor.astype(str), categories=[str(d) for d in order])
    obs["disease"] = pd.Categorical(np.where(sym.obs["condition"].astype(str) == "control", "normal",
                                             "non-obstructive azoospermia"))
    truth = sym.obs["truth_cell_type"].astype(str)
    obs["cell_type"] = pd.Categorical([CL[t][0] for t in truth])
    obs["cell_type_ontology_term_id"] = pd.Categorical([CL[t][1] for t in truth])
    obs["development_stage"] = "adult stage"
    obs["sex"] = "male"
    obs["assay"] = "10x 3' v3"
    for col in ("sample", "condition", "truth_cell_type"):  # kept for the comparisons
        obs[col] = sym.obs[col].to_numpy() if col == "sample" else sym.obs[col].values
    out = ad.AnnData(X=sym.X.copy(), obs=obs, var=var)
    out.raw = ad.AnnData(X=sym.layers["counts"].copy(), obs=pd.DataFrame(index=obs.index),
                         var=pd.DataFrame(index=var.index))
    return out
