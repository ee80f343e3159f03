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
a single API call."""

from __future__ import annotations

import importlib
import json
import logging
import math
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


from ... import environment
from ...errors import EngineUnavailable, FormulaError, LawsearchError
from ...formula import Law
from ..base import Proposal, SearchContext
from .answers import clean_formula, parse_answer, snippet
from .client import CallResult, ClientMixin, Job
from .prompts import PromptMixin, load_template
from .settings import TEMPLATE_SLOTS, LLMSettings

log = logging.getLogger("lawsearch.llm")


class LLMProposer(PromptMixin, ClientMixin):
    """Formulas from an OpenAI-compatible chat model.  See the module docstring.

    ``settings``: an :class:`LLMSettings` (or a mapping of its fields);
    ``run_log``: called with every event dict as it happens (calls, rejections,
    errors, caps) — the search writes them to ``history.jsonl``; ``environ``:
    where to read the API key and the cache home (default ``os.environ``); ``client``: an
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
        self.settings = settings
        self.run_log = run_log
        self.client = self._connect(settings, environ, client)
        self.templates = {kind: load_template(kind, settings.prompts_dir) for kind in TEMPLATE_SLOTS}
        self._system_in_user = settings.system_role == "user" or (
            settings.system_role == "auto" and "gemma" in settings.model.lower()
        )
        if settings.cache:
            root = settings.cache_dir or environment.cache_home(environ) / "lawsearch" / "llm"
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
        self.stats: dict[str, Any] = _new_stats()

    def _connect(self, settings: LLMSettings, environ: Mapping[str, str] | None, client: Any) -> Any:
        """The OpenAI client (``client`` when given); :class:`EngineUnavailable` when there is no
        openai package, no model, or neither an API key nor a base URL."""
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
        api_key = environment.api_key(settings.api_key_env, environ)
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
            except (self._openai.OpenAIError, ValueError, TypeError) as exc:
                raise EngineUnavailable(f"cannot create the OpenAI client: {exc}") from None
        return client

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
        except (LawsearchError, KeyError, ValueError) as exc:  # a bad template or summary, recorded as data
            self._error(None, f"cannot build the prompt: {type(exc).__name__}: {exc}")
            return []
        allowed: list[Job] = []
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
            except (OSError, RuntimeError) as exc:  # the run's result stands
                log.warning("closing the LLM client failed: %s", exc)

    # ------------------------------------------------------------------ results
    def _digest(self, result: CallResult, context: SearchContext, seen: set[str]) -> list[Proposal]:
        """The valid, new proposals of one call's answer; the call's statistics and event recorded."""
        job = result.job
        self._count_call(result)
        call_event = self._call_event(result)
        if result.error is not None:
            call_event["error"] = result.error
            self._event(call_event)
            self._error(job.call_id, result.error, fatal=result.fatal)
            return []
        with self._lock:
            self._consecutive_failures = 0
        items, how = parse_answer(result.content)
        with self._lock:
            self.stats["parse_modes"][how] = self.stats["parse_modes"].get(how, 0) + 1
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
        n_rejected = 0
        if not items:
            reason = "no formula found in the answer" + ("" if (result.content or "").strip() else " (empty answer)")
            self._reject(job, snippet(result.content), reason)
            n_rejected += 1
        proposals, n_invalid = self._proposals(items, job, context, seen, meta)
        call_event.update(parse=how, n_formulas=len(items), n_valid=len(proposals), n_rejected=n_rejected + n_invalid)
        self._event(call_event)
        return proposals

    def _count_call(self, result: CallResult) -> None:
        """Add one call to the statistics and the budget (which counts replays as if paid for)."""
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

    def _call_event(self, result: CallResult) -> dict[str, Any]:
        """The ``llm_call`` event of one call, for ``history.jsonl`` (a replay costs nothing)."""
        job = result.job
        return {
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

    def _proposals(self, items: list[tuple[Any, str]], job: Job, context: SearchContext, seen: set[str],
                   meta: dict[str, Any]) -> tuple[list[Proposal], int]:
        """The valid formulas of an answer not ``seen`` before, as proposals; and how many were rejected."""
        s = self.stats
        proposals: list[Proposal] = []
        n_rejected = 0
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
        return proposals, n_rejected

    def _validate(self, formula: Any, context: SearchContext) -> tuple[str, str] | str:
        """(clean text, canonical key) for a valid formula, else the reason it was rejected."""
        if not isinstance(formula, str):
            return f"formula is not text but {type(formula).__name__}"
        if re.fullmatch(r"[\s.…<>_-]*|<[^<>]*>", formula.strip()):
            return f"{formula.strip()!r} is a placeholder, not a formula" if formula.strip() else "empty formula"
        text = clean_formula(formula)
        if not text:
            return "empty formula"
        try:
            law = Law.parse(text, context.inputs, context.targets, pairs=context.pairs)
        except FormulaError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - a candidate's own failure, recorded as data (a rejection)
            return f"parser error: {type(exc).__name__}: {exc}"
        if not law.variables:
            return f"uses none of the inputs ({', '.join(context.inputs)})"
        if context.max_parameters is not None and law.n_parameters > context.max_parameters:
            return f"has {law.n_parameters} fitted parameters, more than the {context.max_parameters} allowed"
        return text, law.canonical

    def _reject(self, job: Job, formula: str, reason: str) -> None:
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
            self.run_log(dict(event))


def _new_stats() -> dict[str, Any]:
    """The proposer's counters, all at zero (law.json's ``engine`` summary is built from them)."""
    return {
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
