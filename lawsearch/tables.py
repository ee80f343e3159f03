"""The numbers and tables every report shares: one number format, the discovered law beside the
human laws (law.json's test metrics), and markdown tables of text cells."""

from __future__ import annotations

import html
import math
import numbers
from typing import Any

__all__ = ["Table", "format_number", "comparison_table", "comparison_markdown", "markdown_table", "markdown_text",
           "best_human"]

Table = tuple[list[str], list[list[str]]]  # header, rows of text cells


def format_number(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; "—" for a missing or non-finite one; other values as text."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy's numbers are Real too
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        return "—"
    return f"{value:.{digits}g}"


def comparison_table(law_json: dict[str, Any]) -> Table:
    """The discovered law and every human law of a law.json: formula, parameters, test R² / NMSE / NMAE."""
    law = law_json["law"]
    header = ["law", "formula", "parameters", "test R²", "test NMSE", "test NMAE"]

    def row(name: str, formula: str, n: Any, metrics: dict[str, Any]) -> list[str]:
        return [name, f"`{formula}`", str(n), format_number(metrics.get("r2")), format_number(metrics.get("nmse")),
                format_number(metrics.get("nmae"))]

    rows = [row("discovered", law["formula"], len(law.get("parameters", [])), law.get("metrics", {}).get("test", {}))]
    for human in law_json.get("human_laws") or []:
        rows.append(row(human["name"], human["formula"], human.get("n_parameters", "—"),
                        human.get("metrics", {}).get("test", {})))
    return header, rows


def markdown_text(text: str) -> str:
    """Plain text for markdown, where raw HTML would be rendered: names and descriptions come
    from the user's task and data, so their ``<``, ``>`` and ``&`` are escaped (as in the HTML report)."""
    return html.escape(text, quote=False)


def _md_cell(text: str) -> str:
    if not (len(text) > 1 and text.startswith("`") and text.endswith("`")):  # a code span shows text as is
        text = markdown_text(text)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    """A table as markdown (cells escaped; a cell in backticks is a code span)."""
    header, rows = table
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def comparison_markdown(law_json: dict[str, Any]) -> str:
    """comparison.md: a title and the :func:`comparison_table` as markdown."""
    title = f"# {markdown_text(law_json['task'])}: discovered law vs human laws"
    return f"{title}\n\n{markdown_table(comparison_table(law_json))}\n"


def best_human(law_json: dict[str, Any]) -> dict[str, Any] | None:
    """The human law with the best test R² in law.json (None when there is none)."""

    def r2(record: dict[str, Any]) -> float:
        value = record.get("metrics", {}).get("test", {}).get("r2")
        return value if isinstance(value, (int, float)) and math.isfinite(value) else -math.inf

    humans = list(law_json.get("human_laws") or [])
    return max(humans, key=r2) if humans else None
