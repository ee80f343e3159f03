"""Formula text → sympy, through a whitelist of Python syntax-tree nodes (never ``eval``)."""

from __future__ import annotations

import ast
import math
import re
import unicodedata
from collections.abc import Sequence

import sympy

from ..errors import FormulaError
from .grammar import CONSTANTS, FUNCTIONS, GENERIC_TARGETS, MAX_DECADES, MAX_DEPTH, NAME, NAME_TOKEN


def check_plain_name(name: str, what: str = "name") -> None:
    """Reject a name that Python's parser would read as another one: identifiers are NFKC-folded,
    so a full-width ``ｐａｒａｍｓ`` would silently become the input ``params`` and a bold ``𝐄`` the
    parameter ``E``."""
    folded = unicodedata.normalize("NFKC", name)
    if folded != name:
        raise FormulaError(f"{what} {name!r} is written with look-alike characters (it reads as {folded!r}); "
                           "write it in plain letters")


class TreeBuilder:
    """Turns a checked Python expression tree into a sympy expression."""

    def __init__(self, inputs: Sequence[str]) -> None:
        self.inputs = set(inputs)
        self.symbols: dict[str, sympy.Symbol] = {}
        self.order: list[str] = []  # names in order of first appearance

    def symbol(self, name: str) -> sympy.Symbol:
        if name.startswith("_") or not NAME.match(name):
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
                    raise FormulaError(f"division by zero in {ast.unparse(node)!r}")
                return left / right
            if isinstance(node.op, ast.Pow):
                if _overflowing_power(left, right):
                    raise FormulaError(f"constant {ast.unparse(node)!r} is beyond the range of floating point")
                return sympy.Pow(left, right)
            raise FormulaError(f"operator {type(node.op).__name__} in {ast.unparse(node)!r} is not allowed")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise FormulaError(f"call of {ast.unparse(node.func)!r} is not allowed")
            name = node.func.id
            if name not in FUNCTIONS:
                raise FormulaError(
                    f"unknown function {name!r}; allowed: {', '.join(sorted(set(FUNCTIONS) - {'Abs', 'Min', 'Max'}))}"
                )
            if node.keywords:
                raise FormulaError(f"keyword arguments in {name}(...) are not allowed")
            function = FUNCTIONS[name]
            if len(node.args) not in function.arities or any(isinstance(a, ast.Starred) for a in node.args):
                raise FormulaError(f"{name}() takes {' or '.join(map(str, function.arities))} argument(s), "
                                   f"got {len(node.args)}")
            return function.build(*(self.build(a, depth + 1) for a in node.args))
        raise FormulaError(f"{type(node).__name__} {ast.unparse(node)!r} is not allowed in a formula")


def _overflowing_power(base: sympy.Expr, exponent: sympy.Expr) -> bool:
    """Whether a power of two numbers is beyond float range (sympy would compute ``2**3**27`` exactly)."""
    if not (base.is_number and exponent.is_number):
        return False
    try:
        magnitude, power = abs(complex(base)), abs(complex(exponent))
    except (OverflowError, TypeError):
        return True
    return magnitude > 0 and power * abs(math.log10(magnitude)) > MAX_DECADES


_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")


def strip_target(text: str, targets: Sequence[str], inputs: Sequence[str]) -> str:
    """Remove a leading ``target =`` (or a generic ``y =``/``L =``); reject any other left side."""
    match = _ASSIGNMENT.match(text)
    if match is None:
        return text
    name = match.group(1)
    allowed = set(targets) | {n for n in GENERIC_TARGETS if n not in inputs}
    if name not in allowed:
        raise FormulaError(f"left-hand side {name!r} does not name the target ({', '.join(sorted(allowed))})")
    return text[match.end():]


def names_in_text_order(text: str, names: set[str]) -> tuple[str, ...]:
    """The ``names`` in their order of first appearance in formula ``text``."""
    return tuple(dict.fromkeys(n for n in NAME_TOKEN.findall(text) if n in names))
