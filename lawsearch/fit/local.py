"""Bounded trust-region least squares, many local fits at once.

Every run of a :class:`~lawsearch.fit.runs.Runs` is its own local fit with its own trust
radius, step and stopping rule; each round evaluates the residuals of all active runs in one
numpy call and their Jacobians (and SVDs) in another, so a run's path never depends on the others.

Each run follows scipy's ``least_squares`` (``trf`` with bounds, ``x_scale=1``, exact trust-region
solver) step for step: Coleman and Li's scaling by the distance to the bound the gradient points
at, so a run slows down as it nears a bound and stays strictly inside (:func:`._steps.select_step`:
the best of the trust-region step stopped short of the bound, its reflection and the scaled
anti-gradient); the Levenberg-Marquardt parameter found by Newton's method on the secular
equation (More's algorithm); the radius shrunk after a poor model prediction and grown after a
good one that reached it.  Under a Huber loss the model is scipy's: residuals beyond the
threshold enter through their gradient only, and steps are judged by the Huber cost itself.

A run stops when a step lowers the cost by less than ``tol`` of it, when a step is shorter than
``tol`` of the parameters, when the scaled gradient is below ``tol``, or after ``max_nfev``
evaluations (it *ran out*).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .runs import CHUNK_VALUES, Runs
from .steps import ScaledModel, row_norms, select_step, strictly_feasible, trust_region_step

__all__ = ["LocalResult", "local_fits", "robust_cost"]

_TINY = 1e-300
_ROOT_EPS = np.sqrt(np.finfo(float).eps)  # the curvature weight of a residual beyond the Huber threshold
_START_STEP = 1e-10  # a start on a bound is moved this share of its magnitude inside (as scipy)


@dataclass(frozen=True)
class LocalResult:
    """Where each run ended: parameters, cost (0.5 sum rho), and whether it ran out of evaluations."""

    x: np.ndarray
    cost: np.ndarray
    ran_out: np.ndarray


def robust_cost(r: np.ndarray, f_scale: np.ndarray | None) -> np.ndarray:
    """0.5 sum rho(r) per run (R,): squares, or Huber with threshold ``f_scale`` (R,)."""
    if f_scale is None:
        return 0.5 * np.einsum("rn,rn->r", r, r)
    a, c = np.abs(r), f_scale[:, None]
    return 0.5 * np.sum(np.where(a <= c, a * a, 2.0 * c * a - c * c), axis=1)


def local_fits(runs: Runs, x0: np.ndarray, projected: bool, max_nfev: int, tol: float,
               f_scale: np.ndarray | None = None, out_of_time: Callable[[], bool] = lambda: False) -> LocalResult:
    """Minimize each run's cost from ``x0`` (R, m) inside its bounds (see the module docstring),
    at most :data:`CHUNK_VALUES` residuals at a time (runs are independent: chunks change nothing)."""
    size = max(1, CHUNK_VALUES // runs.y.shape[1])
    if len(runs) > size:
        parts = [local_fits(runs.take(np.arange(k, min(k + size, len(runs)))), x0[k:k + size], projected, max_nfev,
                            tol, None if f_scale is None else f_scale[k:k + size], out_of_time)
                 for k in range(0, len(runs), size)]
        return LocalResult(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("x", "cost", "ran_out")))
    with np.errstate(all="ignore"):  # for every step below: non-finite values are handled where they arise
        return _local_fits(runs, x0, projected, max_nfev, tol, f_scale, out_of_time)


def _local_fits(runs: Runs, x0: np.ndarray, projected: bool, max_nfev: int, tol: float,
                f_scale: np.ndarray | None, out_of_time: Callable[[], bool]) -> LocalResult:
    """:func:`local_fits` of at most one chunk of runs."""
    lower, upper = runs._bounds_of(projected)
    x = strictly_feasible(np.clip(x0, lower, upper), lower, upper, _START_STEP)
    if out_of_time():
        return LocalResult(x, np.full(len(x), np.inf), np.zeros(len(x), dtype=bool))
    theta, pred = (np.array(a) for a in runs.point(x, projected))
    r = runs.residuals(pred)
    cost = robust_cost(r, f_scale)
    n, m = x.shape
    nfev, stopped = np.ones(n, dtype=int), np.zeros(n, dtype=bool)
    active = nfev < max_nfev
    radius, alpha = np.full(n, np.nan), np.zeros(n)
    model = ScaledModel.empty(n, m)
    fresh = active.copy()  # runs whose Jacobian must be (re)computed at x
    while active.any() and not out_of_time():
        idx = np.flatnonzero(fresh & active)
        if idx.size:
            converged, start_radius = _decompose(runs.take(idx), x[idx], (theta[idx], pred[idx]), r[idx], projected,
                                                 None if f_scale is None else f_scale[idx], model, idx, tol)
            stopped[idx[converged]] = True
            radius[idx] = np.where(np.isnan(radius[idx]), start_radius, radius[idx])
            fresh[idx] = False
        active &= ~stopped
        idx = np.flatnonzero(active)
        if not idx.size:
            break
        at = model.take(idx)
        p_h, alpha[idx] = trust_region_step(at, radius[idx], alpha[idx])
        step, step_h, predicted = select_step(x[idx], p_h, at, radius[idx], lower[idx], upper[idx])
        trial = strictly_feasible(x[idx] + step, lower[idx], upper[idx], 0.0)
        trying = runs.take(idx)
        theta_trial, pred_trial = trying.point(trial, projected)
        r_trial = trying.residuals(pred_trial)
        cost_trial = robust_cost(r_trial, None if f_scale is None else f_scale[idx])
        nfev[idx] += 1
        actual = cost[idx] - cost_trial
        new_radius, ratio = _updated_radius(radius[idx], actual, predicted, row_norms(step_h))
        done = ((actual < tol * cost[idx]) & (ratio > 0.25)) | (
            row_norms(step) < tol * (tol + row_norms(x[idx])))
        alpha[idx] = np.where(done, alpha[idx], alpha[idx] * radius[idx] / new_radius)
        radius[idx] = np.where(done, radius[idx], new_radius)
        better = actual > 0
        ok = idx[better]
        x[ok], r[ok], cost[ok] = trial[better], r_trial[better], cost_trial[better]
        theta[ok], pred[ok] = theta_trial[better], pred_trial[better]
        fresh[ok] = True
        stopped[idx[done]] = True
        active &= ~stopped & (nfev < max_nfev)
    return LocalResult(x, cost, ~stopped & (nfev >= max_nfev))


def _updated_radius(radius: np.ndarray, actual: np.ndarray, predicted: np.ndarray,
                    step_norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The trust radius after a step and the step's ratio of actual to predicted reduction
    (scipy's ``update_tr_radius``): a quarter of the step after a poor prediction, twice the
    radius after a good one that reached it."""
    ratio = np.where(predicted > 0, actual / np.where(predicted > 0, predicted, 1.0),
                     np.where((predicted == 0) & (actual == 0), 1.0, 0.0))
    radius = np.where(ratio < 0.25, 0.25 * step_norm,
                      np.where((ratio > 0.75) & (step_norm > 0.95 * radius), 2.0 * radius, radius))
    return radius, ratio


