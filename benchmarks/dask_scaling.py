"""Laws fitted per second on a real Dask cluster with 1, then 2 workers, and the share of the
workers' time that goes to scheduling rather than fitting.

    python benchmarks/dask_scaling.py [--task tasks/demo.yaml] [--laws 120] [--batch-sizes 1 4] [--generations 4]

Starts a `dask scheduler` and one `dask worker` process (one thread) on 127.0.0.1 from the command
line, scores a fixed set of laws (throughput.py's: the library's forms and seeded mutations of
them) through the executor `lawsearch discover --scheduler` uses, in jobs of each batch size; then
adds a second worker and scores them again.  Prints, per (workers, batch size): laws/s, the ratio
to one worker, the overhead = 1 - (seconds spent fitting, summed over the jobs) / (workers x wall
seconds), i.e. everything a worker does that is not fitting (scheduling, moving the data and the
results, waiting for the last job), and the cores the workers got = their CPU seconds / wall
seconds (2.0 at best with two single-threaded workers).  Then the cost of one job that fits
nothing (its payload still travels), beside the time of one law in process; and, with 1 and 2
workers and each batch size, a short `lawsearch discover --scheduler` run (one barrier per
generation): its laws/s and overhead, from history.jsonl and the checkpoint's per-generation
times (there the overhead also holds the proposers' time).  The machine's load average is printed
before and after: on a shared machine the ratio is bounded by the cores the other processes
leave.  Not a test: measurements to report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Executor
from pathlib import Path

from throughput import laws_to_score

from lawsearch.search.engine import Discovery
from lawsearch.search.scoring import EvalPayload, evaluate_batch
from lawsearch.search.executors import DaskExecutor, SerialExecutor
from lawsearch.search.local_cluster import CommandLineCluster
from lawsearch.search.settings import SearchSettings
from lawsearch.task import load_task

REPO = Path(__file__).resolve().parents[1]


def score(executor: Executor, formulas: list[str], payload: EvalPayload, batch_size: int) -> tuple[float, float]:
    """Wall seconds to score every formula in jobs of ``batch_size``, and the seconds the jobs spent fitting."""
    batches = [formulas[i:i + batch_size] for i in range(0, len(formulas), batch_size)]
    start = time.perf_counter()
    futures = [executor.submit(evaluate_batch, batch, payload) for batch in batches]
    records = [record for future in futures for record in future.result()]
    wall = time.perf_counter() - start
    return wall, sum(record["fit_seconds"] for record in records)


def seconds_per_empty_job(executor: DaskExecutor, payload: EvalPayload, jobs: int = 200) -> float:
    """Wall seconds per job of no formula (the payload still travels): the engine's cost of one job."""
    start = time.perf_counter()
    executor.client.gather([executor.client.submit(evaluate_batch, [], payload, pure=False) for _ in range(jobs)])
    return (time.perf_counter() - start) / jobs


def workers_cpu_seconds(executor: DaskExecutor) -> float:
    """CPU seconds the cluster's worker processes have used so far, summed."""
    return sum(executor.client.run(time.process_time).values())


def discover_on(cluster: CommandLineCluster, task: Path, generations: int, batch_size: int,
                out: Path) -> tuple[float, float]:
    """Run `lawsearch discover --scheduler` (library and mutations, seed 0, jobs of ``batch_size`` laws) for
    ``generations``; return the laws/s and the overhead (as above) of generations 1 and later (generation 0
    holds the engine's startup)."""
    out.mkdir(parents=True)
    (out.parent / f"{out.name}.yaml").write_text(f"batch_size: {batch_size}\n")
    subprocess.run([sys.executable, "-m", "lawsearch.cli", "discover", str(task), "--scheduler", cluster.address,
                    "--generations", str(generations), "--time-limit", "3600", "--proposers", "library,mutate",
                    "--bootstrap", "0", "--seed", "0", "--config", str(out.parent / f"{out.name}.yaml"),
                    "--quiet", "--no-report", "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    trace = json.loads((out / "checkpoint.json").read_text())["best_trace"]
    wall = trace[-1]["elapsed"] - trace[0]["elapsed"]
    records = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    fitting = sum(r.get("fit_seconds", 0.0) for r in records if r.get("generation", 0) > 0)
    laws = trace[-1]["evaluations"] - trace[0]["evaluations"]
    return laws / wall, 1 - fitting / (cluster.workers * wall)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", type=Path, default=REPO / "tasks" / "demo.yaml")
    parser.add_argument("--laws", type=int, default=120)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--generations", type=int, default=4, help="of each discover run (below 2: none)")
    args = parser.parse_args()
    task = load_task(args.task)
    with tempfile.TemporaryDirectory() as scratch:
        payload = Discovery(task, SearchSettings(proposers=("library",)), Path(scratch) / "run").payload
        formulas = laws_to_score(task, args.laws)
        print(f"{task.name}: {len(formulas)} laws, {os.cpu_count()} cores, load average {load()} (1/5/15 min)")
        evaluate_batch(formulas[:2], payload)  # compile once, as a warm worker has
        wall, fitting = score(SerialExecutor(), formulas, payload, len(formulas))
        per_law = wall / len(formulas)
        print(f"serial, in process: {len(formulas) / wall:.2f} laws/s ({fitting:.1f}s fitting in {wall:.1f}s)\n")
        print("| Dask workers | batch | laws/s | ratio to 1 worker | overhead | cores the workers got |")
        print("|---|---|---|---|---|---|")
        single: dict[int, float] = {}
        discovered: dict[tuple[int, int], tuple[float, float]] = {}
        with CommandLineCluster(Path(scratch) / "cluster") as cluster:
            for workers in (1, 2):
                cluster.add_workers(workers - cluster.workers)
                executor = DaskExecutor(cluster.address)
                list(executor.map(evaluate_batch, [[f] for f in formulas[-workers:]], [payload] * workers))  # warm up
                for batch_size in args.batch_sizes:
                    cpu = workers_cpu_seconds(executor)
                    wall, fitting = score(executor, formulas, payload, batch_size)
                    cores = (workers_cpu_seconds(executor) - cpu) / wall
                    rate = len(formulas) / wall
                    single.setdefault(batch_size, rate)
                    print(f"| {workers} | {batch_size} | {rate:.2f} | {rate / single[batch_size]:.2f} | "
                          f"{100 * (1 - fitting / (workers * wall)):.1f}% | {cores:.2f} |", flush=True)
                if workers == 1:
                    empty = seconds_per_empty_job(executor, payload)
                executor.shutdown()
                for batch_size in args.batch_sizes if args.generations > 1 else ():
                    discovered[workers, batch_size] = discover_on(
                        cluster, args.task, args.generations, batch_size,
                        Path(scratch) / f"discover-{workers}-{batch_size}")
    print(f"\none job of no law, 1 worker: {1000 * empty:.1f} ms; one law in process: {1000 * per_law:.0f} ms")
    if discovered:
        print(f"\nlawsearch discover --scheduler, generations 1-{args.generations - 1}:\n")
        print("| Dask workers | batch | laws/s | ratio to 1 worker | overhead |")
        print("|---|---|---|---|---|")
    for (workers, batch_size), (rate, overhead) in discovered.items():
        print(f"| {workers} | {batch_size} | {rate:.2f} | {rate / discovered[1, batch_size][0]:.2f} | "
              f"{100 * overhead:.1f}% |")
    print(f"load average after: {load()}")

if __name__ == "__main__":
    main()
