"""Laws per second of the search's fitting, old code beside new, and the latency of one thorough
fit and of one mutation.

    python benchmarks/throughput.py [--task demo] [--laws 200] [--workers 1] [--compare main]

Scores the same fixed set of laws (the library's forms plus seeded mutations of them on the
task) through the executor the search uses, with the search's cheap fit options and seed.
With ``--compare REF`` the laws are scored twice in the same run, each in its own process: by
the code of git ref REF (exported into a temporary folder with ``git archive``) and by this
checkout, in turns (``--rounds``), so the machine's load hits both alike.  It prints laws/s of
each and their ratio, how many laws' validation errors are within 1% of the old ones or
better (and the worst cases), and each scoring process's peak memory (its max RSS: the
worker, with one worker).  With one worker it also gives laws per CPU second of the scoring
process, which other load on a shared machine disturbs far less than wall time.  Then the median time of a default (thorough) fit of Chinchilla's
law on 150 rows (target: under 0.2 s) and the time per proposal of the mutation proposer
(target: under 0.1 s).  Not a test: measurements to report.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lawsearch.fit import fit_group
from lawsearch.formula import Law
from lawsearch.proposers.base import ScoredLaw, SearchContext
from lawsearch.proposers.library import LibraryProposer
from lawsearch.proposers.mutate import MutationProposer
from lawsearch.search.engine import Discovery
from lawsearch.search.executors import make_executor
from lawsearch.search.settings import SearchSettings
from lawsearch.task import load_task

REPO = Path(__file__).resolve().parents[1]
WITHIN = 0.01  # a new validation error within 1% of the old one (or better) keeps the quality


def laws_to_score(task, n: int) -> list[str]:
    """Library forms, then mutations of them, until n distinct formulas."""
    st = task.train
    limit = min(6, task.max_parameters or 6)
    context = SearchContext(inputs=task.inputs, targets=task.targets, X=st.X, Y=st.Y, groups=st.groups,
                            rng=np.random.default_rng(0), max_parameters=limit)
    formulas = [p.formula for p in LibraryProposer().propose(context, n)]
    context.best = [ScoredLaw(f, 10, 3, 0.1) for f in formulas[:10]]
    mutate = MutationProposer()
    while len(formulas) < n:
        formulas += [p.formula for p in mutate.propose(context, 16)]
    return list(dict.fromkeys(formulas))[:n]


def score(task_name: str, formulas: list[str], workers: int) -> dict:
    """Score ``formulas`` with the search's payload through ``workers`` processes: seconds and records."""
    try:
        from lawsearch.search.scoring import evaluate_batch
    except ModuleNotFoundError:  # code before search/evaluation.py became search/scoring.py (for --compare)
        from lawsearch.search.evaluation import evaluate_batch
    task = load_task(REPO / "tasks" / f"{task_name}.yaml")
    with tempfile.TemporaryDirectory() as scratch:
        payload = Discovery(task, SearchSettings(proposers=("library",)), Path(scratch) / "run").payload
    batches = [formulas[i:i + 4] for i in range(0, len(formulas), 4)]
    executor = make_executor(workers)
    list(executor.map(evaluate_batch, [batches[0]] * workers, [payload] * workers))  # warm up the pool
    start, cpu_start = time.perf_counter(), time.process_time()
    futures = [executor.submit(evaluate_batch, batch, payload) for batch in batches]
    results = [r for f in futures for r in f.result()]
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    executor.shutdown()
    return {"seconds": elapsed, "cpu_seconds": cpu if workers == 1 else None,
            "records": [{k: r.get(k) for k in ("status", "val_error")} for r in results],
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def score_in_process(code: Path, task: str, formulas: list[str], workers: int) -> dict:
    """:func:`score` in a fresh Python process that imports ``lawsearch`` from ``code``."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(formulas, handle)
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, __file__, "--task", task, "--workers", str(workers),
                           "--score", handle.name], env=env, check=True, capture_output=True, text=True)
    os.unlink(handle.name)
    return json.loads(done.stdout.strip().splitlines()[-1])


def exported(ref: str, into: Path) -> Path:
    """The package of git ref ``ref``, written under ``into`` (git archive: no worktree, no checkout)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "lawsearch"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def compare(old: list[dict], new: list[dict]) -> tuple[float, int, list[tuple[int, float, float]]]:
    """Share of laws whose new validation error is within :data:`WITHIN` of the old one or
    better, how many are better by more than that, and the (index, old, new) of the worse ones,
    worst first (a law no longer fitted, or rejected, has error inf)."""
    worse, better = [], 0
    for i, (a, b) in enumerate(zip(old, new)):
        before = a["val_error"] if a["status"] == "ok" else float("inf")
        after = b["val_error"] if b["status"] == "ok" else float("inf")
        if after > before * (1 + WITHIN) + 1e-12:
            worse.append((i, before, after))
        elif before > after * (1 + WITHIN) + 1e-12:
            better += 1
    worse.sort(key=lambda w: -(w[2] / w[1]) if w[1] > 0 else -float("inf"))
    return 1 - len(worse) / max(len(old), 1), better, worse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="demo", help="a task of tasks/ (default: demo)")
    parser.add_argument("--laws", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--compare", metavar="REF", help="also score with the code of this git ref (e.g. main)")
    parser.add_argument("--rounds", type=int, default=1, help="with --compare: old/new turns, times summed")
    parser.add_argument("--score", help=argparse.SUPPRESS)  # internal: score the formulas of this JSON file
    args = parser.parse_args()
    if args.score:
        print(json.dumps(score(args.task, json.loads(Path(args.score).read_text()), args.workers[0])))
        return
    formulas = laws_to_score(load_task(REPO / "tasks" / f"{args.task}.yaml"), args.laws)
    with tempfile.TemporaryDirectory() as scratch:
        versions = {"new": REPO}
        if args.compare:
            versions = {f"old ({args.compare})": exported(args.compare, Path(scratch)), **versions}
        for workers in args.workers:
            runs: dict[str, list[dict]] = {name: [] for name in versions}
            for _ in range(args.rounds):
                for name, code in versions.items():
                    runs[name].append(score_in_process(code, args.task, formulas, workers))
            report(args.task, len(formulas), workers, runs)
    print(f"thorough fit of Chinchilla's law, 150 rows: median {1000 * fit_latency():.0f} ms (target < 200 ms)")
    print(f"mutation proposer: {1000 * mutation_latency():.1f} ms per proposal (target < 100 ms)")


def report(task: str, n: int, workers: int, runs: dict[str, list[dict]]) -> None:
    """One line per version (laws/s, fitted, peak memory), the ratio and the quality comparison."""
    rates, cpu_rates = {}, {}
    for name, scored in runs.items():
        seconds = sum(s["seconds"] for s in scored)
        rates[name] = n * len(scored) / seconds
        ok = sum(r["status"] == "ok" for r in scored[0]["records"])
        memory = max(s["max_rss_mb"] for s in scored)
        cpu = ""
        if all(s.get("cpu_seconds") for s in scored):
            cpu_rates[name] = n * len(scored) / sum(s["cpu_seconds"] for s in scored)
            cpu = f" ({cpu_rates[name]:.2f} laws per CPU second)"
        print(f"{task} workers={workers} {name}: {n} laws ({ok} fitted) x {len(scored)} in {seconds:.1f}s = "
              f"{rates[name]:.2f} laws/s{cpu}; peak RSS {memory:.0f} MB")
    if len(runs) == 2:
        (old_name, old), (_, new) = runs.items()
        by_cpu = f"; per CPU second: {cpu_rates['new'] / cpu_rates[old_name]:.2f}" if len(cpu_rates) == 2 else ""
        print(f"{task} workers={workers} ratio new/old: {rates['new'] / rates[old_name]:.2f}{by_cpu}")
        share, better, worse = compare(old[0]["records"], new[0]["records"])
        print(f"{task}: {100 * share:.1f}% of laws within {100 * WITHIN:g}% of the old validation error or better "
              f"({better} better by more, {len(worse)} worse)")
        for i, before, after in worse[:8]:
            print(f"  worse: law {i}: old {before:.4g} new {after:.4g}")


def fit_latency(repeats: int = 10) -> float:
    """Median seconds of one default fit of E + A/N^alpha + B/D^beta to 150 noisy rows."""
    law = Law.parse("E + A/N**alpha + B/D**beta", ["N", "D"])
    rng = np.random.default_rng(0)
    X = np.column_stack([10 ** rng.uniform(7, 10, 150), 10 ** rng.uniform(9, 12, 150)])
    y = law.evaluate(X, [1.69, 406.4, 0.34, 410.7, 0.28]) * (1 + 0.001 * rng.standard_normal(150))
    fit_group(law, X, y)  # compile the law's functions once
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        fit_group(law, X, y, seed=seed)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def mutation_latency(n: int = 40) -> float:
    """Seconds per proposal of the mutation proposer on a few two-input parents."""
    parents = ["E + A/x**a + B/z**b", "A*x**a*z**b", "E + A*log(x) + B*log(z)", "E + A*exp(-b*x) + C/z"]
    context = SearchContext(inputs=("x", "z"), targets=("y",), X=np.ones((4, 2)) * 2.0, Y=np.ones((4, 1)),
                            groups=np.array(["all"] * 4, dtype=object), rng=np.random.default_rng(0),
                            max_parameters=6, best=[ScoredLaw(f, 10, 4, 0.1 * (i + 1)) for i, f in enumerate(parents)])
    start = time.perf_counter()
    proposals = MutationProposer().propose(context, n)
    return (time.perf_counter() - start) / max(len(proposals), 1)


if __name__ == "__main__":
    main()
