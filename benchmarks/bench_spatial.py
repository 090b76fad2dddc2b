"""Benchmark of the spatial niche analysis: segmentation and per-tubule metrics vs section size.

Usage::

    python benchmarks/bench_spatial.py                 # 100, 300, 900 tubules
    python benchmarks/bench_spatial.py --sizes 900 --repeats 3 --summary

For each size one simulated section (``noa.datasets.demo_spatial``, no expression, or
``noa.datasets.realistic_spatial`` with ``--generator realistic``) is segmented
(``noa.spatial.assign_tubules``) and measured (``noa.spatial.tubule_metrics``); the best of
``--repeats`` wall-clock times is reported with the segmentation quality (adjusted Rand index
over cells inside true tubules, fraction of interstitial cells placed in a tubule). The growth
exponent is the slope of log(time) against log(cells) between consecutive sizes (1 = linear). ``--summary`` also times ``noa.spatial.niche_summary`` (squidpy neighbourhood
enrichment, 200 permutations), whose first call includes numba compilation.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

import noa_omics as noa


def _best_time(fn, repeats: int):
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _section(generator: str, seed: int, n_tubules: int):
    if generator == "realistic":
        return noa.datasets.realistic_spatial(seed=seed, n_tubules=n_tubules)
    return noa.datasets.demo_spatial(seed=seed, n_tubules=n_tubules, expression=False)


def run(sizes: list[int], repeats: int, summary: bool, seed: int, generator: str = "demo") -> pd.DataFrame:
    rows = []
    for n_tubules in sizes:
        adata = _section(generator, seed, n_tubules)
        t_seg, labels = _best_time(lambda: noa.spatial.assign_tubules(adata), repeats)
        t_shape, _ = _best_time(lambda: noa.spatial.tubule_shapes(adata), 1)

        def measure():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return noa.spatial.tubule_metrics(adata)

        t_met, metrics = _best_time(measure, repeats)
        truth = adata.obs["truth_tubule"]
        inside = truth.notna().to_numpy()
        pred = labels.astype(object).where(labels.notna(), "NA").astype(str).to_numpy()
        row = {
            "n_tubules": n_tubules,
            "n_cells": adata.n_obs,
            "found_tubules": int(metrics.shape[0]),
            "assign_tubules_s": round(t_seg, 3),
            "tubule_metrics_s": round(t_met, 3),
            "tubule_shapes_s": round(t_shape, 3),
            "total_s": round(t_seg + t_met, 3),
            "ari": round(adjusted_rand_score(truth[inside].astype(str), pred[inside]), 4),
            "leak": round(float(labels[~inside].notna().mean()), 4),
        }
        if summary:
            t_sum, _ = _best_time(
                lambda: noa.spatial.niche_summary(adata, sample_key="sample", metrics=metrics), 1
            )
            row["niche_summary_s"] = round(t_sum, 3)
        rows.append(row)
        print(row, flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 900])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summary", action="store_true", help="also time niche_summary")
    parser.add_argument("--generator", choices=["demo", "realistic"], default="demo",
                        help="section simulator: demo_spatial (lattice) or realistic_spatial")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} CPU(s), noa-omics {noa.__version__}")
    table = run(args.sizes, args.repeats, args.summary, args.seed, args.generator)
    print()
    print(table.to_string(index=False))
    if len(table) > 1:
        print()
        for (_, a), (_, b) in zip(table.iloc[:-1].iterrows(), table.iloc[1:].iterrows()):
            slope = np.log(b["total_s"] / a["total_s"]) / np.log(b["n_cells"] / a["n_cells"])
            print(f"growth exponent {int(a['n_cells'])} -> {int(b['n_cells'])} cells: {slope:.2f} "
                  f"(time x{b['total_s'] / a['total_s']:.2f} for cells x{b['n_cells'] / a['n_cells']:.2f})")
    largest = table.iloc[-1]
    print(f"largest section: {int(largest['n_tubules'])} tubules, {int(largest['n_cells'])} cells, "
          f"segmented + measured in {largest['total_s']:.2f} s (target <= 60 s on 2 cores)")


if __name__ == "__main__":
    main()
