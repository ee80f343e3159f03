"""Parameters the data cannot identify are found from the Jacobian's rank, and fixed (or the law rejected)."""

from __future__ import annotations

import numpy as np
import pytest

from lawsearch import Law, fit_law
from lawsearch.fit import FitOptions
from lawsearch.identifiability import identifiable_count, reduce_law, redundant_direction
from lawsearch.search.scoring import EvalPayload, evaluate_batch

REDUNDANT = "f + exp(-1 - exp(-w*(K + k*log_flops)))"  # w acts only through w*K and w*k


def _rows(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 5, (60, 1))
    groups = np.array(["a"] * 30 + ["b"] * 30)
    y = np.where(groups == "a", 0.5, 0.6) + np.exp(-1 - np.exp(-(0.3 + 0.8 * x[:, 0]))) + rng.normal(0, 0.002, 60)
    return x, y, groups


def test_rank_counts_only_identifiable_parameters():
    x, _, _ = _rows()
    assert identifiable_count(Law.parse(REDUNDANT, ["log_flops"]), x) == 3
    assert identifiable_count(Law.parse("f + exp(-1 - exp(-K - k*log_flops))", ["log_flops"]), x) == 3
    assert identifiable_count(Law.parse("E + A*exp(-b*log_flops) + B", ["log_flops"]), x) == 3  # E + B


def test_redundant_law_is_reparametrized_with_the_same_predictions():
    x, y, groups = _rows()
    law = Law.parse(REDUNDANT, ["log_flops"])
    fit = fit_law(law, x, y, groups, ["y"])
    assert redundant_direction(fit, x, groups) is not None
    reduced, fixed = reduce_law(fit, x, groups, lambda law: fit_law(law, x, y, groups, ["y"]))
    assert fixed == "w = 1"
    assert reduced.law.text == "f + exp(-1 - exp(-K - k*log_flops))"
    np.testing.assert_allclose(reduced.predict(x, groups, ["y"]), fit.predict(x, groups, ["y"]), rtol=1e-5)
    for group, values in reduced.parameters().items():  # the generating law is recovered
        assert values["K"] == pytest.approx(0.3, abs=0.05) and values["k"] == pytest.approx(0.8, abs=0.05)
    assert redundant_direction(reduced, x, groups) is None


def test_identifiable_law_is_left_alone():
    x, y, groups = _rows()
    fit = fit_law(Law.parse("f + exp(-1 - exp(-K - k*log_flops))", ["log_flops"]), x, y, groups, ["y"])
    assert redundant_direction(fit, x, groups) is None
    assert reduce_law(fit, x, groups, lambda law: fit_law(law, x, y, groups, ["y"])) is None


def _payload(x: np.ndarray, y: np.ndarray, groups: np.ndarray, max_parameters: int) -> EvalPayload:
    fit_rows, val_rows = np.arange(len(y)) % 5 != 0, np.arange(len(y)) % 5 == 0
    return EvalPayload(inputs=("log_flops",), targets=("y",), X_fit=x[fit_rows], Y_fit=y[fit_rows, None],
                       groups_fit=groups[fit_rows], X_val=x[val_rows], Y_val=y[val_rows, None],
                       groups_val=groups[val_rows], max_parameters=max_parameters, max_complexity=200,
                       fit_options=FitOptions(n_starts=16, n_local=3), seed=0, positive_inputs=())


def test_search_scores_the_reparametrized_law_within_the_parameter_limit():
    x, y, groups = _rows()
    [record] = evaluate_batch([REDUNDANT], _payload(x, y, groups, max_parameters=3))
    assert record["status"] == "ok", record
    assert record["formula"] == "f + exp(-1 - exp(-K - k*log_flops))"
    assert record["n_parameters"] == 3
    assert "w = 1" in record["identifiability"]
    [over] = evaluate_batch([REDUNDANT], _payload(x, y, groups, max_parameters=2))
    assert over["status"] == "rejected" and over["reason"] == "3 parameters > limit 2"


def test_a_law_whose_redundancy_cannot_be_fixed_is_rejected(monkeypatch):
    import lawsearch.search.scoring as scoring

    x, y, groups = _rows()
    monkeypatch.setattr(scoring, "reduce_law", lambda *args, **kwargs: None)
    [record] = evaluate_batch([REDUNDANT], _payload(x, y, groups, max_parameters=4))
    assert record["status"] == "rejected" and record["reason"].startswith("not identifiable")
