"""Symbolic-regression proposers: engine text → laws (:mod:`.rewrite`, :mod:`.simplify`,
:mod:`.translate`), the shared proposer loop (:mod:`.loop`) and one module per engine
(:mod:`.operon`, :mod:`.pysr`, imported lazily by the proposer registry)."""

from .loop import MIN_ROWS, EngineModel, SRJob, SRProposer
from .rewrite import PYSR_FUNCTIONS, rewrite_calls
from .simplify import merge_parameters
from .translate import MAX_INTEGER_EXPONENT, Translation, combine, translate

__all__ = [
    "Translation",
    "translate",
    "combine",
    "rewrite_calls",
    "merge_parameters",
    "PYSR_FUNCTIONS",
    "MAX_INTEGER_EXPONENT",
    "MIN_ROWS",
    "EngineModel",
    "SRJob",
    "SRProposer",
]
