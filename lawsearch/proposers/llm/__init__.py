"""The LLM proposer: formulas from any OpenAI-compatible chat server.

:mod:`.settings` (the ``llm:`` block), :mod:`.prompts` (templates and messages, with the
data summary), :mod:`.answers` (tolerant parsing of the reply), :mod:`.client` (budget,
disk cache, JSON-mode negotiation and retries) and :mod:`.proposer` (the proposer itself).

The names below are imported lazily, so reading the run settings (:mod:`.settings`) does not
load sympy and the prompt machinery.
"""

from __future__ import annotations

from ...lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    ".settings": ("LLMSettings", "TEMPLATE_SLOTS", "ANSWER_SCHEMA"),
    ".proposer": ("LLMProposer",),
    ".answers": ("parse_answer",),
    ".prompts": ("load_template", "render_template"),
})
