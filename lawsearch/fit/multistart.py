"""The multi-start and the joint polish of one law over several (group, target)s at once.

Every stage runs as one batch of runs (:mod:`lawsearch.fit.runs`): all starting points of all
groups are scored in one evaluation, all local fits advance together
(:func:`~lawsearch.fit.local.local_fits`), and all polishes too.  A run's result depends only
on its own group, start and options, never on what it is batched with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .local import local_fits, robust_cost
from .options import FitOptions
from .runs import CHUNK_VALUES, Group, Runs, padded_length
from .starts import along_data_scales, starts

__all__ = ["GroupSearch", "multi_start"]

#: Residual evaluations of each local fit of the multi-start (the search's own budget); the best
#: one, if it ran out, then continues to ``FitOptions.max_nfev``.
EXPLORE_NFEV = 200
SCREEN_FACTOR, SCREEN_NFEV = 4, 5  # a data-scale pool's best 4 * n_local starts are screened by 5-evaluation fits
LOCAL_FITS_PER_POLISH = 8  # under a Huber loss, one polish per this many local fits (at least one)
CONTINUATION_STEPS = 3  # at most this many larger Huber thresholds before the polish's own
COARSE_TOL = 1e-6  # tolerance of the polish's stages at those larger thresholds
FINE_TOL = 1e-15  # tolerance of the polish's last stage under a squared loss


@dataclass
class GroupSearch:
    """One (group, target)'s part of a multi-start: its rows, random generator and given start."""

    group: Group
    rng: np.random.Generator
    start: np.ndarray | None = None  # full parameter vector, finite, or None


def multi_start(law, searches: list[GroupSearch], options: FitOptions) -> list[tuple[np.ndarray, str]]:
    """Best parameters and a message for each search (all of one loss kind and padded length)."""
    groups = [s.group for s in searches]
    base = Runs.build(law, groups, np.arange(len(groups)))
    if base.non.size == 0:
        theta = base.complete(np.zeros((len(groups), 0)))[0]
        return _best_of(law, searches, [(g, theta[g], "linear parameters solved exactly") for g in range(len(groups))],
                        options)
    pools = [_pool(law, base.non, s, options.n_starts) for s in searches]
    costs = _scores(law, groups, pools, options)
    ranked, offset = [], 0
    for pool in pools:
        order = np.argsort(costs[offset:offset + len(pool)], kind="stable")
        offset += len(pool)
        rows = pool[order]
        _, first = np.unique(rows, axis=0, return_index=True)
        ranked.append(rows[np.sort(first)])
    placed = [g for g, pool in enumerate(pools) if len(pool) > options.n_starts]  # pools placed in the data
    if placed:  # screen their best starts
        moved = _screened(law, [groups[g] for g in placed], [ranked[g][: SCREEN_FACTOR * options.n_local]
                                                             for g in placed], options)
        for g, rows in zip(placed, moved):
            ranked[g] = rows
    firsts = []
    for g, s in enumerate(searches):
        n_local = (options.placed_local or 2 * options.n_local) if g in placed else options.n_local
        ranked[g] = ranked[g][:n_local]
        if s.start is not None:  # a given start is always optimized, first
            given = np.clip(s.start[base.non], base.lower[g, base.non], base.upper[g, base.non])
            ranked[g] = np.vstack([given, ranked[g][: n_local - 1]])
        firsts.append(ranked[g][0])
    which = np.repeat(np.arange(len(groups)), [len(r) for r in ranked])
    runs = Runs.build(law, groups, which)
    explore = min(options.max_nfev, EXPLORE_NFEV)
    local = local_fits(runs, np.vstack(ranked), True, explore, options.tol, out_of_time=options.out_of_time)
    start_runs = Runs.build(law, groups, np.arange(len(groups)))
    first_costs = robust_cost(start_runs.fun(np.array(firsts), True), None)
    found = [[(float(first_costs[g]), np.array(firsts[g]), False)] for g in range(len(groups))]
    for k, g in enumerate(which):
        found[g].append((float(local.cost[k]), local.x[k], bool(local.ran_out[k])))
    if options.max_nfev > explore:
        found = _continued(law, groups, found, options)
    candidates = []
    for g, s in enumerate(searches):
        found[g].sort(key=lambda item: item[0])
        n_polish = 1 if not groups[g].huber else math.ceil(options.n_local / LOCAL_FITS_PER_POLISH)
        message = f"best of {len(ranked[g])} local fits from {len(pools[g])} starts"
        x = np.array([item[1] for item in found[g][:n_polish]])
        thetas = Runs.build(law, groups, np.full(len(x), g)).complete(x)[0]
        candidates += [(g, theta, message) for theta in thetas]
    return _best_of(law, searches, candidates, options, polish_all=base.lin.size > 0 or groups[0].huber)


