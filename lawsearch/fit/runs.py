"""Many fits of one law evaluated together: one numpy evaluation for all starting points.

A *run* is one local fit: a group's rows, its target and its bounds, and a parameter vector.
:class:`Runs` holds R runs whose rows are padded to a common length N (a power of two chosen
from each group's own row count, never from the others', so a run's arithmetic does not depend
on what it is batched with); padded rows have a zero residual and a zero Jacobian row.  The law
is evaluated for all runs at once by its compiled numpy function, called with the inputs as
(R, N) columns and each parameter as an (R, 1) column, so everything broadcasts to (R, N).

Residuals, as in every fit: under a ``*_log`` loss ``log(pred) - log(y)`` (predictions below
``LOG_FLOOR * y`` continue the logarithm linearly), else ``(pred - y) / spread(y)``; non-finite
ones become :data:`PENALTY`.  Linear parameters are solved by weighted least squares
(variable projection) per run, and the projected Jacobian is Kaufman's.

Floating-point warnings (overflow, log of a negative) are expected here and are the caller's to
silence, once per fit rather than per evaluation: :func:`~lawsearch.fit.fitter.fit_law` and
:func:`~lawsearch.fit.local.local_fits` do.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace

import numpy as np

from ..errors import FormulaError
from ..formula import Law, LinearSplit
from .options import LOG_FLOOR, PENALTY
from .jacobian import scaled_gradient
from .projection import linear_coefficients

__all__ = ["Group", "Runs", "padded_length", "RCOND", "spread", "CHUNK_VALUES"]

#: Runs are evaluated in chunks of at most this many residuals (at least one run): memory stays
#: bounded, and a deadline is checked between chunks.
CHUNK_VALUES = 1 << 18
RCOND = 1e-10  # relative singular-value cutoff of the linear solve and of Kaufman's projection
_FD_STEP = np.sqrt(np.finfo(float).eps)  # forward differences where the analytic Jacobian fails
_HAS_GRADIENT: weakref.WeakKeyDictionary[Law, bool] = weakref.WeakKeyDictionary()


def has_gradient(law: Law) -> bool:
    """Whether the law's analytic Jacobian compiles (it does not for abs/min/max)."""
    if law not in _HAS_GRADIENT:
        try:
            law.gradient_together()
            _HAS_GRADIENT[law] = True
        except FormulaError:
            _HAS_GRADIENT[law] = False
    return _HAS_GRADIENT[law]


def padded_length(n: int) -> int:
    """The row count a group of ``n`` rows is padded to: the next power of two (at least 8)."""
    return max(8, 1 << max(n - 1, 0).bit_length())


def spread(y: np.ndarray) -> float:
    """The scale plain residuals are divided by: std(y), else mean |y|, else 1."""
    for s in (np.std(y), np.mean(np.abs(y))):
        if np.isfinite(s) and s > 0:
            return float(s)
    return 1.0


@dataclass(frozen=True, eq=False)
class Group:
    """One (group, target) to fit: its finite rows, target, loss, bounds and Huber threshold."""

    X: np.ndarray  # (n, d)
    y: np.ndarray  # (n,)
    log: bool  # residuals on log(y)
    huber: bool
    delta: float
    lower: np.ndarray  # (K,)
    upper: np.ndarray


class _Columns:
    """What a compiled law reads as ``X[:, i]``: input i of every run, (R, N)."""

    def __init__(self, columns: np.ndarray) -> None:
        self.columns = columns

    def __getitem__(self, key: tuple[slice, int]) -> np.ndarray:
        return self.columns[key[1]]


