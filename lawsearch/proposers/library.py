"""Library proposer: known scaling-law families, instantiated for a task's inputs.

Each family is a small generator that writes sympy expressions over the task's
inputs, simplest instance first.  What a family may do with an input depends on
its data (:class:`Columns`): logs and non-integer powers only for columns that
are all positive; columns that may be zero or negative (an input that is
already a log, a mixture proportion) enter raw.  The proposer walks the
families round-robin (the first instance of every family, then the second …),
so the first batch already spans the library; once every form has been
returned (or was already scored: ``context.seen``) it returns ``[]``.

Every name that is not an input is a parameter fitted by the shared fitter;
:class:`ParameterNames` picks readable names (E, A, B, alpha, beta …) that
cannot collide with an input, a function name or a Python keyword.
"""

from __future__ import annotations

import keyword
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations, permutations

import numpy as np
import sympy

from ..errors import FormulaError
from ..formula import FUNCTIONS, SELF, Law
from .base import Proposal, SearchContext

__all__ = ["Columns", "ParameterNames", "LibraryProposer", "FAMILIES", "library_forms", "round_trip"]

RESERVED = frozenset(FUNCTIONS) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)


class ParameterNames:
    """Fresh parameter symbols that avoid inputs, function names, keywords and names already taken."""

    COEFFICIENTS = ("A", "B", "C", "D", "F", "G", "H", "K", "M", "P", "Q", "S")
    EXPONENTS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "kappa", "nu", "rho", "tau")

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self.taken = set(taken) | RESERVED

    def new(self, base: str) -> sympy.Symbol:
        """``base`` itself if free, else ``base1``, ``base2`` …"""
        name, i = base, 0
        while name in self.taken:
            i += 1
            name = f"{base}{i}"
        self.taken.add(name)
        return sympy.Symbol(name, real=True)

    def _next(self, pool: Sequence[str]) -> sympy.Symbol:
        return self.new(next((n for n in pool if n not in self.taken), pool[0]))

    def coefficient(self) -> sympy.Symbol:
        """The next free scale name (A, B, C …)."""
        return self._next(self.COEFFICIENTS)

    def exponent(self) -> sympy.Symbol:
        """The next free exponent name (alpha, beta, gamma …)."""
        return self._next(self.EXPONENTS)


@dataclass(frozen=True)
class Columns:
    """The task's inputs and what their data allow.

    ``positive``: columns that are all > 0 (logs and powers are safe);
    ``unit``: columns that are all in [0, 1] (mixture proportions);
    ``positive_target``: every target value is > 0.
    """

    inputs: tuple[str, ...]
    positive: tuple[str, ...]
    unit: tuple[str, ...]
    positive_target: bool = True

    @classmethod
    def from_data(cls, inputs: Sequence[str], X: np.ndarray, Y: np.ndarray | None = None) -> Columns:
        X = np.asarray(X, dtype=float).reshape(len(X), len(inputs))
        finite = np.isfinite(X).all(axis=0)
        positive = tuple(n for j, n in enumerate(inputs) if finite[j] and (X[:, j] > 0).all())
        unit = tuple(n for j, n in enumerate(inputs) if finite[j] and ((X[:, j] >= 0) & (X[:, j] <= 1)).all())
        positive_target = Y is None or bool(np.all(np.asarray(Y, dtype=float) > 0))
        return cls(tuple(inputs), positive, unit, positive_target)

    @classmethod
    def from_context(cls, context: SearchContext) -> Columns:
        return cls.from_data(context.inputs, context.X, context.Y)

    def x(self, name: str) -> sympy.Symbol:
        """The symbol of an input."""
        return sympy.Symbol(name, real=True)

    @property
    def symbols(self) -> frozenset[sympy.Symbol]:
        return frozenset(self.x(n) for n in self.inputs)

    def z(self, name: str) -> sympy.Expr:
        """The input on its natural axis: ``log(x)`` when x > 0, else x itself."""
        return sympy.log(self.x(name)) if name in self.positive else self.x(name)

    def names(self) -> ParameterNames:
        """A fresh name allocator for one formula."""
        return ParameterNames(self.inputs)

    def with_self(self, pairs: Sequence[tuple[str, str]]) -> Columns:
        """These columns and ``self``, the input paired with each target (when the task pairs them):
        positive (or in [0, 1]) where every paired input is."""
        if not pairs:
            return self
        paired = {name for _, name in pairs}
        return Columns((*self.inputs, SELF), (*self.positive, *([SELF] if paired <= set(self.positive) else [])),
                       (*self.unit, *([SELF] if paired <= set(self.unit) else [])), self.positive_target)