def _scores(law, groups: list[Group], pools: list[np.ndarray], options: FitOptions) -> np.ndarray:
    """The squared cost of every start of every pool, in chunks of at most :data:`CHUNK_VALUES`
    residuals (the first always scored, the others until the deadline; unscored ones: inf)."""
    which = np.repeat(np.arange(len(groups)), [len(p) for p in pools])
    x = np.vstack(pools)
    costs = np.full(len(x), np.inf)
    size = max(1, CHUNK_VALUES // padded_length(groups[0].y.size))
    for first in range(0, len(x), size):
        if first and options.out_of_time():
            break
        chunk = slice(first, first + size)
        costs[chunk] = robust_cost(Runs.build(law, groups, which[chunk]).fun(x[chunk], True), None)
    return costs


def _pool(law, non: np.ndarray, search: GroupSearch, n_starts: int) -> np.ndarray:
    """A search's starting points for the nonlinear parameters (generated, then on the data's scales)."""
    group = search.group
    exponents = set(law.exponent_parameters())
    finite_X = np.abs(group.X[np.isfinite(group.X)])
    span = float(max(1.0, finite_X.max(initial=0.0), np.abs(group.y).max()))
    exponent_like = [law.parameters[j] in exponents for j in non]
    generated = starts(exponent_like, group.lower[non], group.upper[non], span, n_starts, search.rng)
    return along_data_scales(law, non, group.X, (group.lower, group.upper), generated, search.rng)


def _screened(law, groups: list[Group], ranked: list[np.ndarray], options: FitOptions) -> list[np.ndarray]:
    """Each group's ``ranked`` starts moved by :data:`SCREEN_NFEV`-evaluation local fits and
    re-ranked by where those end: the first steps tell a start that descends into a deep basin
    from one that only began low."""
    which = np.repeat(np.arange(len(groups)), [len(r) for r in ranked])
    moved = local_fits(Runs.build(law, groups, which), np.vstack(ranked), True, SCREEN_NFEV, options.tol,
                       out_of_time=options.out_of_time)
    result = []
    for g in range(len(groups)):
        rows = which == g
        result.append(moved.x[rows][np.argsort(moved.cost[rows], kind="stable")])
    return result


def _continued(law, groups: list[Group], found: list[list[tuple[float, np.ndarray, bool]]],
               options: FitOptions) -> list[list[tuple[float, np.ndarray, bool]]]:
    """Each group's best local fit, where it ran out of evaluations, continued to ``options.max_nfev``."""
    best = [min(items, key=lambda item: item[0]) for items in found]
    todo = [g for g, item in enumerate(best) if item[2]]
    if not todo:
        return found
    more = local_fits(Runs.build(law, groups, np.array(todo)), np.array([best[g][1] for g in todo]), True,
                      options.max_nfev, options.tol, out_of_time=options.out_of_time)
    for k, g in enumerate(todo):
        found[g].append((float(more.cost[k]), more.x[k], bool(more.ran_out[k])))
    return found


def _best_of(law, searches: list[GroupSearch], candidates: list[tuple[int, np.ndarray, str]], options: FitOptions,
             polish_all: bool = True) -> list[tuple[np.ndarray, str]]:
    """Per search, the best by its objective of its ``candidates`` (group index, full theta, message)
    after the joint polish (``polish_all``) and of its given start, polished."""
    groups = [s.group for s in searches]
    for g, s in enumerate(searches):
        if s.start is not None:
            candidates.append((g, np.clip(s.start, s.group.lower, s.group.upper), "the given start, polished"))
    which = np.array([c[0] for c in candidates])
    thetas = np.array([c[1] for c in candidates])
    polish = np.array([polish_all or c[2] == "the given start, polished" for c in candidates])
    improved = np.zeros(len(candidates), dtype=bool)
    if polish.any():
        runs = Runs.build(law, groups, which[polish])
        thetas[polish], improved[polish] = polished(runs, thetas[polish], options)
    costs = np.zeros(len(candidates))
    if len(candidates) > len(groups):
        runs = Runs.build(law, groups, which)
        costs = robust_cost(runs.fun(thetas, False), runs.delta if runs.huber else None)
    best: list[tuple[np.ndarray, str] | None] = [None] * len(groups)
    for k in np.argsort(costs, kind="stable"):
        g = which[k]
        if best[g] is None:
            message = candidates[k][2] + ("; joint polish" if improved[k] else "")
            best[g] = (thetas[k], message)
    return best


def polished(runs: Runs, theta: np.ndarray, options: FitOptions) -> tuple[np.ndarray, np.ndarray]:
    """All parameters of each run optimized jointly from ``theta``, and whether that improved it.

    Under a Huber loss the threshold is lowered in steps from the size of the residuals at
    ``theta`` to the objective's own, each stage starting where the last ended (graduated
    non-convexity): with most residuals beyond the final threshold the loss is nearly absolute,
    and in its kinked landscape a local fit started far off stalls.  Under squares, a last
    stage at float precision with residuals in extended precision, for problems with tiny
    residuals (Lanczos1's RSS is 1e-25: in float64 its residuals keep 3 digits).
    """
    if runs.law.n_parameters == 0 or options.out_of_time():
        return theta, np.zeros(len(runs), dtype=bool)
    r = runs.fun(theta, False)
    f_scale = runs.delta if runs.huber else None
    start = robust_cost(r, f_scale)
    x = theta.copy()
    if runs.huber:
        rms = np.sqrt(np.einsum("rn,rn->r", r, r) / runs.mask.sum(axis=1))
        steps = np.where(rms > runs.delta, np.ceil(np.log10(np.maximum(rms, 1e-300) / runs.delta)), 0)
        steps = np.minimum(steps, CONTINUATION_STEPS).astype(int)
        for stage in range(int(steps.max(initial=0))):
            rows = np.flatnonzero(steps > stage)
            if options.out_of_time():
                break
            x[rows] = local_fits(runs.take(rows), x[rows], False, options.max_nfev, max(options.tol, COARSE_TOL),
                                 rms[rows] / 10.0 ** stage, options.out_of_time).x
    if not runs.huber:  # the last stage at float precision, residuals in extended precision
        runs = runs.extended()
        start = robust_cost(runs.fun(theta, False), f_scale)
    final_tol = options.tol if runs.huber else min(options.tol, FINE_TOL)
    if not options.out_of_time():
        x = local_fits(runs, x, False, options.max_nfev, final_tol, f_scale, options.out_of_time).x
    better = robust_cost(runs.fun(x, False), f_scale) < start
    return np.where(better[:, None], x, theta), better
