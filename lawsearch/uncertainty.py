"""Bootstrap confidence intervals for a law's fitted parameters and its extrapolations.

Resampling unit: the runs (rows) of the train split, *within each group*.  One
bootstrap replicate draws, for every group of m train rows, m rows with
replacement, refits the law per group and per target with the shared fitter
(cheaper settings than a final fit, :data:`BOOTSTRAP_FIT_OPTIONS`), and
records the parameters and the prediction at each group's largest-scale test
row.  Intervals are percentile intervals over the replicates: for a level of
0.95 the 2.5th and 97.5th percentiles.  The prediction interval is that of the
law's *fitted value* (parameter uncertainty); it does not add the noise of a
new measurement.

Replicate ``b`` draws its rows from ``SeedSequence([seed, b])`` whatever the
executor and the chunking, so the result is deterministic for a seed, and
serial and parallel runs agree exactly.  A replicate whose fit of a (group,
target) fails (no finite fit, or a non-finite prediction) is left out of that
(group, target)'s intervals and counted in ``n_failed``.

With a ``time_limit`` the replicates stop once it has passed: none starts after
it, and one whose fit it cuts short is left out; ``n_boot`` then counts the
replicates run (possibly none), ``n_requested`` those asked for, and the result
depends on the machine's speed.
"""

from __future__ import annotations

import dataclasses

import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import LawsearchError
from .evaluate import jsonable
from .fit import OUT_OF_TIME, FitOptions, LawFit, fit_law
from .formula import Law
from .task import Task, TaskData

__all__ = ["BOOTSTRAP_FIT_OPTIONS", "bootstrap_intervals", "prediction_rows", "bootstrap_chunk", "BootstrapJob"]

#: Fitter settings of one replicate: fewer starts than a final fit (there are n_boot of them).
#: Warm-started from the point estimate, one local optimization reaches the replicate's optimum.
BOOTSTRAP_FIT_OPTIONS = FitOptions(n_starts=8, n_local=1)
DEFAULT_CHUNKS = 16  # executor tasks per bootstrap (chunks of replicates)


@dataclass(frozen=True)
class BootstrapJob:
    """What a worker needs to run replicates: the law as text, the train rows, the prediction rows."""

    formula: str
    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    X: np.ndarray
    Y: np.ndarray
    groups: np.ndarray
    X_eval: np.ndarray  # one row per group (or none for a group without test rows)
    groups_eval: np.ndarray
    options: FitOptions
    seed: int
    start: dict[tuple[str, str], np.ndarray]  # the point estimate: each replicate's fit starts there too
    deadline: float | None = None  # time.time() after which no replicate starts or completes
    pairs: tuple[tuple[str, str], ...] = ()  # (target, input): what the law's 'self' names


