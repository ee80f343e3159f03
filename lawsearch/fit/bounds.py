"""Each parameter's bounds (stated, else defaults by kind, rates scaled by the data) and the rule
that a fit pressed against a default bound is degenerate."""

from __future__ import annotations

import numpy as np

from ..formula import Law
from ..scales import rate_multipliers, smallest_multiplier
from .options import BOUND_MARGIN, EXPONENT_BOUNDS, RATE_BOUNDS, SCALE_BOUNDS, FitOptions, LawFit

__all__ = ["parameter_bounds", "pinned_parameter"]


def parameter_bounds(law: Law, options: FitOptions, X: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each parameter's bounds: those ``options`` states, else the defaults; with rows ``X``, a
    rate's default bound is widened to reach ``RATE_BOUNDS`` times its smallest natural scale
    (``exp(b2/(x + b3))`` with x ~ 100 needs b2 ~ 6000)."""
    exponents, rates = set(law.exponent_parameters()), set(law.rate_parameters())
    given = options.bounds or {}
    defaults = {p: RATE_BOUNDS if p in rates else EXPONENT_BOUNDS if p in exponents else SCALE_BOUNDS
                for p in law.parameters}
    if X is not None and X.size:
        for name, multiplier in rate_multipliers(law).items():
            widen = max(1.0, 1.0 / smallest_multiplier(law, multiplier, X))
            defaults[name] = (RATE_BOUNDS[0] * widen, RATE_BOUNDS[1] * widen)
    pairs = [given.get(p, defaults[p]) for p in law.parameters]
    lower = np.array([float(lo) for lo, _ in pairs])
    upper = np.array([float(hi) for _, hi in pairs])
    return lower, upper



def pinned_parameter(fit: LawFit, options: FitOptions | None = None) -> str | None:
    """Why a fit is degenerate, or None: a parameter pressed against one of the fitter's default bounds.

    The defaults (:data:`SCALE_BOUNDS`, :data:`EXPONENT_BOUNDS`, :data:`RATE_BOUNDS`) are arbitrary
    limits, not knowledge.  A best fit within :data:`BOUND_MARGIN` of one wants a value beyond
    any limit (``A/log(D)**alpha`` with A and alpha growing together tends to a power law of D),
    so what the law predicts beyond the data is set by the limit rather than by the data.
    Bounds that ``options`` states (a human law's) are deliberate and exempt.
    """
    law = fit.law
    given = set(options.bounds or {}) if options else set()
    for group_fit in fit.fits:
        lower, upper = group_fit.default_bounds or parameter_bounds(law, FitOptions())
        for j, name in enumerate(law.parameters):
            if name in given:
                continue
            value = float(group_fit.theta[j])
            limit = upper[j] if value > 0 else lower[j]
            if abs(value) >= (1.0 - BOUND_MARGIN) * abs(limit):
                return (f"degenerate fit: {name} = {value:.4g} (group {group_fit.group!r}) is at the fitter's "
                        f"limit {limit:g}; the best fit lies beyond it")
    return None
