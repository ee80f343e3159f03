"""A compact, factual summary of the training rows, written for an LLM prompt.

Everything here is computed by the project from the rows it is given — the
search-train rows of a :class:`~lawsearch.proposers.base.SearchContext`, never
validation or test rows.  The summary describes

* per input: range, number of distinct values, spacing (log or linear) and how
  many decades it spans;
* per target: range and sign;
* per (target, input) pair, within groups: monotonicity (Spearman sign),
  log-log slopes (partial elasticities, per group), curvature in log space,
  and whether the target looks saturating (flattens toward one end) or
  U-shaped / ∩-shaped (an interior optimum);

and, for one law, the pattern of its residuals after a quick fit
(:func:`residual_pattern`), so a ``mutate`` prompt can say where the law
misses.  Nothing here executes formula text: laws go through the safe parser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Rows",
    "summarize_data",
    "format_summary",
    "format_best_laws",
    "format_failures",
    "residual_pattern",
]

_MIN_ROWS_SLOPE = 3  # rows a group needs for a slope
_MIN_DISTINCT_CURVE = 4  # distinct values of an input a group needs for curvature
QUICK_FIT_STARTS = 16  # starting points of the residual hint's fit (the final fit takes 256)


@dataclass(frozen=True)
class Rows:
    """The rows a summary or a residual hint describes (pass train rows only): ``X`` (n, len(inputs)),
    ``Y`` (n, len(targets)) and the group label of each row (``None``: one group)."""

    inputs: Sequence[str]
    targets: Sequence[str] | str
    X: np.ndarray
    Y: np.ndarray
    groups: np.ndarray | None = None


# ---------------------------------------------------------------------------- helpers
def _fmt(x: float | None, digits: int = 3) -> str:
    """Short, deterministic number formatting."""
    if x is None or not np.isfinite(x):
        return "n/a"
    x = float(x)
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.{digits}g}"
    return f"{x:.{max(digits - 1, 1)}e}"


def _ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank)."""
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v), dtype=float)
    sv = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0
        i = j + 1
    return ranks


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0:
        return None
    return float(np.mean((rx - rx.mean()) * (ry - ry.mean())) / (sx * sy))


def _transform(v: np.ndarray, positive: bool) -> np.ndarray:
    return np.log(v) if positive else v


