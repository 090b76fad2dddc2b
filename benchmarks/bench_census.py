"""Streaming a TileDB-SOMA experiment: time and memory per million cells, streamed vs in memory.

Builds a local experiment in the CELLxGENE Census layout (``--cells`` cells over the demo's genes,
``--per-cell`` detected genes per cell), then, each in a fresh subprocess so peak RSS is its own:

- ``stream``: ``noa.tl.score`` on the streamed view (``open_soma``), per method;
- ``memory``: the whole query loaded (``to_anndata()``) and scored in memory.

Reports wall time, peak RSS and RSS growth over the process after opening the query, and the
time per million cells. Usage::

    python benchmarks/bench_census.py --cells 200000 --per-cell 150 --out /tmp/bench_census
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "datasets"))


def build(uri: Path, n_cells: int, per_cell: int) -> float:
    import noa_omics as noa
    from soma_utils import random_count_blocks, write_experiment

    genes = noa.datasets.demo_testis(seed=0, n_cells=200).var_names
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"donor_id": rng.choice([f"D{i:03d}" for i in range(100)], n_cells),
                        "disease": rng.choice(["normal", "azoospermia"], n_cells),
                        "tissue_general": "testis"}, index=[f"cell{i}" for i in range(n_cells)])
    var = pd.DataFrame({"feature_name": genes.to_numpy()}, index=[f"ENSG{i:011d}" for i in range(len(genes))])
    t = time.perf_counter()
    write_experiment(str(uri), obs, var, random_count_blocks(n_cells, len(genes), per_cell=per_cell, seed=1))
    return time.perf_counter() - t


def rss_mb(field: str = "VmRSS") -> float:
    """Current (VmRSS) or peak (VmHWM) resident memory of this process in MiB.

    VmHWM is per address space, so a fresh subprocess starts its own peak; ``ru_maxrss`` would not
    do here, as Linux carries it over from the parent across ``exec``.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(uri: str, mode: str, method: str, chunk: int) -> None:
    import noa_omics as noa

    with noa.datasets.open_soma(uri, chunk_size=chunk, harmonize=False) as cells:
        noa.tl.score(cells, {"warm": ["HSPA1A", "HSPA1B", "DNAJB1"]}, method=method,
                     gene_symbols="feature_name", inplace=False, chunk_size=1000)  # compile outside the timing
        base = rss_mb()
        t = time.perf_counter()
        if mode == "stream":
            noa.tl.score(cells, method=method, gene_symbols="feature_name", species="human", inplace=False)
        else:
            adata = cells.to_anndata()
            adata.X = noa._stream.log1p_cp10k(adata.layers.pop("counts"))
            noa.tl.score(adata, method=method, gene_symbols="feature_name", species="human", inplace=False)
        seconds = time.perf_counter() - t
    peak = rss_mb("VmHWM")
    print(json.dumps({"mode": mode, "method": method, "seconds": seconds, "peak_rss_mb": peak,
                      "rss_after_open_mb": base, "growth_mb": peak - base, "n_cells": cells.n_obs}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=200_000)
    parser.add_argument("--per-cell", type=int, default=150)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--methods", nargs="+", default=["ucell", "score_genes"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_census"))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        uri, mode, method, chunk = args.child
        child(uri, mode, method, int(chunk))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    uri = args.out / f"exp_{args.cells}_{args.per_cell}"
    if not uri.exists():
        print(f"building {uri} ...", flush=True)
        print(f"  written in {build(uri, args.cells, args.per_cell):.1f} s", flush=True)
    disk = sum(f.stat().st_size for f in uri.rglob("*") if f.is_file()) / 2**20
    rows = []
    for method in args.methods:
        for mode in ("stream", "memory"):
            out = subprocess.run([sys.executable, __file__, "--child", str(uri), mode, method, str(args.chunk)],
                                 capture_output=True, text=True, check=True, env={**os.environ})
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table["seconds_per_million_cells"] = table["seconds"] / table["n_cells"] * 1e6
    print(f"\nexperiment: {args.cells} cells x {args.per_cell} detected genes per cell, {disk:.0f} MiB on disk "
          f"({disk / args.cells * 1e6 / 1024:.1f} GiB per million cells); load {os.getloadavg()[0]:.1f}")
    print(table.round(1).to_markdown(index=False))


if __name__ == "__main__":
    main()
