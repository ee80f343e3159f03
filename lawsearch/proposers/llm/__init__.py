"""The LLM proposer: formulas from any OpenAI-compatible chat server.

:mod:`.settings` (the ``llm:`` block), :mod:`.prompts` (templates and messages, with the
data summary), :mod:`.answers` (tolerant parsing of the reply), :mod:`.client` (budget,
disk cache, JSON-mode negotiation and retries) and :mod:`.proposer` (the proposer itself).

The names below are imported lazily, so reading the run settings (:mod:`.settings`) does not
load sympy and the prompt machinery.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LLMSettings": ".settings",
    "LLMProposer": ".proposer",
    "parse_answer": ".answers",
    "load_template": ".prompts",
    "render_template": ".prompts",
    "TEMPLATE_SLOTS": ".settings",
    "ANSWER_SCHEMA": ".settings",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
