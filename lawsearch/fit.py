"""The one shared robust fitter: every law is fitted here, per group and per target.

DESIGN principle 3.  One (group, target) fit runs in three stages:

1. *Variable projection.*  Parameters that enter linearly (:meth:`Law.linear_split`)
   are solved exactly by weighted linear least squares for any value of the
   others, so the search below only moves the nonlinear parameters.
2. *Multi-start.*  ``n_starts`` cheap starting points for the nonlinear
   parameters (a log-spaced grid over exponent-like and scale parameters plus
   seeded random draws, moved onto the data's own scales: rates by what they
   multiply, locations and widths among an input's values, :func:`_along_data_scales`)
   are scored by the sum of squared residuals, and the
   ``n_local`` best are optimized by bounded least squares (Kaufman's projected
   Jacobian, at most ``_EXPLORE_NFEV`` evaluations each, the best run then to its end)
   (``scipy.optimize.least_squares``, method ``trf``), stopping early once a
   second local fit reaches the best objective so far (that basin is then
   confirmed) and at least 30% of the ``n_local`` have run (two early fits
   may agree on the same poor basin).  Squares, not the robust loss, because
   the Huber loss's linear arms make a rugged landscape where local fits stall
   (Muennighoff et al.'s law, Clark et al.'s), and because variable projection
   solves the linear parameters by least squares too.
3. *Joint polish.*  All parameters together, robust loss, analytic Jacobian,
   from the best projected solutions (one per :data:`_LOCAL_FITS_PER_POLISH`
   local fits under a Huber loss); the best result by the robust loss is kept.
   The Huber threshold is lowered to its final value in steps (graduated
   non-convexity, :func:`_polish`).

The loss is Huber on log residuals ``log(pred) - log(y)`` when the target is
positive (as in Besiroglu et al.'s Chinchilla replication), else Huber on
residuals divided by the target's standard deviation.  Rows whose prediction is
not finite get a large finite residual (:data:`PENALTY`), and under a log loss
predictions below ``LOG_FLOOR * y`` (zero and negative ones included) continue
the logarithm linearly, so no objective value or parameter is ever NaN.

Rows where the target or an input is not finite are left out of a fit
(``GroupFit.n_rows`` counts the rows used).

With a ``deadline`` (``FitOptions``) a fit stops at that wall-clock time: no
start is scored, no local fit continues and no polish begins after it; the fit
returns the best parameters found so far and says so in its message.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
import weakref
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import OptimizeResult, least_squares

from .errors import DataError, FitError, FormulaError
from .formula import Law
from .scales import location_inputs, rate_multipliers, rate_scale, smallest_multiplier, width_inputs

__all__ = ["FitOptions", "GroupFit", "LawFit", "fit_group", "fit_law", "pinned_parameter", "PENALTY", "LOG_FLOOR",
           "EXPONENT_BOUNDS", "RATE_BOUNDS", "SCALE_BOUNDS", "BOUND_MARGIN"]

LossName = Literal["auto", "huber_log", "huber", "squared", "squared_log"]
_LOSSES = ("auto", "huber_log", "huber", "squared", "squared_log")

PENALTY = 1e8  # residual of a row whose prediction is not finite (and clip for all residuals)
LOG_FLOOR = 1e-6  # under a log loss, predictions below LOG_FLOOR * y continue the log linearly
DEFAULT_HUBER_DELTA = {"log": 1e-3, "plain": 1e-2}  # on log residuals / on residuals divided by std(y)
EXPONENT_BOUNDS = (-10.0, 10.0)
#: Bounds of rates (t in exp(t*x), :meth:`Law.rate_parameters`): exp(t*r) over proportions r in [0, 1]
#: needs |t| ~ 20 in Ye et al.'s mixture law, which EXPONENT_BOUNDS would clip.
RATE_BOUNDS = (-100.0, 100.0)
SCALE_BOUNDS = (-1e12, 1e12)
#: A fitted parameter within this share of a default bound's magnitude sits at the fitter's limit.
BOUND_MARGIN = 0.05
_EXPONENT_MAGNITUDES = np.array([0.05, 0.2, 0.5, 1.0, 2.0])
_DATA_SCALE_POOL = 8  # extra starts per start for laws with location or width parameters
_WIDTH_DECADES = (-2.0, 0.0)
_SCREEN_FACTOR, _SCREEN_NFEV = 4, 5  # such a pool's best 4 * n_local starts are screened by 5-evaluation fits  # width starts: log-uniform shares of their input's range
_RATE_REACH = 10.0  # every other start draws a rate's dimensionless value this much larger
#: Residual evaluations of each local fit of the multi-start (the search's own budget); the best
#: one, if it ran out, then continues to ``FitOptions.max_nfev``.
_EXPLORE_NFEV = 200
_RCOND = 1e-10  # relative singular-value cutoff of the linear solve
_LOCAL_FITS_PER_POLISH = 8  # under a Huber loss, one polish per this many local fits (at least one)
_AGREE, _AGREE_ABS = 1e-6, 1e-14  # local fits whose objectives differ by less reached the same minimum
#: A basin counts as confirmed only once this share of the ``n_local`` local fits has run: two early
#: fits that agree may both have fallen into the same poor basin (6 of the thorough fitter's 20).
_MIN_LOCAL_SHARE = 0.3
_CONTINUATION_STEPS = 3  # at most this many larger Huber thresholds before the polish's own
_COARSE_TOL = 1e-6  # tolerance of the polish's stages at those larger thresholds
_FINE_TOL = 1e-15  # tolerance of the polish's last stage under a squared loss
OUT_OF_TIME = "stopped at the deadline"  # in the message of a fit its deadline cut short


class _OutOfTime(Exception):
    """Raised inside a local fit whose deadline has passed (caught by :func:`_least_squares`)."""


@dataclass(frozen=True)
class FitOptions:
    """Settings of the fitter; the defaults suit a final fit, the search may pass cheaper ones.

    - ``loss``: ``"auto"`` is ``"huber_log"`` when every target value of the (group, target)
      being fitted is > 0, else ``"huber"``.
      ``*_log`` losses use ``log(pred) - log(y)``; the others ``(pred - y) / std(y)``.
    - ``huber_delta``: Huber threshold on those residuals; ``None`` means 1e-3 on log residuals
      (Besiroglu et al.'s value, a 0.1% relative error) and 1e-2 on plain residuals, which are
      divided by the target's spread (a spread is typically ~10x larger than 0.1% of the values).
    - ``n_starts``: starting points scored by the objective; ``n_local``: at most this many
      local optimizations from the best of them (fewer once two agree on the best objective
      and 30% of them have run);
      ``max_nfev``: residual evaluations per local run.
    - ``tol``: ``ftol``, ``xtol`` and ``gtol`` of every local run.  Tighter than scipy's 1e-8:
      under a Huber loss on log residuals, 1e-8 stops the joint polish early in flat valleys
      (a mixture law's ``c + k*exp(...)`` one 17% short of its optimum); the search may pass 1e-8.
    - ``bounds``: per-parameter ``(low, high)`` by name (names not in the law are ignored).
      Defaults: rates :data:`RATE_BOUNDS`, other exponent-like parameters :data:`EXPONENT_BOUNDS`,
      all others :data:`SCALE_BOUNDS`.
    - ``deadline``: a ``time.time()`` after which the fit stops with the best parameters so far
      (:data:`OUT_OF_TIME` in its message); ``None``: no limit.  A fit it cuts short is not
      deterministic.
    """

    loss: LossName = "auto"
    huber_delta: float | None = None
    n_starts: int = 256
    n_local: int = 20
    max_nfev: int = 1000
    tol: float = 1e-10
    bounds: Mapping[str, tuple[float, float]] | None = None
    deadline: float | None = None

    def out_of_time(self) -> bool:
        """True once the ``deadline`` has passed."""
        return self.deadline is not None and time.time() > self.deadline

    def __post_init__(self) -> None:
        if self.loss not in _LOSSES:
            raise FitError(f"unknown loss {self.loss!r}; choose one of {', '.join(_LOSSES)}")
        if self.huber_delta is not None and not (np.isfinite(self.huber_delta) and self.huber_delta > 0):
            raise FitError(f"huber_delta must be a positive number, got {self.huber_delta!r}")
        for name in ("n_starts", "n_local", "max_nfev"):
            if getattr(self, name) < 1:
                raise FitError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if not (np.isfinite(self.tol) and 0 < self.tol < 1):
            raise FitError(f"tol must be a number between 0 and 1, got {self.tol!r}")
        for name, (low, high) in (self.bounds or {}).items():
            if not low < high:
                raise FitError(f"bounds for {name!r} must have low < high, got ({low!r}, {high!r})")


@dataclass(frozen=True, eq=False)
class GroupFit:
    """The fitted parameters of one law for one (group, target)."""

    group: str
    target: str
    theta: np.ndarray  # always finite, in law.parameters order
    loss: float  # final objective (0.5 * sum of rho(residual)), inf if no finite fit was found
    success: bool
    message: str
    n_rows: int
    #: The fitter's default (lower, upper) bounds on these rows, in law.parameters order (data-scaled
    #: rates, see :func:`_bounds`); None: the defaults without data.
    default_bounds: tuple[tuple[float, ...], tuple[float, ...]] | None = field(default=None, repr=False)

    def as_dict(self, law: Law) -> dict[str, float]:
        """Parameters by name."""
        if len(law.parameters) != self.theta.size:
            raise FitError(f"{law!r} has {law.n_parameters} parameters, this fit has {self.theta.size}")
        return {p: float(v) for p, v in zip(law.parameters, self.theta)}


@dataclass(frozen=True, eq=False)
class LawFit:
    """A law fitted per (group, target): one :class:`GroupFit` each."""

    law: Law
    fits: tuple[GroupFit, ...]
    _index: dict[tuple[str, str], GroupFit] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {(f.group, f.target): f for f in self.fits})

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.group for f in self.fits))

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.target for f in self.fits))

    def get(self, group: str, target: str) -> GroupFit:
        """The fit of one (group, target); :class:`FitError` names it if it was never fitted."""
        try:
            return self._index[(str(group), str(target))]
        except KeyError:
            if str(group) not in self.groups:
                raise FitError(f"group {group!r} was not fitted (fitted groups: {', '.join(self.groups)})") from None
            raise FitError(f"target {target!r} was not fitted (fitted: {', '.join(self.targets)})") from None

    def predict(self, X: np.ndarray, groups: np.ndarray, targets: Sequence[str]) -> np.ndarray:
        """Predictions (n, len(targets)); each row uses its own group's parameters."""
        X = _as_matrix(X, self.law)
        labels = _labels(groups, X.shape[0])
        out = np.empty((X.shape[0], len(targets)))
        for group in dict.fromkeys(labels.tolist()):
            rows = labels == group
            for j, target in enumerate(targets):
                out[rows, j] = self.law.bound(target).evaluate(X[rows], self.get(group, target).theta)
        return out

    def parameters(self) -> dict:
        """JSON-ready parameters: ``{group: {param: value}}`` for one target,
        ``{group: {target: {param: value}}}`` for several."""
        if len(self.targets) == 1:
            return {f.group: f.as_dict(self.law) for f in self.fits}
        result: dict[str, dict[str, dict[str, float]]] = {}
        for f in self.fits:
            result.setdefault(f.group, {})[f.target] = f.as_dict(self.law)
        return result


# ---------------------------------------------------------------------- objective
class _Objective:
    """Residuals, their Jacobian and the robust cost for one target vector."""

    def __init__(self, y: np.ndarray, loss: str, delta: float) -> None:
        self.y = y
        self.log = loss.endswith("_log")
        self.huber = loss.startswith("huber")
        self.delta = delta
        if self.log:
            self.log_y = np.log(y)
            self.floor = LOG_FLOOR * y
            self.weight = 1.0 / y  # weighted linear LS approximates squared log residuals
        else:
            self.weight = np.full(y.shape, 1.0 / _spread(y))

    def residuals(self, pred: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            if self.log:
                below = np.minimum(pred - self.floor, 0.0) / self.floor
                r = np.log(np.maximum(pred, self.floor)) - self.log_y + below
            else:
                r = (pred - self.y) * self.weight
            return np.clip(np.where(np.isfinite(r), r, PENALTY), -PENALTY, PENALTY)

    def jacobian(self, pred: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """d residuals / d theta from the prediction Jacobian (chain rule; 0 where not finite)."""
        with np.errstate(all="ignore"):
            factor = 1.0 / np.maximum(pred, self.floor) if self.log else self.weight
            J = grad * factor[:, None]
        J[~np.isfinite(J) | ~np.isfinite(pred)[:, None]] = 0.0
        return J

    def cost(self, r: np.ndarray, delta: float | None = None) -> float:
        """0.5 * sum rho(r): scipy's ``least_squares`` cost for the same loss and f_scale
        (the Huber threshold ``delta``, default the objective's)."""
        if not self.huber:
            return 0.5 * float(r @ r)
        a, d = np.abs(r), delta or self.delta
        return 0.5 * float(np.sum(np.where(a <= d, a * a, 2.0 * d * a - d * d)))

    @property
    def scipy_loss(self) -> str:
        return "huber" if self.huber else "linear"


def _squared_cost(r: np.ndarray) -> float:
    """0.5 * sum r²: the cost the multi-start ranks and optimizes by (see :func:`_search`)."""
    return 0.5 * float(r @ r)


def _spread(y: np.ndarray) -> float:
    """The scale plain residuals are divided by: std(y), else mean |y|, else 1."""
    for s in (np.std(y), np.mean(np.abs(y))):
        if np.isfinite(s) and s > 0:
            return float(s)
    return 1.0


# ---------------------------------------------------------------------- the problem
_HAS_GRADIENT: weakref.WeakKeyDictionary[Law, bool] = weakref.WeakKeyDictionary()


def _has_gradient(law: Law) -> bool:
    """Whether the law's analytic Jacobian compiles (it does not for abs/min/max)."""
    if law not in _HAS_GRADIENT:
        try:
            law.gradient(np.ones((1, len(law.inputs))), np.ones(law.n_parameters))
            _HAS_GRADIENT[law] = True
        except FormulaError:
            _HAS_GRADIENT[law] = False
    return _HAS_GRADIENT[law]


class _Problem:
    """One law on one (group, target): projected and full residual functions."""

    def __init__(self, law: Law, X: np.ndarray, objective: _Objective, lower: np.ndarray, upper: np.ndarray):
        self.law, self.X, self.obj = law, X, objective
        self.lower, self.upper = lower, upper
        self.split = law.linear_split()
        self.lin = np.array(self.split.linear, dtype=int)
        self.non = np.array([j for j in range(law.n_parameters) if j not in self.split.linear], dtype=int)
        self.analytic = _has_gradient(law)

    # -- variable projection
    def complete(self, theta_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Full theta (linear parameters solved) and its predictions, for nonlinear values ``theta_n``."""
        theta = np.zeros(self.law.n_parameters)
        theta[self.non] = theta_n
        if self.lin.size == 0:
            return theta, self.law.evaluate(self.X, theta)
        D = self.split.design(self.X, theta)
        base = self.split.base(self.X, theta)
        coef = self._solve(D, base)
        theta[self.lin] = coef
        with np.errstate(all="ignore"):
            return theta, base + D @ coef

    def _solve(self, D: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Weighted least squares for the linear parameters, guarded against bad columns."""
        w = self.obj.weight
        coef = np.zeros(D.shape[1])
        with np.errstate(all="ignore"):
            A = D * w[:, None]
            t = (self.obj.y - base) * w
            rows = np.isfinite(t) & np.isfinite(A).all(axis=1)  # the other rows are penalized anyway
            if not rows.all():
                A, t = A[rows], t[rows]
            norms = np.sqrt(np.einsum("ij,ij->j", A, A))
            good = np.isfinite(norms) & (norms > 0)
            if good.any():
                try:
                    sol = np.linalg.lstsq(A[:, good] / norms[good], t, rcond=_RCOND)[0] / norms[good]
                except np.linalg.LinAlgError:
                    sol = np.zeros(int(good.sum()))
                coef[good] = np.where(np.isfinite(sol), sol, 0.0)
        return np.clip(coef, self.lower[self.lin], self.upper[self.lin])

    def projected_residuals(self, theta_n: np.ndarray) -> np.ndarray:
        return self.obj.residuals(self.complete(theta_n)[1])

    def projected_jacobian(self, theta_n: np.ndarray) -> np.ndarray:
        """Kaufman's Jacobian of the projected residuals: the nonlinear columns of the full
        Jacobian with their part in the span of the linear columns removed (exact at the solved
        linear parameters up to a second-order term; one gradient instead of finite differences)."""
        theta, pred = self.complete(theta_n)
        J = self.obj.jacobian(pred, self.law.gradient(self.X, theta))
        J_lin, J_non = J[:, self.lin], J[:, self.non]
        try:
            U, sv, _ = np.linalg.svd(J_lin, full_matrices=False)
        except np.linalg.LinAlgError:
            return J_non
        Q = U[:, sv > _RCOND * sv.max(initial=0.0)]
        return J_non - Q @ (Q.T @ J_non)

    def projected_jac_for(self, theta_n: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | str:
        """:meth:`projected_jacobian` if the analytic Jacobian compiles and is finite at ``theta_n``,
        else '2-point'."""
        if self.analytic and np.all(np.isfinite(self.law.gradient(self.X, self.complete(theta_n)[0]))):
            return self.projected_jacobian
        return "2-point"

    # -- full parameter vector
    def residuals(self, theta: np.ndarray) -> np.ndarray:
        return self.obj.residuals(self.law.evaluate(self.X, theta))

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        return self.obj.jacobian(self.law.evaluate(self.X, theta), self.law.gradient(self.X, theta))

    def jac_for(self, theta: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | str:
        """The analytic Jacobian if it compiles and is finite at ``theta``, else '2-point'."""
        if self.analytic:
            G = self.law.gradient(self.X, theta)
            if np.all(np.isfinite(G)):
                return self.jacobian
        return "2-point"


def _least_squares(
    fun: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    jac: Callable[[np.ndarray], np.ndarray] | str,
    lower: np.ndarray,
    upper: np.ndarray,
    obj: _Objective,
    options: FitOptions,
    squared: bool = False,
    f_scale: float | None = None,
) -> OptimizeResult | None:
    """Bounded trf least squares with the objective's loss (plain squares if ``squared``) and
    Huber threshold (``f_scale``, default the objective's); None if scipy refuses the problem
    or the options' deadline passes during the fit."""
    if options.deadline is not None:
        inner = fun

        def fun(theta: np.ndarray) -> np.ndarray:
            if options.out_of_time():
                raise _OutOfTime
            return inner(theta)
    try:
        return least_squares(
            fun, np.clip(x0, lower, upper), jac=jac, bounds=(lower, upper), method="trf",
            loss="linear" if squared else obj.scipy_loss, f_scale=f_scale or obj.delta, max_nfev=options.max_nfev,
            ftol=options.tol, xtol=options.tol, gtol=options.tol,
        )
    except (ValueError, np.linalg.LinAlgError, _OutOfTime):
        return None


# ---------------------------------------------------------------------- starting points
def _grid_values(exponent: bool, low: float, high: float, span: float) -> np.ndarray:
    """Log-spaced candidate values of one parameter, both signs, inside its bounds."""
    if exponent:
        magnitudes = _EXPONENT_MAGNITUDES
    else:
        magnitudes = 10.0 ** np.arange(-2.0, np.log10(span) + 2.0, 2.0)
    values = np.concatenate([magnitudes, -magnitudes])
    inside = values[(values >= low) & (values <= high)]
    if inside.size < 3 and np.isfinite(low) and np.isfinite(high):
        inside = np.concatenate([inside, low + (high - low) * np.array([0.25, 0.5, 0.75])])
    return np.unique(inside) if inside.size else np.unique(np.clip(values, low, high))


def _random_values(
    exponent: bool, low: float, high: float, span: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Random log-uniform magnitudes with random signs; uniform in the bounds when outside them."""
    top = np.log10(3.0) if exponent else np.log10(span) + 1.0
    bottom = -2.0 if exponent else -3.0
    values = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(bottom, top, n)
    outside = (values < low) | (values > high)
    if np.isfinite(low) and np.isfinite(high):
        values[outside] = rng.uniform(low, high, int(outside.sum()))
    return np.clip(values, low, high)


def _starts(
    exponent: Sequence[bool], lower: np.ndarray, upper: np.ndarray, span: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """(n, d) starting points: half from the grid (all of it if small), half random."""
    grids = [_grid_values(e, lo, hi, span) for e, lo, hi in zip(exponent, lower, upper)]
    n_grid = max(1, n // 2)
    if np.prod([g.size for g in grids], dtype=float) <= n_grid:
        grid = np.array(list(itertools.product(*grids)), dtype=float)
    else:
        grid = np.column_stack([rng.choice(g, n_grid) for g in grids])
    n_random = max(0, n - len(grid))
    random = np.column_stack(
        [_random_values(e, lo, hi, span, n_random, rng) for e, lo, hi in zip(exponent, lower, upper)]
    )
    return np.vstack([grid, random])


def _along_data_scales(problem: _Problem, starts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Starting points on the data's own scales (:mod:`lawsearch.scales`).

    A law with location or width parameters gets :data:`_DATA_SCALE_POOL` times as many extra
    starts (copies of random ones) with each location where it cancels a random value of its
    input and each width a log-uniform share of its input's range: peaks and steps must be
    placed in the data, and scoring a start costs one evaluation.  Every rate, drawn as a
    dimensionless ``u``, becomes ``u / max|m|`` for what it multiplies, ``m``, at its start
    (``u`` ten times larger on every other start).
    """
    law, non = problem.law, list(problem.non)
    placed: dict[int, Callable[[int], np.ndarray]] = {}
    for name, (i, sign) in location_inputs(law).items():
        if law.parameters.index(name) in non:
            x = problem.X[:, i]
            placed[non.index(law.parameters.index(name))] = lambda n, x=x, sign=sign: sign * rng.choice(x, n)
    for name, i in width_inputs(law).items():
        x = problem.X[:, i]
        if law.parameters.index(name) in non and x.max() > x.min():
            placed[non.index(law.parameters.index(name))] = \
                lambda n, spread=x.max() - x.min(): spread * 10.0 ** rng.uniform(*_WIDTH_DECADES, n)
    if placed:
        extra = starts[rng.integers(len(starts), size=_DATA_SCALE_POOL * len(starts))]
        for column, draw in placed.items():
            extra[:, column] = draw(len(extra))
        starts = np.vstack([starts, extra])
    else:
        starts = starts.copy()
    multipliers = {name: m for name, m in rate_multipliers(law).items() if law.parameters.index(name) in non}
    if multipliers:
        theta = np.ones(law.n_parameters)
        reach = np.where(np.arange(len(starts)) % 2 == 1, _RATE_REACH, 1.0)
        for k, row in enumerate(starts):
            theta[problem.non] = row
            for name, multiplier in multipliers.items():
                j = law.parameters.index(name)
                theta[j] *= reach[k] * rate_scale(law, multiplier, problem.X, theta)
            row[:] = theta[problem.non]
    return np.clip(starts, problem.lower[problem.non], problem.upper[problem.non])


# ---------------------------------------------------------------------- fitting
def _bounds(law: Law, options: FitOptions, X: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each parameter's bounds: those ``options`` states, else the defaults; with rows ``X``, a
    rate's default bound is widened to reach ``RATE_BOUNDS`` times its smallest natural scale
    (``exp(b2/(x + b3))`` with x ~ 100 needs b2 ~ 6000)."""
    exponents, rates = set(law.exponent_parameters()), set(law.rate_parameters())
    given = options.bounds or {}
    defaults = {p: RATE_BOUNDS if p in rates else EXPONENT_BOUNDS if p in exponents else SCALE_BOUNDS
                for p in law.parameters}
    if X is not None and X.size:
        for name, multiplier in rate_multipliers(law).items():
            widen = max(1.0, 1.0 / smallest_multiplier(law, multiplier, X))
            defaults[name] = (RATE_BOUNDS[0] * widen, RATE_BOUNDS[1] * widen)
    pairs = [given.get(p, defaults[p]) for p in law.parameters]
    lower = np.array([float(lo) for lo, _ in pairs])
    upper = np.array([float(hi) for _, hi in pairs])
    return lower, upper


def _seed_sequence(seed: int, group: str, target: str) -> np.random.SeedSequence:
    """A stable per-(group, target) seed: crc32 of the names, never Python's salted hash()."""
    return np.random.SeedSequence(
        [int(seed) & 0xFFFFFFFFFFFFFFFF, zlib.crc32(str(group).encode()), zlib.crc32(str(target).encode())]
    )


def _as_matrix(X: np.ndarray, law: Law) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[1] != len(law.inputs):
        raise DataError(f"X must have shape (n, {len(law.inputs)}) for inputs {law.inputs}, got {X.shape}")
    return X


def _labels(groups: np.ndarray, n: int) -> np.ndarray:
    labels = np.asarray(groups).astype(str).reshape(-1)
    if labels.size != n:
        raise DataError(f"groups has {labels.size} labels for {n} rows")
    return labels


def fit_group(
    law: Law,
    X: np.ndarray,
    y: np.ndarray,
    options: FitOptions | None = None,
    *,
    seed: int = 0,
    group: str = "all",
    target: str = "y",
    start: np.ndarray | None = None,
) -> GroupFit:
    """Fit ``law`` to rows ``X`` (n, len(law.inputs)) and target ``y`` (n,); never raises on numerics.

    Deterministic for ``(seed, group, target)``, and for the expression whatever the order
    of ``law.parameters`` (the fit runs in :meth:`Law.in_text_order`).  ``start`` (a
    parameter vector, e.g. a previous fit or a nested parent's, :mod:`lawsearch.nested`) is always
    optimized first, and the fit ends no worse than the start itself.  Returns
    ``success=False`` with a finite theta and ``loss=inf`` when no parameters give finite
    predictions.
    """
    ordered = law.in_text_order()
    if ordered is not law:
        to_tree = np.array([law.parameters.index(p) for p in ordered.parameters], dtype=int)
        fit = fit_group(ordered, X, y, options, seed=seed, group=group, target=target,
                        start=None if start is None else np.asarray(start, dtype=float)[to_tree])
        theta = np.empty_like(fit.theta)
        theta[to_tree] = fit.theta
        theta.setflags(write=False)
        bounds = fit.default_bounds and tuple(tuple(np.array(side)[np.argsort(to_tree)]) for side in fit.default_bounds)
        return dataclasses.replace(fit, theta=theta, default_bounds=bounds)
    options = options or FitOptions()
    X = _as_matrix(X, law)
    y = np.asarray(y, dtype=float).reshape(-1)
    if y.size != X.shape[0]:
        raise DataError(f"y has {y.size} values for {X.shape[0]} rows of X")
    keep = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
    X, y = X[keep], y[keep]
    lower, upper = _bounds(law, options, X)
    limits = tuple(tuple(float(v) for v in side) for side in _bounds(law, FitOptions(), X))

    def result(theta: np.ndarray, loss: float, message: str) -> GroupFit:
        theta = np.where(np.isfinite(theta), theta, np.clip(0.0, lower, upper))
        theta.setflags(write=False)
        ok = bool(np.isfinite(loss))
        return GroupFit(group, target, theta, loss, ok, message, int(y.size), limits)

    if y.size == 0:
        return result(np.clip(np.ones(law.n_parameters), lower, upper), np.inf, "no rows with finite values")
    loss = options.loss
    if loss == "auto":
        loss = "huber_log" if np.all(y > 0) else "huber"
    elif loss.endswith("_log") and not np.all(y > 0):
        raise FitError(f"loss {loss!r} needs a positive target; {target!r} in group {group!r} has values <= 0")
    delta = options.huber_delta if options.huber_delta is not None else \
        DEFAULT_HUBER_DELTA["log" if loss.endswith("_log") else "plain"]
    obj = _Objective(y, loss, delta)
    with np.errstate(all="ignore"):
        problem = _Problem(law, X, obj, lower, upper)
        theta, message = _search(problem, options, np.random.default_rng(_seed_sequence(seed, group, target)), start)
        pred = law.evaluate(X, theta)
    final = obj.cost(obj.residuals(pred)) if np.all(np.isfinite(pred)) else np.inf
    if not np.isfinite(final):
        message = f"no parameters found that give finite predictions on all {y.size} rows"
    if options.out_of_time():
        message = f"{message}; {OUT_OF_TIME}"
    return result(theta, final, message)


def _search(
    problem: _Problem, options: FitOptions, rng: np.random.Generator, start: np.ndarray | None = None
) -> tuple[np.ndarray, str]:
    """Multi-start over the nonlinear parameters (plus ``start``, if given) on squared residuals,
    then a joint polish under the objective's loss (see the module docstring)."""
    obj, law, non = problem.obj, problem.law, problem.non
    if non.size == 0:
        return _polish(problem, options, problem.complete(non)[0], "linear parameters solved exactly")
    exponents = set(law.exponent_parameters())
    finite_X = np.abs(problem.X[np.isfinite(problem.X)])
    span = float(max(1.0, finite_X.max(initial=0.0), np.abs(obj.y).max()))
    exponent_like = [law.parameters[j] in exponents for j in non]
    generated = _starts(exponent_like, problem.lower[non], problem.upper[non], span, options.n_starts, rng)
    starts = _along_data_scales(problem, generated, rng)
    costs: list[float] = []
    for s in starts:  # the first start is always scored, the others until the deadline
        if costs and options.out_of_time():
            break
        costs.append(_squared_cost(problem.projected_residuals(s)))
    starts, scores = starts[: len(costs)], np.array(costs)
    ranked = starts[np.argsort(scores, kind="stable")]
    _, first = np.unique(ranked, axis=0, return_index=True)
    ranked = ranked[np.sort(first)]
    # Without linear parameters the projected problem is the full one: use the analytic Jacobian.
    full = problem.lin.size == 0
    fun = problem.residuals if full else problem.projected_residuals
    if len(starts) > len(generated):  # a pool placed in the data: screen its best by short local fits
        ranked = _screened(problem, fun, full, ranked[: _SCREEN_FACTOR * options.n_local], options)
    ranked = ranked[: options.n_local]
    if start is not None and np.all(np.isfinite(start)):  # a given start is always optimized, first
        given = np.clip(np.asarray(start, dtype=float)[non], problem.lower[non], problem.upper[non])
        ranked = np.vstack([given, ranked[: options.n_local - 1]])
        scores = np.append(scores, _squared_cost(problem.projected_residuals(given)))
    best_theta, best_cost = problem.complete(ranked[0])[0], float(scores.min())
    best_res, n_run = None, 0
    min_runs = math.ceil(_MIN_LOCAL_SHARE * options.n_local)
    found: list[tuple[float, np.ndarray]] = [(best_cost, best_theta)]
    explore = dataclasses.replace(options, max_nfev=min(options.max_nfev, _EXPLORE_NFEV))
    for x0 in ranked:
        if options.out_of_time():
            break
        jac = problem.jac_for(x0) if full else problem.projected_jac_for(x0)
        res = _least_squares(fun, x0, jac, problem.lower[non], problem.upper[non], obj, explore, squared=True)
        if res is None:
            continue
        n_run += 1
        cost = _squared_cost(fun(res.x))
        found.append((cost, problem.complete(res.x)[0]))
        if (abs(cost - best_cost) <= _AGREE * best_cost + _AGREE_ABS and best_res is not None
                and n_run >= min_runs):
            break  # another local fit reached the best objective: that basin is confirmed
        if cost < best_cost:
            best_theta, best_cost, best_res = found[-1][1], cost, res
    if best_res is not None and best_res.status == 0 and options.max_nfev > explore.max_nfev:
        jac = problem.jac_for(best_res.x) if full else problem.projected_jac_for(best_res.x)
        res = _least_squares(fun, best_res.x, jac, problem.lower[non], problem.upper[non], obj, options, squared=True)
        if res is not None and _squared_cost(fun(res.x)) < best_cost:  # the best run, to its end
            best_theta, best_cost, best_res = problem.complete(res.x)[0], _squared_cost(fun(res.x)), res
            found.append((best_cost, best_theta))
    if best_res is None:
        message = f"no local fit improved on the best of {len(starts)} starts"
    else:
        message = f"best of {n_run} local fits from {len(starts)} starts: {best_res.message}"
    if not obj.huber:
        polished = [(best_theta, message) if full else _polish(problem, options, best_theta, message)]
    else:
        found.sort(key=lambda item: item[0])
        n_polish = math.ceil(options.n_local / _LOCAL_FITS_PER_POLISH)
        polished = [_polish(problem, options, theta, message) for _, theta in found[:n_polish]]
    if start is not None and np.all(np.isfinite(start)):  # never worse than the given start
        polished.append(_polish(problem, options, np.clip(np.asarray(start, dtype=float), problem.lower,
                                                          problem.upper), "the given start, polished"))
    return min(polished, key=lambda item: obj.cost(problem.residuals(item[0])))


def _screened(problem: _Problem, fun: Callable[[np.ndarray], np.ndarray], full: bool, ranked: np.ndarray,
              options: FitOptions) -> np.ndarray:
    """``ranked`` starts moved by :data:`_SCREEN_NFEV`-evaluation local fits and re-ranked by
    where those end: the first steps tell a start that descends into a deep basin from one that
    only began low."""
    short = dataclasses.replace(options, max_nfev=_SCREEN_NFEV)
    moved, costs = [], []
    for x0 in ranked:
        jac = problem.jac_for(x0) if full else problem.projected_jac_for(x0)
        res = _least_squares(fun, x0, jac, problem.lower[problem.non], problem.upper[problem.non], problem.obj,
                             short, squared=True)
        x = x0 if res is None else res.x
        moved.append(x)
        costs.append(_squared_cost(fun(x)))
    return np.array(moved)[np.argsort(costs, kind="stable")]


def _polish(problem: _Problem, options: FitOptions, theta: np.ndarray, message: str) -> tuple[np.ndarray, str]:
    """Optimize all parameters jointly from ``theta``; keep the result only if it is better.

    Under a Huber loss the threshold is lowered in steps (:func:`_coarse_thresholds`) from the
    size of the residuals at ``theta`` to the objective's own, each stage starting where the
    last ended (graduated non-convexity).  With most residuals beyond the final threshold
    the loss is nearly absolute, and in its kinked landscape a local fit started far off
    stalls: Ye et al.'s mixture law written without its redundant rate stopped 5-15% above
    the optimum the redundant form reached.
    """
    if problem.law.n_parameters == 0:
        return theta, message
    obj = problem.obj
    start = problem.residuals(theta)
    coarse = dataclasses.replace(options, tol=max(options.tol, _COARSE_TOL))
    # Squares: a last stage at float precision, for problems with tiny residuals (Lanczos1's RSS is
    # 1e-25; at tol 1e-10 the fit stops with only 4 digits of it).
    final = options if obj.huber else dataclasses.replace(options, tol=min(options.tol, _FINE_TOL))
    stages = [(f_scale, coarse) for f_scale in _coarse_thresholds(obj, start)] + [(obj.delta, final)]
    x, last = theta, None
    for f_scale, stage_options in stages:
        res = _least_squares(problem.residuals, x, problem.jac_for(x), problem.lower, problem.upper,
                             obj, stage_options, f_scale=f_scale)
        if res is not None and obj.cost(problem.residuals(res.x), f_scale) < obj.cost(problem.residuals(x), f_scale):
            x, last = res.x, res
    if last is not None and obj.cost(problem.residuals(x)) < obj.cost(start):
        return x, f"{message}; joint polish: {last.message}"
    return theta, message


def _coarse_thresholds(obj: _Objective, r: np.ndarray) -> list[float]:
    """The Huber thresholds the polish passes through before the objective's own: the residuals'
    rms at the start, then tenfold smaller ones while above it (at most :data:`_CONTINUATION_STEPS`)."""
    rms = float(np.sqrt(np.mean(r * r)))
    steps = math.ceil(math.log10(rms / obj.delta)) if obj.huber and rms > obj.delta else 0
    return [rms / 10.0 ** k for k in range(min(steps, _CONTINUATION_STEPS))]


def fit_law(
    law: Law,
    X: np.ndarray,
    Y: np.ndarray,
    groups: np.ndarray,
    targets: Sequence[str],
    options: FitOptions | None = None,
    *,
    seed: int = 0,
    start: Mapping[tuple[str, str], np.ndarray] | None = None,
) -> LawFit:
    """Fit ``law`` independently per group and per target column of ``Y`` (n, len(targets)); a law
    that names ``self`` is fitted for each target with its paired input (:meth:`Law.bound`).

    ``groups`` holds one label per row (compared as text); fits keep the groups' order of
    first appearance.  Each (group, target) is seeded from ``seed`` and the two names, so
    its result does not depend on the other groups or on their order.  ``start`` maps
    (group, target) to a parameter vector (e.g. the fit on the full data, before a
    bootstrap, or a nested parent's fit: :func:`lawsearch.nested.nested_start`) that fit optimizes
    first and ends no worse than.
    """
    X = _as_matrix(X, law)
    Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.shape != (X.shape[0], len(targets)):
        raise DataError(f"Y must have shape ({X.shape[0]}, {len(targets)}) for targets {list(targets)}, got {Y.shape}")
    labels = _labels(groups, X.shape[0])
    fits = []
    for group in dict.fromkeys(labels.tolist()):
        rows = labels == group
        for j, target in enumerate(targets):
            fits.append(fit_group(law.bound(str(target)), X[rows], Y[rows, j], options, seed=seed, group=group,
                                  target=str(target),
                                  start=(start or {}).get((group, str(target)))))
    return LawFit(law, tuple(fits))


def pinned_parameter(fit: LawFit, options: FitOptions | None = None) -> str | None:
    """Why a fit is degenerate, or None: a parameter pressed against one of the fitter's default bounds.

    The defaults (:data:`SCALE_BOUNDS`, :data:`EXPONENT_BOUNDS`, :data:`RATE_BOUNDS`) are arbitrary
    limits, not knowledge.  A best fit within :data:`BOUND_MARGIN` of one wants a value beyond
    any limit (``A/log(D)**alpha`` with A and alpha growing together tends to a power law of D),
    so what the law predicts beyond the data is set by the limit rather than by the data.
    Bounds that ``options`` states (a human law's) are deliberate and exempt.
    """
    law = fit.law
    given = set(options.bounds or {}) if options else set()
    for group_fit in fit.fits:
        lower, upper = group_fit.default_bounds or _bounds(law, FitOptions())
        for j, name in enumerate(law.parameters):
            if name in given:
                continue
            value = float(group_fit.theta[j])
            limit = upper[j] if value > 0 else lower[j]
            if abs(value) >= (1.0 - BOUND_MARGIN) * abs(limit):
                return (f"degenerate fit: {name} = {value:.4g} (group {group_fit.group!r}) is at the fitter's "
                        f"limit {limit:g}; the best fit lies beyond it")
    return None
