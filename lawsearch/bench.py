"""``lawsearch bench``: discover on every curated task and compare with the human laws and SLDBench.

Writes ``bench.csv`` (one row per task, seeds aggregated as mean, standard
deviation, min and max), ``bench.md`` (the same as a table, the clipped SLDBench
mean beside the published ones, and what each proposer contributed),
``bench.json`` (all of it as data, which ``lawsearch report`` reads) and
``bench.png`` (discovered vs human vs best published R² per task), plus every
run directory.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import LawsearchError
from .io import write_json_atomic, write_text_atomic
from .tables import best_human
from .search.engine import discover
from .search.settings import SearchSettings
from .task import CuratedTask, curated_tasks, load_task

__all__ = ["BenchRow", "run_bench", "sldbench_reference", "bench_markdown", "bench_csv", "bench_summary",
           "bench_json", "write_bench_files", "clip_r2", "TASK_TO_SLDBENCH"]

# our curated task name -> SLDBench task name
TASK_TO_SLDBENCH = {
    "parallel": "parallel",
    "vocab": "vocab",
    "sft": "sft",
    "domain_mixture": "domain_mixture",
    "moe": "moe",
    "data_constrained": "data_constrained",
    "lr_bsz": "lr_bsz",
    "easy_question": "easy_question",
}


def clip_r2(value: float | None) -> float:
    """R² clipped to [-1, 1] as on SLDBench's leaderboard (a missing value counts as -1)."""
    if value is None or value != value:
        return -1.0
    return min(max(float(value), -1.0), 1.0)


def sldbench_reference() -> dict[str, dict[str, str]]:
    """Published SLDBench figures (see lawsearch/data/sldbench_reference.csv for the citation)."""
    text = resources.files("lawsearch").joinpath("data/sldbench_reference.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#"))
    return {row["task"]: row for row in rows}


@dataclass
class BenchRow:
    """One task's result over its seeds."""

    task: str
    rows: str
    groups: int
    human_law: str
    human: dict[str, float]
    discovered: list[dict[str, Any]]  # one law object per seed
    wall_times: list[float]
    evaluations: list[int]
    sldbench: dict[str, str] | None
    proposers: list[dict[str, dict[str, Any]]] = field(default_factory=list)  # law.json's "proposers", per seed

    def mean_std(self, key: str) -> tuple[float, float]:
        values = [d["metrics"]["test"][key] for d in self.discovered if d["metrics"]["test"][key] is not None]
        if not values:
            return float("nan"), float("nan")
        return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0

    def r2_per_seed(self) -> list[float | None]:
        """The discovered law's test R² of each seed, in seed order."""
        return [d["metrics"]["test"]["r2"] for d in self.discovered]

    def record(self) -> dict[str, Any]:
        r2, r2_sd = self.mean_std("r2")
        nmse, nmse_sd = self.mean_std("nmse")
        nmae, nmae_sd = self.mean_std("nmae")
        finite = [v for v in self.r2_per_seed() if v is not None]
        best = max(self.discovered, key=lambda d: d["metrics"]["test"]["r2"] or float("-inf"))
        return {
            "task": self.task, "rows": self.rows, "groups": self.groups,
            "human_law": self.human_law, "human_r2": self.human.get("r2"), "human_nmse": self.human.get("nmse"),
            "human_nmae": self.human.get("nmae"),
            "law": best["formula"], "r2": r2, "r2_sd": r2_sd,
            "r2_min": min(finite) if finite else float("nan"), "r2_max": max(finite) if finite else float("nan"),
            "nmse": nmse, "nmse_sd": nmse_sd,
            "nmae": nmae, "nmae_sd": nmae_sd, "seeds": len(self.discovered),
            "sldbench_human_r2": self.sldbench["human_r2"] if self.sldbench else "",
            "sldbench_best_r2": self.sldbench["best_agent_r2"] if self.sldbench else "",
            "sldagent_r2": self.sldbench["sldagent_best_r2"] if self.sldbench else "",
            "wall_time_s": statistics.fmean(self.wall_times), "evaluations": statistics.fmean(self.evaluations),
        }


