"""Tubule segmentation accuracy per histology and shape class on both section simulators.

Usage::

    python benchmarks/eval_tubules.py                      # 4 seeds of each generator
    python benchmarks/eval_tubules.py --seeds 0 1 --n-tubules 40 --label-noise 0.1

Recovered whole: one predicted tubule covers >= 80 % of a true tubule's epithelial cells (germ +
Sertoli, by the simulated truth) at >= 80 % purity (``noa.spatial.tubule_agreement``). ARI over the
epithelial cells; ``leak``: fraction of interstitial cells (truth NA) placed in a tubule.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import noa_omics as noa
from noa_omics.spatial._agreement import tubule_recovery
from noa_omics.spatial._utils import EPITHELIAL_TYPES


def evaluate(adata, **kwargs) -> tuple[pd.Series, pd.DataFrame, float]:
    start = time.perf_counter()
    pred = noa.spatial.assign_tubules(adata, inplace=False, **kwargs)
    elapsed = time.perf_counter() - start
    epi = adata.obs["truth_cell_type"].isin(EPITHELIAL_TYPES).to_numpy()
    summary = noa.spatial.tubule_agreement(pred, adata.obs["truth_tubule"], cells=epi)
    inter = adata.obs["truth_tubule"].isna().to_numpy()
    summary["leak"] = float(pred[inter].notna().mean())
    table = tubule_recovery(pred[epi], adata.obs["truth_tubule"][epi])
    first = adata.obs[epi].groupby("truth_tubule", observed=True).first()
    table["histology"] = table["tubule"].map(first["truth_histology"].astype(str))
    if "truth_shape" in first:
        table["shape"] = table["tubule"].map(first["truth_shape"].astype(str))
    return summary, table, elapsed


def run(seeds, n_tubules, label_noise, generators, **kwargs):
    kwargs = kwargs or __import__("json").loads(__import__("os").environ.get("KW", "{}"))
    rows, tables = [], []
    for gen in generators:
        for seed in seeds:
            if gen == "realistic":
                adata = noa.datasets.realistic_spatial(seed=seed, n_tubules=n_tubules, label_noise=label_noise)
            else:
                adata = noa.datasets.demo_spatial(seed=seed, n_tubules=n_tubules, expression=False,
                                                  label_noise=label_noise)
            summary, table, elapsed = evaluate(adata, **kwargs)
            summary["generator"], summary["seed"], summary["seconds"] = gen, seed, round(elapsed, 2)
            table["generator"] = gen
            rows.append(summary)
            tables.append(table)
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in summary.items()}, flush=True)
    overall = pd.DataFrame(rows)
    per = pd.concat(tables, ignore_index=True)
    return overall, per


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--n-tubules", type=int, default=60)
    p.add_argument("--label-noise", type=float, default=0.02)
    p.add_argument("--generators", nargs="+", default=["realistic", "demo"])
    a = p.parse_args()
    overall, per = run(a.seeds, a.n_tubules, a.label_noise, a.generators)
    print(overall.groupby("generator")[["recovered_fraction", "ari", "leak", "n_split", "n_merged", "n_missed"]].mean().round(3))
    print(per.groupby(["generator", "histology"])["recovered"].agg(["mean", "size"]).round(3))
    if "shape" in per:
        print(per.dropna(subset=["shape"]).groupby(["generator", "shape"])["recovered"].agg(["mean", "size"]).round(3))
    bad = per[~per["recovered"]]
    print(bad.groupby(["generator"])[["split", "merged", "missed"]].sum())


if __name__ == "__main__":
    main()
