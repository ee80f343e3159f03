"""The LLM proposer's settings (the ``llm:`` block of a run config), with the JSON answer schema and the prompt template slots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from ... import environment
from ...precedence import merge_layers
from ..engine_settings import EngineSettings

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "laws": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"formula": {"type": "string"}, "rationale": {"type": "string"}},
                "required": ["formula", "rationale"],
            },
        }
    },
    "required": ["laws"],
}

# The slots each template may use (documented at the top of each template file).
_COMMON = ("system", "task", "data_summary", "failures", "n_laws", "targets", "inputs")
TEMPLATE_SLOTS: dict[str, tuple[str, ...]] = {
    "system": ("inputs", "targets", "functions", "parameter_limit", "answer_format"),
    "propose": (*_COMMON, "best_laws"),
    "mutate": (*_COMMON, "best_laws", "law", "law_error", "law_params", "residuals"),
    "crossover": (*_COMMON, "law_a", "law_a_error", "law_b", "law_b_error"),
}


class LLMSettings(EngineSettings):
    """Everything the LLM proposer can be told (the ``llm:`` block).

    Precedence (:mod:`lawsearch.precedence`): CLI > environment > run config ``llm:`` > defaults.
    The environment sets ``model`` and ``base_url`` (:mod:`lawsearch.environment`); the API key
    is read from the variable named by ``api_key_env`` when the proposer is created, never stored here.
    Caps (``max_calls``, ``max_tokens_total``, ``max_cost``) count cached replays too, so a
    replay stops exactly where the original run stopped; ``None`` means no cap.
    """

    section: ClassVar[str] = "llm"
    aliases: ClassVar[dict[str, tuple[str, ...]]] = {
        "price_per_1k": ("price_per_1k_prompt", "price_per_1k_completion"),
        "max_tokens_per_call": ("max_tokens",),
        "concurrency": ("concurrent_calls",),
    }

    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    # numeric settings: the constraint is in the type (pydantic's NonNegative*/Positive* types)
    temperature: NonNegativeFloat = 0.8  # sampling temperature of each call
    max_tokens: PositiveInt = 1024  # completion tokens per call
    proposals_per_call: PositiveInt = 5  # laws asked for in each call
    concurrent_calls: PositiveInt = 2  # calls in flight at once
    timeout: PositiveFloat = 60.0  # seconds per request (cut to the time left)
    retries: NonNegativeInt = 3  # retries of a failed request
    backoff: NonNegativeFloat = 1.0  # seconds; doubles per retry (Retry-After wins when sent)
    backoff_max: NonNegativeFloat = 30.0
    price_per_1k_prompt: NonNegativeFloat = 0.0
    price_per_1k_completion: NonNegativeFloat = 0.0
    max_calls: NonNegativeInt | None = None
    max_tokens_total: NonNegativeInt | None = None
    max_cost: float | None = Field(None, ge=0)
    cache: bool = True
    cache_dir: str | None = Field(None, description="None: $XDG_CACHE_HOME/lawsearch/llm or ~/.cache/lawsearch/llm")
    cache_max_mb: float = Field(100.0, gt=0, description="the cache's size cap: the oldest answers are dropped")
    max_answer_chars: int = Field(100_000, ge=1, description="a longer answer is a failed call (never cached)")
    json_mode: Literal["auto", "json_schema", "json_object", "none"] = "auto"
    system_role: Literal["auto", "system", "user"] = Field(
        "auto", description="where the system prompt goes: a system message, inside the user message (for chat "
                            "formats that drop system messages, such as Gemma's), or auto (user for gemma models)")
    explore: float = Field(0.3, ge=0, le=1, description="share of calls asking for fresh forms")
    crossover: float = Field(0.25, ge=0, le=1, description="share of calls combining two laws (needs two)")
    max_consecutive_failures: int = Field(5, ge=1, description="failed calls in a row before the proposer stops")
    prompts_dir: str | None = Field(None, description="a folder of replacement templates (same names and slots)")
    send_seed: bool = Field(True, description="pass the per-call seed to the API (OpenAI, vLLM, llama.cpp)")

    @classmethod
    def _field_of(cls, name: str) -> str | None:
        """``llm_model`` and ``llm_base_url`` (the CLI's names) are ``model`` and ``base_url``."""
        if name.startswith("llm_") and name[4:] in cls.model_fields:
            name = name[4:]
        return super()._field_of(name)

    @classmethod
    def resolve(
        cls,
        config_block: Mapping[str, Any] | None = None,
        cli_overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> LLMSettings:
        """The ``llm:`` block merged by the one precedence rule: CLI > environment > ``config_block`` >
        defaults (``None`` CLI values are unset)."""
        layers = (cls.normalize(config_block or {}), environment.llm_layer(environ),
                  cls.normalize(cli_overrides or {}, "--llm"))
        return cls(**merge_layers(*layers))
