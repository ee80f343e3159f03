"""Bounded trust-region least squares, many local fits at once.

Every run of a :class:`~lawsearch.fit.runs.Runs` is its own local fit with its own trust
radius, step and stopping rule; each round evaluates the residuals of all active runs in one
numpy call and their Jacobians in another, so a run's path never depends on the others.

Each run follows scipy's ``least_squares`` (``trf`` with bounds, ``x_scale=1``, exact trust-region
solver) step for step: Coleman and Li's scaling by the distance to the bound the gradient points
at, so a run slows down as it nears a bound and stays strictly inside (:mod:`.steps`, compiled:
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
from .steps import judged, scaled_models, steps, strictly_feasible

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
    lower, upper = np.ascontiguousarray(lower, dtype=float), np.ascontiguousarray(upper, dtype=float)
    x = strictly_feasible(np.clip(x0, lower, upper), lower, upper, _START_STEP).astype(float)
    if out_of_time():
        return LocalResult(x, np.full(len(x), np.inf), np.zeros(len(x), dtype=bool))
    theta, pred = (np.array(a) for a in runs.point(x, projected))
    r = runs.residuals(pred)
    cost = robust_cost(r, f_scale)
    n, m = x.shape
    nfev, stopped = np.ones(n, dtype=int), np.zeros(n, dtype=bool)
    active = nfev < max_nfev
    radius, alpha = np.full(n, np.nan), np.zeros(n)
    # each run's scaled model (see steps.scaled_models), rows of the augmented Jacobian for its rank test
    s, Vt, uf, g_h, d, theta_f = (np.zeros((n, m)), np.zeros((n, m, m)), np.zeros((n, m)), np.zeros((n, m)),
                                  np.ones((n, m)), np.ones(n))
    rows = (runs.mask.sum(axis=1) + m).astype(float)
    fresh = active.copy()  # runs whose Jacobian must be (re)computed at x
    while active.any() and not out_of_time():
        idx = np.flatnonzero(fresh & active)
        if idx.size:
            J, r_used = _robust_jacobian(runs.take(idx), x[idx], (theta[idx], pred[idx]), r[idx], projected,
                                         None if f_scale is None else f_scale[idx])
            try:
                converged, start_radius = scaled_models(idx, J, r_used, x, lower, upper, s, Vt, uf, g_h, d, theta_f,
                                                        tol)
            except np.linalg.LinAlgError:  # an SVD that did not converge: these runs end where they are
                converged, start_radius = np.ones(idx.size, dtype=bool), np.ones(idx.size)
            stopped[idx[converged]] = True
            radius[idx] = np.where(np.isnan(radius[idx]), start_radius, radius[idx])
            fresh[idx] = False
        active &= ~stopped
        idx = np.flatnonzero(active)
        if not idx.size:
            break
        trial, step_h, predicted = steps(idx, x, lower, upper, s, Vt, uf, g_h, d, theta_f, rows, radius, alpha)
        trying = runs.take(idx)
        theta_trial, pred_trial = trying.point(trial, projected)
        r_trial = trying.residuals(pred_trial)
        cost_trial = robust_cost(r_trial, None if f_scale is None else f_scale[idx])
        better = judged(idx, trial, step_h, predicted, cost_trial, r_trial, tol, max_nfev, x, d, cost, r, radius, alpha,
                        nfev, stopped, fresh, active)
        ok = idx[better]
        theta[ok], pred[ok] = theta_trial[better], pred_trial[better]
    return LocalResult(x, cost, ~stopped & (nfev >= max_nfev))


def _robust_jacobian(runs: Runs, x: np.ndarray, at: tuple[np.ndarray, np.ndarray], r: np.ndarray, projected: bool,
                     f_scale: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The Jacobian at ``x`` (``at``: the runs' parameters and predictions there) and the residuals
    of the Gauss-Newton model: as they are, or under a Huber loss scipy's scaling of both."""
    J = runs.jac(x, projected, at)
    if f_scale is not None:
        a, threshold = np.abs(r), f_scale[:, None]
        inside = a <= threshold
        J = J * np.where(inside, 1.0, _ROOT_EPS)[:, :, None]
        r = np.where(inside, r, threshold * np.sign(r) / _ROOT_EPS)
    return np.ascontiguousarray(J, dtype=float), np.ascontiguousarray(r, dtype=float)
