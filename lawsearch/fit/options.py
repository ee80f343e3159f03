"""What the fitter takes and returns: its options, the fitted parameters per (group, target), and
the default bounds of a parameter's kind."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..errors import DataError, FitError
from ..formula import Law

__all__ = ["FitOptions", "GroupFit", "LawFit", "PENALTY", "LOG_FLOOR", "DEFAULT_HUBER_DELTA", "EXPONENT_BOUNDS",
           "RATE_BOUNDS", "SCALE_BOUNDS", "BOUND_MARGIN", "OUT_OF_TIME", "as_matrix", "row_labels"]

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
OUT_OF_TIME = "stopped at the deadline"  # in the message of a fit its deadline cut short


@dataclass(frozen=True)
class FitOptions:
    """Settings of the fitter; the defaults suit a final fit, the search may pass cheaper ones.

    - ``loss``: ``"auto"`` is ``"huber_log"`` when every target value of the (group, target)
      being fitted is > 0, else ``"huber"``.
      ``*_log`` losses use ``log(pred) - log(y)``; the others ``(pred - y) / std(y)``.
    - ``huber_delta``: Huber threshold on those residuals; ``None`` means 1e-3 on log residuals
      (Besiroglu et al.'s value, a 0.1% relative error) and 1e-2 on plain residuals, which are
      divided by the target's spread (a spread is typically ~10x larger than 0.1% of the values).
    - ``n_starts``: starting points scored by the objective; ``n_local``: local optimizations
      from the best of them (all run together); ``max_nfev``: residual evaluations per local run.
    - ``placed_local``: local optimizations of a law whose starts are placed in the data (locations
      and widths, :mod:`lawsearch.fit.starts`); ``None``: twice ``n_local`` (among starts whose
      short screening fits end close together, which one leads to the deep basin is a matter of
      rounding: NIST's Gauss3).  The search passes its ``n_local``, as the fitter before did.
    - ``tol``: ``ftol``, ``xtol`` and ``gtol`` of every local run (the search passes scipy's 1e-8).
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
    placed_local: int | None = None
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
        for name in ("n_starts", "n_local", "max_nfev", "placed_local"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
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
        X = as_matrix(X, self.law)
        labels = row_labels(groups, X.shape[0])
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



def as_matrix(X: np.ndarray, law: Law) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[1] != len(law.inputs):
        raise DataError(f"X must have shape (n, {len(law.inputs)}) for inputs {law.inputs}, got {X.shape}")
    return X


def row_labels(groups: np.ndarray, n: int) -> np.ndarray:
    labels = np.asarray(groups).astype(str).reshape(-1)
    if labels.size != n:
        raise DataError(f"groups has {labels.size} labels for {n} rows")
    return labels

