"""Run settings: the engine blocks are checked when the settings are resolved, and one precedence rule
(CLI > environment > run config > defaults) holds for the LLM block as for the search settings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO
from lawsearch.errors import TaskError
from lawsearch.proposers.llm import LLMSettings
from lawsearch.search.settings import SearchSettings, resolve_settings
from test_faults import TINY_CONFIG, TINY_TASK, cli  # noqa: F401 - the in-process CLI fixture


def test_engine_blocks_are_checked_when_settings_are_resolved(tmp_path):
    config = tmp_path / "run.yaml"
    cases = {
        "proposers: [library]\nllm: {model: m, temprature: 0.5}\n": "llm.temprature: unknown setting",
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


def test_one_precedence_rule_for_search_settings_and_engine_blocks(tmp_path):
    """CLI > environment > run config > defaults, level by level, for a search setting (seed) and for the
    LLM block (model); an engine block's other keys merge through the levels."""
    config = tmp_path / "run.yaml"
    config.write_text("seed: 1\nllm: {model: from-config, temperature: 0.2}\noperon: {max_length: 15}\n")
    env = {"LAWSEARCH_SEED": "2", "LAWSEARCH_LLM_MODEL": "from-env"}
    cli = {"seed": 3, "llm": {"model": "from-cli", "base_url": None}}
    levels = [
        (resolve_settings({}, None, {}), 0, None),  # defaults
        (resolve_settings({}, config, {}), 1, "from-config"),  # run config > defaults
        (resolve_settings({}, config, env), 2, "from-env"),  # environment > run config
        (resolve_settings(cli, config, env), 3, "from-cli"),  # CLI > environment
    ]
    for settings, seed, model in levels:
        assert (settings.seed, settings.llm.model) == (seed, model)
    settings = levels[-1][0]
    assert settings.llm.temperature == 0.2 and settings.operon.max_length == 15  # the config's other keys stay
    assert settings.llm.base_url is None  # a None CLI value is unset
    assert resolve_settings({"llm": {"llm-base-url": "http://cli/v1"}}, None,
                            {"OPENAI_BASE_URL": "http://env/v1"}).llm.base_url == "http://cli/v1"


def test_engine_blocks_are_recorded_as_given():
    settings = resolve_settings({"llm": {"concurrency": "3"}}, None, {"LAWSEARCH_LLM_MODEL": "m"})
    assert settings.llm.concurrent_calls == 3
    assert settings.model_dump(mode="json")["llm"] == {"model": "m", "concurrent_calls": 3}
    assert settings.model_dump(mode="json")["operon"] == {}
    assert resolve_settings({}, None, {"LAWSEARCH_LLM_MODEL": "m"}).llm.every is None
    assert resolve_settings({"operon": {"every": "3"}}, None, {}).operon.every == 3  # the engine's cadence
    with pytest.raises(TaskError, match="operon.every"):
        resolve_settings({"operon": {"every": 0}}, None, {})


def test_law_json_records_the_llm_options_of_the_command_line_apart(tmp_path, cli, monkeypatch):
    """``llm_cli`` is the provenance of the --llm-* options (``{}`` without them); ``llm`` holds the
    merged values, so an environment value below the CLI's shows in ``llm`` but not in ``llm_cli``."""
    monkeypatch.setenv("LAWSEARCH_LLM_MODEL", "from-env")
    (tmp_path / "tiny.yaml").write_text(TINY_TASK)
    (tmp_path / "fast.yaml").write_text(TINY_CONFIG)
    recorded = {}
    for name, options in {"with": ["--llm-model", "X"], "without": []}.items():
        done = cli("discover", str(tmp_path / "tiny.yaml"), "--config", str(tmp_path / "fast.yaml"), "--seed", "0",
                   "--generations", "1", "--proposers", "library", "--quiet", "--no-report",
                   "--out", str(tmp_path / name), *options)
        assert done.returncode == 0, done.stderr
        recorded[name] = json.loads((tmp_path / name / "law.json").read_text())["settings"]
    assert recorded["with"]["llm_cli"] == {"model": "X"} and recorded["with"]["llm"] == {"model": "X"}
    assert recorded["without"]["llm_cli"] == {} and recorded["without"]["llm"] == {"model": "from-env"}


def test_llm_cli_is_recorded_not_set():
    with pytest.raises(TaskError, match="'llm_cli' is recorded from the --llm-\\* options, not set"):
        resolve_settings({"llm_cli": {"model": "X"}}, None, {})
    with pytest.raises(ValueError, match="llm_cli.model = 'X' is not llm.model = None"):
        SearchSettings(llm_cli={"model": "X"})
    assert SearchSettings(llm={"model": "X"}, llm_cli={"model": "X"}).llm_cli == {"model": "X"}


def test_reading_the_settings_does_not_load_sympy():
    """``lawsearch.search.settings`` (every CLI command reads it) imports the engines' settings blocks but
    not their machinery: the LLM and SR packages load their names lazily."""
    done = subprocess.run([sys.executable, "-c", "import sys, lawsearch.search.settings as s; s.resolve_settings({}); "
                           "print(sorted(m for m in ('sympy', 'lawsearch.formula', 'lawsearch.summary') "
                           "if m in sys.modules))"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