def _draw(groups: np.ndarray, names: Sequence[str], seed: int, b: int) -> tuple[np.ndarray, int]:
    """Row indices of replicate ``b`` (resampled within each group) and its fitter seed."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, b]))
    parts = []
    for name in names:
        index = np.flatnonzero(groups == name)
        parts.append(rng.choice(index, size=index.size, replace=True))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=int), int(rng.integers(2**31 - 1))


def bootstrap_chunk(job: BootstrapJob, replicates: Sequence[int]) -> list[dict[str, Any]]:
    """Run some replicates (the function the executor runs; picklable, pure).

    Returns one record per replicate: ``{"b", "theta": {(group, target): array | None},
    "pred": {(group, target): float | None}}``; None marks a failed fit.
    """
    law = Law.parse(job.formula, job.inputs, job.targets, pairs=job.pairs)
    names = list(dict.fromkeys(job.groups.tolist()))
    out: list[dict[str, Any]] = []
    for b in replicates:
        if job.deadline is not None and time.time() > job.deadline:
            break
        rows, fit_seed = _draw(job.groups, names, job.seed, b)
        theta: dict[tuple[str, str], np.ndarray | None] = {}
        pred: dict[tuple[str, str], float | None] = {}
        try:
            fit = fit_law(law, job.X[rows], job.Y[rows], job.groups[rows], job.targets, job.options, seed=fit_seed,
                          start=job.start)
        except LawsearchError:
            fit = None
        if fit is not None and any(OUT_OF_TIME in f.message for f in fit.fits):
            break  # the deadline cut this replicate short
        for group in names:
            at = job.groups_eval == group
            for target in job.targets:
                key = (group, target)
                gf = fit.get(group, target) if fit is not None else None
                if gf is None or not gf.success or not np.all(np.isfinite(gf.theta)):
                    theta[key], pred[key] = None, None
                    continue
                value = float(law.bound(target).evaluate(job.X_eval[at], gf.theta)[0]) if at.any() else math.nan
                if at.any() and not math.isfinite(value):
                    theta[key], pred[key] = None, None
                    continue
                theta[key] = np.array(gf.theta, dtype=float)
                pred[key] = value if at.any() else None
        out.append({"b": int(b), "theta": theta, "pred": pred})
    return out


def prediction_rows(task: Task) -> dict[str, int]:
    """Per group, the index (into ``task.test``) of its largest-scale test row (the last one without a scale)."""
    scores = task.scale_score(task.test)
    chosen = {}
    for group in task.test.group_names():
        index = np.flatnonzero(task.test.groups == group)
        chosen[group] = int(index[-1] if scores is None else index[np.argmax(scores[index])])
    return chosen


def _with_bounds(options: FitOptions, law_options: FitOptions | None) -> FitOptions:
    """``options`` with the bounds a human law states (:meth:`Task.fit_options`), if any."""
    return options if law_options is None else dataclasses.replace(options, bounds=law_options.bounds)


def _point_estimate(law: Law, fitted: LawFit | Mapping[str, Any] | None, train: TaskData, seed: int,
                    ) -> dict[tuple[str, str], np.ndarray]:
    """Parameters of the point estimate per (group, target), from a LawFit, a JSON record or a fresh fit."""
    if fitted is None:
        fitted = fit_law(law, train.X, train.Y, train.groups, train.targets, seed=seed)
    if isinstance(fitted, LawFit):
        return {(f.group, f.target): np.asarray(f.theta, dtype=float) for f in fitted.fits}
    estimate = {}
    for group, values in fitted.items():
        by_target = values if len(train.targets) > 1 else {train.targets[0]: values}
        for target, params in by_target.items():
            missing = [p for p in law.parameters if p not in params]
            if missing:
                raise LawsearchError(f"fitted parameters of group {group!r} lack {missing[0]!r}")
            estimate[(str(group), str(target))] = np.array([float(params[p]) for p in law.parameters])
    return estimate


def _interval(values: list[float], level: float) -> list[float] | None:
    if not values:
        return None
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(np.asarray(values, dtype=float), [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def bootstrap_intervals(
    task: Task,
    law: Law | str,
    fitted: LawFit | Mapping[str, Any] | None = None,
    *,
    n_boot: int = 100,
    level: float = 0.95,
    seed: int = 0,
    executor: Executor | None = None,
    fit_options: FitOptions | None = None,
    chunks: int = DEFAULT_CHUNKS,
    time_limit: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Percentile bootstrap intervals of every parameter per group, and of the prediction at
    each group's largest-scale test row; a JSON-ready dict (law.json's ``ci``).

    ``fitted`` is the point estimate (a :class:`LawFit` or law.json's ``fitted`` object);
    without it the law is fitted on the train split first.  With an ``executor`` the
    replicates run in ``chunks`` tasks through it; the result is the same as without.
    ``time_limit`` (seconds) bounds the replicates' wall time (see the module's docstring).
    ``on_progress(done, n_boot)`` is called as chunks of replicates finish.

    Returns ``{"level", "n_boot", "n_requested", "n_failed", "method", "parameters": {group: {param: [lo, hi]}},
    "predictions": {group: {"row", "inputs", "target", "observed", "estimate", "interval"}}}``;
    with several targets both are nested by target, as ``LawFit.parameters()`` is.  An interval
    is None when every replicate of that (group, target) failed.
    """
    _check_arguments(n_boot, level, chunks, time_limit)
    law = task.parse_law(law) if isinstance(law, str) else law
    train, test = task.train, task.test
    estimate = _point_estimate(law, fitted, train, seed)
    rows = prediction_rows(task)
    groups = train.group_names()
    eval_groups = [g for g in groups if g in rows]
    deadline = None if time_limit is None else time.time() + time_limit
    options = fit_options or _with_bounds(BOOTSTRAP_FIT_OPTIONS, task.fit_options(law))
    job = BootstrapJob(
        formula=law.text, inputs=tuple(law.inputs), targets=tuple(task.targets), pairs=law.pairs,
        X=train.X, Y=train.Y, groups=train.groups,
        X_eval=test.X[[rows[g] for g in eval_groups]].reshape(len(eval_groups), -1),
        groups_eval=np.array(eval_groups, dtype=str),
        options=dataclasses.replace(options, deadline=deadline), seed=int(seed), start=estimate, deadline=deadline,
    )
    records = _run_replicates(job, n_boot, chunks, executor, on_progress)
    parameters, predictions, n_failed = _intervals(task, law, estimate, records, level)
    return jsonable({
        "level": level,
        "n_boot": len(records),
        "n_requested": n_boot,
        "n_failed": n_failed,
        "method": "percentile bootstrap over train rows resampled within each group",
        "parameters": parameters,
        "predictions": predictions,
    })