def _decompose(runs: Runs, x: np.ndarray, at: tuple[np.ndarray, np.ndarray], r: np.ndarray, projected: bool,
               f_scale: np.ndarray | None, model: ScaledModel, idx: np.ndarray,
               tol: float) -> tuple[np.ndarray, np.ndarray]:
    """The scaled model at ``x`` (``at``: the runs' parameters and predictions there) of the runs
    ``idx`` into ``model``; returns which of them are converged by the gradient test and the
    trust radius a run starting there begins with."""
    J = runs.jac(x, projected, at)
    if f_scale is not None:  # scipy's scaling for a robust loss
        a, threshold = np.abs(r), f_scale[:, None]
        inside = a <= threshold
        J = J * np.where(inside, 1.0, _ROOT_EPS)[:, :, None]
        r = np.where(inside, r, threshold * np.sign(r) / _ROOT_EPS)
    g = np.einsum("rnm,rn->rm", J, r)
    lower, upper = runs._bounds_of(projected)
    v, dv = np.ones_like(x), np.zeros_like(x)
    toward_upper, toward_lower = (g < 0) & np.isfinite(upper), (g > 0) & np.isfinite(lower)
    v[toward_upper], dv[toward_upper] = (upper - x)[toward_upper], -1.0
    v[toward_lower], dv[toward_lower] = (x - lower)[toward_lower], 1.0
    g_norm = np.max(np.abs(g * v), axis=1, initial=0.0)
    d = np.sqrt(v)
    m = x.shape[1]
    augmented = np.concatenate([J * d[:, None, :], np.sqrt(g * dv)[:, None, :] * np.eye(m)[None]], axis=1)
    try:
        U, s, Vt = np.linalg.svd(augmented, full_matrices=False)
    except np.linalg.LinAlgError:
        return np.ones(idx.size, dtype=bool), np.ones(idx.size)
    uf = np.einsum("rnm,rn->rm", U[:, :r.shape[1]], r)
    rows = runs.mask.sum(axis=1) + m
    model.set(idx, ScaledModel(s, Vt, uf, d * g, d, np.maximum(0.995, 1.0 - g_norm), rows))
    start_radius = row_norms(x / d)
    return g_norm < tol, np.where(start_radius > 0, start_radius, 1.0)
