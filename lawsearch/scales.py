"""The data's own scales of a law's parameters, for the fitter's default bounds and starting points.

- A *rate* (t in ``exp(t*m(x))``, :meth:`Law.rate_parameters`) has the natural scale
  ``1 / max|m|`` over the rows: ``t*m`` is then O(1).  What it multiplies may hold other
  parameters (``exp(b2/(x + b3))``), so the scale is computed per starting point.
- A *location* (b in ``x - b`` or ``b + x``: a parameter added to an input) lives where the
  data lives: where the input's values make the sum zero.
- A *width* (w in ``(x - b)/w`` or ``cos(x/w)``: a parameter that divides an input) is a share
  of the input's range.
"""

from __future__ import annotations

import weakref

import numpy as np
import sympy

from .formula import Law

__all__ = ["rate_multipliers", "rate_scale", "location_inputs", "width_inputs", "smallest_multiplier"]

_MULTIPLIERS: weakref.WeakKeyDictionary[Law, dict[str, Law]] = weakref.WeakKeyDictionary()
_LOCATIONS: weakref.WeakKeyDictionary[Law, dict[str, tuple[int, float]]] = weakref.WeakKeyDictionary()
_WIDTHS: weakref.WeakKeyDictionary[Law, dict[str, int]] = weakref.WeakKeyDictionary()


def rate_multipliers(law: Law) -> dict[str, Law]:
    """Rate parameter -> the law of what it multiplies in its exponent (``m`` in ``exp(t*m)``),
    rates whose multiplier holds no other rate first."""
    if law not in _MULTIPLIERS:
        rates = set(law.rate_parameters())
        found: dict[str, sympy.Expr] = {}
        for node in sympy.preorder_traversal(law.expr):
            inner = node.args[0] if isinstance(node, sympy.exp) else node.exp if isinstance(node, sympy.Pow) else None
            if inner is None:
                continue
            for name in sorted(rates - set(found)):
                slope = sympy.diff(inner, law.symbol(name))
                if slope != 0 and not slope.has(law.symbol(name)):
                    found[name] = slope
        multipliers = {name: Law.from_sympy(found[name], law.inputs, order=law.parameters, pairs=law.pairs)
                       for name in law.parameters if name in found}
        _MULTIPLIERS[law] = dict(sorted(multipliers.items(), key=lambda item: bool(set(item[1].parameters) & rates)))
    return _MULTIPLIERS[law]


def rate_scale(law: Law, multiplier: Law, X: np.ndarray, theta: np.ndarray) -> float:
    """``1 / max|m|`` over the rows at parameters ``theta`` (of ``law``), or 1 where m is 0 or not finite."""
    m = multiplier.evaluate(X, [theta[law.parameters.index(p)] for p in multiplier.parameters])
    top = float(np.max(np.abs(m), initial=0.0)) if np.all(np.isfinite(m)) else 0.0
    return 1.0 / top if top > 0 else 1.0


def smallest_multiplier(law: Law, multiplier: Law, X: np.ndarray) -> float:
    """The smallest nonzero ``|m|`` over the rows with the other parameters at 0 (else at 1), or 1:
    a rate as large as the bound over this still only reaches exp(bound) on every row."""
    for value in (0.0, 1.0):
        m = np.abs(multiplier.evaluate(X, np.full(multiplier.n_parameters, value)))
        m = m[m > 0]
        if m.size and np.all(np.isfinite(m)):
            return float(m.min())
    return 1.0


def location_inputs(law: Law) -> dict[str, tuple[int, float]]:
    """Location parameter -> (index of the input it is added to, the sign that puts it at the
    input's values): b in ``x - b`` -> (i, 1), b in ``b + x`` -> (i, -1)."""
    if law not in _LOCATIONS:
        inputs = {law.symbol(n): i for i, n in enumerate(law.inputs)}
        parameters = {law.symbol(p) for p in law.parameters}
        found: dict[str, tuple[int, float]] = {}
        for node in sympy.preorder_traversal(law.expr):
            if not isinstance(node, sympy.Add):
                continue
            terms = node.args
            added = [t for t in terms if t in inputs or (-t) in inputs]
            shifts = [t for t in terms if t in parameters or (-t) in parameters]
            if added:
                x, x_sign = (added[0], 1.0) if added[0] in inputs else (-added[0], -1.0)
                for shift in shifts:
                    p, p_sign = (shift, 1.0) if shift in parameters else (-shift, -1.0)
                    found.setdefault(p.name, (inputs[x], -x_sign * p_sign))
        _LOCATIONS[law] = {p: found[p] for p in law.parameters if p in found}
    return _LOCATIONS[law]


def width_inputs(law: Law) -> dict[str, int]:
    """Width parameter -> the index of the input it divides (a product holding the input, or a
    power of a sum holding it, and a negative power of the parameter)."""
    if law not in _WIDTHS:
        inputs = {law.symbol(n): i for i, n in enumerate(law.inputs)}
        parameters = {law.symbol(p) for p in law.parameters}
        found: dict[str, int] = {}
        for node in sympy.preorder_traversal(law.expr):
            if not isinstance(node, sympy.Mul):
                continue
            divisors = [f.base for f in node.args if isinstance(f, sympy.Pow) and f.base in parameters
                        and f.exp.is_number and f.exp < 0]
            held = [x for x in inputs if any(x in f.free_symbols and not (f.free_symbols & set(divisors))
                                             for f in node.args)]
            for divisor in divisors:
                if held:
                    found.setdefault(divisor.name, inputs[held[0]])
        _WIDTHS[law] = {p: found[p] for p in law.parameters if p in found}
    return _WIDTHS[law]
