"""Evaluations per second of the search's fitting with 1 and 2 worker processes, and the latency
of one thorough fit and of one mutation.

    python benchmarks/throughput.py [--laws 200] [--workers 1 2]

Scores the same fixed set of laws (the library's forms plus seeded mutations of them on
tasks/demo.yaml) through the executor the search uses, and prints laws/s for each worker
count; then the median time of a default (thorough) fit of Chinchilla's law on 150 rows
(target: under 0.2 s) and the time per proposal of the mutation proposer (target: under
0.1 s; typically a few milliseconds). Not a test: measurements to report.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lawsearch.fit import fit_group
from lawsearch.formula import Law
from lawsearch.proposers.base import ScoredLaw, SearchContext
from lawsearch.proposers.library import LibraryProposer
from lawsearch.proposers.mutate import MutationProposer
from lawsearch.search.engine import Discovery
from lawsearch.search.scoring import evaluate_batch
from lawsearch.search.executors import make_executor
from lawsearch.search.settings import SearchSettings
from lawsearch.task import load_task

REPO = Path(__file__).resolve().parents[1]


def laws_to_score(task, n: int) -> list[str]:
    """Library forms, then mutations of them, until n distinct formulas."""
    st = task.train
    context = SearchContext(inputs=task.inputs, targets=task.targets, X=st.X, Y=st.Y, groups=st.groups,
                            rng=np.random.default_rng(0), max_parameters=6)
    formulas = [p.formula for p in LibraryProposer().propose(context, n)]
    context.best = [ScoredLaw(f, 10, 3, 0.1) for f in formulas[:10]]
    mutate = MutationProposer()
    while len(formulas) < n:
        formulas += [p.formula for p in mutate.propose(context, 16)]
    return list(dict.fromkeys(formulas))[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    task = load_task(REPO / "tasks" / "demo.yaml")
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        search = Discovery(task, SearchSettings(proposers=("library",)), Path(scratch) / "run")
        payload = search.payload
    formulas = laws_to_score(task, args.laws)
    batches = [formulas[i:i + 4] for i in range(0, len(formulas), 4)]
    for workers in args.workers:
        executor = make_executor(workers)
        list(executor.map(evaluate_batch, [batches[0]] * workers, [payload] * workers))  # warm up the pool
        start = time.perf_counter()
        futures = [executor.submit(evaluate_batch, batch, payload) for batch in batches]
        results = [r for f in futures for r in f.result()]
        elapsed = time.perf_counter() - start
        executor.shutdown()
        ok = sum(r["status"] == "ok" for r in results)
        print(f"workers={workers}: {len(formulas)} laws ({ok} fitted) in {elapsed:.1f}s = {len(formulas) / elapsed:.2f} laws/s")
    print(f"thorough fit of Chinchilla's law, 150 rows: median {1000 * fit_latency():.0f} ms (target < 200 ms)")
    print(f"mutation proposer: {1000 * mutation_latency():.1f} ms per proposal (target < 100 ms)")


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
