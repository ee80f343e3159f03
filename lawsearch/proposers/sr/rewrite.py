"""Engine text → our grammar, on the Python syntax tree: engine function names, Julia float literals."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping


from ...errors import FormulaError


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