def _lstsq(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    coef, *_ = np.linalg.lstsq(A, b, rcond=None)
    resid = b - A @ coef
    return coef, float(resid @ resid)


def _group_labels(groups: np.ndarray | None, n: int) -> np.ndarray:
    if groups is None:
        return np.zeros(n, dtype=int)
    g = np.asarray(groups)
    if g.shape[0] != n:
        return np.zeros(n, dtype=int)
    return g


def _unique_in_order(g: np.ndarray) -> list[Any]:
    seen: dict[Any, None] = {}
    for v in g.tolist():
        seen.setdefault(v, None)
    return list(seen)


# ---------------------------------------------------------------------------- summary
def summarize_data(rows: Rows, *, max_groups_listed: int = 6) -> dict[str, Any]:
    """Summarize the rows into a JSON-ready dict.

    Only the rows given are used (pass train rows only).  Rows with a
    non-finite input or target are ignored.
    """
    inputs = list(rows.inputs)
    targets = [rows.targets] if isinstance(rows.targets, str) else list(rows.targets)
    X = np.asarray(rows.X, dtype=float).reshape(-1, len(inputs)) if len(inputs) else np.zeros((0, 0))
    n = X.shape[0]
    Y = np.asarray(rows.Y, dtype=float).reshape(n, len(targets))
    labels = _group_labels(rows.groups, n)
    ok = np.all(np.isfinite(X), axis=1) & np.all(np.isfinite(Y), axis=1)
    X, Y, labels = X[ok], Y[ok], labels[ok]
    n = X.shape[0]
    group_names = _unique_in_order(labels)
    summary: dict[str, Any] = {
        "n_rows": int(n),
        "n_dropped": int((~ok).sum()),
        "n_groups": len(group_names),
        "groups": [str(g) for g in group_names[:max_groups_listed]],
        "inputs": {},
        "targets": {},
        "relations": [],
    }
    if n == 0:
        return summary

    summary["inputs"] = {name: _describe_input(X[:, j]) for j, name in enumerate(inputs)}
    summary["targets"] = {name: _describe_target(Y[:, k]) for k, name in enumerate(targets)}
    positive_in = {name: info["positive"] for name, info in summary["inputs"].items()}
    positive_out = {name: info["positive"] for name, info in summary["targets"].items()}
    varying = [j for j, name in enumerate(inputs) if summary["inputs"][name]["n_distinct"] >= 2]

    T = np.column_stack([_transform(X[:, j], positive_in[inputs[j]]) for j in range(len(inputs))]) if inputs else X
    for k, tname in enumerate(targets):
        ty = _transform(Y[:, k], positive_out[tname])
        for j in varying:
            summary["relations"].append(
                _relation(tname, inputs, j, T, ty, Y[:, k], labels, group_names, positive_in, positive_out[tname], varying)
            )
    return summary


def _describe_input(col: np.ndarray) -> dict[str, Any]:
    """Range, distinct values, sign, decades spanned and spacing of one input column."""
    uniq = np.unique(col)
    positive = bool(np.all(col > 0))
    info: dict[str, Any] = {
        "min": float(col.min()),
        "max": float(col.max()),
        "n_distinct": int(len(uniq)),
        "positive": positive,
        "decades": None,
        "spacing": "constant",
    }
    if positive and len(uniq) >= 2:
        info["decades"] = float(np.log10(col.max() / col.min()))
    if len(uniq) == 2:
        info["spacing"] = "two values"
    elif len(uniq) >= 3:
        lin = np.diff(uniq)
        cv_lin = float(lin.std() / lin.mean()) if lin.mean() > 0 else math.inf
        if positive and (info["decades"] or 0) >= 1:
            lg = np.diff(np.log(uniq))
            cv_log = float(lg.std() / lg.mean()) if lg.mean() > 0 else math.inf
            info["spacing"] = "log-spaced" if cv_log <= cv_lin else "linear-spaced"
        else:
            info["spacing"] = "linear-spaced" if cv_lin < 0.5 else "irregular"
    return info


def _describe_target(col: np.ndarray) -> dict[str, Any]:
    return {"min": float(col.min()), "max": float(col.max()), "mean": float(col.mean()),
            "positive": bool(np.all(col > 0))}


def _relation(
    tname: str,
    inputs: list[str],
    j: int,
    T: np.ndarray,
    ty: np.ndarray,
    y: np.ndarray,
    labels: np.ndarray,
    group_names: list[Any],
    positive_in: dict[str, bool],
    positive_target: bool,
    varying: list[int],
) -> dict[str, Any]:
    iname = inputs[j]
    loglog = positive_target and positive_in[iname]
    rhos: list[tuple[float, int]] = []
    slopes: list[float] = []
    curv = {"convex": 0, "concave": 0, "straight": 0}
    saturating = {"large": 0, "small": 0}
    optimum = {"minimum": 0, "maximum": 0}
    n_curve_groups = 0
    for g in group_names:
        m = labels == g
        tj = T[m, j]
        if len(np.unique(tj)) < 2:
            continue
        rho = _spearman(tj, y[m])
        if rho is not None:
            rhos.append((rho, int(m.sum())))
        others = [i for i in varying if i != j and len(np.unique(T[m, i])) >= 2]
        # partial log-log slope: regress log y on log x_j and the other (transformed) inputs
        if loglog and m.sum() >= max(_MIN_ROWS_SLOPE, len(others) + 3):
            A = np.column_stack([np.ones(m.sum()), tj, *(T[m, i] for i in others)])
            coef, _ = _lstsq(A, ty[m])
            slopes.append(float(coef[1]))
        elif loglog and m.sum() >= _MIN_ROWS_SLOPE:
            A = np.column_stack([np.ones(m.sum()), tj])
            coef, _ = _lstsq(A, ty[m])
            slopes.append(float(coef[1]))
        if len(np.unique(tj)) >= _MIN_DISTINCT_CURVE and m.sum() >= len(others) + 5:
            n_curve_groups += 1
            shape, feature = _curve_shape(tj, ty[m], [T[m, i] for i in others])
            curv[shape] += 1
            if feature in optimum:
                optimum[feature] += 1
            elif feature in saturating:
                saturating[feature] += 1
    return _relation_record(tname, iname, loglog, rhos, slopes, curv, saturating, optimum, n_curve_groups)


def _curve_shape(tj: np.ndarray, ty: np.ndarray, others: list[np.ndarray]) -> tuple[str, str | None]:
    """Curvature of one group's (transformed) target along one input, from a quadratic term in the
    normalized input: ``("straight", None)``, or convex/concave with where it bends — an optimum inside
    (``"minimum"``/``"maximum"``), flattening at the ``"large"`` or ``"small"`` end, or neither."""
    lo, hi = tj.min(), tj.max()
    u = 2 * (tj - lo) / (hi - lo) - 1  # in [-1, 1]
    base = [np.ones(len(tj)), u, *others]
    _, sse_lin = _lstsq(np.column_stack(base), ty)
    coef, sse_quad = _lstsq(np.column_stack([*base, u**2]), ty)
    b, c = float(coef[1]), float(coef[-1])
    total = float(((ty - ty.mean()) ** 2).sum())
    if not (sse_lin > 1e-12 * max(total, 1e-300) and sse_quad < 0.8 * sse_lin):
        return "straight", None
    shape = "convex" if c > 0 else "concave"
    vertex = -b / (2 * c) if c != 0 else math.inf
    if -0.8 < vertex < 0.8:
        return shape, "minimum" if c > 0 else "maximum"
    slope_small, slope_large = b - 2 * c, b + 2 * c
    if abs(slope_large) < 0.6 * abs(slope_small):
        return shape, "large"
    if abs(slope_small) < 0.6 * abs(slope_large):
        return shape, "small"
    return shape, None


def _relation_record(tname: str, iname: str, loglog: bool, rhos: list[tuple[float, int]], slopes: list[float],
                     curv: dict[str, int], saturating: dict[str, int], optimum: dict[str, int],
                     n_curve_groups: int) -> dict[str, Any]:
    """The JSON-ready relation of one input and one target, from the per-group findings."""
    rel: dict[str, Any] = {"target": tname, "input": iname, "space": "log-log" if loglog else "transformed"}
    if rhos:
        weights = np.array([w for _, w in rhos], dtype=float)
        rho = float(np.average([r for r, _ in rhos], weights=weights))
        rel["spearman"] = rho
        rel["direction"] = "increasing" if rho > 0.3 else "decreasing" if rho < -0.3 else "no clear trend"
        signs = [np.sign(r) for r, _ in rhos if abs(r) > 0.3]
        rel["consistent_across_groups"] = bool(len(set(signs)) <= 1)
    else:
        rel["spearman"] = None
        rel["direction"] = "unknown"
    if slopes:
        rel["loglog_slope"] = {
            "median": float(np.median(slopes)),
            "min": float(np.min(slopes)),
            "max": float(np.max(slopes)),
            "n_groups": len(slopes),
        }
    rel["curvature_groups"] = n_curve_groups
    rel["curvature"] = {k: v for k, v in curv.items() if v}
    half = max(n_curve_groups, 1) / 2
    rel["saturating"] = bool(saturating["large"] >= half and n_curve_groups > 0)
    rel["saturating_small_end"] = bool(saturating["small"] >= half and n_curve_groups > 0)
    rel["u_shaped"] = bool(optimum["minimum"] >= half and n_curve_groups > 0)
    rel["cap_shaped"] = bool(optimum["maximum"] >= half and n_curve_groups > 0)
    rel["counts"] = {"saturating": saturating["large"], "u_shaped": optimum["minimum"], "cap_shaped": optimum["maximum"]}
    return rel


def format_summary(summary: dict[str, Any]) -> str:
    """Render :func:`summarize_data`'s dict as a few plain-text lines for a prompt."""
    lines: list[str] = []
    n_groups = summary.get("n_groups", 0)
    groups = summary.get("groups", [])
    more = f", …{n_groups - len(groups)} more" if n_groups > len(groups) else ""
    group_text = f" in {n_groups} group(s) ({', '.join(groups)}{more}); parameters are fitted per group" if n_groups > 1 else ""
    lines.append(f"Training rows: {summary.get('n_rows', 0)}{group_text}.")
    if not summary.get("n_rows"):
        return "\n".join(lines)
    lines.append("Inputs:")
    for name, info in summary["inputs"].items():
        parts = [f"{_fmt(info['min'])} .. {_fmt(info['max'])}", f"{info['n_distinct']} distinct values"]
        if info.get("decades") is not None:
            parts.append(f"{info['decades']:.1f} decades")
        parts.append(info["spacing"])
        parts.append("all positive" if info["positive"] else "has zero/negative values")
        lines.append(f"  - {name}: " + ", ".join(parts))
    lines.append("Targets:")
    for name, info in summary["targets"].items():
        sign = "all positive" if info["positive"] else "has zero/negative values"
        lines.append(f"  - {name}: {_fmt(info['min'])} .. {_fmt(info['max'])} (mean {_fmt(info['mean'])}), {sign}")
    if summary["relations"]:
        lines.append("How each target varies with each input (within groups, other inputs held in a regression):")
    for rel in summary["relations"]:
        parts = []
        if rel.get("spearman") is not None:
            cons = "" if rel.get("consistent_across_groups", True) else ", sign differs between groups"
            parts.append(f"{rel['direction']} (Spearman {rel['spearman']:+.2f}{cons})")
        slope = rel.get("loglog_slope")
        if slope:
            if slope["n_groups"] > 1:
                parts.append(
                    f"log-log slope {slope['median']:+.3g} (per group {slope['min']:+.3g} .. {slope['max']:+.3g})"
                )
            else:
                parts.append(f"log-log slope {slope['median']:+.3g}")
        if rel.get("curvature_groups"):
            space = "log-log space" if rel["space"] == "log-log" else "log space" if rel["space"] else "linear space"
            curv = ", ".join(f"{k} in {v}" for k, v in rel["curvature"].items())
            parts.append(f"curvature in {space}: {curv} of {rel['curvature_groups']} group(s)")
        if rel.get("saturating"):
            parts.append("looks SATURATING (flattens toward large values: an asymptote/irreducible term is likely)")
        if rel.get("saturating_small_end"):
            parts.append("flattens toward small values")
        if rel.get("u_shaped"):
            parts.append("looks U-SHAPED (a minimum inside the range: an optimum)")
        if rel.get("cap_shaped"):
            parts.append("looks ∩-SHAPED (a maximum inside the range)")
        lines.append(f"  - {rel['target']} vs {rel['input']}: " + ("; ".join(parts) or "no usable pattern"))
    return "\n".join(lines)


# ---------------------------------------------------------------------------- laws in prompts
def format_best_laws(best: Sequence[Any], limit: int = 8) -> str:
    """The best laws so far (ScoredLaw-like objects), one per line, best first."""
    if not best:
        return "(none yet)"
    lines = []
    for i, law in enumerate(list(best)[:limit], 1):
        lines.append(
            f"{i}. {law.formula}   [validation error {_fmt(law.val_error, 4)}, "
            f"{law.n_parameters} parameters, complexity {law.complexity}]"
        )
    return "\n".join(lines)


def format_failures(failures: Sequence[tuple[str, str]], limit: int = 10) -> str:
    """Recent rejected formulas with their reasons, most recent last; deduplicated."""
    seen: dict[str, str] = {}
    for formula, reason in failures:
        f = " ".join(str(formula).split())
        if len(f) > 120:
            f = f[:117] + "..."
        r = " ".join(str(reason).split())
        if len(r) > 160:
            r = r[:157] + "..."
        seen.pop(f, None)
        seen[f] = r
    items = list(seen.items())[-limit:]
    if not items:
        return "(none)"
    return "\n".join(f"- {f!s}  -> rejected: {r}" for f, r in items)


# ---------------------------------------------------------------------------- residuals
def residual_pattern(formula: str, rows: Rows, *, max_groups: int = 8, max_nfev: int = 100) -> str:
    """Fit ``formula`` quickly per group on the rows and describe where it misses (first target).

    This is a cheap hint for a prompt: the project's fitter with cheap options
    (:data:`QUICK_FIT_STARTS` starts, two local runs).  For each input it reports the mean relative
    residual (prediction − data) / |data| on the low, middle and high third of
    that input's values, and names the pattern (trend, U, ∩).
    Never raises: returns a short text explaining why no pattern is available.
    """
    from .errors import LawsearchError
    from .fit import FitOptions, fit_law
    from .formula import Law

    inputs = rows.inputs
    targets = [rows.targets] if isinstance(rows.targets, str) else list(rows.targets)
    try:
        law = Law.parse(formula, inputs, targets)
    except LawsearchError as exc:  # a hint must never break a prompt
        return f"(no residual pattern: {exc})"
    X = np.asarray(rows.X, dtype=float).reshape(-1, len(inputs))
    n = X.shape[0]
    Y = np.asarray(rows.Y, dtype=float).reshape(n, -1)
    labels = _group_labels(rows.groups, n)
    y = Y[:, 0]
    ok = np.all(np.isfinite(X), axis=1) & np.isfinite(y)
    X, y, labels = X[ok], y[ok], labels[ok]
    rel = np.full(len(y), np.nan)
    options = FitOptions(n_starts=QUICK_FIT_STARTS, n_local=2, max_nfev=max_nfev, tol=1e-8)
    for g in _unique_in_order(labels)[:max_groups]:
        m = labels == g
        try:
            fit = fit_law(law, X[m], y[m], labels[m], targets[:1], options).fits[0]
        except LawsearchError:
            continue
        if not np.isfinite(fit.loss):
            continue
        theta = fit.theta
        with np.errstate(all="ignore"):
            rel[m] = (law.evaluate(X[m], theta) - y[m]) / np.maximum(np.abs(y[m]), 1e-12)
    done = np.isfinite(rel)
    if not done.any():
        return "(no residual pattern: the quick fit failed)"
    mean_abs = 100 * float(np.mean(np.abs(rel[done])))
    lines = [f"quick per-group fit: mean |relative residual| {mean_abs:.2f}%"]
    for j, name in enumerate(inputs):
        col = X[done, j]
        r = rel[done]
        if len(np.unique(col)) < 3:
            continue
        # thirds by within-group rank of this input
        pos = np.empty(len(col))
        for g in _unique_in_order(labels[done]):
            m = labels[done] == g
            pos[m] = _ranks(col[m]) / max(m.sum() - 1, 1)
        thirds = [r[pos < 1 / 3], r[(pos >= 1 / 3) & (pos <= 2 / 3)], r[pos > 2 / 3]]
        if any(len(t) == 0 for t in thirds):
            continue
        lo, mid, hi = (100 * float(np.mean(t)) for t in thirds)
        spread = max(abs(lo), abs(mid), abs(hi))
        if spread < max(0.05, 0.2 * mean_abs):
            pattern = "no systematic pattern"
        elif lo > mid and hi > mid and min(lo, hi) - mid > 0.25 * spread:
            pattern = "U-shaped residuals: the law lacks curvature along this input"
        elif lo < mid and hi < mid and mid - max(lo, hi) > 0.25 * spread:
            pattern = "∩-shaped residuals: the law bends too much along this input"
        elif hi > lo:
            pattern = "residuals grow with this input: over-predicts at large values"
        else:
            pattern = "residuals fall with this input: under-predicts at large values"
        lines.append(f"vs {name}: low {lo:+.2f}%, middle {mid:+.2f}%, high {hi:+.2f}% -> {pattern}")
    return "\n".join(lines)
