"""The report's figures: one function per figure, each returning a matplotlib Figure.

Figures are computed from results (fitted laws, the task's rows, the run's
archive and history), never inside the search.  matplotlib (a dependency) is
imported lazily, with the Agg backend outside a notebook (a notebook keeps its
inline backend, for ``result.plot()``); nothing here calls ``plt.show``.
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EngineUnavailable, FitError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..fit import LawFit
    from ..task import Task, TaskData

__all__ = [
    "SPLIT_STYLE",
    "main_axis",
    "observed_vs_predicted",
    "group_curves",
    "residuals_vs_scale",
    "pareto_front",
    "search_progress",
    "render_latex",
    "spaced_latex",
    "figure_png",
    "split_labels",
]

SPLIT_STYLE = {  # marker style of the rows of each split, shared by every figure
    "train": {"color": "#4C72B0", "marker": "o", "s": 22, "label": "train"},
    "validation": {"color": "#DD8452", "marker": "s", "s": 26, "label": "validation (search)"},
    "test": {"color": "#C44E52", "marker": "*", "s": 90, "label": "test (held out)"},
}
WINNER_COLOR = "#222222"
HUMAN_COLOR = "#55A868"
MAX_PANELS = 12  # group/target panels drawn at most


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise EngineUnavailable("matplotlib is not installed: pip install matplotlib for reports") from None
    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def _positive(*arrays: np.ndarray) -> bool:
    return all(np.size(a) > 0 and np.all(np.asarray(a)[np.isfinite(a)] > 0) for a in arrays)


def _grid(n: int, width: float = 4.0, height: float = 3.2, max_cols: int = 3) -> tuple[Any, np.ndarray]:
    plt = _pyplot()
    cols = min(max_cols, max(n, 1))
    rows = math.ceil(max(n, 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat[:n]


def _plain_log_ticks(ax: Any, *, x: bool = False, y: bool = False) -> None:
    """Tick labels of log axes as plain numbers (2, 3, 4) instead of 2×10⁰ when a span is short."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:.3g}")
    for use, axis, limits in ((x, ax.xaxis, ax.get_xlim()), (y, ax.yaxis, ax.get_ylim())):
        lo, hi = sorted(limits)
        if not (use and lo > 0 and hi / lo < 30):
            continue
        if hi / lo >= 4:  # 1, 2, 5 per decade
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(plain if hi / lo < 4 else NullFormatter())


def _legend_or_note(ax: Any, empty: str, **kwargs: Any) -> None:
    """A legend when something is labelled, else a note in the middle of the empty axes."""
    if ax.get_legend_handles_labels()[1]:
        ax.legend(**kwargs)
    else:
        ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center", color="0.4")


def main_axis(task: Task) -> str:
    """The input drawn on the x axis: the scale column spanning the most decades (else the first)."""
    candidates = list(task.scale_columns) or list(task.inputs)
    best, best_span = candidates[0], -1.0
    for name in candidates:
        values = np.concatenate([task.train.column(name), task.test.column(name)])
        span = float(np.log10(values.max() / values.min())) if np.all(values > 0) else 0.0
        if span > best_span + 1e-12:
            best, best_span = name, span
    return best


# ---------------------------------------------------------------------- observed vs predicted
def observed_vs_predicted(
    observed: np.ndarray,
    predicted: np.ndarray,
    split: np.ndarray,
    targets: Sequence[str],
    *,
    title: str = "Observed vs predicted",
) -> Figure:
    """Scatter of predictions against observations, one panel per target, rows marked by split
    (``split`` holds 'train', 'validation' or 'test' per row); the diagonal is a perfect fit."""
    observed = np.asarray(observed, dtype=float).reshape(len(split), -1)
    predicted = np.asarray(predicted, dtype=float).reshape(len(split), -1)
    fig, axes = _grid(len(targets), 4.6, 4.2)
    for j, (ax, target) in enumerate(zip(axes, targets)):
        y, p = observed[:, j], predicted[:, j]
        for name, style in SPLIT_STYLE.items():
            rows = split == name
            if rows.any():
                ax.scatter(y[rows], p[rows], edgecolors="none", alpha=0.85, zorder=3 if name == "test" else 2,
                           **style)
        finite = np.concatenate([y[np.isfinite(y)], p[np.isfinite(p)]])
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            pad = 0.03 * (hi - lo or abs(hi) or 1.0)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=1, ls="--", zorder=1,
                    label="y = ŷ")
        if _positive(y, p):
            ax.set_xscale("log")
            ax.set_yscale("log")
            _plain_log_ticks(ax, x=True, y=True)
        ax.set_xlabel(f"observed {target}")
        ax.set_ylabel(f"predicted {target}")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------- per-group curves
