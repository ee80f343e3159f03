"""The :class:`Law`: a closed-form law ``y = f(x; θ)`` over task inputs and fitted parameters."""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy

from ..errors import FormulaError
from .compile import LinearSplit, NumpyFunction, compile_expr, compile_together
from .grammar import ANY_NAME, CANONICAL_ROUNDS, MAX_DEPTH, MAX_NODES, MAX_TEXT, NAME, SELF
from .parser import TreeBuilder, check_plain_name, names_in_text_order, strip_target
from .printers import latex_name, print_text, sympy_source
from .structure import expression_size, is_shifted, structural_order


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
        body = strip_target(text.strip(), targets, inputs).strip().replace("^", "**")
        if not body:
            raise FormulaError("empty formula")
        for name in ANY_NAME.findall(body):
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
        builder = TreeBuilder(inputs)
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
        bad = sorted(s.name for s in expr.free_symbols if s.name.startswith("_") or not NAME.match(s.name))
        if bad:
            raise FormulaError(f"name {bad[0]!r} is not allowed")
        pairs = tuple((str(t), str(x)) for t, x in pairs)
        if any(s.name == SELF for s in expr.free_symbols) and SELF not in inputs and not pairs:
            raise FormulaError(f"{SELF!r} names the input paired with each target, but this task pairs none "
                               "(give the task 'pairs')")
        text = print_text(expr)
        names = names_in_text_order(text, {s.name for s in expr.free_symbols})
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
        return expression_size(self.expr)

    @property
    def text(self) -> str:
        """Formula text that :meth:`parse` reads back into the same expression."""
        if "text" not in self._cache:
            self._cache["text"] = print_text(self.expr)
        return self._cache["text"]

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Law({self.text!r})"

    @property
    def canonical(self) -> str:
        """A key equal for laws that differ only in parameter names or in the order their text
        wrote them (for deduplication): ``E + A/x**alpha`` and ``c + beta/x**Q`` share one.

        Parameters are renamed ``_p0``, ``_p1`` … in the order of :func:`structural_order`,
        which does not depend on their names, then the renamed law is printed; as a renaming
        can reorder sympy's sorted arguments, the printed order is then settled by renaming
        in text order (a few rounds).  The key is the printed text, which, unlike sympy's
        tree order (the arguments of ``Min``), does not depend on Python's hash seed.
        The keys of the process's recent laws are kept (:func:`canonical_text`): a proposal is
        parsed again by the search after its proposer checked it.
        """
        if "canonical" not in self._cache:
            self._cache["canonical"] = canonical_text(self.expr, frozenset(self.parameters))
        return self._cache["canonical"]

    def in_text_order(self) -> Law:
        """This law with its parameters in the order of its printed text (:attr:`text`), which
        depends on the expression only.

        The fitter works in this order, so one law written in two ways (``B/x + E`` and
        ``E + B/x``) gets the same starting points and the same fit, in every process.
        """
        if "text_order" not in self._cache:
            order = names_in_text_order(self.text, set(self.parameters))
            reordered = self if order == self.parameters else Law(self.expr, self.inputs, order, self.pairs)
            reordered._cache["derivative"] = self._cache.setdefault("derivative", {})  # the same expression
            self._cache["text_order"] = reordered
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
            self._cache["function"] = compile_expr(self.expr, self._index())
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

    def derivative(self, name: str) -> sympy.Expr:
        """``df/d name``, differentiated once per expression (laws that only order their parameters
        differently, :meth:`in_text_order`, share these): sympy's ``diff`` is slow."""
        found = self._cache.setdefault("derivative", {})
        if name not in found:
            found[name] = sympy.diff(self.expr, self.symbol(name))
        return found[name]

    def gradient_functions(self) -> list[NumpyFunction]:
        """``df/dp(X, theta)`` for each parameter p, in order (compiled once)."""
        if "gradient" not in self._cache:
            index = self._index()
            self._cache["gradient"] = [compile_expr(self.derivative(p), index) for p in self.parameters]
        return self._cache["gradient"]

    def gradient_together(self) -> Callable[[np.ndarray, np.ndarray], list]:
        """``[df/dp(X, theta) for each parameter p]`` in one call, each shared subexpression
        computed once (:func:`~lawsearch.formula.compile.compile_together`; compiled once)."""
        if "gradient_together" not in self._cache:
            self._cache["gradient_together"] = compile_together([self.derivative(p) for p in self.parameters],
                                                                self._index())
        return self._cache["gradient_together"]

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
            d = self.derivative(self.parameters[j])
            if d == 0 or d.has(p):
                continue
            if any(d.has(symbols[k]) for k in linear):
                continue
            if any(self.derivative(self.parameters[k]).has(p) for k in linear):
                continue
            linear.append(j)
        index = self._index()
        zero = {symbols[k]: 0 for k in linear}
        parts = [self.expr.xreplace(zero), *(self.derivative(self.parameters[k]) for k in linear)]
        offset, *columns = (compile_expr(part, index) for part in parts)
        split = LinearSplit(linear=tuple(linear), offset=offset, columns=tuple(columns),
                            together=compile_together(parts, index))
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
            if is_shifted(arg, variables):
                continue
            found |= {s.name for s in arg.free_symbols if s in variables}
        if SELF in found:
            found |= {x for _, x in self.pairs}
        return tuple(n for n in self.inputs if n in found)

    # ------------------------------------------------------------------ printers
    def to_latex(self) -> str:
        """LaTeX of the law."""
        names = {self.symbol(n): latex_name(n) for n in (*self.inputs, *self.parameters)}
        return sympy.latex(self.expr, symbol_names=names)

    def _repr_latex_(self) -> str:
        """Rendered LaTeX in a notebook."""
        return f"$\\displaystyle {self.to_latex()}$"

    def to_sympy(self) -> str:
        """Python source that rebuilds the law as a sympy expression named ``law``."""
        return sympy_source(self)

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


@functools.lru_cache(maxsize=4096)
def canonical_text(expr: sympy.Expr, parameters: frozenset[str]) -> str:
    """The canonical key of :attr:`Law.canonical` for ``expr`` with these parameter names."""
    def symbol(name: str) -> sympy.Symbol:
        return sympy.Symbol(name, real=True)

    symbols = [symbol(n) for n in sorted(parameters)]
    order = structural_order(expr, set(symbols))
    expr = expr.xreplace({s: symbol(f"_p{i}") for i, s in enumerate(order)})
    text, names = print_text(expr), {f"_p{i}" for i in range(len(order))}
    for _ in range(CANONICAL_ROUNDS):
        ranked = names_in_text_order(text, names)
        renamed = expr.xreplace({symbol(n): symbol(f"_p{i}") for i, n in enumerate(ranked)})
        if renamed == expr:
            break
        expr, text = renamed, print_text(renamed)
    return text
