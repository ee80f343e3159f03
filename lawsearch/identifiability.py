"""Which parameters of a law the data can identify, and how to drop the others.

In ``f + exp(-1 - exp(-w*(K + k*log_flops)))`` only ``w*K`` and ``w*k`` reach the
predictions: scaling ``w`` by c and ``K``, ``k`` by 1/c changes nothing, so the fit
cannot tell them apart, and the law holds one parameter more than it uses.  Such a
redundancy shows as a rank deficiency of the Jacobian of the predictions with respect
to the parameters (each column scaled to unit length): a direction in parameter space
along which the predictions do not move.

:func:`redundant_direction` finds one at a fitted law, in every fitted group (a
deficiency in one group only is that group's data, not the law).  :func:`reduce_law`
removes it by fixing one parameter on that direction to a constant (0, else 1 or -1
with the sign of its fitted values), when the law that leaves keeps the rank of the
original (it then describes the same predictions with one parameter fewer):
``w = 1`` above gives ``f + exp(-1 - exp(-K - k*log_flops))``.
:func:`identifiable_count` is the rank at random parameter values, the number of
parameters a law can identify at all, before any fit.

A redundancy is *structural* when it lies in the law's form (``w*(K + k*x)``,
``a*b*x**c``, ``exp(a)*b*x``) rather than in the rows: :func:`structural_redundancy`
counts it on :func:`generic_rows`, the rows with each input shuffled on its own, which
keeps every input's values and scale but breaks relations between inputs (mixture
proportions that sum to one make ``k`` and a common shift of the ``t_j`` in
``c + k*exp(sum_j t_j*p_j)`` act alike on the data, yet the form is sound).  The search
reparametrizes (or rejects) only laws with a structural redundancy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy

from .fit import LawFit
from .formula import Law

__all__ = ["RANK_TOLERANCE", "LOSS_TOLERANCE", "jacobian_rank", "redundant_direction", "reduce_law",
           "identifiable_count", "generic_rows", "structural_redundancy"]

#: A singular value below this share of the largest (columns scaled to unit length) counts as zero.
RANK_TOLERANCE = 1e-9
#: A reduced law must fit every group within this share of the original's objective.
LOSS_TOLERANCE = 1e-3
_RANDOM_POINTS = 12  # random parameter vectors of identifiable_count at most (the rank is the largest found)
_STRUCTURAL_ROWS = 256  # rows (a seeded sample) structural_redundancy evaluates the law on, at most
_MAX_REFITS = 3  # reduced laws refitted at most, per reduction


def _unit_jacobian(law: Law, X: np.ndarray, theta: np.ndarray) -> np.ndarray | None:
    """The Jacobian with columns scaled to unit length (a column of zeros stays zero); None if not finite."""
    J = law.gradient(X, theta)
    if J.size == 0 or not np.all(np.isfinite(J)):
        return None
    with np.errstate(over="ignore"):
        norms = np.linalg.norm(J, axis=0)
    if not np.all(np.isfinite(norms)):
        return None
    return J / np.where(norms > 0, norms, 1.0)


def jacobian_rank(law: Law, X: np.ndarray, theta: np.ndarray) -> tuple[int, np.ndarray] | None:
    """The numerical rank of the (column-scaled) Jacobian at ``theta`` on rows ``X``, and the right
    singular vectors of its null space (columns); None where the Jacobian is not finite."""
    J = _unit_jacobian(law, X, theta)
    if J is None:
        return None
    _, s, vt = np.linalg.svd(J, full_matrices=J.shape[0] < J.shape[1])  # vt is square either way
    rank = int(np.sum(s > RANK_TOLERANCE * max(s[0], 1e-300))) if s.size else 0
    return rank, vt[rank:].T


def redundant_direction(fit: LawFit, X: np.ndarray, groups: np.ndarray) -> np.ndarray | None:
    """A direction (one weight per parameter) along which the predictions of every fitted group stay
    put, or None when the parameters are identifiable in at least one group."""
    law = fit.law
    labels = np.asarray(groups).astype(str)
    directions = []
    for group_fit in fit.fits:
        rows = labels == group_fit.group
        found = jacobian_rank(law, np.asarray(X, dtype=float)[rows], group_fit.theta)
        if found is None or found[0] == law.n_parameters:
            return None
        directions.append(found[1])
    return np.abs(directions[0][:, 0])


def identifiable_count(law: Law, X: np.ndarray, seed: int = 0) -> int:
    """How many parameters rows ``X`` can identify at all: the Jacobian's largest rank at up to
    :data:`_RANDOM_POINTS` random parameter vectors (exponents drawn in ±(0.1, 1), other parameters
    in ±(0.5, 2); many give non-finite predictions, e.g. the log of a negative), stopping at full rank."""
    if law.n_parameters == 0:
        return 0
    rng = np.random.default_rng(seed)
    exponents = set(law.exponent_parameters())
    best = 0
    for _ in range(_RANDOM_POINTS):
        magnitude = np.array([rng.uniform(0.1, 1.0) if p in exponents else rng.uniform(0.5, 2.0)
                              for p in law.parameters])
        found = jacobian_rank(law, X, magnitude * rng.choice([-1.0, 1.0], law.n_parameters))
        best = max(best, found[0] if found else 0)
        if best == law.n_parameters:
            break
    return best


def generic_rows(X: np.ndarray, seed: int = 0) -> np.ndarray:
    """The rows with each column shuffled on its own (seeded): every input keeps its values and
    scale, but relations between inputs (a constant sum, one a multiple of another) are broken."""
    rng = np.random.default_rng(seed)
    X = np.asarray(X, dtype=float)
    return np.column_stack([rng.permutation(X[:, j]) for j in range(X.shape[1])]) if X.size else X


def structural_redundancy(law: Law, X: np.ndarray, seed: int = 0) -> int:
    """How many parameters the law's form cannot identify on inputs like ``X`` (0: none): its
    parameters less the larger :func:`identifiable_count` on ``X`` and on :func:`generic_rows` of
    ``X`` (shuffled rows may leave the law's domain, e.g. tokens below unique tokens), on at most
    :data:`_STRUCTURAL_ROWS` of the rows."""
    if law.n_parameters == 0:
        return 0
    X = np.asarray(X, dtype=float)
    if len(X) > _STRUCTURAL_ROWS:  # a few hundred rows show any redundancy of the form
        X = X[np.random.default_rng(seed).choice(len(X), _STRUCTURAL_ROWS, replace=False)]
    rank = identifiable_count(law, X, seed)
    if rank < law.n_parameters:
        rank = max(rank, identifiable_count(law, generic_rows(X, seed), seed))
    return law.n_parameters - rank


def _fixed_law(law: Law, name: str, value: int) -> Law | None:
    try:
        return Law.from_sympy(law.expr.xreplace({law.symbol(name): sympy.Integer(value)}), law.inputs,
                              order=[p for p in law.parameters if p != name], pairs=law.pairs)
    except ValueError:
        return None


def reduce_law(
    fit: LawFit, X: np.ndarray, groups: np.ndarray, refit: Callable[[Law], LawFit]
) -> tuple[LawFit, str] | None:
    """The law with one parameter fewer, fitted by ``refit`` on the rows ``fit`` was fitted on, when
    the fitted law has a redundant direction (:func:`redundant_direction`), with what was fixed
    (e.g. ``"w = 1"``).

    A parameter on the direction is fixed to 0, 1 or -1 when the law that leaves keeps the
    original's rank and, refitted, fits every group as well (within :data:`LOSS_TOLERANCE`):
    then it makes the same predictions with one parameter fewer.  None when the law is
    identifiable, or no such parameter is found within :data:`_MAX_REFITS` refits.
    """
    direction = redundant_direction(fit, X, groups)
    if direction is None:
        return None
    law = fit.law
    X = np.asarray(X, dtype=float)
    rank = identifiable_count(law, X)
    refits = 0
    for j in np.argsort(-direction, kind="stable"):
        if direction[j] < 1e-6 or refits >= _MAX_REFITS:
            break
        name = law.parameters[j]
        for value in (0, 1, -1):
            reduced = _fixed_law(law, name, value)
            if reduced is None or not reduced.variables or identifiable_count(reduced, X) != rank:
                continue
            refits += 1
            fitted = refit(reduced)
            if all(new.loss <= old.loss * (1 + LOSS_TOLERANCE) + 1e-12 for new, old in zip(fitted.fits, fit.fits)):
                return fitted, f"{name} = {value}"
            if refits >= _MAX_REFITS:
                break
    return None