def _sweep(values: np.ndarray, log: bool, n: int = 200) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if log:
        return np.logspace(np.log10(lo), np.log10(hi), n)
    return np.linspace(lo, hi, n)


def group_curves(
    task: Task,
    fit: LawFit,
    human: LawFit | None = None,
    *,
    human_name: str = "human law",
    axis: str | None = None,
    max_panels: int = MAX_PANELS,
) -> Figure:
    """Per group (and target), the observations along the main scale axis with the fitted law's
    curve and the human law's, log-log where the data allow; test rows are highlighted.

    Where the law depends on other inputs, the curve holds them at the group's largest-scale
    test row (the extrapolation the task is about), and the law's predictions at every row are
    drawn as hollow markers.
    """
    axis = axis or main_axis(task)
    k = task.inputs.index(axis)
    scores = task.scale_score(task.test)
    panels = [(g, t) for g in task.train.group_names() for t in task.targets]
    shown = panels[:max_panels]
    fig, axes = _grid(len(shown))
    for ax, (group, target) in zip(axes, shown):
        j = task.targets.index(target)
        train = task.train.subset(task.train.groups == group)
        test = task.test.subset(task.test.groups == group)
        X_all = np.vstack([train.X, test.X])
        y_all = np.concatenate([train.Y[:, j], test.Y[:, j]])
        x_log = bool(np.all(X_all[:, k] > 0))
        anchor_index = 0
        if len(test):
            in_group = np.flatnonzero(task.test.groups == group)
            anchor_index = int(np.argmax(scores[in_group])) if scores is not None else len(test) - 1
        anchor = test.X[anchor_index] if len(test) else train.X[-1]
        others = [i for i, name in enumerate(task.inputs) if i != k and name in fit.law.variables]
        varying = any(np.ptp(X_all[:, i]) > 0 for i in others)
        grid = np.tile(anchor, (200, 1))
        grid[:, k] = _sweep(X_all[:, k], x_log)

        ax.scatter(train.X[:, k], train.Y[:, j], **{**SPLIT_STYLE["train"], "label": "train"}, alpha=0.8, zorder=2)
        if len(test):
            ax.scatter(test.X[:, k], test.Y[:, j], **SPLIT_STYLE["test"], zorder=4)
        curves = [("discovered law", fit, WINNER_COLOR, "-")]
        if human is not None:
            curves.append((human_name, human, HUMAN_COLOR, "--"))
        for label, law_fit, color, style in curves:
            try:
                theta = law_fit.get(group, target).theta
            except FitError:  # a group the law was not fitted on: nothing to draw
                continue
            ax.plot(grid[:, k], law_fit.law.bound(target).evaluate(grid, theta), color=color, ls=style, lw=1.6, label=label,
                    zorder=3)
            if varying:
                ax.scatter(X_all[:, k], law_fit.law.bound(target).evaluate(X_all, theta), facecolors="none", edgecolors=color,
                           s=18, lw=0.8, zorder=3, label=f"{label} at each row")
        if x_log:
            ax.set_xscale("log")
        if _positive(y_all):
            ax.set_yscale("log")
            _plain_log_ticks(ax, y=True)
        title = str(group) if len(task.targets) == 1 else f"{group} — {target}"
        if varying:
            held = ", ".join(f"{task.inputs[i]}={anchor[i]:.3g}" for i in others)
            title += f"\n(curves at {held})"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(axis)
        ax.set_ylabel(target)
        ax.grid(True, which="both", alpha=0.25)
    note = f" (first {len(shown)} of {len(panels)} panels)" if len(panels) > len(shown) else ""
    fig.suptitle(f"Per-group curves along {axis}{note}")
    fig.tight_layout()
    if len(shown):
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 3),
                   fontsize=8, frameon=False)
    return fig


