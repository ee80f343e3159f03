"""The arithmetic of one round of the bounded trust-region method, compiled, one run at a time.

scipy's ``trf`` (``least_squares`` with bounds): the Gauss-Newton model of a run in the
Coleman-Li scaled ("hat") variables from an SVD of the augmented Jacobian (:func:`scaled_models`),
the trust-region subproblem solved on it and the step kept strictly inside the bounds
(:func:`steps`), and the trust radius updated by how well the model predicted the step
(:func:`judged`).

A fit's round is a few dozen tiny array operations per run (a law has a handful of parameters),
so in numpy the interpreter's overhead per call, not the arithmetic, set the pace.  These
kernels are compiled by numba (``cache=True``: once per machine, then loaded from numba's cache)
and loop over the runs ``idx`` of whole-batch arrays, reading and writing those rows in place:
each run's arithmetic is its own, whatever it is batched with.  NaN and inf are handled as
numpy's ``maximum``/``minimum`` and comparisons would (:func:`_max`, :func:`_min`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["scaled_models", "steps", "judged", "strictly_feasible"]

_EPS = np.finfo(float).eps
_SECULAR_STEPS = 10  # Newton iterations for the Levenberg-Marquardt parameter of a step
_SECULAR_RTOL = 0.01  # ... a run's stops once its step's length is within 1% of the radius
_CUBE = 3.0  # a float exponent: pow() as numpy's, not repeated products
#: numba's compilation: cached on disk, and division by zero gives inf or NaN as in numpy (not an exception)
_compiled = njit(cache=True, error_model="numpy")


@_compiled
def _max(a: float, b: float) -> float:
    """``np.maximum`` of two floats (NaN wins)."""
    if a != a or b != b:
        return np.nan
    return a if a >= b else b


@_compiled
def _min(a: float, b: float) -> float:
    """``np.minimum`` of two floats (NaN wins)."""
    if a != a or b != b:
        return np.nan
    return a if a <= b else b


@_compiled
def _dot(a: np.ndarray, b: np.ndarray) -> float:
    total = 0.0
    for i in range(a.size):
        total += a[i] * b[i]
    return total


@_compiled
def _norm(a: np.ndarray) -> float:
    return np.sqrt(_dot(a, a))


@_compiled
def _model_times(s: np.ndarray, Vt: np.ndarray, v: np.ndarray) -> np.ndarray:
    """diag(s) Vt v: the augmented Jacobian applied to hat step ``v``, up to the rotation U."""
    m = v.size
    w = np.empty(m)
    for i in range(m):
        total = 0.0
        for j in range(m):
            total += Vt[i, j] * v[j]
        w[i] = s[i] * total
    return w


@_compiled
def _quadratic(s: np.ndarray, Vt: np.ndarray, g_h: np.ndarray, p_h: np.ndarray) -> float:
    """The model's change 0.5 ||J_aug p_h||^2 + g_h . p_h."""
    w = _model_times(s, Vt, p_h)
    return 0.5 * _dot(w, w) + _dot(g_h, p_h)


