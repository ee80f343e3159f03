"""The one shared robust fitter: every law is fitted here, per group and per target.

DESIGN principle 3.  One (group, target) fit runs in three stages, each for all groups of a
law at once, as one batch of numpy evaluations (:mod:`.runs`, :mod:`.multistart`):

1. *Variable projection.*  Parameters that enter linearly (:meth:`Law.linear_split`)
   are solved exactly by weighted linear least squares for any value of the
   others, so the search below only moves the nonlinear parameters.
2. *Multi-start.*  ``n_starts`` cheap starting points for the nonlinear parameters (a
   log-spaced grid over exponent-like and scale parameters plus seeded random draws, moved
   onto the data's own scales: rates by what they multiply, locations and widths among an
   input's values, :mod:`.starts`) are scored by the sum of squared residuals, and the
   ``n_local`` best (twice as many for a pool placed in the data) are optimized together by
   scipy's bounded trust-region reflective method, step for step (:mod:`.local`, :mod:`.steps`;
   Kaufman's projected Jacobian, at most ``EXPLORE_NFEV`` evaluations each, the best then run
   to its end).  Squares, not the robust loss, because the Huber loss's linear arms make a
   rugged landscape where local fits stall, and because variable projection solves the linear
   parameters by least squares too.
3. *Joint polish.*  All parameters together, robust loss, from the best projected solutions
   (one per ``LOCAL_FITS_PER_POLISH`` local fits under a Huber loss); the best result by the
   robust loss is kept.  The Huber threshold is lowered to its final value in steps
   (graduated non-convexity, :func:`.multistart.polished`).

The loss is Huber on log residuals ``log(pred) - log(y)`` when the target is positive (as in
Besiroglu et al.'s Chinchilla replication), else Huber on residuals divided by the target's
standard deviation.  Rows whose prediction is not finite get a large finite residual
(:data:`PENALTY`), and under a log loss predictions below ``LOG_FLOOR * y`` (zero and negative
ones included) continue the logarithm linearly, so no objective value or parameter is ever NaN.

Rows where the target or an input is not finite are left out of a fit (``GroupFit.n_rows``
counts the rows used).

With a ``deadline`` (``FitOptions``) a fit stops at that wall-clock time: no local fit
continues and no polish begins after it; the fit returns the best parameters found so far
and says so in its message.
"""

from .bounds import parameter_bounds, pinned_parameter
from .fitter import fit_group, fit_law
from .options import (BOUND_MARGIN, DEFAULT_HUBER_DELTA, EXPONENT_BOUNDS, LOG_FLOOR, OUT_OF_TIME, PENALTY,
                      RATE_BOUNDS, SCALE_BOUNDS, FitOptions, GroupFit, LawFit)

__all__ = ["FitOptions", "GroupFit", "LawFit", "fit_group", "fit_law", "pinned_parameter", "parameter_bounds",
           "PENALTY", "LOG_FLOOR", "DEFAULT_HUBER_DELTA", "EXPONENT_BOUNDS", "RATE_BOUNDS", "SCALE_BOUNDS",
           "BOUND_MARGIN", "OUT_OF_TIME"]
