r"""Marker-based annotation of testis cells into the 12 noa-omics cell types (:func:`annotate_testis`).

Default algorithm (``method="likelihood"``): count likelihood
----------------------------------------------------------------
Shallow data (Slide-seq beads, Visium HD bins, 150-400 UMI) are counts, so cells are called by
the likelihood of their counts (details and formulas in :mod:`noa_omics.celltypes._likelihood`):

1. **Counts.** Raw counts are used as they are (a sparse copy); log-normalised input
   :math:`x = \log(1 + s\,y/n)` is turned back into counts (:math:`(e^x - 1)` divided by its
   smallest non-zero value per cell).
2. **Marker check.** Split-set marker enrichment :math:`e` (markers of a set co-expressed in the
   cells that express the other half of the set). When :math:`e < 1.25` (noise gives 1.0) the
   markers carry no signal: every cell is ``other`` with a warning.
3. **Start.** Naive marker scores (mean per-gene z-score of the log-normalised ``marker_<type>``
   genes), smoothed over the kNN graph, argmax.
4. **EM of a multinomial mixture over all genes** with an ambient floor
   :math:`p_k = 0.95\,q_k + 0.05\,a` (:math:`a`: pooled profile), profiles
   :math:`q_k` re-estimated from the posteriors (8 iterations), and neighbour priors

   .. math::

       R_{ck} \propto \pi_k \exp\Bigl(\ell_{ck} + w_g \log(arepsilon + (P_g R)_{ck})
       + w_s \log(arepsilon + (P_s R C)_{ck})\Bigr),\qquad \ell_{ck} = \sum_g y_{cg}\log p_{kg},

   :math:`P_g` the row-normalised expression kNN graph (weight ``graph_weight`` = 1), :math:`P_s`
   the row-normalised spatial neighbour graph of ``obsm[spatial_key]``
   (``squidpy.gr.spatial_neighbors``, 6 nearest neighbours; weight ``spatial_weight`` = 1) applied
   to the posterior summed within broad class (:math:`C_{k'k} = [	ext{class}(k') =
   	ext{class}(k)]`: neighbouring beads share the compartment, not the germ stage),
   :math:`arepsilon = 0.05`. Each neighbour term is bounded by :math:`w \log 21 pprox 3w`
   nats, so it decides shallow cells and is outweighed by the cell's own counts at normal depth.
5. **Call and confidence.** Label :math:`rg\max_k R_{ck}`; confidence is the posterior of the
   call with the likelihood tempered, :math:`\mathrm{softmax}_k(\ell_{ck}/T + 	ext{prior}_{ck})`,
   :math:`T = 6`: genes are not independent given the type (continuum, shared programmes), and the
   untempered multinomial posterior is over-confident (mean 0.99 at 150 UMI where accuracy is
   0.77); with :math:`T = 6` the mean confidence is within ~0.1 of the accuracy at 150-500 UMI
   on two simulators (``docs/celltypes.md``). Germ position: posterior-weighted stage index.

The marker-score methods of v0.1 (``method`` = a :func:`noa.tl.score` method) follow.

Marker-score methods
--------------------
1. **Expression.** Raw counts are normalised to 10,000 per cell and ``log1p``-transformed on a
   copy (the user's matrix is never modified); log-normalised input is used as is.
2. **Marker scores.** The curated ``marker_<cell type>`` sets of :func:`noa.genesets.load` are
   scored with :func:`noa.tl.score` (default ``method="score_genes"``): matrix
   :math:`M \in \mathbb R^{n \times K}`.
3. **Graph smoothing.** Germ stages form a continuum and single cells are shallow, so a cell's
   scores are averaged with its neighbours' on the kNN graph (``obsp["connectivities"]``, or a
   temporary exact PCA kNN graph when there is none). With :math:`P = D^{-1}W` the row-normalised
   connectivities, ``n_smooth`` steps of :math:`S \leftarrow (1-\alpha) M + \alpha P S`
   (:math:`S_0 = M`; Zhou et al. 2004 label spreading) give the smoothed scores.
4. **Cluster smoothing** (optional, ``cluster_key``): :math:`S \leftarrow (1-\beta) S + \beta
   \bar S_{\text{cluster}}`.
5. **Per-set standardisation.** Marker sets differ in size and expression level, so raw scores
   are not comparable across sets. Each set :math:`k` is rescaled so that the median cell of type
   :math:`k` scores 1 and the median other cell 0:
   :math:`N_{ck} = (S_{ck} - \mathrm{med}_{c \notin k} S_{ck}) / (\mathrm{med}_{c \in k} S_{ck} -
   \mathrm{med}_{c \notin k} S_{ck})`, with the cell-type memberships taken from the previous
   argmax (two passes). A type with fewer than ``min_type_cells`` cells gets the median scale of
   the other sets, so an absent type (e.g. germ cells in a Sertoli-cell-only sample) is not
   amplified from noise.
6. **Call.** Label = :math:`\arg\max_k N_{ck}`.
7. **Germ-stage ordering.** For cells called germ, a continuous stage position
   :math:`\tau_c = \sum_s s\, \mathrm{softmax}(\beta N_{c,\cdot})_s` over the five stages in
   developmental order (:math:`\beta = 10`), smoothed once more over the graph, and the stage is
   the nearest integer. Neighbouring-stage confusions are reduced and stage calls cannot jump
   across the continuum.
8. **Confidence and "other".** :math:`\text{confidence}_c = \mathrm{clip}(\min(N_{c,\text{top}},
   N_{c,\text{top}} - \max(0, N_{c,\text{other class}})), 0, 1)`: the evidence for the called
   type and its margin over the best type of another broad class (neighbouring germ stages are
   not competitors). Cells below ``min_confidence`` and cells without any counts are ``other``
   (confidence 0).

Fine-type accuracy on the simulated ``noa.datasets.demo_testis`` cohort is reported in
``docs/celltypes.md``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._validation import _preview, check_adata, check_obs_key, check_species
from .._vocabulary import CELL_CLASSES, CELL_TYPE_TO_CLASS, CELL_TYPES, GERM_STAGES
from ._likelihood import (
    LIKELIHOOD_DEFAULTS,
    _softmax,
    count_matrix,
    fit_mixture,
    log_normalise,
    marker_support,
    row_normalise,
    zmean_scores,
)
from ._panels import warn_panel as _warn_panel
from .._identifiers import symbol_view
from .._stream import log1p_cp10k
from ._utils import expression_matrix, log_normalized_view, looks_like_counts

#: Annotation methods: the count likelihood (default) or a marker score of :func:`noa.tl.score`.
METHODS: tuple[str, ...] = ("likelihood", "score_genes", "zmean", "aucell", "ucell")

MARKER_PREFIX = "marker_"
DEFAULTS: dict[str, Any] = {
    "alpha": 0.7,
    "n_smooth": 3,
    "cluster_weight": 0.5,
    "stage_beta": 10.0,
    "min_type_cells": 10,
    "n_neighbors": 15,
    "n_pcs": 30,
    "n_spatial_neighbors": 6,
}


def _marker_sets(species: str, var_names: pd.Index, min_genes: int) -> tuple[dict[str, list[str]], str, dict]:
    from ..genesets import load

    library = load(species)
    markers = library.filter(category="marker")
    present = set(var_names)
    used: dict[str, list[str]] = {}
    coverage = {}
    for name, gene_set in markers.items():
        cell_type = name[len(MARKER_PREFIX):] if name.startswith(MARKER_PREFIX) else None
        if cell_type not in CELL_TYPES:
            continue
        genes = [g for g in gene_set.genes if g in present]
        coverage[cell_type] = (len(genes), len(gene_set.genes))
        if len(genes) >= min_genes:
            used[cell_type] = genes
    if not any(n for n, _ in coverage.values()):
        raise ValueError(
            f"none of the curated {species} marker genes (e.g. {list(markers.values())[0].genes[:4]}) is in "
            f"`adata.var_names` (e.g. {_preview(var_names[:5])}); pass `species=` matching the data, or "
            "`gene_symbols=` naming the `adata.var` column with gene symbols."
        )
    dropped = {t: c for t, c in coverage.items() if t not in used}
    if dropped:
        warnings.warn(
            f"marker sets with fewer than {min_genes} genes in the data were left out (cell types that cannot be "
            f"called): {dropped} (genes found, genes in set).",
            UserWarning,
            stacklevel=3,
        )
    if len(used) < 2:
        raise ValueError(
            f"only {len(used)} marker set(s) have at least {min_genes} genes in the data; annotation needs at least "
            "two. Check the gene identifiers (`species=`, `gene_symbols=`)."
        )
    return used, str(library.version), coverage


def _transition(graph: sp.spmatrix) -> sp.csr_matrix:
    graph = sp.csr_matrix(graph, dtype=np.float64)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    inv = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    return sp.diags(inv) @ graph


def _smooth(values: np.ndarray, transition: sp.csr_matrix, alpha: float, n_steps: int) -> np.ndarray:
    smoothed = values.copy()
    isolated = np.asarray(transition.sum(axis=1)).ravel() == 0
    for _ in range(int(n_steps)):
        smoothed = (1 - alpha) * values + alpha * (transition @ smoothed)
        smoothed[isolated] = values[isolated]
    return smoothed


def _knn_graph(view: AnnData, n_neighbors: int, n_pcs: int, random_state: int) -> sp.csr_matrix:
    import scanpy as sc

    work = AnnData(X=view.X, obs=pd.DataFrame(index=view.obs_names), var=pd.DataFrame(index=view.var_names))
    n_comps = int(max(2, min(n_pcs, work.n_obs - 1, work.n_vars - 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if work.n_vars > 3000:
            sc.pp.highly_variable_genes(work, n_top_genes=2000)
            work = work[:, work.var["highly_variable"].to_numpy()].copy()
        sc.pp.pca(work, n_comps=n_comps, random_state=random_state)
    return _binary_knn(work.obsm["X_pca"], min(n_neighbors, work.n_obs - 1), random_state)


def _binary_knn(embedding: np.ndarray, n_neighbors: int, random_state: int) -> sp.csr_matrix:
    """Symmetric 0/1 kNN graph without self loops; exact for small data, seeded pynndescent for
    large (one rule: :mod:`noa_omics._knn`)."""
    from .._knn import knn

    indices, _, _ = knn(embedding, n_neighbors + 1, random_state=random_state)  # column 0: the cell
    n = indices.shape[0]
    rows = np.repeat(np.arange(n), indices.shape[1] - 1)
    graph = sp.csr_matrix((np.ones(rows.size), (rows, indices[:, 1:].ravel())), shape=(n, n))
    graph.setdiag(0)
    graph.eliminate_zeros()
    graph.data[:] = 1.0
    return sp.csr_matrix(graph.maximum(graph.T))


def _standardise(scores: np.ndarray, labels: np.ndarray, min_type_cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_sets = scores.shape[1]
    negative = np.empty(n_sets)
    positive = np.full(n_sets, np.nan)
    for k in range(n_sets):
        inside = labels == k
        outside = scores[~inside, k]
        negative[k] = np.median(outside) if len(outside) else np.median(scores[:, k])
        if inside.sum() >= min_type_cells:
            positive[k] = np.median(scores[inside, k])
    scale = positive - negative
    good = np.isfinite(scale) & (scale > 0)
    fallback = np.median(scale[good]) if good.any() else max(float(np.std(scores)), 1e-6)
    scale = np.where(good, scale, fallback)
    return (scores - negative) / scale, negative, scale


def annotate_testis(
    adata: AnnData,
    *,
    key_added: str = "noa_cell_type",
    class_key: str = "noa_cell_class",
    species: str | None = None,
    layer: str | None = None,
    gene_symbols: str | None = None,
    method: str = "likelihood",
    cluster_key: str | None = None,
    spatial_key: str | None = "spatial",
    spatial_weight: float = 1.0,
    graph_weight: float = 1.0,
    use_graph: bool = True,
    graph_key: str = "connectivities",
    min_confidence: float = 0.0,
    min_genes: int = 3,
    random_state: int = 0,
    inplace: bool = True,
) -> pd.Series:
    r"""Label every cell with one of the 12 noa-omics cell types from curated marker sets.

    See the module docstring for the algorithm (count likelihood with neighbour priors by
    default; marker scores, kNN-graph smoothing, per-set standardisation with ``method`` a scorer).
    On a targeted panel (at most 2,000 genes) a warning names the types lacking core markers
    (:func:`noa.tl.panel_coverage`).

    Parameters
    ----------
    adata
        Cells x genes; raw counts (normalised here on a copy) or log-normalised values in ``X`` or
        ``layers[layer]``.
    key_added
        ``obs`` column for the fine type; the confidence goes to ``obs[key_added + "_confidence"]``,
        the germ-stage position to ``obs[key_added + "_germ_position"]`` and the run's parameters
        to ``uns[key_added]``.
    class_key
        ``obs`` column for the broad class (:data:`~noa_omics._vocabulary.CELL_TYPE_TO_CLASS`).
    species
        ``"human"`` or ``"mouse"``; detected from the gene names when None.
    layer
        Layer holding the expression (default ``X``; ``"raw"``: ``adata.raw.X``).
    gene_symbols
        ``adata.var`` column with gene symbols when ``var_names`` are other identifiers; None
        uses ``var_names`` or, for Ensembl ids, the well-known symbol column (e.g. CELLxGENE's
        ``feature_name``; see :mod:`noa_omics._identifiers`).
    method
        ``"likelihood"`` (default): count likelihood under marker-informed, data-refined cell-type
        profiles (module docstring). Or a scoring method of :func:`noa.tl.score` (``score_genes``,
        ``zmean``, ``aucell``, ``ucell``) for the v0.1 marker-score annotation.
    cluster_key
        Optional ``obs`` column with clusters (e.g. ``"leiden"``). Likelihood: the cluster's mean
        posterior is one more neighbour prior (weight 1). Marker scores: each cell's scores are
        blended half-and-half with its cluster's mean scores.
    spatial_key
        ``obsm`` key of spatial coordinates. When present (and ``method="likelihood"``), the
        spatial neighbours' posteriors (summed within broad class) are a prior with weight
        ``spatial_weight`` (formula in the module docstring). None: ignore coordinates.
    spatial_weight
        Weight :math:`w_s` of the spatial neighbour prior (default 1; 0 turns it off).
    graph_weight
        Weight :math:`w_g` of the expression-kNN neighbour prior (default 1).
    use_graph
        Use the kNN graph ``obsp[graph_key]``; when that graph is absent, a temporary one is built
        (PCA with 30 components on the log-normalised expression, exact 15-nearest-neighbour graph;
        ``adata`` is not modified).
    graph_key
        ``obsp`` key of the cell-cell connectivities.
    min_confidence
        Cells with a lower confidence (0..1) are labelled ``other``. Whatever its value, cells
        without counts are ``other``, and when the marker genes carry no signal at all (pure
        noise; split-set marker enrichment below 1.25) every cell is ``other``, with a warning.
    min_genes
        Marker sets with fewer genes present in the data are left out (with a warning).
    random_state
        Seed for the scorer's control genes and the temporary graph.
    inplace
        Write the results into ``adata.obs`` / ``adata.uns``; with False nothing is written.

    Returns
    -------
    pandas.Series
        Categorical fine cell types (categories :data:`~noa_omics._vocabulary.CELL_TYPES`) indexed
        like ``adata.obs``, named ``key_added``.

    Raises
    ------
    ValueError
        When no marker gene is found in the data (wrong species or identifiers) or fewer than two
        marker sets are usable.

    References
    ----------
    Zhou D et al. (2004) Learning with local and global consistency. NIPS 16. Marker genes:
    ``genesets/marker_*.yaml`` (Guo 2018 Cell Res; Green 2018 Dev Cell; Hermann 2018 Cell Rep).
    """
    from ..scoring import score

    check_adata(adata)
    species = check_species(species)
    check_obs_key(adata, cluster_key, what="cluster column", allow_none=True)
    if not 0 <= float(min_confidence) <= 1:
        raise ValueError(f"`min_confidence` must be between 0 and 1, got {min_confidence}.")
    if method not in METHODS:
        raise ValueError(f"unknown annotation `method` {method!r}; choose one of {list(METHODS)}.")
    for name, value in (("spatial_weight", spatial_weight), ("graph_weight", graph_weight)):
        if not np.isfinite(float(value)) or float(value) < 0:
            raise ValueError(f"`{name}` must be a non-negative number, got {value}.")
    # identifiers by the package rule (noa_omics._identifiers): symbols as the view's var_names
    if method == "likelihood":
        # the mixture reads the counts; the view only names the genes (no normalised copy of the
        # matrix: at 10^6 cells that copy is gigabytes)
        view, _, layout = symbol_view(adata, layer=layer, gene_symbols=gene_symbols, stacklevel=4)
        normalised = looks_like_counts(layout.matrix)
    else:
        view, normalised = log_normalized_view(adata, layer, gene_symbols=gene_symbols)
    if species is None:
        from ..genesets import detect_species

        species = detect_species(list(view.var_names))
        if species is None:
            raise ValueError(
                "could not detect the species from the gene names; pass species='human' or 'mouse' "
                "(and `gene_symbols=` if var_names are not gene symbols)."
            )
    markers, version, coverage = _marker_sets(species, view.var_names, min_genes)
    _warn_panel(view.var_names, species, coverage)
    if method == "likelihood":
        return _annotate_likelihood(
            adata, view, normalised, markers, version, coverage, key_added=key_added, class_key=class_key,
            species=species, layer=layer, gene_symbols=gene_symbols, cluster_key=cluster_key,
            spatial_key=spatial_key, spatial_weight=spatial_weight, graph_weight=graph_weight, use_graph=use_graph,
            graph_key=graph_key, min_confidence=min_confidence, min_genes=min_genes, random_state=random_state,
            inplace=inplace,
        )
    types = list(markers)
    raw = score(
        view,
        {f"{MARKER_PREFIX}{t}": g for t, g in markers.items()},
        method=method,
        species=species,
        random_state=random_state,
        min_genes=min(min_genes, min(len(g) for g in markers.values())),
        inplace=False,
    )
    unscored = [t for t in types if f"{MARKER_PREFIX}{t}" not in raw.columns]
    if unscored:  # dropped by the scorer (e.g. constant genes); those types cannot be called
        types = [t for t in types if t not in unscored]
        markers = {t: markers[t] for t in types}
        if len(types) < 2:
            raise ValueError(f"the scorer returned fewer than two marker sets (missing: {unscored}); check the data.")
    scores = raw[[f"{MARKER_PREFIX}{t}" for t in types]].to_numpy(dtype=np.float64)
    scores = np.nan_to_num(scores, nan=0.0)
    empty = _empty_cells(expression_matrix(adata, layer))

    transition = None
    graph_source = None
    # the graph needs cells with counts: PCA of an all-zero matrix fails (ARPACK), and empty cells
    # are labelled 'other' whatever their neighbours
    if use_graph and int((~empty).sum()) > 2:
        if graph_key in adata.obsp:
            transition = _transition(adata.obsp[graph_key])
            graph_source = f"obsp[{graph_key!r}]"
        else:
            transition = _transition(_knn_graph(view, DEFAULTS["n_neighbors"], DEFAULTS["n_pcs"], random_state))
            graph_source = "computed (PCA kNN, not stored)"
    smoothed = scores if transition is None else _smooth(scores, transition, DEFAULTS["alpha"], DEFAULTS["n_smooth"])
    if cluster_key is not None:
        clusters = adata.obs[cluster_key].astype(str).to_numpy()
        cluster_mean = pd.DataFrame(smoothed).groupby(clusters).transform("mean").to_numpy()
        beta = DEFAULTS["cluster_weight"]
        smoothed = (1 - beta) * smoothed + beta * cluster_mean

    labels = smoothed.argmax(axis=1)
    for _ in range(2):
        standard, negative, scale = _standardise(smoothed, labels, DEFAULTS["min_type_cells"])
        labels = standard.argmax(axis=1)

    type_names = np.array(types, dtype=object)
    called = type_names[labels]
    position = np.full(adata.n_obs, np.nan)
    germ_columns = [types.index(s) for s in GERM_STAGES if s in types]
    is_germ = np.isin(called, GERM_STAGES)
    if len(germ_columns) >= 2 and is_germ.any():
        called, position = _order_germ_stages(standard, called, is_germ, germ_columns, types, transition)

    confidence = _confidence(standard, called, types)
    confidence[empty] = 0.0
    other = empty | (confidence <= 0) | (confidence < float(min_confidence))
    called = np.where(other, "other", called)
    position[other | ~np.isin(called, GERM_STAGES)] = np.nan

    result = pd.Series(pd.Categorical(called, categories=list(CELL_TYPES)), index=adata.obs_names, name=key_added)
    if inplace:
        adata.obs[key_added] = result
        adata.obs[class_key] = pd.Categorical(
            [CELL_TYPE_TO_CLASS[t] for t in called], categories=list(CELL_CLASSES)
        )
        adata.obs[f"{key_added}_confidence"] = confidence
        adata.obs[f"{key_added}_germ_position"] = position
        adata.uns[key_added] = {
            "params": {
                "species": species,
                "layer": layer,
                "gene_symbols": gene_symbols,
                "method": method,
                "cluster_key": cluster_key,
                "use_graph": bool(use_graph),
                "graph": graph_source,
                "min_confidence": float(min_confidence),
                "min_genes": int(min_genes),
                "random_state": random_state,
                "normalised_here": bool(normalised),
                **{k: v for k, v in DEFAULTS.items()},
            },
            "geneset_version": version,
            "marker_genes": {t: list(g) for t, g in markers.items()},
            "marker_coverage": {t: list(c) for t, c in coverage.items()},
            "standardisation": {
                "cell_type": types,
                "negative_median": negative.tolist(),
                "scale": scale.tolist(),
            },
            "class_key": class_key,
        }
    return result


def _spatial_graph(adata: AnnData, spatial_key: str | None, n_neighs: int) -> sp.csr_matrix | None:
    """Row-normalised spatial neighbour graph (``squidpy.gr.spatial_neighbors``, generic kNN), or None."""
    if spatial_key is None or spatial_key not in adata.obsm:
        return None
    import squidpy as sq

    coords = np.asarray(adata.obsm[spatial_key], dtype=np.float64)[:, :2]
    if coords.shape[0] < 3 or not np.isfinite(coords).all():
        return None
    work = AnnData(obs=pd.DataFrame(index=np.arange(coords.shape[0]).astype(str)))
    work.obsm["spatial"] = coords
    import logging

    logger = logging.getLogger("spatialdata._logging")  # squidpy logs one INFO line per call through it
    level = logger.level
    try:
        logger.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sq.gr.spatial_neighbors(work, coord_type="generic", n_neighs=min(n_neighs, coords.shape[0] - 1))
    finally:
        logger.setLevel(level)
    return row_normalise(work.obsp["spatial_connectivities"])


class _ClassPrior:
    """Operator ``R -> P (R C)``: neighbours' posterior mass on each type's broad class.

    Spatial neighbours share the compartment (tubule epithelium vs interstitium) more than the fine
    type: germ stages are layered radially, so a bead's neighbours are other stages. ``C`` sums the
    posterior over the types of one broad class (:data:`~noa_omics._vocabulary.CELL_TYPE_TO_CLASS`).
    """

    def __init__(self, graph: sp.csr_matrix, types: list[str]):
        classes = np.array([CELL_TYPE_TO_CLASS[t] for t in types], dtype=object)
        self.graph = graph
        self.same_class = (classes[:, None] == classes[None, :]).astype(np.float64)

    def __matmul__(self, resp: np.ndarray) -> np.ndarray:
        return np.asarray(self.graph @ (resp @ self.same_class))


def _cluster_prior(clusters: np.ndarray):
    """Operator ``R -> mean of R over each cell's cluster`` (no n x n matrix)."""
    codes, uniques = pd.factorize(clusters)
    member = sp.csr_matrix((np.ones(len(codes)), (np.arange(len(codes)), codes)), shape=(len(codes), len(uniques)))
    sizes = np.asarray(member.sum(axis=0)).ravel()

    class _Op:
        def __matmul__(self, resp):
            return member @ (np.asarray(member.T @ resp) / sizes[:, None])

    return _Op()


