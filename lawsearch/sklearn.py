"""A scikit-learn estimator over the discovery engine: :class:`LawRegressor`.

``LawRegressor().fit(X, y)`` runs a discovery on the table (a DataFrame, whose
column names become the law's variables, or an array, whose columns are
``x0``, ``x1`` …), then refits the winning law on every row; ``predict`` uses
those parameters.  Parameters may be fitted per group (``groups=`` in fit and
predict), as a task's ``group`` column does.

The estimator's data has no held-out test split.  A task needs one, so the one
largest-scale row of each group is set aside as the task's test row: the search
(whose selection uses validation rows carved from the rest, as always) never
sees it, and the final refit uses all rows.  ``result_.law_json`` therefore
reports test metrics on those few rows only.

scikit-learn is an optional dependency (``pip install 'lawsearch[sklearn]'``).
"""

from __future__ import annotations

import keyword
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from .errors import EngineUnavailable
from .fit import fit_law
from .formula import FUNCTIONS, Law

try:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.metrics import r2_score
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    raise EngineUnavailable(
        "scikit-learn is not installed (version 1.6 or later is needed): pip install 'lawsearch[sklearn]'"
    ) from None

__all__ = ["LawRegressor"]

MIN_ROWS_PER_GROUP = 3
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESERVED = frozenset(FUNCTIONS) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
_TINY_HOLDOUT = 1e-9  # test_fraction that holds out exactly one row per group


def _usable(name: Any, taken: set[str]) -> bool:
    return isinstance(name, str) and bool(_NAME.match(name)) and name not in _RESERVED and name not in taken


def _variable_names(names: Sequence[Any] | None, n: int) -> list[str]:
    """Formula-safe variable names: the given ones where usable, else ``x<i>`` (never clashing)."""
    given = list(names) if names is not None else [None] * n
    chosen: list[str | None] = [None] * n
    taken: set[str] = set()
    for i, name in enumerate(given):
        if _usable(name, taken):
            chosen[i] = name
            taken.add(name)
    for i in range(n):
        if chosen[i] is None:
            name, k = f"x{i}", 0
            while name in taken or name in given:
                k += 1
                name = f"x{i}_{k}"
            chosen[i] = name
            taken.add(name)
    return [str(c) for c in chosen]


