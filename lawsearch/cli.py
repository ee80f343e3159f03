"""The ``lawsearch`` command line: a thin layer over the Python API.

Every :class:`~lawsearch.errors.LawsearchError` is printed as one line on
stderr and ends the command with exit code 2 (no traceback).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import LawsearchError, LawsearchWarning
from .tables import format_number

app = typer.Typer(
    name="lawsearch",
    help="Discover scaling laws that extrapolate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

MAX_GROUPS_SHOWN = 8


def main() -> None:
    """Console-script entry point: run the app, turn LawsearchError into exit code 2."""
    warnings.showwarning = _show_warning
    try:
        app()
    except LawsearchError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


_python_showwarning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """A LawsearchWarning as one line on stderr (other warnings as Python prints them)."""
    if issubclass(category, LawsearchWarning):
        err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    else:
        _python_showwarning(message, category, *args, **kwargs)


def metrics_table(title: str, rows: list[dict[str, Any]]) -> Table:
    """A rich table of laws side by side: name, formula, #params, test R² / NMSE / NMAE."""
    table = Table(title=title, show_lines=False)
    for col, justify in [("law", "left"), ("formula", "left"), ("params", "right"), ("R²", "right"),
                         ("NMSE", "right"), ("NMAE", "right")]:
        table.add_column(col, justify=justify, overflow="fold")
    for row in rows:
        test = row["metrics"]["test"]
        table.add_row(row["name"], row["formula"], str(row["n_parameters"]), format_number(test["r2"]),
                      format_number(test["nmse"]), format_number(test["nmae"]))
    return table


def folds_table(title: str, rows: list[dict[str, Any]]) -> Table:
    """R² of each law on each extrapolation fold (rows fitted on → held out in the header) and their mean
    clipped to [-1, 1] as SLDBench's leaderboard clips; a fold without a finite R² shows "—" (and no mean)."""
    table = Table(title=title, caption="fold k (rows fitted → rows held out); mean of R² clipped to [-1, 1]")
    table.add_column("law")
    for k, fold in enumerate(rows[0]["folds"], start=1):
        table.add_column(f"fold {k} ({fold['fit_rows']} → {fold['held_out_rows']})", justify="right")
    table.add_column("mean", justify="right")
    for row in rows:
        r2 = [fold["r2"] for fold in row["folds"]]
        mean = sum(min(max(v, -1.0), 1.0) for v in r2) / len(r2) if all(map(math.isfinite, r2)) else None
        table.add_row(row["name"], *(format_number(v) for v in [*r2, mean]))
    return table


def parameters_table(title: str, fitted: dict[str, Any]) -> Table:
    """Fitted parameters, one row per group (and target for multi-output laws)."""
    rows: list[tuple[str, dict[str, float]]] = []
    for group, values in fitted.items():
        if values and all(isinstance(v, dict) for v in values.values()):
            rows += [(f"{group} / {target}", params) for target, params in values.items()]
        else:
            rows.append((group, values))
    names = list(rows[0][1]) if rows else []
    table = Table(title=title)
    table.add_column("group")
    for name in names:
        table.add_column(name, justify="right")
    for label, params in rows[:MAX_GROUPS_SHOWN]:
        table.add_row(label, *(format_number(params[n]) for n in names))
    if len(rows) > MAX_GROUPS_SHOWN:
        table.caption = f"… {len(rows) - MAX_GROUPS_SHOWN} more groups (see --json)"
    return table


@app.command()
def evaluate(
    task: Annotated[Path, typer.Argument(help="Task spec (YAML).")],
    law: Annotated[str, typer.Option("--law", help="Formula, e.g. 'E + A/params**alpha + B/tokens**beta'.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the fitter's random restarts.")] = 0,
    folds: Annotated[int, typer.Option(help="Also score every law on this many nested extrapolation folds of "
                                            "train (fold 1: the search's validation cut), no test row used.")] = 0,
) -> None:
    """Fit a law on the task's train split; print test metrics beside every human law."""
    from .evaluate import evaluate_law, fold_scores, human_law_records, jsonable
    from .task import load_task

    if folds < 0:
        raise LawsearchError(f"--folds {folds}: give 0 (no folds) or a number of folds")
    spec = load_task(task)
    evaluation = evaluate_law(spec, law, seed=seed)
    record = evaluation.record()
    humans = human_law_records(spec, seed=seed)
    if folds:
        for row, formula in [(record, evaluation.law), *((h, h["formula"]) for h in humans)]:
            row["folds"] = [score.as_dict() for score in fold_scores(spec, formula, folds, seed=seed)]
    if as_json:
        print(json.dumps(jsonable({"task": spec.name, "law": record, "human_laws": humans}), indent=2))
        return
    rows = [{"name": "your law", "n_parameters": len(record["parameters"]), **record}] + humans
    console.print(metrics_table(f"{spec.name}: test metrics (fitted per group on train)", rows))
    if folds:
        console.print(folds_table(f"{spec.name}: R² on nested extrapolation folds of train (no test row)", rows))
    console.print(parameters_table("your law: fitted parameters", record["fitted"]))
    for human in humans:
        console.print(parameters_table(f"{human['name']}: fitted parameters", human["fitted"]))


