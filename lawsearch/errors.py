"""The lawsearch error hierarchy.

Every problem caused by the user's input (a task spec, a data table, a formula)
or by an unavailable engine raises a subclass of :class:`LawsearchError`.  The
CLI catches this one root, prints its message on one line and exits with code 2.
"""

from __future__ import annotations

__all__ = [
    "LawsearchError",
    "TaskError",
    "DataError",
    "FormulaError",
    "FitError",
    "EngineUnavailable",
    "ProposerError",
    "CheckpointError",
    "OutputError",
    "LawsearchWarning",
]


class LawsearchError(Exception):
    """Root of every error lawsearch raises on purpose."""


class TaskError(LawsearchError, ValueError):
    """A task spec (YAML) is missing, malformed or inconsistent."""


class DataError(LawsearchError, ValueError):
    """A data table is missing, malformed, or has values a law cannot use."""


class FormulaError(LawsearchError, ValueError):
    """A formula text was rejected by the safe parser."""


class FitError(LawsearchError, RuntimeError):
    """A law could not be fitted to the data at all."""


class EngineUnavailable(LawsearchError, ImportError):
    """An optional engine (PySR, Operon, an LLM client, Dask) is not installed or usable."""


class ProposerError(LawsearchError, RuntimeError):
    """A proposer failed in a way the search should record and survive."""


class CheckpointError(LawsearchError, RuntimeError):
    """A run directory or checkpoint cannot be used (e.g. --resume without a checkpoint)."""


class LawsearchWarning(UserWarning):
    """A result that may mislead (e.g. a fit with fewer rows than parameters); the CLI prints it on one line."""


class OutputError(LawsearchError, OSError):
    """A result, checkpoint or log file cannot be written (read-only or full disk, a file in the way)."""
