"""``fit_law`` and ``fit_group``: a law fitted per (group, target), all groups in one batch."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import DataError, FitError
from ..formula import Law
from .bounds import parameter_bounds
from .local import robust_cost
from .multistart import GroupSearch, multi_start
from .options import DEFAULT_HUBER_DELTA, OUT_OF_TIME, FitOptions, GroupFit, LawFit, as_matrix, row_labels
from .runs import Group, Runs, padded_length

__all__ = ["fit_group", "fit_law"]

_Item = tuple[str, np.ndarray, np.ndarray, "np.ndarray | None"]  # (group, X, y, start)


def fit_law(
    law: Law,
    X: np.ndarray,
    Y: np.ndarray,
    groups: np.ndarray,
    targets: Sequence[str],
    options: FitOptions | None = None,
    *,
    seed: int = 0,
    start: Mapping[tuple[str, str], np.ndarray] | None = None,
) -> LawFit:
    """Fit ``law`` independently per group and per target column of ``Y`` (n, len(targets)); a law
    that names ``self`` is fitted for each target with its paired input (:meth:`Law.bound`).

    ``groups`` holds one label per row (compared as text); fits keep the groups' order of
    first appearance.  Each (group, target) is seeded from ``seed`` and the two names, so
    its result does not depend on the other groups or on their order.  ``start`` maps
    (group, target) to a parameter vector (e.g. the fit on the full data, before a
    bootstrap, or a nested parent's fit: :func:`lawsearch.nested.nested_start`) that fit optimizes
    first and ends no worse than.
    """
    X = as_matrix(X, law)
    Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.shape != (X.shape[0], len(targets)):
        raise DataError(f"Y must have shape ({X.shape[0]}, {len(targets)}) for targets {list(targets)}, got {Y.shape}")
    labels = row_labels(groups, X.shape[0])
    names = list(dict.fromkeys(labels.tolist()))
    by_target = []
    for j, target in enumerate(targets):
        items = [(group, X[labels == group], Y[labels == group, j], (start or {}).get((group, str(target))))
                 for group in names]
        by_target.append(_fit_groups(law.bound(str(target)), items, options, seed, str(target)))
    return LawFit(law, tuple(fits[g] for g in range(len(names)) for fits in by_target))


def fit_group(
    law: Law,
    X: np.ndarray,
    y: np.ndarray,
    options: FitOptions | None = None,
    *,
    seed: int = 0,
    group: str = "all",
    target: str = "y",
    start: np.ndarray | None = None,
) -> GroupFit:
    """Fit ``law`` to rows ``X`` (n, len(law.inputs)) and target ``y`` (n,); never raises on numerics.

    Deterministic for ``(seed, group, target)``, and for the expression whatever the order
    of ``law.parameters`` (the fit runs in :meth:`Law.in_text_order`).  ``start`` (a
    parameter vector, e.g. a previous fit or a nested parent's, :mod:`lawsearch.nested`) is always
    optimized first, and the fit ends no worse than the start itself.  Returns
    ``success=False`` with a finite theta and ``loss=inf`` when no parameters give finite
    predictions.
    """
    X = as_matrix(X, law)
    y = np.asarray(y, dtype=float).reshape(-1)
    if y.size != X.shape[0]:
        raise DataError(f"y has {y.size} values for {X.shape[0]} rows of X")
    return _fit_groups(law, [(group, X, y, start)], options, seed, target)[0]


def _fit_groups(law: Law, items: list[_Item], options: FitOptions | None, seed: int, target: str) -> list[GroupFit]:
    """One :class:`GroupFit` per (group, X, y, start) item, in order; groups of the same loss kind
    and padded row count are searched in one batch."""
    ordered = law.in_text_order()
    if ordered is not law:
        to_tree = np.array([law.parameters.index(p) for p in ordered.parameters], dtype=int)
        back = np.argsort(to_tree)
        fits = _fit_groups(ordered, [(g, X, y, None if s is None else np.asarray(s, dtype=float)[to_tree])
                                     for g, X, y, s in items], options, seed, target)
        return [dataclasses.replace(f, theta=_frozen(f.theta[back]), default_bounds=f.default_bounds and tuple(
            tuple(np.array(side)[back]) for side in f.default_bounds)) for f in fits]
    options = options or FitOptions()
    prepared, batches = [], {}
    for k, (group, X, y, start) in enumerate(items):
        keep = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
        X, y = X[keep], y[keep]
        lower, upper = parameter_bounds(law, options, X)
        limits = tuple(tuple(float(v) for v in side) for side in parameter_bounds(law, FitOptions(), X))
        prepared.append((lower, upper, limits, y.size))
        if y.size == 0:
            continue
        log, huber, delta = _loss(options, y, group, target)
        given = None if start is None or not np.all(np.isfinite(start)) else np.asarray(start, dtype=float)
        search = GroupSearch(Group(X, y, log, huber, delta, lower, upper),
                             np.random.default_rng(_seed_sequence(seed, group, target)), given)
        batches.setdefault((padded_length(y.size), log, huber), []).append((k, search))
    results: dict[int, tuple[np.ndarray, float, str]] = {}
    with np.errstate(all="ignore"):
        for batch in batches.values():
            searches = [s for _, s in batch]
            found = multi_start(law, searches, options)
            losses = _final_losses(law, searches, np.array([theta for theta, _ in found]))
            for (k, _), (theta, message), loss in zip(batch, found, losses):
                results[k] = (theta, loss, message)
    fits = []
    for k, (group, _, _, _) in enumerate(items):
        lower, upper, limits, n = prepared[k]
        theta, loss, message = results.get(k, (np.ones(law.n_parameters), np.inf, "no rows with finite values"))
        if k in results and not np.isfinite(loss):
            message = f"no parameters found that give finite predictions on all {n} rows"
        if options.out_of_time():
            message = f"{message}; {OUT_OF_TIME}"
        theta = np.where(np.isfinite(theta), theta, np.clip(0.0, lower, upper))
        if k not in results:
            theta = np.clip(theta, lower, upper)
        fits.append(GroupFit(group, target, _frozen(theta), loss, bool(np.isfinite(loss)), message, n, limits))
    return fits


def _final_losses(law: Law, searches: list[GroupSearch], theta: np.ndarray) -> np.ndarray:
    """Each search's objective at ``theta``; inf where a prediction is not finite."""
    runs = Runs.build(law, [s.group for s in searches], np.arange(len(searches)))
    pred = runs.predict(theta)
    finite = np.all(np.isfinite(pred) | ~runs.mask, axis=1)
    costs = robust_cost(runs.residuals(pred), runs.delta if runs.huber else None)
    return np.where(finite, costs, np.inf)


def _loss(options: FitOptions, y: np.ndarray, group: str, target: str) -> tuple[bool, bool, float]:
    """(log residuals, Huber, threshold) of one (group, target)'s objective."""
    loss = options.loss
    if loss == "auto":
        loss = "huber_log" if np.all(y > 0) else "huber"
    elif loss.endswith("_log") and not np.all(y > 0):
        raise FitError(f"loss {loss!r} needs a positive target; {target!r} in group {group!r} has values <= 0")
    delta = options.huber_delta if options.huber_delta is not None else \
        DEFAULT_HUBER_DELTA["log" if loss.endswith("_log") else "plain"]
    return loss.endswith("_log"), loss.startswith("huber"), float(delta)


def _frozen(theta: np.ndarray) -> np.ndarray:
    theta = np.array(theta, dtype=float)
    theta.setflags(write=False)
    return theta


def _seed_sequence(seed: int, group: str, target: str) -> np.random.SeedSequence:
    """A stable per-(group, target) seed: crc32 of the names, never Python's salted hash()."""
    return np.random.SeedSequence(
        [int(seed) & 0xFFFFFFFFFFFFFFFF, zlib.crc32(str(group).encode()), zlib.crc32(str(target).encode())]
    )