# ---------------------------------------------------------------------- residuals
def residuals_vs_scale(
    scale: np.ndarray,
    observed: np.ndarray,
    predicted: np.ndarray,
    split: np.ndarray,
    targets: Sequence[str],
    *,
    xlabel: str = "scale",
) -> Figure:
    """Residuals of the fitted law against the scale of each row, marked by split.

    Relative residuals ``(ŷ − y) / y`` (in %) where every observation is positive, else ``ŷ − y``.
    """
    observed = np.asarray(observed, dtype=float).reshape(len(split), -1)
    predicted = np.asarray(predicted, dtype=float).reshape(len(split), -1)
    fig, axes = _grid(len(targets), 5.2, 3.6)
    for j, (ax, target) in enumerate(zip(axes, targets)):
        y, p = observed[:, j], predicted[:, j]
        relative = _positive(y)
        with np.errstate(all="ignore"):
            r = 100.0 * (p - y) / y if relative else p - y
        for name, style in SPLIT_STYLE.items():
            rows = split == name
            if rows.any():
                ax.scatter(scale[rows], r[rows], alpha=0.85, edgecolors="none", **style)
        ax.axhline(0.0, color="0.4", lw=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"(ŷ − y) / y  [%]  ({target})" if relative else f"ŷ − y  ({target})")
        ax.grid(True, alpha=0.25)
        _legend_or_note(ax, "no rows", fontsize=8)
    fig.suptitle("Residuals vs scale")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------- the search
def _source_colors(sources: Sequence[str]) -> dict[str, Any]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    return {s: cmap(i % 10) for i, s in enumerate(dict.fromkeys(sources))}


