"""Pipeline benchmark (not a test): stage-by-stage wall time and peak RSS of ``noa-omics run``.

For each size the whole single-cell pipeline (``noa_omics.pipeline.run_pipeline``, the code of
``noa-omics run``) runs in a fresh child process on an ``.h5ad`` of raw counts in ``X``
(``demo_testis``; seed 1 for the first 200,000 cells, then seeds 2, 3, ... for further chunks of
200,000 with their samples renamed ``<sample>-c<k>``, so 1M cells are 5 simulated cohorts). The
spatial stage is not part of it (see ``bench_spatial.py``).

Per step (the analysis functions of ``noa_omics.pipeline.steps`` wrapped with a timer) and per
stage: wall time and the peak resident set size of the process during it (sampled every 50 ms by
a thread, and never below ``getrusage``'s maximum when the maximum was reached during it).
Steps: ``read`` (read_h5ad), ``prepare`` (normalise), ``graph`` (PCA + kNN), ``annotate``,
``umap``, ``score``, ``profile``, ``compare``, ``enrichment``, ``multihit``; stages: the
pipeline's ``load``, ``annotate``, ``score``, ``profile``, ``multihit``, ``report`` (their time
beyond their steps is figures, tables and writing ``results.h5ad``).

The log-log slope of time against cells between consecutive sizes (and a least-squares fit over
all sizes) is reported per step: 1 is linear, ~1.1 is n log n over a decade, 2 quadratic.

Usage::

    python benchmarks/bench_pipeline.py --cells 10000 100000 --dir /tmp/noa-bench \\
        --json benchmarks/results/pipeline.json
    python benchmarks/bench_pipeline.py --table benchmarks/results/pipeline.json   # markdown table
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
from pathlib import Path

import numpy as np

CHUNK = 200_000
STEPS = ("read", "prepare", "graph", "annotate", "umap", "score", "profile", "compare", "enrichment", "multihit")
STAGES = ("load", "annotate", "score", "profile", "multihit", "report")


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def make_data(n_cells: int, directory: Path) -> Path:
    """Write (once) an h5ad of ``n_cells`` demo cells with raw counts in X; reuse it when present."""
    import anndata as ad

    path = directory / f"demo_testis_{n_cells}.h5ad"
    if path.is_file():
        return path
    import noa_omics as noa

    directory.mkdir(parents=True, exist_ok=True)
    parts = []
    for k, start in enumerate(range(0, n_cells, CHUNK)):
        size = min(CHUNK, n_cells - start)
        part_path = directory / f"chunk_{n_cells}_{k}.h5ad"
        chunk = noa.datasets.demo_testis(seed=1 + k, n_cells=size)
        del chunk.layers["counts"]  # X holds the same raw counts
        chunk.uns = {}
        if k:
            for col in ("sample", "donor"):
                chunk.obs[col] = chunk.obs[col].astype(str) + f"-c{k}"
        chunk.obs_names = [f"c{k}-{i}" for i in range(chunk.n_obs)]
        chunk.write_h5ad(part_path)
        parts.append(part_path)
        del chunk
    tmp = path.with_suffix(".tmp.h5ad")
    if len(parts) == 1:
        parts[0].rename(tmp)
    else:
        from anndata.experimental import concat_on_disk

        concat_on_disk([str(p) for p in parts], str(tmp))
        for p in parts:
            p.unlink()
    tmp.rename(path)
    return path


# ---------------------------------------------------------------------------------------------
# Measurement (child process)
# ---------------------------------------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cpu() -> float:
    """CPU seconds (user + system, all threads) of this process: less sensitive than wall time to
    other jobs on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Meter:
    """Peak RSS over nested intervals, sampled by a background thread."""

    def __init__(self, interval: float = 0.05) -> None:
        self.open: dict[str, int] = {}
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = _rss()
            for key in list(self.open):
                if rss > self.open.get(key, 0):
                    self.open[key] = rss
            time.sleep(self.interval)

    def start(self, key: str) -> tuple[float, int, float]:
        self.open[key] = _rss()
        return time.perf_counter(), _maxrss(), _cpu()

    def stop(self, key: str, token: tuple[float, int, float]) -> dict[str, float]:
        t0, max_before, cpu0 = token
        seconds = time.perf_counter() - t0
        cpu = _cpu() - cpu0
        peak = max(self.open.pop(key, 0), _rss())
        max_after = _maxrss()
        if max_after > max_before:  # the process maximum was reached during this interval
            peak = max(peak, max_after)
        return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "peak_rss_gib": round(peak / 2**30, 3)}


