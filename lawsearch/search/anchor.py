"""The human-anchored winner rule: a seeded human law sets the bar a simpler law must clear.

The one-standard-error rule (:func:`~.archive.select_winner`) takes the simplest law
within ``best + se`` of the best validation error.  With few validation rows the band
is wide, and a law much simpler than the human law the search was seeded with can win
although it validates worse than it.  Here, where a seeded human law lies within that
band, the band is cut at the human law's own validation error: the winner is the
simplest Pareto law that validates at least as well as the (best such) human law.  A
human law outside the band changes nothing.  Only validation rows are used.
"""

from __future__ import annotations

from collections.abc import Sequence

from .archive import Candidate, select_winner, winner_threshold

__all__ = ["anchored_winner"]


def anchored_winner(front: list[Candidate], human: Sequence[Candidate], tolerance: float = 0.0) -> Candidate | None:
    """The winner of ``front`` by the rule of the module doc; ``human``: the seeded human laws' candidates."""
    threshold = winner_threshold(front, tolerance)
    anchors = [h.val_error for h in human if h.ok and h.val_error <= threshold]
    if not anchors:
        return select_winner(front, tolerance)
    bar = min(anchors) + 1e-15
    eligible = [c for c in front if c.val_error <= bar]
    return min(eligible, key=lambda c: (c.complexity, c.val_error)) if eligible else None
