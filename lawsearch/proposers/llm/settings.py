"""The LLM proposer's settings (the ``llm:`` block of a run config), with the JSON answer schema and the prompt template slots."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


from ...errors import TaskError


JSON_MODES = ("auto", "json_schema", "json_object", "none")
SYSTEM_ROLES = ("auto", "system", "user")

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


@dataclass
class LLMSettings:
    """Everything the LLM proposer can be told.  Precedence: CLI > environment > YAML ``llm:`` > defaults.

    Environment variables: ``OPENAI_BASE_URL`` (or ``LAWSEARCH_LLM_BASE_URL``, which wins),
    ``LAWSEARCH_LLM_MODEL``; the API key is read from the variable named by
    ``api_key_env`` (``OPENAI_API_KEY``) when the proposer is created, never stored here.
    Caps (``max_calls``, ``max_tokens_total``, ``max_cost``) count cached replays too, so a
    replay stops exactly where the original run stopped; ``None`` means no cap.
    """

    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.8
    max_tokens: int = 1024
    proposals_per_call: int = 5
    concurrent_calls: int = 2
    timeout: float = 60.0
    retries: int = 3
    backoff: float = 1.0  # seconds; doubles per retry (Retry-After wins when the server sends one)
    backoff_max: float = 30.0
    price_per_1k_prompt: float = 0.0
    price_per_1k_completion: float = 0.0
    max_calls: int | None = None
    max_tokens_total: int | None = None
    max_cost: float | None = None
    cache: bool = True
    cache_dir: str | None = None  # None: $XDG_CACHE_HOME/lawsearch/llm or ~/.cache/lawsearch/llm
    cache_max_mb: float = 100.0  # the cache's size cap: the oldest answers are dropped beyond it
    max_answer_chars: int = 100_000  # a longer answer is a failed call (and never cached)
    json_mode: str = "auto"  # auto | json_schema | json_object | none
    # where the system prompt goes: "system" (a system message), "user" (inside the user message,
    # for chat formats that drop system messages, such as Gemma's), "auto" (user for gemma models)
    system_role: str = "auto"
    explore: float = 0.3  # share of calls asking for fresh forms once the archive has laws
    crossover: float = 0.25  # share of calls combining two laws (needs two)
    max_consecutive_failures: int = 5  # failed calls in a row before the proposer disables itself
    prompts_dir: str | None = None  # a folder of replacement templates (same names and slots)
    send_seed: bool = True  # pass the per-call seed to the API (OpenAI, vLLM, llama.cpp honour it)

    _ENV = {
        "model": ("LAWSEARCH_LLM_MODEL",),
        "base_url": ("LAWSEARCH_LLM_BASE_URL", "OPENAI_BASE_URL"),
    }
    _ALIASES = {
        "price_per_1k": ("price_per_1k_prompt", "price_per_1k_completion"),
        "max_tokens_per_call": ("max_tokens",),
        "concurrency": ("concurrent_calls",),
        "llm_model": ("model",),
        "llm_base_url": ("base_url",),
    }

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def validate(self) -> LLMSettings:
        """Check types and ranges; raises :class:`TaskError` naming the bad setting."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            setattr(self, f.name, _coerce(f.name, f.type, value))
        if self.json_mode not in JSON_MODES:
            raise TaskError(f"llm.json_mode: {self.json_mode!r} is not one of {', '.join(JSON_MODES)}")
        if self.system_role not in SYSTEM_ROLES:
            raise TaskError(f"llm.system_role: {self.system_role!r} is not one of {', '.join(SYSTEM_ROLES)}")
        positive = ("max_tokens", "proposals_per_call", "concurrent_calls", "max_consecutive_failures",
                    "max_answer_chars")
        for name in positive:
            if getattr(self, name) < 1:
                raise TaskError(f"llm.{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("timeout", "cache_max_mb"):
            if not getattr(self, name) > 0:
                raise TaskError(f"llm.{name}: must be positive, got {getattr(self, name)}")
        for name in ("retries", "backoff", "backoff_max", "price_per_1k_prompt", "price_per_1k_completion",
                     "temperature"):
            if getattr(self, name) < 0:
                raise TaskError(f"llm.{name}: must not be negative, got {getattr(self, name)}")
        for name in ("explore", "crossover"):
            if not 0 <= getattr(self, name) <= 1:
                raise TaskError(f"llm.{name}: must be between 0 and 1, got {getattr(self, name)}")
        for name in ("max_calls", "max_tokens_total", "max_cost"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise TaskError(f"llm.{name}: must not be negative, got {value}")
        return self

    @classmethod
    def resolve(
        cls,
        yaml_block: Mapping[str, Any] | None = None,
        cli_overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> LLMSettings:
        """Merge defaults < YAML ``llm:`` block < environment < CLI (``None`` CLI values are ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        values.update(cls._normalize(yaml_block or {}, "llm"))
        for name, variables in cls._ENV.items():
            for var in variables:
                if environ.get(var):
                    values[name] = environ[var]
                    break
        values.update(cls._normalize({k: v for k, v in (cli_overrides or {}).items() if v is not None}, "--llm"))
        return cls(**values)

    @classmethod
    def _normalize(cls, block: Mapping[str, Any], where: str) -> dict[str, Any]:
        if not isinstance(block, Mapping):
            raise TaskError(f"{where}: expected a mapping of settings, got {type(block).__name__}")
        names = set(cls.field_names())
        out: dict[str, Any] = {}
        for key, value in block.items():
            key_n = str(key).replace("-", "_")
            if key_n.startswith("llm_") and key_n[4:] in names:
                key_n = key_n[4:]
            if key_n in cls._ALIASES:
                for target in cls._ALIASES[key_n]:
                    out[target] = value
            elif key_n in names:
                out[key_n] = value
            else:
                raise TaskError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(names))}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (no secrets: the key itself never lives here)."""
        return dataclasses.asdict(self)


def _coerce(name: str, annotation: Any, value: Any) -> Any:
    """Coerce strings from the environment / CLI to the field's type."""
    ann = str(annotation)
    optional = "None" in ann
    if value is None:
        if optional:
            return None
        raise TaskError(f"llm.{name}: a value is required")
    if isinstance(value, str) and optional and value.strip().lower() in ("", "none", "null"):
        return None
    try:
        if ann.startswith("bool"):
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if ann.startswith(("int", "float")):
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
            if math.isnan(number) or (ann.startswith("int") and not number.is_integer()):
                raise ValueError(value)
            return int(number) if ann.startswith("int") else number
        if ann.startswith("str"):
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError(value)
            return str(value)
    except (TypeError, ValueError):
        raise TaskError(f"llm.{name}: {value!r} is not a valid {ann.split(' ')[0]}") from None
    return value
