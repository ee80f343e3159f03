"""The files of a finished run: law.json, law.tex, law.py, pareto.csv, comparison.md."""

from __future__ import annotations

import csv
import dataclasses
import io
import platform
import time
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np

from ..evaluate import Evaluation, evaluate_law, human_law_records, jsonable
from ..fit import OUT_OF_TIME, fit_law
from ..io import write_json_atomic, write_text_atomic
from ..naming import readable_fit
from ..report.export import export_law
from ..uncertainty import bootstrap_intervals
from .budget import FINAL_SHARE, WINNER_FIT_GRACE, with_deadline

if TYPE_CHECKING:
    from ..task import Task
    from .engine import Discovery

__all__ = ["write_outputs", "engine_versions", "comparison_markdown"]

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


def comparison_markdown(law_json: dict[str, Any]) -> str:
    """A markdown table: the discovered law beside every human law (test metrics)."""
    lines = [f"# {law_json['task']}: discovered law vs human laws", "",
             "| law | formula | params | test R² | test NMSE | test NMAE |", "|---|---|---|---|---|---|"]

    def row(name: str, formula: str, n: int, metrics: dict[str, Any]) -> str:
        cells = [f"{metrics[k]:.4f}" if metrics.get(k) is not None else "—" for k in ("r2", "nmse", "nmae")]
        return f"| {name} | `{formula}` | {n} | " + " | ".join(cells) + " |"

    law = law_json["law"]
    lines.append(row("discovered", law["formula"], len(law["parameters"]), law["metrics"]["test"]))
    for human in law_json["human_laws"]:
        lines.append(row(human["name"], human["formula"], human["n_parameters"], human["metrics"]["test"]))
    return "\n".join(lines) + "\n"


def _pareto_csv(search: Discovery) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["complexity", "n_parameters", "val_error", "source", "generation", "formula"])
    for cand in search.state.archive.front():
        writer.writerow([cand.complexity, cand.n_parameters, repr(cand.val_error), cand.source, cand.generation,
                         cand.formula])
    return buffer.getvalue()


def _summary(search: Discovery, name: str) -> dict[str, Any]:
    """A proposer's own run summary (the LLM's calls, tokens, cost), when it keeps one."""
    for proposer in search.proposers:
        summary = getattr(proposer, "run_summary", None)
        if proposer.name == name and callable(summary):
            return {"engine": summary()}
    return {}


def _warm_start(search: Discovery, formula: str, deadline: float) -> dict[tuple[str, str], np.ndarray] | None:
    """On a table the search only saw a subsample of (:func:`~lawsearch.search.budget.cap_rows`), the
    law's fit on that subsample, a starting point for its fit on all of train that a deadline may
    cut short; None (no extra start) on every other table."""
    if len(search.search_train) + len(search.validation) == len(search.task.train):
        return None
    law = search.task.parse_law(formula)
    rows = search.search_train
    fit = fit_law(law, rows.X, rows.Y, rows.groups, rows.targets, with_deadline(search.task.fit_options(law), deadline),
                  seed=search.settings.seed)
    return {(f.group, f.target): np.asarray(f.theta) for f in fit.fits}


def readable_evaluation(task: Task, evaluation: Evaluation) -> Evaluation:
    """The winner with role-based parameter names in the conventional orientation
    (:func:`~lawsearch.naming.readable_fit`); a human law of the task keeps its own names."""
    if any(task.parse_law(human.formula).expr == evaluation.law.expr for human in task.human_laws):
        return evaluation
    fit = readable_fit(evaluation.fit)
    return dataclasses.replace(evaluation, law=fit.law, fit=fit)


def _contributions(search: Discovery) -> dict[str, dict[str, Any]]:
    """What each proposer contributed: its counts (``proposed``; ``ok``: accepted, i.e. fitted and
    scored; ``improving``: lowered the best validation error when scored; the failures by kind), the
    laws of the final Pareto front it proposed (``on_front``) and of the finalists ranked on the
    folds (``finalists``), and its own run summary where it keeps one."""
    archive = search.state.archive.candidates.values()
    front = search.state.archive.front()
    out = {}
    for name, stats in search.state.proposer_stats.items():
        out[name] = {**stats, "on_front": sum(c.source == name for c in front),
                     "finalists": sum(c.source == name and c.fold_errors is not None for c in archive),
                     **_summary(search, name)}
    return out


