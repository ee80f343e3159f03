"""The discovery loop: selection by extrapolation, determinism, resume after kill -9, failures, Dask."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import CHINCHILLA, synthetic_task
from lawsearch.errors import CheckpointError, TaskError
from lawsearch.proposers.base import Proposal
from lawsearch.search.archive import Candidate, pareto_front, select_winner, winner_threshold
from lawsearch.fit import FitOptions
from lawsearch.search.engine import Discovery, discover
from lawsearch.search.scoring import EvalPayload, evaluate_batch, mixture_shares, upper_bounds
from lawsearch.search.settings import SearchSettings, resolve_settings
from lawsearch.task import task_from_frame

FAST = dict(generations=3, proposals_per_generation=12, initial_library=30, islands=2, population_size=8,
            search_starts=8, search_local=2, time_limit=120, bootstrap=0, workers=1, refine_top=2)


def _history(run_dir: Path) -> list[dict]:
    lines = (run_dir / "history.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for record in records:
        record.pop("fit_seconds", None)
    return records


def _cand(formula, complexity, error, se=0.0):
    return Candidate(key=formula, formula=formula, complexity=complexity, n_parameters=1, val_error=error,
                     source="library", generation=0, val_se=se)


def test_pareto_front_and_one_standard_error_winner_rule():
    cands = [_cand("a", 3, 0.5), _cand("b", 5, 0.1), _cand("c", 7, 0.08, se=0.015), _cand("d", 9, 0.2),
             _cand("e", 4, math.inf)]
    front = pareto_front(cands)
    assert [c.formula for c in front] == ["a", "b", "c"]
    assert select_winner(front).formula == "c"  # 0.1 > 0.08 + 0.015
    front[-1].val_se = 0.03
    assert select_winner(front).formula == "b"  # 0.1 <= 0.08 + 0.03: the simpler law wins
    assert select_winner(front, tolerance=10.0).formula == "a"  # 0.5 <= 0.08 * 11
    assert select_winner([]) is None


def test_settings_precedence_cli_over_env_over_config(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("seed: 1\nworkers: 3\ngenerations: 7\n")
    settings = resolve_settings({"seed": 5, "workers": None}, config, environ={"LAWSEARCH_WORKERS": "2"})
    assert (settings.seed, settings.workers, settings.generations) == (5, 2, 7)
    config.write_text("generatons: 7\n")
    with pytest.raises(TaskError, match="'generatons'"):
        resolve_settings({}, config, environ={})
    with pytest.raises(TaskError, match="unknown proposer 'gpt'"):
        resolve_settings({"proposers": ("library", "gpt")}, None, environ={})
    assert settings.validation_fraction == "auto"
    config.write_text("validation_fraction: 0.1\n")
    assert resolve_settings({}, config, environ={}).validation_fraction == 0.1
    for bad in (1.5, 0, "most"):
        with pytest.raises(TaskError, match="'validation_fraction'"):
            resolve_settings({"validation_fraction": bad}, None, environ={})


def test_discover_finds_the_generating_law_and_writes_outputs(tmp_path, chinchilla_task):
    settings = SearchSettings(proposers=("library", "mutate"), seed=0, **{**FAST, "bootstrap": 20})
    result = discover(chinchilla_task, settings, out=tmp_path / "run")
    law = result.law_json["law"]
    assert law["ci"]["n_boot"] == 20 and set(law["ci"]["parameters"]["all"]) == set(law["parameters"])
    assert law["metrics"]["test"]["r2"] > 0.99
    for name in ("law.json", "law.tex", "law.py", "pareto.csv", "history.jsonl", "checkpoint.json", "comparison.md"):
        assert (tmp_path / "run" / name).exists(), name
    data = json.loads((tmp_path / "run" / "law.json").read_text())
    assert {"task", "law", "human_laws", "seed", "budget", "engines", "wall_time_s", "evaluations"} <= set(data)
    assert {"formula", "latex", "parameters", "complexity", "fitted", "metrics"} <= set(data["law"])
    assert data["human_laws"][0]["metrics"]["test"]["r2"] > 0.99
    assert data["law"]["validation"]["fraction"] == 0.2  # 'auto': the test split's share (20%)
    assert data["law"]["validation"]["rows"] == math.ceil(0.2 * len(chinchilla_task.train))
    assert "validation: 10 of 48 train rows, share 0.2 ('auto'" in (tmp_path / "run" / "run.log").read_text()
    history = _history(tmp_path / "run")
    assert {r["source"] for r in history} == {"library", "mutate"}
    assert all(r["status"] in {"ok", "duplicate", "parse_error", "rejected", "fit_failed", "error"} for r in history)
    assert [r["index"] for r in history] == list(range(len(history)))


def test_search_never_sees_test_rows(tmp_path, chinchilla_task):
    """Garbage in the test targets changes nothing in the search (only the final test metrics)."""
    settings = SearchSettings(proposers=("library", "mutate"), seed=1, **FAST)
    first = discover(chinchilla_task, settings, out=tmp_path / "a")
    poisoned = synthetic_task(human_laws=[{"name": "Hoffmann", "formula": CHINCHILLA}])
    poisoned.test.Y[:] = 1e6
    search = Discovery(poisoned, settings, tmp_path / "b")
    assert not set(search.search_train.rows) & set(poisoned.test.rows)
    assert not set(search.validation.rows) & set(poisoned.test.rows)
    second = search.run()
    assert _history(tmp_path / "a") == _history(tmp_path / "b")
    assert first.formula == second.formula


def test_same_seed_same_run(tmp_path, chinchilla_task):
    settings = SearchSettings(proposers=("library", "mutate"), seed=2, **FAST)
    discover(chinchilla_task, settings, out=tmp_path / "a")
    discover(chinchilla_task, settings, out=tmp_path / "b")
    assert _history(tmp_path / "a") == _history(tmp_path / "b")


def test_parameter_limit_rejects_laws(tmp_path, chinchilla_task):
    settings = SearchSettings(proposers=("library",), seed=0, max_parameters=3, **{**FAST, "generations": 1})
    discover(chinchilla_task, settings, out=tmp_path / "run")
    history = _history(tmp_path / "run")
    ok = [r for r in history if r["status"] == "ok"]
    assert ok and all(r["n_parameters"] <= 3 for r in ok)


class _Garbage:
    """A proposer that talks nonsense, then crashes."""

    name = "llm"

    def __init__(self):
        self.calls = 0

    def propose(self, context, n):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("engine exploded")
        return [Proposal("__import__('os').system('touch PWNED')", "llm"), Proposal("E + A/params**", "llm"),
                Proposal("E + A*params**-a + B*tokens**-b + C*params + D*tokens + F", "llm"),
                Proposal("log(-params)", "llm")]

    def close(self):
        pass


def test_failing_candidates_are_recorded_and_never_stop_the_run(tmp_path, chinchilla_task, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = SearchSettings(proposers=("library", "mutate"), seed=0, max_parameters=5,
                              **{**FAST, "proposals_per_generation": 16})
    search = Discovery(chinchilla_task, settings, tmp_path / "run")
    search.proposers.append(_Garbage())
    result = search.run()
    history = _history(tmp_path / "run")
    from_llm = {r["formula"]: r for r in history if r["source"] == "llm"}
    assert from_llm["__import__('os').system('touch PWNED')"]["status"] == "parse_error"
    assert from_llm["E + A/params**"]["status"] == "parse_error"
    assert any(r["status"] == "rejected" and "parameters" in r["reason"] for r in from_llm.values())
    assert from_llm["log(-params)"]["status"] == "fit_failed"  # never finite: recorded, not raised
    assert not (tmp_path / "PWNED").exists()
    assert "engine exploded" in (tmp_path / "run" / "run.log").read_text()
    assert result.law_json["law"]["metrics"]["test"]["r2"] > 0.99


def test_ctrl_c_writes_the_best_law_so_far(tmp_path, chinchilla_task):
    settings = SearchSettings(proposers=("library", "mutate"), seed=0, **{**FAST, "generations": 10})

    def interrupt(state, search):
        if state.generation == 2:
            raise KeyboardInterrupt

    result = discover(chinchilla_task, settings, out=tmp_path / "run", progress=interrupt)
    assert result.interrupted and result.state.generation == 2
    assert json.loads((tmp_path / "run" / "law.json").read_text())["law"]["formula"]


def test_existing_run_needs_resume(tmp_path, chinchilla_task):
    settings = SearchSettings(proposers=("library",), seed=0, **{**FAST, "generations": 1})
    discover(chinchilla_task, settings, out=tmp_path / "run")
    with pytest.raises(CheckpointError, match="already holds a run"):
        discover(chinchilla_task, settings, out=tmp_path / "run")
    with pytest.raises(CheckpointError, match="no checkpoint.json"):
        discover(chinchilla_task, settings, out=tmp_path / "empty", resume=True)


SMALL_TASK = """
name: small
data:
  synthetic:
    law: "E + A/params**alpha + B/tokens**beta"
    parameters: {E: 1.69, A: 406.4, B: 410.7, alpha: 0.34, beta: 0.28}
    inputs: {params: [1.0e+5, 1.0e+11], tokens: [1.0e+7, 1.0e+13]}
    rows: 40
    noise: 0.005
