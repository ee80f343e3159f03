"""The command line: outputs of evaluate/export/tasks, and one clear line + exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

DEMO = str(REPO / "tasks" / "demo.yaml")
CHINCHILLA = "E + A/params**alpha + B/tokens**beta"


def lawsearch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lawsearch.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={**__import__("os").environ, "COLUMNS": "200"})


def test_evaluate_prints_metrics_beside_the_human_laws():
    done = lawsearch("evaluate", DEMO, "--law", "E + A/(params*tokens)**alpha")
    assert done.returncode == 0, done.stderr
    assert "your law" in done.stdout and "Hoffmann et al. 2022" in done.stdout
    assert "fitted parameters" in done.stdout and "hoffmann" in done.stdout


def test_evaluate_json_has_the_law_object():
    done = lawsearch("evaluate", DEMO, "--law", CHINCHILLA, "--json", "--seed", "3")
    data = json.loads(done.stdout)
    assert data["task"] == "demo"
    law = data["law"]
    assert {"formula", "latex", "parameters", "complexity", "fitted", "metrics"} <= set(law)
    assert law["parameters"] == ["E", "A", "alpha", "B", "beta"]
    assert set(law["fitted"]) == {"hoffmann", "high_E", "low_E"}
    assert law["metrics"]["test"]["r2"] > 0.99
    assert set(law["metrics"]["test"]) == {"r2", "nmse", "nmae"}
    assert data["human_laws"][0]["name"] == "Hoffmann et al. 2022"
    assert data["human_laws"][0]["metrics"]["test"]["r2"] == pytest.approx(law["metrics"]["test"]["r2"])


def test_evaluate_scores_every_law_on_the_folds_of_train():
    done = lawsearch("evaluate", DEMO, "--law", "E + A/params**alpha", "--folds", "2", "--json")
    data = json.loads(done.stdout)
    yours, human = data["law"]["folds"], data["human_laws"][0]["folds"]
    assert len(yours) == len(human) == 2
    assert yours[0]["fit_rows"] > yours[1]["fit_rows"] and yours[0]["held_out_rows"] > 0
    assert all(fold["r2"] > 0.99 for fold in human)  # the generating law extrapolates within train too
    assert all(fold["r2"] < 0 for fold in yours)  # a law without the tokens term does not
    table = lawsearch("evaluate", DEMO, "--law", "E + A/params**alpha", "--folds", "2")
    assert "nested extrapolation folds of train" in table.stdout and "fold 2 (" in table.stdout
    done = lawsearch("evaluate", DEMO, "--law", "E + A/params**alpha", "--folds", "-1")
    assert done.returncode == 2 and "--folds -1" in done.stderr


@pytest.mark.parametrize("fmt, marker", [("python", "def law(params, tokens"), ("latex", "\\alpha"),
                                         ("sympy", "sympy.Symbol('alpha'")])
def test_export_formats(fmt, marker):
    done = lawsearch("export", "--law", CHINCHILLA, "--inputs", "params,tokens", "--format", fmt)
    assert done.returncode == 0, done.stderr
    assert marker in done.stdout


def test_export_with_a_task_embeds_fitted_parameters(tmp_path):
    out = tmp_path / "law.py"
    done = lawsearch("export", "--law", CHINCHILLA, "--task", DEMO, "--format", "python", "--out", str(out))
    assert done.returncode == 0, done.stderr
    namespace: dict = {}
    exec(compile(out.read_text(), str(out), "exec"), namespace)  # our own generated file, in a test
    assert namespace["predict"](1e9, 1e11, group="hoffmann") == pytest.approx(
        1.69 + 406.4 / 1e9**0.34 + 410.7 / 1e11**0.28, rel=0.01)


def test_tasks_lists_the_curated_tasks():
    done = lawsearch("tasks")
    assert done.returncode == 0
    for name in ("demo", "chinchilla", "vocab", "sft"):
        assert name in done.stdout


def _bad_yaml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return str(path)


BASE = "name: t\ndata: {path: data.csv}\ninputs: [x]\ntarget: y\nsplit: {extrapolate: {by: [x]}}\n"


@pytest.mark.parametrize(
    "case, csv, yaml_text, law, message",
    [
        ("missing file", None, None, "a*x", "not found"),
        ("bad yaml", "x,y\n1,2\n", "name: [unclosed\n", "a*x", "YAML"),
        ("unknown field", "x,y\n1,2\n2,3\n", BASE + "colour: red\n", "a*x", "colour"),
        ("missing column", "x,z\n1,2\n2,3\n", BASE, "a*x", "'y'"),
        ("non-numeric column", "x,y\n1,2\nfoo,3\n", BASE, "a*x", "row 2"),
        ("nan", "x,y\n1,2\n2,nan\n3,4\n", BASE, "a*x", "row 2"),
        ("inf", "x,y\n1,2\n2,inf\n3,4\n", BASE, "a*x", "row 2"),
        ("log of non-positive", "x,y\n-1,2\n2,3\n3,4\n4,5\n", BASE, "a*log(x)", "x > 0"),
        ("empty split", "x,y,split\n1,2,train\n2,3,train\n", BASE.replace("{extrapolate: {by: [x]}}", "{column: split}"),
         "a*x", "no test rows"),
        ("unknown function", "x,y\n1,2\n2,3\n3,4\n", BASE, "a*erf(x)", "unknown function 'erf'"),
        ("code injection", "x,y\n1,2\n2,3\n3,4\n", BASE, "__import__('os').system('touch PWNED')", "not allowed"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_code_2(tmp_path, case, csv, yaml_text, law, message):
    if csv is not None:
        (tmp_path / "data.csv").write_text(csv)
    task = str(tmp_path / "missing.yaml") if yaml_text is None else _bad_yaml(tmp_path, yaml_text)
    done = lawsearch("evaluate", task, "--law", law, cwd=tmp_path)
    assert done.returncode == 2, (case, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error:")
    assert message in done.stderr, (case, done.stderr)
    assert not (tmp_path / "PWNED").exists()


def test_bad_option_values_are_clear(tmp_path):
    done = lawsearch("discover", DEMO, "--proposers", "library,gpt", "--out", str(tmp_path / "r"))
    assert done.returncode == 2 and "unknown proposer 'gpt'" in done.stderr
    done = lawsearch("discover", DEMO, "--resume")
    assert done.returncode == 2 and "--resume needs --out" in done.stderr
    done = lawsearch("export", str(tmp_path))
    assert done.returncode == 2 and "no law.json" in done.stderr
