"""Bootstrap intervals: coverage of known parameters, determinism, executors, failures, multi-output."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from conftest import synthetic_task
from lawsearch.errors import FitError
from lawsearch.fit import fit_law
from lawsearch.search.executors import SerialExecutor
from lawsearch.task import task_from_frame
from lawsearch.uncertainty import bootstrap_intervals, prediction_rows

LAW = "E + A/x**alpha"
TRUE = {"E": 1.5, "A": 40.0, "alpha": 0.5}
GROUPS = {"a": {}, "b": {"E": 2.0, "alpha": 0.4}}


@pytest.fixture(scope="module")
def task():
    return synthetic_task(LAW, TRUE, {"x": (1e2, 1e6)}, rows=40, noise=0.002, seed=3, groups=GROUPS)


@pytest.fixture(scope="module")
def intervals(task):
    return bootstrap_intervals(task, LAW, n_boot=40, level=0.99, seed=0)


def test_intervals_cover_the_true_parameters_and_predictions(task, intervals):
    assert intervals["level"] == 0.99 and intervals["n_boot"] == intervals["n_requested"] == 40
    assert intervals["n_failed"] == 0
    law = task.parse_law(LAW)
    for group, overrides in GROUPS.items():
        truth = {**TRUE, **overrides}
        for name, value in truth.items():
            lo, hi = intervals["parameters"][group][name]
            assert lo <= value <= hi, (group, name, lo, value, hi)
            assert hi - lo < 0.5 * abs(value)  # low noise: the intervals are tight
        pred = intervals["predictions"][group]
        true_y = float(law.evaluate(np.array([[pred["inputs"]["x"]]]), [truth[p] for p in law.parameters])[0])
        lo, hi = pred["interval"]
        assert lo <= true_y <= hi
        assert lo <= pred["estimate"] <= hi
        assert pred["target"] == "y"
    json.dumps(intervals, allow_nan=False)  # strict JSON, ready for law.json


def test_prediction_rows_are_the_largest_scale_test_rows(task, intervals):
    chosen = prediction_rows(task)
    for group, index in chosen.items():
        in_group = task.test.groups == group
        assert task.test.X[index, 0] == task.test.X[in_group, 0].max()
        assert intervals["predictions"][group]["row"] == int(task.test.rows[index])
        assert intervals["predictions"][group]["observed"] == pytest.approx(task.test.Y[index, 0])


def test_same_seed_same_intervals_and_another_seed_differs(task):
    one = bootstrap_intervals(task, LAW, n_boot=12, seed=5)
    assert bootstrap_intervals(task, LAW, n_boot=12, seed=5) == one
    assert bootstrap_intervals(task, LAW, n_boot=12, seed=6)["parameters"] != one["parameters"]


def test_executors_give_the_serial_result(task):
    serial = bootstrap_intervals(task, LAW, n_boot=12, seed=1)
    with ThreadPoolExecutor(3) as pool:
        assert bootstrap_intervals(task, LAW, n_boot=12, seed=1, executor=pool, chunks=5) == serial
    assert bootstrap_intervals(task, LAW, n_boot=12, seed=1, executor=SerialExecutor(), chunks=12) == serial
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert bootstrap_intervals(task, LAW, n_boot=12, seed=1, executor=pool) == serial


def test_point_estimate_from_a_law_fit_or_its_json(task):
    train = task.train
    law = task.parse_law(LAW)
    fit = fit_law(law, train.X, train.Y, train.groups, train.targets, seed=0)
    from_fit = bootstrap_intervals(task, law, fit, n_boot=4)
    from_json = bootstrap_intervals(task, law, fit.parameters(), n_boot=4)
    assert from_fit == from_json
    for group in GROUPS:
        index = prediction_rows(task)[group]
        expected = fit.predict(task.test.X[index:index + 1], [group], task.targets)[0, 0]
        assert from_fit["predictions"][group]["estimate"] == pytest.approx(expected)


def test_failed_replicates_are_skipped_and_counted(task, monkeypatch):
    import lawsearch.uncertainty as uncertainty

    calls = {"n": 0}
    real = uncertainty.fit_law

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise FitError("simulated failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(uncertainty, "fit_law", flaky)
    result = bootstrap_intervals(task, LAW, n_boot=9, seed=0)
    # Call 1 is the point estimate; calls 3, 6 and 9 (replicates 1, 4, 7) fail, for both groups.
    assert result["n_failed"] == 3 * len(GROUPS)
    assert all(result["parameters"][g]["E"] is not None for g in GROUPS)


def test_every_replicate_failing_gives_no_interval(task, monkeypatch):
    import lawsearch.uncertainty as uncertainty

    law = task.parse_law(LAW)
    fit = fit_law(law, task.train.X, task.train.Y, task.train.groups, task.train.targets)

    def failing(*args, **kwargs):
        raise FitError("simulated failure")

    monkeypatch.setattr(uncertainty, "fit_law", failing)
    result = bootstrap_intervals(task, law, fit, n_boot=3)
    assert result["n_failed"] == 3 * len(GROUPS)
    assert result["parameters"]["a"] == {"E": None, "A": None, "alpha": None}
    assert result["predictions"]["a"]["interval"] is None
    assert result["predictions"]["a"]["estimate"] is not None


def test_multi_output_intervals_are_nested_by_target():
    rng = np.random.default_rng(0)
    x = np.exp(rng.uniform(np.log(1e2), np.log(1e5), 30))
    frame = pd.DataFrame({"x": x, "u": 1.0 + 30 * x**-0.5, "v": 2.0 + 10 * x**-0.3})
    frame[["u", "v"]] *= 1 + 0.002 * rng.standard_normal((30, 2))
    task = task_from_frame(frame, name="two", inputs="x", target=["u", "v"])
    result = bootstrap_intervals(task, "E + A/x**alpha", n_boot=10, level=0.9)
    assert set(result["parameters"]["all"]) == {"u", "v"}
    assert set(result["parameters"]["all"]["u"]) == {"E", "A", "alpha"}
    lo, hi = result["parameters"]["all"]["v"]["E"]
    assert lo < 2.0 < hi or abs(lo - 2.0) < 0.05
    assert result["predictions"]["all"]["v"]["target"] == "v"
    assert len(result["predictions"]["all"]["u"]["interval"]) == 2


def test_a_spent_time_limit_runs_no_replicate(task):
    serial = bootstrap_intervals(task, LAW, n_boot=12, seed=1, time_limit=1e-9)
    assert serial["n_boot"] == 0 and serial["n_requested"] == 12
    assert serial["parameters"]["a"]["E"] is None  # no replicate: no interval, never a made-up one
    with ThreadPoolExecutor(2) as pool:
        chunked = bootstrap_intervals(task, LAW, n_boot=12, seed=1, executor=pool, chunks=4, time_limit=1e-9)
    assert chunked["n_boot"] == 0 and chunked["n_failed"] == 0
    generous = bootstrap_intervals(task, LAW, n_boot=12, seed=1, time_limit=600)
    assert generous == bootstrap_intervals(task, LAW, n_boot=12, seed=1)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_boot": 0}, "n_boot must be a positive integer, got 0"),
    ({"level": 1.5}, "level must be between 0 and 1"),
    ({"chunks": 0}, "chunks must be at least 1"),
    ({"time_limit": 0}, "time_limit must be a positive number of seconds, got 0"),
])
def test_bad_arguments_are_named(task, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_intervals(task, LAW, **kwargs)
