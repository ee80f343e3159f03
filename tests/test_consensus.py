"""The consensus winner rule: the law of the one-standard-error band whose extrapolation agrees with
the band's median, chosen from train rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import synthetic_task
from lawsearch.errors import LawsearchError
from lawsearch.search.archive import Candidate, select_winner
from lawsearch.search.consensus import PROBE_FACTORS, consensus_index, consensus_winner, probe_rows
from lawsearch.search.engine import discover
from lawsearch.search.settings import SearchSettings
from lawsearch.task import task_from_frame


def _task(with_scale: bool = True):
    rng = np.random.default_rng(0)
    x = np.geomspace(1.0, 1000.0, 60)
    z = rng.uniform(0.0, 1.0, 60)
    z[0] = 0.0  # z is not positive: it is never stretched
    y = 1.0 + 4.0 * x**-0.5 + rng.normal(0, 0.002, 60)
    frame = pd.DataFrame({"x": x, "z": z, "y": y})
    split = {"extrapolate": {"by": ["x" if with_scale else "z"], "test_fraction": 0.2}}
    return task_from_frame(frame, name="power", inputs=["x", "z"], target="y", split=split)


def _candidate(formula: str, complexity: int, val_error: float = 0.01) -> Candidate:
    return Candidate(key=formula, formula=formula, complexity=complexity, n_parameters=3, val_error=val_error,
                     source="test", generation=0, val_se=0.01)


def test_consensus_index_picks_the_set_nearest_the_median():
    a, b, c = np.array([[1.0], [2.0]]), np.array([[1.1], [2.1]]), np.array([[5.0], [9.0]])
    index, distances = consensus_index([c, a, b], spread=np.array([1.0]))
    assert index == 2  # the median is b itself (pointwise median of 1, 1.1, 5 and 2, 2.1, 9)
    assert distances == pytest.approx([(3.9**2 + 6.9**2) / 2, 0.01, 0.0])


def test_consensus_index_skips_non_finite_sets_and_refuses_when_none_is_finite():
    a, bad = np.array([[1.0]]), np.array([[np.inf]])
    index, distances = consensus_index([bad, None, a], spread=np.array([1.0]))
    assert index == 2 and distances[:2] == [np.inf, np.inf]
    with pytest.raises(LawsearchError, match="no law of the band predicts finite values"):
        consensus_index([bad, None], spread=np.array([1.0]))


def test_probe_rows_stretch_the_scale_inputs_only():
    task = _task()
    _, validation = task.validation_split(0.2)
    X, groups = probe_rows(task, validation)
    n = len(validation)
    assert X.shape == (n * len(PROBE_FACTORS), 2) and len(groups) == len(X)
    for k, factor in enumerate(PROBE_FACTORS):
        np.testing.assert_allclose(X[k * n:(k + 1) * n, 0], validation.X[:, 0] * factor)
        np.testing.assert_allclose(X[k * n:(k + 1) * n, 1], validation.X[:, 1])


def test_without_a_positive_scale_input_the_probe_is_the_validation_rows():
    task = _task(with_scale=False)
    _, validation = task.validation_split(0.2)
    X, _ = probe_rows(task, validation)
    np.testing.assert_array_equal(X, validation.X)


def test_consensus_passes_over_the_simplest_law_when_it_alone_departs_beyond_the_data():
    task = _task()
    _, validation = task.validation_split(0.2)
    band = [_candidate("E + B*log(x)", 6), _candidate("E + A/x**alpha", 7), _candidate("E + A/x**alpha + C*z", 11),
            _candidate("E + A*x**alpha + C*x", 12, val_error=0.5)]  # the last is outside the band
    assert select_winner(band).formula == "E + B*log(x)"
    chosen, record = consensus_winner(band, task, validation)
    assert chosen.formula in ("E + A/x**alpha", "E + A/x**alpha + C*z")
    assert [b["formula"] for b in record["band"]] == [c.formula for c in band[:3]]
    assert record["rule"].startswith("consensus")


def test_the_rule_is_a_setting_and_lowest_is_the_default():
    assert SearchSettings().winner_rule == "lowest"
    assert SearchSettings(winner_rule="consensus").winner_rule == "consensus"
    with pytest.raises(ValueError):
        SearchSettings(winner_rule="median")


@pytest.mark.slow  # a whole (small) run: about 80 s on a busy 2-core machine
def test_a_run_with_the_consensus_rule_records_its_band(tmp_path):
    fast = dict(generations=2, proposals_per_generation=8, initial_library=12, islands=2, population_size=6,
                search_starts=8, search_local=2, time_limit=120, bootstrap=0, workers=1, refine_top=3)
    result = discover(synthetic_task(rows=80), SearchSettings(seed=0, proposers=("library",), winner_rule="consensus",
                                                              **fast), out=tmp_path / "run")
    selection = result.law_json["selection"]
    assert selection["rule"].startswith("consensus")
    assert result.formula in [b["formula"] for b in selection["band"]]
    assert result.law_json["law"]["metrics"]["test"]["r2"] > 0.9
