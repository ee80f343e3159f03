"""Every example of the README runs: the shell commands and the Python blocks."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import REPO

README = (REPO / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _commands() -> list[str]:
    """`lawsearch ...` command lines of the bash blocks (after a `pip install ... &&` prefix)."""
    commands = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.split("&&")[-1].strip()
            if line.startswith("lawsearch "):
                commands.append(line)
    return commands


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    (folder / "tasks").symlink_to(REPO / "tasks")
    return folder


def _env() -> dict[str, str]:
    # the first command has no --time-limit: cap it here (the environment is below the CLI in precedence)
    return {**os.environ, "LAWSEARCH_TIME_LIMIT": "10", "COLUMNS": "120"}


def test_readme_shows_the_two_commands_first():
    bash = _blocks("bash")
    assert bash[0].strip() == "pip install -e . && lawsearch discover tasks/demo.yaml"
    assert bash[1].strip() == "pip install -e '.[test]' && pytest"


def _folders(command: str) -> set[str]:
    """The run folders (``runs/...``) a README command reads or writes."""
    return {arg for arg in shlex.split(command) if arg.startswith("runs/")}


def test_readme_commands_run(workdir):
    """Every command exits 0.  A command waits for the earlier ones that name one of its run folders
    (``--resume``, ``export``, ``compare``, ``report``); the others run side by side, since each run's
    time limit, not the CPU, sets its length."""
    commands = _commands()
    assert len(commands) >= 12
    lawsearch = [sys.executable, "-m", "lawsearch.cli"]

    def run(command: str, before: list[Future]) -> subprocess.CompletedProcess:
        for earlier in before:
            assert earlier.result().returncode == 0  # its own failure is reported below
        return subprocess.run(lawsearch + shlex.split(command)[1:], cwd=workdir, env=_env(), capture_output=True,
                              text=True, timeout=600)

    with ThreadPoolExecutor(max_workers=4) as pool:
        done: list[tuple[str, Future]] = []
        for command in commands:
            before = [future for earlier, future in done if _folders(earlier) & _folders(command)]
            done.append((command, pool.submit(run, command, before)))
    for command, future in done:
        result = future.result()
        assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert (workdir / "runs" / "demo" / "report.html").exists()
    assert (workdir / "runs" / "bench" / "bench.md").exists()
    assert list((workdir / "results" / "demo").glob("*/law.json"))
    assert list((workdir / "results" / "demo").glob("*/report.html"))  # the first command writes the report


@pytest.mark.slow
@pytest.mark.timeout(3600)  # installing every dependency takes minutes
def test_fresh_venv_runs_the_first_command_and_the_report(tmp_path):
    """The README's first command in a new virtual environment (a plain install, no extras), then
    `lawsearch report` on its run: the report needs nothing more than the plain install."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-e", str(REPO)], capture_output=True,
                             text=True, timeout=1800)
    if install.returncode != 0 and ("Could not find" in install.stderr or "connection" in install.stderr.lower()):
        pytest.skip(f"pip could not reach a package index: {install.stderr.strip().splitlines()[-1]}")
    assert install.returncode == 0, install.stderr[-3000:]
    (tmp_path / "tasks").symlink_to(REPO / "tasks")
    env = {k: v for k, v in _env().items() if k != "PYTHONPATH"}  # the venv's install, not a checkout's path
    lawsearch = str(venv / "bin" / "lawsearch")
    first = shlex.split(_blocks("bash")[0].split("&&")[-1])[1:]
    done = subprocess.run([lawsearch, *first], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    [run] = (tmp_path / "results" / "demo").iterdir()
    assert (run / "report.html").exists()
    report = subprocess.run([lawsearch, "report", str(run)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "report.html" in report.stdout


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_readme_python_blocks_run(workdir, index):
    code = _blocks("python")[index]
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_readme_task_spec_is_a_valid_spec():
    import yaml

    from lawsearch.task import TaskSpec

    block = next(b for b in _blocks("yaml") if b.startswith("name: chinchilla"))
    spec = TaskSpec.model_validate(yaml.safe_load(block))
    assert spec.monotone == {"params": "decreasing", "tokens": "decreasing"}
    assert spec.split.rule == (["params", "tokens"], "product")
    commented = [line.split("# ", 1)[1] for line in block.splitlines() if line.startswith("# split:")]
    extrapolate = TaskSpec.model_validate({**yaml.safe_load(block), **yaml.safe_load(commented[0])})
    assert extrapolate.split.extrapolate.test_fraction == 0.2
