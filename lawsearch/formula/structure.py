"""Structural helpers of a law: the name-independent parameter order and shifted logarithm arguments."""

from __future__ import annotations

import sympy

from .printers import print_text


def is_shifted(arg: sympy.Expr, variables: set[sympy.Symbol]) -> bool:
    """Whether a sum has a term free of variables that can keep it positive: a parameter or a
    positive number (``p + eps``, ``x + 1``), not a negative number (``x - 1``)."""
    if not isinstance(arg, sympy.Add):
        return False
    return any(not (term.free_symbols & variables) and (bool(term.free_symbols) or term.is_positive)
               for term in arg.args)


def structural_order(expr: sympy.Expr, parameters: set[sympy.Symbol]) -> list[sympy.Symbol]:
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
            args = sorted(args, key=lambda a: print_text(a.xreplace(blank)))
        for arg in args:
            visit(arg)

    visit(expr)
    return order


def expression_size(expr: sympy.Expr) -> int:
    """Expression-tree size: the number of nodes of the sympy tree (a law's complexity)."""
    return sum(1 for _ in sympy.preorder_traversal(expr))