def round_trip(expr: sympy.Expr, inputs: Sequence[str]) -> Law | None:
    """The law of ``expr`` as re-parsed from its own text, or None where that is not the same law."""
    try:
        law = Law.from_sympy(expr, inputs)
        again = Law.parse(law.text, inputs)
    except (FormulaError, TypeError, ValueError, ZeroDivisionError):
        return None
    return again if again == law else None


# ---------------------------------------------------------------------------------- helpers
Family = Callable[[Columns], Iterator[sympy.Expr]]


def _subsets(items: Sequence[str]) -> list[tuple[str, ...]]:
    """Input subsets, all of them first, then singles, pairs …; beyond 3 inputs only sizes 1, 2, n−1."""
    n = len(items)
    if n == 0:
        return []
    sizes = range(1, n) if n <= 3 else sorted({1, 2, n - 1})
    return [tuple(items)] + [s for k in sizes for s in combinations(items, k)]


def _power(p: ParameterNames, base: sympy.Expr) -> sympy.Expr:
    """A·base^(−α) with fresh A, α."""
    return p.coefficient() * base ** (-p.exponent())


def _power_sum(c: Columns, p: ParameterNames, names: Iterable[str]) -> sympy.Expr:
    """Σ A_i·x_i^(−α_i) over ``names`` (0 for none)."""
    return sympy.Add(*(_power(p, c.x(n)) for n in names))


def _quadratic(c: Columns, p: ParameterNames, name: str) -> sympy.Expr:
    """A·z + B·z² for one input on its natural axis."""
    z = c.z(name)
    return p.coefficient() * z + p.coefficient() * z**2


def _second_order(c: Columns, names: Sequence[str]) -> sympy.Expr:
    """E + Σ (A_i·z_i + B_i·z_i²) + Σ_{i<j} C_ij·z_i·z_j over ``names``: the full quadratic in their natural axes."""
    p = c.names()
    floor, squares = p.new("E"), sympy.Add(*(_quadratic(c, p, n) for n in names))
    return floor + squares + sympy.Add(*(p.coefficient() * c.z(a) * c.z(b) for a, b in combinations(names, 2)))


def _rest(c: Columns, *used: str) -> tuple[str, ...]:
    return tuple(n for n in c.positive if n not in used)


# ---------------------------------------------------------------------------------- families
def saturating_power(c: Columns) -> Iterator[sympy.Expr]:
    """E + Σ A_i·x_i^(−α_i): additive power laws with an irreducible floor (Chinchilla, Tao et al.)."""
    for subset in _subsets(c.positive):
        p = c.names()
        yield p.new("E") + _power_sum(c, p, subset)


def log_linear(c: Columns) -> Iterator[sympy.Expr]:
    """E + Σ A_i·log x_i: straight lines on log axes (raw x where x may be ≤ 0)."""
    for subset in _subsets(c.inputs):
        p = c.names()
        yield p.new("E") + sympy.Add(*(p.coefficient() * c.z(n) for n in subset))


def pure_power(c: Columns) -> Iterator[sympy.Expr]:
    """A·Π x_i^(−α_i): power laws without a floor."""
    for subset in _subsets(c.positive):
        p = c.names()
        yield p.coefficient() * sympy.Mul(*(c.x(n) ** (-p.exponent()) for n in subset))


