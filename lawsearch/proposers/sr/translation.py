"""Symbolic-regression output → a law of the task (shared by the Operon and PySR proposers).

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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sympy

from ...errors import FormulaError
from ...formula import Law
from .rewrite import CallRewrite, rewrite_calls
from .simplify import param_only, simplify_variants, merge_parameters


MAX_INTEGER_EXPONENT = 4  # a float exponent this close to an integer k, |k| <= this, stays k
_INTEGRAL_TOLERANCE = 1e-9


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
    expr = simplify_variants(expr, params, values, input_symbols)
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
        terms = [t for t in sympy.Add.make_args(corr) if not param_only(t, pset)]
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
