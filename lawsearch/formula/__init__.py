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

from .compile import LinearSplit, NumpyFunction
from .grammar import CONSTANTS, FUNCTIONS, MAX_NODES, SELF
from .law import Law
from .parser import check_plain_name

__all__ = ["Law", "FUNCTIONS", "CONSTANTS", "MAX_NODES", "SELF", "LinearSplit", "NumpyFunction", "check_plain_name"]