@_compiled
def scaled_models(idx: np.ndarray, J: np.ndarray, r: np.ndarray, x: np.ndarray, lower: np.ndarray,
                  upper: np.ndarray, s: np.ndarray, Vt: np.ndarray, uf: np.ndarray, g_h: np.ndarray,
                  d: np.ndarray, theta: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Each run ``idx[k]``'s model at ``x`` from its Jacobian ``J[k]`` (N, m) and residuals ``r[k]``,
    written into row ``idx[k]`` of ``s``, ``Vt``, ``uf`` (= U^T [r; 0]), ``g_h`` (the hat gradient
    d * g), ``d`` (the Coleman-Li scaling) and ``theta`` (the step-back share of strict
    feasibility).  Returns which runs are converged by the gradient test (also those whose
    augmented Jacobian is not finite) and the trust radius a run starting there begins with."""
    n_rows, m = J.shape[1], J.shape[2]
    converged = np.zeros(idx.size, dtype=np.bool_)
    start_radius = np.ones(idx.size)
    augmented = np.zeros((n_rows + m, m))
    g, v, dv = np.empty(m), np.empty(m), np.empty(m)
    for k in range(idx.size):
        run = idx[k]
        for j in range(m):
            total = 0.0
            for n in range(n_rows):
                total += J[k, n, j] * r[k, n]
            g[j] = total
            v[j], dv[j] = 1.0, 0.0
            if total < 0 and np.isfinite(upper[run, j]):
                v[j], dv[j] = upper[run, j] - x[run, j], -1.0
            elif total > 0 and np.isfinite(lower[run, j]):
                v[j], dv[j] = x[run, j] - lower[run, j], 1.0
        g_norm = 0.0
        for j in range(m):
            g_norm = _max(g_norm, abs(g[j] * v[j]))
        finite = True
        for j in range(m):
            scale = np.sqrt(v[j])
            for n in range(n_rows):
                augmented[n, j] = J[k, n, j] * scale
                finite &= np.isfinite(augmented[n, j])
            augmented[n_rows + j, j] = np.sqrt(g[j] * dv[j])
            finite &= np.isfinite(augmented[n_rows + j, j])
        if not finite:  # numpy's SVD would not converge either
            converged[k] = True
            continue
        U, s_run, Vt_run = np.linalg.svd(augmented, full_matrices=False)
        radius = 0.0
        for j in range(m):
            total = 0.0
            for n in range(n_rows):
                total += U[n, j] * r[k, n]
            uf[run, j] = total
            s[run, j] = s_run[j]
            d[run, j] = np.sqrt(v[j])
            g_h[run, j] = d[run, j] * g[j]
            radius += (x[run, j] / d[run, j]) ** 2
            for i in range(m):
                Vt[run, j, i] = Vt_run[j, i]
        theta[run] = _max(0.995, 1.0 - g_norm)
        converged[k] = g_norm < tol
        radius = np.sqrt(radius)
        start_radius[k] = radius if radius > 0 else 1.0
    return converged, start_radius


@_compiled
def _trust_region_step(s: np.ndarray, Vt: np.ndarray, uf: np.ndarray, rows: float, radius: float,
                       alpha: float) -> tuple[np.ndarray, float]:
    """The hat step minimizing the model within ``radius`` and its Levenberg-Marquardt parameter
    (scipy's ``solve_lsq_trust_region``, from ``alpha``, the last one): the Gauss-Newton step where
    the Jacobian has full rank and the step fits, else the damped step of length ``radius``."""
    m = s.size
    full_rank = s[m - 1] > _EPS * rows * s[0]
    newton = np.zeros(m)
    if full_rank:
        for i in range(m):
            newton[i] = -uf[i] / (s[i] if s[i] > 0 else 1.0)
    p = np.zeros(m)
    if full_rank and _norm(newton) <= radius:
        alpha = 0.0
        for i in range(m):
            for j in range(m):
                p[i] += Vt[j, i] * newton[j]
    else:
        alpha = _damped(s, Vt, uf, radius, alpha, full_rank, p)
    for i in range(m):
        if not np.isfinite(p[i]):
            p[i] = 0.0
    return p, alpha


@_compiled
def _secular(s: np.ndarray, suf: np.ndarray, radius: float, alpha: float) -> tuple[float, float]:
    """The secular function ||p(alpha)|| - radius and its slope."""
    norm, slope = 0.0, 0.0
    for i in range(s.size):
        denom = s[i] * s[i] + alpha
        norm += (suf[i] / denom) ** 2
        slope += suf[i] * suf[i] / denom ** _CUBE
    norm = np.sqrt(norm)
    return norm - radius, -slope / _max(norm, 1e-300)


@_compiled
def _damped(s: np.ndarray, Vt: np.ndarray, uf: np.ndarray, radius: float, alpha: float, full_rank: bool,
            p: np.ndarray) -> float:
    """The Levenberg-Marquardt step of length ``radius`` into ``p`` and its parameter: Newton's
    method on the secular equation, safeguarded (More 1983, as scipy)."""
    m = s.size
    suf = s * uf
    high = _norm(suf) / radius
    value, slope = _secular(s, suf, radius, 0.0)
    low = -value / (slope if slope != 0 else -1.0) if full_rank else 0.0
    if not full_rank and alpha == 0:
        alpha = _max(1e-3 * high, np.sqrt(_max(low, 0.0) * high))
    for _ in range(_SECULAR_STEPS):
        if alpha < low or alpha > high:
            alpha = _max(1e-3 * high, np.sqrt(_max(low, 0.0) * high))
        value, slope = _secular(s, suf, radius, alpha)
        if value < 0:
            high = alpha
        ratio = value / (slope if slope != 0 else -1.0)
        low = _max(low, alpha - ratio)
        alpha = alpha - (value + radius) * ratio / radius
        if not abs(value) >= _SECULAR_RTOL * radius:
            break
    for i in range(m):
        total = 0.0
        for j in range(m):
            total += Vt[j, i] * (-suf[j] / (s[j] * s[j] + alpha))
        p[i] = total
    length = _norm(p)
    for i in range(m):
        p[i] = p[i] * (radius / length)
    return alpha


@_compiled
def _step_to_bound(x: np.ndarray, step: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                   hits: np.ndarray) -> float:
    """The multiple of ``step`` from ``x`` that first reaches a bound; into ``hits``, which
    parameters reach it then (the sign of their step; 0 for the others)."""
    m = x.size
    each = np.full(m, np.inf)
    first = np.inf
    for i in range(m):
        if step[i] != 0:
            each[i] = _max((lower[i] - x[i]) / step[i], (upper[i] - x[i]) / step[i])
        first = _min(first, each[i])
    for i in range(m):
        hits[i] = np.sign(step[i]) if each[i] == first else 0.0
    return first


@_compiled
def _minimum_1d(a: float, b: float, low: float, high: float, c: float) -> tuple[float, float]:
    """Minimizer and minimum of a t^2 + b t + c over [low, high] (scipy's order of ties)."""
    extremum = -0.5 * b / (a if a != 0 else 1.0)
    inside = a != 0 and low < extremum and extremum < high
    best_t, best_value = 0.0, np.inf
    for k in range(3):
        t = low if k == 0 else (high if k == 1 else (extremum if inside else low))
        value = t * (a * t + b) + c
        if value != value:
            value = np.inf
        if k == 0 or value < best_value:
            best_t, best_value = t, value
    return best_t, best_value


@_compiled
def _select_step(x: np.ndarray, p_h: np.ndarray, s: np.ndarray, Vt: np.ndarray, g_h: np.ndarray, d: np.ndarray,
                 theta: float, radius: float, lower: np.ndarray, upper: np.ndarray,
                 step_h: np.ndarray) -> float:
    """The hat step into ``step_h`` and its predicted reduction (scipy's ``select_step``): the
    trust-region step if it stays inside the bounds, else the best by the model of that step
    stopped short of the bound it reaches, its reflection off that bound, and the scaled anti-gradient."""
    m = x.size
    inside = True
    for i in range(m):
        moved = x[i] + d[i] * p_h[i]
        inside &= (moved >= lower[i]) & (moved <= upper[i])
    if inside:
        step_h[:] = p_h
        return -_quadratic(s, Vt, g_h, p_h)
    hits = np.empty(m)
    p = d * p_h
    p_stride = _step_to_bound(x, p, lower, upper, hits)
    r_h = np.where(hits != 0, -p_h, p_h)
    p, p_h = p * p_stride, p_h * p_stride
    a, b, c = _dot(r_h, r_h), _dot(p_h, r_h), _dot(p_h, p_h) - radius ** 2
    root = np.sqrt(b * b - a * c)
    q = -(b + np.copysign(root, b))
    to_region = _max(q / a, c / q)
    to_bound = _step_to_bound(x + p, d * r_h, lower, upper, hits)
    stride = _min(to_bound, to_region)
    r_low = (1 - theta) * p_stride / stride if stride > 0 else 0.0
    r_high = (theta * to_bound if stride == to_bound else to_region) if stride > 0 else -1.0
    w, u = _model_times(s, Vt, r_h), _model_times(s, Vt, p_h)
    t, r_value = _minimum_1d(0.5 * _dot(w, w), _dot(g_h, r_h) + _dot(u, w), r_low, r_high,
                             0.5 * _dot(u, u) + _dot(g_h, p_h))
    if not r_low <= r_high:
        r_value = np.inf
    r_h = r_h * t + p_h
    p_h = p_h * theta
    p_value = _quadratic(s, Vt, g_h, p_h)
    ag_h = -g_h
    to_region = radius / _norm(ag_h)
    to_bound = _step_to_bound(x, d * ag_h, lower, upper, hits)
    w = _model_times(s, Vt, ag_h)
    t, ag_value = _minimum_1d(0.5 * _dot(w, w), _dot(g_h, ag_h), 0.0,
                              theta * to_bound if to_bound < to_region else to_region, 0.0)
    if p_value < r_value and p_value < ag_value:
        step_h[:] = p_h
        return -p_value
    if r_value < p_value and r_value < ag_value:
        step_h[:] = r_h
        return -r_value
    step_h[:] = ag_h * t
    return -ag_value


@_compiled
def steps(idx: np.ndarray, x: np.ndarray, lower: np.ndarray, upper: np.ndarray, s: np.ndarray, Vt: np.ndarray,
          uf: np.ndarray, g_h: np.ndarray, d: np.ndarray, theta: np.ndarray, rows: np.ndarray,
          radius: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each run ``idx[k]``'s trial point (k, m), hat step (k, m) and predicted reduction (k,) from its
    model: the trust-region step (``alpha[run]`` updated) kept inside the bounds, the trial point
    moved strictly inside them."""
    m = x.shape[1]
    trial, step_h, predicted = np.empty((idx.size, m)), np.empty((idx.size, m)), np.empty(idx.size)
    for k in range(idx.size):
        run = idx[k]
        p_h, alpha[run] = _trust_region_step(s[run], Vt[run], uf[run], rows[run], radius[run], alpha[run])
        predicted[k] = _select_step(x[run], p_h, s[run], Vt[run], g_h[run], d[run], theta[run], radius[run],
                                    lower[run], upper[run], step_h[k])
        for i in range(m):
            t = x[run, i] + d[run, i] * step_h[k, i]
            if t <= lower[run, i]:
                t = np.nextafter(lower[run, i], upper[run, i])
            elif t >= upper[run, i]:
                t = np.nextafter(upper[run, i], lower[run, i])
            if t < lower[run, i] or t > upper[run, i]:
                t = 0.5 * (lower[run, i] + upper[run, i])
            trial[k, i] = t
    return trial, step_h, predicted


@_compiled
def judged(idx: np.ndarray, trial: np.ndarray, step_h: np.ndarray, predicted: np.ndarray, cost_trial: np.ndarray,
           r_trial: np.ndarray, tol: float, max_nfev: int, x: np.ndarray, d: np.ndarray, cost: np.ndarray,
           r: np.ndarray, radius: np.ndarray, alpha: np.ndarray, nfev: np.ndarray, stopped: np.ndarray,
           fresh: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Each run ``idx[k]`` after its step to ``trial[k]`` (cost ``cost_trial[k]``, residuals
    ``r_trial[k]``), in place: one more evaluation; ``radius`` and ``alpha`` updated (scipy's
    ``update_tr_radius``: a quarter of the step after a poor prediction, twice the radius after a
    good one that reached it); ``stopped`` when the step lowered the cost by less than ``tol`` of
    it or was shorter than ``tol`` of the parameters; moved to the trial point (``x``, ``cost``,
    ``r``, and ``fresh``: its model is to be made there) when that lowered the cost; ``active``
    while not stopped and under ``max_nfev`` evaluations.  Returns which runs moved."""
    better = np.zeros(idx.size, dtype=np.bool_)
    for k in range(idx.size):
        run = idx[k]
        nfev[run] += 1
        actual = cost[run] - cost_trial[k]
        if predicted[k] > 0:
            ratio = actual / predicted[k]
        else:
            ratio = 1.0 if predicted[k] == 0 and actual == 0 else 0.0
        step_norm = _norm(step_h[k])
        new_radius = radius[run]
        if ratio < 0.25:
            new_radius = 0.25 * step_norm
        elif ratio > 0.75 and step_norm > 0.95 * radius[run]:
            new_radius = 2.0 * radius[run]
        step_length = _norm(d[run] * step_h[k])
        done = (actual < tol * cost[run] and ratio > 0.25) or step_length < tol * (tol + _norm(x[run]))
        if done:
            stopped[run] = True
        else:
            alpha[run] = alpha[run] * radius[run] / new_radius
            radius[run] = new_radius
        better[k] = actual > 0
        if better[k]:
            x[run], cost[run], r[run] = trial[k], cost_trial[k], r_trial[k]
            fresh[run] = True
        active[run] = not stopped[run] and nfev[run] < max_nfev
    return better


def strictly_feasible(x: np.ndarray, lower: np.ndarray, upper: np.ndarray, rstep: float) -> np.ndarray:
    """``x`` moved off the bounds it touches (scipy's ``make_strictly_feasible``) by ``rstep`` of
    the bound's magnitude."""
    x = x.copy()
    below, above = x - lower, upper - x
    at_lower = np.isfinite(lower) & (below <= np.minimum(above, rstep * np.maximum(1, np.abs(lower))))
    at_upper = np.isfinite(upper) & (above <= np.minimum(below, rstep * np.maximum(1, np.abs(upper))))
    x[at_lower] = (lower + rstep * np.maximum(1, np.abs(lower)))[at_lower]
    x[at_upper] = (upper - rstep * np.maximum(1, np.abs(upper)))[at_upper]
    tight = (x < lower) | (x > upper)
    x[tight] = 0.5 * (lower + upper)[tight]
    return x
