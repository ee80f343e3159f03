"""The LLM proposer: formulas from any OpenAI-compatible chat server.

:mod:`.settings` (the ``llm:`` block), :mod:`.prompts` (templates and messages, with the
data summary), :mod:`.answers` (tolerant parsing of the reply), :mod:`.client` (budget,
disk cache, JSON-mode negotiation and retries) and :mod:`.proposer` (the proposer itself).
"""

from .answers import parse_answer
from .prompts import load_template, render_template
from .proposer import LLMProposer
from .settings import ANSWER_SCHEMA, TEMPLATE_SLOTS, LLMSettings

__all__ = [
    "LLMSettings",
    "LLMProposer",
    "parse_answer",
    "load_template",
    "render_template",
    "TEMPLATE_SLOTS",
    "ANSWER_SCHEMA",
]
