"""Symbolic-regression output → lawsearch proposals (shared by the Operon and PySR proposers).

Two parts: :func:`translate` / :func:`combine` (engine expression text → law), and
:class:`SRProposer`, the engine-independent proposer loop (which rows, direct or
residual runs, deduplication) that :mod:`.operon` and :mod:`.pysr` fill in with
one engine call each.

Translation
-----------

An SR engine writes an expression over its own variable names (Operon ``X1..Xn``,
PySR ``x0..x{n-1}``) with its fitted constants written out as numbers, e.g.::

    ((1.690000 + (406.400000 * (X1 ^ (-0.340000)))) + (410.700000 * (X2 ^ (-0.280000))))

:func:`translate` turns such a string into a :class:`~lawsearch.formula.Law` of the task:

1. engine-specific function names are rewritten into our grammar on the Python
   *syntax tree* (``square(a)`` → ``a**2``, ``inv(a)`` → ``1/a`` …; see
   :func:`rewrite_calls`) — the text is parsed with :func:`ast.parse`, never evaluated;
2. the text goes through the safe parser (:meth:`Law.parse`, which reads ``^`` as a power);
3. every floating-point number becomes a fresh parameter (its engine value is kept
   as an initial value), except integral exponents (``x^2``), which stay integers;
4. the engine's variables become the task inputs — ``log(input)`` where the engine
   ran on log-transformed inputs, and ``exp(k*log(x))`` is then rewritten ``x**k``;
5. redundant parameters are merged: a sub-expression that contains no input
   and holds a parameter used nowhere else is replaced by that one parameter
   (``b*(c*N)**e`` → ``b*N**e``, ``a + b + x`` → ``a + x``, ``-p*x`` → ``p*x``).  The
   same is tried on the expanded expression (``(c*x)**e`` → ``c**e*x**e``,
   ``exp(a+u)`` → ``exp(a)*exp(u)``, products over sums; ``p**g(x)`` →
   ``exp(g(x)*log(p))``) and the variant with fewer parameters wins;
6. parameters are renamed ``c0, c1, …`` (avoiding input names), and the result
   is printed and parsed back with :meth:`Law.parse`, so the formula text a
   proposer returns is exactly what the search will read.

Nothing here calls ``eval``, ``exec``, ``sympify`` or ``parse_expr``.

The proposer loop
-----------------
Each :meth:`SRProposer.propose` call runs one engine search on the search-train
rows (never validation or test rows), seeded from ``context.rng``:

- *direct* runs model the target; they alternate between raw inputs and
  ``log(inputs)`` (inputs that are positive on every row), each with its operator set;
- once the search has scored laws (``context.best``), *residual* runs
  co-optimize form and parameters: a parent law (one of the best three) is
  refitted with the shared fitter, the engine models the residual ``y - f(x)``
  (proposed as ``parent + correction``) or the ratio ``y / f(x)`` (proposed as
  ``parent * (1 + correction)``), and the loop keeps what validates best.

Groups are pooled (the engine finds one form; our fitter refits it per group);
with several groups the target is first standardized within each group so that
group offsets and scales do not swamp the shape.  The whole front is translated;
proposals alternate best-criterion-first and shortest-first, skip laws already
proposed or already in ``context.best``, and unused translations are kept for
the next call.
"""

from __future__ import annotations

import ast
import dataclasses
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from ..errors import FitError, FormulaError, LawsearchError
from ..formula import Law
from .base import Proposal, SearchContext

__all__ = [
    "Translation",
    "translate",
    "combine",
    "rewrite_calls",
    "merge_parameters",
    "PYSR_FUNCTIONS",
    "MAX_INTEGER_EXPONENT",
    "EngineModel",
    "SRJob",
    "SRProposer",
]

log = logging.getLogger(__name__)

MAX_INTEGER_EXPONENT = 4  # a float exponent this close to an integer k, |k| <= this, stays k
_INTEGRAL_TOLERANCE = 1e-9
_MAX_EXPANDED_GROWTH = 3.0  # the expanded variant is dropped if it is this many times larger


# ---------------------------------------------------------------------- text rewriting
def _pow(base: ast.expr, exponent: int) -> ast.expr:
    return ast.BinOp(left=base, op=ast.Pow(), right=ast.Constant(exponent))


def _call(name: str, *args: ast.expr) -> ast.expr:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


