"""The formula grammar: the functions and constants a law may use, and the size limits."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy


MAX_NODES = 400  # syntax-tree nodes allowed in one formula text
MAX_TEXT = 4000  # characters allowed in one formula text
MAX_DEPTH = 40
MAX_DECADES = 308  # a constant power beyond 10**±308 is outside float range
CANONICAL_ROUNDS = 4  # renaming rounds of Law.canonical
SELF = "self"  # in a law of a task with pairs: the input paired with the target being fitted


def _sigmoid(x: sympy.Expr) -> sympy.Expr:
    return 1 / (1 + sympy.exp(-x))


def _log(x: sympy.Expr, base: sympy.Expr | None = None) -> sympy.Expr:
    return sympy.log(x) if base is None else sympy.log(x) / sympy.log(base)


def _min(*args: sympy.Expr) -> sympy.Expr:
    return sympy.Min(*args)


def _max(*args: sympy.Expr) -> sympy.Expr:
    return sympy.Max(*args)


@dataclass(frozen=True)
class Function:
    """One function of the grammar: its sympy builder, the argument counts it takes, and the operator
    each SR engine has for it, by engine (``"pysr"``, ``"operon"``; absent: the engine is not given it):
    ``engines`` computes the function itself, ``engines_of_abs`` the function of ``abs`` of its first
    argument (PySR's ``logm`` is ``log(abs(x))``)."""

    build: Callable[..., sympy.Expr]
    arities: tuple[int, ...]
    engines: Mapping[str, str] = field(default_factory=dict)
    engines_of_abs: Mapping[str, str] = field(default_factory=dict)


def _both(name: str) -> dict[str, str]:
    """PySR and Operon both call the operator computing the function ``name`` by that name."""
    return {"pysr": name, "operon": name}


#: The one table of the grammar's functions: the parser, the compiler, the printers and the SR translators
#: read it.
FUNCTIONS: dict[str, Function] = {
    "log": Function(_log, (1, 2), _both("log"), {"pysr": "logm", "operon": "logabs"}),
    "ln": Function(sympy.log, (1,)),
    "log10": Function(lambda x: sympy.log(x) / sympy.log(10), (1,), {"pysr": "log10"}),
    "log2": Function(lambda x: sympy.log(x) / sympy.log(2), (1,), {"pysr": "log2"}),
    "log1p": Function(lambda x: sympy.log(1 + x), (1,), _both("log1p")),
    "exp": Function(sympy.exp, (1,), _both("exp")),
    "expm1": Function(lambda x: sympy.exp(x) - 1, (1,)),
    "sqrt": Function(sympy.sqrt, (1,), _both("sqrt"), {"pysr": "sqrtm", "operon": "sqrtabs"}),
    "cbrt": Function(lambda x: sympy.Pow(x, sympy.Rational(1, 3)), (1,), _both("cbrt")),
    "abs": Function(sympy.Abs, (1,), _both("abs")),
    "Abs": Function(sympy.Abs, (1,)),
    "tanh": Function(sympy.tanh, (1,), _both("tanh")),
    "sin": Function(sympy.sin, (1,)),
    "cos": Function(sympy.cos, (1,)),
    "atan": Function(sympy.atan, (1,)),
    "sigmoid": Function(_sigmoid, (1,)),
    "softplus": Function(lambda x: sympy.log(1 + sympy.exp(x)), (1,)),
    "pow": Function(sympy.Pow, (2,)),
    "min": Function(_min, (2, 3, 4), {"pysr": "min"}),
    "Min": Function(_min, (2, 3, 4)),
    "max": Function(_max, (2, 3, 4), {"pysr": "max"}),
    "Max": Function(_max, (2, 3, 4)),
}


def engine_operators(engine: str, *, of_abs: bool = False) -> dict[str, str]:
    """The operators SR engine ``engine`` has for grammar functions (those of ``abs`` of the first
    argument with ``of_abs``): the engine's operator name → the grammar function's name."""
    return {(function.engines_of_abs if of_abs else function.engines)[engine]: name
            for name, function in FUNCTIONS.items()
            if engine in (function.engines_of_abs if of_abs else function.engines)}


#: The one-argument sympy functions the compiler evaluates, with their numpy twin.
NUMPY_FUNCTIONS: dict[Callable[..., sympy.Expr], Callable[[np.ndarray], np.ndarray]] = {
    sympy.exp: np.exp,
    sympy.log: np.log,
    sympy.tanh: np.tanh,
    sympy.Abs: np.abs,
    sympy.sin: np.sin,
    sympy.cos: np.cos,
    sympy.atan: np.arctan,
    sympy.sign: np.sign,
}

#: Names that are mathematical constants, not parameters.
CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi}

GENERIC_TARGETS = ("y", "L")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
NAME_TOKEN = re.compile(r"(?<![0-9.])[A-Za-z_][A-Za-z0-9_]*")
ANY_NAME = re.compile(r"[^\W\d]\w*")  # an identifier in any script, as Python's parser reads one
