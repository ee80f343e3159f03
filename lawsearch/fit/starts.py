"""Starting points of the multi-start: a log-spaced grid and seeded random draws over each
parameter's bounds, moved onto the data's own scales (:mod:`lawsearch.scales`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from ..formula import Law
from ..scales import location_inputs, rate_multipliers, rate_scale, width_inputs

__all__ = ["starts", "along_data_scales", "DATA_SCALE_POOL"]

_EXPONENT_MAGNITUDES = np.array([0.05, 0.2, 0.5, 1.0, 2.0])
DATA_SCALE_POOL = 8  # extra starts per start for laws with location or width parameters
_WIDTH_DECADES = (-2.0, 0.0)  # width starts: log-uniform shares of their input's range
_RATE_REACH = 10.0  # every other start draws a rate's dimensionless value this much larger


def _grid_values(exponent: bool, low: float, high: float, span: float) -> np.ndarray:
    """Log-spaced candidate values of one parameter, both signs, inside its bounds."""
    if exponent:
        magnitudes = _EXPONENT_MAGNITUDES
    else:
        magnitudes = 10.0 ** np.arange(-2.0, np.log10(span) + 2.0, 2.0)
    values = np.concatenate([magnitudes, -magnitudes])
    inside = values[(values >= low) & (values <= high)]
    if inside.size < 3 and np.isfinite(low) and np.isfinite(high):
        inside = np.concatenate([inside, low + (high - low) * np.array([0.25, 0.5, 0.75])])
    return np.unique(inside) if inside.size else np.unique(np.clip(values, low, high))


def _random_values(
    exponent: bool, low: float, high: float, span: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Random log-uniform magnitudes with random signs; uniform in the bounds when outside them."""
    top = np.log10(3.0) if exponent else np.log10(span) + 1.0
    bottom = -2.0 if exponent else -3.0
    values = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(bottom, top, n)
    outside = (values < low) | (values > high)
    if np.isfinite(low) and np.isfinite(high):
        values[outside] = rng.uniform(low, high, int(outside.sum()))
    return np.clip(values, low, high)


def starts(
    exponent: Sequence[bool], lower: np.ndarray, upper: np.ndarray, span: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """(n, d) starting points: half from the grid (all of it if small), half random."""
    grids = [_grid_values(e, lo, hi, span) for e, lo, hi in zip(exponent, lower, upper)]
    n_grid = max(1, n // 2)
    if np.prod([g.size for g in grids], dtype=float) <= n_grid:
        grid = np.array(list(itertools.product(*grids)), dtype=float)
    else:
        grid = np.column_stack([rng.choice(g, n_grid) for g in grids])
    n_random = max(0, n - len(grid))
    random = np.column_stack(
        [_random_values(e, lo, hi, span, n_random, rng) for e, lo, hi in zip(exponent, lower, upper)]
    )
    return np.vstack([grid, random])


def along_data_scales(law: Law, non: np.ndarray, X: np.ndarray, bounds: tuple[np.ndarray, np.ndarray],
                      starts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Starting points on the data's own scales (:mod:`lawsearch.scales`).

    A law with location or width parameters gets :data:`DATA_SCALE_POOL` times as many extra
    starts (copies of random ones) with each location where it cancels a random value of its
    input and each width a log-uniform share of its input's range: peaks and steps must be
    placed in the data, and scoring a start costs one evaluation.  Every rate, drawn as a
    dimensionless ``u``, becomes ``u / max|m|`` for what it multiplies, ``m``, at its start
    (``u`` ten times larger on every other start).
    """
    positions = list(non)
    placed: dict[int, Callable[[int], np.ndarray]] = {}
    for name, (i, sign) in location_inputs(law).items():
        if law.parameters.index(name) in positions:
            x = X[:, i]
            placed[positions.index(law.parameters.index(name))] = lambda n, x=x, sign=sign: sign * rng.choice(x, n)
    for name, i in width_inputs(law).items():
        x = X[:, i]
        if law.parameters.index(name) in positions and x.max() > x.min():
            placed[positions.index(law.parameters.index(name))] = \
                lambda n, spread=x.max() - x.min(): spread * 10.0 ** rng.uniform(*_WIDTH_DECADES, n)
    if placed:
        extra = starts[rng.integers(len(starts), size=DATA_SCALE_POOL * len(starts))]
        for column, draw in placed.items():
            extra[:, column] = draw(len(extra))
        starts = np.vstack([starts, extra])
    else:
        starts = starts.copy()
    multipliers = {name: m for name, m in rate_multipliers(law).items() if law.parameters.index(name) in positions}
    if multipliers:
        theta = np.ones(law.n_parameters)
        reach = np.where(np.arange(len(starts)) % 2 == 1, _RATE_REACH, 1.0)
        for k, row in enumerate(starts):
            theta[non] = row
            for name, multiplier in multipliers.items():
                j = law.parameters.index(name)
                theta[j] *= reach[k] * rate_scale(law, multiplier, X, theta)
            row[:] = theta[non]
    return np.clip(starts, bounds[0][non], bounds[1][non])