def _annotate_likelihood(
    adata: AnnData,
    view: AnnData,
    normalised: bool,
    markers: dict[str, list[str]],
    version: str,
    coverage: dict,
    *,
    key_added: str,
    class_key: str,
    species: str,
    layer: str | None,
    gene_symbols: str | None,
    cluster_key: str | None,
    spatial_key: str | None,
    spatial_weight: float,
    graph_weight: float,
    use_graph: bool,
    graph_key: str,
    min_confidence: float,
    min_genes: int,
    random_state: int,
    inplace: bool,
) -> pd.Series:
    opts = LIKELIHOOD_DEFAULTS
    counts = count_matrix(expression_matrix(adata, layer), normalised)
    empty = np.asarray(counts.sum(axis=1)).ravel() <= 0
    if empty.any():
        warnings.warn(f"{int(empty.sum())} of {len(empty)} cell(s) have zero counts: they are labelled 'other' "
                      "with confidence 0.", UserWarning, stacklevel=3)
    index = {g: i for i, g in enumerate(view.var_names)}
    all_types = list(markers)
    sets = [np.array([index[g] for g in markers[t]]) for t in all_types]
    pooled, enrichment = marker_support(counts, sets, DEFAULTS["min_type_cells"])
    types = all_types if pooled >= opts["min_enrichment"] else []
    if not types:
        warnings.warn(
            f"the marker genes carry no cell-type signal in these data (split-set marker enrichment {pooled:.2f}, "
            f"needed >= {opts['min_enrichment']}; 1 means markers are not co-expressed, as in noise): every cell is "
            "labelled 'other'. Check that the matrix holds testis expression and the gene identifiers.",
            UserWarning,
            stacklevel=3,
        )
    sets = sets if types else []
    transition, graph_source, spatial, graphs = None, None, None, []
    if len(types) >= 2 and int((~empty).sum()) > 2:
        if use_graph:
            if graph_key in adata.obsp:
                transition = row_normalise(adata.obsp[graph_key])
                graph_source = f"obsp[{graph_key!r}]"
            else:
                expression = view
                if normalised:  # raw counts: the graph is built on their log-normalised values
                    expression = AnnData(X=log1p_cp10k(expression_matrix(adata, layer)),
                                         obs=pd.DataFrame(index=view.obs_names), var=pd.DataFrame(index=view.var_names))
                transition = row_normalise(_knn_graph(expression, DEFAULTS["n_neighbors"], DEFAULTS["n_pcs"],
                                                      random_state))
                graph_source = "computed (PCA kNN, not stored)"
            graphs.append((transition, float(graph_weight)))
        spatial = _spatial_graph(adata, spatial_key, DEFAULTS["n_spatial_neighbors"])
        if spatial is not None:
            graphs.append((_ClassPrior(spatial, types), float(spatial_weight)))
        if cluster_key is not None:
            graphs.append((_cluster_prior(adata.obs[cluster_key].astype(str).to_numpy()), 1.0))

    n_types = len(types)
    posterior = np.zeros((adata.n_obs, len(all_types)))
    if n_types >= 2:
        start_scores = zmean_scores(log_normalise(counts), sets)
        for graph, weight in graphs:
            if weight > 0 and sp.issparse(graph):
                start_scores = _smooth(start_scores, graph, DEFAULTS["alpha"], DEFAULTS["n_smooth"])
        start = np.eye(n_types)[start_scores.argmax(axis=1)]
        resp, loglik, log_prior, emission = fit_mixture(
            counts, start, graphs, n_iter=opts["n_iter"], pseudocount=opts["pseudocount"],
            ambient_floor=opts["ambient_floor"], prior_epsilon=opts["prior_epsilon"],
        )
        own = resp.argmax(axis=1)
        calibrated = _softmax(loglik / opts["temperature"] + log_prior)
        posterior[:] = calibrated
        called = np.array(types, dtype=object)[own]
        confidence = calibrated[np.arange(adata.n_obs), own]
    else:
        called = np.full(adata.n_obs, "other", dtype=object)
        confidence = np.zeros(adata.n_obs)
    confidence[empty] = 0.0
    other = empty | (confidence <= 0) | (confidence < float(min_confidence))
    called = np.where(other, "other", called)
    position = _germ_position(posterior, all_types, called)

    result = pd.Series(pd.Categorical(called, categories=list(CELL_TYPES)), index=adata.obs_names, name=key_added)
    if inplace:
        _write(adata, result, called, confidence, position, key_added=key_added, class_key=class_key)
        adata.uns[key_added] = {
            "params": {
                "species": species, "layer": layer, "gene_symbols": gene_symbols, "method": "likelihood",
                "cluster_key": cluster_key, "use_graph": bool(use_graph), "graph": graph_source,
                "graph_weight": float(graph_weight), "spatial_key": spatial_key if spatial is not None else None,
                "spatial_weight": float(spatial_weight) if spatial is not None else 0.0,
                "min_confidence": float(min_confidence), "min_genes": int(min_genes), "random_state": random_state,
                "normalised_here": bool(normalised), **dict(DEFAULTS), **dict(opts),
            },
            "geneset_version": version,
            "marker_genes": {t: list(g) for t, g in markers.items()},
            "marker_coverage": {t: list(c) for t, c in coverage.items()},
            "marker_enrichment": {"pooled": float(pooled), **{t: float(e) for t, e in zip(all_types, enrichment)}},
            "class_key": class_key,
        }
    return result


