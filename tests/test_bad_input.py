"""Every bad input gets a clear answer (GitHub issue 10).

One table of bad inputs over every public function: each case names the exception type and a
regular expression the message must match (the message names the problem; most also name the
fix). Then the cases that must *not* raise (warn and give NaN/``other`` instead), and the command
line: non-zero exit, one ``noa-omics: error:`` line on stderr, no traceback, no output file.

The list in ``docs/robustness.md`` is generated from :data:`CASES`, :data:`WARNING_CASES` and
:data:`CLI_CASES` (``python tests/test_bad_input.py --write`` updates it; a test checks it).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import noa_omics as noa

# --------------------------------------------------------------------------------------------
# small data, built once per test process (cases copy before changing anything)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


#: 6 donors x 60 cells: 3 controls, 2 Sertoli-cell-only donors (no germ cells), 1 case donor.
DONORS = [
    *({"donor": f"C{i}", "condition": "control", "n_cells": 60} for i in (1, 2, 3)),
    *({"donor": f"S{i}", "condition": "sertoli_cell_only", "histology": "sertoli_cell_only", "n_cells": 60}
      for i in (1, 2)),
    {"donor": "A1", "condition": "case", "n_cells": 60},
]
SETS = {"germ": ["DDX4", "SYCP3", "PRM1", "TNP1", "PIWIL1"], "sertoli": ["SOX9", "AMH", "CLDN11", "INHA"]}


@functools.lru_cache(maxsize=None)
def _counts() -> ad.AnnData:
    """Raw counts in X and layers['counts'], truth cell types as noa_cell_type."""
    adata = noa.datasets.demo_testis(seed=0, donors=DONORS)
    adata.obs["noa_cell_type"] = adata.obs["truth_cell_type"].astype(str)
    return adata


@functools.lru_cache(maxsize=None)
def _lognorm() -> ad.AnnData:
    """The same cells log-normalised in X (counts kept in layers) with score_genes scores."""
    import scanpy as sc

    adata = _counts().copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    _quiet(noa.tl.score, adata, method="score_genes")
    return adata


def counts() -> ad.AnnData:
    return _counts().copy()


def lognorm() -> ad.AnnData:
    return _lognorm().copy()


@functools.lru_cache(maxsize=None)
def _spatial() -> ad.AnnData:
    adata = noa.datasets.demo_spatial(seed=0, n_tubules=8, expression=False)
    noa.spatial.assign_tubules(adata)
    return adata


def spatial(**obsm) -> ad.AnnData:
    adata = _spatial().copy()
    for key, value in obsm.items():
        if value is None:
            del adata.obsm[key]
        else:
            adata.obsm[key] = value
    return adata


def tiny(x, names=None) -> ad.AnnData:
    x = x if sp.issparse(x) else np.asarray(x)
    return ad.AnnData(
        x,
        obs=pd.DataFrame(index=[f"c{i}" for i in range(x.shape[0])]),
        var=pd.DataFrame(index=names or [f"G{j}" for j in range(x.shape[1])]),
    )


def donor_features(n_pos: int, n_neg: int, seed: int = 0) -> tuple[pd.DataFrame, list[int]]:
    rng = np.random.default_rng(seed)
    n = n_pos + n_neg
    features = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)}, index=[f"D{i:02d}" for i in range(n)])
    return features, [1] * n_pos + [0] * n_neg


# --------------------------------------------------------------------------------------------
# per-case environment: a temporary folder and, on demand, a file server on 127.0.0.1


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D102 - keep test output clean
        pass


@dataclass
class Env:
    tmp: Path
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    cleanups: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def serve(self, name: str, data: bytes) -> str:
        """Serve ``data`` as ``/name`` on 127.0.0.1 (ephemeral port); returns the URL."""
        root = self.tmp / "served"
        root.mkdir(exist_ok=True)
        (root / name).write_bytes(data)
        if self._server is None:
            handler = functools.partial(_QuietHandler, directory=str(root))
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}"

    def close(self) -> None:
        for undo in self.cleanups:
            undo()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.close()


# --------------------------------------------------------------------------------------------
# builders of bad inputs


def _ensembl() -> ad.AnnData:
    adata = lognorm()
    adata.var["approved_symbol"] = adata.var_names.to_numpy()  # not a well-known symbol column
    adata.var_names = [f"ENSG{i:011d}" for i in range(adata.n_vars)]
    return adata


def _mouse_symbols() -> ad.AnnData:
    adata = lognorm()
    adata.var_names = [g[:1] + g[1:].lower() for g in adata.var_names]
    adata.var_names_make_unique()
    return adata


def _with_value(value, *, dense: bool = True) -> ad.AnnData:
    adata = lognorm()
    x = adata.X.toarray() if dense else adata.X.copy()
    if dense:
        x[0, 0] = value
    else:
        x.data[0] = value
    adata.X = x
    return adata


def _duplicated_names() -> ad.AnnData:
    adata = lognorm()
    names = list(adata.var_names)
    names[1] = names[0]
    adata.var_names = names
    return adata


def _one_expressed_gene() -> ad.AnnData:
    return tiny(sp.csr_matrix(np.array([[1.0, 0, 0], [2.0, 0, 0], [3.0, 0, 0]])))


def _object_matrix() -> ad.AnnData:
    adata = tiny(np.zeros((3, 3)))
    adata.X = np.array([[1, 0, 2], [0, 1, 0], [2, 2, 0]], dtype=object)
    return adata


def _renamed_genes() -> ad.AnnData:
    adata = counts()
    adata.var_names = [f"GENE{i}" for i in range(adata.n_vars)]
    return adata


def _no_germ_cells() -> ad.AnnData:
    adata = spatial()
    types = adata.obs["noa_cell_type"].astype(str)
    adata.obs["noa_cell_type"] = np.where(types.isin(["leydig", "endothelial"]), types, "leydig")
    return adata


def _foreign_labels() -> ad.AnnData:
    adata = spatial()
    adata.obs["noa_cell_type"] = "Sertoli cells (published)"
    return adata


def _without_endocrine_genes() -> ad.AnnData:
    adata = lognorm()
    collection = noa.genesets.load("human")
    genes = {g for gs in collection.filter(axis="endocrine").values() for g in gs.genes}
    return adata[:, ~adata.var_names.isin(genes)].copy()


def _two_conditions_per_sample() -> ad.AnnData:
    adata = lognorm()
    cond = adata.obs["condition"].astype(str).to_numpy()
    cond[0] = "case" if cond[0] != "case" else "control"
    adata.obs["condition"] = cond
    return adata


def _text_scores() -> ad.AnnData:
    adata = lognorm()
    adata.obs["grade"] = "high"
    return adata


def _infinite_score() -> ad.AnnData:
    adata = lognorm()
    table = adata.obsm["noa_score_genes"].copy()
    table.iloc[0, 0] = np.inf
    adata.obsm["noa_score_genes"] = table
    return adata


def _spatial_scores(value: float) -> ad.AnnData:
    adata = spatial()
    scores = np.zeros(adata.n_obs)
    scores[0] = value
    adata.obsm["noa_score_genes"] = pd.DataFrame({"apoptosis_intrinsic": scores}, index=adata.obs_names)
    return adata


def _write(env: Env, name: str, text: str) -> Path:
    path = env.tmp / name
    path.write_text(text)
    return path


def _h5ad_bytes(env: Env) -> bytes:
    path = env.tmp / "small.h5ad"
    tiny(sp.random(20, 12, density=0.3, format="csr", random_state=0, dtype=np.float32)).write_h5ad(path)
    return path.read_bytes()


def _truncated_h5ad(env: Env) -> Path:
    data = _h5ad_bytes(env)
    path = env.tmp / "truncated.h5ad"
    path.write_bytes(data[: len(data) // 2])
    return path


def _entry(name: str, url: str, **item) -> dict:
    return {"name": name, "species": "human", "technology": "scRNA-seq", "format": "h5ad",
            "citation": "test fixture", "url": ["http://127.0.0.1/"], "files": [{"url": url, **item}]}


def _bad_checksum(env: Env):
    url = env.serve("x.h5ad", _h5ad_bytes(env))
    cache = env.tmp / "cache"
    try:
        noa.datasets.load("fx_bad_sum", registry=_entry("fx_bad_sum", url, sha256="0" * 64), cache_dir=cache,
                          progress=False)
    finally:
        # nothing (neither the file nor a partial download) may stay in the cache
        assert not [p for p in cache.rglob("*") if p.is_file()]


# --------------------------------------------------------------------------------------------
# the table


@dataclass(frozen=True)
class Case:
    id: str
    function: str  #: public function under test (for the docs table)
    problem: str  #: the bad input, in words
    call: Callable[[Env], object]
    exception: type[BaseException] | tuple[type[BaseException], ...]
    match: str


S = noa.tl.score
CP = dict(sample_key="sample", condition_key="condition", reference="control")

CASES: list[Case] = [
    # --- scoring ------------------------------------------------------------------------------
    Case("score-ensembl-without-gene_symbols", "tl.score", "Ensembl ids as var_names, no gene_symbols",
         lambda e: S(_ensembl(), SETS, inplace=False), ValueError, r"Ensembl.*gene_symbols='approved_symbol'"),
    Case("score-mouse-data-human-sets", "tl.score", "mouse symbols in the data, human gene sets",
         lambda e: S(_mouse_symbols(), SETS, inplace=False), ValueError, r"look mouse.*human"),
    Case("score-mouse-data-species-human", "tl.score", "mouse symbols with species='human'",
         lambda e: S(_mouse_symbols(), None, species="human", inplace=False), ValueError,
         r"look mouse.*species='mouse'"),
    Case("score-no-overlap", "tl.score", "no gene of any set in the data",
         lambda e: S(lognorm(), {"x": ["FOO1", "BAR2", "BAZ3"]}, inplace=False), ValueError,
         r"none of the 1 gene set\(s\) has at least min_genes=3"),
    Case("score-nan", "tl.score", "NaN in X",
         lambda e: S(_with_value(np.nan), SETS, inplace=False), ValueError, r"1 NaN or infinite value"),
    Case("score-inf-sparse", "tl.score", "inf in a sparse X",
         lambda e: S(_with_value(np.inf, dense=False), SETS, method="zmean", inplace=False), ValueError,
         r"1 NaN or infinite value"),
    Case("score-negative-aucell", "tl.score", "negative values with method='aucell'",
         lambda e: S(_with_value(-1.0), SETS, method="aucell", inplace=False), ValueError,
         r"negative values.*'aucell'"),
    Case("score-negative-ucell", "tl.score", "negative values with method='ucell'",
         lambda e: S(_with_value(-1.0), SETS, method="ucell", inplace=False), ValueError,
         r"negative values.*'ucell'"),
    Case("score-zero-cells", "tl.score", "AnnData with 0 cells",
         lambda e: S(lognorm()[:0].copy(), SETS, inplace=False), ValueError, r"0 cells"),
    Case("score-zero-genes", "tl.score", "AnnData with 0 genes",
         lambda e: S(lognorm()[:, :0].copy(), SETS, inplace=False), ValueError, r"0 genes"),
    Case("score-duplicated-genes", "tl.score", "duplicated var_names",
         lambda e: S(_duplicated_names(), SETS, inplace=False), ValueError, r"duplicated gene name.*make_unique"),
    Case("score-unknown-method", "tl.score", "method='gsva'",
         lambda e: S(lognorm(), SETS, method="gsva", inplace=False), ValueError,
         r"unknown scoring method 'gsva'.*aucell"),
    Case("score-all-sets-below-min_genes", "tl.score", "every set has fewer than min_genes genes",
         lambda e: S(lognorm(), SETS, min_genes=50, inplace=False), ValueError, r"min_genes=50.*lower min_genes"),
    Case("score-missing-layer", "tl.score", "layer that does not exist",
         lambda e: S(lognorm(), SETS, layer="spliced", inplace=False), KeyError, r"layer 'spliced' not found.*counts"),
    Case("score-use_raw-without-raw", "tl.score", "use_raw=True without adata.raw",
         lambda e: S(lognorm(), SETS, use_raw=True, inplace=False), ValueError, r"use_raw=True but `adata.raw` is None"),
    Case("score-layer-and-use_raw", "tl.score", "layer= and use_raw=True together",
         lambda e: S(lognorm(), SETS, layer="counts", use_raw=True, inplace=False), ValueError, r"pass only one"),
    Case("score-missing-gene_symbols-column", "tl.score", "gene_symbols column that does not exist",
         lambda e: S(lognorm(), SETS, gene_symbols="symbol", inplace=False), KeyError, r"gene_symbols='symbol'"),
    Case("score-unknown-species", "tl.score", "species='rat'",
         lambda e: S(lognorm(), None, species="rat", inplace=False), ValueError, r"unknown species 'rat'"),
    Case("score-not-anndata", "tl.score", "a numpy array instead of an AnnData",
         lambda e: S(np.zeros((3, 3)), SETS), TypeError, r"must be an AnnData"),
    Case("score-empty-gene-set-dict", "tl.score", "gene_sets={}",
         lambda e: S(lognorm(), {}, inplace=False), ValueError, r"empty dict"),
    Case("score-genes-as-string", "tl.score", "a set given as one string instead of a list",
         lambda e: S(lognorm(), {"s": "SOX9"}, inplace=False), TypeError, r"list of gene symbols"),
    Case("score-missing-gmt", "tl.score", "GMT path that does not exist",
         lambda e: S(lognorm(), str(e.tmp / "nope.gmt"), inplace=False), FileNotFoundError, r"nope\.gmt.*not found"),
    Case("score-unknown-method-argument", "tl.score", "keyword argument the method does not take",
         lambda e: S(lognorm(), SETS, method="ucell", n_up=5, inplace=False), (TypeError, ValueError),
         r"unexpected keyword argument.*n_up"),
    Case("score-aucell-one-expressed-gene", "tl.score", "aucell when fewer than 2 genes are expressed",
         lambda e: S(_one_expressed_gene(), {"s": ["G0", "G1"]}, method="aucell", min_genes=1, inplace=False),
         ValueError, r"expressed gene"),
    Case("score-object-dtype", "tl.score", "X of dtype object",
         lambda e: S(_object_matrix(), {"s": ["G0", "G1"]}, min_genes=1, method="ucell", inplace=False),
         (TypeError, ValueError), r"dtype"),
    # --- annotation ---------------------------------------------------------------------------
    Case("annotate-no-marker-overlap", "tl.annotate_testis", "no curated marker gene in var_names",
         lambda e: noa.tl.annotate_testis(_renamed_genes(), species="human", inplace=False), ValueError,
         r"none of the curated human marker genes.*species="),
    Case("annotate-mouse-data-species-human", "tl.annotate_testis", "mouse data with species='human'",
         lambda e: noa.tl.annotate_testis(_mouse_symbols(), species="human", use_graph=False, inplace=False),
         ValueError, r"marker.*species="),
    Case("annotate-missing-cluster-key", "tl.annotate_testis", "cluster_key column that does not exist",
         lambda e: noa.tl.annotate_testis(counts(), cluster_key="leiden", inplace=False), KeyError,
         r"cluster column 'leiden' not found"),
    Case("annotate-missing-layer", "tl.annotate_testis", "layer that does not exist",
         lambda e: noa.tl.annotate_testis(counts(), layer="spliced", inplace=False), KeyError,
         r"layer 'spliced' not found.*counts"),
    Case("annotate-min_confidence-out-of-range", "tl.annotate_testis", "min_confidence=2",
         lambda e: noa.tl.annotate_testis(counts(), min_confidence=2, inplace=False), ValueError,
         r"min_confidence.*between 0 and 1"),
    # --- harmonize_labels ---------------------------------------------------------------------
    Case("harmonize-one-string", "tl.harmonize_labels", "one string instead of a list of labels",
         lambda e: noa.tl.harmonize_labels("Sertoli cells"), TypeError, r"harmonize_labels\(\[label\]\)"),
    Case("harmonize-unknown-source", "tl.harmonize_labels", "source that is not in the label table",
         lambda e: noa.tl.harmonize_labels(["SPG"], source="Smith2030"), ValueError, r"unknown label source 'Smith2030'"),
    Case("harmonize-mapping-outside-vocabulary", "tl.harmonize_labels", "mapping to a non-vocabulary type",
         lambda e: noa.tl.harmonize_labels(["x"], mapping={"x": "sperm"}), ValueError,
         r"'sperm' is not a noa-omics cell type"),
    # --- apoptosis_profile --------------------------------------------------------------------
    Case("profile-missing-sample-key", "tl.apoptosis_profile", "sample_key column that does not exist",
         lambda e: noa.tl.apoptosis_profile(lognorm(), sample_key="patient"), KeyError,
         r"sample column 'patient' not found.*available columns"),
    Case("profile-missing-cell-type-key", "tl.apoptosis_profile", "cell_type_key column that does not exist",
         lambda e: noa.tl.apoptosis_profile(lognorm(), sample_key="sample", cell_type_key="celltype"), KeyError,
         r"cell-type column 'celltype' not found"),
    Case("profile-absent-reference", "tl.apoptosis_profile", "reference condition not in the data",
         lambda e: noa.tl.apoptosis_profile(lognorm(), sample_key="sample", condition_key="condition",
                                            reference="healthy"),
         ValueError, r"reference condition 'healthy' not found.*control"),
    Case("profile-reference-without-condition_key", "tl.apoptosis_profile", "reference without condition_key",
         lambda e: noa.tl.apoptosis_profile(lognorm(), sample_key="sample", reference="control"), ValueError,
         r"`reference` needs `condition_key`"),
    Case("profile-unknown-gene-set", "tl.apoptosis_profile", "a set that is not in the score table",
         lambda e: noa.tl.apoptosis_profile(lognorm(), sample_key="sample", sets=["apoptosis_typo"]), KeyError,
         r"apoptosis_typo.*not in the score table"),
    Case("profile-infinite-score", "tl.apoptosis_profile", "an infinite value in the score table",
         lambda e: noa.tl.apoptosis_profile(_infinite_score(), sample_key="sample"), ValueError,
         r"score table `adata.obsm\['noa_score_genes'\]` contains 1 infinite value"),
    # --- compare_conditions -------------------------------------------------------------------
    Case("compare-missing-value-key", "tl.compare_conditions", "value_key found nowhere",
         lambda e: noa.tl.compare_conditions(lognorm(), value_key="apoptosis_typo", **CP), KeyError,
         r"'apoptosis_typo' not found.*noa.tl.score"),
    Case("compare-missing-sample-key", "tl.compare_conditions", "sample_key column that does not exist",
         lambda e: noa.tl.compare_conditions(lognorm(), value_key="apoptosis_intrinsic", sample_key="patient",
                                             condition_key="condition", reference="control"),
         KeyError, r"column 'patient' not found"),
    Case("compare-absent-reference", "tl.compare_conditions", "reference condition not in the data",
         lambda e: noa.tl.compare_conditions(lognorm(), value_key="apoptosis_intrinsic", sample_key="sample",
                                             condition_key="condition", reference="healthy"),
         ValueError, r"reference condition 'healthy' not found"),
    Case("compare-only-reference", "tl.compare_conditions", "only the reference condition present",
         lambda e: noa.tl.compare_conditions(lognorm()[lambda_control()].copy(), value_key="apoptosis_intrinsic",
                                             **CP),
         ValueError, r"nothing to compare"),
    Case("compare-sample-in-two-conditions", "tl.compare_conditions", "a sample with cells in two conditions",
         lambda e: noa.tl.compare_conditions(_two_conditions_per_sample(), value_key="apoptosis_intrinsic", **CP),
         ValueError, r"more than one 'condition' value"),
    Case("compare-non-numeric-value", "tl.compare_conditions", "a text column as value_key",
         lambda e: noa.tl.compare_conditions(_text_scores(), value_key="grade", **CP), ValueError, r"not numeric"),
    Case("compare-infinite-value", "tl.compare_conditions", "an infinite score",
         lambda e: noa.tl.compare_conditions(_infinite_score(), value_key="apoptosis_intrinsic", **CP), ValueError,
         r"'apoptosis_intrinsic' contains 1 infinite value"),
    Case("compare-unknown-method", "tl.compare_conditions", "method='ttest'",
         lambda e: noa.tl.compare_conditions(lognorm(), value_key="apoptosis_intrinsic", method="ttest", **CP),
         ValueError, r"unknown method 'ttest'"),
    Case("compare-array-input", "tl.compare_conditions", "a numpy array instead of AnnData/DataFrame",
         lambda e: noa.tl.compare_conditions(np.zeros((4, 3)), value_key="v", **CP), TypeError,
         r"AnnData or a per-cell pandas DataFrame"),
    # --- enrichment ---------------------------------------------------------------------------
    Case("enrichment-missing-layer", "tl.enrichment", "layer that does not exist",
         lambda e: noa.tl.enrichment(lognorm(), layer="spliced", **CP), KeyError, r"layer 'spliced' not found"),
    Case("enrichment-not-counts", "tl.enrichment", "log-normalised X as counts (layer=None)",
         lambda e: noa.tl.enrichment(lognorm(), layer=None, **CP), ValueError, r"does not hold raw counts"),
    Case("enrichment-absent-reference", "tl.enrichment", "reference condition not in the data",
         lambda e: noa.tl.enrichment(lognorm(), sample_key="sample", condition_key="condition", reference="healthy"),
         ValueError, r"reference condition 'healthy' not found"),
    Case("enrichment-min_samples-1", "tl.enrichment", "min_samples=1 (no replicates)",
         lambda e: noa.tl.enrichment(lognorm(), min_samples=1, **CP), ValueError, r"min_samples.*at least 2"),
    # --- spatial ------------------------------------------------------------------------------
    Case("assign-missing-spatial", "spatial.assign_tubules", "no obsm['spatial']",
         lambda e: noa.spatial.assign_tubules(spatial(spatial=None), inplace=False), KeyError,
         r"no coordinates at `adata.obsm\['spatial'\]`"),
    Case("assign-nan-coordinates", "spatial.assign_tubules", "NaN in the coordinates",
         lambda e: noa.spatial.assign_tubules(spatial(spatial=_coords(nan=True)), inplace=False), ValueError,
         r"1 NaN or infinite value"),
    Case("assign-3d-coordinates", "spatial.assign_tubules", "3 coordinate columns",
         lambda e: noa.spatial.assign_tubules(spatial(spatial=_coords(ndim=3)), inplace=False), ValueError,
         r"has 3 columns; expected 2.*z-plane"),
    Case("assign-one-coordinate-column", "spatial.assign_tubules", "coordinates of the wrong shape (n, 1)",
         lambda e: noa.spatial.assign_tubules(spatial(spatial=_coords(ndim=1)), inplace=False), ValueError,
         r"has 1 columns; expected 2"),
    Case("assign-text-coordinates", "spatial.assign_tubules", "non-numeric coordinates",
         lambda e: noa.spatial.assign_tubules(spatial(spatial=_coords(text=True)), inplace=False), ValueError,
         r"not numeric"),
    Case("assign-identical-coordinates", "spatial.assign_tubules", "every cell at the same position",
         lambda e: noa.spatial.assign_tubules(spatial(spatial=_coords(zero=True)), inplace=False), ValueError,
         r"share the same coordinates"),
    Case("assign-missing-cell-type-column", "spatial.assign_tubules", "cell_type_key column that does not exist",
         lambda e: noa.spatial.assign_tubules(spatial(), cell_type_key="celltype", inplace=False), KeyError,
         r"cell-type column 'celltype' not found"),
    Case("assign-no-tubule-cell-types", "spatial.assign_tubules", "no germ or Sertoli cell",
         lambda e: noa.spatial.assign_tubules(_no_germ_cells(), inplace=False), ValueError,
         r"found 0 tubule-epithelium cells"),
    Case("assign-labels-outside-vocabulary", "spatial.assign_tubules", "published labels not harmonised",
         lambda e: noa.spatial.assign_tubules(_foreign_labels(), inplace=False), ValueError,
         r"none of the vocabulary cell types.*harmonize_labels"),
    Case("metrics-before-assign", "spatial.tubule_metrics", "no tubule column",
         lambda e: noa.spatial.tubule_metrics(spatial(), tubule_key="tubule"), KeyError,
         r"tubule column 'tubule' not found.*assign_tubules"),
    Case("metrics-inf-coordinates", "spatial.tubule_metrics", "inf in the coordinates",
         lambda e: noa.spatial.tubule_metrics(spatial(spatial=_coords(inf=True))), ValueError,
         r"1 NaN or infinite value"),
    Case("metrics-infinite-score", "spatial.tubule_metrics", "an infinite value in the score table",
         lambda e: noa.spatial.tubule_metrics(_spatial_scores(np.inf), score_key="noa_score_genes"), ValueError,
         r"`adata.obsm\['noa_score_genes'\]` contains 1 infinite value"),
    Case("niche-missing-sample-key", "spatial.niche_summary", "sample_key column that does not exist",
         lambda e: noa.spatial.niche_summary(spatial(), sample_key="patient"), KeyError,
         r"sample column 'patient' not found"),
    Case("niche-unknown-cell-class", "spatial.niche_summary", "a cell class outside the vocabulary",
         lambda e: noa.spatial.niche_summary(spatial(), sample_key="sample", nhood_classes=["germ", "sperm"]),
         ValueError, r"unknown cell class\(es\) \['sperm'\]"),
    # --- multihit -----------------------------------------------------------------------------
    Case("multihit-missing-sample-key", "tl.multihit", "sample_key column that does not exist",
         lambda e: noa.tl.multihit(lognorm(), sample_key="patient", inplace=False), KeyError,
         r"'patient' not found in `adata.obs`"),
    Case("multihit-absent-reference-condition", "tl.multihit", "reference condition not in the data",
         lambda e: noa.tl.multihit(lognorm(), sample_key="sample", condition_key="condition", reference="healthy",
                                   inplace=False),
         ValueError, r"reference condition 'healthy' not found"),
    Case("multihit-no-reference-donors", "tl.multihit", "an empty list of reference donors",
         lambda e: noa.tl.multihit(lognorm(), sample_key="sample", reference=[], inplace=False), ValueError,
         r"selects 0 sample\(s\).*at least 2 reference samples"),
    Case("multihit-one-reference-donor", "tl.multihit", "one reference donor",
         lambda e: noa.tl.multihit(lognorm(), sample_key="sample", reference=["C1"], inplace=False), ValueError,
         r"at least 2 reference samples"),
    Case("multihit-missing-axis-ingredients", "tl.multihit", "no gene of the endocrine axis in the data",
         lambda e: noa.tl.multihit(_without_endocrine_genes(), sample_key="sample", condition_key="condition",
                                   reference="control", inplace=False),
         ValueError, r"no ingredient of axis/axes .*endocrine.*allow_missing_axes"),
    Case("multihit-missing-score-table", "tl.multihit", "score_key that does not exist",
         lambda e: noa.tl.multihit(lognorm(), sample_key="sample", score_key="noa_gsva", inplace=False), KeyError,
         r"no per-cell scores at `adata.obsm\['noa_gsva'\]`"),
    Case("multihit-infinite-score", "tl.multihit", "an infinite value in the score table",
         lambda e: noa.tl.multihit(_infinite_score(), sample_key="sample", score_key="noa_score_genes",
                                   inplace=False),
         ValueError, r"`adata.obsm\['noa_score_genes'\]` contains 1 infinite value"),
    Case("multihit-labels-outside-vocabulary", "tl.multihit", "cell types not harmonised",
         lambda e: noa.tl.multihit(lognorm(), sample_key="sample", cell_type_key="donor", inplace=False),
         ValueError, r"no cell type of the vocabulary"),
    # --- retrieval_model ----------------------------------------------------------------------
    Case("retrieval-too-few-donors-per-class", "tl.retrieval_model", "3 donors without retrieval",
         lambda e: noa.tl.retrieval_model(*donor_features(9, 3), n_permutations=0, n_bootstrap=10), ValueError,
         r"too few donors per outcome class.*3 without"),
    Case("retrieval-constant-outcome", "tl.retrieval_model", "every donor with retrieval",
         lambda e: noa.tl.retrieval_model(donor_features(12, 0)[0], [1] * 12, n_permutations=0), ValueError,
         r"outcome is constant"),
    Case("retrieval-missing-outcome-column", "tl.retrieval_model", "outcome column that does not exist",
         lambda e: noa.tl.retrieval_model(donor_features(6, 6)[0], "tese", n_permutations=0), KeyError,
         r"\['tese'\] not found in `features`"),
    Case("retrieval-non-binary-outcome", "tl.retrieval_model", "outcome values 0/2",
         lambda e: noa.tl.retrieval_model(donor_features(6, 6)[0], [0, 2] * 6, n_permutations=0), ValueError,
         r"must be 0/1"),
    Case("retrieval-outcome-length", "tl.retrieval_model", "fewer outcomes than donors",
         lambda e: noa.tl.retrieval_model(donor_features(6, 6)[0], [0, 1] * 3, n_permutations=0), ValueError,
         r"6 values but `features` has 12 rows"),
    Case("retrieval-infinite-feature", "tl.retrieval_model", "an infinite feature value",
         lambda e: noa.tl.retrieval_model(_infinite_features(), [0, 1] * 10, n_permutations=0, n_bootstrap=10),
         ValueError, r"infinite.*'x'|'x'.*infinite"),
    # --- gene sets ----------------------------------------------------------------------------
    Case("gmt-space-separated", "genesets.read_gmt", "fields separated by spaces, not tabs",
         lambda e: noa.genesets.read_gmt(_write(e, "bad.gmt", "set1 desc TP53 BAX\n")), ValueError,
         r"line 1: expected at least 3 tab-separated fields"),
    Case("gmt-empty-set", "genesets.read_gmt", "a set without genes",
         lambda e: noa.genesets.read_gmt(_write(e, "empty.gmt", "a\tdesc\tTP53\tBAX\nb\tdesc\t\t\n")), ValueError,
         r"line 2: gene set 'b' is empty"),
    Case("gmt-duplicated-name", "genesets.read_gmt", "the same set name twice",
         lambda e: noa.genesets.read_gmt(_write(e, "dup.gmt", "a\td\tTP53\na\td\tBAX\n")), ValueError,
         r"line 2: duplicated gene-set name 'a'"),
    Case("gmt-no-sets", "genesets.read_gmt", "a file with blank lines only",
         lambda e: noa.genesets.read_gmt(_write(e, "blank.gmt", "\n\n")), ValueError, r"holds no gene sets"),
    Case("gmt-binary-file", "genesets.read_gmt", "a binary (non-UTF-8) file",
         lambda e: noa.genesets.read_gmt(_truncated_h5ad(e)), ValueError, r"not a UTF-8 text file"),
    Case("genesets-unknown-species", "genesets.load", "species='rat'",
         lambda e: noa.genesets.load("rat"), ValueError, r"unknown species 'rat'.*human"),
    Case("genesets-unknown-set-name", "GeneSetCollection[...]", "a set name not in the library",
         lambda e: noa.genesets.load("human")["apoptosis_typo"], KeyError,
         r"gene set 'apoptosis_typo' not found; available: apoptosis_intrinsic"),
    Case("genesets-unknown-category", "GeneSetCollection.filter", "category that does not exist",
         lambda e: noa.genesets.load("human").filter(category="apoptotic"), ValueError,
         r"unknown category \['apoptotic'\]"),
    # --- datasets -----------------------------------------------------------------------------
    Case("datasets-unknown-name", "datasets.load", "dataset name not in the registry",
         lambda e: noa.datasets.load("guo2019_adult"), ValueError,
         r"unknown dataset 'guo2019_adult'; known datasets: .*guo2018_adult"),
    Case("datasets-bad-checksum", "datasets.load", "download whose sha256 does not match (local server)",
         _bad_checksum, ValueError, r"checksum mismatch .*x\.h5ad.*nothing was kept"),
    Case("datasets-truncated-h5ad", "datasets.read", "an .h5ad file cut in half",
         lambda e: noa.datasets.read(_truncated_h5ad(e)), ValueError, r"truncated\.h5ad as h5ad.*truncated"),
    Case("datasets-missing-file", "datasets.read", "a path that does not exist",
         lambda e: noa.datasets.read(e.tmp / "nope.h5ad"), FileNotFoundError, r"nope\.h5ad does not exist"),
    Case("demo_testis-zero-cells", "datasets.demo_testis", "n_cells=0",
         lambda e: noa.datasets.demo_testis(n_cells=0), ValueError, r"`n_cells` must be a positive integer"),
    Case("demo_spatial-zero-tubules", "datasets.demo_spatial", "n_tubules=0",
         lambda e: noa.datasets.demo_spatial(n_tubules=0), ValueError, r"`n_tubules` must be >= 1"),
]


def lambda_control():
    """Boolean mask of the control cells of :func:`lognorm` (for subsetting)."""
    return (_lognorm().obs["condition"] == "control").to_numpy()


def _coords(*, nan=False, inf=False, ndim=2, text=False, zero=False):
    xy = np.asarray(_spatial().obsm["spatial"], dtype=float).copy()
    if nan:
        xy[0, 0] = np.nan
    if inf:
        xy[0, 1] = np.inf
    if zero:
        xy[:] = 0.0
    if ndim == 3:
        xy = np.c_[xy, np.zeros(len(xy))]
    elif ndim == 1:
        xy = xy[:, :1]
    if text:
        xy = xy.astype(str).astype(object)
    return xy


def _infinite_features() -> pd.DataFrame:
    features, _ = donor_features(10, 10)
    features.iloc[0, 0] = np.inf
    return features


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_with_a_clear_message(case: Case, env: Env):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a warning before the error is fine; the error is what counts
        with pytest.raises(case.exception, match=case.match) as info:
            case.call(env)
    message = str(info.value)
    assert "Traceback" not in message
    assert len(message) < 2000  # one readable sentence or two, not a dump


def test_case_table_is_large_and_ids_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 35
    functions = {c.function for c in CASES}
    for public in ("tl.score", "tl.annotate_testis", "tl.harmonize_labels", "tl.apoptosis_profile",
                   "tl.compare_conditions", "tl.enrichment", "spatial.assign_tubules", "spatial.tubule_metrics",
                   "spatial.niche_summary", "tl.multihit", "tl.retrieval_model", "genesets.read_gmt",
                   "genesets.load", "datasets.load"):
        assert public in functions, public


# --------------------------------------------------------------------------------------------
# inputs that must not raise: a warning and a defined answer (NaN, 'other'), never silent NaN


def _one_donor_per_side():
    res = noa.tl.compare_conditions(lognorm(), value_key="apoptosis_intrinsic", **CP)
    row = res.set_index("condition").loc["case"]
    assert row["n_samples"] == 1 and row["n_reference_samples"] == 3
    assert np.isfinite(row["effect"])  # the difference of donor means is still reported
    assert np.isnan(row["pvalue"]) and np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])  # not a tiny p
    assert np.isnan(row["qvalue"])
    other = res.set_index("condition").loc["sertoli_cell_only"]
    assert np.isfinite(other["pvalue"])  # the comparison with replicates is kept


def _condition_without_a_cell_type():
    res = noa.tl.compare_conditions(lognorm(), value_key="apoptosis_intrinsic", groupby="noa_cell_type", **CP)
    sco = res[(res["condition"] == "sertoli_cell_only") & (res["group"] == "spermatocyte")]
    assert len(sco) == 1  # the row is kept: an absent cell type is data
    row = sco.iloc[0]
    assert row["n_samples"] == 0 and row["n_cells"] == 0
    assert np.isnan(row["effect"]) and np.isnan(row["pvalue"])


def _harmonize_unknown():
    out = noa.tl.harmonize_labels(["Sertoli cells", "blob-7", None])
    assert out.tolist() == ["sertoli", "other", "other"]


def _zero_cells_annotated_other():
    adata = counts()
    x = adata.X.toarray() if sp.issparse(adata.X) else np.array(adata.X)
    x[:5] = 0
    adata.X = sp.csr_matrix(x)
    labels = noa.tl.annotate_testis(adata, inplace=True)
    assert labels.notna().all()
    assert (labels.iloc[:5] == "other").all()
    assert adata.obs["noa_cell_type_confidence"].notna().all()
    assert (adata.obs["noa_cell_type_confidence"].iloc[:5] == 0).all()
    assert adata.obs["noa_cell_class"].notna().all()


def _all_zero_matrix_annotated_other():
    adata = counts()
    adata.X = sp.csr_matrix(adata.shape, dtype=np.float32)
    labels = noa.tl.annotate_testis(adata, inplace=False)
    assert labels.notna().all() and (labels == "other").all()


def _score_drops_small_sets():
    res = S(lognorm(), {**SETS, "tiny": ["SOX9", "NOTAGENE1", "NOTAGENE2"]}, inplace=False)
    assert list(res.columns) == list(SETS)
    assert np.isfinite(res.to_numpy()).all()


def _score_genes_on_raw_counts():
    res = S(counts(), SETS, method="score_genes", inplace=False)
    assert np.isfinite(res.to_numpy()).all()


def _enrichment_one_donor_per_side():
    res = noa.tl.enrichment(counts(), sample_key="sample", condition_key="condition", reference="control",
                            cell_types=["sertoli"], permutation_num=10)
    # 'case' has one donor: skipped with a warning, not ranked from cells of one donor
    assert "case" not in set(res["condition"])


def _profile_type_without_reference_cells():
    adata = lognorm()
    res = noa.tl.apoptosis_profile(adata, sample_key="sample", condition_key="condition",
                                   reference="sertoli_cell_only", sets=["apoptosis_intrinsic"])
    germ = res[res["cell_type"] == "spermatocyte"]
    assert germ["frac_high"].isna().all()
    assert germ["mean"].notna().any()


WARNING_CASES = [
    ("compare-one-donor-per-side", "tl.compare_conditions",
     "one donor on a side: p-value and CI are NaN (not a tiny p)", _one_donor_per_side, r"fewer than 2 samples"),
    ("compare-condition-without-a-cell-type", "tl.compare_conditions",
     "a condition with no cells of a type: row kept with NaN", _condition_without_a_cell_type,
     r"no sample with at least \d+ cell"),
    ("harmonize-unknown-label", "tl.harmonize_labels", "unknown labels become 'other'", _harmonize_unknown,
     r"unrecognised label\(s\) mapped to 'other'.*blob-7"),
    ("annotate-all-zero-cells", "tl.annotate_testis", "cells without counts are 'other' (confidence 0, no NaN)",
     _zero_cells_annotated_other, r"zero counts"),
    ("annotate-all-zero-matrix", "tl.annotate_testis", "a matrix without any count: every cell 'other'",
     _all_zero_matrix_annotated_other, r"zero counts"),
    ("score-set-below-min_genes", "tl.score", "a set with too few genes is dropped, the others scored",
     _score_drops_small_sets, r"fewer than min_genes=3 .*'tiny' \(1\)"),
    ("score-genes-raw-counts", "tl.score", "score_genes on raw counts: warned, still scored",
     _score_genes_on_raw_counts, r"looks like raw counts.*log1p"),
    ("enrichment-one-donor-per-side", "tl.enrichment", "one donor on a side: comparison skipped",
     _enrichment_one_donor_per_side, r"enrichment skipped .*case"),
    ("profile-type-without-reference-cells", "tl.apoptosis_profile",
     "a cell type absent from the reference: frac_high NaN", _profile_type_without_reference_cells,
     r"no cells in the reference condition"),
]


@pytest.mark.parametrize("case", WARNING_CASES, ids=[c[0] for c in WARNING_CASES])
def test_degenerate_input_warns_and_gives_a_defined_answer(case):
    import re

    _, _, _, check, match = case
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check()
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any(re.search(match, m) for m in messages), messages


@pytest.mark.parametrize("dtype", [np.float16, np.int8, bool])
@pytest.mark.parametrize("method", ["aucell", "ucell", "zmean"])
def test_unusual_dtypes_score_like_float64(dtype, method):
    """Small integer, half-precision and boolean matrices are scored, not crashed, and agree with float64."""
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2 if dtype is bool else 4, size=(12, 8))
    names = [f"G{j}" for j in range(8)]
    sets = {"a": names[:3], "b": names[2:6]}
    ref = S(tiny(values.astype(np.float64), names), sets, method=method, min_genes=1, inplace=False)
    stored = [values.astype(dtype)]
    if dtype is not np.float16:  # scipy.sparse has no float16
        stored.append(sp.csr_matrix(values.astype(dtype)))
    for x in stored:
        got = S(tiny(x, names), sets, method=method, min_genes=1, inplace=False)
        np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# command line


@functools.lru_cache(maxsize=None)
def _cli_input_bytes() -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.h5ad"
        noa.datasets.demo_testis(seed=0, n_cells=120).write_h5ad(path)
        return path.read_bytes()


def _cli_input(env: Env, *, truncate: bool = False, nan: bool = False) -> Path:
    path = env.tmp / ("truncated.h5ad" if truncate else "nan.h5ad" if nan else "in.h5ad")
    data = _cli_input_bytes()
    if nan:
        adata = ad.read_h5ad(_write_bytes(env.tmp / "src.h5ad", data))
        x = np.asarray(adata.X.toarray(), dtype=np.float32)
        x[0, 0] = np.nan
        adata.X = x
        adata.write_h5ad(path)
        return path
    path.write_bytes(data[: len(data) // 3] if truncate else data)
    return path


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _hdf5_not_anndata(env: Env) -> Path:
    import h5py

    path = env.tmp / "other.h5ad"
    with h5py.File(path, "w") as f:
        f.create_dataset("matrix", data=np.arange(6))
    return path


def _run_config(env: Env, **singlecell) -> Path:
    import yaml

    section = {"path": str(_cli_input(env)), "sample_key": "sample", "condition_key": "condition",
               "reference": "control", **singlecell}
    path = env.tmp / "config.yaml"
    path.write_text(yaml.safe_dump({"output": str(env.tmp / "out"), "singlecell": section}))
    return path


def _blocked_parent(env: Env) -> Path:
    blocker = env.tmp / "a-file"
    blocker.write_text("not a directory")
    return blocker / "out.h5ad"


def _read_only_dir(env: Env) -> Path:
    """A real folder that refuses writes: mode 0555 for a normal user; as root (who ignores
    permission bits) the folder is made immutable with ``chattr +i`` (undone at teardown)."""
    folder = env.tmp / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        env.cleanups.append(lambda: folder.chmod(0o755))
        return folder / "out.h5ad"
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root without a working `chattr +i` (no immutable folders on this file system)")
    env.cleanups.append(lambda: subprocess.run([chattr, "-i", str(folder)], check=True))
    try:  # the folder must really refuse a write, or the test tests nothing
        (folder / "probe").touch()
    except OSError:
        return folder / "out.h5ad"
    pytest.fail("`chattr +i` did not make the folder read-only")


def _parent_is_a_file(env: Env) -> Path:
    """An output path below a regular file: refused for every user, root included."""
    blocker = env.tmp / "not-a-folder"
    blocker.write_text("a file where a folder is expected\n")
    return blocker / "out.h5ad"


@dataclass(frozen=True)
class CliCase:
    id: str
    problem: str
    args: Callable[[Env], tuple[list[str], Path]]  #: (arguments, output path that must not appear)
    match: str


CLI_CASES = [
    CliCase("cli-score-corrupt-h5ad", "score: truncated .h5ad",
            lambda e: (["score", _cli_input(e, truncate=True), "--out", e.tmp / "o.h5ad"], e.tmp / "o.h5ad"),
            r"truncated\.h5ad' is not a readable AnnData \.h5ad file.*truncated"),
    CliCase("cli-score-hdf5-not-anndata", "score: an HDF5 file that is not an AnnData",
            lambda e: (["score", _hdf5_not_anndata(e), "--out", e.tmp / "o.h5ad"], e.tmp / "o.h5ad"),
            r"not a readable AnnData \.h5ad file"),
    CliCase("cli-score-missing-input", "score: input file does not exist",
            lambda e: (["score", e.tmp / "nope.h5ad", "--out", e.tmp / "o.h5ad"], e.tmp / "o.h5ad"),
            r"nope\.h5ad' not found"),
    CliCase("cli-score-unwritable-output-parent-is-a-file", "score: output folder is a file",
            lambda e: (["score", _cli_input(e), "--out", _blocked_parent(e)], _blocked_parent(e)),
            r"cannot write output file .* is not a directory"),
    CliCase("cli-score-unwritable-output-read-only-dir", "score: output folder not writable",
            lambda e: (["score", _cli_input(e), "--out", (p := _read_only_dir(e))], p),
            r"cannot write output file .*not writable"),
    CliCase("cli-score-missing-layer", "score: --layer that does not exist",
            lambda e: (["score", _cli_input(e), "--out", e.tmp / "o.h5ad", "--layer", "spliced"], e.tmp / "o.h5ad"),
            r"layer 'spliced' not found"),
    CliCase("cli-score-nan-values", "score: NaN in X (fails after reading, before writing)",
            lambda e: (["score", _cli_input(e, nan=True), "--out", e.tmp / "o.h5ad", "--normalize", "no"],
                       e.tmp / "o.h5ad"),
            r"NaN or infinite"),
    CliCase("cli-run-missing-column", "run: config names an obs column that does not exist",
            lambda e: (["run", _run_config(e, sample_key="patient_id")], e.tmp / "out"),
            r"column 'patient_id' \(singlecell.sample_key\) not found"),
    CliCase("cli-run-corrupt-h5ad", "run: config points at a truncated .h5ad",
            lambda e: (["run", _run_config(e, path=str(_cli_input(e, truncate=True)))], e.tmp / "out"),
            r"not a readable AnnData \.h5ad file"),
    CliCase("cli-genesets-unknown-set", "genesets show: unknown set name",
            lambda e: (["genesets", "show", "apoptosis_typo"], e.tmp / "none"), r"unknown gene set 'apoptosis_typo'"),
    CliCase("cli-report-missing-results", "report: results folder does not exist",
            lambda e: (["report", e.tmp / "nothing", "--out", e.tmp / "r.html"], e.tmp / "r.html"),
            r"nothing' not found"),
    CliCase("cli-score-output-below-a-file", "score: output folder is a regular file",
            lambda e: (["score", _cli_input(e), "--out", (p := _parent_is_a_file(e))], p),
            r"cannot write output file .*not-a-folder' is not a directory"),
]


def _assert_clean_failure(exit_code: int, stderr: str, stdout: str, out: Path, match: str, tmp: Path) -> None:
    import re

    assert exit_code != 0, stdout + stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("noa-omics: error: "), lines[0]
    assert re.search(match, lines[0]), lines[0]
    assert "Traceback" not in stderr + stdout
    assert not out.exists()  # no (partial) output
    leftovers = [p.name for p in tmp.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_bad_input_one_line_no_output(case: CliCase, env: Env):
    from typer.testing import CliRunner

    from noa_omics.cli import app

    args, out = case.args(env)
    result = CliRunner().invoke(app, [str(a) for a in args])
    _assert_clean_failure(result.exit_code, result.stderr, result.stdout, out, case.match, env.tmp)


def test_cli_corrupt_h5ad_from_the_console_script(env: Env):
    """The installed command in a fresh process (not CliRunner): same single line, exit code 2."""
    src = _cli_input(env, truncate=True)
    out = env.tmp / "o.h5ad"
    proc = subprocess.run([sys.executable, "-m", "noa_omics.cli", "score", str(src), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    _assert_clean_failure(proc.returncode, proc.stderr, proc.stdout, out, r"not a readable AnnData", env.tmp)


# --------------------------------------------------------------------------------------------
# the table for docs/robustness.md


def _code(text: str) -> str:
    """Markdown code span for a table cell (double backticks when the text holds one; Python-Markdown
    tables keep pipes inside code spans)."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def markdown_table() -> str:
    lines = ["| # | case id | function | bad input | raises | message matches |", "|---|---|---|---|---|---|"]
    for i, c in enumerate(CASES, 1):
        exc = c.exception if isinstance(c.exception, tuple) else (c.exception,)
        names = " or ".join(e.__name__ for e in exc)
        lines.append(f"| {i} | `{c.id}` | `{c.function}` | {c.problem} | {names} | {_code(c.match)} |")
    lines += ["", "| # | case id | function | input | warning matches |", "|---|---|---|---|---|"]
    for i, (cid, fn, problem, _, match) in enumerate(WARNING_CASES, 1):
        lines.append(f"| {i} | `{cid}` | `{fn}` | {problem} | {_code(match)} |")
    lines += ["", "| # | case id | input | stderr line matches |", "|---|---|---|---|"]
    for i, c in enumerate(CLI_CASES, 1):
        lines.append(f"| {i} | `{c.id}` | {c.problem} | {_code(c.match)} |")
    return "\n".join(lines)


DOC = Path(__file__).resolve().parents[1] / "docs" / "robustness.md"
START, END = "<!-- cases:start (generated by `python tests/test_bad_input.py --write`) -->", "<!-- cases:end -->"


def _doc_with_table(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{markdown_table()}\n{END}{tail}"


def test_docs_list_every_case():
    text = DOC.read_text(encoding="utf-8")
    assert text == _doc_with_table(text), "docs/robustness.md is stale: run `python tests/test_bad_input.py --write`"


if __name__ == "__main__":  # pragma: no cover - documentation helper
    if "--write" in sys.argv:
        DOC.write_text(_doc_with_table(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(markdown_table())
