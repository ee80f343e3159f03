"""Nested extrapolation folds of the train split and the winner rule that scores laws on them.

One cut of the largest train rows ranks laws noisily: a law can win that cut by
luck and extrapolate worse than another.  The folds here roll the origin down
the scale axis (Tashman's rolling-origin evaluation): fold 1 is the search's own
validation cut (the largest train rows of each group, fitted on the rest); fold
2 holds out the largest rows of what fold 1 fitted on, and fits on the rest of
those; and so on.  So every fold extrapolates, the fitting rows are nested
(fold k+1 fits on a subset of fold k's), each fold's held-out rows lie below
the previous fold's on the scale axis, and no fold ever sees a test row.

:func:`select_by_folds` ranks the finalists by their mean error over the folds
(on a log scale) times a complexity penalty ``exp(penalty · n_parameters)``,
with the penalty chosen on the folds themselves (leave one fold out), never on
test rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..task import Task, TaskData, holdout_largest
from .archive import Candidate

__all__ = ["FOLD_FIT_EFFORT", "extrapolation_folds", "select_by_folds", "fold_winner", "FoldChoice", "PENALTIES", "MIN_FIT_SHARE"]

#: Complexity penalties (per parameter, on the log of the mean fold error) the winner rule chooses from.
PENALTIES = (0.0, 0.05, 0.1, 0.2, 0.4)
#: Fitter effort on the folds beyond the first (the full fitter's starts and local runs, cut to about a
#: quarter: every finalist is fitted once per fold, after the search).
FOLD_FIT_EFFORT = {"n_starts": 64, "n_local": 6}
#: A fold is only made while its fitting rows are at least this share of the train rows.
MIN_FIT_SHARE = 0.3


def extrapolation_folds(task: Task, fraction: float, n_folds: int, seed: int = 0) -> list[tuple[TaskData, TaskData]]:
    """Up to ``n_folds`` nested (fit, held-out) pairs of train rows, largest scale first.

    Fold 1 is :meth:`Task.validation_split` with the same ``fraction`` and ``seed``.
    Fold k+1 applies the same cut (:func:`~lawsearch.task.holdout_largest`, a share
    ``fraction`` of each group's rows) to fold k's fitting rows.  Folds stop early when
    a cut holds out no row or leaves fewer than :data:`MIN_FIT_SHARE` of the train rows
    to fit on.  Test rows are never included (only ``task.train`` is cut).
    """
    folds: list[tuple[TaskData, TaskData]] = []
    rest = task.train
    for _ in range(n_folds):
        held = holdout_largest(task.scale_score(rest), rest.groups, fraction, seed=seed)
        fit = rest.subset(~held)
        if not held.any() or (folds and len(fit) < MIN_FIT_SHARE * len(task.train)):
            break
        folds.append((fit, rest.subset(held)))
        rest = fit
    return folds


@dataclass(frozen=True)
class FoldChoice:
    """The outcome of :func:`select_by_folds`: the winner's index, the penalty chosen and every score."""

    index: int
    penalty: float
    scores: list[float]  # mean log fold error + penalty * n_parameters, per candidate (inf: not eligible)
    regrets: dict[float, float]  # mean log regret on the left-out fold, per penalty tried


def _log_mean(errors: np.ndarray) -> np.ndarray:
    """Mean of log errors over the last axis (the log of the geometric mean); inf where any is not finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.maximum(errors, 1e-300))
    logs[~np.isfinite(errors)] = np.inf
    return logs.mean(axis=-1)


def _pick(scores: np.ndarray, n_parameters: np.ndarray, complexity: np.ndarray) -> int:
    """Index of the lowest score, ties to fewer parameters, then lower complexity."""
    return int(np.lexsort((complexity, n_parameters, scores))[0])


def select_by_folds(
    fold_errors: Sequence[Sequence[float]],
    n_parameters: Sequence[int],
    complexity: Sequence[int],
    penalties: Sequence[float] = PENALTIES,
) -> FoldChoice | None:
    """The law with the lowest penalised mean fold error; None if no law has finite errors on every fold.

    A law's score is the mean over folds of log(NMSE) (the log of the geometric mean:
    one fold cannot swamp the others by its scale) plus ``penalty · n_parameters``.
    The penalty is chosen on the folds: for each penalty tried and each fold left out,
    the law the other folds choose is scored on the left-out fold by its log ratio to
    the best law there (its regret); the penalty with the lowest mean regret wins
    (ties: the smallest).  With a single fold there is nothing to leave out: penalty 0.
    """
    errors = np.array([list(e) for e in fold_errors], dtype=float)
    if errors.size == 0:
        return None
    k = np.asarray(n_parameters, dtype=float)
    c = np.asarray(complexity, dtype=float)
    finite = np.all(np.isfinite(errors), axis=1)
    if not finite.any():
        return None
    errors = np.where(finite[:, None], errors, np.inf)
    n_folds = errors.shape[1]
    regrets: dict[float, float] = {}
    if n_folds > 1:
        for penalty in penalties:
            total = 0.0
            for j in range(n_folds):
                others = _log_mean(np.delete(errors, j, axis=1)) + penalty * k
                chosen = _pick(others, k, c)
                total += math.log(errors[chosen, j] / max(float(np.min(errors[finite, j])), 1e-300))
            regrets[float(penalty)] = total / n_folds
        penalty = min(regrets, key=lambda p: (round(regrets[p], 12), p))
    else:
        penalty = 0.0
    scores = _log_mean(errors) + penalty * k
    return FoldChoice(_pick(scores, k, c), penalty, [float(s) for s in scores], regrets)


def fold_winner(candidates: Sequence[Candidate]) -> tuple[Candidate, dict[str, Any]] | None:
    """The winner among the laws scored on every fold (:func:`select_by_folds`) and a record of
    the choice for law.json; None when no law has finite errors on at least two folds."""
    scored = [c for c in candidates if c.ok and c.fold_errors is not None and len(c.fold_errors) > 1]
    choice = select_by_folds([c.fold_errors for c in scored], [c.n_parameters for c in scored],
                             [c.complexity for c in scored])
    if choice is None:
        return None
    order = sorted(range(len(scored)), key=lambda i: (choice.scores[i], scored[i].n_parameters))
    record = {
        "rule": "nested extrapolation folds: lowest mean log fold NMSE + penalty * n_parameters, the "
                "penalty chosen by leaving one fold out",
        "penalty": choice.penalty,
        "regret_by_penalty": {str(p): r for p, r in choice.regrets.items()},
        "finalists": [{"formula": scored[i].formula, "n_parameters": scored[i].n_parameters,
                       "source": scored[i].source, "fold_errors": scored[i].fold_errors,
                       "score": choice.scores[i]} for i in order],
    }
    return scored[choice.index], record
