"""Analysis steps, as small functions on in-memory objects.

The same functions serve the command line (``noa-omics demo|run|score``), the Snakemake
workflow (``workflows/Snakefile``) and notebooks, so all three give the same numbers::

    import noa_omics as noa
    from noa_omics.pipeline import steps

    adata = steps.prepare_expression(noa.datasets.demo_testis(seed=0, n_cells=2000))
    steps.annotate(adata)
    steps.embed(adata)
    steps.score(adata, methods=["score_genes"])
    profile = steps.profile(adata, sample_key="sample", condition_key="condition")

Normalisation for scoring: ``scanpy.pp.normalize_total(target_sum=1e4)`` then
``scanpy.pp.log1p`` into ``X``; the raw counts stay in ``layers["counts"]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._validation import check_adata, check_obs_key, is_count_matrix
from .._vocabulary import CELL_CLASSES, CELL_TYPE_TO_CLASS, CELL_TYPES

#: Key of ``adata.uns`` where the pipeline records its own parameters.
PIPELINE_UNS_KEY = "noa_pipeline"


def _record(adata: AnnData, step: str, params: dict[str, Any]) -> None:
    uns = dict(adata.uns.get(PIPELINE_UNS_KEY, {}))
    uns[step] = {k: ("None" if v is None else v) for k, v in params.items()}
    adata.uns[PIPELINE_UNS_KEY] = uns


def looks_like_counts(matrix: Any) -> bool:
    """True when ``matrix`` holds raw counts (see :func:`noa_omics._validation.is_count_matrix`); False when all zero."""
    return is_count_matrix(matrix, empty=False)


def _copy_annotations(adata: AnnData, *, skip_layers: set[Any]) -> AnnData:
    """A copy of ``adata`` without ``X`` and the ``skip_layers`` (replaced by the caller)."""
    import copy

    out = AnnData(obs=adata.obs.copy(), var=adata.var.copy(), uns=copy.deepcopy(dict(adata.uns)),
                  obsm={k: v.copy() for k, v in adata.obsm.items()}, varm={k: v.copy() for k, v in adata.varm.items()},
                  obsp={k: v.copy() for k, v in adata.obsp.items()}, varp={k: v.copy() for k, v in adata.varp.items()},
                  layers={k: v.copy() for k, v in adata.layers.items() if k not in skip_layers})
    if adata.raw is not None:
        out.raw = adata.raw.to_adata()
    return out


def prepare_expression(adata: AnnData, *, counts_layer: str | None = "counts", target_sum: float = 1e4,
                       share_counts: bool = False) -> AnnData:
    """Copy ``adata`` with raw counts in ``layers["counts"]`` and log-normalised values in ``X``.

    Parameters
    ----------
    adata
        Cells x genes with raw counts in ``layers[counts_layer]``, in ``raw.X``
        (``counts_layer="raw"``, the CELLxGENE layout) or in ``X`` (``counts_layer=None``).
    counts_layer
        Layer holding the raw counts; ``"raw"`` reads ``adata.raw.X``; None reads them from ``X``.
    target_sum
        Library size after normalisation (``scanpy.pp.normalize_total``).
    share_counts
        Memory-lean mode for a caller that drops ``adata`` afterwards (the pipeline's load stage):
        a float32 CSR counts matrix becomes ``layers["counts"]`` without a copy (it is only put in
        canonical format, in place), and ``X`` shares its ``indices``/``indptr``, so the result
        holds 1.5 matrices instead of 2 (and the step peaks at 1.5 instead of 3-4).

    Returns
    -------
    AnnData
        A new object: ``X`` = :math:`\\log(1 + 10^4\\, x_{cg} / \\sum_g x_{cg})`
        (:func:`noa_omics._stream.log1p_cp10k`, the arithmetic of ``scanpy.pp.normalize_total`` and
        ``scanpy.pp.log1p``),
        ``layers["counts"]`` = raw counts (float32, CSR). With ``counts_layer="raw"`` the genes are
        those of ``raw.var`` (with the ``var`` columns where the genes match) and ``raw`` is not
        copied (its counts are ``layers["counts"]``).
    """
    from .._identifiers import counts_layout
    from .._stream import log1p_cp10k

    check_adata(adata)
    layout = counts_layout(adata, counts_layer, option="counts_layer")
    counts = layout.matrix
    if share_counts and sp.issparse(counts) and counts.format == "csr" and counts.dtype == np.float32:
        counts = sp.csr_matrix(counts, copy=False)
    else:
        counts = sp.csr_matrix(counts, dtype=np.float32, copy=True)
    counts.sum_duplicates()  # canonical (sorted, no duplicates): X shares its index arrays
    if layout.use_raw:
        # counts in raw.X (the CELLxGENE layout): the result has raw's genes; var columns joined
        var = layout.var.copy()
        if not var.index.equals(adata.var_names):
            extra = [c for c in adata.var.columns if c not in var.columns]
            var = var.join(adata.var[extra]) if extra else var
        else:
            var = adata.var.copy().join(var[[c for c in var.columns if c not in adata.var.columns]])
        out = AnnData(X=None, obs=adata.obs.copy(), var=var, uns=dict(adata.uns), obsm=dict(adata.obsm),
                      obsp=dict(adata.obsp))
    else:
        out = _copy_annotations(adata, skip_layers={"counts", counts_layer})  # no copy of X: two matrices, not four
    out.layers["counts"] = counts
    out.X = log1p_cp10k(counts, target_sum, share_structure=True)
    out.uns["log1p"] = {"base": None}  # what scanpy.pp.log1p records
    _record(out, "prepare", {"counts_layer": counts_layer, "counts_from": layout.where, "target_sum": float(target_sum)})
    return out


def annotate(adata: AnnData, *, cell_type_key: str | None = None, key_added: str = "noa_cell_type",
             gene_symbols: str | None = None) -> pd.Series:
    """Cell-type labels in ``obs["noa_cell_type"]`` and ``obs["noa_cell_class"]`` (in place).

    With ``cell_type_key`` the labels of that column are harmonised to the vocabulary with
    :func:`noa_omics.tl.harmonize_labels`; otherwise cells are annotated from marker sets with
    :func:`noa_omics.tl.annotate_testis` (genes matched through ``gene_symbols``).
    """
    from .. import tl

    check_adata(adata)
    if cell_type_key is None:
        # the counts the pipeline keeps in layers["counts"], not counts recovered from X (a copy)
        layer = "counts" if "counts" in adata.layers else None
        tl.annotate_testis(adata, key_added=key_added, gene_symbols=gene_symbols, layer=layer)
    else:
        check_obs_key(adata, cell_type_key, what="cell-type column")
        labels = tl.harmonize_labels(adata.obs[cell_type_key])
        labels = pd.Categorical(pd.Series(np.asarray(labels), index=adata.obs_names).astype(str),
                                categories=list(CELL_TYPES))
        adata.obs[key_added] = labels
    classes = adata.obs[key_added].astype(str).map(lambda t: CELL_TYPE_TO_CLASS.get(t, "other"))
    adata.obs["noa_cell_class"] = pd.Categorical(classes, categories=list(CELL_CLASSES))
    _record(adata, "annotate", {"cell_type_key": cell_type_key, "key_added": key_added, "gene_symbols": gene_symbols})
    return adata.obs[key_added]


def embed(adata: AnnData, *, n_top_genes: int = 2000, n_pcs: int = 30, n_neighbors: int = 15, random_state: int = 0,
          umap: bool = True, knn_method: str = "auto", exact_max_cells: int | None = None,
          umap_max_cells: int | None = None) -> None:
    """PCA on highly variable genes, neighbour graph and UMAP, in place; reuses what ``adata`` carries.

    An atlas that already holds ``obsm["X_pca"]``, ``obsp["connectivities"]`` or
    ``obsm["X_umap"]`` keeps them (``uns["noa_pipeline"]["embed"]["reused"]`` lists which). The
    graph comes from :func:`noa_omics._knn.neighbors`: exact kNN up to ``exact_max_cells`` cells
    (default :data:`noa_omics._knn.EXACT_MAX_CELLS`), pynndescent above, seeded by
    ``random_state``. ``umap=False`` stops after the graph (the annotation smooths on it). The
    UMAP is :func:`noa_omics._embedding.umap`: a full ``scanpy.tl.umap`` up to ``umap_max_cells``
    cells (default :data:`noa_omics._embedding.UMAP_MAX_CELLS`), above that a UMAP of that many
    seeded anchor cells extended to the others along the kNN graph.
    """
    import scanpy as sc

    from .. import _embedding, _knn

    check_adata(adata, min_obs=10)
    limit = _knn.EXACT_MAX_CELLS if exact_max_cells is None else int(exact_max_cells)
    reused: list[str] = []
    umap_info: dict[str, Any] = {}
    params: dict[str, Any] = {"n_neighbors": n_neighbors, "random_state": random_state}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "X_pca" in adata.obsm:
            reused.append("X_pca")
        else:
            n_top = min(n_top_genes, adata.n_vars)
            sc.pp.highly_variable_genes(adata, n_top_genes=n_top)
            n_comps = int(min(n_pcs, adata.n_obs - 1, int(adata.var["highly_variable"].sum()) - 1))
            sc.pp.pca(adata, n_comps=n_comps, mask_var="highly_variable", random_state=random_state)
            params.update(n_top_genes=n_top, n_pcs=n_comps)
        if "connectivities" in adata.obsp:
            reused.append("connectivities")
            if "neighbors" not in adata.uns:
                adata.uns["neighbors"] = {"connectivities_key": "connectivities", "params": {"method": "umap"}}
                if "distances" in adata.obsp:
                    adata.uns["neighbors"]["distances_key"] = "distances"
        else:
            graph = _knn.neighbors(adata, n_neighbors=n_neighbors, use_rep="X_pca", method=knn_method,
                                   exact_max_cells=limit, random_state=random_state)
            params.update(knn_method=graph["knn_method"], exact_max_cells=limit)
        if umap:
            if "X_umap" in adata.obsm:
                reused.append("X_umap")
            else:
                limit_umap = _embedding.UMAP_MAX_CELLS if umap_max_cells is None else int(umap_max_cells)
                umap_params = _embedding.umap(adata, max_cells=limit_umap, n_neighbors=n_neighbors,
                                              random_state=random_state)
                umap_info = {"umap_method": umap_params["method"],
                             "umap_cells_laid_out": umap_params["n_cells_laid_out"]}
    previous = dict(adata.uns.get(PIPELINE_UNS_KEY, {}).get("embed", {}))
    if umap and previous and {"X_pca", "connectivities"} <= set(reused):
        # second call of a two-part embedding (graph, then UMAP): keep what the first one computed
        before = previous.get("reused", "none")
        before = [] if before == "none" else list(before)
        params = {**previous, "reused": before + [r for r in reused if r == "X_umap"] or "none"}
    else:
        params["reused"] = reused or "none"
    _record(adata, "embed", {**params, **umap_info})


def resolve_species(adata: AnnData, species: str | None, *, gene_symbols: str | None = None) -> str:
    """The species of ``adata``: ``species`` when given, else detected from the gene symbols
    (identifiers resolved by :func:`noa_omics._identifiers.resolve_genes`)."""
    from .. import genesets
    from .._identifiers import resolve_genes

    if species is not None:
        return species
    ids = resolve_genes(adata.var, adata.var_names, gene_symbols, require_symbols=False, warn=False)
    return genesets.detect_species(list(ids.names))


def score(adata: AnnData, *, methods: Sequence[str] = ("score_genes",), gene_sets: Any = None,
          species: str | None = None, gene_symbols: str | None = None, layer: str | None = None,
          random_state: int = 0) -> dict[str, pd.DataFrame]:
    """Score every gene set with each method (:func:`noa_omics.tl.score`), in place.

    Results go to ``adata.obsm["noa_<method>"]`` (and parameters to ``adata.uns`` under the
    same key). Returns method -> cells x sets DataFrame.
    """
    from .. import genesets, tl

    check_adata(adata)
    species = resolve_species(adata, species, gene_symbols=gene_symbols)
    results = {}
    for method in methods:
        # use_raw=False: the pipeline's X is the log-normalised matrix (raw counts are in layers)
        results[method] = tl.score(adata, gene_sets, method=method, layer=layer, use_raw=False if layer is None else None,
                                   species=species, gene_symbols=gene_symbols, random_state=random_state)
    version = genesets.load(species).version if gene_sets is None else "user gene sets"
    _record(adata, "score", {"methods": list(methods), "species": species, "geneset_version": str(version),
                             "gene_sets": "curated" if gene_sets is None else str(gene_sets),
                             "gene_symbols": gene_symbols})
    return results


def cell_type_scores(adata: AnnData, *, method: str = "score_genes", cell_type_key: str = "noa_cell_type") -> pd.DataFrame:
    """Mean score per cell type and gene set (tidy: ``method``, ``cell_type``, ``gene_set``, ``n_cells``, ``mean``)."""
    key = f"noa_{method}"
    if key not in adata.obsm:
        raise KeyError(f"no scores at adata.obsm[{key!r}]; run the score step with method={method!r} first.")
    scores = pd.DataFrame(adata.obsm[key], index=adata.obs_names)
    groups = adata.obs[cell_type_key].astype(str)
    mean = scores.groupby(groups.values).mean()
    counts = groups.value_counts()
    tidy = mean.stack().rename("mean").reset_index()
    tidy.columns = ["cell_type", "gene_set", "mean"]
    tidy.insert(0, "method", method)
    tidy.insert(2, "n_cells", tidy["cell_type"].map(counts).astype(int))
    return tidy


def cell_type_counts(adata: AnnData, *, sample_key: str, condition_key: str | None = None,
                     cell_type_key: str = "noa_cell_type") -> pd.DataFrame:
    """Cells per sample and cell type, with the fraction of the sample's cells."""
    cols = [sample_key] + ([condition_key] if condition_key else [])
    obs = adata.obs[cols + [cell_type_key]].astype(str)
    table = obs.groupby(cols + [cell_type_key], observed=True).size().rename("n_cells").reset_index()
    table["fraction"] = table["n_cells"] / table.groupby(sample_key)["n_cells"].transform("sum")
    return table.rename(columns={cell_type_key: "cell_type"})


def annotation_accuracy(adata: AnnData, *, truth_key: str, cell_type_key: str = "noa_cell_type") -> pd.DataFrame:
    """Confusion table (truth x predicted counts) against a ground-truth label column.

    Rows and columns follow the biological order of the vocabulary (germ stages from SSC to
    elongating spermatids, then somatic types), as in the confusion-matrix figure.
    """
    from .._vocabulary import CELL_TYPES

    truth = adata.obs[truth_key].astype(str)
    pred = adata.obs[cell_type_key].astype(str)
    table = pd.crosstab(truth, pred)
    order = lambda labels: [t for t in CELL_TYPES if t in labels] + sorted(set(labels) - set(CELL_TYPES))  # noqa: E731
    table = table.loc[order(table.index), order(table.columns)]
    return table.rename_axis(index="truth", columns=None).reset_index()


def profile(adata: AnnData, *, sample_key: str, condition_key: str | None = None, reference: str | None = None,
            cell_type_key: str = "noa_cell_type", method: str = "score_genes",
            gene_symbols: str | None = None) -> pd.DataFrame:
    """Per-sample x cell-type x gene-set score summaries (:func:`noa_omics.tl.apoptosis_profile`).

    ``frac_high`` uses the 90th percentile of the ``reference`` condition's cells of each type.
    """
    from .. import tl

    return tl.apoptosis_profile(adata, sample_key=sample_key, cell_type_key=cell_type_key,
                                condition_key=condition_key, method=method, gene_symbols=gene_symbols,
                                reference=reference if condition_key is not None else None)


def comparison_sets(adata: AnnData, *, method: str = "score_genes") -> list[str]:
    """Gene sets compared between conditions: apoptosis and stress sets present in the scores."""
    from .. import genesets

    scores = adata.obsm[f"noa_{method}"]
    present = list(scores.columns)
    info = adata.uns.get(PIPELINE_UNS_KEY, {}).get("score", {})
    species = info.get("species", "human")
    try:
        library = genesets.load(species)
        wanted = [n for n in library.names if library[n].category in ("apoptosis", "stress")]
    except Exception:  # user gene sets: compare every scored set
        wanted = present
    chosen = [n for n in present if n in wanted]
    return chosen or present


def compare(adata: AnnData, *, sample_key: str, condition_key: str, reference: str,
            cell_type_key: str = "noa_cell_type", method: str = "score_genes",
            gene_sets: Sequence[str] | None = None, gene_symbols: str | None = None) -> pd.DataFrame:
    """Donor-level comparison of each condition with the reference, per cell type and gene set.

    Calls :func:`noa_omics.tl.compare_conditions` on the per-cell scores of the apoptosis and
    stress sets (``obsm["noa_<method>"]``) with ``groupby=cell_type_key``: the sample is the unit
    of inference and q-values are adjusted over the whole table.
    """
    from .. import tl

    sets = list(gene_sets) if gene_sets is not None else comparison_sets(adata, method=method)
    with warnings.catch_warnings():
        # conditions with one donor give NaN p-values; the table says so (n_samples)
        warnings.simplefilter("ignore", UserWarning)
        table = tl.compare_conditions(adata, value_key=sets, sample_key=sample_key, condition_key=condition_key,
                                      reference=reference, groupby=cell_type_key, score_key=f"noa_{method}",
                                      cell_type_key=cell_type_key, gene_symbols=gene_symbols)
    table = table.copy()
    table.insert(0, "score_method", method)
    return table


def enrichment(adata: AnnData, *, sample_key: str, condition_key: str, reference: str,
               cell_type_key: str = "noa_cell_type", gene_sets: Any = None, permutations: int = 200,
               min_size: int = 5, random_state: int = 0, gene_symbols: str | None = None) -> pd.DataFrame:
    """Donor-level pseudobulk pre-ranked enrichment per cell type (:func:`noa_omics.tl.enrichment`)."""
    from .. import tl

    return tl.enrichment(adata, sample_key=sample_key, condition_key=condition_key, reference=reference,
                         cell_type_key=cell_type_key, gene_sets=gene_sets, layer="counts",
                         n_permutations=permutations, min_size=min_size, random_state=random_state,
                         gene_symbols=gene_symbols)


def spatial(sdata: AnnData, *, sample_key: str, cell_type_key: str = "noa_cell_type",
            spatial_key: str = "spatial", score_key: str | None = None,
            obs_keys: Sequence[str] = ("donor", "condition"), random_state: int = 0, segment: bool = True
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tubule segmentation, per-tubule metrics and per-sample niche summary (in place).

    Runs :func:`noa_omics.spatial.assign_tubules` per sample (``obs["noa_tubule"]``),
    :func:`noa_omics.spatial.tubule_metrics` (with the Sertoli term of the niche-collapse index
    when ``score_key`` scores are given) and :func:`noa_omics.spatial.niche_summary`.

    Returns
    -------
    tuple of DataFrame
        ``(tubule_metrics, niche_summary)``, the tubule / sample id as a column.
    """
    from .. import spatial as noa_spatial

    check_adata(sdata, min_vars=0)
    check_obs_key(sdata, sample_key, what="spatial sample column")
    if segment:  # segment=False: obs["noa_tubule"] is already there (segmented per section)
        noa_spatial.assign_tubules(sdata, cell_type_key=cell_type_key, spatial_key=spatial_key, sample_key=sample_key)
    carry = [k for k in obs_keys if k in sdata.obs.columns and k != sample_key]
    tubules = noa_spatial.tubule_metrics(sdata, cell_type_key=cell_type_key, spatial_key=spatial_key,
                                         sample_key=sample_key, score_key=score_key, obs_keys=carry)
    niche = noa_spatial.niche_summary(sdata, sample_key=sample_key, cell_type_key=cell_type_key,
                                      spatial_key=spatial_key, metrics=tubules, random_state=random_state)
    tubules = tubules.rename_axis("tubule").reset_index()
    niche = niche.rename_axis(sample_key).reset_index()
    return tubules, niche


def multihit(adata: AnnData, *, sample_key: str, reference: str | None = None,
             condition_key: str | None = None, spatial_table: pd.DataFrame | None = None,
             method: str = "score_genes", gene_symbols: str | None = None, n_boot: int = 0,
             random_state: int = 0) -> pd.DataFrame:
    """Per-sample multi-hit profile (:func:`noa_omics.tl.multihit`).

    An axis that no ingredient can measure (e.g. too few cells of a type per donor) is NaN
    rather than an error (``allow_missing_axes=True``); the ``missing_ingredients`` column says
    why.
    """
    from .. import tl

    kwargs: dict[str, Any] = {"allow_missing_axes": True}
    if condition_key is not None:
        kwargs["condition_key"] = condition_key
    if spatial_table is not None:
        kwargs["spatial"] = spatial_table
    if n_boot:
        # the table of tl.multihit plus call stability (cell bootstrap + reference leave-one-out)
        with warnings.catch_warnings():
            # resamples repeat the full call's warnings (e.g. too few cells of a type)
            warnings.simplefilter("ignore", UserWarning)
            return tl.multihit_stability(adata, sample_key=sample_key, reference=reference, method=method,
                                         gene_symbols=gene_symbols, n_boot=n_boot, random_state=random_state,
                                         **kwargs)
    return tl.multihit(adata, sample_key=sample_key, reference=reference, method=method,
                       gene_symbols=gene_symbols, **kwargs)


#: Cell-bootstrap resamples of the multi-hit call stability in the pipeline (plus leave-one-out).
STABILITY_BOOT = 10


def composition(adata: AnnData, *, sample_key: str, condition_key: str, reference: str,
                cell_type_key: str = "noa_cell_type") -> pd.DataFrame:
    """Donor-level composition at the broad, fine and germ-stage levels
    (:func:`noa_omics.tl.compare_composition`), one table with a ``level`` column."""
    from .. import tl

    tables = []
    for level in ("broad", "fine", "germ_stage"):
        try:
            with warnings.catch_warnings():
                # conditions with one donor give NaN p-values, SCO donors have no germ stages: the table says so
                warnings.simplefilter("ignore", UserWarning)
                res = tl.compare_composition(adata, sample_key=sample_key, condition_key=condition_key,
                                             reference=reference, cell_type_key=cell_type_key, level=level)
        except ValueError as err:
            warnings.warn(f"composition at level {level!r} not compared: {err}", UserWarning, stacklevel=2)
            continue
        tables.append(res)
    if not tables:
        raise ValueError("no composition level could be compared; check the sample, condition and reference.")
    out = pd.concat(tables, ignore_index=True)
    out.attrs["counts"] = tables[0].attrs["counts"]
    out.attrs["params"] = tables[0].attrs["params"]
    return out
