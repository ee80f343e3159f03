"""Which proposer is asked for how many laws each generation, with what context and random stream."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import EngineUnavailable
from ..proposers.base import Proposal, Proposer, ScoredLaw, SearchContext, optional_hook
from ..proposers.registry import brief_reason
from .archive import Candidate
from .population import new_stats

HUMAN_SEED = "human law"  # note of the human laws seeded in generation 0 (fitted with the full fitter)
DEFAULT_CADENCE = {"operon": 2, "pysr": 2}  # generations between calls of the slow engines
#: Proposers whose calls wait on an engine (an SR run, an LLM's answers): they are asked while the
#: other proposals' laws are fitted (:meth:`~.engine.Discovery.run_generation`).
OVERLAPPED = frozenset({"operon", "pysr", "llm"})


class ProposalScheduling:
    """The proposal side of :class:`~.engine.Discovery`: shares, cadence, contexts, calls."""

    # ------------------------------------------------------------------ proposals
    def _rng(self, *keys: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.settings.seed, self.state.generation, *keys]))

    def _context(self, rng: np.random.Generator, best: list[Candidate]) -> SearchContext:
        st = self.search_train
        return SearchContext(
            inputs=tuple(self.task.inputs), targets=tuple(self.task.targets), X=st.X, Y=st.Y, groups=st.groups,
            rng=rng, max_parameters=self.max_parameters, generation=self.state.generation,
            best=[ScoredLaw(c.formula, c.complexity, c.n_parameters, c.val_error, c.source) for c in best],
            failures=self._recent_failures(), task_name=self.task.name, task_description=self.task.description,
            seen=set(self.state.archive.candidates), deadline=self._proposal_deadline(), pairs=self.task.pairs,
        )

    def _recent_failures(self, k: int = 8) -> list[tuple[str, str]]:
        failed = [c for c in self.state.archive.candidates.values() if not c.ok]
        return [(c.formula, "could not be fitted or predicted non-finite values") for c in failed[-k:]]

    def _shares(self) -> dict[str, int]:
        """Proposals per proposer this generation, by weight (cadence of slow engines respected)."""
        g = self.state.generation
        s = self.settings
        if g == 0:
            return {p.name: (s.initial_library if p.name == "library" else
                             0 if p.name == "mutate" else s.proposals_per_generation // 4)
                    for p in self.proposers}
        active = {p.name: s.weights.get(p.name, 1.0) for p in self.proposers if g % self._cadence(p.name) == 0}
        total = sum(active.values())
        if total <= 0:
            return {}
        return {name: max(1, round(s.proposals_per_generation * w / total)) for name, w in active.items() if w > 0}

    def _cadence(self, name: str) -> int:
        """Generations between calls of a proposer: the engine block's ``every`` (operon, pysr, llm)."""
        every = getattr(getattr(self.settings, name, None), "every", None)
        return max(1, int(every if every is not None else DEFAULT_CADENCE.get(name, 1)))

    def _call(self, proposer: Proposer, context: SearchContext, n: int) -> list[Proposal]:
        try:
            proposals = proposer.propose(context, n)
        except EngineUnavailable as exc:
            self.log(f"{proposer.name}: unavailable — {exc}; going on without it",
                     shown=f"{proposer.name} skipped: {brief_reason(proposer.name, exc)}")
            self.notes.append(f"{proposer.name}: unavailable — {exc}")
            self.proposers = [p for p in self.proposers if p is not proposer]
            return []
        except Exception as exc:  # a proposer's own failure is recorded as data (its error count), never fatal
            self.state.proposer_stats.setdefault(proposer.name, new_stats())["errors"] += 1
            self.log(f"{proposer.name}: proposer failed: {type(exc).__name__}: {exc}")
            return []
        self._events += event_records(proposer, self.state.generation)
        return list(proposals)[: max(n, 0)]

    def _collect(self, overlapped: bool | None = None) -> list[tuple[Proposal, int]]:
        """This generation's proposals, each with the island it will join: of every proposer
        (``overlapped`` None), of the :data:`OVERLAPPED` ones only (True) or of the others and the
        seeded human laws (False).  A proposer's proposals do not depend on which."""
        shares = self._shares()
        archive = self.state.archive
        n_islands = len(self.state.islands)
        collected: list[tuple[Proposal, int]] = []
        if self.state.generation == 0 and self.settings.seed_human_laws and not overlapped:
            collected += [(Proposal(h.formula, "library", note=f"{HUMAN_SEED}: {h.name}"), k % n_islands)
                          for k, h in enumerate(self.task.human_laws)]
        for index, proposer in enumerate(list(self.proposers)):
            n = shares.get(proposer.name, 0)
            if n <= 0 or (overlapped is not None and (proposer.name in OVERLAPPED) != overlapped):
                continue
            if proposer.name == "mutate":
                for island, keys in enumerate(self.state.islands):
                    members = [archive.get(k) for k in keys]
                    if not members:
                        continue
                    per_island = max(1, math.ceil(n / n_islands))
                    context = self._context(self._rng(index, island), members)
                    collected += [(p, island) for p in self._call(proposer, context, per_island)]
            else:
                context = self._context(self._rng(index), archive.best(20))
                for k, proposal in enumerate(self._call(proposer, context, n)):
                    collected.append((proposal, (self.state.generation + k) % n_islands))
        return collected

    def _report_outcomes(self, pairs: list[tuple[Proposal, dict[str, Any]]]) -> None:
        """Tell proposers that want it (the LLM's run summary) what became of their proposals."""
        by_name = {p.name: hook for p in self.proposers if (hook := optional_hook(p, "record_outcome"))}
        for proposal, record in pairs:
            if proposal.source in by_name:
                by_name[proposal.source](proposal, record["status"] == "ok", bool(record.get("improved")))


def event_records(proposer: Proposer, generation: int) -> list[dict[str, Any]]:
    """History lines for what a proposer reports itself (e.g. formulas an LLM wrote that it rejected)."""
    pop = optional_hook(proposer, "pop_events")
    records = []
    for event in pop() if pop is not None else []:
        event = dict(event)
        kind = event.pop("event", "event")
        if kind.endswith("_rejected") and "formula" in event:
            records.append({"generation": generation, "formula": event.pop("formula"), "source": proposer.name,
                            "parents": [], "note": "rejected by the proposer", "status": "rejected",
                            "reason": event.pop("reason", ""), "by_proposer": True, "meta": event})
        else:
            records.append({"generation": generation, "source": proposer.name, **event, "status": "event",
                            "event": kind})
    return records
