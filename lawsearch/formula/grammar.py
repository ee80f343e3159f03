"""The formula grammar: the functions and constants a law may use, and the size limits."""

from __future__ import annotations

import re
from collections.abc import Callable

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
