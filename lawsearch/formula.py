"""Laws: formula text parsed safely into sympy, evaluated with numpy, printed.

Formula text is hostile input (it may come from an LLM, an SR engine or a
user).  It is parsed with :func:`ast.parse` and checked against a whitelist of
node types and function names, and the sympy expression is built from the
checked tree, name by name, as explicit :class:`sympy.Symbol` objects.  Nothing
here ever calls ``eval``, ``exec``, ``sympify`` or ``parse_expr`` on text.

Names that are task inputs are variables; every other name is a parameter,
fitted per group.  Numbers stay numbers.  On a task that pairs each target with
an input (``pairs``), the name ``self`` is the input paired with the target being
fitted (:meth:`Law.bound`).
"""

from __future__ import annotations

import ast
import functools
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy
import sympy.printing.str

from .errors import FormulaError

__all__ = ["Law", "FUNCTIONS", "CONSTANTS", "MAX_NODES", "SELF"]

MAX_NODES = 400  # syntax-tree nodes allowed in one formula text
MAX_TEXT = 4000  # characters allowed in one formula text
MAX_DEPTH = 40
_MAX_DECADES = 308  # a constant power beyond 10**±308 is outside float range
_CANONICAL_ROUNDS = 4  # renaming rounds of Law.canonical
SELF = "self"  # in a law of a task with pairs: the input paired with the target being fitted

NumpyFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _sigmoid(x: sympy.Expr) -> sympy.Expr:
    return 1 / (1 + sympy.exp(-x))


def _log(x: sympy.Expr, base: sympy.Expr | None = None) -> sympy.Expr:
    return sympy.log(x) if base is None else sympy.log(x) / sympy.log(base)


def _min(*args: sympy.Expr) -> sympy.Expr:
    return sympy.Min(*args)


def _max(*args: sympy.Expr) -> sympy.Expr:
    return sympy.Max(*args)


# name -> (sympy builder, allowed argument counts)
FUNCTIONS: dict[str, tuple[Callable[..., sympy.Expr], tuple[int, ...]]] = {
    "log": (_log, (1, 2)),
    "ln": (sympy.log, (1,)),
    "log10": (lambda x: sympy.log(x) / sympy.log(10), (1,)),
    "log2": (lambda x: sympy.log(x) / sympy.log(2), (1,)),
    "log1p": (lambda x: sympy.log(1 + x), (1,)),
    "exp": (sympy.exp, (1,)),
    "expm1": (lambda x: sympy.exp(x) - 1, (1,)),
    "sqrt": (sympy.sqrt, (1,)),
    "cbrt": (lambda x: sympy.Pow(x, sympy.Rational(1, 3)), (1,)),
    "abs": (sympy.Abs, (1,)),
    "Abs": (sympy.Abs, (1,)),
    "tanh": (sympy.tanh, (1,)),
    "sin": (sympy.sin, (1,)),
    "cos": (sympy.cos, (1,)),
    "atan": (sympy.atan, (1,)),
    "sigmoid": (_sigmoid, (1,)),
    "softplus": (lambda x: sympy.log(1 + sympy.exp(x)), (1,)),
    "pow": (sympy.Pow, (2,)),
    "min": (_min, (2, 3, 4)),
    "Min": (_min, (2, 3, 4)),
    "max": (_max, (2, 3, 4)),
    "Max": (_max, (2, 3, 4)),
}

#: Names that are mathematical constants, not parameters.
CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi}

_GENERIC_TARGETS = ("y", "L")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NAME_TOKEN = re.compile(r"(?<![0-9.])[A-Za-z_][A-Za-z0-9_]*")
_ANY_NAME = re.compile(r"[^\W\d]\w*")  # an identifier in any script, as Python's parser reads one