def _germ_position(posterior: np.ndarray, types: list[str], called: np.ndarray) -> np.ndarray:
    """Posterior-weighted stage index (0 SSC .. 4 elongating) of the cells called germ; NaN otherwise."""
    columns = [types.index(s) for s in GERM_STAGES if s in types]
    stages = np.array([GERM_STAGES.index(s) for s in GERM_STAGES if s in types], dtype=np.float64)
    position = np.full(len(called), np.nan)
    germ = np.isin(called, GERM_STAGES)
    if columns and germ.any():
        weights = posterior[germ][:, columns]
        total = weights.sum(axis=1)
        position[germ] = np.divide(weights @ stages, total, out=np.full(total.shape, np.nan), where=total > 0)
    return position


def _write(adata, result, called, confidence, position, *, key_added, class_key) -> None:
    adata.obs[key_added] = result
    adata.obs[class_key] = pd.Categorical([CELL_TYPE_TO_CLASS[t] for t in called], categories=list(CELL_CLASSES))
    adata.obs[f"{key_added}_confidence"] = confidence
    adata.obs[f"{key_added}_germ_position"] = position


def _empty_cells(matrix: Any) -> np.ndarray:
    if sp.issparse(matrix):
        # read the stored values only: abs()/astype() of a scipy matrix sort its indices in place
        csr = matrix if matrix.format == "csr" else sp.csr_matrix(matrix)
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
        return np.bincount(rows, weights=(csr.data != 0), minlength=csr.shape[0]) == 0
    return ~np.asarray(matrix != 0).any(axis=1)