@app.command()
def export(
    source: Annotated[Optional[Path], typer.Argument(help="Run directory or law.json.")] = None,
    law: Annotated[Optional[str], typer.Option("--law", help="Formula text (instead of SOURCE).")] = None,
    task: Annotated[Optional[Path], typer.Option("--task", help="With --law: fit it on this task's train split.")] = None,
    inputs: Annotated[Optional[str], typer.Option(help="With --law and no --task: comma-separated input names.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="latex, sympy or python.")] = "python",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fitter (with --task).")] = 0,
) -> None:
    """Write a law as LaTeX, sympy or standalone Python (with fitted parameters when known)."""
    from .formula import Law
    from .export import export_law, law_from_record, load_law_record

    fitted = None
    if source is not None:
        record = load_law_record(source)
        parsed, fitted = law_from_record(record), record.get("fitted")
    elif law is not None and task is not None:
        from .evaluate import evaluate_law
        from .task import load_task

        evaluation = evaluate_law(load_task(task), law, seed=seed)
        parsed, fitted = evaluation.law, evaluation.fit.parameters()
    elif law is not None:
        parsed = Law.parse(law, [n.strip() for n in (inputs or "").split(",") if n.strip()])
    else:
        raise LawsearchError("give a run directory / law.json, or --law (with --task or --inputs)")
    text = export_law(parsed, fmt, fitted)  # type: ignore[arg-type]
    if out is None:
        print(text, end="")
    else:
        from .io import write_text_atomic

        write_text_atomic(out, text)
        err_console.print(f"wrote {out}")


