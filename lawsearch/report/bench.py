"""A bench folder's figure and report: discovered vs human vs best published R² per task.

:func:`write_bench_chart` draws ``bench.png`` from the data of ``bench.json``
(:func:`lawsearch.bench.bench_json`); :func:`write_bench_report` writes
``report.md`` and a self-contained ``report.html`` for a bench folder, from its
``bench.md`` and ``bench.json`` (nothing is rerun).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LawsearchError
from ..io import write_bytes_atomic, write_text_atomic
from . import plots

__all__ = ["bench_chart_png", "write_bench_chart", "write_bench_report", "is_bench_folder"]

CHART = "bench.png"
BAR_COLORS = {"discovered": plots.WINNER_COLOR, "human": plots.HUMAN_COLOR, "published": "#8172B3"}


def _clip(value: Any) -> float:
    """R² clipped to [-1, 1] as on SLDBench's leaderboard; a missing value is NaN (no bar)."""
    if value in ("", None):
        return float("nan")
    return float(np.clip(float(value), -1.0, 1.0))


def bench_chart_png(data: dict[str, Any]) -> bytes:
    """Grouped bars per task: the discovered law's test R² (mean over seeds of the clipped values, as
    in the SLDBench mean; whiskers: min and max),
    the best human law's as lawsearch fits it, and the best published single run (SLDBench)."""
    plt = plots._pyplot()
    rows = data["rows"]
    x = np.arange(len(rows))
    width = 0.27
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.2))
    discovered = np.array([_clip(r.get("r2_clipped", r["r2"])) for r in rows])
    low = np.array([_clip(r.get("r2_min", r["r2"])) for r in rows])
    high = np.array([_clip(r.get("r2_max", r["r2"])) for r in rows])
    # equal seeds: the mean of equal values can differ from them in the last bit, a negative whisker
    ax.bar(x - width, discovered, width, color=BAR_COLORS["discovered"], label="discovered (lawsearch)",
           yerr=np.maximum(np.vstack([discovered - low, high - discovered]), 0.0), capsize=3, ecolor="#888888")
    ax.bar(x, [_clip(r["human_r2"]) for r in rows], width, color=BAR_COLORS["human"],
           label="best human law (as lawsearch fits it)")
    ax.bar(x + width, [_clip(r["sldbench_best_r2"]) for r in rows], width, color=BAR_COLORS["published"],
           label="best published run (SLDBench)")
    ax.axhline(0.0, color="#444444", linewidth=0.8)
    ax.set_xticks(x, [r["task"] for r in rows], rotation=30, ha="right")
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("test R² (clipped to [-1, 1])")
    seeds = max((r.get("seeds", 1) for r in rows), default=1)
    ax.set_title("discovered vs human vs best published law" + (f" ({seeds} seeds)" if seeds > 1 else ""))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=3, fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return plots.figure_png(fig)


def write_bench_chart(data: dict[str, Any], path: Path) -> None:
    """Write :func:`bench_chart_png` to ``path``."""
    write_bytes_atomic(path, bench_chart_png(data))


def is_bench_folder(folder: Path) -> bool:
    """Whether ``folder`` is the output folder of ``lawsearch bench`` (it has bench.json)."""
    return (Path(folder) / "bench.json").is_file()


def write_bench_report(folder: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` for a bench folder; redraw ``bench.png``."""
    folder = Path(folder)
    try:
        data = json.loads((folder / "bench.json").read_text(encoding="utf-8"))
        markdown = (folder / "bench.md").read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise LawsearchError(f"{folder}: not a bench folder ({Path(exc.filename).name} is missing)") from None
    except json.JSONDecodeError as exc:
        raise LawsearchError(f"{folder / 'bench.json'}: not valid JSON: {exc.msg}") from None
    png = bench_chart_png(data)
    write_bytes_atomic(folder / CHART, png)
    md_path, html_path = folder / "report.md", folder / "report.html"
    write_text_atomic(md_path, markdown)
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    page = markdown.replace(f"![discovered vs human vs best published R² per task]({CHART})", "")
    write_text_atomic(html_path, "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', '<head><meta charset="utf-8"><title>lawsearch bench</title></head>',
        "<body>", "<h1>lawsearch bench</h1>",
        f'<figure><img src="{uri}" alt="discovered vs human vs best published R² per task">'
        "<figcaption>Test R² per task, clipped to [-1, 1]: the discovered law (mean over seeds, whiskers: "
        "min and max), the best human law as lawsearch fits it, the best published single run.</figcaption>"
        "</figure>",
        f"<pre>{html.escape(page)}</pre>", "</body>", "</html>", "",
    ]))
    return html_path, md_path