def run_bench(
    tasks: Sequence[str] | None = None,
    *,
    time_limit: float = 150.0,
    seeds: int = 1,
    out: Path = Path("results/bench"),
    settings: SearchSettings | None = None,
    on_task: Callable[[str, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[BenchRow]:
    """Run discover on each available curated task (all, or those named) for ``seeds`` seeds."""
    curated = curated_tasks()
    chosen: list[CuratedTask] = [c for c in curated if c.available]
    if tasks:
        by_name = {c.name: c for c in curated}
        missing = [t for t in tasks if t not in by_name]
        if missing:
            raise LawsearchError(f"unknown task {missing[0]!r}; curated tasks: {', '.join(sorted(by_name))}")
        unavailable = [by_name[t] for t in tasks if not by_name[t].available]
        if unavailable:
            raise LawsearchError(f"task {unavailable[0].name!r} is not available: {unavailable[0].reason}")
        chosen = [by_name[t] for t in tasks]
    if not chosen:
        raise LawsearchError("no curated task has its data here (set LAWSEARCH_DATA)")
    reference = sldbench_reference()
    base = settings or SearchSettings()
    rows: list[BenchRow] = []
    for index, curated in enumerate(chosen):
        if on_task is not None:
            on_task(curated.name, index)
        task = load_task(curated.path)
        laws, times, evals, humans, proposers = [], [], [], [], []
        for seed in range(seeds):
            # the time limit is the budget: no generation or evaluation cap
            run_settings = base.model_copy(update={"seed": seed, "time_limit": time_limit,
                                                   "generations": 10**9, "max_evals": 10**9})
            result = discover(task, run_settings, out=out / task.name / f"seed{seed}", log=log)
            laws.append(result.law_json["law"])
            times.append(result.law_json["wall_time_s"])
            evals.append(result.law_json["evaluations"])
            proposers.append(result.law_json.get("proposers", {}))
            humans = result.law_json["human_laws"]
        human = best_human({"human_laws": humans})
        human_name, human_metrics = (human["name"], human["metrics"]["test"]) if human else ("", {})
        rows.append(BenchRow(task.name, f"{curated.train_rows}/{curated.test_rows}", len(curated.groups),
                             human_name, human_metrics, laws, times, evals,
                             reference.get(TASK_TO_SLDBENCH.get(task.name, "")), proposers))
        write_bench_files(out, rows)
    return rows


def write_bench_files(out: Path, rows: list[BenchRow]) -> None:
    """bench.csv, bench.md, bench.json and the bar chart bench.png, in ``out``."""
    from .report.bench import write_bench_chart

    write_text_atomic(out / "bench.csv", bench_csv(rows))
    write_text_atomic(out / "bench.md", bench_markdown(rows))
    data = bench_json(rows)
    write_json_atomic(out / "bench.json", data)
    write_bench_chart(data, out / "bench.png")


def bench_csv(rows: list[BenchRow]) -> str:
    """The bench table as CSV."""
    buffer = io.StringIO()
    records = [row.record() for row in rows]
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def _num(value: Any, sd: float | None = None) -> str:
    if value in ("", None):
        return "—"
    value = float(value)
    text = f"{value:.4f}" if abs(value) < 1e4 else f"{value:.3g}"
    return f"{text} ± {sd:.4f}" if sd else text


def bench_summary(rows: list[BenchRow]) -> dict[str, Any]:
    """The SLDBench mean of test R² clipped to [-1, 1] (as on its leaderboard), over the SLDBench tasks run.

    ``discovered``: the mean over tasks of each task's mean over seeds; ``per_seed``: the mean over
    tasks for each seed; ``human``: the best human law as lawsearch fits it.  ``published`` has
    SLDBench's figures over the same tasks, ``published_all`` over all of its tasks.
    """
    reference = sldbench_reference()
    counted = [row for row in rows if row.sldbench is not None]
    names = [TASK_TO_SLDBENCH[row.task] for row in counted]

    def published(tasks: list[str]) -> dict[str, float | None]:
        columns = {"human": "human_r2", "sldagent_mean": "sldagent_mean_r2", "sldagent_best": "sldagent_best_r2",
                   "best_published": "best_agent_r2"}
        return {key: statistics.fmean(float(reference[t][column]) for t in tasks) if tasks else None
                for key, column in columns.items()}

    seeds = min((len(row.discovered) for row in counted), default=0)
    return {
        "tasks": [row.task for row in counted], "of": len(reference),
        "discovered": statistics.fmean(statistics.fmean(clip_r2(v) for v in row.r2_per_seed()) for row in counted)
        if counted else None,
        "per_seed": [statistics.fmean(clip_r2(row.r2_per_seed()[seed]) for row in counted) for seed in range(seeds)],
        "human": statistics.fmean(clip_r2(row.human.get("r2")) for row in counted) if counted else None,
        "published": published(names),
        "published_all": published(list(reference)),
    }


def proposer_totals(rows: list[BenchRow]) -> dict[str, dict[str, int]]:
    """Per proposer, over every task and seed: laws proposed, accepted (fitted and scored), improving
    (a new best validation error when scored) and winners (the run's discovered law)."""
    totals: dict[str, dict[str, int]] = {}

    def entry(name: str) -> dict[str, int]:
        return totals.setdefault(name, {"proposed": 0, "accepted": 0, "improving": 0, "winners": 0})

    for row in rows:
        for stats in row.proposers:
            for name, counts in stats.items():
                totals_of = entry(name)
                totals_of["proposed"] += int(counts.get("proposed", 0))
                totals_of["accepted"] += int(counts.get("ok", 0))
                totals_of["improving"] += int(counts.get("improving", 0))
        for law in row.discovered:
            if law.get("source"):
                entry(law["source"])["winners"] += 1
    return dict(sorted(totals.items()))


def bench_json(rows: list[BenchRow]) -> dict[str, Any]:
    """Everything the bench measured, as data (what ``lawsearch report`` of a bench folder reads)."""
    records = []
    for row in rows:
        record = row.record()
        record["r2_seeds"] = row.r2_per_seed()
        record["r2_clipped"] = statistics.fmean(clip_r2(v) for v in record["r2_seeds"])
        record["sldbench_task"] = TASK_TO_SLDBENCH.get(row.task)
        records.append(record)
    return {"rows": records, "summary": bench_summary(rows), "proposers": proposer_totals(rows)}


def _summary_lines(summary: dict[str, Any]) -> list[str]:
    if not summary["tasks"]:
        return []
    k, of = len(summary["tasks"]), summary["of"]
    published, everything = summary["published"], summary["published_all"]
    lines = [f"## SLDBench mean (test R² clipped to [-1, 1], {k} of its {of} tasks)", "",
             f"| | mean over the tasks run | published mean over all {of} |", "|---|---|---|",
             f"| lawsearch, discovered (mean over seeds) | {_num(summary['discovered'])} | |"]
    if len(summary["per_seed"]) > 1:
        lines += [f"| lawsearch, seed {seed} | {_num(value)} | |" for seed, value in enumerate(summary["per_seed"])]
    lines += [
        f"| human laws, as lawsearch fits them | {_num(summary['human'])} | |",
        f"| human laws, published | {_num(published['human'])} | {_num(everything['human'])} |",
        f"| SLDAgent (GPT-5), mean of 5 runs | {_num(published['sldagent_mean'])} | {_num(everything['sldagent_mean'])} |",
        f"| SLDAgent (GPT-5), best of 5 | {_num(published['sldagent_best'])} | {_num(everything['sldagent_best'])} |",
        f"| best published single run per task | {_num(published['best_published'])} "
        f"| {_num(everything['best_published'])} |",
        "",
    ]
    return lines


def _proposer_lines(totals: dict[str, dict[str, int]]) -> list[str]:
    if not totals:
        return []
    lines = ["## What each proposer contributed (all tasks and seeds)", "",
             "| proposer | proposed | accepted | improving | winners |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {t['proposed']} | {t['accepted']} | {t['improving']} | {t['winners']} |"
              for name, t in totals.items()]
    lines += ["", "accepted: parsed, new and fitted; improving: a new best validation error when scored; "
              "winners: runs whose discovered law it proposed.", ""]
    return lines


def bench_markdown(rows: list[BenchRow]) -> str:
    """The bench table as markdown, with means over seeds and the published SLDBench figures."""
    seeded = any(len(row.discovered) > 1 for row in rows)
    spread_head, spread_rule = (" discovered R² min / max |", "---|") if seeded else ("", "")
    lines = [
        "# lawsearch bench: discovered laws vs human laws (test split)", "",
        "| task | rows (train/test) | groups | best human law | human R² | human NMSE | discovered R² "
        f"|{spread_head} discovered NMSE | discovered NMAE | SLDBench human R² | SLDBench best R² | time (s) "
        "| evaluations |",
        f"|---|---|---|---|---|---|---|{spread_rule}---|---|---|---|---|---|",
    ]
    for row in rows:
        r = row.record()
        spread = f" {_num(r['r2_min'])} / {_num(r['r2_max'])} |" if seeded else ""
        lines.append(
            f"| {r['task']} | {r['rows']} | {r['groups']} | {r['human_law']} | {_num(r['human_r2'])} "
            f"| {_num(r['human_nmse'])} | {_num(r['r2'], r['r2_sd'])} |{spread} {_num(r['nmse'], r['nmse_sd'])} "
            f"| {_num(r['nmae'], r['nmae_sd'])} | {_num(r['sldbench_human_r2'])} | {_num(r['sldbench_best_r2'])} "
            f"| {r['wall_time_s']:.0f} | {r['evaluations']:.0f} |"
        )
    lines += ["", "Discovered laws (best seed):", ""]
    lines += [f"- **{row.task}**: `{row.record()['law']}`" for row in rows]
    lines += [""]
    lines += _summary_lines(bench_summary(rows))
    lines += _proposer_lines(proposer_totals(rows))
    lines += ["![discovered vs human vs best published R² per task](bench.png)", "",
              "SLDBench figures: Lin et al. 2025 (arXiv:2507.21184) and the SLDBench leaderboard "
              "(see lawsearch/data/sldbench_reference.csv).", ""]
    return "\n".join(lines)