def child(path: str, out: str, seed: int) -> dict:
    import anndata as ad

    from noa_omics.pipeline import _steps, config_from_dict, run_pipeline

    meter = Meter()
    steps: dict[str, dict] = {}
    stages: dict[str, dict] = {}

    def timed(name, func):
        def wrapper(*args, **kwargs):
            token = meter.start(name)
            try:
                return func(*args, **kwargs)
            finally:
                record = meter.stop(name, token)
                if name in steps:  # called twice: keep both
                    steps[name] = {"seconds": round(steps[name]["seconds"] + record["seconds"], 2),
                                   "cpu_seconds": round(steps[name]["cpu_seconds"] + record["cpu_seconds"], 2),
                                   "peak_rss_gib": max(steps[name]["peak_rss_gib"], record["peak_rss_gib"])}
                else:
                    steps[name] = record
        return wrapper

    embed = _steps.embed

    def embed_split(adata, **kwargs):
        name = "umap" if kwargs.get("umap", True) else "graph"
        return timed(name, embed)(adata, **kwargs)

    _steps.embed = embed_split
    for name in ("prepare_expression", "annotate", "score", "profile", "compare", "enrichment", "multihit"):
        setattr(_steps, name, timed("prepare" if name == "prepare_expression" else name, getattr(_steps, name)))
    ad.read_h5ad = timed("read", ad.read_h5ad)

    class Progress:
        def start(self, name, description):
            self.token = meter.start("stage:" + name)

        def done(self, name, seconds):
            stages[name] = meter.stop("stage:" + name, self.token)

    cfg = config_from_dict({
        "output": out, "seed": seed,
        "singlecell": {"path": path, "counts_layer": None, "sample_key": "sample", "condition_key": "condition",
                       "reference": "control"},
        "scoring": {"methods": ["score_genes"]},
        "enrichment": {"permutations": 100},
    })
    t0 = time.perf_counter()
    run_pipeline(cfg, progress=Progress(), command="bench_pipeline.py")
    total = time.perf_counter() - t0
    return {"steps": steps, "stages": stages, "total_seconds": round(total, 1),
            "total_cpu_seconds": round(_cpu(), 1), "peak_rss_gib": round(_maxrss() / 2**30, 3),
            "load_average": os.getloadavg()}


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def slopes(results: dict[str, dict], key: str, names: tuple[str, ...], measure: str = "seconds") -> dict[str, dict]:
    sizes = sorted(int(n) for n in results)
    out = {}
    for name in names:
        pts = [(n, results[str(n)][key][name][measure]) for n in sizes
               if name in results[str(n)][key] and results[str(n)][key][name].get(measure, 0) > 0]
        if len(pts) < 2:
            continue
        x = np.log([p[0] for p in pts])
        y = np.log([p[1] for p in pts])
        pairwise = {f"{pts[i][0]}-{pts[i + 1][0]}": round(float((y[i + 1] - y[i]) / (x[i + 1] - x[i])), 2)
                    for i in range(len(pts) - 1)}
        out[name] = {"fit": round(float(np.polyfit(x, y, 1)[0]), 2), "pairwise": pairwise}
    return out


def table(data: dict) -> str:
    """Markdown: wall s / CPU s / peak GiB per step and size, and the wall and CPU slopes of the
    two largest sizes."""
    results = data["results"]
    sizes = sorted(int(n) for n in results)
    head = ("| step | " + " | ".join(f"{n:,} cells: wall s / CPU s / GiB" for n in sizes)
            + " | slope wall | slope CPU |")
    lines = [head, "|" + "---|" * (len(sizes) + 3)]
    slope = data.get("slopes", {})
    cpu_slope = data.get("cpu_slopes", {})

    def last(table_, key, name):
        pairwise = table_.get(key, {}).get(name, {}).get("pairwise", {})
        return list(pairwise.values())[-1] if pairwise else "-"

    for key, names in (("steps", STEPS), ("stages", STAGES)):
        for name in names:
            cells = []
            for n in sizes:
                rec = results[str(n)][key].get(name)
                cpu = f"{rec['cpu_seconds']:.0f}" if rec and "cpu_seconds" in rec else "-"
                cells.append(f"{rec['seconds']:.1f} / {cpu} / {rec['peak_rss_gib']:.2f}" if rec else "-")
            label = name if key == "steps" else f"stage `{name}`"
            lines.append(f"| {label} | " + " | ".join(cells)
                         + f" | {last(slope, key, name)} | {last(cpu_slope, key, name)} |")
    lines.append("| **total** | " + " | ".join(
        f"**{results[str(n)]['total_seconds']:.0f} / {results[str(n)].get('total_cpu_seconds', float('nan')):.0f} / "
        f"{results[str(n)]['peak_rss_gib']:.2f}**" for n in sizes) + " | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dir", default="/tmp/noa-bench")
    parser.add_argument("--json", default=None, help="results file; existing sizes in it are kept")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--table", default=None, help="print the markdown table of a results file and exit")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return
    if args.child:
        print("RESULT " + json.dumps(child(args.child[0], args.child[1], args.seed)))
        return
    directory = Path(args.dir)
    data = {"results": {}}
    if args.json and Path(args.json).is_file():
        data = json.loads(Path(args.json).read_text())
    for n in args.cells:
        t0 = time.perf_counter()
        path = make_data(n, directory)
        print(f"[{n:,}] data ready in {time.perf_counter() - t0:.0f} s: {path}", flush=True)
        out = directory / f"results_{n}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        proc = subprocess.run([sys.executable, __file__, "--seed", str(args.seed), "--child", str(path), str(out)],
                              capture_output=True, text=True, env=env)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            print(proc.stdout[-3000:], proc.stderr[-5000:], file=sys.stderr)
            raise SystemExit(f"run at {n} cells failed (exit {proc.returncode})")
        result = json.loads(line[0][len("RESULT "):])
        result["n_cells"] = n
        data["results"][str(n)] = result
        print(f"[{n:,}] total {result['total_seconds']} s, peak RSS {result['peak_rss_gib']} GiB", flush=True)
        print(json.dumps(result["steps"]), flush=True)
        data["slopes"] = {"steps": slopes(data["results"], "steps", STEPS),
                          "stages": slopes(data["results"], "stages", STAGES)}
        data["cpu_slopes"] = {"steps": slopes(data["results"], "steps", STEPS, "cpu_seconds"),
                              "stages": slopes(data["results"], "stages", STAGES, "cpu_seconds")}
        data["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(data, indent=1))
    print(table(data))


if __name__ == "__main__":
    main()
