"""lawsearch: discover closed-form scaling laws that extrapolate.

Public API (imported lazily, so ``import lawsearch`` stays fast and side-effect free)::

    from lawsearch import load_task, Law, fit_law, evaluate_law, fold_scores, discover, LawRegressor
"""

from __future__ import annotations

from .lazy import lazy_exports

__version__ = "0.1.0"

__all__, __getattr__ = lazy_exports(__name__, {
    "lawsearch.task": ("load_task", "Task"),
    "lawsearch.formula": ("Law",),
    "lawsearch.fit": ("fit_law", "FitOptions"),
    "lawsearch.evaluate": ("evaluate_law", "fold_scores"),
    "lawsearch.metrics": ("compute_metrics",),
    "lawsearch.quick": ("discover",),
    "lawsearch.search.settings": ("SearchSettings",),
    "lawsearch.sklearn": ("LawRegressor",),
    "lawsearch.errors": ("LawsearchError", "FormulaError", "TaskError", "DataError"),
})
