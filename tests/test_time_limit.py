"""--time-limit bounds the whole run: the fitter's deadline, the LLM's requests and retry waits,
the search on a big table, the refinement, the final fits and the bootstrap (issue 20 item 1)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from conftest import CHINCHILLA, synthetic_task
from lawsearch.fit import OUT_OF_TIME, FitOptions, fit_law
from lawsearch.formula import Law
from lawsearch.search.budget import SEARCH_MAX_ROWS, cap_rows
from lawsearch.search.engine import discover
from lawsearch.search.settings import SearchSettings
from test_llm import fake_llm, laws_json, make_context, make_proposer  # noqa: F401 - the fake server fixture


def _big_rows(n: int):
    rng = np.random.default_rng(0)
    X = np.column_stack([np.exp(rng.uniform(np.log(1e5), np.log(1e11), n)),
                         np.exp(rng.uniform(np.log(1e7), np.log(1e13), n))])
    y = 1.69 + 406.4 / X[:, 0] ** 0.34 + 410.7 / X[:, 1] ** 0.28
    return X, y * np.exp(rng.normal(0, 0.01, n))


def test_a_fit_stops_at_its_deadline_with_the_best_parameters_so_far():
    X, y = _big_rows(200_000)
    law = Law.parse(CHINCHILLA, ["params", "tokens"])
    start = time.monotonic()
    fit = fit_law(law, X, y, np.zeros(len(y)), ["y"], FitOptions(deadline=time.time() + 0.5))
    assert time.monotonic() - start < 2.5  # the thorough fit of 200k rows takes minutes
    assert OUT_OF_TIME in fit.fits[0].message and np.all(np.isfinite(fit.fits[0].theta))
    small = fit_law(law, X[:300], y[:300], np.zeros(300), ["y"], FitOptions(deadline=time.time() + 600))
    assert OUT_OF_TIME not in small.fits[0].message
    assert small.fits[0].theta.tolist() == fit_law(law, X[:300], y[:300], np.zeros(300), ["y"]).fits[0].theta.tolist()


def test_search_rows_are_a_seeded_per_group_subsample_of_a_big_table():
    task = synthetic_task(rows=4_000, groups={"a": {}, "b": {"E": 1.8}, "c": {"E": 2.0}})
    capped = cap_rows(task.train, SEARCH_MAX_ROWS, seed=0)
    assert len(capped) <= SEARCH_MAX_ROWS < len(task.train)
    for name in ("a", "b", "c"):  # each group keeps its share
        share = np.mean(task.train.groups == name)
        assert abs(np.mean(capped.groups == name) - share) < 0.01
    assert np.all(np.diff(capped.rows) > 0)  # original order, no row twice
    assert capped.rows.tolist() == cap_rows(task.train, SEARCH_MAX_ROWS, seed=0).rows.tolist()
    assert cap_rows(capped, SEARCH_MAX_ROWS, seed=0) is capped


def test_a_hanging_llm_server_is_cut_to_the_search_deadline(fake_llm, tmp_path):
    fake_llm.responder = lambda body: {"delay": 1000, "content": laws_json("A/N**a + E")}
    proposer = make_proposer(fake_llm, tmp_path, timeout=600.0, retries=3)
    start = time.monotonic()
    assert proposer.propose(make_context(deadline=time.time() + 1.0), 5) == []
    assert time.monotonic() - start < 3.0
    assert "timed out" in proposer.stats["error_messages"][0]["error"]
    assert fake_llm.chat_requests == 1  # the deadline passed: no retry
    start = time.monotonic()
    assert proposer.propose(make_context(deadline=time.time() - 1.0), 5) == []
    assert time.monotonic() - start < 0.5 and fake_llm.chat_requests == 1  # no request once time is up


def test_a_retry_after_beyond_the_deadline_is_not_waited_for(fake_llm, tmp_path):
    fake_llm.responder = lambda body: {"status": 429, "message": "slow down", "headers": {"Retry-After": "1000"}}
    proposer = make_proposer(fake_llm, tmp_path, retries=3, backoff_max=30.0)
    start = time.monotonic()
    assert proposer.propose(make_context(deadline=time.time() + 5.0), 5) == []
    assert time.monotonic() - start < 2.0  # neither 1000 s nor backoff_max (30 s) per retry
    assert fake_llm.chat_requests == 1 and "HTTP 429" in proposer.stats["error_messages"][0]["error"]


def test_a_run_on_a_big_table_writes_its_outputs_within_the_limit(tmp_path):
    task = synthetic_task(rows=100_000, noise=0.01, human_laws=[{"name": "Hoffmann", "formula": CHINCHILLA}])
    settings = SearchSettings(time_limit=8, workers=1, bootstrap=20, proposers=("library", "mutate"), seed=0)
    start = time.monotonic()
    result = discover(task, settings, out=tmp_path / "run")
    wall = time.monotonic() - start
    assert wall < 8 * 1.1 + 1.0, f"{wall:.1f} s for an 8 s limit"
    law = json.loads((tmp_path / "run" / "law.json").read_text())
    assert np.isfinite(law["law"]["metrics"]["test"]["r2"]) and result.state.generation >= 1
    assert law["wall_time_s"] <= 8 * 1.1
    assert law["human_laws"][0]["name"] == "Hoffmann"
    cut = [note for note in law["notes"] if note.startswith("the time limit cut the final fits")]
    assert bool(cut) == ("note" in law["human_laws"][0]) or "the winner" in cut[0]  # a cut fit is said so


def test_refinement_and_bootstrap_share_the_limit_with_the_search(tmp_path):
    task = synthetic_task(rows=100, groups={f"g{i}": {"E": 1.5 + 0.1 * i} for i in range(8)}, noise=0.01)
    settings = SearchSettings(time_limit=6, workers=1, bootstrap=1000, refine_top=30, generations=1000,
                              proposers=("library", "mutate"), seed=0)
    start = time.monotonic()
    discover(task, settings, out=tmp_path / "run")
    wall = time.monotonic() - start
    assert wall < 6 * 1.1 + 1.0, f"{wall:.1f} s for a 6 s limit"
    law = json.loads((tmp_path / "run" / "law.json").read_text())
    ci = law["law"].get("ci")
    assert ci is None or ci["n_boot"] < 1000  # cut to the time left, never run past it
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    archived = {c["formula"] for c in json.loads((tmp_path / "run" / "checkpoint.json").read_text())["archive"]}
    cut = {r["formula"] for r in history if r["status"] == "timeout"}
    assert not cut & archived  # a law the time limit cut short is never scored as data


def test_a_spent_time_limit_still_fits_one_law_and_writes_the_files(tmp_path, chinchilla_task):
    settings = SearchSettings(time_limit=0.01, workers=1, bootstrap=10, proposers=("library", "mutate"), seed=0)
    result = discover(chinchilla_task, settings, out=tmp_path / "run")
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [r["status"] for r in history].count("ok") == 1 and result.state.generation == 1
    assert "fitted the first law past it" in (tmp_path / "run" / "run.log").read_text()
    assert json.loads((tmp_path / "run" / "law.json").read_text())["law"]["formula"] == result.formula
    assert "bootstrap: skipped, no time left within the time limit" in result.notes
