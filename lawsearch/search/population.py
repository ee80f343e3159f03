"""The island populations of a run: elitist selection, migration and the proposers' counts."""

from __future__ import annotations

import itertools
import math
from typing import Any

from .archive import distinct_behaviour


class Population:
    """The population side of :class:`~.engine.Discovery`: per-proposer counts, selection, migration."""

    def _update_stats(self, records: list[dict[str, Any]], best_before: float) -> None:
        running_best = best_before
        for record in records:
            if record["status"] == "event":
                continue
            stats = self.state.proposer_stats.setdefault(record["source"], new_stats())
            stats["proposed"] += 1
            status = record["status"]
            stats[status if status in stats else "failed"] += 1
            if status == "ok" and record["val_error"] < running_best:
                running_best = record["val_error"]
                stats["improving"] += 1
                record["improved"] = True

    def _select(self) -> None:
        """Elitism: each island keeps its ``population_size`` best laws, one per behaviour
        (:func:`~.archive.distinct_behaviour`: a re-parameterisation of a kept law takes no place)."""
        archive = self.state.archive
        size = self.settings.population_size
        for i, keys in enumerate(self.state.islands):
            members = (archive.get(k) for k in dict.fromkeys(keys) if archive.get(k).ok)
            self.state.islands[i] = [c.key for c in itertools.islice(distinct_behaviour(members), size)]

    def _migrate(self) -> None:
        """Ring migration: each island's best few join the next island."""
        islands = self.state.islands
        if len(islands) < 2:
            return
        migrants = [keys[: self.settings.migrants] for keys in islands]
        for i, group in enumerate(migrants):
            islands[(i + 1) % len(islands)].extend(k for k in group if k not in islands[(i + 1) % len(islands)])
        self._select()

    def best_error(self) -> float:
        best = self.state.archive.best(1)
        return best[0].val_error if best else math.inf


def new_stats() -> dict[str, Any]:
    return {"proposed": 0, "ok": 0, "duplicate": 0, "parse_error": 0, "rejected": 0, "fit_failed": 0,
            "timeout": 0, "failed": 0, "improving": 0, "errors": 0}