def write_outputs(search: Discovery) -> dict[str, Any]:
    """Refit the winner on all of train, score it on test once, and write the run's files.

    The winner's and the human laws' fits, then the bootstrap, stop at :data:`FINAL_SHARE` of
    the time limit, the winner's no sooner than :data:`WINNER_FIT_GRACE` of it from now (a note in
    law.json says which fits were cut short); the files are always written.
    """
    task, state, settings = search.task, search.state, search.settings
    winner = search.winner()
    deadline = search.deadline(FINAL_SHARE)
    winner_deadline = max(deadline, time.time() + WINNER_FIT_GRACE * settings.time_limit)
    evaluation = readable_evaluation(task, evaluate_law(task, winner.formula, seed=settings.seed,
                                                        deadline=winner_deadline,
                                                        start=_warm_start(search, winner.formula, winner_deadline)))
    humans = human_law_records(task, seed=settings.seed, deadline=deadline)
    cut = ["the winner"] * any(OUT_OF_TIME in f.message for f in evaluation.fit.fits)
    cut += [human["name"] for human in humans if "note" in human]
    if cut:
        search.notes.append(f"the time limit cut the final fits of {', '.join(cut)} short: raise --time-limit")
        search.log(search.notes[-1])
    record = evaluation.record()
    record.update({"search_formula": winner.formula,
                   "validation": {"nmse": winner.val_error, "se": winner.val_se, "rows": len(search.validation),
                                  "fraction": search.validation_fraction}, "source": winner.source,
                   "n_parameters": winner.n_parameters})
    time_left = min(settings.bootstrap_time_limit, deadline - time.time())
    if settings.bootstrap > 0 and time_left <= 0:
        search.notes.append("bootstrap: skipped, no time left within the time limit")
        search.log(search.notes[-1])
    elif settings.bootstrap > 0:
        search.log(f"bootstrap: {settings.bootstrap} resamples for the winner's confidence intervals")
        ci = bootstrap_intervals(task, evaluation.law, evaluation.fit, n_boot=settings.bootstrap,
                                 seed=settings.seed, executor=search.get_executor(), time_limit=time_left,
                                 on_progress=lambda done, total: search.step("bootstrap", done, total))
        if ci["n_boot"] < settings.bootstrap:
            search.log(f"bootstrap: stopped at its time limit ({time_left:.3g} s) after "
                       f"{ci['n_boot']} of {settings.bootstrap} resamples")
        record["ci"] = ci
    law_json = jsonable({
        "task": task.name,
        "task_path": str(task.path.resolve()) if task.path is not None else None,
        "run_id": search.run_dir.name,
        "law": record,
        "human_laws": humans,
        "seed": settings.seed,
        "budget": {"generations": settings.generations, "max_evals": settings.max_evals,
                   "time_limit": settings.time_limit},
        "settings": settings.model_dump(mode="json"),
        "generations": state.generation,
        "evaluations": state.evaluations,
        "proposals": state.proposals,
        "wall_time_s": round(search.elapsed, 3),
        "proposers": _contributions(search),
        "notes": search.notes,
        "engines": engine_versions(),
        "selection": search.selection,
    })
    run_dir = search.run_dir
    write_json_atomic(run_dir / "law.json", law_json)
    write_text_atomic(run_dir / "law.tex", export_law(evaluation.law, "latex"))
    write_text_atomic(run_dir / "law.py", export_law(evaluation.law, "python", record["fitted"]))
    write_text_atomic(run_dir / "pareto.csv", _pareto_csv(search))
    write_text_atomic(run_dir / "comparison.md", comparison_markdown(law_json))
    return law_json
