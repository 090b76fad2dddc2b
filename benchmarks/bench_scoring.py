"""Benchmark ``noa.tl.score`` against its peers (not a test).

Data: log-normalised sparse CSR (float32), 20,000 genes, about 1,200 detected genes per cell
(Bernoulli detection with log-normal gene weights, counts 1 + Poisson, ``log1p(counts / library
* 1e4)``), 20 random gene sets of 50 genes. Larger matrices repeat four distinct 5,000-cell
blocks with a per-cell rescaling of the values (``log1p(expm1(x) * f)``, ``f`` log-normal), so a
million cells are generated in seconds, chunk by chunk into preallocated arrays.

Fair timing: every side is warmed up first (our numba kernels compiled, and each peer run once
on a 300-cell matrix, so its imports, numba/joblib start-up and caches are paid before timing);
then our time and the peer's time are each the MEDIAN of ``--repeats`` runs, the runs of one
method interleaved with its peer's. Per method: both medians, the speed-up, the largest
absolute difference from the peer, and our time as a multiple of the bare sparse product
``X @ W`` (``W``: genes x sets, scipy CSR product, median of the same number of runs, measured in
the same process just before each method so machine load affects both alike). Then a scaling
table (time per cell) at 50,000 / 200,000 / 1,000,000 cells (``--quick`` skips the million;
``--scaling`` with no value skips the table). The output starts with the machine's load
average: on a shared machine, compare ratios to ``X @ W`` rather than seconds.

Peers: ``scanpy.tl.score_genes`` (one call per set, ``random_state=0``), ``decoupler.mt.aucell``,
``pyucell.compute_ucell_scores`` (defaults: ``n_jobs=-1``), and for ``zmean`` a dense numpy
computation of the z-scores of the set genes.

Usage::

    python benchmarks/bench_scoring.py [--quick] [--cells 20000] [--repeats 3] [--out table.md]
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import platform
import resource
import time
import warnings
from collections.abc import Callable

import anndata as ad
import numba
import numpy as np
import pandas as pd
import scipy
import scipy.sparse as sp

import noa_omics as noa

METHODS = ("score_genes", "aucell", "ucell", "zmean")
PEERS = {
    "score_genes": "scanpy.tl.score_genes",
    "aucell": "decoupler.mt.aucell",
    "ucell": "pyucell.compute_ucell_scores",
    "zmean": "numpy (dense z-scores)",
}
BLOCK_CELLS = 5_000
N_BLOCKS = 4


# ------------------------------------------------------------------------------------ data


@functools.lru_cache(maxsize=N_BLOCKS)
def _base_block(n_genes: int, nnz_per_cell: int, seed: int, block: int) -> sp.csr_matrix:
    rng = np.random.default_rng([seed, block])
    weight = np.random.default_rng(seed).lognormal(0.0, 1.5, n_genes)  # the same genes in every block
    p = np.minimum(weight / weight.sum() * nnz_per_cell, 0.95).astype(np.float32)
    parts = []
    for start in range(0, BLOCK_CELLS, 1_000):
        rows = min(1_000, BLOCK_CELLS - start)
        r, c = np.nonzero(rng.random((rows, n_genes), dtype=np.float32) < p)
        counts = 1 + rng.poisson(weight[c] * 0.5)
        library = np.bincount(r, weights=counts, minlength=rows)
        values = np.log1p(counts / library[r] * 1e4).astype(np.float32)
        parts.append(sp.csr_matrix((values, (r, c)), shape=(rows, n_genes)))
    return sp.vstack(parts, format="csr")


def make_lognorm_csr(
    n_cells: int, n_genes: int = 20_000, nnz_per_cell: int = 1_200, seed: int = 0, start_cell: int = 0
) -> sp.csr_matrix:
    """Cells ``start_cell .. start_cell + n_cells`` of the benchmark matrix (CSR, float32)."""
    blocks = [_base_block(n_genes, nnz_per_cell, seed, b) for b in range(N_BLOCKS)]
    pieces = []  # (block, first row, n rows) in order
    cell = start_cell
    while cell < start_cell + n_cells:
        index, row = divmod(cell, BLOCK_CELLS)
        rows = min(BLOCK_CELLS - row, start_cell + n_cells - cell)
        pieces.append((index % N_BLOCKS, row, rows, cell))
        cell += rows
    nnz = sum(int(blocks[b].indptr[r + n] - blocks[b].indptr[r]) for b, r, n, _ in pieces)
    index_dtype = np.int32 if nnz < 2**31 - 1 else np.int64
    data = np.empty(nnz, dtype=np.float32)
    indices = np.empty(nnz, dtype=index_dtype)
    indptr = np.zeros(n_cells + 1, dtype=index_dtype)
    offset = 0
    for b, r, n, first in pieces:
        block = blocks[b]
        lo, hi = block.indptr[r], block.indptr[r + n]
        factor = np.random.default_rng([seed, 7, first]).lognormal(0.0, 0.1, n).astype(np.float32)
        row_factor = np.repeat(factor, np.diff(block.indptr[r : r + n + 1]))
        data[offset : offset + hi - lo] = np.log1p(np.expm1(block.data[lo:hi]) * row_factor)
        indices[offset : offset + hi - lo] = block.indices[lo:hi]
        at = first - start_cell
        indptr[at + 1 : at + n + 1] = offset + block.indptr[r + 1 : r + n + 1] - lo
        offset += hi - lo
    return sp.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))


def gene_names(n_genes: int) -> pd.Index:
    return pd.Index([f"GENE{j}" for j in range(n_genes)])


def make_sets(n_genes: int, n_sets: int = 20, size: int = 50, seed: int = 1) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    names = gene_names(n_genes)
    return {f"set{j}": list(names[rng.choice(n_genes, size, replace=False)]) for j in range(n_sets)}


def as_adata(x: sp.csr_matrix) -> ad.AnnData:
    return ad.AnnData(
        x,
        obs=pd.DataFrame(index=[f"cell{i}" for i in range(x.shape[0])]),
        var=pd.DataFrame(index=gene_names(x.shape[1])),
    )


# ------------------------------------------------------------------------------------ peers


def peer_score_genes(adata: ad.AnnData, sets: dict) -> np.ndarray:
    import scanpy as sc

    adata = adata.copy()
    for name, genes in sets.items():
        sc.tl.score_genes(adata, genes, score_name=name, random_state=0)
    return adata.obs[list(sets)].to_numpy()


def peer_aucell(adata: ad.AnnData, sets: dict) -> np.ndarray:
    import decoupler as dc

    adata = adata.copy()
    net = pd.DataFrame([(s, g) for s, genes in sets.items() for g in genes], columns=["source", "target"])
    dc.mt.aucell(adata, net, tmin=3)
    return adata.obsm["score_aucell"][list(sets)].to_numpy()


def peer_ucell(adata: ad.AnnData, sets: dict) -> np.ndarray:
    import pyucell

    adata = adata.copy()
    pyucell.compute_ucell_scores(adata, sets)
    return adata.obs[[f"{s}_UCell" for s in sets]].to_numpy()


def peer_zmean(adata: ad.AnnData, sets: dict) -> np.ndarray:
    union = sorted({g for genes in sets.values() for g in genes})
    x = adata[:, union].X.toarray().astype(np.float64)
    sd = x.std(axis=0)
    keep = sd > 0
    z = (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]
    column = {g: j for j, g in enumerate(np.asarray(union)[keep])}
    return np.column_stack([z[:, [column[g] for g in genes if g in column]].mean(axis=1) for genes in sets.values()])


PEER_FUNCS: dict[str, Callable[[ad.AnnData, dict], np.ndarray]] = {
    "score_genes": peer_score_genes,
    "aucell": peer_aucell,
    "ucell": peer_ucell,
    "zmean": peer_zmean,
}


# ------------------------------------------------------------------------------------ timing


def timed(func: Callable[[], object], repeats: int = 1) -> tuple[float, object]:
    """Median wall time of ``repeats`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def ours(adata: ad.AnnData, sets: dict, method: str) -> pd.DataFrame:
    return noa.tl.score(adata, sets, method=method, inplace=False)


def warm_up(sets: dict, n_genes: int, peers: bool = True) -> None:
    """Run every method and every peer once on a small matrix (compilation, imports, pools)."""
    small = as_adata(make_lognorm_csr(300, n_genes))
    for method in METHODS:
        ours(small, sets, method)
        if peers:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                PEER_FUNCS[method](small, sets)


def bare_product_time(x: sp.csr_matrix, sets: dict, repeats: int) -> float:
    names = gene_names(x.shape[1])
    rows = np.concatenate([names.get_indexer(genes) for genes in sets.values()])
    cols = np.repeat(np.arange(len(sets)), [len(g) for g in sets.values()])
    w = sp.csr_matrix((np.full(rows.size, 1.0 / 50), (rows, cols)), shape=(x.shape[1], len(sets)))
    return timed(lambda: x @ w, repeats)[0]


def comparison_table(n_cells: int, args) -> str:
    x = make_lognorm_csr(n_cells, args.genes, args.nnz)
    adata = as_adata(x)
    sets = make_sets(args.genes, args.sets, args.set_size)
    products = []
    rows = []
    for method in METHODS:
        product = bare_product_time(x, sets, args.repeats)
        products.append(product)
        t_ours_runs, t_peer_runs, result, peer = [], [], None, None
        for _ in range(args.repeats):  # interleaved: ours, peer, ours, peer, ...
            t, result = timed(lambda: ours(adata, sets, method))
            t_ours_runs.append(t)
            if not args.skip_peers:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t, peer = timed(lambda: PEER_FUNCS[method](adata, sets))
                t_peer_runs.append(t)
        t_ours = float(np.median(t_ours_runs))
        if args.skip_peers:
            t_peer, diff = float("nan"), float("nan")
        else:
            t_peer = float(np.median(t_peer_runs))
            diff = float(np.nanmax(np.abs(result.to_numpy() - peer)))
        rows.append(
            f"| {method} | {PEERS[method]} | {t_ours:.3f} | {t_peer:.2f} | {t_peer / t_ours:.1f}x | {diff:.1e} "
            f"| {product:.3f} | {t_ours / product:.1f} |"
        )
        print(rows[-1], flush=True)
    lines = [
        f"Comparison with peers: {n_cells:,} cells x {args.genes:,} genes, {x.nnz / n_cells:,.0f} non-zeros "
        f"per cell, {args.sets} sets of {args.set_size} genes; medians of {args.repeats} runs after a warm-up "
        f"of every side. Bare sparse product X @ W: {np.median(products):.3f} s (median over the methods' "
        "measurements).",
        "",
        "| method | peer | ours (s) | peer (s) | speed-up | max abs diff | X @ W (s) | ours / (X @ W) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    return "\n".join(lines)


def scaling_table(sizes: list[int], args) -> str:
    sets = make_sets(args.genes, args.sets, args.set_size)
    lines = [
        "Scaling (in-memory CSR; best of 2 runs below 1,000,000 cells, one run at 1,000,000; time in seconds, "
        "per cell in microseconds):",
        "",
        "| cells | non-zeros | " + " | ".join(f"{m} (s) | {m} (us/cell)" for m in METHODS)
        + " | process peak RSS (GiB) |",
        "|---:|---:|" + "---:|---:|" * len(METHODS) + "---:|",
    ]
    for n in sizes:
        x = make_lognorm_csr(n, args.genes, args.nnz)
        adata = as_adata(x)
        cells = []
        for method in METHODS:
            t, _ = timed(lambda: ours(adata, sets, method), 1 if n >= 1_000_000 else 2)
            cells.append(f"{t:.2f} | {t / n * 1e6:.1f}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB -> GiB (Linux)
        lines.append(f"| {n:,} | {x.nnz:,} | " + " | ".join(cells) + f" | {peak:.1f} |")
        print(lines[-1], flush=True)
        del adata, x
        gc.collect()
    return "\n".join(lines)


def _available_gib() -> float:
    try:
        import psutil

        return psutil.virtual_memory().available / 2**30
    except ImportError:  # pragma: no cover
        return float("inf")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1,000,000-cell scaling row")
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--nnz", type=int, default=1_200, help="target detected genes per cell")
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--set-size", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--scaling", type=int, nargs="*", default=[50_000, 200_000, 1_000_000])
    parser.add_argument("--out", help="also write the markdown tables to this file")
    args = parser.parse_args(argv)

    header = (
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), numba threads {numba.get_num_threads()}, "
        f"numba {numba.__version__}, numpy {np.__version__}, scipy {scipy.__version__}; load average at start "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}."
    )
    print(header, flush=True)
    warm_up(make_sets(args.genes, args.sets, args.set_size), args.genes, peers=not args.skip_peers)
    parts = [header, comparison_table(args.cells, args)]
    sizes = [n for n in args.scaling if not (args.quick and n >= 1_000_000)]
    # 1,000,000 cells x 1,200 non-zeros hold ~9.2 GB (float32 data + int32 indices)
    need = {n: n * args.nnz * 8 * 1.1 / 2**30 + 1 for n in sizes}
    skipped = [n for n in sizes if need[n] > _available_gib()]
    if sizes:
        parts.append(scaling_table([n for n in sizes if n not in skipped], args))
    if skipped:
        parts.append(f"Skipped for lack of free memory: {skipped}.")
    parts.append(
        f"Load average at end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}."
    )
    text = "\n\n".join(parts)
    print("\n" + text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")
    return text


if __name__ == "__main__":
    main()