def _parse_weights(items: list[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    weights = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise LawsearchError(f"--weight {item!r}: write NAME=NUMBER, e.g. --weight mutate=4") from None
        if not sep:
            raise LawsearchError(f"--weight {item!r}: write NAME=NUMBER, e.g. --weight mutate=4")
    return weights


def _process_start() -> float:
    """The ``time.monotonic()`` at which this process started (from /proc on Linux), else now."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.monotonic()
    return time.monotonic() - max(age, 0.0)


def _warn(message: str) -> None:
    """A warning on stderr, one line, shown with or without --quiet."""
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


class _Progress:
    """Rich progress: generations of the search (evaluations/s, best validation error, best law,
    time left), then the long steps after it (refining finalists, bootstrap) with counts and time left."""

    def __init__(self, total: int, time_limit: float) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Column

        self.time_limit = time_limit
        self.bar = Progress(TextColumn("{task.description}", table_column=Column(min_width=18, no_wrap=True)),
                            BarColumn(bar_width=20), TextColumn("{task.fields[count]}",
                                                                table_column=Column(min_width=9, no_wrap=True)),
                            TimeElapsedColumn(),
                            TextColumn("{task.fields[info]}", table_column=Column(
                                no_wrap=True, overflow="ellipsis", max_width=max(20, err_console.width - 64))),
                            console=err_console, transient=False)
        self.task_id = self.bar.add_task("search", total=total, count=f"gen 0/{total}", info="starting…")
        self.steps: dict[str, tuple[Any, float]] = {}  # step -> (bar task, start time)

    def start(self) -> None:
        """Show the bars (at the first report, so that nothing shows before the run has started)."""
        if not self.bar.live.is_started:
            self.bar.start()

    def __call__(self, state: Any, search: Any) -> None:
        self.start()
        best = state.archive.best(1)
        rate = state.evaluations / max(search.elapsed, 1e-9)
        left = max(self.time_limit - search.elapsed, 0.0)
        law = best[0].formula if best else "—"
        law = law if len(law) <= 60 else law[:57] + "…"
        err = f"{best[0].val_error:.3g}" if best else "—"
        info = f"{state.evaluations} evals ({rate:.1f}/s) · best val NMSE {err} · {law} · ≤{left:.0f}s left"
        total = self.bar.tasks[0].total
        self.bar.update(self.task_id, completed=state.generation, count=f"gen {state.generation}/{total:g}",
                        info=info)

    def step(self, name: str, done: int, total: int) -> None:
        """A long step after the search: a bar of its own with done/total and the time left."""
        self.start()
        if name not in self.steps:
            self.steps[name] = (self.bar.add_task(name, total=total, count="", info=""), time.monotonic())
        elif done <= self.bar.tasks[self.steps[name][0]].completed:  # a new round of the step
            self.bar.reset(self.steps[name][0], total=total)
            self.steps[name] = (self.steps[name][0], time.monotonic())
        task_id, started = self.steps[name]
        spent = time.monotonic() - started
        left = f"~{spent / done * (total - done):.0f}s left" if 0 < done < total else ""
        self.bar.update(task_id, completed=done, count=f"{done}/{total}", info=left)


@app.command()
def discover(
    task: Annotated[Path, typer.Argument(help="Task spec (YAML), or a data table (CSV, Parquet, JSON Lines) "
                                              "with --inputs and --target.")],
    inputs: Annotated[Optional[str], typer.Option(help="Data table: comma list of input columns.")] = None,
    target: Annotated[Optional[str], typer.Option(help="Data table: the target column (comma list: several).")] = None,
    group: Annotated[Optional[str], typer.Option(help="Data table: column of groups (parameters fitted per "
                                                      "group).")] = None,
    test_largest: Annotated[Optional[float], typer.Option("--test-largest", help="Data table: share of the "
                                                          "largest runs held out as the test split [0.2].")] = None,
    generations: Annotated[Optional[int], typer.Option(help="Maximum generations.")] = None,
    max_evals: Annotated[Optional[int], typer.Option("--max-evals", help="Maximum distinct laws fitted.")] = None,
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Wall-time budget (seconds).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (the run is deterministic for a seed).")] = None,
    bootstrap: Annotated[Optional[int], typer.Option(help="Bootstrap resamples for intervals (0: none).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Local worker processes for fitting.")] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")] = None,
    proposers: Annotated[Optional[str], typer.Option(help="Comma list: library,mutate,operon,pysr,llm.")] = None,
    weight: Annotated[Optional[list[str]], typer.Option("--weight", help="Proposer weight NAME=W (repeat).")] = None,
    max_parameters: Annotated[Optional[int], typer.Option("--max-parameters", help="Override the task's limit.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Run settings YAML (any SearchSettings field).")] = None,
    llm_model: Annotated[Optional[str], typer.Option("--llm-model", help="LLM model name.")] = None,
    llm_base_url: Annotated[Optional[str], typer.Option("--llm-base-url", help="OpenAI-compatible base URL.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run directory (default results/<task>/<run-id>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output (warnings still show).")] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="Do not write report.html / report.md.")] = False,
) -> None:
    """Search for a law that extrapolates; write law.json, law.tex, law.py, pareto.csv, history.jsonl and
    report.html (with figures)."""
    started = _process_start()  # --time-limit bounds the whole command, imports and loading the task included
    from .quick import discover as run_discovery
    from .quick import is_table
    from .search.settings import resolve_settings
    from .task import load_task

    if resume and out is None:
        raise LawsearchError("--resume needs --out RUN_DIR (the run to continue)")
    settings = resolve_settings(
        {"generations": generations, "max_evals": max_evals, "time_limit": time_limit, "seed": seed,
         "bootstrap": bootstrap,
         "workers": workers, "scheduler": scheduler, "max_parameters": max_parameters,
         "proposers": tuple(p.strip() for p in proposers.split(",") if p.strip()) if proposers else None,
         "weights": _parse_weights(weight), "llm": {"model": llm_model, "base_url": llm_base_url}},
        config,
    )
    if is_table(task):
        source: Any = task
        table = {"inputs": inputs, "target": target, "group": group}
        if test_largest is not None:
            table["test_largest"] = test_largest
    elif inputs or target or group or test_largest is not None:
        raise LawsearchError(f"{task}: --inputs, --target, --group and --test-largest are for a data table (CSV, "
                             "Parquet, JSON Lines); a task YAML names its own")
    else:
        source, table = load_task(task), {}
    progress = None if quiet else _Progress(settings.generations, settings.time_limit)
    log = None if quiet else (lambda message: err_console.print(f"[dim]{escape(message)}[/]"))
    try:
        result = run_discovery(source, settings, out=out, resume=resume, progress=progress, log=log, warn=_warn,
                               steps=progress.step if progress is not None else None, started=started, **table)
    finally:
        if progress is not None and progress.bar.live.is_started:
            progress.bar.stop()
    if not no_report:
        from .report.html import write_report

        write_report(result.run_dir, result.task)
    law = result.law_json
    if quiet:
        print(result.run_dir)
        return
    rows = [{"name": "discovered", "n_parameters": len(law["law"]["parameters"]), **law["law"]}] + law["human_laws"]
    console.print(metrics_table(f"{law['task']}: discovered law vs human laws (test split)", rows))
    console.print(f"[bold]law[/]: {escape(law['law']['formula'])}")
    console.print(f"{law['evaluations']} laws fitted in {law['wall_time_s']:.1f}s over {law['generations']} "
                  f"generations → {result.run_dir}" + ("" if no_report else " (report.html with figures)"))
    if result.interrupted:
        err_console.print("interrupted: the best law so far was written")
        raise typer.Exit(130)


@app.command()
def compare(runs: Annotated[list[Path], typer.Argument(help="Run directories (or law.json files).")]) -> None:
    """Print each run's winner beside the human laws of its task."""
    from .export import load_law_json

    rows = []
    for run in runs:
        data = load_law_json(run)
        law = data["law"]
        try:
            rows.append({"name": f"{data['task']} · {run.name}", "n_parameters": len(law["parameters"]), **law})
            rows += [{**human, "name": f"{data['task']} · {human['name']}"} for human in data.get("human_laws", [])]
            table = metrics_table("winners vs human laws (test split)", rows)
        except (KeyError, TypeError, AttributeError) as exc:
            raise LawsearchError(f"{run}: law.json lacks a field or has one of the wrong type "
                                 f"({type(exc).__name__}: {exc})") from None
    console.print(table)


@app.command()
def bench(
    tasks: Annotated[Optional[list[str]], typer.Option("--tasks", help="Task names (repeat); default: all available.")] = None,
    time_limit: Annotated[float, typer.Option("--time-limit", help="Seconds of search per task and seed.")] = 150.0,
    seeds: Annotated[int, typer.Option(help="Seeds per task (mean ± spread reported).")] = 1,
    workers: Annotated[Optional[int], typer.Option(help="Local worker processes (default: one per core, at most 4).")] = None,
    proposers: Annotated[Optional[str], typer.Option(help="Comma list of proposers (default: all available).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for bench.md, bench.csv, bench.json, bench.png and the runs.")] = Path("results/bench"),
) -> None:
    """Run discover on every curated task with data; write bench.md, bench.csv, bench.json and bench.png."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .bench import run_bench
    from .search.settings import resolve_settings

    settings = resolve_settings({"workers": workers, "proposers": tuple(proposers.split(",")) if proposers else None})
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} tasks"),
                  TimeElapsedColumn(), console=err_console) as bar:
        from .task import curated_tasks

        total = len(tasks) if tasks else sum(c.available for c in curated_tasks())
        progress_id = bar.add_task("bench", total=total)

        def on_task(name: str, index: int) -> None:
            bar.update(progress_id, completed=index, description=f"bench · {name}")

        rows = run_bench(tasks, time_limit=time_limit, seeds=seeds, out=out, settings=settings, on_task=on_task)
        bar.update(progress_id, completed=len(rows), description="bench · done")
    console.print((out / "bench.md").read_text(), markup=False, highlight=False)


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="Run directory (with law.json), or a bench folder (with bench.json).")],
    task: Annotated[Optional[Path], typer.Option("--task", help="Task YAML, if law.json's task_path moved.")] = None,
) -> None:
    """Write RUN/report.html (self-contained) and RUN/report.md with figures, tables and intervals
    (for a bench folder: its table, SLDBench means and bar chart)."""
    from .report.bench import is_bench_folder, write_bench_report
    from .report.html import write_report

    html, md = write_bench_report(run) if is_bench_folder(run) else write_report(run, task)
    console.print(f"wrote {html} and {md}")


def _names(names: list[str]) -> str:
    """Column names for a table cell: all of them, or the first and a count when there are many."""
    return ", ".join(names) if len(names) <= 3 else f"{names[0]}, … ({len(names)} columns)"


@app.command()
def tasks() -> None:
    """List the curated tasks, their size, and whether their data is available here."""
    from .task import curated_tasks, load_spec

    table = Table(title="curated tasks")
    for col in ("task", "rows (train/test)", "groups", "inputs → target", "data"):
        table.add_column(col, overflow="fold")
    for entry in curated_tasks():
        rows = f"{entry.train_rows}/{entry.test_rows}" if entry.available else "—"
        try:
            spec = load_spec(entry.path)
            signature = f"{_names(spec.inputs)} → {_names(spec.target)}"
        except LawsearchError:
            signature = "—"
        table.add_row(entry.name, rows, str(len(entry.groups)) if entry.groups else "—", signature,
                      "[green]available[/]" if entry.available else f"[yellow]{entry.reason}[/]")
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    main()