@dataclass(frozen=True, eq=False)
class Runs:
    """R runs of one law, rows padded to N (see the module docstring)."""

    law: Law
    split: LinearSplit
    lin: np.ndarray  # positions of the linear parameters
    non: np.ndarray  # positions of the others
    analytic: bool
    columns: np.ndarray  # (d, R, N)
    y: np.ndarray  # (R, N), 1 on padded rows
    weight: np.ndarray  # (R, N): of the linear solve; 0 on padded rows
    mask: np.ndarray  # (R, N): True on real rows
    log: bool
    huber: bool
    delta: np.ndarray  # (R,)
    lower: np.ndarray  # (R, K)
    upper: np.ndarray

    @classmethod
    def build(cls, law: Law, groups: list[Group], which: np.ndarray) -> Runs:
        """Runs of ``law`` on ``groups[which[r]]`` (all of one loss kind and padded length)."""
        n_pad = padded_length(groups[0].X.shape[0])
        d = groups[0].X.shape[1]
        columns, y, weight, mask = (np.ones((len(groups), d, n_pad)), np.ones((len(groups), n_pad)),
                                    np.zeros((len(groups), n_pad)), np.zeros((len(groups), n_pad), dtype=bool))
        for k, group in enumerate(groups):
            n = group.y.size
            columns[k, :, :n] = group.X.T
            columns[k, :, n:] = group.X[:1].T  # padded rows repeat a real one: finite, and masked out
            y[k, :n] = group.y
            mask[k, :n] = True
            weight[k, :n] = 1.0 / group.y if group.log else 1.0 / spread(group.y)
        split = law.linear_split()
        lin = np.array(split.linear, dtype=int)
        return cls(law, split, lin, np.array([j for j in range(law.n_parameters) if j not in split.linear], dtype=int),
                   has_gradient(law), np.ascontiguousarray(columns[which].transpose(1, 0, 2)), y[which],
                   weight[which], mask[which], groups[0].log, groups[0].huber,
                   np.array([groups[k].delta for k in which]), np.array([groups[k].lower for k in which]),
                   np.array([groups[k].upper for k in which]))

    def __len__(self) -> int:
        return self.y.shape[0]

    def extended(self) -> Runs:
        """These runs evaluated in extended precision (``np.longdouble``, where the platform has it):
        residuals far below the target's values keep their digits (Lanczos1's are 1e-13 of them)."""
        return replace(self, columns=self.columns.astype(np.longdouble), y=self.y.astype(np.longdouble),
                       weight=self.weight.astype(np.longdouble))

    def take(self, rows: np.ndarray) -> Runs:
        """The runs at ``rows`` (sorted distinct indices, or a boolean mask)."""
        if rows.dtype != bool and rows.size == len(self):
            return self
        taken = object.__new__(Runs)  # dataclasses.replace re-runs __init__: too slow in a fit's inner loop
        taken.__dict__.update(self.__dict__, columns=self.columns[:, rows], y=self.y[rows], weight=self.weight[rows],
                              mask=self.mask[rows], delta=self.delta[rows], lower=self.lower[rows],
                              upper=self.upper[rows])
        return taken

    # ------------------------------------------------------------------ evaluation
    def _call(self, function, theta: np.ndarray) -> np.ndarray:
        """``function`` of the law at ``theta`` for every run, (R, N)."""
        return self._shaped(function(_Columns(self.columns), theta.T[:, :, None]))

    def _call_together(self, function, theta: np.ndarray) -> list[np.ndarray]:
        """Like :meth:`_call` for a function of several values (:func:`~lawsearch.formula.compile.compile_together`)."""
        return [self._shaped(out) for out in function(_Columns(self.columns), theta.T[:, :, None])]

    def _shaped(self, out) -> np.ndarray:
        if type(out) is np.ndarray and out.shape == self.y.shape and out.dtype == self.y.dtype:
            return out
        return np.broadcast_to(np.asarray(out, dtype=self.y.dtype), self.y.shape)

    def predict(self, theta: np.ndarray) -> np.ndarray:
        """Predictions (R, N) at parameters ``theta`` (R, K)."""
        return self._call(self.law.function, theta)

    def residuals(self, pred: np.ndarray) -> np.ndarray:
        """Residuals (R, N): finite, clipped to ±PENALTY, 0 on padded rows."""
        if self.log:
            floor = LOG_FLOOR * self.y
            below = np.minimum(pred - floor, 0.0) / floor
            r = np.log(np.maximum(pred, floor)) - np.log(self.y) + below
        else:
            r = (pred - self.y) * self.weight
        r = np.clip(np.where(np.isfinite(r), r, PENALTY), -PENALTY, PENALTY)
        return np.where(self.mask, r, 0.0).astype(float, copy=False)

    def gradient(self, theta: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The residuals' analytic Jacobian (R, N, K) (0 where not finite) and, per run, whether
        the law's gradient was finite on all its rows."""
        columns = self._call_together(self.law.gradient_together(), theta)
        grad = np.stack(columns, axis=-1) if columns else np.zeros((*self.y.shape, 0))
        factor = 1.0 / np.maximum(pred, LOG_FLOOR * self.y) if self.log else self.weight
        return scaled_gradient(*(np.ascontiguousarray(a, dtype=float) for a in (grad, factor, pred)), self.mask)

    # ------------------------------------------------------------------ variable projection
    def complete(self, theta_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Full parameters (R, K), linear ones solved, and predictions (R, N) for nonlinear
        values ``theta_n`` (R, len(non))."""
        theta = np.zeros((len(self), self.law.n_parameters))
        theta[:, self.non] = theta_n
        if self.lin.size == 0:
            return theta, self.predict(theta)
        base, *columns = self._call_together(self.split.together, theta)
        D = np.stack(columns, axis=-1)
        coef = self._solve(D, base)
        theta[:, self.lin] = coef
        return theta, base + np.einsum("rnk,rk->rn", D, coef)

    def _solve(self, D: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Weighted least squares for the linear parameters of every run (rows or columns that
        are not finite left out; columns normalized; singular values below RCOND cut; compiled:
        :func:`~lawsearch.fit.projection.linear_coefficients`)."""
        # contiguous float arrays (a broadcast one copied): one compiled version, whatever the law returned
        arrays = (D, base, self.y, self.weight, self.lower[:, self.lin], self.upper[:, self.lin])
        return linear_coefficients(*(np.ascontiguousarray(a, dtype=float) for a in arrays), RCOND)

    # ------------------------------------------------------------------ what a local fit moves
    def point(self, x: np.ndarray, projected: bool) -> tuple[np.ndarray, np.ndarray]:
        """Full parameters and predictions at ``x``: the nonlinear parameters (``projected``) or all."""
        return self.complete(x) if projected else (x, self.predict(x))

    def fun(self, x: np.ndarray, projected: bool) -> np.ndarray:
        """Residuals at ``x`` (see :meth:`point`)."""
        return self.residuals(self.point(x, projected)[1])

    def jac(self, x: np.ndarray, projected: bool, at: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Jacobian (R, N, len(x)) of :meth:`fun` (``at``: :meth:`point` at ``x``, if known): analytic
        (Kaufman's where projected), else forward differences, chosen per run."""
        theta, pred = at or self.point(x, projected)
        J, finite = self.gradient(theta, pred) if self.analytic else (None, np.zeros(len(self), dtype=bool))
        if J is not None and projected:
            J = _kaufman(J[:, :, self.lin], J[:, :, self.non])
        if finite.all():
            return J
        numeric = self.take(~finite)._differences(x[~finite], projected)
        if J is None:
            return numeric
        J[~finite] = numeric
        return J

    def _differences(self, x: np.ndarray, projected: bool) -> np.ndarray:
        """Forward differences, each step kept inside the bounds (scipy's '2-point')."""
        lower, upper = self._bounds_of(projected)
        r0 = self.fun(x, projected)
        J = np.empty((*r0.shape, x.shape[1]))
        for j in range(x.shape[1]):
            h = _FD_STEP * np.maximum(1.0, np.abs(x[:, j]))
            h = np.where(x[:, j] + h > upper[:, j], -h, h)
            step = x.copy()
            step[:, j] += h
            J[:, :, j] = (self.fun(step, projected) - r0) / h[:, None]
        return J

    def _bounds_of(self, projected: bool) -> tuple[np.ndarray, np.ndarray]:
        return (self.lower[:, self.non], self.upper[:, self.non]) if projected else (self.lower, self.upper)


def _kaufman(J_lin: np.ndarray, J_non: np.ndarray) -> np.ndarray:
    """Kaufman's Jacobian of projected residuals: the nonlinear columns with their part in the
    span of the linear columns removed (one gradient instead of finite differences)."""
    if J_lin.shape[2] == 0:
        return J_non
    try:
        U, sv, _ = np.linalg.svd(J_lin, full_matrices=False)
    except np.linalg.LinAlgError:
        return J_non
    U = U * (sv > RCOND * sv.max(axis=1, keepdims=True))[:, None, :]
    return J_non - U @ (U.transpose(0, 2, 1) @ J_non)