inputs: [params, tokens]
target: loss
split: {extrapolate: {by: [params, tokens]}}
"""
RUN_CONFIG = """
proposers: [library, mutate]
generations: 6
time_limit: 600
proposals_per_generation: 8
initial_library: 12
islands: 2
search_starts: 8
search_local: 2
bootstrap: 10
workers: 1
time_limit: 900  # the generations bound the run, not a loaded machine's clock
"""


def _cli(folder: Path, *args: str) -> list[str]:
    (folder / "small.yaml").write_text(SMALL_TASK)
    (folder / "run.yaml").write_text(RUN_CONFIG)
    return [sys.executable, "-m", "lawsearch.cli", "discover", str(folder / "small.yaml"),
            "--config", str(folder / "run.yaml"), "--seed", "3", "--quiet", *args]


def test_resume_after_kill_9_equals_an_uninterrupted_run(tmp_path):
    full = tmp_path / "full"  # the uninterrupted run, side by side with the one killed
    errors = tmp_path / "full.stderr"
    with errors.open("w") as stderr:
        uninterrupted = subprocess.Popen(_cli(tmp_path, "--out", str(full)), stdout=subprocess.DEVNULL, stderr=stderr)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(tmp_path, "--out", str(killed)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    checkpoint = killed / "checkpoint.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if json.loads(checkpoint.read_text())["generation"] >= 2:
                break
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    generation = json.loads(checkpoint.read_text())["generation"]
    assert 2 <= generation < 6, "the run must be killed mid-way"
    assert not (killed / "law.json").exists()
    subprocess.run(_cli(tmp_path, "--out", str(killed), "--resume"), check=True, capture_output=True, timeout=600)
    assert uninterrupted.wait(timeout=600) == 0, errors.read_text()[-2000:]
    resumed = _history(killed)
    assert [r["index"] for r in resumed] == list(range(len(resumed)))  # no gap, no duplicate
    assert resumed == _history(full)
    assert json.loads((killed / "law.json").read_text())["law"]["formula"] == \
        json.loads((full / "law.json").read_text())["law"]["formula"]


def test_process_pool_and_dask_give_the_same_run(tmp_path, chinchilla_task):
    distributed = pytest.importorskip("distributed")
    settings = SearchSettings(proposers=("library", "mutate"), seed=4, **{**FAST, "generations": 2})
    discover(chinchilla_task, settings, out=tmp_path / "serial")
    pooled = settings.model_copy(update={"workers": 2})
    discover(chinchilla_task, pooled, out=tmp_path / "pool")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask = settings.model_copy(update={"scheduler": cluster.scheduler_address})
        discover(chinchilla_task, dask, out=tmp_path / "dask")
    assert _history(tmp_path / "serial") == _history(tmp_path / "pool") == _history(tmp_path / "dask")


def test_unreachable_proposer_engine_is_noted(tmp_path, chinchilla_task, monkeypatch):
    import lawsearch.proposers.registry as registry
    from lawsearch.errors import EngineUnavailable

    def missing(options):
        raise EngineUnavailable("Julia is not installed")

    monkeypatch.setitem(registry.FACTORIES, "pysr", missing)
    settings = SearchSettings(proposers=("library", "pysr"), seed=0, **{**FAST, "generations": 1})
    result = discover(chinchilla_task, settings, out=tmp_path / "run")
    assert any("pysr: unavailable" in note and "Julia" in note for note in result.notes)
    assert "pysr: unavailable" in (tmp_path / "run" / "run.log").read_text()


def test_validation_rows_are_the_largest_of_train(chinchilla_task):
    fit, val = chinchilla_task.validation_split(0.2)
    score = lambda d: np.log(d.X).sum(axis=1)  # noqa: E731 - product of the inputs
    assert score(val).min() >= score(fit).max()
    assert len(val) == math.ceil(0.2 * len(chinchilla_task.train))


def test_history_lines_are_strict_json_even_for_overflowing_laws(tmp_path, chinchilla_task):
    class Overflow:
        name = "llm"

        def propose(self, context, n):
            return [Proposal("E + A*exp(params/1e3)", "llm"), Proposal("E + A*tokens**20", "llm")]

        def close(self):
            pass

    settings = SearchSettings(proposers=("library",), seed=0, **{**FAST, "generations": 2})
    search = Discovery(chinchilla_task, settings, tmp_path / "run")
    search.proposers.append(Overflow())
    search.run()
    for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))


def _payload_1d(law, x_fit: np.ndarray, x_val: np.ndarray, monotone: tuple = ()) -> EvalPayload:
    """A search payload for y = law(x) measured at ``x_fit``, validated at ``x_val`` (x > 0)."""
    return EvalPayload(inputs=("x",), targets=("y",), X_fit=x_fit[:, None], Y_fit=law(x_fit)[:, None],
                       groups_fit=np.full(len(x_fit), "all"), X_val=x_val[:, None], Y_val=law(x_val)[:, None],
                       groups_val=np.full(len(x_val), "all"), max_parameters=None, max_complexity=100,
                       fit_options=FitOptions(n_starts=8, n_local=2), seed=0, positive_inputs=("x",),
                       monotone=monotone)


def _trend_payload(direction: str) -> EvalPayload:
    """y = 1/x measured on 1 <= x <= 4, validated on 4 < x <= 5, with a declared trend in x."""
    return _payload_1d(lambda x: 1 / x, np.linspace(1, 4, 30), np.linspace(4.2, 5, 5), (("x", direction),))


def test_declared_trend_rejects_laws_that_turn_around_beyond_the_data():
    quadratic, inverse = "a + b*x + c*x**2", "a + b/x"
    # a parabola through a decreasing convex curve has its minimum near the data: it rises beyond
    turned, kept = evaluate_batch([quadratic, inverse], _trend_payload("decreasing"))
    assert turned["status"] == "rejected" and "not decreasing in x beyond the data" in turned["reason"]
    assert kept["status"] == "ok" and kept["val_error"] < 1e-6
    # the same fit of a + b/x breaks an 'increasing' declaration
    assert evaluate_batch([inverse], _trend_payload("increasing"))[0]["status"] == "rejected"
    # without a declaration the parabola is scored like any law
    free = dataclasses.replace(_trend_payload("decreasing"), monotone=())
    assert evaluate_batch([quadratic], free)[0]["status"] == "ok"


def test_a_fit_must_stay_finite_beyond_the_data_along_the_scale_axes():
    """y = 2 + 0.5·log(6 − x) on 1 <= x <= 5 fits exactly, but is undefined past x = 6, where the
    extrapolation goes: with ``finite_beyond`` (the all-train check of the finalists) it is rejected."""
    payload = _payload_1d(lambda x: 2 + 0.5 * np.log(6 - x), np.linspace(1, 4, 30), np.linspace(4.2, 5, 5))
    assert evaluate_batch(["a + b*log(c - x)"], payload)[0]["status"] == "ok"
    checked = dataclasses.replace(payload, finite_beyond=("x",))
    undefined, finite = evaluate_batch(["a + b*log(c - x)", "a + b*x + c*x**2"], checked)
    assert undefined["status"] == "rejected" and undefined["reason"].startswith("not finite beyond the data: at x = ")
    assert finite["status"] == "ok"


def test_a_law_of_mixture_shares_must_be_finite_where_a_share_is_zero():
    """Two shares p1 + p2 = 1, no row leaving a domain out (0.2 <= p1 <= 0.8).  Data from
    y = 2·(p1 − 0.05)^−0.3 make the fit of A·(p1 + eps)^−alpha take eps = −0.05: exact on the rows,
    undefined for a mixture without domain 1.  It is rejected; the same law fitted to data with
    eps = +0.05 is kept."""
    p1 = np.linspace(0.2, 0.8, 40)
    X = np.column_stack([p1, 1 - p1])

    def payload(eps: float) -> EvalPayload:
        y = (2 * (p1 + eps) ** -0.3)[:, None]
        return EvalPayload(inputs=("p1", "p2"), targets=("y",), X_fit=X[::2], Y_fit=y[::2],
                           groups_fit=np.full(20, "all"), X_val=X[1::2], Y_val=y[1::2], groups_val=np.full(20, "all"),
                           max_parameters=None, max_complexity=100, fit_options=FitOptions(n_starts=16, n_local=3),
                           seed=0, positive_inputs=("p1", "p2"), shares=mixture_shares(("p1", "p2"), X))
    law = "A*(p1 + eps)**(-alpha)"
    assert payload(0.05).shares == ("p1", "p2")
    undefined = evaluate_batch([law], payload(-0.05))[0]
    assert undefined["status"] == "rejected" and undefined["reason"] == "not finite where p1 = 0 (a mixture without it)"
    assert evaluate_batch([law], dataclasses.replace(payload(-0.05), shares=()))[0]["status"] == "ok"
    kept = evaluate_batch([law], payload(0.05))[0]
    assert kept["status"] == "ok" and kept["val_error"] < 1e-6


def test_the_mixture_without_a_domain_gives_its_share_to_the_others():
    """Three shares, p2 = p3 = (1 − p1)/2 with 0.2 <= p1 <= 0.8.  y = 1 + log(0.95 − p2 − p3) is
    y = 1 + log(p1 − 0.05) written through the other shares: finite on every row, and at p1 = 0 with
    p2, p3 held, but undefined for the mixture without domain 1 (p2 + p3 = 1), which is what is checked."""
    p1 = np.linspace(0.2, 0.8, 40)
    X = np.column_stack([p1, (1 - p1) / 2, (1 - p1) / 2])
    y = (1 + np.log(0.95 - X[:, 1] - X[:, 2]))[:, None]
    payload = EvalPayload(inputs=("p1", "p2", "p3"), targets=("y",), X_fit=X[::2], Y_fit=y[::2],
                          groups_fit=np.full(20, "all"), X_val=X[1::2], Y_val=y[1::2], groups_val=np.full(20, "all"),
                          max_parameters=None, max_complexity=100, fit_options=FitOptions(n_starts=16, n_local=3),
                          seed=0, positive_inputs=("p1", "p2", "p3"), shares=("p1", "p2", "p3"))
    law = "a + b*log(d - p2 - p3)"
    assert evaluate_batch([law], dataclasses.replace(payload, shares=()))[0]["val_error"] < 1e-6
    rejected = evaluate_batch([law], payload)[0]
    assert rejected["status"] == "rejected" and rejected["reason"] == "not finite where p1 = 0 (a mixture without it)"


def test_mixture_shares_are_the_unit_inputs_that_sum_to_one(tmp_path):
    rng = np.random.default_rng(0)
    shares = rng.dirichlet([1, 1, 1], 30)
    scale = 10 ** rng.uniform(6, 9, (30, 1))
    assert mixture_shares(("N", "a", "b", "c"), np.hstack([scale, shares])) == ("a", "b", "c")
    assert mixture_shares(("a", "b"), shares[:, :2]) == ()  # two of three shares do not sum to 1
    assert mixture_shares(("a",), np.ones((5, 1))) == ()  # one column is no mixture
    task = task_from_frame(pd.DataFrame({"N": scale[:, 0], "a": shares[:, 0], "b": shares[:, 1], "c": shares[:, 2],
                                         "y": 1 + shares[:, 0]}), name="mix", inputs=["N", "a", "b", "c"], target="y",
                           split={"extrapolate": {"by": ["N"], "test_fraction": 0.2}})
    search = Discovery(task, SearchSettings(proposers=("library",), workers=1, bootstrap=0), tmp_path / "run")
    assert search.payload.shares == ("a", "b", "c")


def test_a_declared_trend_is_checked_only_where_the_rows_order_of_inputs_holds():
    """Repeated data (Muennighoff et al.): u unique tokens of d total (u <= d on every row); the
    effective data u*(1 + R*(1 - exp(-(d/u - 1)/R))) falls with u beyond u = d, where no run can lie.
    Pushing u alone past d would reject this law; the push stops at d, so the law is kept."""
    rng = np.random.default_rng(0)
    u = np.geomspace(1e8, 1e10, 60)
    d = u * rng.uniform(1.0, 40.0, u.size)
    law = "E + B/(u + u*R*(1 - exp(-(d/u - 1)/R)))**beta"

    def loss(u, d):
        return 1.5 + 400 * (u + u * 5.0 * (1 - np.exp(-(d / u - 1) / 5.0))) ** -0.3

    fit, val = slice(0, 50), slice(50, 60)
    X = np.column_stack([u, d])
    payload = EvalPayload(inputs=("u", "d"), targets=("y",), X_fit=X[fit], Y_fit=loss(u, d)[fit, None],
                          groups_fit=np.full(50, "all"), X_val=X[val], Y_val=loss(u, d)[val, None],
                          groups_val=np.full(10, "all"), max_parameters=None, max_complexity=100,
                          fit_options=FitOptions(n_starts=16, n_local=3), seed=0, positive_inputs=("u", "d"),
                          monotone=(("u", "decreasing"), ("d", "decreasing")))
    assert upper_bounds(X, 0) == [1] and upper_bounds(X, 1) == []
    kept = evaluate_batch([law], payload)[0]
    assert kept["status"] == "ok" and kept["val_error"] < 1e-4
    # one row with u > d: the order no longer holds, the push is not capped and the turn is found
    d[0] = 0.99 * u[0]
    X = np.column_stack([u, d])
    free = dataclasses.replace(payload, X_fit=X[fit], Y_fit=loss(u, d)[fit, None])
    turned = evaluate_batch([law], free)[0]
    assert turned["status"] == "rejected" and "not decreasing in u beyond the data" in turned["reason"]


def test_laws_whose_fit_sits_at_the_fitters_limit_are_rejected():
    payload = _payload_1d(lambda x: 2 + 300 * x ** -0.5, np.geomspace(1e9, 1e11, 30), np.geomspace(1.2e11, 2e11, 5))
    pinned, power = evaluate_batch(["c0 + A/log(x)**alpha", "c0 + A/x**alpha"], payload)
    assert pinned["status"] == "rejected" and pinned["reason"].startswith("degenerate fit: alpha = 10")
    assert power["status"] == "ok" and power["val_error"] < 1e-6


def test_a_contender_whose_fit_on_all_of_train_turns_around_is_dropped(tmp_path):
    """Validation passes a law fitted on search-train, but the winner is refitted on all of
    train: where that fit breaks a declared trend beyond the data, the law cannot win."""
    x = np.geomspace(1.0, 100.0, 50)
    y = 1.0 + 1.0 / x - 0.001 * x + 0.05 * np.clip(x - 30.0, 0.0, None)  # turns up in the largest train rows
    frame = pd.DataFrame({"x": x, "y": y})
    task = task_from_frame(frame, name="turn", inputs="x", target="y", monotone={"x": "decreasing"},
                           split={"extrapolate": {"by": ["x"], "test_fraction": 0.1}})
    assert task.validation_fraction("auto") == pytest.approx(0.1) and task.train.X[:, 0].max() > 40
    search = Discovery(task, SearchSettings(seed=0, **FAST), tmp_path / "run")
    linear, inverse = "E + A*x + B/x", "E + B/x"
    for formula, n_parameters, error in ((linear, 3, 0.01), (inverse, 2, 0.02)):
        search.state.archive.add(Candidate(key=formula, formula=formula, complexity=len(formula),
                                           n_parameters=n_parameters, val_error=error, source="library", generation=0))
    # fitted on search-train (x < 40, where y falls), E + A*x + B/x has A < 0 and passes the check
    assert evaluate_batch([linear], search.payload)[0]["status"] == "ok"
    search.refine_finalists()
    search.close()
    archive = search.state.archive
    assert math.isinf(archive.get(linear).val_error) and archive.get(inverse).ok
    assert search.winner().formula == inverse
    log = (tmp_path / "run" / "run.log").read_text()
    assert f"fit on all of train of {linear} rejected: not decreasing in x beyond the data" in log


def test_every_law_the_winner_rule_can_reach_is_refined(tmp_path):
    """With a standard error larger than the best error, the one-SE rule reaches beyond twice
    the best error: such a law could win, so it is refitted and checked on all of train too."""
    task = synthetic_task()
    search = Discovery(task, SearchSettings(seed=0, **{**FAST, "refine_top": 1}), tmp_path / "run")
    best, simpler = "E + A/params**alpha + B/tokens**beta", "E + A/params**alpha"
    search.state.archive.add(Candidate(key=best, formula=best, complexity=16, n_parameters=5, val_error=0.01,
                                       source="library", generation=0, val_se=0.05))
    search.state.archive.add(Candidate(key=simpler, formula=simpler, complexity=9, n_parameters=3, val_error=0.03,
                                       source="library", generation=0, val_se=0.01))
    assert winner_threshold(search.state.archive.front()) == pytest.approx(0.06)
    search.refine_finalists()
    search.close()
    assert search.state.archive.get(simpler).refined and search.state.archive.get(best).refined


def test_human_laws_are_seeded_with_the_full_fitter(tmp_path, chinchilla_task):
    settings = SearchSettings(proposers=("library",), seed=0, **{**FAST, "generations": 1})
    search = Discovery(chinchilla_task, settings, tmp_path / "run")
    search.run_generation()
    seeded = [r for r in _history(tmp_path / "run") if r["note"] == "human law: Hoffmann"]
    assert len(seeded) == 1 and seeded[0]["status"] == "ok"
    human = next(c for c in search.state.archive.candidates.values() if c.formula == seeded[0]["formula"])
    assert human.refined
    thorough = evaluate_batch([human.formula], dataclasses.replace(search.payload, fit_options=FitOptions()))[0]
    assert human.val_error == pytest.approx(thorough["val_error"])
    assert not all(c.refined for c in search.state.archive.candidates.values())
    search.close()


def test_human_law_bounds_hold_in_the_search_and_in_the_records(tmp_path):
    """A human law with stated bounds is fitted within them: seeded in the search, as the winner, in law.json."""
    human = {"name": "Hoffmann", "formula": CHINCHILLA, "bounds": {"alpha": [0.5, 1.0]}}  # the truth, 0.34, is outside
    task = synthetic_task(human_laws=[human])
    settings = SearchSettings(proposers=("library",), seed=0, **{**FAST, "generations": 1, "initial_library": 0})
    result = discover(task, settings, out=tmp_path / "run")
    assert result.law_json["law"]["formula"] == task.parse_law(CHINCHILLA).text  # the only law: the winner
    assert result.law_json["law"]["fitted"]["all"]["alpha"] == pytest.approx(0.5)
    assert result.law_json["human_laws"][0]["fitted"]["all"]["alpha"] == pytest.approx(0.5)
    seeded = evaluate_batch([CHINCHILLA], dataclasses.replace(
        Discovery(task, settings, tmp_path / "other").payload, fit_options=FitOptions(bounds={"alpha": (0.5, 1.0)})))
    winner = result.state.archive.best(1)[0]
    assert winner.val_error == pytest.approx(seeded[0]["val_error"])


def test_the_seeded_human_laws_are_fitted_before_the_library_forms(chinchilla_task, tmp_path):
    """A time limit that cuts generation 0 short cuts the library forms, never the human laws: they
    are submitted first (and in a pool of one worker, fitted first)."""
    search = Discovery(chinchilla_task, SearchSettings(seed=0, proposers=("library",), **FAST), tmp_path / "run")
    submitted: list[str] = []
    submit = search._submit

    def recording(jobs):
        submitted.extend(formula for formulas, *_ in jobs for formula in formulas)
        return submit(jobs)

    search._submit = recording
    try:
        search.run_generation()
    finally:
        search.close()
    human = chinchilla_task.parse_law(chinchilla_task.human_laws[0].formula).text
    assert len(submitted) > 10 and submitted[0] == human
    assert search.state.archive.get(chinchilla_task.parse_law(human).canonical).ok