def log_polynomial(c: Columns) -> Iterator[sympy.Expr]:
    """Polynomials in log x: U-shapes (optimal learning rate / batch size), cubics, cross terms,
    and, for positive targets, Clark et al.'s exp(E + A·log x + B·log y + C·log x·log y)."""
    for n in c.inputs:
        p = c.names()
        yield p.new("E") + _quadratic(c, p, n)
    if len(c.inputs) > 1:
        p = c.names()
        yield p.new("E") + sympy.Add(*(_quadratic(c, p, n) for n in c.inputs))
    for n in c.inputs:
        p = c.names()
        yield p.new("E") + _quadratic(c, p, n) + p.coefficient() * c.z(n) ** 3
    for a, b in combinations(c.inputs, 2):
        p = c.names()
        bilinear = p.new("E") + p.coefficient() * c.z(a) + p.coefficient() * c.z(b) + p.coefficient() * c.z(a) * c.z(b)
        yield bilinear
        if c.positive_target:
            yield sympy.exp(bilinear)
        yield _second_order(c, (a, b))


def interaction(c: Columns) -> Iterator[sympy.Expr]:
    """Interacting power laws: E + A·Π x_i^(−α_i), and the additive form plus its product,
    E + A·x^(−α) + B·y^(−β) + C·x^(−α)·y^(−β)."""
    for subset in (s for s in _subsets(c.positive) if len(s) > 1):
        p = c.names()
        yield p.new("E") + p.coefficient() * sympy.Mul(*(c.x(n) ** (-p.exponent()) for n in subset))
    for a, b in combinations(c.positive, 2):
        p = c.names()
        E, A, alpha, B, beta = p.new("E"), p.coefficient(), p.exponent(), p.coefficient(), p.exponent()
        u, v = c.x(a) ** (-alpha), c.x(b) ** (-beta)
        yield E + A * u + B * v + p.coefficient() * u * v


def shared_exponent(c: Columns) -> Iterator[sympy.Expr]:
    """One exponent over several inputs: E + (Σ A_i/x_i)^α, E + A·(Π x_i)^(−α) (compute-like),
    and Kaplan et al.'s E + (A·x^(−α) + B/y)^β."""
    for subset in (s for s in _subsets(c.positive) if len(s) > 1):
        p = c.names()
        E, scales = p.new("E"), [p.coefficient() / c.x(n) for n in subset]
        yield E + sympy.Add(*scales) ** p.exponent()
        p = c.names()
        yield p.new("E") + p.coefficient() * sympy.Mul(*(c.x(n) for n in subset)) ** (-p.exponent())
    for a, b in permutations(c.positive, 2):
        p = c.names()
        E, A, alpha, B = p.new("E"), p.coefficient(), p.exponent(), p.coefficient()
        yield E + (A * c.x(a) ** (-alpha) + B / c.x(b)) ** p.exponent()


def broken_power(c: Columns) -> Iterator[sympy.Expr]:
    """Power laws that bend: rectified E + A/(K + x^α) (Lin et al.), two regimes E + A·x^(−α) + B·x^(−β),
    and a smoothly broken E + A·x^(−α)·(1 + D·x^γ)^(−δ)."""
    for n in c.positive:
        x = c.x(n)
        p = c.names()
        E, A, K = p.new("E"), p.coefficient(), p.new("K")
        yield E + A / (K + x ** p.exponent())
        p = c.names()
        yield p.new("E") + _power_sum(c, p, (n, n))
        p = c.names()
        E, A, alpha, D, gamma, delta = p.new("E"), p.coefficient(), p.exponent(), p.new("D"), p.exponent(), p.exponent()
        yield E + A * x ** (-alpha) * (1 + D * x**gamma) ** (-delta)


def exponential(c: Columns) -> Iterator[sympy.Expr]:
    """Exponential approach to a floor: E + A·exp(−β·x^γ) (E + A·exp(β·x) where x may be ≤ 0)."""
    for n in c.inputs:
        p = c.names()
        E, A, beta = p.new("E"), p.coefficient(), p.exponent()
        if n in c.positive:
            yield E + A * sympy.exp(-beta * c.x(n) ** p.exponent())
        else:
            yield E + A * sympy.exp(beta * c.x(n))


