"""lawsearch: discover closed-form scaling laws that extrapolate.

Public API (imported lazily, so ``import lawsearch`` stays fast and side-effect free)::

    from lawsearch import load_task, Law, fit_law, evaluate_law, discover, LawRegressor
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_task": "lawsearch.task",
    "Task": "lawsearch.task",
    "Law": "lawsearch.formula",
    "fit_law": "lawsearch.fit",
    "FitOptions": "lawsearch.fit",
    "evaluate_law": "lawsearch.evaluate",
    "compute_metrics": "lawsearch.metrics",
    "discover": "lawsearch.quick",
    "SearchSettings": "lawsearch.search.settings",
    "LawRegressor": "lawsearch.sklearn",
    "LawsearchError": "lawsearch.errors",
    "FormulaError": "lawsearch.errors",
    "TaskError": "lawsearch.errors",
    "DataError": "lawsearch.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lawsearch' has no attribute {name!r}")