def check_plain_name(name: str, what: str = "name") -> None:
    """Reject a name that Python's parser would read as another one: identifiers are NFKC-folded,
    so a full-width ``ｐａｒａｍｓ`` would silently become the input ``params`` and a bold ``𝐄`` the
    parameter ``E``."""
    folded = unicodedata.normalize("NFKC", name)
    if folded != name:
        raise FormulaError(f"{what} {name!r} is written with look-alike characters (it reads as {folded!r}); "
                           "write it in plain letters")


def _describe(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every node we can meet
        return type(node).__name__


class _Builder:
    """Turns a checked Python expression tree into a sympy expression."""

    def __init__(self, inputs: Sequence[str]) -> None:
        self.inputs = set(inputs)
        self.symbols: dict[str, sympy.Symbol] = {}
        self.order: list[str] = []  # names in order of first appearance

    def symbol(self, name: str) -> sympy.Symbol:
        if name.startswith("_") or not _NAME.match(name):
            raise FormulaError(f"name {name!r} is not allowed (names start with a letter, no dunders)")
        if name in FUNCTIONS:
            raise FormulaError(f"{name!r} is a function; call it as {name}(...)")
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name not in self.symbols:
            self.symbols[name] = sympy.Symbol(name, real=True)
            self.order.append(name)
        return self.symbols[name]

    def build(self, node: ast.AST, depth: int = 0) -> sympy.Expr:
        if depth > MAX_DEPTH:
            raise FormulaError(f"formula nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise FormulaError(f"constant {value!r} is not a number")
            if not math.isfinite(value):
                raise FormulaError(f"constant {value!r} is not finite")
            return sympy.Integer(value) if isinstance(value, int) else sympy.Float(value)
        if isinstance(node, ast.Name):
            return self.symbol(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.build(node.operand, depth + 1)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            left = self.build(node.left, depth + 1)
            right = self.build(node.right, depth + 1)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, ast.Div):
                if right == 0:
                    raise FormulaError(f"division by zero in {_describe(node)!r}")
                return left / right
            if isinstance(node.op, ast.Pow):
                if _overflowing_power(left, right):
                    raise FormulaError(f"constant {_describe(node)!r} is beyond the range of floating point")
                return sympy.Pow(left, right)
            raise FormulaError(f"operator {type(node.op).__name__} in {_describe(node)!r} is not allowed")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise FormulaError(f"call of {_describe(node.func)!r} is not allowed")
            name = node.func.id
            if name not in FUNCTIONS:
                raise FormulaError(
                    f"unknown function {name!r}; allowed: {', '.join(sorted(set(FUNCTIONS) - {'Abs', 'Min', 'Max'}))}"
                )
            if node.keywords:
                raise FormulaError(f"keyword arguments in {name}(...) are not allowed")
            builder, arities = FUNCTIONS[name]
            if len(node.args) not in arities or any(isinstance(a, ast.Starred) for a in node.args):
                raise FormulaError(f"{name}() takes {' or '.join(map(str, arities))} argument(s), got {len(node.args)}")
            return builder(*(self.build(a, depth + 1) for a in node.args))
        raise FormulaError(f"{type(node).__name__} {_describe(node)!r} is not allowed in a formula")


def _overflowing_power(base: sympy.Expr, exponent: sympy.Expr) -> bool:
    """Whether a power of two numbers is beyond float range (sympy would compute ``2**3**27`` exactly)."""
    if not (base.is_number and exponent.is_number):
        return False
    try:
        magnitude, power = abs(complex(base)), abs(complex(exponent))
    except (OverflowError, TypeError):
        return True
    return magnitude > 0 and power * abs(math.log10(magnitude)) > _MAX_DECADES


_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")


def _strip_target(text: str, targets: Sequence[str], inputs: Sequence[str]) -> str:
    """Remove a leading ``target =`` (or a generic ``y =``/``L =``); reject any other left side."""
    match = _ASSIGNMENT.match(text)
    if match is None:
        return text
    name = match.group(1)
    allowed = set(targets) | {n for n in _GENERIC_TARGETS if n not in inputs}
    if name not in allowed:
        raise FormulaError(f"left-hand side {name!r} does not name the target ({', '.join(sorted(allowed))})")
    return text[match.end():]


def _compile(expr: sympy.Expr, index: dict[sympy.Symbol, tuple[str, int]]) -> NumpyFunction:
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
    args = [_compile(a, index) for a in expr.args]
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
    unary = {
        sympy.exp: np.exp,
        sympy.log: np.log,
        sympy.tanh: np.tanh,
        sympy.Abs: np.abs,
        sympy.sin: np.sin,
        sympy.cos: np.cos,
        sympy.atan: np.arctan,
        sympy.sign: np.sign,
    }
    if expr.func in unary:
        f, (a,) = unary[expr.func], args
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


@dataclass(frozen=True, eq=False)
class Law:
    """A closed-form law ``y = f(x; θ)``: a sympy expression over task inputs and parameters.

    Build one with :meth:`Law.parse` (from text) or :meth:`Law.from_sympy`.
    """

    expr: sympy.Expr
    inputs: tuple[str, ...]
    parameters: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...] = ()  # (target, input): what ``self`` stands for, per target
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def parse(
        cls,
        text: str,
        inputs: Sequence[str],
        target: str | Sequence[str] | None = None,
        pairs: Sequence[tuple[str, str]] = (),
    ) -> Law:
        """Parse formula text safely; names in ``inputs`` are variables, all others parameters.

        A leading ``<target> =`` is accepted (also ``y =``/``L =`` unless those are inputs).
        With ``pairs`` ((target, input) each), ``self`` is a variable: the paired input.
        Raises :class:`FormulaError` naming the rejected token.
        """
        if not isinstance(text, str):
            raise FormulaError(f"a formula must be text, got {type(text).__name__}")
        if len(text) > MAX_TEXT:
            raise FormulaError(f"formula longer than {MAX_TEXT} characters")
        targets = [target] if isinstance(target, str) else list(target or [])
        # '^' means a power, as SR engines and people write it (Python would read XOR).
        body = _strip_target(text.strip(), targets, inputs).strip().replace("^", "**")
        if not body:
            raise FormulaError("empty formula")
        for name in _ANY_NAME.findall(body):
            check_plain_name(name)
        try:
            tree = ast.parse(body, mode="eval")
        except SyntaxError as exc:
            raise FormulaError(f"cannot parse formula {text.strip()!r}: {exc.msg}") from None
        except RecursionError:  # e.g. thousands of unary minuses: Python's parser gives up
            raise FormulaError(f"formula nested deeper than {MAX_DEPTH} levels") from None
        n_nodes = sum(1 for _ in ast.walk(tree))
        if n_nodes > MAX_NODES:
            raise FormulaError(f"formula has {n_nodes} syntax nodes, more than the {MAX_NODES} allowed")
        builder = _Builder(inputs)
        expr = builder.build(tree.body)
        return cls.from_sympy(expr, inputs, order=builder.order, pairs=pairs)

    @classmethod
    def from_sympy(cls, expr: sympy.Expr, inputs: Sequence[str], order: Sequence[str] = (),
                   pairs: Sequence[tuple[str, str]] = ()) -> Law:
        """Wrap a sympy expression; every free symbol not in ``inputs`` (nor ``self``, given
        ``pairs``) becomes a parameter.

        Parameters are ordered as in ``order`` (e.g. first appearance in the text), then
        in the order of the printed text.
        """
        if isinstance(expr, (int, float)):
            expr = sympy.Float(expr)
        if not isinstance(expr, sympy.Expr) or expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo, sympy.I):
            raise FormulaError(f"formula {expr} is not a finite real expression")
        # Re-create symbols as plain real symbols keyed by name, whatever their assumptions.
        renames = {s: sympy.Symbol(s.name, real=True) for s in expr.free_symbols}
        expr = expr.xreplace(renames)
        bad = sorted(s.name for s in expr.free_symbols if s.name.startswith("_") or not _NAME.match(s.name))
        if bad:
            raise FormulaError(f"name {bad[0]!r} is not allowed")
        pairs = tuple((str(t), str(x)) for t, x in pairs)
        if any(s.name == SELF for s in expr.free_symbols) and SELF not in inputs and not pairs:
            raise FormulaError(f"{SELF!r} names the input paired with each target, but this task pairs none "
                               "(give the task 'pairs')")
        text = _print_text(expr)
        names = _names_in_text_order(text, {s.name for s in expr.free_symbols})
        ranked = [n for n in order if n in names] + [n for n in names if n not in order]
        variables = set(inputs) | ({SELF} if pairs else set())
        parameters = tuple(n for n in ranked if n not in variables)
        law = cls(expr=expr, inputs=tuple(inputs), parameters=parameters, pairs=pairs)
        law._cache["text"] = text
        law.function  # compile now so unsupported functions fail at parse time
        return law

    # ------------------------------------------------------------------ properties
    @property
    def variables(self) -> tuple[str, ...]:
        """The task inputs this law uses, in input order (then ``self``, if it uses the paired input)."""
        used = {s.name for s in self.expr.free_symbols}
        return tuple(n for n in self.inputs if n in used) + ((SELF,) if self.uses_self else ())

    @property
    def uses_self(self) -> bool:
        """Whether the law names ``self``, the input paired with each target."""
        return bool(self.pairs) and self.symbol(SELF) in self.expr.free_symbols

    def bound(self, target: str) -> Law:
        """The law for one target: ``self`` replaced by the input paired with ``target``.

        The parameters keep their order, so fitted vectors of the two laws are the same.
        A law without ``self`` is returned as it is.
        """
        if not self.uses_self:
            return self
        key = ("bound", str(target))
        if key not in self._cache:
            paired = dict(self.pairs).get(str(target))
            if paired is None:
                raise FormulaError(f"target {target!r} has no paired input (pairs: "
                                   f"{', '.join(f'{t}: {x}' for t, x in self.pairs)})")
            expr = self.expr.xreplace({self.symbol(SELF): self.symbol(paired)})
            self._cache[key] = Law(expr, self.inputs, self.parameters)
        return self._cache[key]

    @property
    def n_parameters(self) -> int:
        return len(self.parameters)

    @property
    def complexity(self) -> int:
        """Expression-tree size: the number of nodes of the sympy tree."""
        return sum(1 for _ in sympy.preorder_traversal(self.expr))

    @property
    def text(self) -> str:
        """Formula text that :meth:`parse` reads back into the same expression."""
        if "text" not in self._cache:
            self._cache["text"] = _print_text(self.expr)
        return self._cache["text"]

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Law({self.text!r})"

    @property
    def canonical(self) -> str:
        """A key equal for laws that differ only in parameter names or in the order their text
        wrote them (for deduplication): ``E + A/x**alpha`` and ``c + beta/x**Q`` share one.

        Parameters are renamed ``_p0``, ``_p1`` … in the order of :func:`_structural_order`,
        which does not depend on their names, then the renamed law is printed; as a renaming
        can reorder sympy's sorted arguments, the printed order is then settled by renaming
        in text order (a few rounds).  The key is the printed text, which, unlike sympy's
        tree order (the arguments of ``Min``), does not depend on Python's hash seed.
        """
        if "canonical" not in self._cache:
            symbols = [self.symbol(n) for n in self.parameters]
            order = _structural_order(self.expr, set(symbols))
            expr = self.expr.xreplace({s: self.symbol(f"_p{i}") for i, s in enumerate(order)})
            text, names = _print_text(expr), {f"_p{i}" for i in range(len(order))}
            for _ in range(_CANONICAL_ROUNDS):
                ranked = _names_in_text_order(text, names)
                renamed = expr.xreplace({self.symbol(n): self.symbol(f"_p{i}") for i, n in enumerate(ranked)})
                if renamed == expr:
                    break
                expr, text = renamed, _print_text(renamed)
            self._cache["canonical"] = text
        return self._cache["canonical"]

    def in_text_order(self) -> Law:
        """This law with its parameters in the order of its printed text (:attr:`text`), which
        depends on the expression only.

        The fitter works in this order, so one law written in two ways (``B/x + E`` and
        ``E + B/x``) gets the same starting points and the same fit, in every process.
        """
        if "text_order" not in self._cache:
            order = _names_in_text_order(self.text, set(self.parameters))
            self._cache["text_order"] = self if order == self.parameters else \
                Law(self.expr, self.inputs, order, self.pairs)
        return self._cache["text_order"]

    def __reduce__(self) -> tuple:
        """Pickle the expression only (compiled numpy functions are rebuilt on demand)."""
        return (Law, (self.expr, self.inputs, self.parameters, self.pairs))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Law) and self.inputs == other.inputs and self.expr == other.expr
                and self.pairs == other.pairs)

    def __hash__(self) -> int:
        return hash((self.inputs, self.expr))

    def symbol(self, name: str) -> sympy.Symbol:
        """The sympy symbol of an input or parameter name."""
        return sympy.Symbol(name, real=True)

    # ------------------------------------------------------------------ numerics
    def _index(self) -> dict[sympy.Symbol, tuple[str, int]]:
        index = {self.symbol(n): ("x", i) for i, n in enumerate(self.inputs)}
        if self.pairs:  # compiled, but only the bound laws (Law.bound) are evaluated
            index[self.symbol(SELF)] = ("x", len(self.inputs))
        index.update({self.symbol(p): ("p", j) for j, p in enumerate(self.parameters)})
        return index

    @property
    def function(self) -> NumpyFunction:
        """``f(X, theta)``: X is (n, len(inputs)), theta is (n_parameters,)."""
        if "function" not in self._cache:
            self._cache["function"] = _compile(self.expr, self._index())
        return self._cache["function"]

    def evaluate(self, X: np.ndarray, theta: Sequence[float] | np.ndarray) -> np.ndarray:
        """Predictions for rows ``X`` (n, len(inputs)); non-finite values are possible, never raised.

        A law that names ``self`` is evaluated per target: ``law.bound(target).evaluate(...)``.
        """
        if self.uses_self:
            raise FormulaError(f"{self.text!r} names {SELF!r}: evaluate it for one target, law.bound(target)")
        X = np.asarray(X, dtype=float)
        theta = np.asarray(theta, dtype=float)
        with np.errstate(all="ignore"):
            out = np.asarray(self.function(X, theta), dtype=float)
        return np.broadcast_to(out, (X.shape[0],)).copy()

    def gradient_functions(self) -> list[NumpyFunction]:
        """``df/dp(X, theta)`` for each parameter p, in order (compiled once)."""
        if "gradient" not in self._cache:
            index = self._index()
            self._cache["gradient"] = [
                _compile(sympy.diff(self.expr, self.symbol(p)), index) for p in self.parameters
            ]
        return self._cache["gradient"]

    def gradient(self, X: np.ndarray, theta: Sequence[float] | np.ndarray) -> np.ndarray:
        """Jacobian (n, n_parameters) of the predictions with respect to the parameters."""
        functions = self.gradient_functions()
        X = np.asarray(X, dtype=float)
        theta = np.asarray(theta, dtype=float)
        n = X.shape[0]
        with np.errstate(all="ignore"):
            cols = [np.broadcast_to(np.asarray(g(X, theta), dtype=float), (n,)) for g in functions]
        return np.column_stack(cols) if cols else np.zeros((n, 0))

    def linear_split(self) -> LinearSplit:
        """Find parameters that enter linearly (jointly), for variable projection."""
        if "linear" in self._cache:
            return self._cache["linear"]
        symbols = [self.symbol(p) for p in self.parameters]
        linear: list[int] = []
        for j, p in enumerate(symbols):
            d = sympy.diff(self.expr, p)
            if d == 0 or d.has(p):
                continue
            if any(d.has(symbols[k]) for k in linear):
                continue
            if any(sympy.diff(self.expr, symbols[k]).has(p) for k in linear):
                continue
            linear.append(j)
        index = self._index()
        zero = {symbols[k]: 0 for k in linear}
        offset = _compile(self.expr.xreplace(zero), index)
        columns = tuple(_compile(sympy.diff(self.expr, symbols[k]), index) for k in linear)
        split = LinearSplit(linear=tuple(linear), offset=offset, columns=columns)
        self._cache["linear"] = split
        return split

    def exponent_parameters(self) -> tuple[str, ...]:
        """Parameters that act as exponents (their natural scale is O(1)).

        A parameter p counts when an exponent is linear in p and either the power's
        base depends on an input (alpha in ``x**-alpha``) or p's slope does (b in
        ``exp(-b*log(x))``); scales and shifts such as tau in ``exp(-x/tau)`` or
        x0 in ``exp(x0 - x)`` do not.
        """
        return tuple(self._exponent_roles())

    def rate_parameters(self) -> tuple[str, ...]:
        """The exponent parameters that are rates of an input itself, not of its log:
        t in ``exp(t*x)`` (but not b in ``exp(-b*log(x))`` nor alpha in ``x**alpha``)."""
        return tuple(p for p, role in self._exponent_roles().items() if role == "rate")

    def _exponent_roles(self) -> dict[str, str]:
        """Exponent parameter -> 'power' or 'rate' (a rate only where it is never a power), in order."""
        if "exponent_roles" in self._cache:
            return self._cache["exponent_roles"]
        variables = {self.symbol(n) for n in self.inputs}
        found: dict[str, str] = {}
        for node in sympy.preorder_traversal(self.expr):
            if isinstance(node, sympy.Pow):
                inner, base_varies = node.exp, bool(node.base.free_symbols & variables)
            elif isinstance(node, sympy.exp):
                inner, base_varies = node.args[0], False
            else:
                continue
            for symbol in inner.free_symbols - variables:
                slope = sympy.diff(inner, symbol)
                if slope.has(symbol) or not (base_varies or slope.free_symbols & variables):
                    continue
                outside_logs = slope.replace(lambda e: isinstance(e, sympy.log), lambda e: sympy.Integer(1))
                rate = not base_varies and bool(outside_logs.free_symbols & variables)
                if found.get(symbol.name) != "power":
                    found[symbol.name] = "rate" if rate else "power"
        roles = {p: found[p] for p in self.parameters if p in found}
        self._cache["exponent_roles"] = roles
        return roles

    def log_domain_variables(self) -> tuple[str, ...]:
        """Inputs that appear inside a log or under a non-integer power (must be positive).

        An argument shifted by a fitted parameter or a positive number (``log(p + eps)``,
        ``(x + 1)**0.5``) does not count: the shift can keep it positive where the input is 0.
        ``self`` stands for every paired input.
        """
        variables = {self.symbol(n) for n in (*self.inputs, SELF)}
        found: set[str] = set()
        for node in sympy.preorder_traversal(self.expr):
            if isinstance(node, sympy.log):
                arg = node.args[0]
            elif isinstance(node, sympy.Pow) and not (node.exp.is_Integer):
                arg = node.base
            else:
                continue
            if _shifted(arg, variables):
                continue
            found |= {s.name for s in arg.free_symbols if s in variables}
        if SELF in found:
            found |= {x for _, x in self.pairs}
        return tuple(n for n in self.inputs if n in found)

    # ------------------------------------------------------------------ printers
    def to_latex(self) -> str:
        """LaTeX of the law."""
        names = {self.symbol(n): _latex_name(n) for n in (*self.inputs, *self.parameters)}
        return sympy.latex(self.expr, symbol_names=names)

    def _repr_latex_(self) -> str:
        """Rendered LaTeX in a notebook."""
        return f"$\\displaystyle {self.to_latex()}$"

    def to_sympy(self) -> str:
        """Python source that rebuilds the law as a sympy expression named ``law``."""
        return _sympy_source(self)

    def to_python(self, function_name: str = "law", fitted: dict[str, float] | None = None) -> str:
        """Standalone numpy source: ``def law(<inputs>, <parameters>)`` returning predictions."""
        from sympy.printing.numpy import NumPyPrinter

        printer = NumPyPrinter({"fully_qualified_modules": True, "allow_unknown_functions": False})
        alias = "_np" if "np" in (*self.variables, *self.parameters) else "np"  # names never start with '_'
        body = printer.doprint(self.expr).replace("numpy.", f"{alias}.")
        args = [*self.variables, *(f"{p}={fitted[p]!r}" if fitted else p for p in self.parameters)]
        return (
            f"import numpy as {alias}\n\n\n"
            f"def {function_name}({', '.join(args)}):\n"
            f'    """{self.text}"""\n'
            f"    return {body}\n"
        )