CallRewrite = Callable[[list[ast.expr]], ast.expr]

#: PySR / SymbolicRegression.jl operator names → our grammar (by syntax-tree rewrite).
PYSR_FUNCTIONS: dict[str, CallRewrite] = {
    "square": lambda a: _pow(a[0], 2),
    "cube": lambda a: _pow(a[0], 3),
    "neg": lambda a: ast.UnaryOp(op=ast.USub(), operand=a[0]),
    "inv": lambda a: ast.BinOp(left=ast.Constant(1), op=ast.Div(), right=a[0]),
    "plus": lambda a: ast.BinOp(left=a[0], op=ast.Add(), right=a[1]),
    "sub": lambda a: ast.BinOp(left=a[0], op=ast.Sub(), right=a[1]),
    "mult": lambda a: ast.BinOp(left=a[0], op=ast.Mult(), right=a[1]),
    "div": lambda a: ast.BinOp(left=a[0], op=ast.Div(), right=a[1]),
    "safe_pow": lambda a: ast.BinOp(left=a[0], op=ast.Pow(), right=a[1]),
    "pow_abs": lambda a: ast.BinOp(left=_call("abs", a[0]), op=ast.Pow(), right=a[1]),
    "safe_log": lambda a: _call("log", a[0]),
    "safe_log2": lambda a: _call("log2", a[0]),
    "safe_log10": lambda a: _call("log10", a[0]),
    "safe_log1p": lambda a: _call("log1p", a[0]),
    "safe_sqrt": lambda a: _call("sqrt", a[0]),
    "log_abs": lambda a: _call("log", _call("abs", a[0])),
    "log10_abs": lambda a: _call("log10", _call("abs", a[0])),
    "log2_abs": lambda a: _call("log2", _call("abs", a[0])),
    "log1p_abs": lambda a: _call("log1p", _call("abs", a[0])),
    "sqrt_abs": lambda a: _call("sqrt", _call("abs", a[0])),
    "logm": lambda a: _call("log", _call("abs", a[0])),
    "sqrtm": lambda a: _call("sqrt", _call("abs", a[0])),
}
_ARITY = {
    "square": 1, "cube": 1, "neg": 1, "inv": 1, "plus": 2, "sub": 2, "mult": 2, "div": 2,
    "safe_pow": 2, "pow_abs": 2,
}


class _CallRewriter(ast.NodeTransformer):
    def __init__(self, mapping: Mapping[str, CallRewrite]) -> None:
        self.mapping = mapping

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in self.mapping and not node.keywords:
            name = node.func.id
            arity = _ARITY.get(name, 1)
            if len(node.args) != arity:
                raise FormulaError(f"{name}() takes {arity} argument(s), got {len(node.args)}")
            return self.mapping[name](list(node.args))
        return node


# Julia writes Float32 literals as 1.5f-5 / 2.0f0; a negative literal right before '^' must stay
# the base of the power ((-0.5)^x), which Python's precedence would otherwise read as -(0.5^x).
_JULIA_FLOAT = re.compile(r"(?<![\w.])(\d+\.?\d*|\.\d+)[fF]([+-]?\d+)\b")
_NEG_BASE = re.compile(r"(^|[(,*/+\-^]\s*)-(\d+\.?\d*(?:[eE][+-]?\d+)?)\s*\^")


def rewrite_calls(text: str, mapping: Mapping[str, CallRewrite]) -> str:
    """Rewrite calls of engine functions (``square(a)`` …) into our grammar, on the syntax tree.

    ``^`` is read as a power.  The text is only parsed (:func:`ast.parse`), never run.
    """
    body = _JULIA_FLOAT.sub(r"\1e\2", text.strip())
    body = _NEG_BASE.sub(r"\1(-\2)^", body).replace("^", "**")
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"cannot parse engine expression {text.strip()!r}: {exc.msg}") from None
    tree = ast.fix_missing_locations(_CallRewriter(mapping).visit(tree))
    return ast.unparse(tree)


# ---------------------------------------------------------------------- sympy passes
def _count(expr: sympy.Basic, symbols: set[sympy.Symbol]) -> Counter:
    return Counter(node for node in sympy.preorder_traversal(expr) if node in symbols)


