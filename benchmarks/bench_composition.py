"""Power and false-positive rate of ``noa.tl.compare_composition`` on simulated cohorts.

Usage::

    python benchmarks/bench_composition.py                  # 200 cohorts per scenario
    python benchmarks/bench_composition.py --cohorts 500 --markdown

Each scenario simulates ``--cohorts`` cohorts with ``noa.datasets.composition_cohort`` (donor-level
overdispersion: Dirichlet or logistic-normal donor proportions, 500-2000 cells per donor) and
tests every fine cell type with

- ``propeller_logit`` / ``propeller_asin``: ``compare_composition`` (donor as the unit,
  moderated t), transform logit / arcsine square root;
- ``chisq_cells``: a per-type 2 x 2 Pearson chi-square on the pooled cell counts (cells as units).

False-positive rate: fraction of tests with p < alpha among the types without a shift (all types
in null cohorts, the unshifted types of shifted cohorts are not used since the compositional
constraint moves them). Power: fraction of cohorts in which the shifted type has p < alpha.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import noa_omics as noa
from noa_omics.celltypes._composition import cell_level_chisquare, sample_counts

SCENARIOS = [
    # name, generator, n_donors, concentration/sigma, shift
    ("null_dir_4v4", "dirichlet", (4, 4), 50.0, None),
    ("null_dir_3v6", "dirichlet", (3, 6), 50.0, None),
    ("null_dir_8v8_c200", "dirichlet", (8, 8), 200.0, None),
    ("null_lognorm_4v4", "logistic_normal", (4, 4), 0.3, None),
    ("spc_x0.5_dir_4v4", "dirichlet", (4, 4), 50.0, {"spermatocyte": 0.5}),
    ("spc_x0.5_dir_8v8", "dirichlet", (8, 8), 50.0, {"spermatocyte": 0.5}),
    ("spc_x0.25_dir_4v4", "dirichlet", (4, 4), 50.0, {"spermatocyte": 0.25}),
    ("elong_x0.5_lognorm_4v4", "logistic_normal", (4, 4), 0.3, {"elongating_spermatid": 0.5}),
    ("sertoli_x2_dir_6v6", "dirichlet", (6, 6), 50.0, {"sertoli": 2.0}),
]


def _one(generator, n_donors, spread, shift, seed):
    kwargs = {"concentration": spread} if generator == "dirichlet" else {"sigma": spread}
    cells = noa.datasets.composition_cohort(n_donors, shift=shift, generator=generator, seed=seed, **kwargs)
    out = {}
    for transform in ("logit", "asin_sqrt"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = noa.tl.compare_composition(
                cells, sample_key="donor", condition_key="condition", reference="control", transform=transform
            )
        out[f"propeller_{'logit' if transform == 'logit' else 'asin'}"] = res.set_index("cell_type")["pvalue"]
    counts = sample_counts(cells, sample_key="donor", cell_type_key="noa_cell_type", level="fine")
    case = counts.index.str.startswith("case")
    out["chisq_cells"] = pd.Series(
        cell_level_chisquare(counts[case].to_numpy(), counts[~case].to_numpy()), index=counts.columns
    )
    return out


def run(n_cohorts: int, alpha: float, seed: int) -> pd.DataFrame:
    rows = []
    for name, generator, n_donors, spread, shift in SCENARIOS:
        start = time.perf_counter()
        hits: dict[str, list[float]] = {}
        for i in range(n_cohorts):
            pvals = _one(generator, n_donors, spread, shift, seed + 1000 * i)
            for method, p in pvals.items():
                if shift:
                    hits.setdefault(method, []).append(float(p[list(shift)[0]] < alpha))
                else:
                    hits.setdefault(method, []).extend((p.to_numpy() < alpha).astype(float).tolist())
        elapsed = time.perf_counter() - start
        for method, values in hits.items():
            values = np.asarray(values)
            rate = values.mean()
            se = np.sqrt(rate * (1 - rate) / len(values))
            rows.append(
                {
                    "scenario": name,
                    "kind": "power" if shift else "fpr",
                    "method": method,
                    "n_cohorts": n_cohorts,
                    "n_tests": len(values),
                    "rate": round(float(rate), 3),
                    "ci95": f"[{max(0, rate - 1.96 * se):.3f}, {min(1, rate + 1.96 * se):.3f}]",
                    "seconds": round(elapsed, 1),
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=200)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    table = run(args.cohorts, args.alpha, args.seed)
    wide = table.pivot_table(index=["scenario", "kind"], columns="method", values="rate", sort=False)
    print(wide.to_markdown() if args.markdown else wide.to_string())
    print()
    print(table.to_markdown(index=False) if args.markdown else table.to_string(index=False))


if __name__ == "__main__":
    main()
