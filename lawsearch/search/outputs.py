"""The files of a finished run: law.json, law.tex, law.py, pareto.csv, comparison.md."""

from __future__ import annotations

import csv
import dataclasses
import io
import platform
import time
from importlib import metadata
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluate import Evaluation, evaluate_law, human_law_records, jsonable
from ..fit import OUT_OF_TIME, fit_law
from ..io import write_json_atomic, write_text_atomic
from ..naming import readable_fit
from ..export import export_law
from ..tables import comparison_markdown
from ..uncertainty import bootstrap_intervals
from ..task import Task, TaskData
from .archive import Candidate
from .budget import FINAL_SHARE, WINNER_FIT_GRACE, deadline_at, with_deadline
from .checkpoint import RunState
from .settings import SearchSettings

__all__ = ["FinishedRun", "write_outputs", "engine_versions", "comparison_markdown"]

@dataclass(frozen=True)
class FinishedRun:
    """What :func:`write_outputs` reads of a finished search: its data and state, the chosen winner,
    and the run's services (clock, log, progress, executor); the search engine itself stays out."""

    task: Task
    settings: SearchSettings
    state: RunState
    run_dir: Path
    winner: Candidate
    selection: dict[str, Any]
    search_train: TaskData
    validation_rows: int
    validation_fraction: float
    notes: tuple[str, ...]
    proposer_summaries: dict[str, dict[str, Any]]  # a proposer's own run summary, when it keeps one
    elapsed: Callable[[], float]  # seconds of the time limit spent so far
    log: Callable[[str], None]
    step: Callable[[str, int, int], None]
    executor: Callable[[], Executor]


_ENGINES = ("lawsearch", "numpy", "scipy", "sympy", "pyoperon", "pysr", "openai", "distributed")