def power_with_ushape(c: Columns) -> Iterator[sympy.Expr]:
    """Power laws in some inputs plus a quadratic in log of one or two others (Step Law: lr, batch size)."""
    if len(c.inputs) < 2:
        return
    for k in range(1, min(2, len(c.inputs) - 1) + 1):
        for shaped in combinations(c.inputs, k):
            rest = _rest(c, *shaped)
            if rest:
                p = c.names()
                yield p.new("E") + _power_sum(c, p, rest) + sympy.Add(*(_quadratic(c, p, n) for n in shaped))


def _with_others(c: Columns, p: ParameterNames, used: tuple[str, ...], effective: sympy.Expr) -> sympy.Expr:
    """E + Σ A_i·x_i^(−α_i) over the positive inputs not in ``used`` + B·effective^(−β)."""
    return p.new("E") + _power_sum(c, p, _rest(c, *used)) + _power(p, effective)


def effective_quantity(c: Columns) -> Iterator[sympy.Expr]:
    """Two inputs merged into one effective quantity inside a power law, beside the others' power terms:
    repeated data with diminishing returns (Muennighoff et al.: m·(1 + R·(1 − exp(−(y/m − 1)/R))),
    m = min(x, y)), the smaller of two inputs, and a size times 1 + k·log(other) (parallel scaling,
    Chen et al.)."""
    for a, b in permutations(c.positive, 2):
        p = c.names()
        m, R = sympy.Min(c.x(a), c.x(b)), p.new("R")
        yield _with_others(c, p, (a, b), m * (1 + R * (1 - sympy.exp(-(c.x(b) / m - 1) / R))))
    for a, b in combinations(c.positive, 2):
        yield _with_others(c, c.names(), (a, b), sympy.Min(c.x(a), c.x(b)))
    for a, b in permutations(c.positive, 2):
        p = c.names()
        yield _with_others(c, p, (a, b), c.x(a) * (1 + p.new("k") * sympy.log(c.x(b))))


def ratio(c: Columns) -> Iterator[sympy.Expr]:
    """A power law in x with a ratio y/x: E + A·x^(−α) + B·(y/x)^(−β) and E + A·x^(−α) + B·log(y/x)."""
    for a, b in permutations(c.positive, 2):
        x, r = c.x(a), c.x(b) / c.x(a)
        p = c.names()
        yield p.new("E") + _power(p, x) + _power(p, r)
        p = c.names()
        yield p.new("E") + _power(p, x) + p.coefficient() * sympy.log(r)


def sigmoid(c: Columns) -> Iterator[sympy.Expr]:
    """S-curves on the natural axis (emergence, saturating scores): E + A·σ(k·(z − z0)), also on a linear trend."""
    for n in c.inputs:
        for trend in (False, True):
            p = c.names()
            E, A, k, z0 = p.new("E"), p.coefficient(), p.new("k"), p.new("z0")
            law = E + A / (1 + sympy.exp(-k * (c.z(n) - z0)))
            yield law + p.coefficient() * c.z(n) if trend else law


def proportions(c: Columns) -> Iterator[sympy.Expr]:
    """Laws of mixture proportions (inputs in [0, 1]): Ye et al.'s E + A·exp(Σ t_i·r_i), per input and
    over all proportions, and E + Σ (A_i·r_i + B_i·r_i²).  When each output is paired with its own
    share (``self``), a linear mixing law of all the shares plus a saturating effect of the output's own,
    Σ A_i·r_i + B·exp(C·self) (shares that sum to 1 make Σ A_i·r_i hold the floor too)."""
    if not c.unit:
        return

    def ye(subset: Sequence[str]) -> sympy.Expr:
        p = c.names()
        E, A = p.new("E"), p.coefficient()
        return E + A * sympy.exp(sympy.Add(*(p.new(f"t{i}") * c.x(n) for i, n in enumerate(subset, 1))))

    yield ye(c.unit)
    if SELF in c.unit:
        p = c.names()
        shares = sympy.Add(*(p.coefficient() * c.x(n) for n in c.unit if n != SELF))
        yield shares + p.coefficient() * sympy.exp(p.coefficient() * c.x(SELF))
    for n in c.unit:
        yield ye((n,))
    p = c.names()
    yield p.new("E") + sympy.Add(*(p.coefficient() * c.x(n) + p.coefficient() * c.x(n) ** 2 for n in c.unit))


