"""Scored candidates, the Pareto archive (complexity × validation error) and the winner rule."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Candidate", "Archive", "pareto_front", "select_winner", "winner_threshold", "distinct_behaviour",
           "SAME_BEHAVIOUR_RTOL"]

#: Laws whose validation errors and their standard errors agree to this relative tolerance predict the
#: same values on the validation rows, to the tolerance of the search's fits: re-parameterisations of
#: one law (names, signs, a factor folded into a coefficient, a parameter whose fit removes a term).
SAME_BEHAVIOUR_RTOL = 1e-5


@dataclass
class Candidate:
    """One distinct law the search has fitted and scored on validation rows."""

    key: str  # canonical form (parameter names normalised)
    formula: str
    complexity: int
    n_parameters: int
    val_error: float  # validation NMSE; inf when the law could not be fitted or predicts non-finite values
    source: str
    generation: int
    parents: list[str] = field(default_factory=list)
    val_se: float = 0.0  # standard error of val_error over validation rows
    refined: bool = False  # scored again with the full fitter before the winner was chosen
    fold_errors: list[float] | None = None  # NMSE on each extrapolation fold (search/folds.py), finalists only
    fitted: list | None = None  # (group, target, parameters) of its search fit: where its children start

    @property
    def ok(self) -> bool:
        return math.isfinite(self.val_error)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["val_error"] = self.val_error if self.ok else None
        data["val_se"] = self.val_se if math.isfinite(self.val_se) else None
        if self.fold_errors is not None:
            data["fold_errors"] = [e if math.isfinite(e) else None for e in self.fold_errors]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        data = dict(data)
        data["val_error"] = math.inf if data.get("val_error") is None else float(data["val_error"])
        data["val_se"] = math.inf if data.get("val_se") is None else float(data["val_se"])
        if data.get("fold_errors") is not None:
            data["fold_errors"] = [math.inf if e is None else float(e) for e in data["fold_errors"]]
        return cls(**data)


def pareto_front(candidates: list[Candidate]) -> list[Candidate]:
    """Non-dominated candidates (lower complexity, lower error), sorted by complexity."""
    ranked = sorted((c for c in candidates if c.ok), key=lambda c: (c.complexity, c.val_error, c.formula))
    front: list[Candidate] = []
    best = math.inf
    for cand in ranked:
        if cand.val_error < best:
            front.append(cand)
            best = cand.val_error
    return front


def winner_threshold(front: list[Candidate], tolerance: float = 0.0) -> float:
    """The largest validation error a law may have and still win (see :func:`select_winner`);
    -inf for an empty front."""
    if not front:
        return -math.inf
    best = min(front, key=lambda c: (c.val_error, c.complexity))
    se = best.val_se if math.isfinite(best.val_se) else 0.0
    return max(best.val_error + se, best.val_error * (1 + tolerance)) + 1e-15


def select_winner(front: list[Candidate], tolerance: float = 0.0) -> Candidate | None:
    """The winner rule (the "one-standard-error" rule of model selection):

    take the law with the lowest validation error on the front, then pick the
    simplest law on the front whose validation error is at most that best error
    plus its standard error over the validation rows (``best + se``), or within
    ``tolerance`` (relative) of it, whichever allows more.  A simpler law is
    preferred when the validation rows cannot tell it apart from the best one,
    which guards against laws that fit the validation rows by luck with extra terms.
    """
    threshold = winner_threshold(front, tolerance)
    eligible = [c for c in front if c.val_error <= threshold]
    return min(eligible, key=lambda c: (c.complexity, c.val_error)) if eligible else None


def _same_behaviour(a: Candidate, b: Candidate) -> bool:
    return (math.isclose(a.val_error, b.val_error, rel_tol=SAME_BEHAVIOUR_RTOL)
            and math.isclose(a.val_se, b.val_se, rel_tol=SAME_BEHAVIOUR_RTOL, abs_tol=1e-300))


def rank(candidate: Candidate) -> tuple[float, int, str]:
    """The order of laws by merit: validation error, then complexity, then text."""
    return candidate.val_error, candidate.complexity, candidate.formula


def distinct_behaviour(candidates: Iterable[Candidate]) -> Iterator[Candidate]:
    """The laws of ``candidates`` in :func:`rank` order, less those that behave as an earlier one:
    same validation error and standard error (:data:`SAME_BEHAVIOUR_RTOL`).  The simplest law of a
    set of re-parameterisations is the one kept, so that a population or the finalists are not
    filled with copies of one law.  Lazy: take the first k with :func:`itertools.islice`."""
    kept: list[Candidate] = []
    for cand in sorted(candidates, key=rank):
        near = itertools.takewhile(lambda k: math.isclose(k.val_error, cand.val_error, rel_tol=SAME_BEHAVIOUR_RTOL),
                                   reversed(kept))
        if not any(_same_behaviour(k, cand) for k in near):
            kept.append(cand)
            yield cand


class Archive:
    """Every distinct law scored so far, keyed by canonical form (the fit cache)."""

    def __init__(self) -> None:
        self.candidates: dict[str, Candidate] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.candidates

    def __len__(self) -> int:
        return len(self.candidates)

    def add(self, candidate: Candidate) -> None:
        self.candidates[candidate.key] = candidate

    def get(self, key: str) -> Candidate:
        return self.candidates[key]

    def front(self) -> list[Candidate]:
        return pareto_front(list(self.candidates.values()))

    def best(self, k: int = 10) -> list[Candidate]:
        """The ``k`` laws of lowest validation error, one per behaviour (:func:`distinct_behaviour`)."""
        return list(itertools.islice(distinct_behaviour(c for c in self.candidates.values() if c.ok), k))

    def to_list(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.candidates.values()]

    @classmethod
    def from_list(cls, items: list[dict[str, Any]]) -> Archive:
        archive = cls()
        for item in items:
            archive.add(Candidate.from_dict(item))
        return archive
