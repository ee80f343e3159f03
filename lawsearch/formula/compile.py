"""A sympy law compiled into numpy closures ``f(X, theta)`` (no code generation), and its linear split."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy

from ..errors import FormulaError
from .grammar import NUMPY_FUNCTIONS


NumpyFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def compile_expr(expr: sympy.Expr, index: dict[sympy.Symbol, tuple[str, int]]) -> NumpyFunction:
    """Compile a sympy tree into a numpy closure ``f(X, theta)`` (no code generation)."""
    if expr.is_Symbol:
        kind, i = index[expr]
        if kind == "x":
            return lambda X, t: X[:, i]
        return lambda X, t: t[i]
    if expr.is_Number:
        if not expr.is_finite:
            raise FormulaError(f"formula simplifies to the non-finite constant {expr}")
        value = float(expr)
        return lambda X, t: value
    if expr in (sympy.pi, sympy.E):
        value = float(expr)
        return lambda X, t: value
    args = [compile_expr(a, index) for a in expr.args]
    if isinstance(expr, sympy.Add):
        return lambda X, t: functools.reduce(np.add, (a(X, t) for a in args))
    if isinstance(expr, sympy.Mul):
        return lambda X, t: functools.reduce(np.multiply, (a(X, t) for a in args))
    if isinstance(expr, sympy.Pow):
        base, exponent = args
        e = expr.exp
        if e == -1:
            return lambda X, t: np.reciprocal(np.asarray(base(X, t), dtype=float))
        if e == sympy.Rational(1, 2):
            return lambda X, t: np.sqrt(base(X, t))
        if e == 2:
            return lambda X, t: np.square(base(X, t))
        return lambda X, t: np.power(np.asarray(base(X, t), dtype=float), exponent(X, t))
    if expr.func in NUMPY_FUNCTIONS:
        f, (a,) = NUMPY_FUNCTIONS[expr.func], args
        return lambda X, t: f(a(X, t))
    if isinstance(expr, sympy.Heaviside):
        return lambda X, t: np.heaviside(args[0](X, t), 0.5)
    if isinstance(expr, sympy.Min):
        return lambda X, t: functools.reduce(np.minimum, (a(X, t) for a in args))
    if isinstance(expr, sympy.Max):
        return lambda X, t: functools.reduce(np.maximum, (a(X, t) for a in args))
    raise FormulaError(f"cannot evaluate {expr.func.__name__}() numerically")


@dataclass(frozen=True)
class LinearSplit:
    """How a law is linear in some of its parameters (for variable projection).

    ``f(X, θ) = offset(X, θ_n) + design(X, θ_n) @ θ_l`` where ``θ_l`` are the
    parameters at positions ``linear`` and ``θ_n`` the others.  Entries of the
    full vector θ at the linear positions are ignored by ``offset``/``design``.
    """

    linear: tuple[int, ...]
    offset: NumpyFunction
    columns: tuple[NumpyFunction, ...]

    def design(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """The (n, k) design matrix of the linear parameters at ``theta``."""
        if not self.columns:
            return np.zeros((X.shape[0], 0))
        with np.errstate(all="ignore"):
            return np.column_stack([np.broadcast_to(c(X, theta), (X.shape[0],)) for c in self.columns])

    def base(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """The part of the law that no linear parameter multiplies."""
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(self.offset(X, theta), dtype=float), (X.shape[0],))