def _param_only(expr: sympy.Basic, params: set[sympy.Symbol]) -> bool:
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
            if _param_only(e, pset):
                keep = private_in(e, counts)
                if keep is not None:
                    values[keep] = _value(e, values)
                    changed = True
                    return keep
                return e
            if isinstance(e, (sympy.Add, sympy.Mul)):
                group = [a for a in e.args if _param_only(a, pset)]
                if len(group) >= 2 and any(a.free_symbols for a in group):
                    sub = e.func(*group)
                    keep = private_in(sub, counts)
                    if keep is not None:
                        values[keep] = _value(sub, values)
                        changed = True
                        rest = [a for a in e.args if not _param_only(a, pset)]
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


def _size(expr: sympy.Expr) -> int:
    return sum(1 for _ in sympy.preorder_traversal(expr))


def _n_params(expr: sympy.Expr, params: set[sympy.Symbol]) -> int:
    return len(expr.free_symbols & params)


def _simplify(
    expr: sympy.Expr, params: Sequence[sympy.Symbol], values: dict[sympy.Symbol, float], inputs: set[sympy.Symbol]
) -> sympy.Expr:
    """The variant (as is / expanded) with the fewest parameters after merging, then the smallest."""
    pset = set(params)
    variants = [expr, _constant_base_powers(expr, pset)]
    try:
        expanded = sympy.expand(
            variants[1], deep=True, mul=True, multinomial=False, power_exp=True, power_base=True, log=True, force=True
        )
    except Exception:  # pragma: no cover - sympy internals; the other variants stand
        expanded = None
    if expanded is not None and _size(expanded) <= _MAX_EXPANDED_GROWTH * _size(expr) + 10:
        variants.append(expanded)
    best, best_values, best_key = expr, dict(values), None
    for variant in variants:
        variant_values = dict(values)
        candidate = merge_parameters(_exp_of_log(variant, inputs), params, variant_values)
        key = (_n_params(candidate, pset), _size(candidate))
        if best_key is None or key < best_key:
            best, best_values, best_key = candidate, variant_values, key
    values.clear()
    values.update(best_values)
    return best


# ---------------------------------------------------------------------- translation
@dataclass(frozen=True)
class Translation:
    """An engine expression as a law of the task.

    ``formula`` is the text a proposer returns (``Law.parse(formula, inputs)`` gives ``law``);
    ``init`` the engine's values of the law's parameters (NaN where unknown).
    """

    law: Law
    formula: str
    init: dict[str, float] = field(default_factory=dict)
    source_text: str = ""

    @property
    def n_parameters(self) -> int:
        return self.law.n_parameters


def _numbers_to_parameters(
    expr: sympy.Expr, values: dict[sympy.Symbol, float], params: list[sympy.Symbol]
) -> sympy.Expr:
    """Every Float atom (an engine constant) becomes a fresh symbol (value recorded); integral
    exponents become integers.  Integers and rationals come from the grammar (``sqrt``, ``x^2``) and stay."""

    def fresh(v: float) -> sympy.Symbol:
        s = sympy.Dummy(f"k{len(params)}", real=True)
        params.append(s)
        values[s] = v
        return s

    def rebuild(e: sympy.Expr) -> sympy.Expr:
        if isinstance(e, sympy.Float):
            return fresh(float(e))
        if not e.args:
            return e
        if isinstance(e, sympy.Pow) and isinstance(e.exp, sympy.Float):
            k = round(float(e.exp))
            if abs(float(e.exp) - k) <= _INTEGRAL_TOLERANCE and 0 < abs(k) <= MAX_INTEGER_EXPONENT:
                return sympy.Pow(rebuild(e.base), sympy.Integer(k))
        return e.func(*(rebuild(a) for a in e.args))

    return rebuild(expr)


def _rename(
    expr: sympy.Expr,
    params: Sequence[sympy.Symbol],
    values: Mapping[sympy.Symbol, float],
    taken: set[str],
    prefix: str,
) -> tuple[sympy.Expr, dict[str, float]]:
    """Give the parameters left in ``expr`` the names prefix0, prefix1, … in tree order."""
    present = set(params) & expr.free_symbols
    ordered: list[sympy.Symbol] = []
    for node in sympy.preorder_traversal(expr):
        if node in present and node not in ordered:
            ordered.append(node)
    mapping: dict[sympy.Symbol, sympy.Symbol] = {}
    init: dict[str, float] = {}
    i = 0
    for p in ordered:
        while f"{prefix}{i}" in taken:
            i += 1
        name = f"{prefix}{i}"
        taken.add(name)
        mapping[p] = sympy.Symbol(name, real=True)
        v = values.get(p, math.nan)
        init[name] = float(v) if v is not None and math.isfinite(v) else math.nan
        i += 1
    return expr.xreplace(mapping), init


