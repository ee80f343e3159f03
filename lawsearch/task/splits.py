"""Train/test splits: the scale of each row and the hold-out of the largest runs per group."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def scale_score(columns: np.ndarray, log: Sequence[bool] | None = None, largest: str = "product") -> np.ndarray:
    """Scale of each row, from its scale columns (each taken as log(x) or as x).

    ``largest="product"``: the sum over columns of log(x) (the log of the
    product), so the largest rows are those largest on all axes together.
    ``largest="any"``: the largest over columns of the row's rank fraction in
    that column (rank / n, ties sharing the highest rank), so the largest rows
    are those near the top of *any* axis.  ``log[j]`` says whether column j
    is taken as a log; by default a column is when all its values are positive.
    """
    X = np.asarray(columns, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if log is None:
        log = [bool(np.all(X[:, j] > 0)) for j in range(X.shape[1])]
    if largest not in ("product", "any"):
        raise ValueError(f"largest must be 'product' or 'any', got {largest!r}")
    with np.errstate(all="ignore"):
        values = np.column_stack([np.log(X[:, j]) if take_log else X[:, j] for j, take_log in enumerate(log)])
    if largest == "product":
        return values.sum(axis=1)
    ranks = np.column_stack([np.searchsorted(np.sort(v), v, side="right") for v in values.T])
    return ranks.max(axis=1) / max(len(X), 1)


def _holdout_count(n: int, fraction: float) -> int:
    """ceil(fraction * n), at least 1 and at most n - 1 (0 for a one-row group)."""
    if n < 2:
        return 0
    return min(max(math.ceil(fraction * n - 1e-9), 1), n - 1)


def holdout_largest(
    scores: np.ndarray | None,
    groups: np.ndarray,
    fraction: float,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Boolean mask of the rows held out: within each group, those of largest scale.

    ``scores`` is an (n,) array of scale scores, or an (n, k) array of scale
    columns combined by :func:`scale_score`.  Rule, per group of m rows: the
    k = ceil(fraction * m) rows of largest score are held out (at least 1 when
    m >= 2, at most m - 1; none when m == 1).  Rows tied with the k-th score go
    together (same scale, same side), so a group may hold out more than k rows;
    when that would leave no training row, ties are broken by row order
    (earlier rows are held out first).  With ``scores=None`` (or k = 0 scale
    columns) there is no scale axis: k rows per group are drawn at random with
    ``seed``.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    groups = np.asarray(groups)
    n = len(groups)
    if scores is not None:
        scores = np.asarray(scores, dtype=float)
        if scores.ndim == 2:
            scores = scale_score(scores) if scores.shape[1] else None
    if scores is not None:
        if scores.shape != (n,):
            raise ValueError(f"scores have shape {scores.shape}, expected ({n},)")
        if not np.all(np.isfinite(scores)):
            raise ValueError("scale scores must be finite")
    rng = np.random.default_rng(seed)
    mask = np.zeros(n, dtype=bool)
    for group in dict.fromkeys(groups.tolist()):
        index = np.flatnonzero(groups == group)
        k = _holdout_count(len(index), fraction)
        if k == 0:
            continue
        if scores is None:
            mask[rng.choice(index, size=k, replace=False)] = True
            continue
        s = scores[index]
        order = np.argsort(-s, kind="stable")
        cutoff = s[order[k - 1]]
        tied_or_larger = s >= cutoff - 1e-9 * max(1.0, abs(cutoff))
        if tied_or_larger.sum() < len(index):
            mask[index[tied_or_larger]] = True
        else:
            mask[index[order[:k]]] = True
    return mask


# ---------------------------------------------------------------------- task objects
