"""The files of a finished run: law.json, law.tex, law.py, pareto.csv, comparison.md."""

from __future__ import annotations

import csv
import io
import platform
from importlib import metadata
from typing import TYPE_CHECKING, Any

from ..evaluate import evaluate_law, human_law_records, jsonable
from ..io import write_json_atomic, write_text_atomic
from ..report.export import export_law
from ..uncertainty import bootstrap_intervals

if TYPE_CHECKING:
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
    """Refit the winner on all of train, score it on test once, and write the run's files."""
    task, state, settings = search.task, search.state, search.settings
    winner = search.winner()
    evaluation = evaluate_law(task, winner.formula, seed=settings.seed)
    record = evaluation.record()
    record.update({"validation": {"nmse": winner.val_error, "se": winner.val_se, "rows": len(search.validation),
                                  "fraction": search.validation_fraction}, "source": winner.source,
                   "n_parameters": winner.n_parameters})
    if settings.bootstrap > 0:
        search.log(f"bootstrap: {settings.bootstrap} resamples for the winner's confidence intervals")
        ci = bootstrap_intervals(task, evaluation.law, evaluation.fit, n_boot=settings.bootstrap,
                                 seed=settings.seed, executor=search.get_executor(),
                                 time_limit=settings.bootstrap_time_limit)
        if ci["n_boot"] < settings.bootstrap:
            search.log(f"bootstrap: stopped at its time limit ({settings.bootstrap_time_limit:g} s) after "
                       f"{ci['n_boot']} of {settings.bootstrap} resamples")
        record["ci"] = ci
    law_json = jsonable({
        "task": task.name,
        "task_path": str(task.path.resolve()) if task.path is not None else None,
        "run_id": search.run_dir.name,
        "law": record,
        "human_laws": human_law_records(task, seed=settings.seed),
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
