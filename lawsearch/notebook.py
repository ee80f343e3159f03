"""A discovery run in a notebook: a small HTML table and the per-group figure.

``DiscoveryResult._repr_html_`` and ``DiscoveryResult.plot`` delegate here; a
:class:`~lawsearch.formula.Law` renders itself as LaTeX (``Law._repr_latex_``).
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from .errors import LawsearchError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .search.engine import DiscoveryResult

__all__ = ["result_html", "plot_result"]


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and math.isfinite(value) else "—"


def result_html(result: DiscoveryResult) -> str:
    """The discovered law beside the task's human laws: formula, parameters, test R², NMSE, NMAE."""
    law_json = result.law_json
    law = law_json["law"]
    rows = [("discovered", law["formula"], len(law["parameters"]), law["metrics"]["test"])]
    rows += [(h["name"], h["formula"], h["n_parameters"], h["metrics"]["test"]) for h in law_json["human_laws"]]
    cells = "".join(
        f"<tr><td>{html.escape(name)}</td><td><code>{html.escape(formula)}</code></td><td>{n}</td>"
        + "".join(f"<td>{_number(metrics.get(k))}</td>" for k in ("r2", "nmse", "nmae")) + "</tr>"
        for name, formula, n, metrics in rows
    )
    caption = (f"{html.escape(law_json['task'])}: {law_json['evaluations']} laws fitted in "
               f"{law_json['wall_time_s']:.0f} s → {html.escape(str(result.run_dir))}")
    return (f"<table><caption>{caption}</caption><thead><tr><th>law</th><th>formula</th><th>params</th>"
            f"<th>test R²</th><th>test NMSE</th><th>test NMAE</th></tr></thead><tbody>{cells}</tbody></table>")


def plot_result(result: DiscoveryResult, *, human: bool = True, axis: str | None = None) -> Figure:
    """Per group, the observations along the main scale axis (test rows highlighted) with the
    discovered law fitted on train and its extrapolation, and the best human law (``human``)."""
    from .evaluate import evaluate_law
    from .report import plots
    from .report.html import resolve_task
    from .tables import best_human

    task = result.task if result.task is not None else resolve_task(result.law_json)
    seed = int(result.law_json.get("seed", 0) or 0)
    fit = evaluate_law(task, result.law_json["law"]["formula"], seed=seed).fit
    record = best_human(result.law_json) if human else None
    human_fit = None
    if record is not None:
        try:
            human_fit = evaluate_law(task, record["formula"], seed=seed).fit
        except LawsearchError:  # a human law the task's data cannot take: draw the discovered law alone
            record = None
    return plots.group_curves(task, fit, human_fit, human_name=record["name"] if record else "human law",
                              axis=axis)
