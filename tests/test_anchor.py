"""The human-anchored winner rule (a seeded human law within the one-standard-error band sets the
validation error a simpler law must reach to win) and the lowest-error rule."""

from __future__ import annotations

import pytest

from conftest import CHINCHILLA, synthetic_task
from lawsearch.search.anchor import anchored_winner
from lawsearch.search.archive import Candidate, pareto_front, select_winner
from lawsearch.search.engine import Discovery
from lawsearch.search.settings import SearchSettings

HUMAN = "E + A/params**alpha + B/tokens**beta"


def _candidate(formula: str, complexity: int, val_error: float, val_se: float = 0.005) -> Candidate:
    return Candidate(key=formula, formula=formula, complexity=complexity, n_parameters=complexity // 4,
                     val_error=val_error, source="test", generation=0, val_se=val_se)


def _front(human_error: float) -> tuple[list[Candidate], Candidate]:
    """best 0.090 ± 0.020 (band up to 0.110); the human law and three simpler laws."""
    human = _candidate(HUMAN, 20, human_error)
    laws = [_candidate("a + b/x", 5, 0.104), _candidate("a + b/x**c", 10, 0.097),
            _candidate("a + b/x**c + d*y", 15, 0.094), human, _candidate("best", 30, 0.090, 0.020)]
    return pareto_front(laws), human


def test_a_simpler_law_must_validate_as_well_as_the_human_law_in_the_band():
    front, human = _front(0.095)
    assert select_winner(front).formula == "a + b/x"  # the one-SE rule takes the simplest of the band
    # anchored: the simplest law with validation error <= the human law's 0.095
    assert anchored_winner(front, [human]).formula == "a + b/x**c + d*y"
    front, human = _front(0.0935)  # now no simpler law validates as well: the human law wins
    assert anchored_winner(front, [human]).formula == HUMAN


def test_a_human_law_outside_the_band_or_none_leaves_the_one_se_rule():
    front, human = _front(0.2)
    assert anchored_winner(front, [human]).formula == select_winner(front).formula == "a + b/x"
    assert anchored_winner(front, []).formula == "a + b/x"
    assert anchored_winner([], [human]) is None


def test_a_run_with_the_anchored_rule_uses_the_seeded_human_law(tmp_path):
    task = synthetic_task(human_laws=[{"name": "Hoffmann", "formula": CHINCHILLA}])
    settings = SearchSettings(seed=0, winner_rule="anchored", workers=1, refine_top=0, bootstrap=0)
    search = Discovery(task, settings, tmp_path / "run")
    human_key = task.parse_law(CHINCHILLA).canonical
    simple = _candidate("E + A/params**alpha", 12, 0.104)
    search.state.archive.add(simple)
    search.state.archive.add(Candidate(key=human_key, formula=CHINCHILLA, complexity=20, n_parameters=5,
                                       val_error=0.095, source="library", generation=0, val_se=0.02))
    try:
        assert [h.key for h in search.seeded_human_laws()] == [human_key]
        assert search.winner().formula == CHINCHILLA
        assert search.selection["rule"].startswith("human-anchored") and search.selection["anchors"] == [CHINCHILLA]
        plain = Discovery(task, settings.model_copy(update={"winner_rule": "one-se"}), tmp_path / "plain")
        plain.state = search.state
        assert plain.winner().formula == "E + A/params**alpha"
        plain.close()
    finally:
        search.close()


def test_the_winner_rule_setting_accepts_anchored():
    assert SearchSettings(winner_rule="anchored").winner_rule == "anchored"
    with pytest.raises(ValueError):
        SearchSettings(winner_rule="human")


def test_the_lowest_rule_takes_the_front_law_of_lowest_validation_error(tmp_path):
    task = synthetic_task(human_laws=[{"name": "Hoffmann", "formula": CHINCHILLA}])
    search = Discovery(task, SearchSettings(seed=0, winner_rule="lowest", workers=1, bootstrap=0), tmp_path / "run")
    for cand in _front(0.095)[0]:
        search.state.archive.add(cand)
    try:
        assert search.winner().formula == "best"  # 0.090, though four simpler laws lie within its standard error
        assert search.selection["rule"].startswith("lowest validation NMSE")
    finally:
        search.close()
