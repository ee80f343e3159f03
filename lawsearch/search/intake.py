"""A generation's intake: each proposal parsed, recorded, and queued for fitting once.

Proposals arrive in one or two rounds (the slow proposers' while the first round's laws
are fitted, :meth:`~.engine.Discovery.run_generation`); the intake keeps their order, so
the history is the same whichever way they arrived.
"""

from __future__ import annotations

from typing import Any

from ..errors import LawsearchError
from ..proposers.base import Proposal
from ..task import Task
from .archive import Archive


class Intake:
    """The records of a generation's proposals, in order, and the laws to fit (by canonical key)."""

    def __init__(self, generation: int, task: Task, archive: Archive) -> None:
        self.generation = generation
        self.task = task
        self.archive = archive
        self.records: list[dict[str, Any]] = []
        self.pairs: list[tuple[Proposal, dict[str, Any]]] = []
        self.pending: dict[str, tuple[str, int, Proposal]] = {}  # key -> (formula, island, first proposal)

    def add(self, proposals: list[tuple[Proposal, int]]) -> None:
        """Record each (proposal, island): a parse error, a duplicate of a scored or pending law,
        or a new law pending its fit (``status: pending`` and its ``key``)."""
        for proposal, island in proposals:
            record = {"generation": self.generation, "formula": proposal.formula, "source": proposal.source,
                      "parents": list(proposal.parents), "note": proposal.note}
            self.pairs.append((proposal, record))
            if proposal.meta:
                record["meta"] = proposal.meta
            self.records.append(record)
            try:
                law = self.task.parse_law(proposal.formula)
            except LawsearchError as exc:
                record.update(status="parse_error", reason=str(exc))
                continue
            record["formula"] = law.text
            key = law.canonical
            if key in self.archive or key in self.pending:
                known = self.archive.candidates.get(key)
                record.update(status="duplicate", val_error=known.val_error if known and known.ok else None)
                continue
            self.pending[key] = (law.text, island, proposal)
            record.update(status="pending", key=key)