def pareto_front(candidates: Sequence[Mapping[str, Any]], winner: str | None = None) -> Figure:
    """Every law scored (complexity × validation NMSE, by proposer), the Pareto front and the winner.

    ``candidates`` are archive entries (checkpoint.json's ``archive``: formula, complexity,
    val_error, source); ``winner`` is the chosen formula text.
    """
    from ..search.archive import Candidate, pareto_front as front_of

    plt = _pyplot()
    cands = [Candidate.from_dict(dict(c)) for c in candidates]
    ok = [c for c in cands if c.ok and c.val_error > 0]
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    colors = _source_colors([c.source for c in ok])
    for source, color in colors.items():
        mine = [c for c in ok if c.source == source]
        ax.scatter([c.complexity for c in mine], [c.val_error for c in mine], color=color, alpha=0.45, s=18,
                   edgecolors="none", label=f"{source} ({len(mine)})")
    front = [c for c in front_of(ok)]
    if front:
        ax.step([c.complexity for c in front], [c.val_error for c in front], where="post", color="black", lw=1.4,
                marker="o", ms=4, label="Pareto front")
    chosen = next((c for c in ok if c.formula == winner), None)
    if chosen is not None:
        ax.scatter([chosen.complexity], [chosen.val_error], marker="*", s=260, color="#C44E52", edgecolors="black",
                   zorder=5, label="winner")
    if ok:
        ax.set_yscale("log")
    ax.set_xlabel("complexity (expression-tree nodes)")
    ax.set_ylabel("validation NMSE")
    ax.set_title(f"Pareto front ({len(front)} laws on the front, {len(ok)} scored)")
    ax.grid(True, which="both", alpha=0.25)
    _legend_or_note(ax, "no law was scored", fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


_NOT_EVALUATED = ("parse_error", "duplicate")


def search_progress(history: Sequence[Mapping[str, Any]]) -> Figure:
    """Best validation NMSE so far against the number of laws evaluated: overall, and per proposer
    (the best of that proposer's own laws); dotted lines mark generations."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    evaluated = [r for r in history if r.get("status") not in _NOT_EVALUATED]
    colors = _source_colors([str(r.get("source")) for r in evaluated])
    overall = math.inf
    xs, ys = [], []
    per: dict[str, tuple[list[int], list[float], list[float]]] = {s: ([], [], [math.inf]) for s in colors}
    last_generation = None
    for n, record in enumerate(evaluated, start=1):
        generation = record.get("generation")
        if generation != last_generation and last_generation is not None:
            ax.axvline(n - 0.5, color="0.85", lw=0.8, ls=":", zorder=0)
        last_generation = generation
        error = record.get("val_error")
        if record.get("status") == "ok" and error is not None and math.isfinite(error) and error > 0:
            overall = min(overall, error)
            px, py, best = per[str(record.get("source"))]
            if error < best[0]:
                best[0] = error
            px.append(n)
            py.append(best[0])
        if math.isfinite(overall):
            xs.append(n)
            ys.append(overall)
    if xs:
        ax.step(xs, ys, where="post", color="0.55", lw=5, alpha=0.5, label="best overall", zorder=1)
        ax.set_yscale("log")
        _plain_log_ticks(ax, y=True)
    for source, (px, py, _) in per.items():
        if px:
            ax.step(px, py, where="post", color=colors[source], lw=1.5, label=f"best of {source}", zorder=2)
    ax.set_xlabel("laws evaluated")
    ax.set_ylabel("best validation NMSE so far")
    ax.set_title("Search progress")
    ax.grid(True, which="both", alpha=0.25)
    _legend_or_note(ax, "no law was evaluated", fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------- LaTeX
def _simplify_latex(tex: str) -> str:
    """A mathtext-friendlier spelling of sympy's LaTeX (operatornames, sized delimiters)."""
    import re

    tex = re.sub(r"\\operatorname\{([^{}]*)\}", r"\\mathrm{\1}", tex)
    tex = tex.replace("\\left", "").replace("\\right", "")
    return tex.replace("\\middle", "")


def spaced_latex(tex: str) -> str:
    """Thin spaces between a factor and a name or function (``A \\mathrm{params}`` would read "Aparams")."""
    import re

    return re.sub(r"(?<=[A-Za-z0-9}]) (?=\\(?:mathrm\{|log|exp|tanh|min|max|operatorname))", r" \\, ", tex)


def render_latex(tex: str, *, fontsize: int = 18, dpi: int = 130) -> bytes | None:
    """The LaTeX formula rendered to PNG with matplotlib's mathtext (no TeX install, no network);
    None when mathtext cannot typeset it even after simplification."""
    plt = _pyplot()
    spaced = spaced_latex(tex)
    for candidate in dict.fromkeys((spaced, _simplify_latex(spaced), tex, _simplify_latex(tex))):
        fig = plt.figure(figsize=(0.01, 0.01))
        fig.text(0, 0, f"${candidate}$", fontsize=fontsize)
        buffer = io.BytesIO()
        try:
            fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.08, facecolor="white")
        except (ValueError, RuntimeError):
            continue
        finally:
            plt.close(fig)
        return buffer.getvalue()
    return None


def split_labels(task: Task, validation: TaskData) -> tuple[np.ndarray, np.ndarray]:
    """Rows of train then test, as (row numbers, labels 'train' / 'validation' / 'test')."""
    held = set(validation.rows.tolist())
    train = np.array(["validation" if r in held else "train" for r in task.train.rows.tolist()], dtype=object)
    labels = np.concatenate([train, np.full(len(task.test), "test", dtype=object)])
    return np.concatenate([task.train.rows, task.test.rows]), labels