def _check_arguments(n_boot: int, level: float, chunks: int, time_limit: float | None) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level!r}")
    if chunks < 1:
        raise ValueError(f"chunks must be at least 1, got {chunks!r}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")


def _run_replicates(job: BootstrapJob, n_boot: int, chunks: int, executor: Executor | None,
                    on_progress: Callable[[int, int], None] | None) -> list[dict[str, Any]]:
    """The replicates' records in replicate order, run in ``chunks`` parts (through ``executor`` if given)."""
    replicates = list(range(n_boot))
    size = math.ceil(n_boot / chunks)
    parts = [replicates[i:i + size] for i in range(0, n_boot, size)]
    if executor is None:
        results = (bootstrap_chunk(job, part) for part in parts)
    else:
        futures = [executor.submit(bootstrap_chunk, job, part) for part in parts]
        results = (future.result() for future in futures)
    records = []
    for part in results:
        records += part
        if on_progress is not None:
            on_progress(len(records), n_boot)
    records.sort(key=lambda r: r["b"])
    return records


def _intervals(task: Task, law: Law, estimate: dict[tuple[str, str], np.ndarray], records: list[dict[str, Any]],
               level: float) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The parameters' and the predictions' intervals per group (and target), and the failed fits' count."""
    train, test = task.train, task.test
    rows = prediction_rows(task)
    n_run = len(records)
    multi = len(task.targets) > 1
    n_failed = 0
    parameters: dict[str, Any] = {}
    predictions: dict[str, Any] = {}
    for group in train.group_names():
        for j, target in enumerate(task.targets):
            thetas = [r["theta"][(group, target)] for r in records if r["theta"][(group, target)] is not None]
            n_failed += n_run - len(thetas)
            stacked = np.vstack(thetas) if thetas else np.zeros((0, law.n_parameters))
            intervals = {p: _interval(stacked[:, k].tolist(), level) for k, p in enumerate(law.parameters)}
            _put(parameters, group, target, intervals, multi)
            if group not in rows:
                continue
            i = rows[group]
            point = estimate.get((group, target))
            value = float(law.bound(target).evaluate(test.X[i:i + 1], point)[0]) if point is not None else None
            preds = [r["pred"][(group, target)] for r in records if r["pred"][(group, target)] is not None]
            entry = {
                "row": int(test.rows[i]),
                "inputs": {name: float(test.X[i, k]) for k, name in enumerate(task.inputs)},
                "target": target,
                "observed": float(test.Y[i, j]),
                "estimate": value,
                "interval": _interval(preds, level),
            }
            _put(predictions, group, target, entry, multi)
    return parameters, predictions, n_failed


def _put(into: dict[str, Any], group: str, target: str, value: Any, multi: bool) -> None:
    if multi:
        into.setdefault(group, {})[target] = value
    else:
        into[group] = value
