"""A run's report: report.html (self-contained) and report.md (with plots/*.png), from its results.

:func:`write_report` reads a run directory (law.json, checkpoint.json,
history.jsonl), loads the task, refits the discovered law and the best human
law on the train split (the fitter is deterministic, so these are the run's
fits), draws the figures and writes:

* ``report.html``: one file that needs nothing else to be viewed — figures are
  base64 PNG ``data:`` URIs, the law's LaTeX is typeset to a PNG by matplotlib's
  mathtext (no TeX, no MathJax, no network), styles are inline, no scripts;
* ``report.md`` with the figures written to ``plots/*.png`` and linked.

Confidence intervals come from law.json's ``ci`` object when the run has one
(:func:`lawsearch.uncertainty.bootstrap_intervals`); the report never runs the
bootstrap itself.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LawsearchError
from ..evaluate import Evaluation, evaluate_law
from ..formula import Law
from ..io import read_jsonl, write_bytes_atomic, write_text_atomic
from ..task import TASKS_DIR, Task, load_spec, load_task
from . import plots
from ..export import load_law_json
from ..tables import Table, best_human, comparison_table, format_number, markdown_table, markdown_text

__all__ = ["write_report", "ReportFigure", "Report", "build_report", "resolve_task"]

PLOTS_DIR = "plots"


@dataclass
class ReportFigure:
    """One figure of the report: a file stem, a title, a caption and its PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes


