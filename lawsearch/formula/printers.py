"""Printers of a law: exact text, LaTeX and sympy source."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy
import sympy.printing.str

if TYPE_CHECKING:
    from .law import Law


class _TextPrinter(sympy.printing.str.StrPrinter):
    """sympy's str printer, with floats printed exactly (shortest round-trip repr)."""

    def _print_Float(self, expr: sympy.Float) -> str:
        return repr(float(expr))

    def _print_Exp1(self, expr: sympy.Expr) -> str:
        return "exp(1)"

    def _print_Pi(self, expr: sympy.Expr) -> str:
        return "pi"


def print_text(expr: sympy.Expr) -> str:
    return _TextPrinter({"order": "none"}).doprint(expr)


_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
    "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
}


def latex_name(name: str) -> str:
    head, _, tail = name.partition("_")
    head_tex = f"\\{head}" if head in _GREEK else (head if len(head) == 1 else f"\\mathrm{{{head}}}")
    if tail:
        return f"{head_tex}_{{\\mathrm{{{tail}}}}}" if len(tail) > 1 else f"{head_tex}_{{{tail}}}"
    return head_tex


def sympy_source(law: Law) -> str:
    names = [*law.variables, *law.parameters]
    lines = ["import sympy", ""]
    lines += [f"{n} = sympy.Symbol({n!r}, real=True)" for n in names]
    from sympy.printing.pycode import SymPyPrinter

    printer = SymPyPrinter({"fully_qualified_modules": True})
    lines += [f"law = {printer.doprint(law.expr)}", ""]
    return "\n".join(lines)
