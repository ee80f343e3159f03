"""Run settings: the engine blocks are checked when the settings are resolved, and one precedence rule
(CLI > environment > run config > defaults) holds for the LLM block as for the search settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO
from lawsearch.errors import TaskError
from lawsearch.proposers.llm import LLMSettings
from lawsearch.search.settings import resolve_settings


def test_engine_blocks_are_checked_when_settings_are_resolved(tmp_path):
    config = tmp_path / "run.yaml"
    cases = {
        "proposers: [library]\nllm: {model: m, temprature: 0.5}\n": "llm: unknown setting 'temprature'",
        "operon: {max_lenght: 10}\n": "operon.max_lenght: unknown setting",
        "pysr: {niteration: 3}\n": "pysr.niteration: unknown setting",
        "llm: {temperature: hot}\n": "llm.temperature",
    }
    for text, message in cases.items():
        config.write_text(text)
        with pytest.raises(TaskError, match=message):
            resolve_settings({}, config, environ={})


def test_a_bad_llm_key_exits_2_and_leaves_no_run_folder(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("llm: {model: m, temprature: 0.5}\n")
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "lawsearch.cli", "discover", str(REPO / "tasks" / "demo.yaml"),
                           "--config", str(config), "--proposers", "library", "--generations", "1",
                           "--max-evals", "1", "--bootstrap", "0", "--no-report", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "temprature" in done.stderr
    assert not out.exists()


def test_llm_settings_precedence_cli_over_env_over_config():
    block, env, cli = {"model": "from-config"}, {"LAWSEARCH_LLM_MODEL": "from-env"}, {"model": "from-cli"}
    assert LLMSettings.resolve(block, cli, env).model == "from-cli"
    assert LLMSettings.resolve(block, {"model": None}, env).model == "from-env"
    assert LLMSettings.resolve(block, {}, {}).model == "from-config"
    assert LLMSettings.resolve({}, {}, {}).model is None
