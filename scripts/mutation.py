#!/usr/bin/env python
"""Mutation testing of the modules that carry the science, one module at a time (mutmut 3.x).

Not run in CI (too slow). For every module below, a scratch copy of ``src/``, ``tests/`` and
``pyproject.toml`` is made, a ``[tool.mutmut]`` section naming the module and its test subset is
appended to the copy's ``pyproject.toml``, and ``mutmut run`` is started in it with
``--max-children`` workers (2 by default). The verdicts are read back from mutmut's ``.meta``
files and written as a Markdown table (``--table``) and a JSON file per module (``--out``).

Numba kernels. mutmut rewrites every function into a *trampoline* that looks the active mutant up
in an environment variable; numba cannot compile such a function, and mutmut does not mutate
decorated functions at all (``@nb.njit`` functions are skipped). The scoring modules are therefore
run with ``NUMBA_DISABLE_JIT=1``: the ``twins()``-compiled kernels (plain functions passed to
``nb.njit`` by a helper) then run as Python and are mutated; the few ``@nb.njit``-decorated helpers
(``lower_bound``, ``class_counts``, the native-sum kernels, the AUCell rank kernel) are left out by
mutmut and are covered only by the peer tests (scanpy, decoupler, pyucell).

Sampling. ``--sample N`` tests a seeded random sample of N mutants of a module (all when it has
fewer), so the whole run fits in an hour on 2 cores; the table says how many of how many.

Usage::

    python scripts/mutation.py                         # every module, all mutants
    python scripts/mutation.py stats compare --sample 60 --max-children 2
    python scripts/mutation.py --list                  # the modules and their tests

The modules are measured on the code of the current checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Module:
    name: str
    files: tuple[str, ...]  #: paths below src/ to mutate
    tests: tuple[str, ...]  #: test files (or node ids) that cover it
    env: dict = field(default_factory=dict)


_NO_JIT = {"NUMBA_DISABLE_JIT": "1"}
_SCORING_TESTS = ("tests/scoring/test_score_genes.py", "tests/scoring/test_aucell.py",
                  "tests/scoring/test_ucell.py", "tests/scoring/test_zmean.py",
                  "tests/scoring/test_properties.py")

MODULES = [
    Module("stats", ("noa_omics/celltypes/_stats.py",), ("tests/celltypes/test_stats.py",)),
    Module("compare", ("noa_omics/celltypes/_compare.py",),
           ("tests/celltypes/test_compare.py", "tests/celltypes/test_stats.py")),
    Module("metrics", ("noa_omics/spatial/_metrics.py",),
           ("tests/spatial/test_tubule_metrics.py", "tests/spatial/test_niche_summary.py")),
    Module("tubules", ("noa_omics/spatial/_tubules.py",), ("tests/spatial/test_assign_tubules.py",)),
    Module("axes", ("noa_omics/multihit/_axes.py",),
           ("tests/multihit/test_axes.py", "tests/multihit/test_multihit.py")),
    Module("context", ("noa_omics/multihit/_context.py",),
           ("tests/multihit/test_context.py", "tests/multihit/test_multihit.py")),
    Module("scoring_methods",
           ("noa_omics/scoring/_score_genes.py", "noa_omics/scoring/_aucell.py", "noa_omics/scoring/_ucell.py",
            "noa_omics/scoring/_zmean.py", "noa_omics/scoring/_linear.py", "noa_omics/scoring/_base.py"),
           ("tests/scoring/test_base.py", *_SCORING_TESTS), _NO_JIT),
    Module("scoring_kernels", ("noa_omics/scoring/_kernels.py", "noa_omics/scoring/_matrix.py"),
           ("tests/scoring/test_kernels.py", "tests/scoring/test_matrix.py", *_SCORING_TESTS), _NO_JIT),
]

#: folders next to src/ that the package or the tests read (the gene-set library lives in genesets/)
_DATA_DIRS = ("genesets", "docs", "workflows")

#: mutmut exit code -> verdict (mutmut.stats.status_by_exit_code, grouped)
_VERDICT = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
            36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
            -15: "timeout", -11: "segfault", -9: "segfault", None: "not checked"}


def _config(module: Module) -> str:
    only = ", ".join(f'"src/{f}"' for f in module.files)
    tests = ", ".join(f'"{t}"' for t in module.tests)
    data = ", ".join(f'"{d}"' for d in _DATA_DIRS)
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = [{only}]\n"
        f"pytest_add_cli_args_test_selection = [{tests}]\n"
        'pytest_add_cli_args = ["-p", "no:xdist", "-p", "no:cacheprovider", "-q", "-x", "-W", "ignore"]\n'
        "timeout_multiplier = 20.0\n"
        "use_git_change_detection = false\n"
        f"also_copy = [{data}]\n"
    )


def _prepare(module: Module, work: Path, tests_rev: str | None) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    shutil.copytree(REPO / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    if tests_rev is None:
        shutil.copytree(REPO / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    else:  # the test suite of another commit (e.g. before new tests) against the current code
        archive = subprocess.run(["git", "archive", tests_rev, "tests"], cwd=REPO, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    for extra in _DATA_DIRS:  # the gene-set library, docs and workflow files read by tests
        if (REPO / extra).exists():
            shutil.copytree(REPO / extra, work / extra)
    text = (REPO / "pyproject.toml").read_text()
    (work / "pyproject.toml").write_text(text + _config(module))


def _env(module: Module) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # mutmut puts mutants/src first
    env.update(module.env)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("NUMBA_NUM_THREADS", "1")
    # mutmut forks every mutant's test run from a warmed-up server; numba's default OpenMP
    # threading layer (GNU libgomp) is not fork-safe and the child raises SIGTERM on itself
    # ("Terminating: fork() called from a process already using GNU OpenMP"), which mutmut
    # reports as exit -15 ("suspicious"): the workqueue layer is fork-safe
    env.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def _mutmut(args: list[str], work: Path, env: dict, log, timeout: float) -> int:
    cmd = [sys.executable, "-c", "import sys; from mutmut.__main__ import cli; sys.exit(cli())", *args]
    # own process group: on the module's time limit mutmut *and* its forked workers are stopped,
    # and the verdicts found so far are kept (the rest stay "not checked")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return proc.wait(timeout=max(timeout, 1.0))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return 124


def _verdicts(work: Path) -> dict[str, str]:
    out = {}
    for meta in (work / "mutants").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        for key, code in data.get("exit_code_by_key", {}).items():
            out[key] = _VERDICT.get(code, "suspicious")
    return out


def run_module(module: Module, *, root: Path, sample: int | None, max_children: int, seed: int,
               timeout: float, tests_rev: str | None = None, only: list[str] | None = None) -> dict:
    work = root / module.name
    _prepare(module, work, tests_rev)
    env = _env(module)
    t0 = time.time()
    with open(work / "mutmut.log", "w") as log:
        # 1. generate the mutants and map tests -> functions (runs the test subset once), test none
        _mutmut(["run", "--max-children", str(max_children), "__none__*"], work, env, log, timeout)
        everything = sorted(_verdicts(work))
        chosen = everything
        if sample is not None and len(everything) > sample:
            chosen = sorted(random.Random(seed).sample(everything, sample))
        if only is not None:
            chosen = sorted(set(only) & set(everything))
        # 2. test the chosen mutants (in chunks: the command line has a length limit)
        left = timeout - (time.time() - t0)
        for start in range(0, len(chosen), 200):
            if left <= 0:
                break
            t1 = time.time()
            _mutmut(["run", "--max-children", str(max_children), *chosen[start : start + 200]],
                    work, env, log, left)
            left -= time.time() - t1
    verdicts = {k: v for k, v in _verdicts(work).items() if k in set(chosen)}
    # SIGTERM from mutmut's wall-clock limit is reported as -15 ("suspicious" in mutmut)
    counts: dict[str, int] = {}
    for v in verdicts.values():
        counts[v] = counts.get(v, 0) + 1
    survivors = sorted(k for k, v in verdicts.items() if v in ("survived", "no tests"))
    return {"module": module.name, "files": list(module.files), "tests": list(module.tests),
            "n_mutants": len(everything), "n_tested": len(chosen), "counts": counts,
            "survivors": survivors, "seconds": round(time.time() - t0, 1), "env": module.env,
            "workdir": str(work), "tests_rev": tests_rev or "working tree", "sample": sample,
            "seed": seed, "verdicts": verdicts}


def verify_survivors(module: Module, previous: dict, *, timeout: float, retest_timeouts: bool = True) -> dict:
    """Re-test the survivors of an earlier run (``previous``, its JSON) with the working tree's tests.

    Runs in the earlier run's mutmut folder: the current ``tests/`` replace the copy there and each
    survivor is activated by mutmut's own switch (``MUTANT_UNDER_TEST``) in a plain pytest run of
    the module's test subset, so only the tests changed; the code and the mutants are the same.
    """
    work = Path(previous["workdir"]) / "mutants"
    if (work / "tests").exists():
        shutil.rmtree(work / "tests")
    shutil.copytree(REPO / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    env = _env(module)
    env["PYTHONPATH"] = str(work / "src")
    verdicts = dict(previous["verdicts"])
    t0 = time.time()
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
           "-W", "ignore", *module.tests]
    # a "kill" means nothing unless the unmutated code passes the same tests in the same place
    clean = subprocess.run(cmd, cwd=work, env={**env, "MUTANT_UNDER_TEST": ""}, capture_output=True, text=True)
    if clean.returncode != 0:
        raise RuntimeError(f"the clean run of {module.name} fails; fix it first:\n{clean.stdout[-3000:]}")
    # survivors, and timeouts (the wall-clock limit from a loaded machine can stop a mutant that
    # would pass): re-tested without mutmut's limit (10 minutes each)
    again = ("survived", "no tests", "timeout", "suspicious") if retest_timeouts else ("survived", "no tests")
    retest = sorted(k for k, v in previous["verdicts"].items() if v in again)
    for name in retest:
        if time.time() - t0 > timeout:
            break
        try:
            rc = subprocess.run(cmd, cwd=work, env={**env, "MUTANT_UNDER_TEST": name},
                                capture_output=True, timeout=600).returncode
        except subprocess.TimeoutExpired:
            rc = 36
        verdicts[name] = _VERDICT.get(rc, "killed" if rc in (1, 3) else "suspicious")
        print(f"[verify] {name}: {verdicts[name]}", flush=True)
    counts: dict[str, int] = {}
    for v in verdicts.values():
        counts[v] = counts.get(v, 0) + 1
    return {**previous, "counts": counts, "verdicts": verdicts, "tests_rev": "working tree (survivors re-tested)",
            "survivors": sorted(k for k, v in verdicts.items() if v in ("survived", "no tests")),
            "verify_seconds": round(time.time() - t0, 1)}


def table(results: list[dict], equivalent: dict[str, list[str]] | None = None) -> str:
    equivalent = equivalent or {}
    lines = ["| module | mutants | tested | killed | survived | equivalent | no tests | timeout | "
             "killed / (killed + non-equivalent survivors) | minutes |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        c = dict(r["counts"])
        c["timeout"] = c.get("timeout", 0) + c.pop("suspicious", 0)
        eq = len(set(equivalent.get(r["module"], [])) & set(r["survivors"]))
        killed = c.get("killed", 0)
        survived = c.get("survived", 0) + c.get("no tests", 0) - eq
        denominator = killed + survived  # timeouts left out: not a verdict
        score = f"{100 * killed / denominator:.1f}%" if denominator else "n/a"
        lines.append(f"| {r['module']} | {r['n_mutants']} | {r['n_tested']} | {c.get('killed', 0)} | "
                     f"{c.get('survived', 0)} | {eq} | {c.get('no tests', 0)} | {c.get('timeout', 0)} | "
                     f"{score} | {r['seconds'] / 60:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module names (default: all)")
    parser.add_argument("--sample", type=int, default=None, help="mutants per module (seeded sample)")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "noa-mutation")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per module")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "mutation")
    parser.add_argument("--equivalent", type=Path, default=None,
                        help="JSON {module: [mutant names argued equivalent]} for the table")
    parser.add_argument("--tests-rev", default=None,
                        help="git revision whose tests/ to run (default: the working tree's tests)")
    parser.add_argument("--rerun-survivors", type=Path, default=None,
                        help="folder of an earlier run: test only its survivors (module JSON files)")
    parser.add_argument("--verify", type=Path, default=None,
                        help="folder of an earlier run: re-test its survivors with the working tree's tests")
    parser.add_argument("--skip-timeouts", action="store_true",
                        help="with --verify: re-test only the survivors, not the timeouts")
    parser.add_argument("--table-only", type=Path, default=None,
                        help="print the table of the JSON files in this folder and exit")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        for m in MODULES:
            print(f"{m.name}: {', '.join(m.files)} <- {', '.join(m.tests)} {m.env or ''}")
        return 0
    chosen = [m for m in MODULES if not args.modules or m.name in args.modules]
    if args.table_only is not None:
        found = [json.loads((args.table_only / f"{m.name}.json").read_text()) for m in chosen
                 if (args.table_only / f"{m.name}.json").exists()]
        equivalent = json.loads(args.equivalent.read_text()) if args.equivalent else None
        print(table(found, equivalent))
        return 0
    unknown = set(args.modules) - {m.name for m in MODULES}
    if unknown:
        parser.error(f"unknown module(s) {sorted(unknown)}; use {[m.name for m in MODULES]}")
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for m in chosen:
        print(f"[mutation] {m.name} ...", flush=True)
        if args.verify is not None:
            previous = args.verify / f"{m.name}.json"
            if not previous.exists():
                continue
            r = verify_survivors(m, json.loads(previous.read_text()), timeout=args.timeout,
                                 retest_timeouts=not args.skip_timeouts)
            (args.out / f"{m.name}.json").write_text(json.dumps(r, indent=2) + "\n")
            results.append(r)
            continue
        only = None
        if args.rerun_survivors is not None:
            only = json.loads((args.rerun_survivors / f"{m.name}.json").read_text())["survivors"]
        r = run_module(m, root=args.workdir, sample=args.sample, max_children=args.max_children,
                       seed=args.seed, timeout=args.timeout, tests_rev=args.tests_rev, only=only)
        (args.out / f"{m.name}.json").write_text(json.dumps(r, indent=2) + "\n")
        print(f"[mutation] {m.name}: {r['counts']} ({r['n_tested']}/{r['n_mutants']} tested, "
              f"{r['seconds']:.0f} s)", flush=True)
        results.append(r)
    equivalent = json.loads(args.equivalent.read_text()) if args.equivalent else None
    print(table(results, equivalent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