def _valley(c: Columns, p: ParameterNames, name: str, movers: Iterable[str]) -> sympy.Expr:
    """A·(z − z0 − Σ γ_j·log y_j)²: a quadratic valley in one input's natural axis whose optimum
    exp(z0)·Π y_j^γ_j is a power law of the ``movers``."""
    optimum = p.new("z0") + sympy.Add(*(p.exponent() * sympy.log(c.x(m)) for m in movers))
    return p.coefficient() * (c.z(name) - optimum) ** 2


def moving_valley(c: Columns) -> Iterator[sympy.Expr]:
    """Quadratic valleys in log x whose optimum moves as a power law of other inputs (the optimal
    learning rate or batch size of a model and data size): E + Σ A_i·y_i^(−α_i) + B·(log x − log x*)²,
    log x* = z0 + Σ γ_j·log y_j, the optimum moving with all others or with one; without the power
    terms; and two such valleys whose optima move with the remaining inputs."""
    for n in c.inputs:
        others = _rest(c, n)
        for movers in ([others] if len(others) > 1 else []) + [(m,) for m in others]:
            for with_power in (True, False):
                p = c.names()
                powers = _power_sum(c, p, others) if with_power else 0
                yield p.new("E") + powers + _valley(c, p, n, movers)
    for a, b in combinations(c.inputs, 2):
        movers = _rest(c, a, b)
        if movers:
            p = c.names()
            yield p.new("E") + _power_sum(c, p, movers) + _valley(c, p, a, movers) + _valley(c, p, b, movers)


def _saturating(c: Columns, p: ParameterNames, name: str) -> sympy.Expr:
    """x/(1 + x/K): a count whose returns saturate at K (experts, parallel copies)."""
    x = c.x(name)
    return x / (1 + x / p.new("K"))


def power_interaction(c: Columns) -> Iterator[sympy.Expr]:
    """Products of power laws with a log-log interaction, E + A·exp(−α·log x − β·log y + γ·log x·log y)
    (the exponent of x moves with log y), and the same with a saturating count y/(1 + y/K) for y
    (Clark et al.'s mixture-of-experts law), also without the floor for positive targets."""
    for a, b in permutations(c.positive, 2):
        for saturate in (False, True):
            if not saturate and a > b:  # without saturation the pair is symmetric
                continue
            p = c.names()
            E, A, alpha, beta, gamma = p.new("E"), p.coefficient(), p.exponent(), p.exponent(), p.exponent()
            za = sympy.log(c.x(a))
            zb = sympy.log(_saturating(c, p, b)) if saturate else sympy.log(c.x(b))
            exponent = -alpha * za - beta * zb + gamma * za * zb
            yield E + A * sympy.exp(exponent)
            if c.positive_target:
                yield sympy.exp(p.new("C") + exponent)


def log_shapes(c: Columns) -> Iterator[sympy.Expr]:
    """Shapes of one input's natural axis z (log x where x > 0): rational functions (A + B·z)/(1 + C·z)
    and (A + B·z + D·z²)/(1 + C·z), and asymmetric U-shapes E + A·exp(α·z) + B·exp(−β·z) (x^α and
    x^(−β) walls), alone and beside the other inputs' power terms."""
    for n in c.inputs:
        z = c.z(n)
        p = c.names()
        yield (p.coefficient() + p.coefficient() * z) / (1 + p.new("C") * z)
        p = c.names()
        yield p.new("E") + p.coefficient() * sympy.exp(p.exponent() * z) + p.coefficient() * sympy.exp(-p.exponent() * z)
        p = c.names()
        A, B, D = p.coefficient(), p.coefficient(), p.new("D")
        yield (A + B * z + D * z**2) / (1 + p.new("C") * z)
        others = _rest(c, n)
        if others:
            p = c.names()
            ushape = p.coefficient() * sympy.exp(p.exponent() * z) + p.coefficient() * sympy.exp(-p.exponent() * z)
            yield p.new("E") + _power_sum(c, p, others) + ushape


