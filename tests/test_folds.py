"""Nested extrapolation folds of the train split and the winner rule that scores finalists on them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import synthetic_task
from lawsearch.search.archive import Candidate
from lawsearch.search.engine import Discovery, discover
from lawsearch.search.folds import extrapolation_folds, fold_winner, select_by_folds
from lawsearch.search.settings import SearchSettings

FAST = dict(generations=2, proposals_per_generation=8, initial_library=12, islands=2, population_size=6,
            search_starts=8, search_local=2, time_limit=120, bootstrap=0, workers=1, refine_top=3)


@pytest.mark.parametrize("groups", [None, {"a": {}, "b": {"E": 2.0}, "c": {"A": 300.0}}])
def test_folds_are_nested_ordered_by_scale_and_never_hold_test_rows(groups):
    task = synthetic_task(rows=90, groups=groups)
    folds = extrapolation_folds(task, 0.2, 3, seed=0)
    assert len(folds) == 3
    test_rows = set(task.test.rows.tolist())
    search_train, validation = task.validation_split(0.2, seed=0)
    assert folds[0][0].rows.tolist() == search_train.rows.tolist()  # fold 1 is the search's own cut
    assert folds[0][1].rows.tolist() == validation.rows.tolist()
    for k, (fit, held) in enumerate(folds):
        fit_rows, held_rows = set(fit.rows.tolist()), set(held.rows.tolist())
        assert not (fit_rows | held_rows) & test_rows
        assert not fit_rows & held_rows and held_rows
        if k:  # nested: this fold's rows are the previous fold's fitting rows
            assert fit_rows | held_rows == set(folds[k - 1][0].rows.tolist())
    for group in task.train.group_names():
        highest = [task.scale_score(held)[held.groups == group] for _, held in folds]
        for larger, smaller in zip(highest, highest[1:]):  # each fold holds out rows below the previous one's
            assert smaller.max() <= larger.min()
        fit_last = folds[-1][0]
        assert task.scale_score(fit_last)[fit_last.groups == group].max() <= highest[-1].min()


def test_folds_stop_before_too_few_fitting_rows():
    task = synthetic_task(rows=60)
    folds = extrapolation_folds(task, 0.3, 10, seed=0)
    assert 2 <= len(folds) < 10
    assert all(len(fit) >= 0.3 * len(task.train) for fit, _ in folds)
    assert len(extrapolation_folds(task, 0.3, 1, seed=0)) == 1


def test_a_law_that_wins_one_fold_by_luck_loses_on_the_mean():
    errors = [[0.010, 0.30, 0.50],   # best on fold 1 only
              [0.012, 0.02, 0.03]]   # nearly as good on fold 1, much better on the others
    choice = select_by_folds(errors, n_parameters=[4, 4], complexity=[10, 10])
    assert choice.index == 1
    assert choice.scores[1] == pytest.approx(np.log([0.012, 0.02, 0.03]).mean())


def test_the_penalty_is_chosen_on_the_folds():
    # The complex law is better on average, but only because fold 1 favours it strongly: a complex law
    # chosen on folds 2-3 (penalty 0) is much worse than the simple one on fold 1 and vice versa, so ...
    complex_wins = [[1e-3, 1e-3, 1e-3], [2e-3, 2e-3, 2e-3]]
    choice = select_by_folds(complex_wins, n_parameters=[6, 2], complexity=[20, 8])
    assert choice.index == 0 and choice.penalty == 0.0  # a consistent gain is kept: no penalty needed
    # the complex law beats the simple one by a hair on every fold: any penalty leaves the same regret
    # except where it flips the choice on the left-out fold; penalty 0 keeps the better law
    close = [[0.0100, 0.0100, 0.0100], [0.0101, 0.0101, 0.0101]]
    assert select_by_folds(close, [6, 2], [20, 8]).index == 0
    # the simple law is better on two folds of three, the complex one far better on the third: leaving
    # out a fold where the simple one is better, the rest choose the complex law with a small penalty
    # (and pay for it); a penalty that keeps the simple law has less regret
    mixed = [[0.001, 0.050, 0.050], [0.020, 0.020, 0.020]]
    chosen = select_by_folds(mixed, [6, 2], [20, 8])
    assert chosen.penalty > 0 and chosen.index == 1
    assert chosen.regrets[0.0] > chosen.regrets[chosen.penalty]


def test_no_law_finite_on_every_fold_gives_no_choice():
    assert select_by_folds([[0.1, math.inf]], [2], [5]) is None
    assert select_by_folds([], [], []) is None
    only = select_by_folds([[0.1, math.inf], [0.5, 0.4]], [2, 3], [5, 7])
    assert only.index == 1 and math.isinf(only.scores[0])


def test_fold_winner_records_the_choice():
    def cand(formula, k, errors):
        return Candidate(key=formula, formula=formula, complexity=2 * k + 1, n_parameters=k, val_error=errors[0],
                         source="library", generation=0, fold_errors=errors)
    chosen, record = fold_winner([cand("a", 2, [0.02, 0.03, 0.04]), cand("b", 5, [0.01, 0.5, 0.6]),
                                  Candidate("c", "c", 3, 1, 0.001, "mutate", 0)])  # not scored on the folds
    assert chosen.formula == "a"
    assert [f["formula"] for f in record["finalists"]] == ["a", "b"] and record["penalty"] in (0.0, 0.05, 0.1, 0.2, 0.4)
    assert fold_winner([Candidate("c", "c", 3, 1, 0.001, "mutate", 0)]) is None


def test_a_run_ranks_its_finalists_on_the_folds(tmp_path):
    human = {"name": "params alone", "formula": "E + A/params**alpha"}  # far from the best: no finalist by error
    task = synthetic_task(rows=80, human_laws=[human])
    result = discover(task, SearchSettings(seed=0, proposers=("library",), folds=3, **FAST), out=tmp_path / "run")
    selection = result.law_json["selection"]
    assert len(selection["folds"]) == 3 and selection["folds"][0]["held_out_rows"] > 0
    finalists = selection["finalists"]
    assert finalists[0]["formula"] == result.formula
    assert all(len(f["fold_errors"]) == 3 for f in finalists)
    assert task.parse_law(human["formula"]).text in [f["formula"] for f in finalists]  # seeded: always a finalist
    assert result.law_json["law"]["metrics"]["test"]["r2"] > 0.9
    saved = json.loads((tmp_path / "run" / "checkpoint.json").read_text())  # fold errors survive a resume
    assert sorted(len(c["fold_errors"]) for c in saved["archive"] if c.get("fold_errors")) == [3] * len(finalists)
    library = result.law_json["proposers"]["library"]  # what the proposer contributed
    assert library["finalists"] == len(finalists) and 1 <= library["on_front"] <= library["ok"] <= library["proposed"]
    single = Discovery(task, SearchSettings(seed=0, **FAST), tmp_path / "single")  # the default: one cut
    assert len(single.folds) == 1
    single.close()


def test_fold_scores_fit_each_fold_and_score_its_held_out_rows():
    from lawsearch import fold_scores
    from lawsearch.evaluate import fit_and_score

    task = synthetic_task(rows=90, noise=0.01, groups={"a": {}, "b": {"E": 2.0}})
    true = fold_scores(task, "E + A/params**alpha + B/tokens**beta", 3)
    folds = extrapolation_folds(task, task.validation_fraction(), 3)
    assert [(s.fit_rows, s.held_out_rows) for s in true] == [(len(fit), len(held)) for fit, held in folds]
    assert all(s.metrics.r2 > 0.95 for s in true)  # the generating law extrapolates on every fold
    wrong = fold_scores(task, "E + A/params**alpha", 3)  # no tokens term: it cannot
    assert all(w.metrics.r2 < t.metrics.r2 - 0.1 for w, t in zip(wrong, true))
    law = task.parse_law("E + A/params**alpha")  # each fold is exactly a fit on its rows, scored on the held-out
    for score, (fit_rows, held) in zip(wrong, folds):
        assert score.metrics.r2 == pytest.approx(fit_and_score(law, fit_rows, held, task.fit_options(law))[1].r2)


def test_fold_scores_of_a_law_with_no_finite_fit_are_not_finite():
    from lawsearch import fold_scores

    task = synthetic_task(rows=40)
    scores = fold_scores(task, "A*exp(params*tokens*1e6)", 2)  # overflows on every row: no finite fit
    assert len(scores) == 2 and all(not math.isfinite(s.metrics.r2) for s in scores)
