"""Engine text → our grammar, on the Python syntax tree: engine function names, Julia float literals.

The engines' names for grammar functions come from the grammar's one table
(:data:`lawsearch.formula.grammar.FUNCTIONS`, see :func:`~lawsearch.formula.grammar.engine_operators`);
PySR's operators that are arithmetic (``square``, ``inv``, ``safe_pow``, …) are rewritten here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping


from ...errors import FormulaError
from ...formula.grammar import FUNCTIONS, engine_operators


# ---------------------------------------------------------------------- text rewriting
def _pow(base: ast.expr, exponent: int) -> ast.expr:
    return ast.BinOp(left=base, op=ast.Pow(), right=ast.Constant(exponent))


def _call(name: str, *args: ast.expr) -> ast.expr:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


CallRewrite = Callable[[list[ast.expr]], ast.expr]

def _of_abs(name: str) -> CallRewrite:
    """``op(a)`` → ``name(abs(a))``."""
    return lambda a: _call(name, _call("abs", a[0]))


def _guarded(name: str) -> dict[str, CallRewrite]:
    """SymbolicRegression.jl's guarded twins of the grammar function ``name``: ``safe_name(a)`` is
    ``name(a)``, ``name_abs(a)`` is ``name(abs(a))``."""
    return {f"safe_{name}": lambda a: _call(name, a[0]), f"{name}_abs": _of_abs(name)}


#: PySR's arithmetic operators (no grammar function), as our grammar (the unary ones are PySR operator names).
PYSR_UNARY_REWRITES: dict[str, CallRewrite] = {
    "square": lambda a: _pow(a[0], 2),
    "cube": lambda a: _pow(a[0], 3),
    "neg": lambda a: ast.UnaryOp(op=ast.USub(), operand=a[0]),
    "inv": lambda a: ast.BinOp(left=ast.Constant(1), op=ast.Div(), right=a[0]),
}
_BINARY_REWRITES: dict[str, CallRewrite] = {
    "plus": lambda a: ast.BinOp(left=a[0], op=ast.Add(), right=a[1]),
    "sub": lambda a: ast.BinOp(left=a[0], op=ast.Sub(), right=a[1]),
    "mult": lambda a: ast.BinOp(left=a[0], op=ast.Mult(), right=a[1]),
    "div": lambda a: ast.BinOp(left=a[0], op=ast.Div(), right=a[1]),
    "safe_pow": lambda a: ast.BinOp(left=a[0], op=ast.Pow(), right=a[1]),
    "pow_abs": lambda a: ast.BinOp(left=_call("abs", a[0]), op=ast.Pow(), right=a[1]),
}
#: The grammar's one-argument functions (lower case), read as written in engine output.
GRAMMAR_UNARY = frozenset(name for name, function in FUNCTIONS.items() if 1 in function.arities and name.islower())


#: PySR / SymbolicRegression.jl operator names → our grammar (by syntax-tree rewrite): the arithmetic
#: operators above, the guarded twins (``safe_log``, ``log_abs``, ...) of every one-argument grammar
#: function, and PySR's operators for a grammar function of ``abs`` (``logm``).  PySR's operators for the
#: grammar functions themselves print under the function's name and are read as written.
PYSR_FUNCTIONS: dict[str, CallRewrite] = {
    **PYSR_UNARY_REWRITES,
    **_BINARY_REWRITES,
    **{key: rewrite for name in sorted(GRAMMAR_UNARY) for key, rewrite in _guarded(name).items()},
    **{operator: _of_abs(name) for operator, name in engine_operators("pysr", of_abs=True).items()},
}
_ARITY = {name: 2 for name in _BINARY_REWRITES}


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
