"""Bounded trust-region least squares, many local fits at once.

Every run of a :class:`~lawsearch.fit.runs.Runs` is its own local fit with its own trust
radius, step and stopping rule; each round evaluates the residuals of all active runs in one
numpy call and their Jacobians (and SVDs) in another, so a run's path never depends on the others.

One round per run, as in scipy's ``least_squares`` (``trf``, ``x_scale=1``): the Jacobian
(recomputed only after an accepted step) is decomposed by SVD; the step minimizes the
Gauss-Newton model within the trust radius (Levenberg-Marquardt parameter found by Newton's
method on the secular equation, More's algorithm); it is projected onto the bounds; an
improving step is accepted; the radius shrinks after a poor model prediction and grows after
a good one that reached it.  Under a Huber loss the model is scipy's: residuals beyond the
threshold enter through their gradient only, and steps are judged by the Huber cost itself.

A run stops when an accepted step lowers the cost by less than ``tol`` of it, when a step is
shorter than ``tol`` of the parameters, when the residuals are orthogonal to the Jacobian's
columns within ``tol`` (MINPACK's gtol), or after ``max_nfev`` evaluations (it *ran out*).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .runs import CHUNK_VALUES, Runs

__all__ = ["LocalResult", "local_fits", "robust_cost"]

_TINY = 1e-300
_ROOT_EPS = np.sqrt(np.finfo(float).eps)  # the curvature weight of a residual beyond the Huber threshold
_SECULAR_STEPS = 10  # Newton iterations for the Levenberg-Marquardt parameter of a step


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


@dataclass
class _Model:
    """The SVD of each run's (loss-scaled) Jacobian at its current point: J = U diag(s) Vt, and
    c = U^T r, all the Gauss-Newton model needs."""

    s: np.ndarray  # (R, m)
    Vt: np.ndarray  # (R, m, m)
    c: np.ndarray  # (R, m)


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
    lower, upper = runs._bounds_of(projected)
    x = np.clip(x0, lower, upper)
    if out_of_time():
        return LocalResult(x, np.full(len(x), np.inf), np.zeros(len(x), dtype=bool))
    theta, pred = (np.array(a) for a in runs.point(x, projected))
    r = runs.residuals(pred)
    cost = robust_cost(r, f_scale)
    n, m = x.shape
    nfev = np.ones(n, dtype=int)
    active = nfev < max_nfev
    radius = np.linalg.norm(x, axis=1)
    radius[radius == 0] = 1.0
    model = _Model(np.zeros((n, m)), np.zeros((n, m, m)), np.zeros((n, m)))
    fresh = active.copy()  # runs whose Jacobian must be (re)computed at x
    while active.any() and not out_of_time():
        idx = np.flatnonzero(fresh & active)
        if idx.size:
            active[idx[_decompose(runs.take(idx), x[idx], (theta[idx], pred[idx]), r[idx], projected,
                                  None if f_scale is None else f_scale[idx], model, idx, tol)]] = False
            fresh[idx] = False
        idx = np.flatnonzero(active)
        if not idx.size:
            break
        s, Vt, c = model.s[idx], model.Vt[idx], model.c[idx]
        trial = np.clip(x[idx] + _step(s, Vt, c, radius[idx]), lower[idx], upper[idx])
        d = trial - x[idx]
        moved = np.linalg.norm(d, axis=1)
        trying = runs.take(idx)
        theta_trial, pred_trial = trying.point(trial, projected)
        r_trial = trying.residuals(pred_trial)
        cost_trial = robust_cost(r_trial, None if f_scale is None else f_scale[idx])
        nfev[idx] += 1
        w = s * np.einsum("rij,rj->ri", Vt, d)  # U^T J d
        predicted = -np.sum(c * w + 0.5 * w * w, axis=1)
        actual = cost[idx] - cost_trial
        ratio = np.where(predicted > 0, actual / np.maximum(predicted, _TINY), -1.0)
        radius[idx] = np.where(ratio < 0.25, 0.25 * moved,
                               np.where((ratio > 0.75) & (moved > 0.95 * radius[idx]), 2.0 * radius[idx], radius[idx]))
        better = actual > 0
        ok = idx[better]
        flat = (actual[better] < tol * cost[ok]) & (ratio[better] > 0.25)
        x[ok], r[ok], cost[ok] = trial[better], r_trial[better], cost_trial[better]
        theta[ok], pred[ok] = theta_trial[better], pred_trial[better]
        fresh[ok] = True
        active[ok[flat]] = False
        active[idx[moved <= tol * (tol + np.linalg.norm(x[idx], axis=1))]] = False
        active &= nfev < max_nfev
    return LocalResult(x, cost, nfev >= max_nfev)


def _decompose(runs: Runs, x: np.ndarray, at: tuple[np.ndarray, np.ndarray], r: np.ndarray, projected: bool,
               f_scale: np.ndarray | None, model: _Model, idx: np.ndarray, tol: float) -> np.ndarray:
    """The Jacobian's SVD at ``x`` (``at``: the runs' parameters and predictions there) of the runs
    ``idx`` into ``model``; returns which of them are converged by the gradient test."""
    J = runs.jac(x, projected, at)
    test_J, test_r = J, r
    if f_scale is not None:
        a, threshold = np.abs(r), f_scale[:, None]
        inside = a <= threshold
        root = np.sqrt(np.where(inside, 1.0, threshold / np.maximum(a, _TINY)))
        test_J, test_r = J * root[:, :, None], r * root  # the reweighted problem, for the gradient test
        J = J * np.where(inside, 1.0, _ROOT_EPS)[:, :, None]
        r = np.where(inside, r, threshold * np.sign(r) / _ROOT_EPS)
    try:
        U, s, Vt = np.linalg.svd(J, full_matrices=False)
    except np.linalg.LinAlgError:
        return np.ones(idx.size, dtype=bool)
    model.s[idx], model.Vt[idx], model.c[idx] = s, Vt, np.einsum("rnm,rn->rm", U, r)
    norms = np.sqrt(np.einsum("rnm,rnm->rm", test_J, test_J))
    cosine = np.abs(np.einsum("rnm,rn->rm", test_J, test_r)) / np.where(norms > 0, norms, 1.0)
    return cosine.max(axis=1, initial=0.0) <= tol * np.linalg.norm(test_r, axis=1)


def _step(s: np.ndarray, Vt: np.ndarray, c: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """The minimizer of ||c + diag(s) Vt p|| with ||p|| <= radius, per run (scipy's
    ``solve_lsq_trust_region``, vectorized): the Gauss-Newton step if it fits, else the
    Levenberg-Marquardt step whose length is the radius (each run's Newton iteration stops
    once its length is within 1% of the radius)."""
    with np.errstate(all="ignore"):
        keep = s > np.finfo(float).eps * s.shape[1] * s.max(axis=1, keepdims=True)
        step = np.where(keep, -c / np.where(keep, s, 1.0), 0.0)
        outside = np.flatnonzero(~keep.all(axis=1) | (np.linalg.norm(step, axis=1) > radius))
        if outside.size:
            step[outside] = _damped(s[outside], c[outside], radius[outside], keep[outside].all(axis=1))
    return np.einsum("rji,rj->ri", Vt, step)


def _damped(s: np.ndarray, c: np.ndarray, radius: np.ndarray, full_rank: np.ndarray) -> np.ndarray:
    """The Levenberg-Marquardt step (in the SVD's basis) of length ``radius``: Newton's method on
    the secular equation for its parameter alpha, safeguarded (More 1983, as scipy)."""
    suf = s * c

    def phi(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        denom = s * s + alpha[:, None]
        norm = np.linalg.norm(suf / denom, axis=1)
        return norm - radius, -np.sum(suf * suf / denom ** 3, axis=1) / np.maximum(norm, _TINY)

    value, slope = phi(np.zeros(len(s)))
    low = np.where(full_rank, -value / np.where(slope != 0, slope, -1.0), 0.0)
    high = np.linalg.norm(suf, axis=1) / radius
    alpha = np.maximum(1e-3 * high, np.sqrt(np.maximum(low, 0.0) * high))
    going = np.ones(len(s), dtype=bool)
    for _ in range(_SECULAR_STEPS):
        outside = (alpha < low) | (alpha > high)
        alpha = np.where(going & outside, np.maximum(1e-3 * high, np.sqrt(np.maximum(low, 0.0) * high)), alpha)
        value, slope = phi(alpha)
        going &= np.abs(value) >= 0.01 * radius
        if not going.any():
            break
        high = np.where(going & (value < 0), alpha, high)
        ratio = value / np.where(slope != 0, slope, -1.0)
        low = np.where(going, np.maximum(low, alpha - ratio), low)
        alpha = np.where(going, alpha - (value + radius) * ratio / radius, alpha)
    p = -suf / (s * s + np.maximum(alpha, 0.0)[:, None])
    return np.where(np.isfinite(p), p, 0.0)
