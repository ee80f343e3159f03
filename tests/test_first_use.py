"""What a researcher meets on first use: the report written by discover, readable laws, honest engine
notices, the quick path from a table, notebook displays and progress bars for the long steps."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lawsearch import Law, SearchSettings
from lawsearch.quick import discover, table_task
from lawsearch.search.engine import Discovery
from lawsearch.task import load_task

from conftest import REPO, synthetic_task

# small runs: one generation of a few library forms, two finalists refined
FAST = dict(initial_library=12, islands=2, population_size=8, search_starts=8, search_local=2, refine_top=2,
            workers=1)
PYSR_INSTALLED = importlib.util.find_spec("pysr") is not None


def lawsearch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lawsearch.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={**os.environ, "COLUMNS": "200"})


def _log_linear_table(n: int = 60, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = 10 ** rng.uniform(1, 5, n)
    return pd.DataFrame({"x": x, "y": 3 - 0.4 * np.log(x) + 0.002 * rng.normal(size=n)})


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("first_use")
    _log_linear_table().to_csv(folder / "runs.csv", index=False)
    (folder / "fast.yaml").write_text(yaml.safe_dump(FAST))
    return folder


@pytest.fixture(scope="module")
def csv_run(folder) -> tuple[Path, subprocess.CompletedProcess]:
    """`lawsearch discover runs.csv --inputs x --target y` (with progress, report and bootstrap)."""
    run = folder / "run"
    done = lawsearch("discover", "runs.csv", "--inputs", "x", "--target", "y", "--test-largest", "0.25",
                     "--proposers", "library", "--generations", "1", "--bootstrap", "8", "--config", "fast.yaml",
                     "--out", str(run), cwd=folder)
    assert done.returncode == 0, done.stderr
    return run, done


# ---------------------------------------------------------------------- the report, written by discover
def test_discover_writes_the_report_with_figures(csv_run):
    run, done = csv_run
    assert (run / "report.html").stat().st_size > 10_000
    assert (run / "plots" / "group_curves.png").exists()
    assert "report.html" in done.stdout


def test_matplotlib_is_a_core_dependency():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("matplotlib") for d in project["dependencies"])
    assert "report" not in project["optional-dependencies"]


# ---------------------------------------------------------------------- the CSV quick path
def test_csv_quick_path_writes_the_equivalent_task_yaml(folder, csv_run):
    run, done = csv_run
    spec = yaml.safe_load((run / "task.yaml").read_text())
    assert spec["inputs"] == ["x"] and spec["target"] == "y"
    assert spec["split"] == {"extrapolate": {"by": ["x"], "test_fraction": 0.25}}
    memory, _ = table_task(folder / "runs.csv", "x", "y", test_largest=0.25)
    repeated = load_task(run / "task.yaml")
    np.testing.assert_array_equal(repeated.test.X, memory.test.X)
    np.testing.assert_array_equal(repeated.train.Y, memory.train.Y)
    assert len(memory.test) == 15  # the largest quarter of 60 rows
    law_json = json.loads((run / "law.json").read_text())
    assert law_json["task"] == "runs" and law_json["task_path"] == str((run / "task.yaml").resolve())
    report = lawsearch("report", str(run), cwd=folder)  # the run folder is enough to report on it again
    assert report.returncode == 0, report.stderr


@pytest.mark.parametrize("args, message", [
    (["runs.csv", "--target", "y"], "a data table needs --inputs"),
    (["runs.csv", "--inputs", "x", "--target", "y", "--test-largest", "1.5"], "--test-largest must be a share"),
    (["runs.csv", "--inputs", "x,z", "--target", "y"], "'z'"),
    (["missing.csv", "--inputs", "x", "--target", "y"], "missing.csv"),
    ([str(REPO / "tasks" / "demo.yaml"), "--inputs", "params"], "are for a data table"),
])
def test_quick_path_bad_input_is_one_line_and_exit_2(folder, args, message):
    done = lawsearch("discover", *args, "--out", str(folder / "bad"), cwd=folder)
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.count("\n") == 1
    assert not (folder / "bad").exists()


# ---------------------------------------------------------------------- readable laws
def test_the_discovered_law_has_role_names_in_conventional_orientation(csv_run):
    run, done = csv_run
    law = json.loads((run / "law.json").read_text())["law"]
    assert law["formula"] == "E - A*log(x)"
    assert law["fitted"]["all"]["A"] == pytest.approx(0.4, rel=0.02)  # positive: the sign is in the formula
    assert "law: E - A*log(x)" in done.stdout


# ---------------------------------------------------------------------- progress of the long steps
def test_refining_and_bootstrap_show_progress_with_counts(csv_run):
    _, done = csv_run
    lines = done.stderr.splitlines()
    assert any(line.startswith("refining finalists") and "/" in line for line in lines), done.stderr
    assert any(line.startswith("bootstrap") and "8/8" in line for line in lines), done.stderr


# ---------------------------------------------------------------------- proposers asked for by name
@pytest.mark.skipif(PYSR_INSTALLED, reason="PySR is installed here: the missing-engine path cannot be shown")
def test_a_named_proposer_that_cannot_run_alone_is_an_error(folder):
    done = lawsearch("discover", "runs.csv", "--inputs", "x", "--target", "y", "--proposers", "pysr", "--quiet",
                     "--out", str(folder / "pysr_only"), cwd=folder)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "pip install 'lawsearch[pysr]'" in done.stderr
    assert not (folder / "pysr_only").exists()


@pytest.mark.skipif(PYSR_INSTALLED, reason="PySR is installed here: the missing-engine path cannot be shown")
def test_a_named_proposer_that_cannot_run_beside_others_warns_even_when_quiet(folder):
    run = folder / "pysr_and_library"
    done = lawsearch("discover", "runs.csv", "--inputs", "x", "--target", "y", "--proposers", "library,pysr",
                     "--quiet", "--no-report", "--generations", "1", "--bootstrap", "0", "--config", "fast.yaml",
                     "--out", str(run), cwd=folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(run)  # --quiet: the run folder only, no progress
    [warning] = done.stderr.splitlines()
    assert warning.startswith("warning: requested proposer cannot run — pysr") and "going on with library" in warning
    assert not (run / "report.html").exists()  # --no-report


@pytest.mark.skipif(PYSR_INSTALLED, reason="PySR is installed here: the missing-engine path cannot be shown")
def test_with_the_default_proposers_the_pysr_notice_is_one_short_line(tmp_path):
    shown: list[str] = []
    search = Discovery(synthetic_task(), SearchSettings(**FAST), tmp_path / "run", log=shown.append)
    search.close()
    [notice] = [line for line in shown if line.startswith("pysr")]
    assert notice == "pysr skipped: PySR is not installed (pip install 'lawsearch[pysr]' + Julia, see README)"
    assert "PYTHON_JULIAPKG_EXE" in (tmp_path / "run" / "run.log").read_text()  # the details stay in run.log


# ---------------------------------------------------------------------- non-identifiable laws
def test_a_non_identifiable_law_counts_only_its_identifiable_parameters(folder):
    task = {
        "name": "redundant", "inputs": ["log_flops"], "target": "y",
        "data": {"synthetic": {"law": "f + exp(-1 - exp(-(K + k*log_flops)))",
                               "parameters": {"f": 0.5, "K": 0.3, "k": 0.8}, "inputs": {"log_flops": [0.5, 5]},
                               "rows": 60, "noise": 0.002, "seed": 0}},
        "split": {"extrapolate": {"by": ["log_flops"], "test_fraction": 0.2}},
        "human_laws": [{"name": "with w", "formula": "f + exp(-1 - exp(-w*(K + k*log_flops)))"}],
    }
    (folder / "redundant.yaml").write_text(yaml.safe_dump(task))
    run = folder / "redundant_run"
    done = lawsearch("discover", "redundant.yaml", "--max-parameters", "3", "--proposers", "library",
                     "--generations", "1", "--bootstrap", "0", "--no-report", "--quiet", "--config", "fast.yaml",
                     "--out", str(run), cwd=folder)
    assert done.returncode == 0, done.stderr
    archive = json.loads((run / "checkpoint.json").read_text())["archive"]
    [seeded] = [c for c in archive if "K - k*log_flops" in c["formula"]]
    assert seeded["formula"] == "f + exp(-1 - exp(-K - k*log_flops))" and seeded["n_parameters"] == 3
    assert seeded["val_error"] is not None  # scored
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    [record] = [h for h in history if h.get("note", "").startswith("human law")]
    assert record["status"] == "ok" and "w = 1" in record["identifiability"]


# ---------------------------------------------------------------------- Python API and notebooks
def test_python_quick_path_and_notebook_displays(tmp_path):
    frame = _log_linear_table()
    result = discover(frame, inputs=["x"], target="y", out=tmp_path / "run", proposers=("library",),
                      generations=1, bootstrap=0, **FAST)
    assert result.formula.startswith("E - A*")  # a falling law, its scale positive
    assert result.law_json["law"]["fitted"]["all"]["A"] > 0
    assert (tmp_path / "run" / "task.yaml").exists()
    np.testing.assert_allclose(pd.read_csv(tmp_path / "run" / "data.csv").to_numpy(), frame.to_numpy())
    table = result._repr_html_()
    assert table.startswith("<table") and f"<code>{result.formula}</code>" in table and "test R²" in table
    figure = result.plot()
    assert len(figure.axes) >= 1 and figure.axes[0].get_title() == "all"
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["discovered law"]
    law = Law.parse("E - A*log(x)", ["x"])
    assert law._repr_latex_() == f"$\\displaystyle {law.to_latex()}$" and "\\log{\\left(x \\right)}" in law.to_latex()
