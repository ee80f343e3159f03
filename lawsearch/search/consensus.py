"""The consensus winner rule: among the laws the validation rows cannot tell apart, the one whose
extrapolation agrees most with the others'.

The one-standard-error rule (:func:`~.archive.select_winner`) takes the simplest law
within ``best + se`` of the best validation error.  When several laws share that band,
which of them a run has found, and so which is simplest, depends on the seed, and
laws of the band can extrapolate very differently (one with an extra ``-D/N**alpha``
term turns around beyond the data).  This rule takes the band's *medoid* instead:
each law of the band is fitted on all of train, as the winner will be, and predicts
*probe rows* beyond the data (the validation rows with every positive scale input
multiplied by :data:`PROBE_FACTORS`); the law whose predictions lie closest (mean
squared distance, each output in units of its train spread) to the pointwise median
of the band's wins.  A law that alone departs from the others is not chosen, and a
law found by several seeds is chosen by all of them.  No test row is used: the probe
rows are built from train rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import LawsearchError
from ..fit import FitOptions, fit_law
from ..task import Task, TaskData
from .archive import Candidate, winner_threshold
from .folds import FOLD_FIT_EFFORT

__all__ = ["PROBE_FACTORS", "MAX_BAND", "probe_rows", "consensus_index", "consensus_winner"]

#: How far the probe rows push the validation rows' scale inputs (1: the validation rows themselves).
PROBE_FACTORS = (1.0, 2.0, 4.0, 10.0)
#: The band holds at most this many laws (those of lowest validation error).
MAX_BAND = 8


def probe_rows(task: Task, rows: TaskData, factors: Sequence[float] = PROBE_FACTORS) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, groups) of ``rows`` repeated once per factor, each positive scale input multiplied
    by it; with no positive scale input, ``rows`` once."""
    positive = [task.inputs.index(c) for c in task.scale_columns if np.all(task.train.X[:, task.inputs.index(c)] > 0)]
    factors = factors if positive else (1.0,)
    blocks = []
    for factor in factors:
        X = rows.X.copy()
        X[:, positive] *= factor
        blocks.append(X)
    return np.vstack(blocks), np.tile(rows.groups, len(factors))


def consensus_index(predictions: Sequence[np.ndarray | None], spread: np.ndarray) -> tuple[int, list[float]]:
    """Index of the prediction set closest to the pointwise median of the finite ones, and each set's
    distance (mean squared difference in units of ``spread`` per output; inf when not finite).
    Ties go to the earlier index."""
    finite = [p is not None and bool(np.all(np.isfinite(p))) for p in predictions]
    if not any(finite):
        raise LawsearchError("no law of the band predicts finite values on the probe rows")
    median = np.median(np.stack([p for p, ok in zip(predictions, finite) if ok]), axis=0)
    scale = np.maximum(np.asarray(spread, dtype=float), 1e-300)
    distances = [float(np.mean(((p - median) / scale) ** 2)) if ok else float("inf")
                 for p, ok in zip(predictions, finite)]
    return int(np.argmin(distances)), distances


def consensus_winner(
    front: list[Candidate],
    task: Task,
    validation: TaskData,
    *,
    tolerance: float = 0.0,
    seed: int = 0,
) -> tuple[Candidate, dict[str, Any]] | None:
    """The medoid of the one-standard-error band of ``front`` (see the module doc) and a record of
    the choice for law.json; None for an empty front.  Each law of the band is fitted with the
    folds' effort (:data:`~.folds.FOLD_FIT_EFFORT`) within the bounds its spec states."""
    threshold = winner_threshold(front, tolerance)
    band = sorted((c for c in front if c.val_error <= threshold), key=lambda c: (c.complexity, c.val_error))
    if not band:
        return None
    band = sorted(sorted(band, key=lambda c: c.val_error)[:MAX_BAND], key=lambda c: (c.complexity, c.val_error))
    X_probe, groups_probe = probe_rows(task, validation)
    train = task.train
    predictions: list[np.ndarray | None] = []
    for cand in band:
        try:
            law = task.parse_law(cand.formula)
            options = dataclasses.replace(task.fit_options(law) or FitOptions(), **FOLD_FIT_EFFORT)
            fit = fit_law(law, train.X, train.Y, train.groups, train.targets, options, seed=seed)
            with np.errstate(all="ignore"):
                predictions.append(fit.predict(X_probe, groups_probe, train.targets))
        except LawsearchError:
            predictions.append(None)
    index, distances = consensus_index(predictions, np.std(train.Y, axis=0))
    record = {
        "rule": "consensus: among the Pareto laws within the one-standard-error band, the one whose "
                "predictions beyond the data (validation rows with the scale inputs x "
                + ", ".join(f"{f:g}" for f in PROBE_FACTORS) + ") lie closest to the band's median",
        "tolerance": tolerance,
        "band": [{"formula": c.formula, "val_error": c.val_error, "complexity": c.complexity,
                  "distance": d} for c, d in zip(band, distances)],
    }
    return band[index], record