class LawRegressor(RegressorMixin, BaseEstimator):
    """Discover a closed-form scaling law ``y = f(x; θ)`` and use it as a regressor.

    Parameters
    ----------
    time_limit : float, default=60.0
        Wall-time budget of the search, in seconds.
    generations : int, default=20
        Maximum number of generations of the search.
    random_state : int, RandomState instance or None, default=0
        Seed of the search and the fitter (an int makes ``fit`` deterministic).
    proposers : tuple of str, default=("library", "mutate")
        Proposers of formulas: any of "library", "mutate", "operon", "pysr", "llm".
    max_parameters : int or None, default=None
        Most parameters a law may have (per group).
    workers : int, default=1
        Local worker processes for fitting candidates.
    validation_fraction : float, default=0.2
        Share of each group's rows (the largest-scale ones) the search selects laws on.
    out : str, Path or None, default=None
        Folder under which each fit writes its run directory (``fit-*``: law.json, history …);
        None writes to a temporary directory removed after fit (``result_.run_dir`` is then gone).
    quiet : bool, default=True
        False prints the search's log lines.
    search_settings : dict or None, default=None
        Further :class:`~lawsearch.search.settings.SearchSettings` fields,
        e.g. ``{"initial_library": 20, "search_starts": 8}``.

    Attributes
    ----------
    law_ : Law
        The discovered law (variables named as in ``input_names_``).
    formula_ : str
        The law as text.
    fitted_ : dict
        Its parameters refitted on every row: ``{group: {parameter: value}}``.
    result_ : DiscoveryResult
        The discovery run (``result_.law_json`` holds its law.json).
    input_names_ : list of str
        The law's variable for each feature (the feature names where they are valid names).
    target_name_ : str
        The law's name for the target.
    groups_ : tuple of str
        The groups seen in fit.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names.
    """

    def __init__(
        self,
        time_limit: float = 60.0,
        generations: int = 20,
        random_state: Any = 0,
        proposers: tuple[str, ...] = ("library", "mutate"),
        max_parameters: int | None = None,
        workers: int = 1,
        validation_fraction: float = 0.2,
        out: str | Path | None = None,
        quiet: bool = True,
        search_settings: dict[str, Any] | None = None,
    ) -> None:
        self.time_limit = time_limit
        self.generations = generations
        self.random_state = random_state
        self.proposers = proposers
        self.max_parameters = max_parameters
        self.workers = workers
        self.validation_fraction = validation_fraction
        self.out = out
        self.quiet = quiet
        self.search_settings = search_settings

    # ------------------------------------------------------------------ sklearn plumbing
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True  # a law search on arbitrary data may not beat the checks' bar
        return tags

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        law = state.pop("law_", None)
        if law is not None:  # a Law holds compiled closures: pickle its text, parse it back
            state["_law_source"] = (law.text, tuple(law.inputs))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        source = state.pop("_law_source", None)
        super().__setstate__(state)
        if source is not None:
            self.law_ = Law.parse(source[0], list(source[1]))

    # ------------------------------------------------------------------ helpers
    def _seed(self) -> int:
        if isinstance(self.random_state, (int, np.integer)) and not isinstance(self.random_state, bool):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    @staticmethod
    def _group_labels(groups: Any, n: int) -> np.ndarray:
        if groups is None:
            return np.full(n, "all", dtype=object)
        labels = np.asarray(groups)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"groups must be a 1-d array of {n} labels (one per row of X), got shape {labels.shape}")
        if pd.isna(labels).any():
            raise ValueError("groups has a missing label")
        return labels.astype(str).astype(object)

    def _settings(self, seed: int) -> Any:
        from .search.settings import SearchSettings

        extra = {"bootstrap": 0, **(self.search_settings or {})}  # intervals are for run reports, not estimators
        fields = {"seed": seed, "generations": self.generations, "time_limit": self.time_limit,
                  "workers": self.workers, "proposers": tuple(self.proposers),
                  "validation_fraction": self.validation_fraction, "max_parameters": self.max_parameters}
        clash = sorted(set(extra) & set(fields))
        if clash:
            raise ValueError(f"search_settings sets {clash[0]!r}, which is a LawRegressor parameter: set it there")
        try:
            return SearchSettings(**fields, **extra)
        except ValidationError as exc:  # reported as sklearn does, a ValueError
            raise ValueError(f"invalid LawRegressor settings: {exc}") from None

    # ------------------------------------------------------------------ the estimator
    def fit(self, X: Any, y: Any, groups: Any = None) -> LawRegressor:
        """Discover a law on (X, y), then refit it on every row; ``groups`` fits parameters per group."""
        from .search.engine import discover
        from .task import task_from_frame

        target_hint = getattr(y, "name", None)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        n = X.shape[0]
        labels = self._group_labels(groups, n)
        names, counts = np.unique(labels, return_counts=True)
        small = names[counts < MIN_ROWS_PER_GROUP]
        if small.size:
            k = int(counts[counts < MIN_ROWS_PER_GROUP][0])
            where = f"group {small[0]!r} has" if groups is not None else "got"
            raise ValueError(
                f"LawRegressor needs at least {MIN_ROWS_PER_GROUP} samples per group; {where} n_samples = {k}"
            )
        inputs = _variable_names(getattr(self, "feature_names_in_", None), X.shape[1])
        target = next(t for t in (target_hint, "y", "target", "target_y") if _usable(t, set(inputs)))
        group_column = next(g for g in ("group", "group_", "group__") if g not in inputs and g != target)
        frame = pd.DataFrame(X, columns=inputs)
        frame[target] = y
        frame[group_column] = labels
        task = task_from_frame(
            frame, name="sklearn", inputs=inputs, target=target,
            group=group_column if groups is not None else None,
            split={"extrapolate": {"test_fraction": _TINY_HOLDOUT}},
        )
        seed = self._seed()
        settings = self._settings(seed)
        log = None if self.quiet else print
        if self.out is None:
            scratch = tempfile.mkdtemp(prefix="lawsearch-")
            try:
                result = discover(task, settings, out=Path(scratch) / "run", log=log)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        else:
            Path(self.out).mkdir(parents=True, exist_ok=True)
            run_dir = Path(tempfile.mkdtemp(prefix="fit-", dir=self.out))
            result = discover(task, settings, out=run_dir, log=log)

        law = Law.parse(result.formula, inputs, [target])
        fit = fit_law(law, X, y.reshape(-1, 1), labels, [target], seed=seed)
        self.law_ = law
        self.formula_ = law.text
        self.fitted_ = fit.parameters()
        self.result_ = result
        self.input_names_ = inputs
        self.target_name_ = target
        self.groups_ = tuple(fit.groups)
        return self

    def _theta(self, group: str) -> np.ndarray:
        if group not in self.fitted_:
            raise ValueError(f"group {group!r} was not seen in fit (groups: {', '.join(self.groups_)})")
        params = self.fitted_[group]
        return np.array([params[p] for p in self.law_.parameters], dtype=float)

    def predict(self, X: Any, groups: Any = None) -> np.ndarray:
        """Predictions of the fitted law; ``groups`` picks each row's parameters (needed when fitted per group)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        n = X.shape[0]
        if groups is None:
            if len(self.groups_) != 1:
                raise ValueError(
                    f"this LawRegressor was fitted per group ({', '.join(self.groups_)}): pass groups= to predict"
                )
            labels = np.full(n, self.groups_[0], dtype=object)
        else:
            labels = self._group_labels(groups, n)
        out = np.empty(n)
        for group in dict.fromkeys(labels.tolist()):
            rows = labels == group
            out[rows] = self.law_.evaluate(X[rows], self._theta(group))
        return out

    def score(self, X: Any, y: Any, sample_weight: Any = None, groups: Any = None) -> float:
        """R² of the predictions (``groups`` as in :meth:`predict`)."""
        return float(r2_score(y, self.predict(X, groups=groups), sample_weight=sample_weight))
