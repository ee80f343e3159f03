"""Build the proposers a run asks for; an unavailable engine is noted, never fatal."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import EngineUnavailable
from .base import Proposer, optional_hook

if TYPE_CHECKING:
    from .engine_settings import EngineSettings
    from .llm.settings import LLMSettings
    from .sr.settings import OperonSettings, PySRSettings

__all__ = ["build_proposers", "BuiltProposers", "llm_configured", "INSTALL_HINTS",
           "brief_reason"]

#: How to get each optional engine, in a few words (the engines' own messages say more).
INSTALL_HINTS = {
    "operon": "pip install pyoperon",
    "pysr": "pip install 'lawsearch[pysr]' + Julia, see README",
    "llm": "--llm-model, --llm-base-url; pip install 'lawsearch[llm]'",
}


def _library(settings: Any) -> Proposer:
    from .library import LibraryProposer

    return LibraryProposer()


def _mutate(settings: Any) -> Proposer:
    from .mutate import MutationProposer

    return MutationProposer()


def _operon(settings: OperonSettings) -> Proposer:
    from .sr.operon import OperonProposer

    return OperonProposer(settings)


def _pysr(settings: PySRSettings) -> Proposer:
    from .sr.pysr import PySRProposer

    return PySRProposer(settings)


def _llm(settings: LLMSettings) -> Proposer:
    from .llm.proposer import LLMProposer

    return LLMProposer(settings)


#: proposer name → its factory, given the proposer's settings block (``None`` for those without one).
FACTORIES: dict[str, Callable[[Any], Proposer]] = {
    "library": _library,
    "mutate": _mutate,
    "operon": _operon,
    "pysr": _pysr,
    "llm": _llm,
}


def llm_configured(settings: LLMSettings | None) -> bool:
    """Whether an LLM model is configured (--llm-model, LAWSEARCH_LLM_MODEL or the llm: block, all merged
    into the settings by :func:`lawsearch.search.settings.resolve_settings`)."""
    return settings is not None and bool(settings.model)


def brief_reason(name: str, exc: EngineUnavailable) -> str:
    """Why an engine cannot run and how to get it, on one short line:
    ``PySR is not installed (pip install 'lawsearch[pysr]' + Julia, see README)``."""
    reason = re.split(r" \(|[.;:] ", str(exc), maxsplit=1)[0].strip()
    hint = INSTALL_HINTS.get(name)
    return f"{reason} ({hint})" if hint else reason


@dataclass
class BuiltProposers:
    """The proposers that could be built, a note for each that could not, and why (``unavailable``)."""

    proposers: list[Proposer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable: dict[str, EngineUnavailable] = field(default_factory=dict)


def build_proposers(requested: tuple[str, ...] | None, engines: Mapping[str, EngineSettings]) -> BuiltProposers:
    """Instantiate the requested proposers (``None``: every available one; the LLM only when configured),
    given the engines' resolved settings blocks (``{"llm": LLMSettings, "operon": ..., "pysr": ...}``).

    An engine that cannot run (not installed, no Julia …) is found here, before the search
    starts (a proposer's ``check_available``), and listed in ``unavailable``.
    """
    built = BuiltProposers()
    names = requested if requested is not None else tuple(FACTORIES)
    for name in names:
        settings = engines.get(name)
        if requested is None and name == "llm" and not llm_configured(settings):
            built.notes.append("llm: not configured (set --llm-model / OPENAI_BASE_URL to use an LLM)")
            continue
        try:
            proposer = FACTORIES[name](settings)
            check = optional_hook(proposer, "check_available")
            if check is not None:
                check()
        except EngineUnavailable as exc:
            built.notes.append(f"{name}: unavailable — {exc}")
            built.unavailable[name] = exc
            continue
        built.proposers.append(proposer)
    return built
