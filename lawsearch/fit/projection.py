"""Variable projection's linear solve, compiled, one run at a time.

Given the law's part that does not depend on its linear parameters (``base``) and their design
columns (``D``), each run's linear parameters are the weighted least-squares solution of
``D coef = y - base`` (:func:`linear_coefficients`).  Like :mod:`.steps`, a numba kernel
(``cache=True``) looping over the runs: the solve of a law with a few linear parameters is a
dozen tiny array operations, which numpy's per-call overhead dominated.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["linear_coefficients"]


@njit(cache=True, error_model="numpy")
def linear_coefficients(D: np.ndarray, base: np.ndarray, y: np.ndarray, weight: np.ndarray, lower: np.ndarray,
                        upper: np.ndarray, rcond: float) -> np.ndarray:
    """Each run's coefficients (R, k) minimizing ||weight * (base + D coef - y)|| over its rows
    (R, N): rows where the weighted target or a column is not finite left out, columns normalized
    to unit length (a zero or non-finite column gets coefficient 0), singular values below
    ``rcond`` of the largest cut; non-finite coefficients become 0, the others are clipped to
    ``[lower, upper]`` (R, k)."""
    n_runs, n_rows, k = D.shape
    coef = np.zeros((n_runs, k))
    A = np.empty((n_rows, k))
    t = np.empty(n_rows)
    norms = np.empty(k)
    good = np.empty(k, dtype=np.bool_)
    for run in range(n_runs):
        for n in range(n_rows):
            t[n] = (y[run, n] - base[run, n]) * weight[run, n]
            row_finite = np.isfinite(t[n])
            for j in range(k):
                A[n, j] = D[run, n, j] * weight[run, n]
                row_finite &= np.isfinite(A[n, j])
            if not row_finite:
                t[n] = 0.0
                A[n, :] = 0.0
        for j in range(k):
            total = 0.0
            for n in range(n_rows):
                total += A[n, j] * A[n, j]
            norms[j] = np.sqrt(total)
            good[j] = np.isfinite(norms[j]) and norms[j] > 0
            if not good[j]:
                norms[j] = 1.0
            for n in range(n_rows):
                A[n, j] = A[n, j] / norms[j] if good[j] else 0.0
        U, sv, Vt = np.linalg.svd(A, full_matrices=False)
        inner = np.zeros(sv.size)
        for i in range(sv.size):
            if sv[i] > rcond * sv[0]:
                total = 0.0
                for n in range(n_rows):
                    total += U[n, i] * t[n]
                inner[i] = total / sv[i]
        for j in range(k):
            total = 0.0
            for i in range(sv.size):
                total += Vt[i, j] * inner[i]
            value = total / norms[j]
            if not (good[j] and np.isfinite(value)):
                value = 0.0
            coef[run, j] = min(max(value, lower[run, j]), upper[run, j])
    return coef