def response_surface(c: Columns) -> Iterator[sympy.Expr]:
    """The full second-order surface in the natural axes of three or more inputs (a response surface
    in the logs), E + Σ (A_i·z_i + B_i·z_i²) + Σ_{i<j} C_ij·z_i·z_j: a valley in each input whose
    optimum moves as a power law of the others.  All of its 1 + k + k(k+1)/2 parameters enter linearly,
    so the fitter solves them exactly; it needs a task that allows that many.  (Two inputs: the last
    form of :func:`log_polynomial`.)"""
    if len(c.inputs) > 2:
        yield _second_order(c, c.inputs)


def effective_repeats(c: Columns) -> Iterator[sympy.Expr]:
    """A quantity x whose returns diminish with repeats of a unique amount u, inside a power law beside
    the others' power terms: x_eff = R·u·(1 − exp(−x/(R·u))) (x_eff ≈ x while x ≪ R·u, at most R·u:
    each repeat is worth less) and the hyperbolic x/(1 + x/(R·u))."""
    for a, u in permutations(c.positive, 2):
        x, unique = c.x(a), c.x(u)
        p = c.names()
        R = p.new("R")
        yield _with_others(c, p, (a, u), R * unique * (1 - sympy.exp(-x / (R * unique))))
        p = c.names()
        yield _with_others(c, p, (a, u), x / (1 + x / (p.new("R") * unique)))


FAMILIES: tuple[tuple[str, Family], ...] = (
    ("saturating_power", saturating_power),
    ("log_linear", log_linear),
    ("pure_power", pure_power),
    ("log_polynomial", log_polynomial),
    ("interaction", interaction),
    ("exponential", exponential),
    ("shared_exponent", shared_exponent),
    ("broken_power", broken_power),
    ("power_with_ushape", power_with_ushape),
    ("effective_quantity", effective_quantity),
    ("ratio", ratio),
    ("sigmoid", sigmoid),
    ("proportions", proportions),
    ("moving_valley", moving_valley),
    ("power_interaction", power_interaction),
    ("log_shapes", log_shapes),
    ("effective_repeats", effective_repeats),
    ("response_surface", response_surface),
)


def library_forms(columns: Columns, max_parameters: int | None = None) -> list[tuple[str, Law]]:
    """Every library law for these columns as (family, law), round-robin over the families.

    Laws with more than ``max_parameters`` parameters and repeats are left out.
    """
    cap = math.inf if max_parameters is None else max_parameters
    streams = deque((name, family(columns)) for name, family in FAMILIES)
    forms: list[tuple[str, Law]] = []
    seen: set[sympy.Expr] = set()
    while streams:
        name, stream = streams.popleft()
        expr = next(stream, None)
        if expr is None:
            continue
        streams.append((name, stream))
        if len(expr.free_symbols - columns.symbols) > cap:  # too many parameters: skip the round trip
            continue
        law = round_trip(expr, columns.inputs)
        if law is not None and law.n_parameters <= cap and law.expr not in seen:
            seen.add(law.expr)
            forms.append((name, law))
    return forms


class LibraryProposer:
    """Proposes the library's forms for the task, simplest family instances first, each once; a task
    that pairs outputs with inputs gets forms of ``self`` (each output's own input) too."""

    name = "library"

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._pending: deque[tuple[str, Law]] = deque()

    def propose(self, context: SearchContext, n: int) -> list[Proposal]:
        """The next ``n`` library forms not yet returned nor already scored (``context.seen``);
        ``[]`` once the library is exhausted."""
        columns = Columns.from_context(context).with_self(context.pairs)
        key = (columns, context.max_parameters)
        if key != self._key:
            self._key = key
            self._pending = deque(library_forms(columns, context.max_parameters))
        out: list[Proposal] = []
        while self._pending and len(out) < n:
            family, law = self._pending.popleft()
            if law.canonical not in context.seen:
                out.append(Proposal(formula=law.text, source=self.name, note=family))
        return out

    def close(self) -> None:
        """Nothing to release."""
