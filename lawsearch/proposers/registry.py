"""Build the proposers a run asks for; an unavailable engine is noted, never fatal."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import EngineUnavailable
from .base import Proposer, optional_hook

__all__ = ["build_proposers", "check_engine_settings", "BuiltProposers", "llm_configured", "INSTALL_HINTS",
           "brief_reason"]

#: How to get each optional engine, in a few words (the engines' own messages say more).
INSTALL_HINTS = {
    "operon": "pip install pyoperon",
    "pysr": "pip install 'lawsearch[pysr]' + Julia, see README",
    "llm": "--llm-model, --llm-base-url; pip install 'lawsearch[llm]'",
}


def check_engine_settings(llm: Mapping[str, Any], llm_cli: Mapping[str, Any], operon: Mapping[str, Any],
                          pysr: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """Validate the engine blocks of a run's settings (``llm:``, ``operon:``, ``pysr:``) with the engines'
    own settings types, whether or not the run uses them: a bad key or value is a :class:`TaskError`
    naming it, raised before anything of the run is written."""
    from .llm.settings import LLMSettings
    from .sr.operon import OperonSettings
    from .sr.pysr import PySRSettings

    LLMSettings.resolve(llm, llm_cli, environ)
    OperonSettings.from_mapping(operon)
    PySRSettings.from_mapping(pysr)


def _library(options: dict[str, Any]) -> Proposer:
    from .library import LibraryProposer

    return LibraryProposer()


def _mutate(options: dict[str, Any]) -> Proposer:
    from .mutate import MutationProposer

    return MutationProposer()


def _operon(options: dict[str, Any]) -> Proposer:
    from .sr.operon import OperonProposer, OperonSettings

    return OperonProposer(OperonSettings.from_mapping(options))


def _pysr(options: dict[str, Any]) -> Proposer:
    from .sr.pysr import PySRProposer, PySRSettings

    return PySRProposer(PySRSettings.from_mapping(options))


def _llm(options: dict[str, Any]) -> Proposer:
    from .llm import LLMProposer

    cli = options.pop("cli", {})
    return LLMProposer.from_config(options, cli, os.environ)


FACTORIES: dict[str, Callable[[dict[str, Any]], Proposer]] = {
    "library": _library,
    "mutate": _mutate,
    "operon": _operon,
    "pysr": _pysr,
    "llm": _llm,
}


def llm_configured(options: dict[str, Any]) -> bool:
    """Whether an LLM model is configured (--llm-model, the llm: block, or LAWSEARCH_LLM_MODEL)."""
    return bool(options.get("model") or options.get("cli", {}).get("model") or os.environ.get("LAWSEARCH_LLM_MODEL"))


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


def build_proposers(requested: tuple[str, ...] | None, options: dict[str, dict[str, Any]]) -> BuiltProposers:
    """Instantiate the requested proposers (``None``: every available one; the LLM only when configured).

    An engine that cannot run (not installed, no Julia …) is found here, before the search
    starts (a proposer's ``check_available``), and listed in ``unavailable``.
    """
    built = BuiltProposers()
    names = requested if requested is not None else tuple(FACTORIES)
    for name in names:
        engine_options = dict(options.get(name, {}))
        if requested is None and name == "llm" and not llm_configured(engine_options):
            built.notes.append("llm: not configured (set --llm-model / OPENAI_BASE_URL to use an LLM)")
            continue
        engine_options.pop("every", None)
        try:
            proposer = FACTORIES[name](engine_options)
            check = optional_hook(proposer, "check_available")
            if check is not None:
                check()
        except EngineUnavailable as exc:
            built.notes.append(f"{name}: unavailable — {exc}")
            built.unavailable[name] = exc
            continue
        built.proposers.append(proposer)
    return built
