"""Call-stability tables of ``noa.tl.multihit_stability`` on the demo cohort and a planted cohort.

Usage::

    python benchmarks/bench_stability.py --n-boot 20 --markdown

Cohorts: ``demo_testis(seed=0)`` and ``demo_testis(seed=1)`` (13 donors, annotated with
``annotate_testis``), and the 18-donor cohort with planted hits of ``tests/multihit`` (truth cell
types). Per donor: the call on the full data, its modal call over the resamples, the fraction of
resamples giving it, the ``unstable`` flag and the 95% percentile intervals of the germ-apoptosis,
genetic, endocrine and niche z-scores.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import scanpy as sc

import noa_omics as noa

COLUMNS = ["condition", "histology", "apoptosis_context", "context_modal", "context_stability", "unstable"]
INTERVALS = ["germ_apoptosis", "genetic", "endocrine", "niche"]


def _demo(seed: int):
    adata = noa.datasets.demo_testis(seed=seed)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    noa.tl.annotate_testis(adata)
    return adata


def _planted():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "multihit"))
    from conftest import cohort_specs  # the 18-donor cohort with planted hits

    adata = noa.datasets.demo_testis(seed=3, donors=cohort_specs())
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.obs["noa_cell_type"] = adata.obs["truth_cell_type"].astype(str)
    return adata


def table(adata, n_boot: int, seed: int) -> tuple[pd.DataFrame, float]:
    start = time.perf_counter()
    res = noa.tl.multihit_stability(adata, sample_key="sample", reference="control", condition_key="condition",
                                    n_boot=n_boot, random_state=seed)
    elapsed = time.perf_counter() - start
    out = res[COLUMNS].copy()
    out["context_stability"] = out["context_stability"].round(2)
    for col in INTERVALS:
        out[col] = [f"{v:+.1f} [{lo:+.1f}, {hi:+.1f}]" if pd.notna(v) else "NA"
                    for v, lo, hi in zip(res[col], res[f"{col}_low"], res[f"{col}_high"])]
    return out, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--cohorts", nargs="*", default=["demo0", "demo1", "planted"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for name in args.cohorts:
        adata = _planted() if name == "planted" else _demo(int(name.removeprefix("demo")))
        out, elapsed = table(adata, args.n_boot, args.seed)
        print(f"\n### {name}: {adata.n_obs} cells, {out.shape[0]} donors, n_boot={args.n_boot} + leave-one-out, "
              f"{elapsed:.0f} s; unstable: {int(out['unstable'].sum())}\n")
        print(out.to_markdown() if args.markdown else out.to_string())


if __name__ == "__main__":
    main()
