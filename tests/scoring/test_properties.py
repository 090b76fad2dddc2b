"""Property-based tests of the scoring kernels against plain reference implementations.

Each test draws random small matrices (hypothesis, 200 examples each) with empty cells, genes
that are zero in every cell, constant genes and many ties (values on a small grid of dyadic
numbers, so sums and means are exact in float32 and float64 and the expected ranks are not
blurred by rounding), stored as CSR, CSC or dense float32/float64, and random gene sets. The
reference implementations below are written from the definitions (loops and ``scipy.stats``
ranks, no shared code with the numba kernels):

- ``aucell``: per cell, rank the genes expressed in at least one cell by decreasing value, ties
  broken by the fixed order ``default_rng(random_state).choice(m, m, replace=False)``; area under
  the step recovery curve of the set up to ``n_up`` (default :math:`\\max(2, \\lceil 0.05 m\\rceil)`),
  divided by its maximum.
- ``ucell``: average ranks of the positive values (``rankdata(method="average")``), capped at
  ``max_rank``; zeros rank ``max_rank``; :math:`U = 1 - (\\sum r - n(n+1)/2) / (n r_{max} - n(n+1)/2)`,
  clipped at 0.
- ``zmean``: mean over the set's non-constant genes of :math:`(x - \\mu)/\\sigma` (population SD).
- ``score_genes`` with every control gene of the set's expression bins (``ctrl_size`` larger than
  any bin, so no random draw): set mean minus control mean, bins from ``rankdata(means, "min") //
  round(n_genes / (n_bins - 1))``; and, with random draws, equality with ``scanpy.tl.score_genes``.
"""

from __future__ import annotations

import math
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import rankdata

import noa_omics as noa

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Values on a dyadic grid: exact sums; about half zeros; many ties.
VALUES = st.one_of(st.just(0.0), st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0, 3.0]))


