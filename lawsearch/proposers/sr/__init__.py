"""Symbolic-regression proposers: engine text → laws (:mod:`.rewrite`, :mod:`.simplify`,
:mod:`.translation`), the shared proposer loop (:mod:`.loop`) and one module per engine
(:mod:`.operon`, :mod:`.pysr`, imported lazily by the proposer registry).

The names below are imported lazily, so reading the engines' settings (:mod:`.settings`) does
not load sympy.  (The module is ``translation``, not ``translate``: importing a submodule binds
its name in the package, which would hide the function ``translate``.)
"""

from __future__ import annotations

from ...lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    ".translation": ("Translation", "translate", "combine", "MAX_INTEGER_EXPONENT"),
    ".rewrite": ("rewrite_calls", "PYSR_FUNCTIONS"),
    ".simplify": ("merge_parameters",),
    ".loop": ("MIN_ROWS", "EngineModel", "SRJob", "SRProposer"),
})
