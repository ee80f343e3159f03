"""The LLM proposer: formulas from any OpenAI-compatible chat server.

It reads a summary of the search-train rows (:mod:`lawsearch.summary`), the
best laws so far and recent failures, fills one of the plain-text prompt
templates of ``lawsearch/prompts/`` (``propose``, ``mutate``, ``crossover``;
``system`` for the role, the grammar and the answer format), asks the chat API
for a JSON answer and parses it tolerantly.  Every formula goes through the
safe parser :meth:`lawsearch.formula.Law.parse`; nothing an LLM writes is
ever executed.  Rejected formulas are recorded with their reason and shown to
the LLM in later prompts.

Works with OpenAI, vLLM, llama.cpp's server (``llama-cpp-python[server]``),
Ollama … through the ``openai`` client (``pip install 'lawsearch[llm]'``).

Robustness: timeouts, retries with exponential backoff on rate limits (429),
5xx and connection errors, JSON-mode negotiation (``json_schema`` →
``json_object`` with a schema → ``json_object`` → plain text, remembering what
the server accepted), per-run caps on calls, tokens and cost, and a circuit
breaker after repeated failures.  A bad answer, a timeout or a dead server
never raises out of :meth:`LLMProposer.propose`: it returns what it has
(possibly nothing), logs why, and the search goes on with its other proposers.

Reproducibility: answers are cached on disk, keyed by the model, the messages,
the sampling settings, the requested JSON mode and a seed drawn from the run's
generator, so a rerun with the same run seed replays the same proposals without
a single API call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import math
import os
import re
import string
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EngineUnavailable, FormulaError, ProposerError, TaskError
from ..formula import FUNCTIONS, Law
from ..summary import format_best_laws, format_failures, format_summary, residual_pattern, summarize_data
from .base import Proposal, ScoredLaw, SearchContext

__all__ = [
    "LLMSettings",
    "LLMProposer",
    "parse_answer",
    "load_template",
    "render_template",
    "TEMPLATE_SLOTS",
    "ANSWER_SCHEMA",
]

log = logging.getLogger("lawsearch.llm")

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


# ============================================================================ settings
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
        if ann.startswith("int"):
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        if ann.startswith("float"):
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
            if math.isnan(number):
                raise ValueError(value)
            return number
        if ann.startswith("str"):
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError(value)
            return str(value)
    except (TypeError, ValueError):
        raise TaskError(f"llm.{name}: {value!r} is not a valid {ann.split(' ')[0]}") from None
    return value


# ============================================================================ templates
def load_template(kind: str, prompts_dir: str | os.PathLike[str] | None = None) -> string.Template:
    """Load a prompt template; lines starting with ``##`` (documentation) are dropped."""
    if kind not in TEMPLATE_SLOTS:
        raise ProposerError(f"unknown prompt template {kind!r}")
    if prompts_dir is not None:
        path = Path(prompts_dir) / f"{kind}.txt"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TaskError(f"llm.prompts_dir: cannot read {path}: {exc.strerror or exc}") from None
        where = str(path)
    else:
        text = (resources.files("lawsearch") / "prompts" / f"{kind}.txt").read_text(encoding="utf-8")
        where = f"lawsearch/prompts/{kind}.txt"
    body = "\n".join(line for line in text.splitlines() if not line.startswith("##")).strip("\n") + "\n"
    template = string.Template(body)
    if not template.is_valid():
        raise TaskError(f"{where}: invalid '$' placeholder (write $$ for a literal dollar)")
    unknown = set(template.get_identifiers()) - set(TEMPLATE_SLOTS[kind])
    if unknown:
        raise TaskError(
            f"{where}: unknown slot(s) {', '.join('$' + u for u in sorted(unknown))}; "
            f"known: {', '.join('$' + s for s in TEMPLATE_SLOTS[kind])}"
        )
    return template


def render_template(template: string.Template, slots: Mapping[str, Any]) -> str:
    """Fill every slot (values are inserted verbatim, never re-interpreted); tidy blank lines."""
    text = template.substitute({k: str(v) for k, v in slots.items()})
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


