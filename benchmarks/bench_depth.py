"""Annotation accuracy against sequencing depth (not a test): ``annotate_testis`` vs a naive baseline.

Data (several seeds each):

- ``continuum``: :func:`noa_omics.datasets._continuum.continuum_testis`, 3,000 cells, ambient RNA
  5-15%, log-normal depth spread, median 150/250/500/1500 UMI.
- ``continuum_spatial``: the same model on a simulated section (10 um beads mixing 25% of their
  neighbours' profiles), annotated with and without the spatial neighbour prior.
- ``demo_thinned``: :func:`noa.datasets.demo_testis` (3,000 cells) binomially thinned to the depth.
- chain: :func:`noa.datasets.demo_spatial` geometry and histology given the continuum expression at
  the depth (:func:`~noa_omics.datasets._continuum.express_section`), then
  annotate -> ``noa.spatial.assign_tubules`` -> ``noa.spatial.tubule_metrics``: tubule recovery
  (share of true tubules matched by a predicted tubule with Jaccard >= 0.5), ARI of the tubule
  partition over cells in true tubules, per-tubule histology accuracy of the recovered tubules.

Methods: ``naive`` (mean z-score of the log-normalised marker genes, argmax), ``score_genes``
(annotate_testis v0.1, marker scores + graph smoothing), ``likelihood`` (the default), and
``likelihood+spatial``. Accuracy: fine types and broad classes against the truth.

Usage::

    python benchmarks/bench_depth.py [--seeds 0 1 2] [--out benchmarks/bench_depth.csv]
        [--figure docs/celltypes_depth.png] [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

import noa_omics as noa
from noa_omics._vocabulary import CELL_TYPE_TO_CLASS, CELL_TYPES
from noa_omics.celltypes._likelihood import log_normalise, zmean_scores
from noa_omics.datasets._continuum import continuum_testis, express_section, thin_counts

DEPTHS = (150, 250, 500, 1500)


def naive_labels(adata) -> np.ndarray:
    """Naive baseline: mean z-score of each curated marker set on log-normalised counts, argmax."""
    library = noa.genesets.load("human")
    types = [t for t in CELL_TYPES if t != "other"]
    index = {g: i for i, g in enumerate(adata.var_names)}
    sets = [np.array([index[g] for g in library[f"marker_{t}"].genes if g in index]) for t in types]
    scores = zmean_scores(log_normalise(sp.csr_matrix(adata.X, dtype=np.float64)), sets)
    return np.array(types, dtype=object)[scores.argmax(axis=1)]


def accuracy(adata, predicted) -> tuple[float, float]:
    truth = adata.obs["truth_cell_type"].astype(str).to_numpy()
    predicted = np.asarray(predicted, dtype=str)
    broad = np.array([CELL_TYPE_TO_CLASS[t] for t in truth]) == np.array([CELL_TYPE_TO_CLASS[t] for t in predicted])
    return float(broad.mean()), float((truth == predicted).mean())


def _annotate(adata, **kwargs):
    work = adata.copy()
    start = time.perf_counter()
    labels = noa.tl.annotate_testis(work, **kwargs)
    elapsed = time.perf_counter() - start
    return work, labels, elapsed


def tubule_chain(section) -> dict[str, float]:
    from sklearn.metrics import adjusted_rand_score

    noa.spatial.assign_tubules(section)
    metrics = noa.spatial.tubule_metrics(section)
    truth = section.obs["truth_tubule"].astype("string").fillna("none").to_numpy()
    pred = section.obs["noa_tubule"].astype("string").fillna("none").to_numpy()
    inside = truth != "none"
    histology = section.obs.groupby(section.obs["truth_tubule"].astype(str), observed=True)["truth_histology"].first()
    metric_index = metrics.index.astype(str)
    recovered, correct = [], []
    for tubule in pd.unique(truth[inside]):
        cells = truth == tubule
        candidates = pd.Series(pred[cells])
        candidates = candidates[candidates != "none"]
        if candidates.empty:
            recovered.append(False)
            continue
        best = candidates.value_counts().index[0]
        jaccard = (cells & (pred == best)).sum() / (cells | (pred == best)).sum()
        recovered.append(jaccard >= 0.5)
        if jaccard >= 0.5 and (metric_index == best).any():
            correct.append(str(metrics.loc[metric_index == best, "histology"].iloc[0]) == str(histology[tubule]))
    return {
        "tubule_recovery": float(np.mean(recovered)),
        "tubule_ari": float(adjusted_rand_score(truth[inside], pred[inside])),
        "histology_accuracy": float(np.mean(correct)) if correct else float("nan"),
        "n_tubules": int(len(recovered)),
    }


def run(seeds, depths, n_cells: int = 3000, out: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, chain = [], []
    demo = {seed: noa.datasets.demo_testis(seed=seed, n_cells=n_cells) for seed in seeds}
    layout = {seed: noa.datasets.demo_spatial(seed=seed) for seed in seeds}
    for depth in depths:
        for seed in seeds:
            cells = continuum_testis(n_cells, depth=depth, seed=seed)
            beads = continuum_testis(n_cells, depth=depth, seed=seed, spatial=True)
            thinned = thin_counts(demo[seed], depth, seed=seed)
            for dataset, data in (("continuum", cells), ("continuum_spatial", beads), ("demo_thinned", thinned)):
                b, f = accuracy(data, naive_labels(data))
                rows.append({"dataset": dataset, "depth": depth, "seed": seed, "method": "naive", "broad": b,
                             "fine": f, "mean_confidence": np.nan, "seconds": np.nan})
                runs = [("likelihood", {"spatial_key": None})]
                if dataset == "continuum_spatial":
                    runs.append(("likelihood+spatial", {}))
                else:
                    runs.append(("score_genes", {"method": "score_genes"}))
                for method, kwargs in runs:
                    work, labels, elapsed = _annotate(data, **kwargs)
                    b, f = accuracy(work, labels)
                    rows.append({"dataset": dataset, "depth": depth, "seed": seed, "method": method, "broad": b,
                                 "fine": f, "mean_confidence": float(work.obs["noa_cell_type_confidence"].mean()),
                                 "seconds": elapsed})
            if depth <= 500:
                section = express_section(layout[seed], depth, seed=seed)
                for method, kwargs in (("likelihood", {"spatial_key": None}), ("likelihood+spatial", {})):
                    work, labels, _ = _annotate(section, **kwargs)
                    b, f = accuracy(work, labels)
                    chain.append({"depth": depth, "seed": seed, "method": method, "broad": b, "fine": f,
                                  **tubule_chain(work)})
                truth_run = section.copy()
                truth_run.obs["noa_cell_type"] = truth_run.obs["truth_cell_type"]
                chain.append({"depth": depth, "seed": seed, "method": "truth labels", **tubule_chain(truth_run)})
            print(f"depth {depth} seed {seed} done", flush=True)
            if out:  # partial results survive an interrupted run
                pd.DataFrame(rows).to_csv(out, index=False)
                pd.DataFrame(chain).to_csv(out.replace(".csv", "_chain.csv"), index=False)
    return pd.DataFrame(rows), pd.DataFrame(chain)


def figure(table: pd.DataFrame, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = ["continuum", "continuum_spatial", "demo_thinned"]
    titles = {"continuum": "continuum simulator (cells)", "continuum_spatial": "continuum section (10 um beads)",
              "demo_thinned": "demo_testis, binomially thinned"}
    styles = {"naive": ("tab:gray", "--"), "score_genes": ("tab:orange", ":"), "likelihood": ("tab:blue", "-"),
              "likelihood+spatial": ("tab:green", "-")}
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True, sharey="row")
    for col, dataset in enumerate(datasets):
        sub = table[table["dataset"] == dataset]
        for row, level in enumerate(("fine", "broad")):
            ax = axes[row, col]
            for method, group in sub.groupby("method"):
                stats = group.groupby("depth")[level].agg(["mean", "min", "max"])
                colour, style = styles[method]
                ax.plot(stats.index, stats["mean"], style, color=colour, marker="o", label=method)
                ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.15)
            ax.set_xscale("log")
            ax.minorticks_off()
            ax.set_xticks(DEPTHS, [str(d) for d in DEPTHS])
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(titles[dataset], fontsize=10)
            if col == 0:
                ax.set_ylabel(f"{level} accuracy")
            if row == 1:
                ax.set_xlabel("median UMI per cell / bead")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    axes[0, 1].legend(fontsize=8, loc="lower right")
    fig.suptitle("annotate_testis accuracy vs depth (mean and range over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def summarise(table: pd.DataFrame, chain: pd.DataFrame, figure_path: str) -> None:
    summary = table.groupby(["dataset", "method", "depth"])[["broad", "fine", "mean_confidence"]].mean().round(3)
    print(summary.to_string())
    if len(chain):
        print(chain.groupby(["method", "depth"]).mean(numeric_only=True).round(3).drop(columns="seed").to_string())
    figure(table, figure_path)


def _readable(path: str) -> bool:
    import os

    return os.path.exists(path) and os.path.getsize(path) > 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="benchmarks/bench_depth.csv")
    parser.add_argument("--figure", default="docs/celltypes_depth.png")
    parser.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS))
    parser.add_argument("--quick", action="store_true", help="one seed, 150 and 1500 UMI only")
    parser.add_argument("--plot", nargs="+", metavar="CSV", help="only draw the figure from result tables")
    args = parser.parse_args()
    if args.plot:  # tables of several (partial) runs, e.g. depths run in parallel
        table = pd.concat([pd.read_csv(p) for p in args.plot], ignore_index=True)
        chains = [p.replace(".csv", "_chain.csv") for p in args.plot]
        chain = pd.concat([pd.read_csv(p) for p in chains if _readable(p)], ignore_index=True)
        table.to_csv(args.out, index=False)
        chain.to_csv(args.out.replace(".csv", "_chain.csv"), index=False)
        summarise(table, chain, args.figure)
        return
    seeds, depths = (args.seeds[:1], (150, 1500)) if args.quick else (args.seeds, tuple(args.depths))
    warnings.simplefilter("ignore")
    table, chain = run(seeds, depths, out=args.out)
    table.to_csv(args.out, index=False)
    chain.to_csv(args.out.replace(".csv", "_chain.csv"), index=False)
    summarise(table, chain, args.figure)


if __name__ == "__main__":
    main()
