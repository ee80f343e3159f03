"""Mutation proposer: symbolic edits and crossover of the best laws found so far.

Parents are drawn from ``context.best`` by tournament (lower validation error
wins).  Each mutation is a small function that edits the parent's sympy tree
and returns the new tree (or None where it does not apply); trees are built
from sympy objects directly, never from text.  Every child is tidied lightly
(:func:`tidy`: constant-only factors and terms merged into one parameter,
``(x^a)^b`` → ``x^(a·b)``; no ``simplify``), must survive the round trip
text → :meth:`Law.parse`, use at least one input, respect
``max_parameters`` and differ from its parents, from the laws already scored
(``context.seen``, ``context.best``) and from the other proposals of the batch.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import sympy

from ..errors import FormulaError, ProposerError
from ..formula import Law
from ..formula.structure import expression_size
from .base import Proposal, ScoredLaw, SearchContext
from .library import Columns, ParameterNames, round_trip

__all__ = ["MutationProposer", "MUTATIONS", "crossover", "tidy"]

Path = tuple[int, ...]
T = TypeVar("T")


# ---------------------------------------------------------------------------------- tree helpers
def _nodes(expr: sympy.Expr, path: Path = ()) -> Iterator[tuple[Path, sympy.Expr]]:
    """Every subtree with its path (argument indices from the root), in preorder."""
    yield path, expr
    for i, arg in enumerate(expr.args):
        yield from _nodes(arg, (*path, i))


def _replace(expr: sympy.Expr, path: Path, new: sympy.Expr) -> sympy.Expr:
    """``expr`` with the subtree at ``path`` replaced by ``new``."""
    if not path:
        return new
    args = list(expr.args)
    args[path[0]] = _replace(args[path[0]], path[1:], new)
    return expr.func(*args)


def _split_product(node: sympy.Expr, inputs: frozenset[sympy.Symbol]) -> tuple[sympy.Expr, sympy.Expr]:
    """(the constant factors, the factors with inputs) of a product; a non-product is one factor."""
    factors = node.args if isinstance(node, sympy.Mul) else (node,)
    return (
        sympy.Mul(*(f for f in factors if not f.free_symbols & inputs)),
        sympy.Mul(*(f for f in factors if f.free_symbols & inputs)),
    )


def _symbol_counts(expr: sympy.Expr) -> Counter:
    return Counter(node for node in sympy.preorder_traversal(expr) if node.is_Symbol)


class _Tidy:
    """Light clean-up after an edit (milliseconds, unlike ``simplify``); see :func:`tidy`."""

    def __init__(self, expr: sympy.Expr, columns: Columns) -> None:
        self.counts = _symbol_counts(expr)
        self.inputs = columns.symbols
        self.positive = frozenset(columns.x(n) for n in columns.positive)

    def constant(self, node: sympy.Expr) -> bool:
        return not node.free_symbols & self.inputs

    def collapse(self, pure: sympy.Expr) -> sympy.Expr:
        """A constant-only subtree as one parameter (keeping a minus sign) where its parameters
        appear nowhere else in the law; unchanged otherwise."""
        params = sorted(pure.free_symbols, key=lambda s: s.name)
        if not params or pure.is_Symbol or (-pure).is_Symbol:
            return pure
        local = _symbol_counts(pure)
        if any(local[s] != self.counts[s] for s in params):
            return pure
        return -params[0] if pure.could_extract_minus_sign() else params[0]

    def single(self, pure: sympy.Expr) -> sympy.Expr | None:
        """``collapse(pure)`` if that is one (signed) parameter, else None."""
        merged = self.collapse(pure)
        return merged if merged.is_Symbol or (-merged).is_Symbol else None

    def visit(self, node: sympy.Expr) -> sympy.Expr:
        if not node.args:
            return node
        if self.constant(node):
            return self.collapse(node)
        args = [self.visit(a) for a in node.args]
        if isinstance(node, sympy.Add):
            return sympy.Add(*self.merge(args, sympy.Add, self.split_term, lambda rest, c: c * rest))
        if isinstance(node, sympy.Mul):
            plain = sympy.Mul(*self.merge(args, sympy.Mul, self.split_factor, sympy.Pow))
            split = [f for a in args for f in self.split_exp(a)]
            if len(split) == len(args):
                return plain
            merged = sympy.Mul(*self.merge(split, sympy.Mul, self.split_factor, sympy.Pow))
            return merged if len(merged.free_symbols) < len(plain.free_symbols) else plain
        if isinstance(node, sympy.Pow) and isinstance(args[0], sympy.Pow):
            (base, inner), outer = args[0].args, args[1]
            if self.constant(inner * outer) and base.free_symbols & self.inputs <= self.positive:
                return sympy.Pow(base, self.collapse(inner * outer))
        return node.func(*args)

    def split_exp(self, factor: sympy.Expr) -> list[sympy.Expr]:
        """``exp(c + f)`` as the factors ``[exp(c), exp(f)]`` (so ``A·exp(c + f)`` can merge into
        ``A·exp(f)``); any other factor as ``[factor]``."""
        if not (isinstance(factor, sympy.exp) and isinstance(factor.args[0], sympy.Add)):
            return [factor]
        constant = [t for t in factor.args[0].args if self.constant(t)]
        if not constant or len(constant) == len(factor.args[0].args):
            return [factor]
        rest = [t for t in factor.args[0].args if not self.constant(t)]
        return [sympy.exp(sympy.Add(*constant)), sympy.exp(sympy.Add(*rest))]

    def split_term(self, term: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
        """(the factors with inputs, the constant coefficient) of a term of a sum."""
        coefficient, rest = _split_product(term, self.inputs)
        return rest, coefficient

    def split_factor(self, factor: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr] | None:
        """(base, constant exponent) of a factor that is a power of positive inputs, else None."""
        base, exponent = factor.as_base_exp()
        if self.constant(exponent) and base.free_symbols & self.inputs <= self.positive:
            return base, exponent
        return None

    def merge(
        self,
        args: list[sympy.Expr],
        combine: Callable[..., sympy.Expr],
        split: Callable[[sympy.Expr], tuple[sympy.Expr, sympy.Expr] | None],
        join: Callable[[sympy.Expr, sympy.Expr], sympy.Expr],
    ) -> list[sympy.Expr]:
        """The arguments of a sum (product) with its constant ones merged into one parameter, and like
        terms ``A·u + B·u`` → ``A·u`` (powers ``u^a·u^b`` → ``u^a``) where the merged constant is one
        parameter.  ``split`` gives (key, constant) of an argument; ``join`` rebuilds one."""
        constants = [a for a in args if self.constant(a)]
        merged = [self.collapse(combine(*constants))] if len(constants) > 1 else constants
        groups: dict[sympy.Expr, list[tuple[sympy.Expr, sympy.Expr | None]]] = {}
        for arg in args:
            if not self.constant(arg):
                key, value = split(arg) or (arg, None)
                groups.setdefault(key, []).append((arg, value))
        for key, members in groups.items():
            values = [v for _, v in members if v is not None]
            one = self.single(sympy.Add(*values)) if len(values) == len(members) > 1 else None
            merged += [arg for arg, _ in members] if one is None else [join(key, one)]
        return merged


def tidy(expr: sympy.Expr, columns: Columns) -> sympy.Expr:
    """Light clean-up after an edit (no ``simplify``: it must take milliseconds).

    Constant-only factors of a product, or terms of a sum, become one parameter
    (``k·A·x`` → ``A·x``, ``E + c`` → ``E``, ``x^(a·b)`` → ``x^a``) where their
    parameters appear nowhere else; so do like terms (``A·log x + B·log x`` →
    ``A·log x``) and powers of one base (``x^(−a)·x^(−b)`` → ``x^(−a)``);
    ``(u^a)^b`` becomes ``u^(a·b)`` where u has only positive inputs, and
    ``A·exp(c + f)`` becomes ``A·exp(f)``.
    """
    return _Tidy(expr, columns).visit(expr)


# ---------------------------------------------------------------------------------- one edit
@dataclass
class _Edit:
    """One mutation in progress: the parent's tree, the task's columns, fresh names and the rng."""

    expr: sympy.Expr
    columns: Columns
    names: ParameterNames
    rng: np.random.Generator

    def pick(self, items: Sequence[T]) -> T:
        return items[int(self.rng.integers(len(items)))]

    def has_input(self, node: sympy.Expr) -> bool:
        return bool(node.free_symbols & self.columns.symbols)

    def positive(self, node: sympy.Expr) -> bool:
        """Whether every input in ``node`` is positive (so logs and powers of it are safe)."""
        return all(s.name in self.columns.positive for s in node.free_symbols & self.columns.symbols)

    def subtrees(self) -> list[tuple[Path, sympy.Expr]]:
        """Subtrees that contain an input."""
        return [(p, node) for p, node in _nodes(self.expr) if self.has_input(node)]

    def terms(self) -> list[tuple[Path, sympy.Expr]]:
        """The terms of the top-level sum that contain an input (the whole law if it is no sum)."""
        if isinstance(self.expr, sympy.Add):
            return [((i,), a) for i, a in enumerate(self.expr.args) if self.has_input(a)]
        return [((), self.expr)]

    def decay(self, name: str) -> sympy.Expr:
        """x^(−β) for a positive input, exp(β·x) for one that may be ≤ 0."""
        x = self.columns.x(name)
        if name in self.columns.positive:
            return x ** (-self.names.exponent())
        return sympy.exp(self.names.exponent() * x)


Mutation = Callable[[_Edit], sympy.Expr | None]


def add_term(e: _Edit) -> sympy.Expr:
    """Add a term: A·x^(−α), B·log x (B·x where x may be ≤ 0) or C·z_i·z_j."""
    inputs = e.columns.inputs
    kind = e.pick(("power", "log", "product") if len(inputs) > 1 else ("power", "log"))
    if kind == "product":
        i, j = e.rng.choice(len(inputs), size=2, replace=False)
        return e.expr + e.names.coefficient() * e.columns.z(inputs[i]) * e.columns.z(inputs[j])
    name = e.pick(inputs)
    term = e.decay(name) if kind == "power" else e.columns.z(name)
    return e.expr + e.names.coefficient() * term


def multiply_term(e: _Edit) -> sympy.Expr:
    """Multiply one term (or the whole law) by x^(−β) (exp(β·x) where x may be ≤ 0)."""
    path, term = e.pick(e.terms())
    return _replace(e.expr, path, term * e.decay(e.pick(e.columns.inputs)))


def remove_term(e: _Edit) -> sympy.Expr | None:
    """Drop one argument of a sum."""
    sums = [(p, node) for p, node in _nodes(e.expr) if isinstance(node, sympy.Add)]
    if not sums:
        return None
    path, node = e.pick(sums)
    drop = int(e.rng.integers(len(node.args)))
    return _replace(e.expr, path, sympy.Add(*(a for i, a in enumerate(node.args) if i != drop)))


def _swaps(e: _Edit, node: sympy.Expr) -> list[Callable[[], sympy.Expr]]:
    """The operator swaps that apply to one node (built only when chosen, so unused ones take no names)."""
    if isinstance(node, sympy.exp):
        k, u = _split_product(node.args[0], e.columns.symbols)
        return [lambda: u ** (k if k != 1 else e.names.exponent())] if e.positive(u) else []
    if isinstance(node, sympy.Pow) and not e.has_input(node.exp):
        u, k = node.args
        return [lambda: sympy.exp(k * u)] + ([lambda: sympy.log(u)] if e.positive(u) else [])
    if isinstance(node, sympy.log):
        return [lambda: node.args[0] ** e.names.exponent()]
    inner = [a for a in node.args if e.has_input(a)]
    const = [a for a in node.args if not e.has_input(a)]
    if len(inner) < 2:
        return []
    if isinstance(node, sympy.Add):
        return [lambda: sympy.Add(*const, sympy.Mul(*inner))]
    if isinstance(node, sympy.Mul):
        return [lambda: sympy.Mul(*const, inner[0] + sympy.Add(*(e.names.coefficient() * t for t in inner[1:])))]
    return []


def swap_operator(e: _Edit) -> sympy.Expr | None:
    """Swap an operator: exp(k·u) → u^k, u^k → exp(k·u) or log u, log u → u^p, a + b ↔ a·b."""
    options = [(path, swap) for path, node in e.subtrees() for swap in _swaps(e, node)]
    if not options:
        return None
    path, swap = e.pick(options)
    return _replace(e.expr, path, swap())


def wrap(e: _Edit) -> sympy.Expr:
    """Give a subtree f its own parameter: f^p (f of positive inputs), f + c, or k·f (f no sum)."""
    path, f = e.pick(e.subtrees())
    kinds = ["offset"] + (["power"] if e.positive(f) else []) + ([] if isinstance(f, sympy.Add) else ["scale"])
    kind = e.pick(kinds)
    if kind == "power":
        new = f ** e.names.exponent()
    elif kind == "offset":
        new = f + e.names.new("c")
    else:
        new = e.names.new("k") * f
    return _replace(e.expr, path, new)


MAX_LOG_DEPTH = 2  # logs nested around one input


def _log_depth(expr: sympy.Expr, x: sympy.Symbol) -> int:
    """How many logs are nested around ``x`` at most in ``expr``."""
    if expr == x:
        return 0
    depths = [_log_depth(arg, x) for arg in expr.args if x in arg.free_symbols]
    if not depths:
        return 0
    return max(depths) + (1 if isinstance(expr, sympy.log) else 0)


def substitute_variable(e: _Edit) -> sympy.Expr:
    """Replace an input x everywhere by log x, x^p, x/(x + K) or x + K (only x + K where x may be ≤ 0)."""
    used = sorted(e.expr.free_symbols & e.columns.symbols, key=lambda s: s.name)
    x = e.pick(used)
    kinds = ("log", "power", "saturate", "shift") if x.name in e.columns.positive else ("shift",)
    if _log_depth(e.expr, x) >= MAX_LOG_DEPTH:  # log(log(x)) at most: deeper shapes only fit noise
        kinds = tuple(k for k in kinds if k != "log")
    kind = e.pick(kinds)
    if kind == "log":
        new = sympy.log(x)
    elif kind == "power":
        new = x ** e.names.exponent()
    elif kind == "saturate":
        new = x / (x + e.names.new("K"))
    else:
        new = x + e.names.new("K")
    return e.expr.xreplace({x: new})


def free_constant(e: _Edit) -> sympy.Expr | None:
    """Turn a number (an exponent of positive inputs, a term of a sum, a lone coefficient) into a parameter."""
    spots: list[tuple[Path, sympy.Expr]] = []
    for path, node in _nodes(e.expr):
        for i, arg in enumerate(node.args):
            if not arg.is_Number:
                continue
            lone = isinstance(node, sympy.Mul) and all(a.is_Number or e.has_input(a) for a in node.args)
            exponent = isinstance(node, sympy.Pow) and i == 1 and e.has_input(node.base) and e.positive(node.base)
            if exponent or isinstance(node, sympy.Add) or lone:
                spots.append(((*path, i), arg))
    if not spots:
        return None
    path, number = e.pick(spots)
    p = e.names.new("p")
    return _replace(e.expr, path, -p if number < 0 else p)


def drop_parameter(e: _Edit) -> sympy.Expr | None:
    """Fix one parameter at 0 or 1, whichever leaves the smaller law that still has an input."""
    params = sorted(e.expr.free_symbols - e.columns.symbols, key=lambda s: s.name)
    if not params:
        return None
    p = e.pick(params)
    fixed = [e.expr.xreplace({p: sympy.Integer(value)}) for value in (0, 1)]
    valid = [f for f in fixed if e.has_input(f) and not f.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)]
    smallest = min(valid, key=expression_size, default=None)
    return smallest if smallest is not None and expression_size(smallest) < expression_size(e.expr) else None


def vary_parameter(e: _Edit) -> sympy.Expr | None:
    """Let a parameter move with another input: p → p + γ·log y (γ·y where y may be ≤ 0).

    An exponent that moves with log y is a log-log interaction (x^(−α−γ·log y)); the location of a
    valley that does is an optimum moving as a power law of y; a floor or scale that does, a trend.
    y is an input the law does not use yet, where there is one (else any input).
    """
    params = sorted(e.expr.free_symbols - e.columns.symbols, key=lambda s: s.name)
    if not params:
        return None
    p = e.pick(params)
    used = {s.name for s in e.expr.free_symbols & e.columns.symbols}
    others = [n for n in e.columns.inputs if n not in used] or list(e.columns.inputs)
    return e.expr.xreplace({p: p + e.names.exponent() * e.columns.z(e.pick(others))})


def crossover(e: _Edit, donor: sympy.Expr) -> sympy.Expr:
    """Combine two laws: add one of the donor's terms, or put it in place of one of ours.

    The donor's parameters are renamed where they collide with ours.
    """
    donor_params = sorted(donor.free_symbols - e.columns.symbols, key=lambda s: s.name)
    donor = donor.xreplace({s: e.names.new(s.name) for s in donor_params})
    donor_terms = [a for a in donor.args if e.has_input(a)] if isinstance(donor, sympy.Add) else [donor]
    term = e.pick(donor_terms)
    if isinstance(e.expr, sympy.Add) and e.rng.random() < 0.5:
        path, _ = e.pick(e.terms())
        return _replace(e.expr, path, term)
    return e.expr + term


MUTATIONS: dict[str, Mutation] = {
    "add_term": add_term,
    "multiply_term": multiply_term,
    "remove_term": remove_term,
    "swap_operator": swap_operator,
    "wrap": wrap,
    "substitute_variable": substitute_variable,
    "free_constant": free_constant,
    "drop_parameter": drop_parameter,
    "vary_parameter": vary_parameter,
}


# ---------------------------------------------------------------------------------- proposer
def _error(law: ScoredLaw) -> float:
    return law.val_error if math.isfinite(law.val_error) else math.inf


def _parse_parents(context: SearchContext) -> list[Law]:
    """The archive's distinct laws, best first, parsed (unparseable ones and constants skipped)."""
    laws: list[Law] = []
    for scored in sorted(context.best, key=_error):
        try:
            law = Law.parse(scored.formula, context.inputs, target=context.targets, pairs=context.pairs)
        except FormulaError:
            continue
        if law.variables and law not in laws:
            laws.append(law)
    return laws


