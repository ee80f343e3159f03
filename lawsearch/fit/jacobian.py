"""The residuals' Jacobian assembled from the law's gradient, compiled, one run at a time.

The analytic gradient of the law's predictions becomes the Jacobian of the residuals by a
factor per row (:func:`scaled_gradient`): a numba kernel (``cache=True``) as in :mod:`.steps`,
one pass over the rows where numpy made six.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["scaled_gradient"]


@njit(cache=True, error_model="numpy")
def scaled_gradient(grad: np.ndarray, factor: np.ndarray, pred: np.ndarray,
                    mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``grad * factor`` per row (R, N, K), 0 where not finite, where the prediction ``pred`` is
    not, and on padded rows (``mask`` False); and per run whether ``grad`` was finite on all its rows."""
    n_runs, n_rows, k = grad.shape
    J = np.zeros((n_runs, n_rows, k))
    finite = np.ones(n_runs, dtype=np.bool_)
    for run in range(n_runs):
        for n in range(n_rows):
            if not mask[run, n]:
                continue
            usable = np.isfinite(pred[run, n])
            for j in range(k):
                finite[run] &= np.isfinite(grad[run, n, j])
                value = grad[run, n, j] * factor[run, n]
                if usable and np.isfinite(value):
                    J[run, n, j] = value
    return J, finite
