"""Calling the chat server: the per-run budget, the disk cache of answers, JSON-mode negotiation, retries with backoff."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from .settings import ANSWER_SCHEMA


log = logging.getLogger("lawsearch.llm")


# ============================================================================ the proposer
@dataclass
class Job:
    call_id: str
    kind: str
    messages: list[dict[str, str]]
    n_laws: int
    seed: int
    parents: tuple[str, ...]
    generation: int


@dataclass
class CallResult:
    job: Job
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


class HTTPStatusError(Exception):
    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ClientMixin:
    """The budget, cache and transport of :class:`LLMProposer` (it holds their state)."""

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
    def _cache_key(self, job: Job) -> tuple[str, dict[str, Any]]:
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

    def _call(self, job: Job) -> CallResult:
        result = CallResult(job=job)
        key, _fields = self._cache_key(job)
        cached = self._cache_read(key)
        if cached is not None:
            return _replayed(result, cached)
        s = self.settings
        attempt = 0
        t_total = 0.0
        while True:
            index, mode = self._current_mode()
            kwargs = self._request_arguments(job, mode)
            fmt = kwargs.get("response_format")
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
            except HTTPStatusError as exc:
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
            except (self._openai.OpenAIError, OSError, ValueError) as exc:  # a failed call, recorded as data
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
        result.json_mode = mode
        result.attempts = attempt + 1
        result.latency_s = t_total
        return self._answered(result, response, key, _fields)

    def _request_arguments(self, job: Job, mode: str) -> dict[str, Any]:
        """The chat request's arguments for ``job`` in JSON mode ``mode`` (the timeout is added per attempt)."""
        s = self.settings
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
        return kwargs

    def _answered(self, result: CallResult, response: tuple[str | None, tuple[int, int, bool]], key: str,
                  fields: dict[str, Any]) -> CallResult:
        """``result`` completed with a server's answer (tokens, cost), which is cached unless too long."""
        s = self.settings
        content, usage = response
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
                "key": fields,
                "content": content,
                "tokens_prompt": prompt_tokens,
                "tokens_completion": completion_tokens,
                "json_mode": result.json_mode,
                "latency_s": round(result.latency_s, 4),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
        return result

    def _request(self, kwargs: dict[str, Any]) -> tuple[str | None, tuple[int, int, bool]]:
        """One chat request; HTTP problems become :class:`HTTPStatusError` (status 0: no response)."""
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
            raise HTTPStatusError(int(exc.status_code), str(message)[:300], retry_after) from None
        except oa.APITimeoutError:
            raise HTTPStatusError(0, f"timed out after {kwargs.get('timeout', self.settings.timeout):.3g} s") from None
        except oa.APIConnectionError as exc:
            raise HTTPStatusError(0, f"connection error: {exc}") from None
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


def _replayed(result: CallResult, cached: dict[str, Any]) -> CallResult:
    """``result`` filled from a cached answer."""
    result.content = cached.get("content")
    result.tokens_prompt = int(cached.get("tokens_prompt", 0))
    result.tokens_completion = int(cached.get("tokens_completion", 0))
    result.cached = True
    result.json_mode = str(cached.get("json_mode", ""))
    return result