def _shifted(arg: sympy.Expr, variables: set[sympy.Symbol]) -> bool:
    """Whether a sum has a term free of variables that can keep it positive: a parameter or a
    positive number (``p + eps``, ``x + 1``), not a negative number (``x - 1``)."""
    if not isinstance(arg, sympy.Add):
        return False
    return any(not (term.free_symbols & variables) and (bool(term.free_symbols) or term.is_positive)
               for term in arg.args)


class _TextPrinter(sympy.printing.str.StrPrinter):
    """sympy's str printer, with floats printed exactly (shortest round-trip repr)."""

    def _print_Float(self, expr: sympy.Float) -> str:
        return repr(float(expr))

    def _print_Exp1(self, expr: sympy.Expr) -> str:
        return "exp(1)"

    def _print_Pi(self, expr: sympy.Expr) -> str:
        return "pi"


def _print_text(expr: sympy.Expr) -> str:
    return _TextPrinter({"order": "none"}).doprint(expr)


def _structural_order(expr: sympy.Expr, parameters: set[sympy.Symbol]) -> list[sympy.Symbol]:
    """The parameters in order of first visit of the expression tree, where the arguments of
    a sum, product, min or max are visited sorted by their text with every parameter blanked
    out: an order that does not depend on the parameters' names (only ties of identically
    shaped arguments keep sympy's order)."""
    blank = {p: sympy.Symbol("_p", real=True) for p in parameters}
    order: list[sympy.Symbol] = []

    def visit(node: sympy.Basic) -> None:
        if node in parameters:
            if node not in order:
                order.append(node)
            return
        args = node.args
        if isinstance(node, (sympy.Add, sympy.Mul, sympy.Min, sympy.Max)):
            args = sorted(args, key=lambda a: _print_text(a.xreplace(blank)))
        for arg in args:
            visit(arg)

    visit(expr)
    return order


def _names_in_text_order(text: str, names: set[str]) -> tuple[str, ...]:
    """The ``names`` in their order of first appearance in formula ``text``."""
    return tuple(dict.fromkeys(n for n in _NAME_TOKEN.findall(text) if n in names))


_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
    "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
}


def _latex_name(name: str) -> str:
    head, _, tail = name.partition("_")
    head_tex = f"\\{head}" if head in _GREEK else (head if len(head) == 1 else f"\\mathrm{{{head}}}")
    if tail:
        return f"{head_tex}_{{\\mathrm{{{tail}}}}}" if len(tail) > 1 else f"{head_tex}_{{{tail}}}"
    return head_tex


def _sympy_source(law: Law) -> str:
    names = [*law.variables, *law.parameters]
    lines = ["import sympy", ""]
    lines += [f"{n} = sympy.Symbol({n!r}, real=True)" for n in names]
    from sympy.printing.pycode import SymPyPrinter

    printer = SymPyPrinter({"fully_qualified_modules": True})
    lines += [f"law = {printer.doprint(law.expr)}", ""]
    return "\n".join(lines)
