"""Re-parameterisations of one law take one place among the survivors and the finalists."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from lawsearch.fit import FitOptions
from lawsearch.search.archive import SAME_BEHAVIOUR_RTOL, Archive, Candidate, distinct_behaviour
from lawsearch.search.population import Population
from lawsearch.search.scoring import EvalPayload, evaluate_batch


def _cand(key: str, error: float, se: float, complexity: int = 5) -> Candidate:
    return Candidate(key=key, formula=key, complexity=complexity, n_parameters=2, val_error=error,
                     source="mutate", generation=1, val_se=se)


def test_the_simplest_of_laws_that_behave_alike_is_kept():
    ranked = [_cand("simple", 0.10, 0.02, complexity=5), _cand("renamed", 0.10 * (1 + 1e-7), 0.02, complexity=5),
              _cand("longer", 0.10 * (1 + 2e-6), 0.02 * (1 - 1e-6), complexity=9), _cand("other", 0.11, 0.02)]
    assert [c.key for c in distinct_behaviour(ranked)] == ["simple", "other"]


def test_equal_errors_with_different_spread_are_different_laws():
    ranked = [_cand("a", 0.10, 0.02), _cand("b", 0.10, 0.03), _cand("c", 0.10 * (1 + 10 * SAME_BEHAVIOUR_RTOL), 0.02)]
    assert [c.key for c in distinct_behaviour(ranked)] == ["a", "b", "c"]


def test_a_twin_further_back_than_the_last_kept_law_is_found():
    ranked = [_cand("a", 0.10, 0.02), _cand("b", 0.10, 0.03), _cand("a2", 0.10, 0.02)]
    assert [c.key for c in distinct_behaviour(ranked)] == ["a", "b"]


def test_the_best_laws_are_one_per_behaviour():
    archive = Archive()
    for cand in [_cand("a", 0.1, 0.01), _cand("a2", 0.1, 0.01, complexity=7), _cand("b", 0.2, 0.01),
                 _cand("c", 0.3, 0.01), _cand("bad", float("inf"), float("inf"))]:
        archive.add(cand)
    assert [c.key for c in archive.best(2)] == ["a", "b"]
    assert [c.key for c in archive.best(10)] == ["a", "b", "c"]
    assert len(archive) == 5  # the archive itself keeps every law (the fit cache, the history)


def test_an_island_keeps_its_size_in_distinct_laws():
    archive = Archive()
    keys = ["a", "a2", "a3", "b", "c", "d"]
    for key, error in zip(keys, [0.1, 0.1, 0.1, 0.2, 0.3, 0.4]):
        archive.add(_cand(key, error, 0.01))
    host = SimpleNamespace(state=SimpleNamespace(archive=archive, islands=[keys[::-1]]),
                           settings=SimpleNamespace(population_size=3))
    Population._select(host)
    assert host.state.islands == [["a", "b", "c"]]


def test_fitted_reparameterisations_are_recognised_as_one_law():
    """Two spellings of y = E + A·x^(−α) (a sign folded into the coefficient, the power written as a
    division) fitted by the search's own scoring get the same validation error and standard error."""
    rng = np.random.default_rng(3)
    x_fit, x_val = np.geomspace(1, 50, 40), np.geomspace(60, 120, 8)

    def law(x):
        return 1.5 + 4.0 * x ** -0.6

    payload = EvalPayload(
        inputs=("x",), targets=("y",), X_fit=x_fit[:, None],
        Y_fit=(law(x_fit) * (1 + 0.01 * rng.standard_normal(len(x_fit))))[:, None],
        groups_fit=np.full(len(x_fit), "all"), X_val=x_val[:, None],
        Y_val=(law(x_val) * (1 + 0.01 * rng.standard_normal(len(x_val))))[:, None],
        groups_val=np.full(len(x_val), "all"), max_parameters=None, max_complexity=100,
        fit_options=FitOptions(n_starts=24, n_local=3), seed=0, positive_inputs=("x",))
    formulas = ["E + A*x**(-alpha)", "E - B/x**alpha", "E + A*log(x)"]
    results = evaluate_batch(formulas, payload)
    assert all(r["status"] == "ok" for r in results)
    cands = sorted((_cand(f, r["val_error"], r["val_se"]) for f, r in zip(formulas, results)),
                   key=lambda c: c.val_error)
    kept = {c.key for c in distinct_behaviour(cands)}
    assert len(kept) == 2 and "E + A*log(x)" in kept
