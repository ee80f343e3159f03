"""Scoring one candidate formula: parse, check, fit on search-train, NMSE on validation.

:func:`evaluate_batch` is the function the executor runs (in a worker process
or on a Dask worker); it is pure and never raises for a bad candidate: every
outcome is a record with a ``status`` and, when it failed, a ``reason``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LawsearchError
from ..fit import OUT_OF_TIME, FitOptions, LawFit, fit_law, pinned_parameter
from ..formula import Law
from ..identifiability import reduce_law, redundant_direction, structural_redundancy
from ..nested import nested_starts
from ..proposers.library import Columns

__all__ = ["EvalPayload", "evaluate_batch", "validation_error", "trend_violation", "upper_bounds", "TREND_FACTORS",
           "mixture_shares", "infinite_at_zero_share"]


@dataclass(frozen=True)
class EvalPayload:
    """Everything a worker needs: search-train and validation rows, limits and fit effort."""

    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    X_fit: np.ndarray
    Y_fit: np.ndarray
    groups_fit: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    groups_val: np.ndarray
    max_parameters: int | None
    max_complexity: int
    fit_options: FitOptions
    seed: int
    positive_inputs: tuple[str, ...]  # inputs whose values are all > 0 (log/fractional powers allowed)
    monotone: tuple[tuple[str, str], ...] = ()  # (input, 'increasing' | 'decreasing') the task declares
    smallest_group: tuple[str, int] | None = None  # (group, its train rows): no law may have more parameters
    pairs: tuple[tuple[str, str], ...] = ()  # (target, input) the task pairs: what 'self' names
    finite_beyond: tuple[str, ...] = ()  # inputs along which a fit must stay finite beyond the data
    shares: tuple[str, ...] = ()  # mixture proportions (mixture_shares): a fit must be finite where one is 0


#: How far beyond the validation rows a declared trend is checked: each monotone input
#: is stretched by these factors (an input with non-positive values is shifted instead,
#: by these multiples of its search-train range minus one).
TREND_FACTORS = np.geomspace(1.0, 10.0, 13)


def validation_error(payload: EvalPayload, pred: np.ndarray) -> tuple[float, float]:
    """Validation NMSE (SLDBench definition, groups pooled, mean over outputs) and its standard error.

    Each validation row contributes r_i = mean over outputs of (y - ŷ)² / var(y);
    the NMSE is mean(r_i) and its standard error std(r_i) / sqrt(n).  When the
    validation rows of an output have (almost) no spread (e.g. a single row),
    that output is normalised by the variance of the search-train rows instead,
    so the error stays finite and comparable.
    """
    var_val = np.var(payload.Y_val, axis=0)
    var_fit = np.var(payload.Y_fit, axis=0)
    scale = np.where(var_val > 1e-12 * np.maximum(var_fit, 1e-300), var_val, var_fit)
    with np.errstate(all="ignore"):
        per_row = np.mean((payload.Y_val - pred) ** 2 / np.maximum(scale, 1e-300), axis=1)
    if not np.all(np.isfinite(per_row)):
        return float("inf"), float("inf")
    n = len(per_row)
    with np.errstate(all="ignore"):
        se = float(np.std(per_row, ddof=1) / np.sqrt(n)) if n > 1 else 0.0
        error = float(np.mean(per_row))
    if not (np.isfinite(error) and np.isfinite(se)):
        return float("inf"), float("inf")
    return error, se


def trend_violation(fit: LawFit, payload: EvalPayload) -> str | None:
    """Why a fitted law breaks a trend the task declares (``monotone``), or None.

    From every validation row, each declared input is pushed outwards (up to
    10x, see :data:`TREND_FACTORS`) with the other inputs held; the predictions
    of every target must move in the declared direction (up to a tolerance of
    1e-6 of the target's spread).  This is where extrapolation happens, and a
    law that turns around there (a loss that rises with model size) is rejected.
    A push stays within the order the rows keep between inputs: where an input
    never exceeds another on any row (unique tokens <= total tokens), it is pushed
    no further than that other input, as beyond it no run can lie.
    """
    if not payload.monotone or len(payload.X_val) == 0:
        return None
    n, k = len(payload.X_val), len(TREND_FACTORS)
    spread = np.std(payload.Y_fit, axis=0) + 1e-300
    for name, direction in payload.monotone:
        j = payload.inputs.index(name)
        X = _pushed(payload, name)
        pred = fit.predict(X, np.repeat(payload.groups_val, k), payload.targets).reshape(n, k, -1)
        moves = np.diff(pred, axis=1) * (1.0 if direction == "increasing" else -1.0)
        with np.errstate(invalid="ignore"):
            broken = ~(moves >= -1e-6 * spread)  # NaN counts as broken
        if broken.any():
            row = int(np.argwhere(broken)[0][0])
            return (f"not {direction} in {name} beyond the data (from validation row with "
                    f"{name} = {payload.X_val[row, j]:g}, up to {TREND_FACTORS[-1]:g}x)")
    return None


def _pushed(payload: EvalPayload, name: str) -> np.ndarray:
    """Every validation row repeated with input ``name`` pushed outwards by :data:`TREND_FACTORS`
    (shifted, for an input with non-positive values), no further than an input it never exceeds."""
    j = payload.inputs.index(name)
    X = np.repeat(payload.X_val, len(TREND_FACTORS), axis=0)
    steps = np.tile(TREND_FACTORS, len(payload.X_val))
    if name in payload.positive_inputs:
        X[:, j] = X[:, j] * steps
    else:
        X[:, j] = X[:, j] + (steps - 1.0) * np.ptp(payload.X_fit[:, j])
    for m in upper_bounds(np.vstack([payload.X_fit, payload.X_val]), j):
        X[:, j] = np.minimum(X[:, j], X[:, m])
    return X


def infinite_beyond(fit: LawFit, payload: EvalPayload) -> str | None:
    """Why a fitted law is not finite beyond the data along ``finite_beyond`` (the task's scale
    axes, where the test rows lie), or None: from every validation row, each such input is pushed
    outwards as in :func:`trend_violation`, and every prediction must be finite.  A fit that overflows
    or leaves its domain there (a switch built of exp(653·x), a pole) cannot be extrapolated."""
    if not payload.finite_beyond or len(payload.X_val) == 0:
        return None
    groups = np.repeat(payload.groups_val, len(TREND_FACTORS))
    for name in payload.finite_beyond:
        X = _pushed(payload, name)
        bad = ~np.isfinite(fit.predict(X, groups, payload.targets)).reshape(len(X), -1).all(axis=1)
        if bad.any():
            j = payload.inputs.index(name)
            return f"not finite beyond the data: at {name} = {X[int(np.argmax(bad)), j]:g}"
    return None


def mixture_shares(inputs: tuple[str, ...], X: np.ndarray) -> tuple[str, ...]:
    """The inputs that are the shares of a mixture: two or more of the library's unit columns (each in
    [0, 1]), summing to 1 on every row (to 1e-6); none when the inputs hold no such set."""
    unit = Columns.from_data(inputs, X).unit
    total = np.asarray(X, dtype=float)[:, [inputs.index(n) for n in unit]].sum(axis=1)
    return unit if len(unit) >= 2 and np.allclose(total, 1.0, rtol=0, atol=1e-6) else ()


def infinite_at_zero_share(fit: LawFit, payload: EvalPayload) -> str | None:
    """Why a fitted law of mixture shares is not finite where a share is 0, or None: every validation
    row is turned, for each share (``payload.shares``) in turn, into the mixture without that domain
    (the share set to 0, the others scaled up to sum to 1; shared equally where they were all 0),
    and every prediction must be finite.  A mixture may leave any domain out; a law undefined there
    (``(self + eps)**-alpha`` with eps fitted below 0 where a group's rows never left it out) cannot
    predict such a mixture."""
    if not payload.shares or len(payload.X_val) == 0:
        return None
    columns = [payload.inputs.index(name) for name in payload.shares]
    for name, j in zip(payload.shares, columns):
        others = [m for m in columns if m != j]
        X = payload.X_val.copy()
        rest = X[:, others].sum(axis=1, keepdims=True)
        X[:, others] = np.where(rest > 0, X[:, others] / np.where(rest > 0, rest, 1.0), 1.0 / len(others))
        X[:, j] = 0.0
        pred = fit.predict(X, payload.groups_val, payload.targets).reshape(len(X), -1)
        if not np.isfinite(pred).all():
            return f"not finite where {name} = 0 (a mixture without it)"
    return None


def upper_bounds(X: np.ndarray, j: int) -> list[int]:
    """Columns of ``X`` that column ``j`` never exceeds on any row (other than ``j`` itself)."""
    return [m for m in range(X.shape[1]) if m != j and bool(np.all(X[:, j] <= X[:, m]))]


#: A parent's fit a candidate's multi-start may begin from: its formula and (group, target, parameters).
ParentFit = tuple[str, list[tuple[str, str, list[float]]]]


def _evaluate_one(formula: str, payload: EvalPayload, parent: ParentFit | None = None) -> dict[str, Any]:
    try:
        law = Law.parse(formula, payload.inputs, payload.targets, pairs=payload.pairs)
    except LawsearchError as exc:
        return {"status": "parse_error", "reason": str(exc)}
    info: dict[str, Any] = {"formula": law.text, "key": law.canonical, "complexity": law.complexity,
                            "n_parameters": law.n_parameters}
    if not law.variables:
        return {**info, "status": "rejected", "reason": "uses no input"}
    # parameters the law's form cannot identify are reparametrized after the fit and do not count
    # against the limit (a 'self' law is counted whole: the rank check evaluates the law on the
    # inputs, which do not hold the paired column); a redundancy the rows alone create is kept
    redundant = 0 if law.uses_self else structural_redundancy(law, payload.X_fit, payload.seed)
    if payload.max_parameters is not None and law.n_parameters > payload.max_parameters:
        identifiable = law.n_parameters - redundant
        if identifiable > payload.max_parameters:
            return {**info, "status": "rejected",
                    "reason": f"{identifiable} parameters > limit {payload.max_parameters}"}
    if payload.smallest_group is not None and law.n_parameters > payload.smallest_group[1]:
        group, rows = payload.smallest_group
        return {**info, "status": "rejected",
                "reason": f"{law.n_parameters} parameters > the {rows} train rows of group {group!r}"}
    if law.complexity > payload.max_complexity:
        return {**info, "status": "rejected", "reason": f"complexity {law.complexity} > {payload.max_complexity}"}
    bad_domain = [v for v in law.log_domain_variables() if v not in payload.positive_inputs]
    if bad_domain:
        return {**info, "status": "rejected", "reason": f"log/fractional power of non-positive input {bad_domain[0]!r}"}
    try:
        start = None if parent is None else nested_starts(
            Law.parse(parent[0], payload.inputs, payload.targets, pairs=payload.pairs), parent[1], law,
            payload.X_fit, payload.groups_fit)
        fit = fit_law(law, payload.X_fit, payload.Y_fit, payload.groups_fit, payload.targets,
                      payload.fit_options, seed=payload.seed, start=start)
        if any(OUT_OF_TIME in f.message for f in fit.fits):
            return {**info, "status": "timeout", "reason": "the time limit cut its fit short"}
        fit, dropped = _identifiable(fit, payload) if redundant else (fit, [])
        if fit is None:
            return {**info, "status": "rejected",
                    "reason": "not identifiable: some parameters act only together, and none could be fixed"}
        if dropped:
            law = fit.law
            info.update(formula=law.text, complexity=law.complexity, n_parameters=law.n_parameters,
                        identifiability=f"reparametrized ({', '.join(dropped)}): parameters that act only together")
        if payload.max_parameters is not None and law.n_parameters > payload.max_parameters:
            return {**info, "status": "rejected",
                    "reason": f"{law.n_parameters} identifiable parameters > limit {payload.max_parameters}"}
        pred = fit.predict(payload.X_val, payload.groups_val, payload.targets)
        with np.errstate(all="ignore"):
            broken = (pinned_parameter(fit, payload.fit_options) or trend_violation(fit, payload)
                      or infinite_beyond(fit, payload) or infinite_at_zero_share(fit, payload))
    except LawsearchError as exc:
        return {**info, "status": "fit_failed", "reason": str(exc)}
    if broken:
        return {**info, "status": "rejected", "reason": broken}
    error, se = validation_error(payload, pred)
    if not np.isfinite(error):
        return {**info, "status": "fit_failed", "reason": "non-finite predictions on validation rows"}
    fitted = [(f.group, f.target, f.theta.tolist()) for f in fit.fits]
    return {**info, "status": "ok", "val_error": error, "val_se": se, "fitted": fitted}


def _identifiable(fit: LawFit, payload: EvalPayload) -> tuple[LawFit | None, list[str]]:
    """The fit with every parameter the search-train rows cannot identify fixed (reparametrized,
    :func:`~lawsearch.identifiability.reduce_law`), and what was fixed; None if one cannot be."""
    dropped: list[str] = []
    while redundant_direction(fit, payload.X_fit, payload.groups_fit) is not None:
        reduced = reduce_law(fit, payload.X_fit, payload.groups_fit,
                             lambda law: fit_law(law, payload.X_fit, payload.Y_fit, payload.groups_fit,
                                                 payload.targets, payload.fit_options, seed=payload.seed))
        if reduced is None:
            return None, dropped
        fit, fixed = reduced
        dropped.append(fixed)
    return fit, dropped


def evaluate_batch(formulas: list[str], payload: EvalPayload,
                   parents: list[ParentFit | None] | None = None) -> list[dict[str, Any]]:
    """Score each formula; never raises for a bad candidate (the record says what went wrong).
    Once the fit options' deadline has passed, each formula left gets status ``timeout``.
    ``parents`` gives, per formula, its parent's fit or None: where the parent is nested in the
    formula, the fit starts from it (:func:`~lawsearch.nested.nested_starts`).  An ok record
    holds its fitted parameters (``fitted``) for the formula's own children."""
    results = []
    for formula, parent in zip(formulas, parents or [None] * len(formulas)):
        if payload.fit_options.out_of_time():
            results.append({"status": "timeout", "reason": "the time limit came before its fit"})
            continue
        start = time.perf_counter()
        try:
            record = _evaluate_one(formula, payload, parent)
        except Exception as exc:  # a candidate's own failure is recorded as data (status "error")
            record = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
        record["fit_seconds"] = round(time.perf_counter() - start, 4)
        results.append(record)
    return results
