"""Out-of-core benchmark of ``noa.tl.score`` (not a test): backed h5ad files, time and memory.

1. Memory check: a 60,000 x 20,000 CSR file (about 1,140 non-zeros per cell, ~550 MiB) is
   scored from backed mode (``read_h5ad(..., backed="r")``) by each method, each in a fresh
   process (kernels compiled beforehand by another process): the peak RSS growth over the RSS
   just before the call, sampled every 2 ms and from ``getrusage``'s maximum RSS (exact when the
   call raised the process maximum, otherwise shown as a bound), and the ``tracemalloc`` peak
   (numpy buffers) during the call.
2. Scale: a 1,000,000-cell file, written chunk by chunk (never held in memory), scored from
   backed mode the same way. ``--nnz`` lowers the detected genes per cell when disk or time is
   short (the default 1,200 target gives ~1,140 per cell, a ~9 GB file).

The matrices come from ``bench_scoring.make_lognorm_csr`` (same generator as the in-memory
benchmark). Usage::

    python benchmarks/bench_scale.py [--cells 1000000] [--nnz 1200] [--dir /tmp] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scoring import METHODS, gene_names, make_lognorm_csr, make_sets  # noqa: E402

MIB = 2**20


def write_backed(path: Path, n_cells: int, n_genes: int = 20_000, nnz: int = 1_200, chunk: int = 50_000) -> int:
    """Write a CSR h5ad of ``n_cells`` chunk by chunk; returns the number of stored values."""
    obs = pd.DataFrame(index=[f"cell{i}" for i in range(n_cells)])
    skeleton = ad.AnnData(sp.csr_matrix((n_cells, n_genes), dtype=np.float32), obs=obs,
                          var=pd.DataFrame(index=gene_names(n_genes)))
    skeleton.write_h5ad(path)
    del skeleton, obs
    offset = 0
    with h5py.File(path, "r+") as f:
        group = f["X"]
        for name in ("data", "indices", "indptr"):
            del group[name]
        data = group.create_dataset("data", shape=(0,), maxshape=(None,), dtype="float32", chunks=(1 << 18,))
        indices = group.create_dataset("indices", shape=(0,), maxshape=(None,), dtype="int32", chunks=(1 << 18,))
        indptr = group.create_dataset("indptr", shape=(n_cells + 1,), dtype="int64")
        indptr[0] = 0
        for start in range(0, n_cells, chunk):
            x = make_lognorm_csr(min(chunk, n_cells - start), n_genes, nnz, start_cell=start)
            data.resize((offset + x.nnz,))
            indices.resize((offset + x.nnz,))
            data[offset:] = x.data
            indices[offset:] = x.indices
            indptr[start + 1 : start + x.shape[0] + 1] = offset + x.indptr[1:].astype(np.int64)
            offset += x.nnz
    return offset


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def warm_up(n_genes: int) -> None:
    """Compile every kernel once (numba caches them on disk for the measuring processes)."""
    import noa_omics as noa

    sets = make_sets(n_genes)
    warm = sp.random(200, n_genes, density=0.05, format="csr", dtype=np.float32, random_state=0)
    warm.data = np.log1p(warm.data * 100).astype(np.float32)
    small = ad.AnnData(warm, var=pd.DataFrame(index=gene_names(n_genes)))
    for method in METHODS:
        noa.tl.score(small, sets, method=method, inplace=False)


def measure(path: str, method: str, n_genes: int) -> dict:
    """Score ``path`` from backed mode with ``method``; time and memory growth of the call."""
    import noa_omics as noa

    warm_up(n_genes)  # loads the cached kernels (compiled by the parent's warm-up process)
    adata = ad.read_h5ad(path, backed="r")
    sets = make_sets(n_genes)
    baseline = _rss()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tracemalloc.start()
    start = time.perf_counter()
    scores = noa.tl.score(adata, sets, method=method, inplace=False)
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    done.set()
    sampler.join()
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "method": method,
        "cells": adata.n_obs,
        "seconds": seconds,
        "rss_growth_mib": (peak[0] - baseline) / MIB,
        # the kernel-level peak, exact when the call raised the process's maximum RSS
        "maxrss_growth_mib": (maxrss_after - baseline) / MIB if maxrss_after > maxrss_before else None,
        "maxrss_before_growth_mib": (maxrss_before - baseline) / MIB,
        "tracemalloc_peak_mib": traced_peak / MIB,
        "result_mib": scores.to_numpy().nbytes / MIB,
        "finite": bool(np.isfinite(scores.to_numpy()).all()),
    }


def run_fresh(path: Path, method: str, n_genes: int) -> dict:
    """``measure`` in a fresh Python process (a clean memory baseline)."""
    # Linux keeps a process's maximum RSS across fork + exec: start the measuring process from a
    # small launcher, so that its maximum RSS does not begin at this (data-generating) process's
    launcher = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"
    out = subprocess.run(
        [sys.executable, "-c", launcher, sys.executable, __file__, "--measure", str(path), method,
         "--genes", str(n_genes)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(path: Path, n_genes: int, title: str) -> str:
    size = path.stat().st_size / MIB
    lines = [
        f"{title} ({size:,.0f} MiB on disk), scored from backed mode, default row blocks:",
        "",
        "| method | time (s) | us/cell | RSS growth, sampled (MiB) | RSS growth, getrusage (MiB) "
        "| tracemalloc peak (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method in METHODS:
        r = run_fresh(path, method, n_genes)
        maxrss = r["maxrss_growth_mib"]
        maxrss = f"{maxrss:.0f}" if maxrss is not None else f"< {r['maxrss_before_growth_mib']:.0f}"
        lines.append(
            f"| {method} | {r['seconds']:.1f} | {r['seconds'] / r['cells'] * 1e6:.1f} | {r['rss_growth_mib']:.0f} "
            f"| {maxrss} | {r['tracemalloc_peak_mib']:.0f} |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--nnz", type=int, default=1_200, help="target detected genes per cell (1M-cell file)")
    parser.add_argument("--dir", default=os.environ.get("TMPDIR", "/tmp"))
    parser.add_argument("--keep", action="store_true", help="keep the h5ad files")
    parser.add_argument("--skip-large", action="store_true", help="only the 60,000-cell memory check")
    parser.add_argument("--measure", nargs=2, metavar=("PATH", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help="also write the markdown tables to this file")
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure[0], args.measure[1], args.genes)))
        return ""

    parts = []
    directory = Path(args.dir)
    subprocess.run([sys.executable, "-c", f"import bench_scale; bench_scale.warm_up({args.genes})"],
                   check=True, cwd=Path(__file__).resolve().parent)
    mid = directory / "noa_bench_60k.h5ad"
    start = time.perf_counter()
    nnz = write_backed(mid, 60_000, args.genes, 1_200)
    print(f"wrote {mid} ({nnz:,} values) in {time.perf_counter() - start:.0f} s", flush=True)
    parts.append(table(mid, args.genes, f"Memory check: 60,000 x {args.genes:,} CSR, {nnz / 60_000:,.0f} non-zeros per cell"))
    if not args.keep:
        mid.unlink()
    if not args.skip_large:
        big = directory / "noa_bench_1m.h5ad"
        start = time.perf_counter()
        nnz = write_backed(big, args.cells, args.genes, args.nnz)
        print(f"wrote {big} ({nnz:,} values) in {time.perf_counter() - start:.0f} s", flush=True)
        parts.append(table(big, args.genes,
                           f"Scale: {args.cells:,} x {args.genes:,} CSR, {nnz / args.cells:,.0f} non-zeros per cell"))
        if not args.keep:
            big.unlink()
    text = "\n\n".join(parts)
    print("\n" + text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
