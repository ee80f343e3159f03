"""The nested-model rule: a law that holds a simpler law as a special case fits at least as well.

A mutation often grows a law (a term added, a factor raised to a new power).  Where the grown
law reproduces its parent with its new parameters at 0 or 1, the parent's fitted parameters
are a point of the grown law with the parent's loss; started there (``fit_law``'s ``start``,
which the multi-start always optimizes first and trf never leaves uphill), the grown law's fit
can only match or beat its parent's.  Without that start a large law (14-31 parameters: the
shape of the best lr_bsz laws) may end in a poor basin far worse than the law it contains.
"""

from __future__ import annotations

import itertools

import numpy as np

from .formula import Law

__all__ = ["nested_start", "nested_starts", "MAX_NEW_PARAMETERS"]

#: Up to this many new parameters every 0/1 assignment is tried; beyond, only all-0 and all-1.
MAX_NEW_PARAMETERS = 8
_AGREE = 1e-9  # relative agreement of predictions that shows the parent is reproduced


def nested_start(parent: Law, parent_theta: np.ndarray, child: Law, X: np.ndarray) -> np.ndarray | None:
    """Parameters of ``child`` at which it predicts what ``parent`` predicts at ``parent_theta``
    on rows ``X``: shared parameter names keep the parent's values, the child's new ones are
    set to 0 or 1; None if no such assignment reproduces the parent (it is not nested)."""
    X = np.asarray(X, dtype=float)
    target = parent.evaluate(X, parent_theta)
    if not np.all(np.isfinite(target)):
        return None
    values = dict(zip(parent.parameters, np.asarray(parent_theta, dtype=float)))
    new = [j for j, p in enumerate(child.parameters) if p not in values]
    theta = np.array([values.get(p, 0.0) for p in child.parameters])
    if len(new) <= MAX_NEW_PARAMETERS:
        choices = itertools.product((0.0, 1.0), repeat=len(new))
    else:
        choices = iter([(0.0,) * len(new), (1.0,) * len(new)])
    scale = np.maximum(np.abs(target), np.max(np.abs(target), initial=0.0) * 1e-12)
    for choice in choices:
        theta[new] = choice
        pred = child.evaluate(X, theta)
        if np.all(np.abs(pred - target) <= _AGREE * scale):
            return theta.copy()
    return None


def nested_starts(parent: Law, fitted: list[tuple[str, str, list[float]]], child: Law, X: np.ndarray,
                  groups: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
    """``fit_law``'s ``start`` for ``child`` from its parent's fit (``fitted``: (group, target,
    parameters) triples on rows ``X`` labelled ``groups``): every (group, target) where the parent
    is nested in the child (:func:`nested_start`)."""
    labels = np.asarray(groups).astype(str)
    starts = {}
    for group, target, theta in fitted:
        rows = labels == str(group)
        if rows.any():
            start = nested_start(parent.bound(target), np.asarray(theta, dtype=float), child.bound(target), X[rows])
            if start is not None:
                starts[(str(group), str(target))] = start
    return starts