def _order_germ_stages(
    standard: np.ndarray,
    called: np.ndarray,
    is_germ: np.ndarray,
    germ_columns: list[int],
    types: list[str],
    transition: sp.csr_matrix | None,
) -> tuple[np.ndarray, np.ndarray]:
    stages = np.array([types[c] for c in germ_columns], dtype=object)
    logits = DEFAULTS["stage_beta"] * standard[:, germ_columns]
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    weights /= weights.sum(axis=1, keepdims=True)
    position = weights @ np.arange(len(stages), dtype=np.float64)
    if transition is not None:
        # smooth the position among germ neighbours only (somatic neighbours carry no stage)
        germ_graph = transition.multiply(is_germ[None, :]).tocsr()
        germ_graph = _transition(germ_graph)
        position = _smooth(position[:, None], germ_graph, DEFAULTS["alpha"], 1)[:, 0]
    stage_index = np.clip(np.rint(position), 0, len(stages) - 1).astype(int)
    called = np.where(is_germ, stages[stage_index], called)
    return called, np.where(is_germ, position, np.nan)


def _confidence(standard: np.ndarray, called: np.ndarray, types: list[str]) -> np.ndarray:
    classes = np.array([CELL_TYPE_TO_CLASS[t] for t in types], dtype=object)
    index = {t: i for i, t in enumerate(types)}
    own = np.array([index[t] for t in called])
    top = standard[np.arange(len(called)), own]
    own_class = classes[own]
    competitor = np.where(classes[None, :] == own_class[:, None], -np.inf, standard).max(axis=1)
    competitor = np.where(np.isfinite(competitor), np.maximum(competitor, 0.0), 0.0)
    return np.clip(np.minimum(top, top - competitor), 0.0, 1.0)
