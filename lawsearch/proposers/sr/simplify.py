"""Sympy passes on a translated expression: merge redundant parameters, undo exp-of-log, pick the smaller variant."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import sympy

from ...formula.structure import expression_size

_MAX_EXPANDED_GROWTH = 3.0  # the expanded variant is dropped if it is this many times larger


# ---------------------------------------------------------------------- sympy passes
def _count(expr: sympy.Basic, symbols: set[sympy.Symbol]) -> Counter:
    return Counter(node for node in sympy.preorder_traversal(expr) if node in symbols)


def param_only(expr: sympy.Basic, params: set[sympy.Symbol]) -> bool:
    return expr.free_symbols <= params


def _value(expr: sympy.Expr, values: Mapping[sympy.Symbol, float]) -> float:
    try:
        v = complex(expr.xreplace({k: sympy.Float(v) for k, v in values.items()}).evalf())
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return math.nan
    return v.real if abs(v.imag) <= 1e-12 * max(1.0, abs(v.real)) else math.nan


def merge_parameters(
    expr: sympy.Expr,
    params: Sequence[sympy.Symbol],
    values: dict[sympy.Symbol, float] | None = None,
    max_rounds: int = 64,
    frozen: Iterable[sympy.Symbol] = (),
) -> sympy.Expr:
    """Replace input-free sub-expressions holding a private parameter by that parameter.

    A sub-expression (or a group of input-free arguments of a sum or product)
    that contains no input and holds a parameter occurring nowhere else in
    ``expr`` is replaced by that parameter: the family of functions does not
    shrink (the parameter can take the sub-expression's value).  ``params`` gives
    the preference order when several are private (earlier ones are kept).
    ``values`` (parameter → engine value) is updated for the kept parameters.
    Sub-expressions made only of ``frozen`` parameters are left alone (a parent
    law keeps its own form when a correction is added to it).
    """
    order = {p: i for i, p in enumerate(params)}
    pset = set(params)
    frozen = set(frozen)
    values = values if values is not None else {}

    def private_in(sub: sympy.Expr, counts: Counter) -> sympy.Symbol | None:
        inner = _count(sub, pset)
        if not set(inner) - frozen:
            return None
        private = [p for p in inner if inner[p] == counts[p]]
        return min(private, key=order.__getitem__) if private else None

    for _ in range(max_rounds):
        counts = _count(expr, pset)
        changed = False

        def visit(e: sympy.Expr) -> sympy.Expr:
            nonlocal changed
            if changed or not e.args or not e.free_symbols:
                return e
            if param_only(e, pset):
                keep = private_in(e, counts)
                if keep is not None:
                    values[keep] = _value(e, values)
                    changed = True
                    return keep
                return e
            if isinstance(e, (sympy.Add, sympy.Mul)):
                group = [a for a in e.args if param_only(a, pset)]
                if len(group) >= 2 and any(a.free_symbols for a in group):
                    sub = e.func(*group)
                    keep = private_in(sub, counts)
                    if keep is not None:
                        values[keep] = _value(sub, values)
                        changed = True
                        rest = [a for a in e.args if not param_only(a, pset)]
                        return e.func(keep, *rest)
            return e.func(*(visit(a) for a in e.args))

        expr = visit(expr)
        if not changed:
            break
    return expr


def _exp_of_log(expr: sympy.Expr, inputs: set[sympy.Symbol]) -> sympy.Expr:
    """``exp(a + k*log(x))`` → ``x**k * exp(a)`` for an input ``x`` and an input-free ``k``."""

    def rewrite(e: sympy.Expr) -> sympy.Expr:
        if not e.args:
            return e
        e = e.func(*(rewrite(a) for a in e.args))
        if not isinstance(e, sympy.exp):
            return e
        powers, rest = [], []
        for term in sympy.Add.make_args(e.args[0]):
            factors = sympy.Mul.make_args(term)
            logs = [f for f in factors if isinstance(f, sympy.log) and f.args[0] in inputs]
            others = [f for f in factors if not (isinstance(f, sympy.log) and f.args[0] in inputs)]
            if len(logs) == 1 and not any(f.free_symbols & inputs for f in others):
                powers.append(sympy.Pow(logs[0].args[0], sympy.Mul(*others)))
            else:
                rest.append(term)
        if not powers:
            return e
        return sympy.Mul(*powers) * sympy.exp(sympy.Add(*rest))

    return rewrite(expr)


def _constant_base_powers(expr: sympy.Expr, params: set[sympy.Symbol]) -> sympy.Expr:
    """``p**g(x)`` with an input-free base ``p`` → ``exp(g(x)*log(p))`` (so ``log(p)`` can merge)."""

    def rewrite(e: sympy.Expr) -> sympy.Expr:
        if not e.args:
            return e
        e = e.func(*(rewrite(a) for a in e.args))
        if isinstance(e, sympy.Pow) and e.base.free_symbols and e.base.free_symbols <= params:
            if e.exp.free_symbols - params:
                return sympy.exp(e.exp * sympy.log(e.base))
        return e

    return rewrite(expr)


def _n_params(expr: sympy.Expr, params: set[sympy.Symbol]) -> int:
    return len(expr.free_symbols & params)


def simplify_variants(
    expr: sympy.Expr, params: Sequence[sympy.Symbol], values: dict[sympy.Symbol, float], inputs: set[sympy.Symbol]
) -> sympy.Expr:
    """The variant (as is / expanded) with the fewest parameters after merging, then the smallest."""
    pset = set(params)
    variants = [expr, _constant_base_powers(expr, pset)]
    try:
        expanded = sympy.expand(
            variants[1], deep=True, mul=True, multinomial=False, power_exp=True, power_base=True, log=True, force=True
        )
    except Exception:  # pragma: no cover - a candidate's own failure in sympy: its other variants stand
        expanded = None
    if expanded is not None and expression_size(expanded) <= _MAX_EXPANDED_GROWTH * expression_size(expr) + 10:
        variants.append(expanded)
    best, best_values, best_key = expr, dict(values), None
    for variant in variants:
        variant_values = dict(values)
        candidate = merge_parameters(_exp_of_log(variant, inputs), params, variant_values)
        key = (_n_params(candidate, pset), expression_size(candidate))
        if best_key is None or key < best_key:
            best, best_values, best_key = candidate, variant_values, key
    values.clear()
    values.update(best_values)
    return best