def engine_versions() -> dict[str, str]:
    """Versions of Python and of every engine installed (absent ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in _ENGINES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _pareto_csv(run: FinishedRun) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["complexity", "n_parameters", "val_error", "source", "generation", "formula"])
    for cand in run.state.archive.front():
        writer.writerow([cand.complexity, cand.n_parameters, repr(cand.val_error), cand.source, cand.generation,
                         cand.formula])
    return buffer.getvalue()


def _warm_start(run: FinishedRun, formula: str, deadline: float) -> dict[tuple[str, str], np.ndarray] | None:
    """On a table the search only saw a subsample of (:func:`~lawsearch.search.budget.cap_rows`), the
    law's fit on that subsample, a starting point for its fit on all of train that a deadline may
    cut short; None (no extra start) on every other table."""
    if len(run.search_train) + run.validation_rows == len(run.task.train):
        return None
    law = run.task.parse_law(formula)
    rows = run.search_train
    fit = fit_law(law, rows.X, rows.Y, rows.groups, rows.targets, with_deadline(run.task.fit_options(law), deadline),
                  seed=run.settings.seed)
    return {(f.group, f.target): np.asarray(f.theta) for f in fit.fits}


def readable_evaluation(task: Task, evaluation: Evaluation) -> Evaluation:
    """The winner with role-based parameter names in the conventional orientation
    (:func:`~lawsearch.naming.readable_fit`); a human law of the task keeps its own names."""
    if any(task.parse_law(human.formula).expr == evaluation.law.expr for human in task.human_laws):
        return evaluation
    fit = readable_fit(evaluation.fit)
    return dataclasses.replace(evaluation, law=fit.law, fit=fit)


def _contributions(run: FinishedRun) -> dict[str, dict[str, Any]]:
    """What each proposer contributed: its counts (``proposed``; ``ok``: accepted, i.e. fitted and
    scored; ``improving``: lowered the best validation error when scored; the failures by kind), the
    laws of the final Pareto front it proposed (``on_front``) and of the finalists ranked on the
    folds (``finalists``), and its own run summary where it keeps one."""
    archive = run.state.archive.candidates.values()
    front = run.state.archive.front()
    out = {}
    for name, stats in run.state.proposer_stats.items():
        summary = run.proposer_summaries.get(name)
        out[name] = {**stats, "on_front": sum(c.source == name for c in front),
                     "finalists": sum(c.source == name and c.fold_errors is not None for c in archive),
                     **({"engine": summary} if summary is not None else {})}
    return out


def write_outputs(run: FinishedRun) -> dict[str, Any]:
    """Refit the winner on all of train, score it on test once, and write the run's files.

    The winner's and the human laws' fits, then the bootstrap, stop at :data:`FINAL_SHARE` of
    the time limit, the winner's no sooner than :data:`WINNER_FIT_GRACE` of it from now (a note in
    law.json says which fits were cut short); the files are always written.  The notes the
    writing adds (cut fits, a skipped bootstrap) are in the returned law.json's ``notes``.
    """
    task, state, settings, winner = run.task, run.state, run.settings, run.winner
    notes = list(run.notes)
    deadline = deadline_at(settings.time_limit, run.elapsed(), FINAL_SHARE)
    winner_deadline = max(deadline, time.time() + WINNER_FIT_GRACE * settings.time_limit)
    evaluation = readable_evaluation(task, evaluate_law(task, winner.formula, seed=settings.seed,
                                                        deadline=winner_deadline,
                                                        start=_warm_start(run, winner.formula, winner_deadline)))
    humans = human_law_records(task, seed=settings.seed, deadline=deadline)
    cut = ["the winner"] * any(OUT_OF_TIME in f.message for f in evaluation.fit.fits)
    cut += [human["name"] for human in humans if "note" in human]
    if cut:
        notes.append(f"the time limit cut the final fits of {', '.join(cut)} short: raise --time-limit")
        run.log(notes[-1])
    record = evaluation.record()
    record.update({"search_formula": winner.formula,
                   "validation": {"nmse": winner.val_error, "se": winner.val_se, "rows": run.validation_rows,
                                  "fraction": run.validation_fraction}, "source": winner.source,
                   "n_parameters": winner.n_parameters})
    time_left = min(settings.bootstrap_time_limit, deadline - time.time())
    if settings.bootstrap > 0 and time_left <= 0:
        notes.append("bootstrap: skipped, no time left within the time limit")
        run.log(notes[-1])
    elif settings.bootstrap > 0:
        run.log(f"bootstrap: {settings.bootstrap} resamples for the winner's confidence intervals")
        ci = bootstrap_intervals(task, evaluation.law, evaluation.fit, n_boot=settings.bootstrap,
                                 seed=settings.seed, executor=run.executor(), time_limit=time_left,
                                 on_progress=lambda done, total: run.step("bootstrap", done, total))
        if ci["n_boot"] < settings.bootstrap:
            run.log(f"bootstrap: stopped at its time limit ({time_left:.3g} s) after "
                       f"{ci['n_boot']} of {settings.bootstrap} resamples")
        record["ci"] = ci
    law_json = jsonable({
        "task": task.name,
        "task_path": str(task.path.resolve()) if task.path is not None else None,
        "run_id": run.run_dir.name,
        "law": record,
        "human_laws": humans,
        "seed": settings.seed,
        "budget": {"generations": settings.generations, "max_evals": settings.max_evals,
                   "time_limit": settings.time_limit},
        "settings": settings.model_dump(mode="json"),
        "generations": state.generation,
        "evaluations": state.evaluations,
        "proposals": state.proposals,
        "wall_time_s": round(run.elapsed(), 3),
        "proposers": _contributions(run),
        "notes": notes,
        "engines": engine_versions(),
        "selection": run.selection,
    })
    run_dir = run.run_dir
    write_json_atomic(run_dir / "law.json", law_json)
    write_text_atomic(run_dir / "law.tex", export_law(evaluation.law, "latex"))
    write_text_atomic(run_dir / "law.py", export_law(evaluation.law, "python", record["fitted"]))
    write_text_atomic(run_dir / "pareto.csv", _pareto_csv(run))
    write_text_atomic(run_dir / "comparison.md", comparison_markdown(law_json))
    return law_json