# ============================================================================ parsing answers
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n?(.*?)```", re.S)
_FORMULA_FIELD = re.compile(r'"(?:formula|law|expression)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_RATIONALE_FIELD = re.compile(r'"(?:rationale|reason|explanation)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_LIST_MARK = re.compile(r"^\s*(?:\d+\s*[.):]|[-*•])\s+")
_LABEL = re.compile(r"^(?:formula|law|equation|expression|answer)\s*\d*\s*[:：]\s*", re.I)
_PROSE = re.compile(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}\s+[A-Za-z]{2,}")
_FORMULA_KEYS = ("formula", "law", "expression", "equation")
_RATIONALE_KEYS = ("rationale", "reason", "explanation", "note")


def _items_from_json(obj: Any) -> list[tuple[Any, str]] | None:
    """Formulas from a decoded JSON value, or None when it has no recognizable shape."""
    if isinstance(obj, dict):
        for key in ("laws", "formulas", "proposals", "candidates", "results"):
            if key in obj and isinstance(obj[key], list):
                return _items_from_list(obj[key])
        if any(k in obj for k in _FORMULA_KEYS):
            return _items_from_list([obj])
        return None
    if isinstance(obj, list):
        return _items_from_list(obj)
    return None


def _items_from_list(values: list[Any]) -> list[tuple[Any, str]]:
    items: list[tuple[Any, str]] = []
    for v in values:
        if isinstance(v, dict):
            formula = next((v[k] for k in _FORMULA_KEYS if k in v), None)
            rationale = next((v[k] for k in _RATIONALE_KEYS if k in v), "")
            items.append((formula, rationale if isinstance(rationale, str) else json.dumps(rationale)))
        else:
            items.append((v, ""))
    return items


def _decode_embedded(text: str) -> list[tuple[Any, str]] | None:
    """Find the first JSON object/array inside ``text`` (prose before or after is ignored)."""
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch not in "{[":
            continue
        try:
            obj, _ = decoder.raw_decode(text, i)
        except ValueError:
            continue
        items = _items_from_json(obj)
        if items is not None:
            return items
    return None


def _line_formulas(text: str) -> list[tuple[Any, str]]:
    """Fallback: one formula per line (list markers, labels and trailing comments stripped)."""
    items: list[tuple[Any, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("```", "#", "{", "}", "[", "]")):
            continue
        line = _LIST_MARK.sub("", line)
        line = _LABEL.sub("", line.strip("*_ ").strip())
        rationale = ""
        for sep in (" -- ", " — ", " – ", " # ", "  (", " : "):
            if sep in line:
                line, _, rationale = line.partition(sep)
                rationale = rationale.strip(" )")
        line = line.strip().strip("`$\"'").strip().rstrip(".,;")
        if not line or not re.search(r"[-+*/^()]", line) or _PROSE.search(line):
            continue
        items.append((line, rationale))
    return items


def parse_answer(text: str | None) -> tuple[list[tuple[Any, str]], str]:
    """Extract ``(formula, rationale)`` pairs from an LLM answer, tolerantly.

    Tries, in order: the whole text as JSON; JSON inside ```code fences```;
    the first JSON value embedded in prose; ``"formula": "..."`` fields of
    broken JSON; one formula per line.  Returns the pairs and how they were
    found (``json``, ``fenced``, ``embedded``, ``salvaged``, ``lines``,
    ``empty``).  Formula values are *not* validated here (see the proposer).
    """
    if not text or not text.strip():
        return [], "empty"
    text = text.strip()
    try:
        items = _items_from_json(json.loads(text))
        if items is not None:
            return items, "json"
    except ValueError:
        pass
    for _lang, block in _FENCE.findall(text):
        block = block.strip()
        try:
            items = _items_from_json(json.loads(block))
            if items is not None:
                return items, "fenced"
        except ValueError:
            items = _decode_embedded(block)
            if items is not None:
                return items, "fenced"
    items = _decode_embedded(text)
    if items is not None:
        return items, "embedded"
    found = _FORMULA_FIELD.findall(text)
    if found:
        rationales = _RATIONALE_FIELD.findall(text)
        out = []
        for i, f in enumerate(found):
            try:
                formula = json.loads(f'"{f}"')
            except ValueError:
                formula = f
            rationale = rationales[i] if i < len(rationales) else ""
            out.append((formula, rationale))
        return out, "salvaged"
    # plain text (maybe inside fences)
    plain = "\n".join(block for _lang, block in _FENCE.findall(text)) or text
    items = _line_formulas(plain)
    return items, "lines" if items else "empty"


_LHS_CALL = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*\([^()=]*\)\s*=(?!=)")


def _clean_formula(text: str) -> str:
    """Cosmetic clean-up of formula text before the safe parser sees it (text in, text out)."""
    f = " ".join(text.split())
    f = f.strip().strip("`").strip()
    if f.startswith("$") and f.endswith("$"):
        f = f.strip("$").strip()
    f = f.rstrip(".,;").strip()
    f = _LHS_CALL.sub(lambda m: f"{m.group(1)} =", f)  # "L(N, D) = ..." -> "L = ..."
    return f


# ============================================================================ the proposer
@dataclass
class _Job:
    call_id: str
    kind: str
    messages: list[dict[str, str]]
    n_laws: int
    seed: int
    parents: tuple[str, ...]
    generation: int


@dataclass
class _CallResult:
    job: _Job
    content: str | None = None
    tokens_prompt: int = 0
    tokens_completion: int = 0
    cost: float = 0.0
    latency_s: float = 0.0
    cached: bool = False
    json_mode: str = ""
    attempts: int = 0
    error: str | None = None
    fatal: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