def _finish(
    expr: sympy.Expr,
    inputs: Sequence[str],
    init: dict[str, float],
    max_parameters: int | None,
    source: str,
    renamable: Iterable[str] = (),
    prefix: str = "c",
) -> Translation:
    law = Law.from_sympy(expr, inputs)
    if not law.variables:
        raise FormulaError(f"engine expression {source!r} uses no input")
    if max_parameters is not None and law.n_parameters > max_parameters:
        raise FormulaError(
            f"engine expression {source!r} needs {law.n_parameters} parameters, more than the {max_parameters} allowed"
        )
    # number the renamable parameters in the order they appear in the printed text
    renamable = set(renamable)
    order = [p for p in Law.parse(law.text, inputs).parameters if p in renamable]
    if order:
        taken = (set(inputs) | set(law.parameters)) - set(order)
        names: list[str] = []
        i = 0
        while len(names) < len(order):
            if f"{prefix}{i}" not in taken:
                names.append(f"{prefix}{i}")
            i += 1
        temporary = {sympy.Symbol(p, real=True): sympy.Dummy(real=True) for p in order}
        final = {d: sympy.Symbol(nm, real=True) for d, nm in zip(temporary.values(), names)}
        law = Law.from_sympy(law.expr.xreplace(temporary).xreplace(final), inputs)
        init = {**init, **{nm: init.get(p, math.nan) for p, nm in zip(order, names)}}
        init = {k: v for k, v in init.items() if k not in set(order) - set(names)}
    formula = law.text
    reparsed = Law.parse(formula, inputs)  # exactly what the search will read
    if reparsed.n_parameters != law.n_parameters or not reparsed.variables:
        raise FormulaError(f"engine expression {source!r} does not survive a round trip as {formula!r}")
    return Translation(
        law=reparsed, formula=formula, init={p: init.get(p, math.nan) for p in reparsed.parameters}, source_text=source
    )


def _to_expr(
    text: str,
    variables: Sequence[str],
    inputs: Sequence[str],
    transforms: Sequence[str],
    functions: Mapping[str, CallRewrite] | None,
    positive: set[str],
    values: dict[sympy.Symbol, float],
    params: list[sympy.Symbol],
) -> sympy.Expr:
    """Parse safely, turn numbers into parameters, then put the task inputs in (in that order,
    so one engine constant stays one parameter when sympy splits ``(c*N*D)**e``)."""
    if len(variables) != len(inputs):
        raise ValueError(f"{len(variables)} engine variables for {len(inputs)} inputs")
    if len(transforms) != len(inputs) or not set(transforms) <= {"raw", "log"}:
        raise ValueError(f"transforms must be 'raw' or 'log' per input, got {transforms!r}")
    body = rewrite_calls(text, functions) if functions else text
    parsed = Law.parse(body, variables)
    if parsed.parameters:
        raise FormulaError(f"engine expression {text.strip()!r} has unknown names: {', '.join(parsed.parameters)}")
    expr = _numbers_to_parameters(parsed.expr, values, params)
    substitution = {}
    for var, name, how in zip(variables, inputs, transforms):
        symbol = _input_symbol(name, positive)
        substitution[sympy.Symbol(var, real=True)] = sympy.log(symbol) if how == "log" else symbol
    return expr.xreplace(substitution)


def _input_symbol(name: str, positive: set[str]) -> sympy.Symbol:
    return sympy.Symbol(name, positive=True) if name in positive else sympy.Symbol(name, real=True)


