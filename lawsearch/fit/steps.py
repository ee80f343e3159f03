"""The step of one round of the bounded trust-region method, for many runs at once.

scipy's ``trf`` (``least_squares`` with bounds), vectorized over runs: the trust-region
subproblem solved in the Coleman-Li scaled ("hat") variables from an SVD of the augmented
Jacobian (:func:`trust_region_step`), then the step kept strictly inside the bounds
(:func:`select_step`).  Each row of every array is one run; no run's step depends on another's.
Floating-point warnings are the caller's to silence (:func:`~lawsearch.fit.local.local_fits` does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ScaledModel", "trust_region_step", "select_step", "strictly_feasible", "step_to_bound", "row_norms"]

_EPS = np.finfo(float).eps
_SECULAR_STEPS = 10  # Newton iterations for the Levenberg-Marquardt parameter of a step
_SECULAR_RTOL = 0.01  # ... each run's stops once its step's length is within 1% of the radius


def row_norms(a: np.ndarray) -> np.ndarray:
    """The Euclidean norm of each row: ``np.linalg.norm(a, axis=1)``'s arithmetic, without its checks."""
    return np.sqrt(np.add.reduce(a * a, axis=1))


@dataclass
class ScaledModel:
    """Each run's Gauss-Newton model in hat variables at its current point: the augmented
    Jacobian [J diag(d); diag(sqrt(diag_h))] = U diag(s) Vt, uf = U^T [r; 0], the hat gradient
    g_h = d * g, the scaling d, and the step-back share ``theta`` of strict feasibility."""

    s: np.ndarray  # (R, m)
    Vt: np.ndarray  # (R, m, m)
    uf: np.ndarray  # (R, m)
    g_h: np.ndarray  # (R, m)
    d: np.ndarray  # (R, m)
    theta: np.ndarray  # (R,)
    rows: np.ndarray  # (R,) rows of the augmented Jacobian (real residuals + m), for the rank test

    @classmethod
    def empty(cls, n: int, m: int) -> ScaledModel:
        return cls(np.zeros((n, m)), np.zeros((n, m, m)), np.zeros((n, m)), np.zeros((n, m)), np.ones((n, m)),
                   np.ones(n), np.ones(n))

    def set(self, idx: np.ndarray, other: ScaledModel) -> None:
        for name in ("s", "Vt", "uf", "g_h", "d", "theta", "rows"):
            getattr(self, name)[idx] = getattr(other, name)

    def take(self, idx: np.ndarray) -> ScaledModel:
        """The models of runs ``idx`` (sorted distinct indices): this one itself if that is all."""
        if idx.size == len(self.s):
            return self
        return ScaledModel(*(getattr(self, name)[idx] for name in ("s", "Vt", "uf", "g_h", "d", "theta", "rows")))

    def quadratic(self, p_h: np.ndarray) -> np.ndarray:
        """The model's change 0.5 ||J_aug p_h||^2 + g_h . p_h per run."""
        w = self.s * np.einsum("rij,rj->ri", self.Vt, p_h)
        return 0.5 * np.einsum("ri,ri->r", w, w) + np.einsum("ri,ri->r", self.g_h, p_h)

    def along(self, direction: np.ndarray, s0: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """(a, b, c) of the model along ``s0 + t * direction`` as a t^2 + b t + c."""
        w = self.s * np.einsum("rij,rj->ri", self.Vt, direction)
        a = 0.5 * np.einsum("ri,ri->r", w, w)
        b = np.einsum("ri,ri->r", self.g_h, direction)
        if s0 is None:
            return a, b, np.zeros_like(a)
        u = self.s * np.einsum("rij,rj->ri", self.Vt, s0)
        return a, b + np.einsum("ri,ri->r", u, w), 0.5 * np.einsum("ri,ri->r", u, u) + np.einsum(
            "ri,ri->r", self.g_h, s0)


def trust_region_step(model: ScaledModel, radius: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The hat step minimizing the model within ``radius`` and its Levenberg-Marquardt parameter
    (scipy's ``solve_lsq_trust_region``, from ``alpha``, the last one): the Gauss-Newton step where
    the Jacobian has full rank and the step fits, else the damped step of length ``radius``."""
    s, uf = model.s, model.uf
    full_rank = s[:, -1] > _EPS * model.rows * s[:, 0]
    newton = np.where(full_rank[:, None], -uf / np.where(s > 0, s, 1.0), 0.0)
    fits = full_rank & (row_norms(newton) <= radius)
    p = np.einsum("rji,rj->ri", model.Vt, newton)
    alpha = np.where(fits, 0.0, alpha)
    damped = np.flatnonzero(~fits)
    if damped.size:
        p[damped], alpha[damped] = _damped(model.take(damped), radius[damped], alpha[damped], full_rank[damped])
    return np.where(np.isfinite(p), p, 0.0), alpha


def _damped(model: ScaledModel, radius: np.ndarray, alpha: np.ndarray,
            full_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Levenberg-Marquardt step of length ``radius``: Newton's method on the secular equation
    for its parameter, safeguarded (More 1983, as scipy), each run stopping on its own."""
    s = model.s
    suf = s * model.uf

    def phi(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        denom = s * s + a[:, None]
        norm = row_norms(suf / denom)
        return norm - radius, -np.sum(suf * suf / denom ** 3, axis=1) / np.maximum(norm, 1e-300)

    high = row_norms(suf) / radius
    value, slope = phi(np.zeros(len(s)))
    low = np.where(full_rank, -value / np.where(slope != 0, slope, -1.0), 0.0)
    alpha = np.where(~full_rank & (alpha == 0), np.maximum(1e-3 * high, np.sqrt(np.maximum(low, 0.0) * high)), alpha)
    going = np.ones(len(s), dtype=bool)
    for _ in range(_SECULAR_STEPS):
        reset = (alpha < low) | (alpha > high)
        alpha = np.where(going & reset, np.maximum(1e-3 * high, np.sqrt(np.maximum(low, 0.0) * high)), alpha)
        value, slope = phi(alpha)
        high = np.where(going & (value < 0), alpha, high)
        ratio = value / np.where(slope != 0, slope, -1.0)
        low = np.where(going, np.maximum(low, alpha - ratio), low)
        alpha = np.where(going, alpha - (value + radius) * ratio / radius, alpha)
        going &= np.abs(value) >= _SECULAR_RTOL * radius
        if not going.any():
            break
    p = np.einsum("rji,rj->ri", model.Vt, -suf / (s * s + alpha[:, None]))
    return p * (radius / row_norms(p))[:, None], alpha


def step_to_bound(x: np.ndarray, step: np.ndarray, lower: np.ndarray,
                  upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per run, the multiple of ``step`` from ``x`` that first reaches a bound, and which
    parameters reach it then (the sign of their step; 0 for the others)."""
    moves = step != 0
    each = np.where(moves, np.maximum((lower - x) / np.where(moves, step, 1.0),
                                      (upper - x) / np.where(moves, step, 1.0)), np.inf)
    first = each.min(axis=1, initial=np.inf)
    return first, (each == first[:, None]) * np.sign(step)


def strictly_feasible(x: np.ndarray, lower: np.ndarray, upper: np.ndarray, rstep: float) -> np.ndarray:
    """``x`` moved off the bounds it touches (scipy's ``make_strictly_feasible``): by ``rstep``
    of the bound's magnitude, or to the next float when ``rstep`` is 0."""
    x = x.copy()
    if rstep == 0:
        at_lower, at_upper = x <= lower, x >= upper
        x[at_lower] = np.nextafter(lower[at_lower], upper[at_lower])
        x[at_upper] = np.nextafter(upper[at_upper], lower[at_upper])
    else:
        below, above = x - lower, upper - x
        at_lower = np.isfinite(lower) & (below <= np.minimum(above, rstep * np.maximum(1, np.abs(lower))))
        at_upper = np.isfinite(upper) & (above <= np.minimum(below, rstep * np.maximum(1, np.abs(upper))))
        x[at_lower] = (lower + rstep * np.maximum(1, np.abs(lower)))[at_lower]
        x[at_upper] = (upper - rstep * np.maximum(1, np.abs(upper)))[at_upper]
    tight = (x < lower) | (x > upper)
    x[tight] = 0.5 * (lower + upper)[tight]
    return x


def _minimum_1d(a: np.ndarray, b: np.ndarray, low: np.ndarray, high: np.ndarray,
                c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimizer and minimum of a t^2 + b t + c over [low, high], per run (scipy's order of ties)."""
    extremum = -0.5 * b / np.where(a != 0, a, 1.0)
    inside = (a != 0) & (low < extremum) & (extremum < high)
    t = np.stack([low, high, np.where(inside, extremum, low)])
    value = t * (a * t + b) + c
    value = np.where(np.isnan(value), np.inf, value)
    k = np.argmin(value, axis=0)
    pick = np.arange(len(a))
    return t[k, pick], value[k, pick]


def select_step(x: np.ndarray, p_h: np.ndarray, model: ScaledModel, radius: np.ndarray, lower: np.ndarray,
                upper: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(step, hat step, predicted reduction) per run (scipy's ``select_step``): the trust-region
    step if it stays inside the bounds, else the best by the model of that step stopped short of
    the bound it reaches, its reflection off that bound, and the scaled anti-gradient."""
    d, theta = model.d, model.theta
    p = d * p_h
    step, step_h, value = p.copy(), p_h.copy(), model.quadratic(p_h)
    out = np.flatnonzero(~np.all((x + p >= lower) & (x + p <= upper), axis=1))
    if not out.size:
        return step, step_h, -value
    x, p, p_h, radius, lower, upper = x[out], p[out], p_h[out], radius[out], lower[out], upper[out]
    model, d, theta = model.take(out), d[out], theta[out]
    p_stride, hits = step_to_bound(x, p, lower, upper)
    r_h = np.where(hits != 0, -p_h, p_h)
    p, p_h = p * p_stride[:, None], p_h * p_stride[:, None]
    a, b, c = np.einsum("ri,ri->r", r_h, r_h), np.einsum("ri,ri->r", p_h, r_h), np.einsum(
        "ri,ri->r", p_h, p_h) - radius ** 2
    root = np.sqrt(b * b - a * c)
    q = -(b + np.copysign(root, b))
    to_region = np.maximum(q / a, c / q)
    to_bound = step_to_bound(x + p, d * r_h, lower, upper)[0]
    stride = np.minimum(to_bound, to_region)
    r_low = np.where(stride > 0, (1 - theta) * p_stride / stride, 0.0)
    r_high = np.where(stride > 0, np.where(stride == to_bound, theta * to_bound, to_region), -1.0)
    t, r_value = _minimum_1d(*model.along(r_h, p_h)[:2], r_low, r_high, model.along(r_h, p_h)[2])
    r_value = np.where(r_low <= r_high, r_value, np.inf)
    r_h = r_h * t[:, None] + p_h
    p_h = p_h * theta[:, None]
    p_value = model.quadratic(p_h)
    ag_h = -model.g_h
    to_region = radius / row_norms(ag_h)
    to_bound = step_to_bound(x, d * ag_h, lower, upper)[0]
    a, b, _ = model.along(ag_h)
    t, ag_value = _minimum_1d(a, b, np.zeros_like(a), np.where(to_bound < to_region, theta * to_bound, to_region),
                              np.zeros_like(a))
    ag_h = ag_h * t[:, None]
    use_p = (p_value < r_value) & (p_value < ag_value)
    use_r = ~use_p & (r_value < p_value) & (r_value < ag_value)
    chosen = np.where(use_p[:, None], p_h, np.where(use_r[:, None], r_h, ag_h))
    step_h[out] = chosen
    step[out] = d * chosen
    value[out] = np.where(use_p, p_value, np.where(use_r, r_value, ag_value))
    return step, step_h, -value