@st.composite
def problems(draw, *, min_genes: int = 2, max_genes: int = 14, max_cells: int = 9, max_sets: int = 3):
    """(matrix as float64 ndarray, storage, dtype, sets as lists of column indices, seed)."""
    n_genes = draw(st.integers(min_genes, max_genes))
    n_cells = draw(st.integers(1, max_cells))
    x = draw(hnp.arrays(np.float64, (n_cells, n_genes), elements=VALUES, fill=st.nothing()))  # every entry drawn
    # empty cells and genes never detected, more often than chance would give them
    empty_rows = draw(st.lists(st.integers(0, n_cells - 1), max_size=max(1, n_cells // 3), unique=True))
    zero_genes = draw(st.lists(st.integers(0, n_genes - 1), max_size=max(1, n_genes // 3), unique=True))
    constant = draw(st.lists(st.integers(0, n_genes - 1), max_size=2, unique=True))
    x[empty_rows, :] = 0.0
    x[:, zero_genes] = 0.0
    for g in constant:
        x[:, g] = 1.0 if g not in zero_genes else 0.0
    gene_set = st.lists(st.integers(0, n_genes - 1), min_size=1, max_size=n_genes, unique=True)
    sets = draw(st.lists(gene_set, min_size=1, max_size=max_sets))
    storage = draw(st.sampled_from(["csr", "csc", "dense"]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**31 - 1))
    return x, storage, dtype, sets, seed


def _adata(x: np.ndarray, storage: str, dtype) -> ad.AnnData:
    stored = x.astype(dtype)
    if storage == "csr":
        stored = sp.csr_matrix(stored)
    elif storage == "csc":
        stored = sp.csc_matrix(stored)
    return ad.AnnData(
        stored,
        obs=pd.DataFrame(index=[f"c{i}" for i in range(x.shape[0])]),
        var=pd.DataFrame(index=[f"G{j}" for j in range(x.shape[1])]),
    )


def _named(sets: list[list[int]]) -> dict[str, list[str]]:
    return {f"s{k}": [f"G{g}" for g in genes] for k, genes in enumerate(sets)}


def _run(x, storage, dtype, sets, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return noa.tl.score(_adata(x, storage, dtype), _named(sets), min_genes=1, inplace=False, **kwargs)


def _check(x, storage, dtype, sets, expected: dict[str, np.ndarray] | None, *, atol: float, **kwargs) -> None:
    """``expected`` None: the engine must refuse the input with a ValueError."""
    if expected is None or not expected:
        event("refused with ValueError")
        with pytest.raises(ValueError):
            _run(x, storage, dtype, sets, **kwargs)
        return
    event("scored")
    got = _run(x, storage, dtype, sets, **kwargs)
    assert list(got.columns) == list(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(got[name].to_numpy(), values, rtol=0, atol=atol, err_msg=name)


# --------------------------------------------------------------------------------------------
# reference implementations


def ref_aucell(x: np.ndarray, sets: list[list[int]], seed: int, n_up: int | None = None):
    expressed = np.flatnonzero((x != 0).any(axis=0))
    m = expressed.size
    if m < 2:
        return None  # no recovery curve with fewer than 2 ranked genes: must be refused
    if n_up is None:
        n_up = min(max(2, math.ceil(0.05 * m)), m)
    tie = np.full(x.shape[1], -1)
    tie[expressed[np.random.default_rng(seed).choice(np.arange(m), m, replace=False)]] = np.arange(m)
    out = {}
    for k, genes in enumerate(sets):
        used = [g for g in genes if g in set(expressed.tolist())]
        if not used:
            continue  # dropped (no usable gene)
        scores = np.empty(x.shape[0])
        for i in range(x.shape[0]):
            if not (x[i] > 0).any():
                scores[i] = np.nan  # no expressed gene: no ranking, no score
                continue
            order = sorted(expressed.tolist(), key=lambda g: (-x[i, g], tie[g]))
            rank = {g: r for r, g in enumerate(order, start=1)}
            hits = sorted(rank[g] for g in used if rank[g] < n_up)
            # area under the step recovery curve: j set genes recovered from rank hits[j-1] on
            steps = [*hits, n_up]
            area = sum(j * (steps[j] - steps[j - 1]) for j in range(1, len(steps)))
            best = [*range(1, min(len(used), n_up - 1) + 1), n_up]
            max_area = sum(j * (best[j] - best[j - 1]) for j in range(1, len(best)))
            scores[i] = area / max_area
        out[f"s{k}"] = scores
    return out


def ref_ucell(x: np.ndarray, sets: list[list[int]], max_rank: int):
    ranks = np.full(x.shape, float(max_rank))
    for i in range(x.shape[0]):
        pos = x[i] > 0
        if pos.any():
            ranks[i, pos] = np.minimum(rankdata(-x[i, pos], method="average"), max_rank)
    out = {}
    for k, genes in enumerate(sets):
        n = len(genes)
        low, high = n * (n + 1) / 2, n * max_rank
        if high <= low:
            return None  # U undefined: must be refused
        u = 1 - (ranks[:, genes].sum(axis=1) - low) / (high - low)
        out[f"s{k}"] = np.maximum(u, 0.0)
    return out


def ref_zmean(x: np.ndarray, sets: list[list[int]]):
    mu, sd = x.mean(axis=0), x.std(axis=0)
    out = {}
    for k, genes in enumerate(sets):
        used = [g for g in genes if sd[g] > 0]
        if used:
            out[f"s{k}"] = ((x[:, used] - mu[used]) / sd[used]).mean(axis=1)
    return out


def ref_score_genes_all_controls(x: np.ndarray, sets: list[list[int]], n_bins: int):
    n_genes = x.shape[1]
    n_items = int(np.round(n_genes / (n_bins - 1)))
    # fewer genes than bins: scanpy's rank // 0 puts every gene in one bin
    cut = rankdata(x.mean(axis=0), method="min") // n_items if n_items else np.zeros(n_genes)
    out = {}
    for k, genes in enumerate(sets):
        bins = set(cut[genes].tolist())
        control = [g for g in range(n_genes) if cut[g] in bins and g not in genes]
        if not control:
            return None  # no control gene: must be refused
        out[f"s{k}"] = x[:, genes].mean(axis=1) - x[:, control].mean(axis=1)
    return out


# --------------------------------------------------------------------------------------------
# properties


@SETTINGS
@given(problems(min_genes=3), st.one_of(st.none(), st.integers(2, 4)))
def test_aucell_equals_the_recovery_curve_reference(problem, n_up):
    x, storage, dtype, sets, seed = problem
    expected = ref_aucell(x, sets, seed, n_up)
    m = int((x != 0).any(axis=0).sum())
    if n_up is not None and not 2 <= n_up <= m:
        expected = None  # n_up beyond the ranked genes: refused
    kwargs = {} if n_up is None else {"n_up": n_up}
    _check(x, storage, dtype, sets, expected, atol=1e-12, method="aucell", random_state=seed, **kwargs)
    if expected:
        got = _run(x, storage, dtype, sets, method="aucell", random_state=seed, **kwargs).to_numpy()
        scored = got[~np.isnan(got)]
        assert ((scored >= 0) & (scored <= 1)).all()
        assert np.isnan(got).all(axis=1).tolist() == (~(x > 0).any(axis=1)).tolist()


# max_rank 1-3 (the second branch): U often undefined, refused; 8-24: ranks beyond max_rank
# are capped; 1500: the default
CAPPED = st.sampled_from([8, 9, 12, 16, 24, 1500])


@SETTINGS
@given(problems(), st.one_of(CAPPED, st.integers(1, 3)))
def test_ucell_equals_the_mann_whitney_reference(problem, max_rank):
    x, storage, dtype, sets, _ = problem
    expected = ref_ucell(x, sets, max_rank)
    _check(x, storage, dtype, sets, expected, atol=1e-12, method="ucell", max_rank=max_rank)


@SETTINGS
@given(problems())
def test_zmean_equals_the_z_score_reference(problem):
    x, storage, dtype, sets, _ = problem
    _check(x, storage, dtype, sets, ref_zmean(x, sets), atol=1e-9, method="zmean")


@SETTINGS
@given(problems(min_genes=3, max_genes=16), st.integers(2, 6))
def test_score_genes_with_all_bin_genes_as_controls(problem, n_bins):
    x, storage, dtype, sets, seed = problem
    expected = ref_score_genes_all_controls(x, sets, n_bins)
    _check(x, storage, dtype, sets, expected, atol=1e-12, method="score_genes", random_state=seed,
           n_bins=n_bins, ctrl_size=x.shape[1] + 1)


@SETTINGS
@given(problems(min_genes=6, max_genes=24, max_sets=1), st.integers(2, 5), st.integers(1, 4))
def test_score_genes_equals_scanpy_with_random_controls(problem, n_bins, ctrl_size):
    import scanpy as sc

    x, storage, dtype, sets, seed = problem
    genes = [f"G{g}" for g in sets[0]]
    adata = _adata(x, storage, np.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.tl.score_genes(adata, genes, ctrl_size=ctrl_size, n_bins=n_bins, random_state=seed % 2**31,
                              use_raw=False)
    except (ValueError, RuntimeError):  # scanpy: no control genes (RuntimeError in scanpy 1.11)
        event("refused with ValueError")
        with pytest.raises(ValueError):
            _run(x, storage, np.float64, sets, method="score_genes", random_state=seed % 2**31, n_bins=n_bins,
                 ctrl_size=ctrl_size)
        return
    event("scored")
    got = _run(x, storage, np.float64, sets, method="score_genes", random_state=seed % 2**31, n_bins=n_bins,
               ctrl_size=ctrl_size)
    np.testing.assert_allclose(got["s0"].to_numpy(), adata.obs["score"].to_numpy(), rtol=0, atol=1e-12)