@dataclass
class Report:
    """Everything the HTML and markdown writers show."""

    run_dir: Path
    law_json: dict[str, Any]
    task: Task
    law: Law
    evaluation: Evaluation
    human_name: str | None
    latex: str
    latex_png: bytes | None
    figures: list[ReportFigure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- inputs
def resolve_task(law_json: dict[str, Any], task: Task | str | Path | None = None) -> Task:
    """The run's task: the one given, else law.json's ``task_path``, else the curated ``tasks/<name>.yaml``."""
    name = law_json.get("task")
    if task is None:
        candidates = [Path(p) for p in (law_json.get("task_path"),) if p]
        if name:
            candidates.append(TASKS_DIR / f"{name}.yaml")
        for path in candidates:
            if path.is_file() and load_spec(path).name == name:
                task = path
                break
        else:
            raise LawsearchError(
                f"cannot find the task {name!r} of this run (law.json has no usable 'task_path'): "
                "pass the task YAML explicitly"
            )
    if not isinstance(task, Task):
        task = load_task(task)
    if name and task.name != name:
        raise LawsearchError(f"the run is of task {name!r}, but the task given is {task.name!r}")
    return task


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LawsearchError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


# ---------------------------------------------------------------------- the report's content
def build_report(run_dir: str | Path, task: Task | str | Path | None = None) -> Report:
    """Load a run, refit its laws and draw every figure (nothing is written)."""
    run_dir = Path(run_dir)
    law_json = load_law_json(run_dir)
    task = resolve_task(law_json, task)
    record = law_json["law"]
    if list(record.get("inputs", task.inputs)) != list(task.inputs):
        raise LawsearchError(
            f"law.json's inputs {record.get('inputs')} differ from the task's {list(task.inputs)}"
        )
    seed = int(law_json.get("seed", 0) or 0)
    settings = law_json.get("settings") or {}
    law = task.parse_law(record["formula"])
    evaluation = evaluate_law(task, law, seed=seed)
    notes: list[str] = []

    recorded = (record.get("metrics") or {}).get("test", {}).get("r2")
    refit = evaluation.metrics["test"].r2
    if isinstance(recorded, (int, float)) and math.isfinite(refit) and \
            abs(refit - recorded) > 1e-6 * max(1.0, abs(recorded)):
        notes.append(f"refitting the law on the task now gives test R² {refit:.6g}, but law.json records "
                     f"{recorded:.6g}: the task's data or the fitter changed since the run (the figures show "
                     "the refit, the tables law.json)")

    human_record = best_human(law_json)
    human_eval = None
    if human_record is not None:
        try:
            human_eval = evaluate_law(task, human_record["formula"], seed=seed)
        except LawsearchError as exc:
            notes.append(f"human law {human_record['name']!r} could not be refitted: {exc}")

    latex = (record.get("latex") or law.to_latex())
    lhs = _latex_text(task.targets[0]) if len(task.targets) == 1 else "y"
    latex = f"{lhs} = {latex}"
    latex_png = plots.render_latex(latex)
    if latex_png is None:
        notes.append("the LaTeX of the law could not be typeset by mathtext; it is shown as text")

    report = Report(run_dir, law_json, task, law, evaluation, human_record["name"] if human_eval else None,
                    latex, latex_png, notes=notes)
    report.figures = _figures(report, human_eval, settings, seed)
    return report


def _latex_text(name: str) -> str:
    return "\\mathrm{" + name.replace("_", "\\_") + "}"


def _search_formula(record: dict[str, Any]) -> str:
    """The winner as the search wrote it (law.json's formula has readable names, the archive not)."""
    return record.get("search_formula", record["formula"])


def _figures(report: Report, human: Evaluation | None, settings: dict[str, Any], seed: int) -> list[ReportFigure]:
    task, fit = report.task, report.evaluation.fit
    _, validation = task.validation_split(settings.get("validation_fraction", "auto"),
                                          seed=int(settings.get("seed", seed)))
    _, split = plots.split_labels(task, validation)
    X = np.vstack([task.train.X, task.test.X])
    Y = np.vstack([task.train.Y, task.test.Y])
    groups = np.concatenate([task.train.groups, task.test.groups])
    predicted = fit.predict(X, groups, task.targets)
    axis = plots.main_axis(task)
    scores = task.scale_score(X)
    if scores is not None and task.scale_rule == "any":
        scale_label = f"scale: top rank on any of {', '.join(task.scale_columns)}"
    elif scores is not None:
        positive = {c: bool(np.all(np.concatenate([task.train.column(c), task.test.column(c)]) > 0))
                    for c in task.scale_columns}  # as Task.scale_score decides
        logged = [c for c in task.scale_columns if positive[c]]
        plain = [c for c in task.scale_columns if not positive[c]]
        parts = ([f"log({'·'.join(logged)})"] if logged else []) + plain
        scale_label = "scale: " + " + ".join(parts)
    else:
        scores, scale_label = np.arange(len(X), dtype=float), "row (the task has no scale axis)"

    figures: list[ReportFigure] = []
    figures.append(ReportFigure(
        "observed_vs_predicted", "Observed vs predicted",
        "The discovered law, fitted on the train split, against every observation; validation rows are "
        "the largest-scale train rows the search selected on, test rows were never seen by the search.",
        plots.figure_png(plots.observed_vs_predicted(Y, predicted, split, task.targets,
                                                     title="Discovered law: observed vs predicted")),
    ))
    human_fit = human.fit if human is not None else None
    figures.append(ReportFigure(
        "group_curves", f"Per-group curves along {axis}",
        f"Observations of each group along {axis} (log-log where all values are positive), test rows "
        "highlighted, with the discovered law" + (f" and the best human law ({report.human_name})" if human_fit
                                                  else "") + " fitted on the train split.",
        plots.figure_png(plots.group_curves(task, fit, human_fit, human_name=report.human_name or "human law",
                                            axis=axis)),
    ))
    figures.append(ReportFigure(
        "residuals_vs_scale", "Residuals vs scale",
        "Residuals of the discovered law against each row's scale; a trend at the largest scales is an "
        "extrapolation bias.",
        plots.figure_png(plots.residuals_vs_scale(scores, Y, predicted, split, task.targets, xlabel=scale_label)),
    ))
    checkpoint = _read_json(report.run_dir / "checkpoint.json")
    archive = checkpoint.get("archive") or []
    if archive:
        figures.append(ReportFigure(
            "pareto_front", "Pareto front",
            "Every law the search scored: complexity against validation NMSE, coloured by proposer; the black "
            "steps are the Pareto front and the star the law chosen.",
            plots.figure_png(plots.pareto_front(archive, _search_formula(report.law_json["law"]))),
        ))
    else:
        report.notes.append("no checkpoint.json with an archive: the Pareto front is not drawn")
    history_path = report.run_dir / "history.jsonl"
    history = read_jsonl(history_path, skip_bad_lines=True) if history_path.exists() else []
    if history:
        figures.append(ReportFigure(
            "search_progress", "Search progress",
            "Best validation NMSE so far against the number of laws evaluated, overall and per proposer "
            "(the best of its own laws); dotted lines separate generations.",
            plots.figure_png(plots.search_progress(history)),
        ))
    else:
        report.notes.append("no history.jsonl: the search progress is not drawn")
    return figures


# ---------------------------------------------------------------------- tables
def _interval(pair: Any) -> str:
    if not pair or any(v is None for v in pair):
        return "—"
    return f"[{format_number(pair[0])}, {format_number(pair[1])}]"


def _metrics_table(report: Report) -> Table:
    law = report.law_json["law"]
    metrics = law.get("metrics", {})
    validation = (law.get("validation") or {}).get("nmse")
    rows = []
    for split in ("train", "test"):
        m = metrics.get(split) or {}
        rows.append([split, format_number(m.get("r2")), format_number(m.get("nmse")), format_number(m.get("nmae"))])
    rows.append(["validation (search)", "—", format_number(validation), "—"])
    return ["split", "R²", "NMSE", "NMAE"], rows


def _parameter_table(report: Report) -> Table:
    fitted = report.law_json["law"].get("fitted") or report.evaluation.fit.parameters()
    ci = report.law_json.get("ci") or {}
    intervals = ci.get("parameters") or {}
    multi = len(report.task.targets) > 1
    level = ci.get("level")
    header = ["group"] + (["target"] if multi else []) + ["parameter", "estimate",
                                                         f"{format_number(100 * level, 3)}% CI" if level else "CI"]
    rows = []
    for group, values in fitted.items():
        by_target = values if multi else {report.task.targets[0]: values}
        for target, params in by_target.items():
            group_ci = intervals.get(group) or {}
            group_ci = (group_ci.get(target) or {}) if multi else group_ci
            for name in report.law.parameters:
                rows.append([group] + ([target] if multi else []) + [name, format_number(params.get(name), 5),
                                                                    _interval(group_ci.get(name))])
    return header, rows


def _prediction_table(report: Report) -> Table | None:
    ci = report.law_json.get("ci") or {}
    predictions = ci.get("predictions")
    if not predictions:
        return None
    multi = len(report.task.targets) > 1
    header = ["group", "row", "inputs", "target", "observed", "estimate", f"{format_number(100 * ci['level'], 3)}% CI"]
    rows = []
    for group, entry in predictions.items():
        for item in (entry.values() if multi else [entry]):
            inputs = ", ".join(f"{k}={format_number(v)}" for k, v in item["inputs"].items())
            rows.append([group, str(item["row"]), inputs, item["target"], format_number(item.get("observed")),
                         format_number(item.get("estimate")), _interval(item.get("interval"))])
    return header, rows


def _search_table(report: Report) -> Table:
    stats = report.law_json.get("proposers") or {}
    header = ["proposer", "proposed", "ok", "duplicate", "rejected", "failed", "improving"]
    rows = []
    for name, s in stats.items():
        failed = sum(int(s.get(k, 0) or 0) for k in ("parse_error", "fit_failed", "failed", "errors"))
        rows.append([name, str(s.get("proposed", 0)), str(s.get("ok", 0)), str(s.get("duplicate", 0)),
                     str(s.get("rejected", 0)), str(failed), str(s.get("improving", 0))])
    return header, rows


def _summary(report: Report) -> list[tuple[str, str]]:
    data, law = report.law_json, report.law_json["law"]
    items = [
        ("task", f"{report.task.name} — {len(report.task.train)} train / {len(report.task.test)} test rows, "
                 f"{len(report.task.train.group_names())} group(s)"),
        ("law found by", str(law.get("source", "—"))),
        ("parameters", f"{len(law.get('parameters', []))} per group: {', '.join(law.get('parameters', []))}"),
        ("complexity", str(law.get("complexity", "—"))),
        ("search", f"{data.get('generations', '—')} generations, {data.get('evaluations', '—')} laws evaluated, "
                   f"{format_number(data.get('wall_time_s'), 3)} s"),
        ("seed", str(data.get("seed", "—"))),
    ]
    selection = data.get("selection")
    if selection:
        detail = (f"penalty {selection['penalty']:g} per parameter" if "penalty" in selection
                  else f"tolerance {selection.get('tolerance')}")
        items.append(("selection", f"{selection.get('rule')} ({detail})"))
    ci = data.get("ci")
    if ci:
        done, asked = ci.get("n_boot"), ci.get("n_requested", ci.get("n_boot"))
        count = f"{done} replicates" if done == asked else f"{done} of {asked} replicates (time limit)"
        items.append(("confidence intervals", f"{format_number(100 * ci['level'], 3)}% {ci.get('method', 'bootstrap')}, "
                                              f"{count} ({ci.get('n_failed', 0)} failed fits)"))
    return items


# ---------------------------------------------------------------------- writers
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}code{background:#f6f6f6;padding:0 .2em;border-radius:3px}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}.law img{max-width:100%;height:auto}
.note{color:#8a5a00}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}
dd{margin:0}
"""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _html_cell(text: str) -> str:
    if len(text) > 1 and text.startswith("`") and text.endswith("`"):
        return f"<code>{html.escape(text[1:-1])}</code>"
    return html.escape(text)


def _html_table(table: Table) -> str:
    header, rows = table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sections(report: Report) -> list[tuple[str, str | None, Table | None]]:
    """(heading, paragraph, table) of each table section, shared by both writers."""
    sections: list[tuple[str, str | None, Table | None]] = [
        ("Metrics", "SLDBench protocol: fitted per group on the train split, scored on the held-out test split "
                    "(R² = 1 − NMSE).", _metrics_table(report)),
        ("Comparison with human laws", "Every law fitted and scored on the same protocol.",
         comparison_table(report.law_json)),
    ]
    has_ci = bool(report.law_json.get("ci"))
    sections.append((
        "Fitted parameters", "Per group, fitted on the train split" +
        (", with bootstrap confidence intervals." if has_ci else "; law.json has no 'ci' object, so no "
                                                                  "confidence intervals are shown."),
        _parameter_table(report)))
    predictions = _prediction_table(report)
    if predictions is not None:
        sections.append(("Extrapolation at the largest test scale",
                         "The law's prediction at each group's largest-scale test row, with its bootstrap "
                         "interval (parameter uncertainty only).", predictions))
    search = _search_table(report)
    if search[1]:
        sections.append(("Proposers", None, search))
    return sections


def render_html(report: Report) -> str:
    """The self-contained HTML page."""
    law = report.law_json["law"]
    title = f"lawsearch report — {report.task.name}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if report.task.description:
        parts.append(f"<p>{html.escape(report.task.description)}</p>")
    parts.append("<h2>Discovered law</h2>")
    if report.latex_png is not None:
        parts.append(f'<div class="law"><img src="{_data_uri(report.latex_png)}" '
                     f'alt="{html.escape(report.latex)}"></div>')
    parts.append(f"<p>As text: <code>{html.escape(law['formula'])}</code></p>")
    parts.append(f"<p>LaTeX:</p><pre>{html.escape(report.latex)}</pre>")
    parts.append("<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>"
                                  for k, v in _summary(report)) + "</dl>")
    for note in report.notes:
        parts.append(f'<p class="note">Note: {html.escape(note)}</p>')
    for heading, paragraph, table in _sections(report):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if paragraph:
            parts.append(f"<p>{html.escape(paragraph)}</p>")
        if table is not None:
            parts.append(_html_table(table))
    parts.append("<h2>Figures</h2>")
    for fig in report.figures:
        parts.append(f'<figure id="{fig.name}"><img src="{_data_uri(fig.png)}" alt="{html.escape(fig.title)}">'
                     f"<figcaption><b>{html.escape(fig.title)}.</b> {html.escape(fig.caption)}</figcaption></figure>")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<p><small>Generated by lawsearch on {stamp} from {html.escape(str(report.run_dir))}.</small></p>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def render_markdown(report: Report) -> str:
    """The markdown report; figures are linked from ``plots/``."""
    law = report.law_json["law"]
    lines = [f"# lawsearch report — {report.task.name}", ""]
    if report.task.description:
        lines += [markdown_text(report.task.description), ""]
    lines += ["## Discovered law", ""]
    if report.latex_png is not None:
        lines += [f"![the discovered law]({PLOTS_DIR}/law.png)", ""]
    lines += ["$$", report.latex, "$$", "", f"As text: `{law['formula']}`", ""]
    lines += [f"- **{markdown_text(k)}**: {markdown_text(v)}" for k, v in _summary(report)] + [""]
    lines += [f"> Note: {markdown_text(note)}" for note in report.notes] + ([""] if report.notes else [])
    for heading, paragraph, table in _sections(report):
        lines += [f"## {heading}", ""]
        if paragraph:
            lines += [paragraph, ""]
        if table is not None:
            lines += [markdown_table(table), ""]
    lines += ["## Figures", ""]
    for fig in report.figures:
        title = markdown_text(fig.title)
        lines += [f"### {title}", "", f"![{title}]({PLOTS_DIR}/{fig.name}.png)", "", markdown_text(fig.caption), ""]
    return "\n".join(lines)


def write_report(run_dir: str | Path, task: Task | str | Path | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` (and ``plots/*.png``) into a run directory.

    ``task`` is the run's task (a :class:`Task` or a YAML path); by default the YAML named by
    law.json's ``task_path``, else the curated ``tasks/<name>.yaml``.  Returns the two paths.
    """
    report = build_report(run_dir, task)
    run_dir = report.run_dir
    plots_dir = run_dir / PLOTS_DIR
    if report.latex_png is not None:
        write_bytes_atomic(plots_dir / "law.png", report.latex_png)
    for fig in report.figures:
        write_bytes_atomic(plots_dir / f"{fig.name}.png", fig.png)
    html_path, md_path = run_dir / "report.html", run_dir / "report.md"
    write_text_atomic(html_path, render_html(report))
    write_text_atomic(md_path, render_markdown(report))
    return html_path, md_path
