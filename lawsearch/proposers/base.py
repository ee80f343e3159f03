"""The one interface every source of formulas implements.

A proposer returns formula *text*; the search parses every proposal with the
safe parser (:meth:`lawsearch.formula.Law.parse`), fits it with the shared
fitter and scores it on validation rows.  So SR output, LLM output, library
forms and mutations compete on exactly the same terms, and nothing a proposer
returns is ever executed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Proposal", "ScoredLaw", "SearchContext", "Proposer", "ProposerHooks", "optional_hook"]


@dataclass(frozen=True)
class Proposal:
    """One formula proposed by a proposer.

    ``source`` is the proposer's name (``library``, ``mutate``, ``operon``,
    ``pysr``, ``llm``); ``parents`` the formula texts it was derived from;
    ``note`` a short description (the mutation applied, an LLM's rationale);
    ``meta`` JSON-ready extras recorded in the history (tokens, cost, latency).
    """

    formula: str
    source: str
    parents: tuple[str, ...] = ()
    note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoredLaw:
    """A law the search has already scored, as proposers see it."""

    formula: str
    complexity: int
    n_parameters: int
    val_error: float
    source: str = ""


@dataclass
class SearchContext:
    """What a proposer may look at: the search-train rows (never validation or test) and the archive.

    ``X`` is (n, len(inputs)), ``Y`` is (n, len(targets)), ``groups`` is (n,).
    ``best`` is sorted by validation error (best first); ``failures`` holds
    recent (formula, reason) pairs; ``seen`` the canonical keys
    (:attr:`lawsearch.formula.Law.canonical`) of laws already scored, so a
    proposer can skip them without keeping state.  ``rng`` is the run's seeded generator:
    proposers draw all their randomness from it so a run is reproducible.  ``deadline`` is
    the ``time.time()`` by which a proposer's waits on an engine or a server must end (half
    the time left to the generation's fits; None: no limit).
    """

    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    X: np.ndarray
    Y: np.ndarray
    groups: np.ndarray
    rng: np.random.Generator
    max_parameters: int | None = None
    generation: int = 0
    best: list[ScoredLaw] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    task_name: str = ""
    task_description: str = ""
    seen: set[str] = field(default_factory=set)  # canonical keys of every law already scored
    deadline: float | None = None
    pairs: tuple[tuple[str, str], ...] = ()  # (target, input) the task pairs: what 'self' in a law names


@runtime_checkable
class Proposer(Protocol):
    """A source of formulas.  ``propose`` may return fewer than ``n`` proposals, never raises
    for a bad answer of its engine (it returns what it has), and raises
    :class:`lawsearch.errors.EngineUnavailable` when its engine is missing."""

    name: str

    def propose(self, context: SearchContext, n: int) -> list[Proposal]:
        """Return up to ``n`` new formula proposals."""
        ...

    def close(self) -> None:
        """Release engine resources (servers, threads); called once when the search ends."""
        ...


class ProposerHooks(Protocol):
    """The optional hooks of a proposer: the search calls each one a proposer defines
    (through :func:`optional_hook`) and goes on without those it does not."""

    def check_available(self) -> None:
        """Raise :class:`lawsearch.errors.EngineUnavailable` when the engine cannot run (checked at start)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state to checkpoint (a resumed run continues exactly)."""
        ...

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        ...

    def record_outcome(self, proposal: Proposal, accepted: bool, improved: bool) -> None:
        """Learn what became of a proposal: fitted and scored (``accepted``), lowering the best error (``improved``)."""
        ...

    def pop_events(self) -> list[dict[str, Any]]:
        """Events since the last call (calls, rejections, errors) for history.jsonl."""
        ...

    def run_summary(self) -> dict[str, Any]:
        """The proposer's own summary of the run for law.json (an LLM's calls, tokens, cost)."""
        ...


HOOKS = frozenset(name for name in vars(ProposerHooks) if not name.startswith("_"))


def optional_hook(proposer: Proposer, name: str) -> Callable[..., Any] | None:
    """The proposer's hook ``name`` (one of :class:`ProposerHooks`), or None when it has none."""
    if name not in HOOKS:
        raise ValueError(f"{name!r} is not a proposer hook; hooks: {', '.join(sorted(HOOKS))}")
    hook = getattr(proposer, name, None)
    return hook if callable(hook) else None