def translate(
    text: str,
    variables: Sequence[str],
    inputs: Sequence[str],
    *,
    transforms: Sequence[str] | None = None,
    functions: Mapping[str, CallRewrite] | None = None,
    max_parameters: int | None = None,
    positive: Iterable[str] = (),
    prefix: str = "c",
    reserved: Iterable[str] = (),
) -> Translation:
    """Translate one engine expression into a law over ``inputs``.

    ``variables[i]`` is the engine's name for ``inputs[i]``; ``transforms[i]`` is
    ``"log"`` where the engine saw ``log(inputs[i])`` (default: all ``"raw"``).
    ``functions`` rewrites engine-specific calls (e.g. :data:`PYSR_FUNCTIONS`).
    ``positive`` names inputs known to be > 0 on the data (and every log-transformed
    input is), which lets sympy split ``(N*D)**a`` and drop ``Abs(N)``; the law's
    symbols are plain real symbols all the same.
    Raises :class:`FormulaError` when the text is rejected, uses no input, or
    needs more than ``max_parameters`` parameters after merging.
    """
    transforms = tuple(transforms) if transforms is not None else ("raw",) * len(inputs)
    positive_set = set(positive) | {n for n, how in zip(inputs, transforms) if how == "log"}
    values: dict[sympy.Symbol, float] = {}
    params: list[sympy.Symbol] = []
    expr = _to_expr(text, variables, inputs, transforms, functions, positive_set, values, params)
    input_symbols = {_input_symbol(n, positive_set) for n in inputs}
    expr = _simplify(expr, params, values, input_symbols)
    expr, init = _rename(expr, params, values, set(inputs) | set(reserved), prefix)
    return _finish(expr, inputs, init, max_parameters, text.strip(), renamable=init, prefix=prefix)


def combine(
    parent: Law,
    correction: Translation,
    how: str,
    *,
    max_parameters: int | None = None,
    prefix: str = "c",
) -> Translation:
    """``parent + correction`` (``how="add"``) or ``parent * (1 + correction')`` (``how="mul"``).

    The correction's parameters are renamed away from the parent's; redundant
    ones are merged (e.g. the correction's constant into the parent's), keeping
    the parent's parameter names.  For ``"mul"`` the correction is a model of the
    ratio ``y / parent`` (≈ ``a + b*g(x)``); its input-free terms are dropped and
    replaced by 1, so the result is ``parent * (1 + b*g(x))``.
    """
    if how not in ("add", "mul"):
        raise ValueError(f"how must be 'add' or 'mul', got {how!r}")
    if tuple(parent.inputs) != tuple(correction.law.inputs):
        raise ValueError("parent and correction must be laws over the same inputs")
    inputs = parent.inputs
    parent_params = [sympy.Symbol(p, real=True) for p in parent.parameters]
    # correction parameters -> dummies (no clash with the parent's names)
    dummies = {
        sympy.Symbol(p, real=True): sympy.Dummy(f"q{i}", real=True) for i, p in enumerate(correction.law.parameters)
    }
    values: dict[sympy.Symbol, float] = {
        d: correction.init.get(s.name, math.nan) for s, d in dummies.items()
    }
    corr = correction.law.expr.xreplace(dummies)
    if how == "mul":
        pset = set(dummies.values())
        terms = [t for t in sympy.Add.make_args(corr) if not _param_only(t, pset)]
        if not terms:
            raise FormulaError("the correction is a constant")
        corr = sympy.Add(*terms)
        # a single term b*g(x): keep b as the relative size of the correction
        expr = parent.expr * (1 + corr)
    else:
        expr = parent.expr + corr
    params = parent_params + list(dummies.values())
    expr = merge_parameters(expr, params, values, frozen=parent_params)
    taken = set(inputs) | {s.name for s in expr.free_symbols}
    expr, init = _rename(expr, list(dummies.values()), values, taken, prefix)
    renamable = set(init)
    init = {**{p: math.nan for p in parent.parameters}, **init}
    source = f"{how}({parent.text}, {correction.formula})"
    return _finish(expr, inputs, init, max_parameters, source, renamable=renamable, prefix=prefix)


# ---------------------------------------------------------------------- the proposer loop
MIN_ROWS = 5
_QUEUE_LIMIT = 64


@dataclass(frozen=True)
class EngineModel:
    """One model of an engine's front: its text, size, training loss and selection criterion (lower is better)."""

    expression: str
    length: int
    loss: float = math.nan
    criterion: float = math.nan


@dataclass(frozen=True)
class SRJob:
    """One engine run: ``mode`` is ``direct``, ``add`` (residual) or ``mul`` (ratio)."""

    mode: str
    transform: str  # "raw" | "log" (the inputs actually log-transformed are decided per input)
    operators: tuple[str, ...]
    target: int
    parent: str | None = None