class _HTTPStatus(Exception):
    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class LLMProposer:
    """Formulas from an OpenAI-compatible chat model.  See the module docstring.

    ``settings``: an :class:`LLMSettings` (or a mapping of its fields);
    ``run_log``: called with every event dict as it happens (calls, rejections,
    errors, caps) — the search writes them to ``history.jsonl``; ``environ``:
    where to read the API key (default ``os.environ``); ``client``: an
    already-built OpenAI client (tests).

    Raises :class:`EngineUnavailable` when ``openai`` is not installed, no model
    is configured, or there is neither an API key nor a base URL.
    """

    name = "llm"

    def __init__(
        self,
        settings: LLMSettings | Mapping[str, Any] | None = None,
        run_log: Callable[[dict[str, Any]], None] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        client: Any = None,
    ) -> None:
        if settings is None:
            settings = LLMSettings.resolve(environ=environ)
        elif isinstance(settings, Mapping):
            settings = LLMSettings(**settings)
        self.settings = settings.validate()
        self.run_log = run_log
        environ = os.environ if environ is None else environ
        try:
            self._openai = importlib.import_module("openai")
        except ImportError:
            raise EngineUnavailable(
                "the LLM proposer needs the openai client: pip install 'lawsearch[llm]'"
            ) from None
        if not settings.model:
            raise EngineUnavailable(
                "no LLM model configured: pass --llm-model, set LAWSEARCH_LLM_MODEL, or set llm.model in the run settings"
            )
        api_key = environ.get(settings.api_key_env) or None
        if not api_key and not settings.base_url:
            raise EngineUnavailable(
                f"no LLM endpoint: set {settings.api_key_env} for OpenAI, or a base URL of an OpenAI-compatible "
                "server (--llm-base-url / OPENAI_BASE_URL, e.g. http://127.0.0.1:8080/v1 for llama.cpp)"
            )
        if client is None:
            try:
                client = self._openai.OpenAI(
                    api_key=api_key or "not-needed",
                    base_url=settings.base_url or None,
                    timeout=settings.timeout,
                    max_retries=0,  # retries are ours: counted, logged, with backoff
                )
            except Exception as exc:  # noqa: BLE001 - any client construction problem
                raise EngineUnavailable(f"cannot create the OpenAI client: {exc}") from None
        self.client = client
        self.templates = {kind: load_template(kind, settings.prompts_dir) for kind in TEMPLATE_SLOTS}
        self._system_in_user = settings.system_role == "user" or (
            settings.system_role == "auto" and "gemma" in settings.model.lower()
        )
        if settings.cache:
            root = settings.cache_dir or os.path.join(
                os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "lawsearch", "llm"
            )
            self.cache_dir: Path | None = Path(root)
        else:
            self.cache_dir = None

        self._cache_bytes: int | None = None  # the cache's size, counted on the first write
        self._lock = threading.RLock()
        self._deadline: float | None = None  # time.time() by which calls must end (SearchContext.deadline)
        self._executor: ThreadPoolExecutor | None = None
        self._call_counter = 0
        self._rejections: deque[tuple[str, str]] = deque(maxlen=50)
        self._consecutive_failures = 0
        self._summary_key: tuple | None = None
        self._summary_text = ""
        self._residual_cache: dict[str, str] = {}
        # JSON-mode negotiation: the chain to try, where we are, and whether the server confirmed it
        self._modes = {
            "auto": ["json_schema", "json_object_schema", "json_object", "none"],
            "json_schema": ["json_schema"],
            "json_object": ["json_object_schema", "json_object"],
            "none": ["none"],
        }[settings.json_mode]
        self._mode_index = 0
        self._mode_confirmed = False
        # budget counters (include cached replays, so a replay stops where the original stopped)
        self._budget_calls = 0
        self._budget_tokens = 0
        self._budget_cost = 0.0
        self.disabled: str | None = None
        self.capped: str | None = None
        self.events: list[dict[str, Any]] = []
        self.stats: dict[str, Any] = {
            "calls": 0,  # logical calls: API calls + cached replays + failed calls
            "api_calls": 0,  # calls answered by the server
            "cached_calls": 0,
            "failed_calls": 0,
            "retries": 0,
            "tokens_prompt": 0,  # billed tokens (API calls only)
            "tokens_completion": 0,
            "tokens": 0,
            "cost": 0.0,  # billed cost (API calls only)
            "latency_s": 0.0,  # total seconds waiting on the server
            "proposals_valid": 0,
            "proposals_rejected": 0,
            "proposals_duplicate": 0,
            "accepted": 0,  # filled by record_outcome()
            "improving": 0,
            "errors": 0,
            "error_messages": [],
            "rejections": [],  # {"call_id", "formula", "reason"}
            "by_kind": {"propose": 0, "mutate": 0, "crossover": 0},
            "parse_modes": {},
            "json_mode": None,
            "disabled": None,
            "capped": None,
        }

    @classmethod
    def from_config(
        cls,
        yaml_block: Mapping[str, Any] | None = None,
        cli_overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        run_log: Callable[[dict[str, Any]], None] | None = None,
    ) -> LLMProposer:
        """Build from the run settings' ``llm:`` block, CLI options and the environment (see :meth:`LLMSettings.resolve`)."""
        return cls(LLMSettings.resolve(yaml_block, cli_overrides, environ), run_log=run_log, environ=environ)

    # ------------------------------------------------------------------ public
    def propose(self, context: SearchContext, n: int) -> list[Proposal]:
        """Up to ``n`` valid proposals; never raises for a bad/slow/missing answer."""
        if n < 1:
            return []
        self._deadline = context.deadline
        if self.disabled or self._time_left() <= 0:
            return []
        n_calls = math.ceil(n / self.settings.proposals_per_call)
        # every random draw happens here, before any call, so the run's generator advances
        # the same way whatever the server answers
        plans = [self._plan(context) for _ in range(n_calls)]
        try:
            jobs = [self._make_job(context, kind, parents, seed, min(self.settings.proposals_per_call, n - i * self.settings.proposals_per_call))
                    for i, (kind, parents, seed) in enumerate(plans)]
        except Exception as exc:  # noqa: BLE001 - a prompt problem must not stop the search
            self._error(None, f"cannot build the prompt: {type(exc).__name__}: {exc}")
            return []
        allowed: list[_Job] = []
        for job in jobs:
            reason = self._reserve_budget()
            if reason:
                self._cap(reason)
                break
            allowed.append(job)
        if not allowed:
            return []
        if len(allowed) == 1 or self.settings.concurrent_calls == 1:
            results = [self._call(job) for job in allowed]
        else:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.settings.concurrent_calls, thread_name_prefix="lawsearch-llm"
                )
            results = list(self._executor.map(self._call, allowed))  # ordered like the jobs
        proposals: list[Proposal] = []
        seen: set[str] = set()
        for result in results:
            proposals.extend(self._digest(result, context, seen))
        return proposals[:n]

    def record_outcome(self, proposal: Proposal, accepted: bool, improved: bool) -> None:
        """Tell the proposer what the search did with one of its proposals (for the run summary)."""
        if proposal.source != self.name:
            return
        with self._lock:
            self.stats["accepted"] += int(bool(accepted))
            self.stats["improving"] += int(bool(improved))

    def run_summary(self) -> dict[str, Any]:
        """JSON-ready totals for the run summary: calls, tokens, cost, shares of valid/accepted/improving."""
        s = self.stats
        made = s["proposals_valid"] + s["proposals_rejected"]
        return {
            "model": self.settings.model,
            "base_url": self.settings.base_url,
            "calls": s["calls"],
            "api_calls": s["api_calls"],
            "cached_calls": s["cached_calls"],
            "failed_calls": s["failed_calls"],
            "retries": s["retries"],
            "tokens_prompt": s["tokens_prompt"],
            "tokens_completion": s["tokens_completion"],
            "tokens": s["tokens"],
            "cost": round(s["cost"], 6),
            "mean_latency_s": round(s["latency_s"] / s["api_calls"], 3) if s["api_calls"] else None,
            "proposals_valid": s["proposals_valid"],
            "proposals_rejected": s["proposals_rejected"],
            "valid_share": round(s["proposals_valid"] / made, 4) if made else None,
            "accepted_share": round(s["accepted"] / s["proposals_valid"], 4) if s["proposals_valid"] else None,
            "improving_share": round(s["improving"] / s["proposals_valid"], 4) if s["proposals_valid"] else None,
            "json_mode": s["json_mode"],
            "parse_modes": dict(s["parse_modes"]),
            "by_kind": dict(s["by_kind"]),
            "disabled": s["disabled"],
            "capped": s["capped"],
            "errors": s["errors"],
        }

    def pop_events(self) -> list[dict[str, Any]]:
        """Return the events recorded since the last call and forget them."""
        with self._lock:
            events, self.events = self.events, []
        return events

    def state_dict(self) -> dict[str, Any]:
        """What later calls depend on (call ids, budget counters, rejections fed back, JSON mode,
        circuit breaker, totals), JSON-ready, for the run's checkpoint."""
        with self._lock:
            return json.loads(json.dumps({
                "call_counter": self._call_counter, "budget_calls": self._budget_calls,
                "budget_tokens": self._budget_tokens, "budget_cost": self._budget_cost,
                "rejections": list(self._rejections), "consecutive_failures": self._consecutive_failures,
                "mode_index": self._mode_index, "mode_confirmed": self._mode_confirmed,
                "disabled": self.disabled, "capped": self.capped, "stats": self.stats,
            }))

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`: a resumed run makes the calls an uninterrupted one would."""
        with self._lock:
            self._call_counter = int(state["call_counter"])
            self._budget_calls = int(state["budget_calls"])
            self._budget_tokens = int(state["budget_tokens"])
            self._budget_cost = float(state["budget_cost"])
            self._rejections.extend((str(f), str(r)) for f, r in state["rejections"])
            self._consecutive_failures = int(state["consecutive_failures"])
            self._mode_index = min(int(state["mode_index"]), len(self._modes) - 1)
            self._mode_confirmed = bool(state["mode_confirmed"])
            self.disabled, self.capped = state["disabled"], state["capped"]
            self.stats.update(state["stats"])

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        close = getattr(self.client, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001
                pass

    # ------------------------------------------------------------------ planning and prompts
    def _plan(self, context: SearchContext) -> tuple[str, tuple[str, ...], int]:
        rng = context.rng
        best = list(context.best)[:20]
        r = float(rng.random())
        seed = int(rng.integers(0, 2**31 - 1))
        if not best or r < self.settings.explore:
            return "propose", (), seed
        if len(best) >= 2 and r < self.settings.explore + self.settings.crossover:
            a = self._tournament(best, rng)
            rest = [i for i in range(len(best)) if i != a]
            b = rest[min(int(j) for j in rng.choice(len(rest), size=min(3, len(rest)), replace=False))]
            return "crossover", (best[a].formula, best[b].formula), seed
        return "mutate", (best[self._tournament(best, rng)].formula,), seed

    @staticmethod
    def _tournament(best: list[ScoredLaw], rng: np.random.Generator, k: int = 3) -> int:
        picks = rng.choice(len(best), size=min(k, len(best)), replace=False)
        return int(min(int(p) for p in picks))  # best is sorted, best first

    def _data_summary(self, context: SearchContext) -> str:
        X = np.ascontiguousarray(context.X, dtype=float)
        Y = np.ascontiguousarray(context.Y, dtype=float)
        key = (
            context.inputs,
            context.targets,
            hashlib.sha256(X.tobytes() + Y.tobytes() + np.asarray(context.groups).astype(str).tobytes()).hexdigest(),
        )
        if key != self._summary_key:
            self._summary_text = format_summary(
                summarize_data(context.inputs, context.targets, X, Y, context.groups)
            )
            self._summary_key = key
            self._residual_cache.clear()
        return self._summary_text

    def _residuals(self, formula: str, context: SearchContext) -> str:
        if formula not in self._residual_cache:
            self._residual_cache[formula] = residual_pattern(
                formula, context.inputs, context.targets, context.X, context.Y, context.groups
            )
        return self._residual_cache[formula]

    def _system_text(self, context: SearchContext, n_laws: int) -> str:
        inputs = ", ".join(context.inputs)
        functions = ", ".join(sorted(set(FUNCTIONS) - {"Abs", "Min", "Max"}))
        if context.max_parameters:
            limit = f"At most {context.max_parameters} fitted parameters per law; fewer is better."
        else:
            limit = "Use few fitted parameters (at most 6 is a good rule); fewer is better."
        x = context.inputs[0] if context.inputs else "x"
        example = {"laws": [{"formula": f"A * {x}**(-alpha) + E", "rationale": "power law with an irreducible term"}]}
        answer = (
            f"Answer with JSON only (no prose, no code fences): an object with a list \"laws\" of {n_laws} "
            "entries, each with a \"formula\" (the right-hand side of the law) and a \"rationale\" (one short "
            f"sentence).  Shape, with an example entry that you must not copy: {json.dumps(example)}"
        )
        return render_template(
            self.templates["system"],
            {
                "inputs": inputs,
                "targets": ", ".join(context.targets),
                "functions": functions,
                "parameter_limit": limit,
                "answer_format": answer,
            },
        )

    def _law_line(self, formula: str, context: SearchContext) -> str:
        for law in context.best:
            if law.formula == formula:
                return f"validation error {law.val_error:.4g}, {law.n_parameters} parameters, complexity {law.complexity}"
        return "validation error unknown"

    def _make_job(
        self, context: SearchContext, kind: str, parents: tuple[str, ...], seed: int, n_laws: int
    ) -> _Job:
        system = self._system_text(context, n_laws)
        task = context.task_name or "(unnamed task)"
        if context.task_description:
            task += f" — {context.task_description}"
        failures = list(context.failures)[-8:] + list(self._rejections)[-8:]
        slots: dict[str, Any] = {
            "system": system if self._system_in_user else "",
            "task": task,
            "data_summary": self._data_summary(context),
            "failures": format_failures(failures),
            "n_laws": n_laws,
            "targets": ", ".join(context.targets),
            "inputs": ", ".join(context.inputs),
        }
        if kind == "propose":
            slots["best_laws"] = format_best_laws(context.best)
        elif kind == "mutate":
            (law,) = parents
            best = context.best
            law_obj = next((b for b in best if b.formula == law), None)
            slots.update(
                law=law,
                law_error=f"{law_obj.val_error:.4g}" if law_obj else "unknown",
                law_params=(
                    f"{law_obj.n_parameters} fitted parameters, complexity {law_obj.complexity}" if law_obj else ""
                ),
                residuals=self._residuals(law, context),
                best_laws=format_best_laws([b for b in best if b.formula != law], limit=5),
            )
        else:
            a, b = parents
            slots.update(
                law_a=a, law_a_error=self._law_line(a, context), law_b=b, law_b_error=self._law_line(b, context)
            )
        user = render_template(self.templates[kind], slots)
        if self._system_in_user:
            messages = [{"role": "user", "content": user}]
        else:
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        with self._lock:
            self._call_counter += 1
            call_id = f"llm-{self._call_counter:05d}"
        return _Job(call_id, kind, messages, n_laws, seed, parents, context.generation)

    # ------------------------------------------------------------------ budget
    def _reserve_budget(self) -> str | None:
        s = self.settings
        with self._lock:
            if s.max_calls is not None and self._budget_calls >= s.max_calls:
                return f"LLM call cap reached ({s.max_calls} calls)"
            if s.max_tokens_total is not None and self._budget_tokens >= s.max_tokens_total:
                return f"LLM token cap reached ({self._budget_tokens} >= {s.max_tokens_total} tokens)"
            if s.max_cost is not None and self._budget_cost >= s.max_cost:
                return f"LLM cost cap reached ({self._budget_cost:.4f} >= {s.max_cost})"
            self._budget_calls += 1
        return None

    def _cap(self, reason: str) -> None:
        if self.capped is None:
            self.capped = reason
            self.stats["capped"] = reason
            log.warning("%s; the search goes on without new LLM calls", reason)
            self._event({"event": "llm_cap", "reason": reason})

    # ------------------------------------------------------------------ calling
    def _cache_key(self, job: _Job) -> tuple[str, dict[str, Any]]:
        fields = {
            "model": self.settings.model,
            "messages": job.messages,
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
            # the requested JSON mode, not the one negotiated with the server, so a rerun hits
            # the cache before any negotiation
            "response_format": self.settings.json_mode,
            "seed": job.seed,
        }
        key = hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=True).encode()).hexdigest()
        return key, fields

    def _cache_path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / key[:2] / f"{key}.json"

    def _cache_read(self, key: str) -> dict[str, Any] | None:
        path = self._cache_path(key)
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("content"), (str, type(None))):
            return None
        if len(data["content"] or "") > self.settings.max_answer_chars:
            return None
        return data

    def _cache_write(self, key: str, data: dict[str, Any]) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, indent=1, sort_keys=True)
                os.replace(tmp, path)
                self._cache_grew(path.stat().st_size)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        except OSError as exc:
            log.warning("cannot write the LLM cache file %s: %s", path, exc)

    def _cache_grew(self, size: int) -> None:
        """Count a new cache file; beyond ``cache_max_mb`` drop the oldest answers until the cache
        is back under 80% of its cap."""
        assert self.cache_dir is not None
        cap = self.settings.cache_max_mb * 1e6
        with self._lock:
            if self._cache_bytes is None:
                self._cache_bytes = sum(p.stat().st_size for p in self.cache_dir.glob("*/*.json"))
            else:
                self._cache_bytes += size
            if self._cache_bytes <= cap:
                return
            files = sorted(((p.stat().st_mtime, p.stat().st_size, p) for p in self.cache_dir.glob("*/*.json")),
                           key=lambda item: item[0])
            total = sum(size for _, size, _ in files)
            for _, size, path in files:
                if total <= 0.8 * cap:
                    break
                path.unlink(missing_ok=True)
                total -= size
            self._cache_bytes = total

    def _response_format(self, mode: str, n_laws: int) -> dict[str, Any] | None:
        if mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "laws", "schema": ANSWER_SCHEMA, "strict": False}}
        if mode == "json_object_schema":
            return {"type": "json_object", "schema": ANSWER_SCHEMA}  # llama.cpp extension
        if mode == "json_object":
            return {"type": "json_object"}
        return None

    def _current_mode(self) -> tuple[int, str]:
        with self._lock:
            return self._mode_index, self._modes[self._mode_index]

    def _fall_back(self, index: int, status: int, message: str) -> bool:
        """Move to the next JSON mode after a rejection by the server; False when none is left."""
        with self._lock:
            if self._mode_confirmed or index + 1 >= len(self._modes):
                return False
            if self._mode_index == index:
                old = self._modes[index]
                self._mode_index = index + 1
                log.info("LLM server refused response_format %s (HTTP %s); trying %s", old, status,
                         self._modes[index + 1])
                self._event_unlocked({"event": "llm_json_fallback", "from": old, "to": self._modes[index + 1],
                                      "http_status": str(status), "message": message[:200]})
            return True

    def _call(self, job: _Job) -> _CallResult:
        result = _CallResult(job=job)
        key, _fields = self._cache_key(job)
        cached = self._cache_read(key)
        if cached is not None:
            result.content = cached.get("content")
            result.tokens_prompt = int(cached.get("tokens_prompt", 0))
            result.tokens_completion = int(cached.get("tokens_completion", 0))
            result.cached = True
            result.json_mode = str(cached.get("json_mode", ""))
            return result
        s = self.settings
        attempt = 0
        t_total = 0.0
        while True:
            index, mode = self._current_mode()
            kwargs: dict[str, Any] = {
                "model": s.model,
                "messages": job.messages,
                "temperature": s.temperature,
                "max_tokens": s.max_tokens,
            }
            if s.send_seed:
                kwargs["seed"] = job.seed
            fmt = self._response_format(mode, job.n_laws)
            if fmt is not None:
                kwargs["response_format"] = fmt
            left = self._time_left()
            if left <= 0:
                result.error = "the run's time limit came before the request"
                result.attempts = attempt
                result.latency_s = t_total
                return result
            kwargs["timeout"] = min(s.timeout, left)
            t0 = time.monotonic()
            try:
                response = self._request(kwargs)
            except _HTTPStatus as exc:
                t_total += time.monotonic() - t0
                status = exc.status
                if fmt is not None and status in (400, 422, 500, 501) and self._fall_back(index, status, str(exc)):
                    continue  # the server does not take this response_format: try the next one
                retryable = status in (408, 409, 429) or status >= 500 or status == 0
                if status in (401, 403, 404):
                    result.fatal = True
                if retryable and attempt < s.retries and self._sleep_backoff(attempt, exc.retry_after):
                    attempt += 1
                    with self._lock:
                        self.stats["retries"] += 1
                    continue
                result.error = f"HTTP {status}: {exc}" if status else str(exc)
                result.attempts = attempt + 1
                result.latency_s = t_total
                return result
            except Exception as exc:  # noqa: BLE001 - anything the client raises is a failed call
                t_total += time.monotonic() - t0
                result.error = f"{type(exc).__name__}: {exc}"
                result.attempts = attempt + 1
                result.latency_s = t_total
                return result
            t_total += time.monotonic() - t0
            break
        with self._lock:
            if not self._mode_confirmed and self._modes[self._mode_index] == mode:
                self._mode_confirmed = True
        content, usage = response
        result.json_mode = mode
        result.attempts = attempt + 1
        result.latency_s = t_total
        if len(content or "") > s.max_answer_chars:
            result.error = (f"an answer of {len(content or '')} characters, more than llm.max_answer_chars "
                            f"({s.max_answer_chars})")
            return result
        result.content = content
        prompt_tokens, completion_tokens, estimated = usage
        result.tokens_prompt = prompt_tokens
        result.tokens_completion = completion_tokens
        result.cost = (
            prompt_tokens / 1000 * s.price_per_1k_prompt + completion_tokens / 1000 * s.price_per_1k_completion
        )
        result.meta["tokens_estimated"] = estimated
        self._cache_write(
            key,
            {
                "key": _fields,
                "content": content,
                "tokens_prompt": prompt_tokens,
                "tokens_completion": completion_tokens,
                "json_mode": mode,
                "latency_s": round(t_total, 4),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
        return result

    def _request(self, kwargs: dict[str, Any]) -> tuple[str | None, tuple[int, int, bool]]:
        """One chat request; HTTP problems become :class:`_HTTPStatus` (status 0: no response)."""
        oa = self._openai
        try:
            response = self.client.chat.completions.create(**kwargs)
        except oa.APIStatusError as exc:
            retry_after = None
            try:
                header = exc.response.headers.get("retry-after")
                retry_after = float(header) if header is not None else None
            except (AttributeError, TypeError, ValueError):
                retry_after = None
            message = getattr(exc, "message", None) or str(exc)
            raise _HTTPStatus(int(exc.status_code), str(message)[:300], retry_after) from None
        except oa.APITimeoutError:
            raise _HTTPStatus(0, f"timed out after {kwargs.get('timeout', self.settings.timeout):.3g} s") from None
        except oa.APIConnectionError as exc:
            raise _HTTPStatus(0, f"connection error: {exc}") from None
        choices = getattr(response, "choices", None) or []
        content = None
        if choices:
            message = getattr(choices[0], "message", None)
            content = getattr(message, "content", None)
        usage = getattr(response, "usage", None)
        pt = getattr(usage, "prompt_tokens", None) if usage is not None else None
        ct = getattr(usage, "completion_tokens", None) if usage is not None else None
        if pt is None or ct is None:
            prompt_chars = sum(len(m["content"]) for m in kwargs["messages"])
            return content, (prompt_chars // 4, len(content or "") // 4, True)
        return content, (int(pt), int(ct), False)

    def _time_left(self) -> float:
        """Seconds until the context's deadline (infinite without one)."""
        return math.inf if self._deadline is None else self._deadline - time.time()

    def _sleep_backoff(self, attempt: int, retry_after: float | None) -> bool:
        """Wait before a retry (``Retry-After`` when the server sent one); False, without waiting,
        when the wait would end past the context's deadline (then no retry is made)."""
        delay = self.settings.backoff * (2**attempt)
        if retry_after is not None and retry_after >= 0:
            delay = retry_after
        delay = min(delay, self.settings.backoff_max)
        if delay >= self._time_left():
            return False
        time.sleep(delay)
        return True

    # ------------------------------------------------------------------ results
    def _digest(self, result: _CallResult, context: SearchContext, seen: set[str]) -> list[Proposal]:
        job = result.job
        s = self.stats
        with self._lock:
            s["calls"] += 1
            s["by_kind"][job.kind] = s["by_kind"].get(job.kind, 0) + 1
            if result.cached:
                s["cached_calls"] += 1
            elif result.error is None:
                s["api_calls"] += 1
                s["tokens_prompt"] += result.tokens_prompt
                s["tokens_completion"] += result.tokens_completion
                s["tokens"] += result.tokens_prompt + result.tokens_completion
                s["cost"] += result.cost
                s["latency_s"] += result.latency_s
            # the budget counts replays as if they were paid for (exact replay of caps)
            self._budget_tokens += result.tokens_prompt + result.tokens_completion
            self._budget_cost += result.cost if not result.cached else (
                result.tokens_prompt / 1000 * self.settings.price_per_1k_prompt
                + result.tokens_completion / 1000 * self.settings.price_per_1k_completion
            )
            if result.json_mode and not result.cached:
                s["json_mode"] = result.json_mode
        call_event: dict[str, Any] = {
            "event": "llm_call",
            "call_id": job.call_id,
            "generation": job.generation,
            "kind": job.kind,
            "model": self.settings.model,
            "parents": list(job.parents),
            "seed": job.seed,
            "cached": result.cached,
            "attempts": result.attempts,
            "latency_s": round(result.latency_s, 4),
            "tokens_prompt": result.tokens_prompt if not result.cached else 0,
            "tokens_completion": result.tokens_completion if not result.cached else 0,
            "cost": round(result.cost, 8) if not result.cached else 0.0,
            "json_mode": result.json_mode,
        }
        if result.error is not None:
            call_event["error"] = result.error
            self._event(call_event)
            self._error(job.call_id, result.error, fatal=result.fatal)
            return []
        with self._lock:
            self._consecutive_failures = 0
        items, how = parse_answer(result.content)
        with self._lock:
            s["parse_modes"][how] = s["parse_modes"].get(how, 0) + 1
        meta = {
            "tokens_prompt": call_event["tokens_prompt"],
            "tokens_completion": call_event["tokens_completion"],
            "cost": call_event["cost"],
            "latency_s": call_event["latency_s"],
            "cached": result.cached,
            "call_id": job.call_id,
            "kind": job.kind,
            "model": self.settings.model,
        }
        proposals: list[Proposal] = []
        n_rejected = 0
        if not items:
            reason = "no formula found in the answer" + ("" if (result.content or "").strip() else " (empty answer)")
            self._reject(job, _snippet(result.content), reason)
            n_rejected += 1
        for formula, rationale in items:
            verdict = self._validate(formula, context)
            if isinstance(verdict, str):
                self._reject(job, formula if isinstance(formula, str) else repr(formula), verdict)
                n_rejected += 1
                continue
            text, canonical = verdict
            if canonical in seen:
                with self._lock:
                    s["proposals_duplicate"] += 1
                continue
            seen.add(canonical)
            proposals.append(
                Proposal(
                    formula=text,
                    source=self.name,
                    parents=job.parents,
                    note=" ".join(str(rationale).split())[:300],
                    meta=dict(meta),
                )
            )
        with self._lock:
            s["proposals_valid"] += len(proposals)
        call_event.update(parse=how, n_formulas=len(items), n_valid=len(proposals), n_rejected=n_rejected)
        self._event(call_event)
        return proposals

    def _validate(self, formula: Any, context: SearchContext) -> tuple[str, str] | str:
        """(clean text, canonical key) for a valid formula, else the reason it was rejected."""
        if not isinstance(formula, str):
            return f"formula is not text but {type(formula).__name__}"
        if re.fullmatch(r"[\s.…<>_-]*|<[^<>]*>", formula.strip()):
            return f"{formula.strip()!r} is a placeholder, not a formula" if formula.strip() else "empty formula"
        text = _clean_formula(formula)
        if not text:
            return "empty formula"
        try:
            law = Law.parse(text, context.inputs, context.targets, pairs=context.pairs)
        except FormulaError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - the parser must never take the search down
            return f"parser error: {type(exc).__name__}: {exc}"
        if not law.variables:
            return f"uses none of the inputs ({', '.join(context.inputs)})"
        if context.max_parameters is not None and law.n_parameters > context.max_parameters:
            return f"has {law.n_parameters} fitted parameters, more than the {context.max_parameters} allowed"
        return text, law.canonical

    def _reject(self, job: _Job, formula: str, reason: str) -> None:
        formula = " ".join(str(formula).split())[:300]
        with self._lock:
            self.stats["proposals_rejected"] += 1
            self._rejections.append((formula, reason))
            if len(self.stats["rejections"]) < 10_000:
                self.stats["rejections"].append({"call_id": job.call_id, "formula": formula, "reason": reason})
        self._event({"event": "llm_rejected", "call_id": job.call_id, "generation": job.generation,
                     "formula": formula, "reason": reason})

    def _error(self, call_id: str | None, message: str, fatal: bool = False) -> None:
        with self._lock:
            self.stats["errors"] += 1
            self.stats["failed_calls"] += int(call_id is not None)
            if len(self.stats["error_messages"]) < 100:
                self.stats["error_messages"].append({"call_id": call_id, "error": message})
            self._consecutive_failures += 1
            failures = self._consecutive_failures
        log.warning("LLM call %s failed: %s; the search goes on with its other proposers", call_id or "", message)
        self._event({"event": "llm_error", "call_id": call_id, "error": message})
        if fatal or failures >= self.settings.max_consecutive_failures:
            why = message if fatal else f"{failures} failed calls in a row (last: {message})"
            self.disabled = f"LLM proposer disabled: {why}"
            self.stats["disabled"] = self.disabled
            log.warning("%s; the search goes on with its other proposers", self.disabled)
            self._event({"event": "llm_disabled", "reason": self.disabled})

    def _event(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._event_unlocked(event)

    def _event_unlocked(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self.run_log is not None:
            try:
                self.run_log(dict(event))
            except Exception as exc:  # noqa: BLE001 - logging must not stop the search
                log.warning("run log callback failed: %s", exc)


def _snippet(text: str | None, limit: int = 120) -> str:
    if not text:
        return ""
    t = " ".join(text.split())
    return t if len(t) <= limit else t[: limit - 3] + "..."
