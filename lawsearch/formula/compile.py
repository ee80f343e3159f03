"""A sympy law compiled into numpy functions ``f(X, theta)`` (no code generation), and its linear split."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from ..errors import FormulaError
from .grammar import NUMPY_FUNCTIONS


NumpyFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def compile_expr(expr: sympy.Expr, index: dict[sympy.Symbol, tuple[str, int]]) -> NumpyFunction:
    """Compile a sympy tree into a numpy function ``f(X, theta)`` (no code generation)."""
    together = compile_together([expr], index)
    return lambda X, t: together(X, t)[0]


def compile_together(exprs: Sequence[sympy.Expr],
                     index: dict[sympy.Symbol, tuple[str, int]]) -> Callable[[np.ndarray, np.ndarray], list]:
    """Compile several sympy trees (a law's derivatives, say) into one numpy function
    ``f(X, theta) -> [value of each]`` that computes each distinct subexpression once.

    The trees become one list of steps, children first; a step reads its arguments' values by
    position, and a value no later step reads is dropped as soon as it is used (memory stays
    that of the closure tree).  No code is generated."""
    slots: dict[sympy.Expr, int] = {}
    steps: list[Callable[[list, np.ndarray, np.ndarray], object]] = []
    reads: list[tuple[int, ...]] = []

    def slot(expr: sympy.Expr) -> int:
        if expr not in slots:
            step, args = _step(expr, slot, index)
            slots[expr] = len(steps)
            steps.append(step)
            reads.append(args)
        return slots[expr]

    outputs = [slot(e) for e in exprs]
    last_read = {k: j for j, args in enumerate(reads) for k in args}
    keep = set(outputs)
    freed = [tuple(k for k in args if last_read[k] == j and k not in keep) for j, args in enumerate(reads)]
    program = list(zip(steps, freed))

    def evaluate(X: np.ndarray, t: np.ndarray) -> list:
        values: list = [None] * len(program)
        for j, (step, done) in enumerate(program):
            values[j] = step(values, X, t)
            for k in done:
                values[k] = None
        return [values[k] for k in outputs]

    return evaluate


_Step = Callable[[list, np.ndarray, np.ndarray], object]


def _step(expr: sympy.Expr, slot: Callable[[sympy.Expr], int],
          index: dict[sympy.Symbol, tuple[str, int]]) -> tuple[_Step, tuple[int, ...]]:
    """One node's step ``step(values, X, theta)`` and the slots of the values it reads
    (its arguments are given slots first, by ``slot``)."""
    if expr.is_Symbol:
        kind, i = index[expr]
        if kind == "x":
            return (lambda v, X, t: X[:, i]), ()
        return (lambda v, X, t: t[i]), ()
    if expr.is_Number:
        if not expr.is_finite:
            raise FormulaError(f"formula simplifies to the non-finite constant {expr}")
        value = float(expr)
        return (lambda v, X, t: value), ()
    if expr in (sympy.pi, sympy.E):
        value = float(expr)
        return (lambda v, X, t: value), ()
    if isinstance(expr, sympy.Pow):
        base, e = slot(expr.base), expr.exp
        if e == -1:
            return (lambda v, X, t: np.reciprocal(np.asarray(v[base], dtype=float))), (base,)
        if e == sympy.Rational(1, 2):
            return (lambda v, X, t: np.sqrt(v[base])), (base,)
        if e == 2:
            return (lambda v, X, t: np.square(v[base])), (base,)
        exponent = slot(e)
        return (lambda v, X, t: np.power(np.asarray(v[base], dtype=float), v[exponent])), (base, exponent)
    if expr.func in NUMPY_FUNCTIONS:
        f, a = NUMPY_FUNCTIONS[expr.func], slot(expr.args[0])
        return (lambda v, X, t: f(v[a])), (a,)
    if isinstance(expr, sympy.Heaviside):
        a = slot(expr.args[0])
        return (lambda v, X, t: np.heaviside(v[a], 0.5)), (a,)
    folds = {sympy.Add: np.add, sympy.Mul: np.multiply, sympy.Min: np.minimum, sympy.Max: np.maximum}
    op = next((f for kind, f in folds.items() if isinstance(expr, kind)), None)
    if op is None:
        for a in expr.args:  # an argument's own unknown node is named first
            slot(a)
        raise FormulaError(f"cannot evaluate {expr.func.__name__}() numerically")
    args = tuple(slot(a) for a in expr.args)
    return _folded(op, args), args


def _folded(op: np.ufunc, args: tuple[int, ...]) -> _Step:
    """``op`` folded left over the values at ``args``, ``op(op(a, b), c)`` (two and three
    arguments, most nodes, without the cost of a generic fold: the fits' inner loop runs these)."""
    if len(args) == 2:
        a, b = args
        return lambda v, X, t: op(v[a], v[b])
    if len(args) == 3:
        a, b, c = args
        return lambda v, X, t: op(op(v[a], v[b]), v[c])
    return lambda v, X, t: functools.reduce(op, (v[k] for k in args))


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
    #: ``[offset, *columns]`` at once, shared subexpressions computed once (:func:`compile_together`)
    together: Callable[[np.ndarray, np.ndarray], list]

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