@dataclass
class _Candidate:
    translation: Translation
    job: SRJob
    transforms: tuple[str, ...]
    model: EngineModel
    seed: int


class SRProposer:
    """Engine-independent proposer loop; subclasses implement :meth:`_load`, :meth:`_variants`,
    :meth:`_search` and :meth:`_placeholders` (and may set :attr:`functions`).

    ``settings`` must have ``residual_runs``, ``max_rows`` and ``standardize_groups``.
    """

    name = "sr"
    functions: Mapping[str, CallRewrite] | None = None

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._calls = 0
        self._residual_calls = 0
        self._seen: set[str] = set()
        self._queue: list[tuple[str, Proposal]] = []  # (canonical key, proposal) left over from earlier runs
        self._deadline: float | None = None  # time.time() by which a run must end (SearchContext.deadline)
        self.last_run: dict[str, Any] = {}

    def _engine_seconds(self) -> float:
        """Seconds until the context's deadline (infinite without one): an engine run is cut to it."""
        return math.inf if self._deadline is None else self._deadline - time.time()

    # ------------------------------------------------------------------ engine hooks
    def _load(self) -> Any:  # pragma: no cover - abstract
        """Import the engine or raise :class:`EngineUnavailable`."""
        raise NotImplementedError

    def _variants(self) -> list[tuple[str, tuple[str, ...]]]:  # pragma: no cover - abstract
        """The (input transform, operator set) pairs direct runs alternate between."""
        raise NotImplementedError

    def _search(
        self, engine: Any, X: np.ndarray, y: np.ndarray, job: SRJob, seed: int
    ) -> list[EngineModel]:  # pragma: no cover - abstract
        """Run the engine on (X, y) and return its whole front."""
        raise NotImplementedError

    def _placeholders(self, n: int) -> list[str]:  # pragma: no cover - abstract
        """The engine's names of the n columns of X."""
        raise NotImplementedError

    # ------------------------------------------------------------------ protocol
    def check_available(self) -> None:
        """Raise :class:`EngineUnavailable` now if the engine cannot run (before a search relies on it)."""
        self._load()

    def propose(self, context: SearchContext, n: int) -> list[Proposal]:
        engine = self._load()
        self._deadline = context.deadline
        if n <= 0 or self._engine_seconds() <= 0:
            return []
        seed = int(context.rng.integers(0, 2**31 - 1))
        job = self._next_job(context)
        self._calls += 1
        started = time.perf_counter()
        fresh: list[_Candidate] = []
        error = ""
        try:
            fresh = self._run_job(engine, context, job, seed)
        except LawsearchError as exc:
            error = str(exc)
            log.info("%s: %s run skipped: %s", self.name, job.mode, exc)
        except Exception as exc:  # an engine failure never stops the search
            error = f"{type(exc).__name__}: {exc}"
            log.warning("%s: %s run failed: %s", self.name, job.mode, error)
        self.last_run = {
            "mode": job.mode,
            "transform": job.transform,
            "operators": ",".join(job.operators),
            "target": context.targets[job.target] if context.targets else "",
            "parent": job.parent,
            "seed": seed,
            "seconds": round(time.perf_counter() - started, 3),
            "translated": len(fresh),
            "error": error,
        }
        known = self._known(context)
        chosen: list[Proposal] = []
        leftovers: list[tuple[str, Proposal]] = []
        for key, proposal in [*((c.translation.law.canonical, self._proposal(c)) for c in fresh), *self._queue]:
            if key in known:
                continue
            known.add(key)
            if len(chosen) < n:
                self._seen.add(key)
                chosen.append(proposal)
            else:
                leftovers.append((key, proposal))
        self._queue = leftovers[:_QUEUE_LIMIT]
        return chosen

    def close(self) -> None:
        self._queue.clear()

    def state_dict(self) -> dict[str, Any]:
        """What the next calls depend on (JSON-ready), for the run's checkpoint."""
        return {"calls": self._calls, "residual_calls": self._residual_calls, "seen": sorted(self._seen),
                "queue": [{"key": key, "formula": p.formula, "parents": list(p.parents), "note": p.note,
                           "meta": p.meta} for key, p in self._queue]}

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (a resumed run makes the calls an uninterrupted one would)."""
        self._calls = int(state["calls"])
        self._residual_calls = int(state["residual_calls"])
        self._seen = set(state["seen"])
        self._queue = [(item["key"], Proposal(formula=item["formula"], source=self.name,
                                              parents=tuple(item["parents"]), note=item["note"],
                                              meta=item["meta"])) for item in state["queue"]]

    # ------------------------------------------------------------------ jobs
    def _known(self, context: SearchContext) -> set[str]:
        known = set(self._seen)
        for scored in context.best:
            try:
                known.add(Law.parse(scored.formula, context.inputs).canonical)
            except LawsearchError:
                continue
        return known

    def _next_job(self, context: SearchContext) -> SRJob:
        """Direct runs on each variant first; then residual, ratio and direct runs in turn."""
        variants = self._variants()
        k = self._calls
        n_targets = max(1, len(context.targets))
        target = (k // len(variants)) % n_targets
        residual_ok = bool(self.settings.residual_runs) and bool(context.best)
        if k < len(variants) or not residual_ok:
            transform, ops = variants[k % len(variants)]
            return SRJob("direct", transform, ops, target)
        r = k - len(variants)
        mode = ("add", "mul", "direct")[r % 3]
        transform, ops = variants[(r // 3) % len(variants)]
        if mode == "direct":
            return SRJob("direct", transform, ops, target)
        parents = context.best[: min(3, len(context.best))]
        parent = parents[self._residual_calls % len(parents)].formula
        self._residual_calls += 1
        return SRJob(mode, transform, ops, target, parent)

    @staticmethod
    def _transforms(context: SearchContext, job: SRJob) -> tuple[str, ...]:
        """Per input: ``"log"`` in a log run where the input is positive on every finite row."""
        if job.transform != "log":
            return ("raw",) * len(context.inputs)
        X = np.asarray(context.X, dtype=float)
        out = []
        for j in range(len(context.inputs)):
            col = X[:, j][np.isfinite(X[:, j])]
            out.append("log" if col.size and np.all(col > 0) else "raw")
        return tuple(out)

    def _rows(self, context: SearchContext, job: SRJob, rng: np.random.Generator) -> np.ndarray:
        X = np.asarray(context.X, dtype=float)
        Y = np.asarray(context.Y, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        ok = np.all(np.isfinite(X), axis=1) & np.isfinite(Y[:, job.target])
        rows = np.flatnonzero(ok)
        if rows.size > self.settings.max_rows:
            rows = np.sort(rng.choice(rows, size=self.settings.max_rows, replace=False))
        return rows

    def _run_job(self, engine: Any, context: SearchContext, job: SRJob, seed: int) -> list[_Candidate]:
        rng = np.random.default_rng(seed)
        if not context.inputs or np.asarray(context.X).size == 0:
            return []
        transforms = self._transforms(context, job)
        if job.transform == "log" and "log" not in transforms:
            # no input is positive throughout: run on raw inputs with the raw variant's operators
            raw = [v for v in self._variants() if v[0] == "raw"] or [("raw", job.operators)]
            job = dataclasses.replace(job, transform="raw", operators=raw[0][1])
        rows = self._rows(context, job, rng)
        if rows.size < MIN_ROWS:
            return []
        X = np.asarray(context.X, dtype=float)[rows]
        Y = np.asarray(context.Y, dtype=float)
        Y = (Y[:, None] if Y.ndim == 1 else Y)[rows]
        groups = np.asarray(context.groups)[rows] if len(context.groups) else np.zeros(rows.size)
        y = Y[:, job.target].astype(float)
        parent: Law | None = None
        if job.mode != "direct":
            parent = Law.parse(job.parent or "", context.inputs)
            pred = self._parent_predictions(parent, X, Y[:, [job.target]], groups, context, job, seed)
            with np.errstate(all="ignore"):
                y = y - pred if job.mode == "add" else y / pred
                scale = float(np.nanmax(np.abs(pred))) if np.any(np.isfinite(pred)) else 0.0
            keep = np.isfinite(y) & np.isfinite(pred) & (np.abs(pred) > 1e-12 * max(1.0, scale))
            X, y, groups = X[keep], y[keep], groups[keep]
            if y.size < MIN_ROWS:
                return []
        if self.settings.standardize_groups:
            y = _standardize_by_group(y, groups)
        if not np.all(np.isfinite(y)) or float(np.ptp(y)) == 0.0:
            return []
        features = X.copy()
        for j, how in enumerate(transforms):
            if how == "log":
                features[:, j] = np.log(X[:, j])
        positive = [n for j, n in enumerate(context.inputs) if np.all(X[:, j] > 0)]
        front = self._search(engine, features, y, job, seed)
        placeholders = self._placeholders(len(context.inputs))
        out: list[_Candidate] = []
        for model in front:
            try:
                tr = translate(
                    model.expression,
                    placeholders,
                    context.inputs,
                    transforms=transforms,
                    functions=self.functions,
                    positive=positive,
                    max_parameters=None if parent is not None else context.max_parameters,
                )
                if parent is not None:
                    tr = combine(parent, tr, job.mode, max_parameters=context.max_parameters)
            except (FormulaError, ValueError) as exc:
                log.debug("%s: dropped %r: %s", self.name, model.expression, exc)
                continue
            out.append(_Candidate(tr, job, transforms, model, seed))
        return _interleave(out)

    def _parent_predictions(
        self,
        parent: Law,
        X: np.ndarray,
        Y: np.ndarray,
        groups: np.ndarray,
        context: SearchContext,
        job: SRJob,
        seed: int,
    ) -> np.ndarray:
        """The parent refitted per group on these rows (cheap fitter settings), predicted on them."""
        from ..fit import FitOptions, fit_law

        target = [context.targets[job.target]] if context.targets else ["y"]
        try:
            fitted = fit_law(parent, X, Y, groups, target, FitOptions(n_starts=16, n_local=2), seed=seed)
            pred = fitted.predict(X, groups, target)
        except (FitError, FormulaError) as exc:
            raise FitError(f"parent {parent.text!r} could not be refitted: {exc}") from None
        return np.asarray(pred, dtype=float).reshape(-1)

    def _proposal(self, cand: _Candidate) -> Proposal:
        job = cand.job
        what = {"direct": "direct", "add": "residual: parent + correction", "mul": "ratio: parent * (1 + correction)"}
        ops = ",".join(o for o in job.operators if o not in ("constant", "variable"))
        logged = [n for n, how in zip(cand.translation.law.inputs, cand.transforms) if how == "log"]
        note = f"{self.name} {what[job.mode]}; ops {ops}" + (f"; on log({', '.join(logged)})" if logged else "")
        meta: dict[str, Any] = {
            "engine": self.name,
            "mode": job.mode,
            "transform": job.transform,
            "operators": list(job.operators),
            "target_index": job.target,
            "engine_expression": cand.model.expression,
            "engine_length": cand.model.length,
            "seed": cand.seed,
            "init": {k: float(v) for k, v in cand.translation.init.items() if math.isfinite(v)},
        }
        if math.isfinite(cand.model.loss):
            meta["engine_loss"] = cand.model.loss
        if math.isfinite(cand.model.criterion):
            meta["engine_criterion"] = cand.model.criterion
        parents = (job.parent,) if job.parent else ()
        return Proposal(formula=cand.translation.formula, source=self.name, parents=parents, note=note, meta=meta)


def _interleave(candidates: list[_Candidate]) -> list[_Candidate]:
    """Best criterion first and simplest first, alternately: accurate and short models both come early."""

    def criterion(c: _Candidate) -> float:
        return c.model.criterion if math.isfinite(c.model.criterion) else math.inf

    by_fit = sorted(candidates, key=lambda c: (criterion(c), c.model.length))
    by_size = sorted(candidates, key=lambda c: (c.translation.law.complexity, c.model.length))
    out: list[_Candidate] = []
    seen: set[int] = set()
    for pair in zip(by_fit, by_size):
        for cand in pair:
            if id(cand) not in seen:
                seen.add(id(cand))
                out.append(cand)
    return out


def _standardize_by_group(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``(y - mean_g) / std_g`` within each group, when there are several groups of >= 3 rows."""
    labels = np.asarray(groups)
    unique = list(dict.fromkeys(labels.tolist()))
    if len(unique) < 2:
        return y
    out = y.astype(float).copy()
    for g in unique:
        rows = labels == g
        if rows.sum() < 3:
            continue
        sd = float(np.std(out[rows]))
        out[rows] = (out[rows] - float(np.mean(out[rows]))) / (sd if sd > 0 else 1.0)
    return out
