"""Symbolic-regression proposers: engine text → laws (:mod:`.rewrite`, :mod:`.simplify`,
:mod:`.translation`), the shared proposer loop (:mod:`.loop`) and one module per engine
(:mod:`.operon`, :mod:`.pysr`, imported lazily by the proposer registry).

The names below are imported lazily, so reading the engines' settings (:mod:`.settings`) does
not load sympy.  (The module is ``translation``, not ``translate``: importing a submodule binds
its name in the package, which would hide the function ``translate``.)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Translation": ".translation",
    "translate": ".translation",
    "combine": ".translation",
    "rewrite_calls": ".rewrite",
    "merge_parameters": ".simplify",
    "PYSR_FUNCTIONS": ".rewrite",
    "MAX_INTEGER_EXPONENT": ".translation",
    "MIN_ROWS": ".loop",
    "EngineModel": ".loop",
    "SRJob": ".loop",
    "SRProposer": ".loop",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
