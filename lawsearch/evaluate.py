"""Law × task → fitted parameters per group + metrics, and the JSON law record."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import LawsearchWarning
from .fit import OUT_OF_TIME, FitOptions, LawFit, fit_law
from .formula import Law
from .metrics import Metrics, compute_metrics
from .task import Task, TaskData

__all__ = ["Evaluation", "FoldScore", "evaluate_law", "fit_and_score", "fold_scores", "law_record", "jsonable",
           "human_law_records"]


@dataclass(frozen=True)
class Evaluation:
    """A law fitted on a task's train split and scored on train and test."""

    law: Law
    fit: LawFit
    metrics: dict[str, Metrics]

    def record(self) -> dict[str, Any]:
        """The JSON law object (see :func:`law_record`)."""
        return law_record(self.law, self.fit, self.metrics)


def fit_and_score(
    law: Law, fit_data: TaskData, score_data: TaskData, options: FitOptions | None = None, *, seed: int = 0,
    start: Mapping[tuple[str, str], np.ndarray] | None = None,
) -> tuple[LawFit, Metrics]:
    """Fit ``law`` per group on ``fit_data`` (``start``: see :func:`fit_law`) and compute SLDBench
    metrics on ``score_data``."""
    fit = fit_law(law, fit_data.X, fit_data.Y, fit_data.groups, fit_data.targets, options, seed=seed, start=start)
    pred = fit.predict(score_data.X, score_data.groups, score_data.targets)
    return fit, compute_metrics(score_data.Y, pred)


def evaluate_law(
    task: Task, law: Law | str, *, seed: int = 0, options: FitOptions | None = None, deadline: float | None = None,
    start: Mapping[tuple[str, str], np.ndarray] | None = None,
) -> Evaluation:
    """Fit a law (object or formula text) on the task's train split; metrics on train and test.

    Without ``options``, a human law of the task is fitted within the bounds its
    spec states (:meth:`Task.fit_options`), any other law with the defaults.  A ``deadline``
    (a ``time.time()``) stops the fit there (:attr:`FitOptions.deadline`); ``start`` joins the
    fit's starting points (:func:`fit_law`).
    Raises :class:`~lawsearch.errors.FormulaError` for a bad formula and
    :class:`~lawsearch.errors.DataError` when the law takes the log (or a
    fractional power) of an input that is not positive in the data.
    """
    if isinstance(law, str):
        law = task.parse_law(law)
    task.check_law_domain(law)
    group, rows = task.smallest_group()
    if law.n_parameters > rows:
        warnings.warn(f"{task.name}: group {group!r} has {rows} train rows, fewer than the {law.n_parameters} "
                      f"parameters of {law.text}: its fit there is underdetermined", LawsearchWarning, stacklevel=2)
    options = options if options is not None else task.fit_options(law)
    if deadline is not None:
        options = dataclasses.replace(options or FitOptions(), deadline=deadline)
    fit, test_metrics = fit_and_score(law, task.train, task.test, options, seed=seed, start=start)
    train_pred = fit.predict(task.train.X, task.train.groups, task.train.targets)
    return Evaluation(law, fit, {"train": compute_metrics(task.train.Y, train_pred), "test": test_metrics})


@dataclass(frozen=True)
class FoldScore:
    """A law fitted on one nested extrapolation fold of train (:func:`fold_scores`) and scored on the
    rows that fold holds out."""

    fit_rows: int
    held_out_rows: int
    metrics: Metrics

    def as_dict(self) -> dict[str, Any]:
        return {"fit_rows": self.fit_rows, "held_out_rows": self.held_out_rows, **self.metrics.as_dict()}


def fold_scores(task: Task, law: Law | str, n_folds: int = 3, *, seed: int = 0) -> list[FoldScore]:
    """How a law extrapolates within the train split: fitted per group on each of up to ``n_folds``
    nested extrapolation folds (:func:`~lawsearch.search.folds.extrapolation_folds`: fold 1 is the
    validation cut of a search with the same ``seed`` and the default validation share, each next fold
    holds out the largest rows of the previous one's fitting rows) and scored on the rows the fold
    holds out, as :func:`evaluate_law` fits on train and scores on test.  No test row is ever used, so
    laws can be compared here without spending the test split."""
    from .search.folds import extrapolation_folds  # the search builds on this module

    if isinstance(law, str):
        law = task.parse_law(law)
    task.check_law_domain(law)
    scores = []
    for fit_rows, held in extrapolation_folds(task, task.validation_fraction(), n_folds, seed=seed):
        _, metrics = fit_and_score(law, fit_rows, held, task.fit_options(law), seed=seed)
        scores.append(FoldScore(len(fit_rows), len(held), metrics))
    return scores


def human_law_records(task: Task, *, seed: int = 0, options: FitOptions | None = None,
                      deadline: float | None = None) -> list[dict[str, Any]]:
    """Evaluate every human law of a task on the same protocol; one JSON-ready record each
    (with a ``note`` when ``deadline`` cut its fit short)."""
    records = []
    for human in task.human_laws:
        evaluation = evaluate_law(task, human.formula, seed=seed, options=options, deadline=deadline)
        records.append(
            {
                "name": human.name,
                "formula": evaluation.law.text,
                "reference": human.reference,
                "n_parameters": evaluation.law.n_parameters,
                "fitted": evaluation.fit.parameters(),
                "metrics": {"test": evaluation.metrics["test"].as_dict()},
            }
        )
        if any(OUT_OF_TIME in f.message for f in evaluation.fit.fits):
            records[-1]["note"] = "fit cut short by the time limit"
    return records


def law_record(law: Law, fit: LawFit, metrics: dict[str, Metrics]) -> dict[str, Any]:
    """The law object shared by ``evaluate --json`` and ``discover``'s law.json (with ``pairs``, the
    (target, input) pairs, when the law names ``self``)."""
    record = {
        "formula": law.text,
        "latex": law.to_latex(),
        "parameters": list(law.parameters),
        "inputs": list(law.inputs),
        "complexity": law.complexity,
        "fitted": fit.parameters(),
        "metrics": {split: m.as_dict() for split, m in metrics.items()},
    }
    if law.uses_self:
        record["pairs"] = [list(pair) for pair in law.pairs]
    return record


def jsonable(value: Any) -> Any:
    """Recursively convert numpy scalars/arrays and non-finite floats (→ None) for strict JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