def _child(expr: sympy.Expr | None, columns: Columns, cap: float) -> Law | None:
    """The tidied child law if it round-trips through text, uses an input and is within the cap."""
    if expr is None:
        return None
    expr = tidy(expr, columns)
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return None
    law = round_trip(expr, columns.inputs)
    if law is None or not law.variables or law.n_parameters > cap:
        return None
    return law


class MutationProposer:
    """Mutates and crosses over the best laws of the archive (offline, deterministic for a seed).

    ``mutations`` restricts the edits used (names of :data:`MUTATIONS`, plus ``"crossover"``);
    ``tournament`` is the tournament size for picking parents; ``attempts`` bounds the tries per
    proposal wanted (edits that do not apply or give an invalid or repeated law are retried).
    """

    name = "mutate"

    def __init__(self, mutations: Sequence[str] | None = None, tournament: int = 3, attempts: int = 10) -> None:
        names = tuple(mutations) if mutations is not None else (*MUTATIONS, "crossover")
        unknown = sorted(set(names) - set(MUTATIONS) - {"crossover"})
        if unknown or not names:
            raise ProposerError(
                f"unknown mutation(s) {unknown or names}; choose from {', '.join([*MUTATIONS, 'crossover'])}"
            )
        self.mutations = names
        self.tournament = tournament
        self.attempts = attempts

    def propose(self, context: SearchContext, n: int) -> list[Proposal]:
        """Up to ``n`` new laws, each one mutation (or crossover) away from a law in ``context.best``."""
        columns = Columns.from_context(context).with_self(context.pairs)
        parents = _parse_parents(context)
        if not parents:
            return []
        cap = math.inf if context.max_parameters is None else context.max_parameters
        kinds = [m for m in self.mutations if m != "crossover" or len(parents) > 1]
        if not kinds:
            return []
        out: list[Proposal] = []
        seen = context.seen | {law.canonical for law in parents}
        for _ in range(n * self.attempts):
            if len(out) >= n:
                break
            kind = kinds[int(context.rng.integers(len(kinds)))]
            first = self._tournament(parents, context.rng)
            chosen = [first]
            edit = _Edit(first.expr, columns, ParameterNames((*context.inputs, *first.parameters)), context.rng)
            if kind == "crossover":
                others = [p for p in parents if p != first]
                chosen.append(self._tournament(others, context.rng))
                expr = crossover(edit, chosen[1].expr)
            else:
                expr = MUTATIONS[kind](edit)
            child = _child(expr, columns, cap)
            if child is not None and child.canonical not in seen:
                seen.add(child.canonical)
                out.append(
                    Proposal(formula=child.text, source=self.name, parents=tuple(p.text for p in chosen), note=kind)
                )
        return out

    def close(self) -> None:
        """Nothing to release."""

    def _tournament(self, parents: list[Law], rng: np.random.Generator) -> Law:
        """The best (earliest: parents are sorted best-first) of a few drawn at random."""
        drawn = rng.integers(len(parents), size=min(self.tournament, len(parents)))
        return parents[int(drawn.min())]
