"""Multi-output structure: targets paired with inputs ('self' in a law), and logs of inputs with zeros."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from lawsearch.errors import DataError, FormulaError, TaskError
from lawsearch.evaluate import evaluate_law
from lawsearch.fit import FitOptions
from lawsearch.formula import Law
from lawsearch.search.scoring import EvalPayload, evaluate_batch
from lawsearch.task import task_from_frame

TRUE = {"y_1": (2.0, 1.5, -3.0), "y_2": (3.0, 0.8, -1.5), "y_3": (1.0, 2.5, -4.5)}  # c, k, t per output


def mixture_frame(rows: int = 90, noise: float = 0.002, seed: int = 0) -> pd.DataFrame:
    """Three outputs, output i depending on its own share p_i only: y_i = c_i + k_i*exp(t_i*p_i)."""
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.ones(3), size=rows)
    frame = pd.DataFrame(shares, columns=["p_1", "p_2", "p_3"])
    for i, (name, (c, k, t)) in enumerate(TRUE.items()):
        frame[name] = (c + k * np.exp(t * shares[:, i])) * (1 + noise * rng.standard_normal(rows))
    return frame


def mixture_task(frame: pd.DataFrame | None = None, **kwargs):
    args = {"name": "mix", "inputs": ["p_1", "p_2", "p_3"], "target": ["y_1", "y_2", "y_3"],
            "split": {"extrapolate": {"by": [], "test_fraction": 0.2}}, "pairs": {"y_{i}": "p_{i}"}, **kwargs}
    return task_from_frame(mixture_frame() if frame is None else frame, **args)


def test_a_law_naming_self_recovers_each_outputs_own_law():
    task = mixture_task()
    assert task.pairs == (("y_1", "p_1"), ("y_2", "p_2"), ("y_3", "p_3"))
    evaluation = evaluate_law(task, "c + k*exp(t*self)")
    assert evaluation.law.parameters == ("c", "k", "t") and evaluation.law.variables == ("self",)
    fitted = evaluation.fit.parameters()["all"]
    for target, (c, k, t) in TRUE.items():
        assert fitted[target]["c"] == pytest.approx(c, abs=0.05), target
        assert fitted[target]["k"] == pytest.approx(k, rel=0.05), target
        assert fitted[target]["t"] == pytest.approx(t, rel=0.05), target
    assert evaluation.metrics["test"].r2 > 0.99
    # one shared input for all outputs cannot express it
    assert evaluate_law(task, "c + k*exp(t*p_1)").metrics["test"].r2 < 0.7


def test_a_self_law_is_scored_by_the_search_workers():
    task = mixture_task()
    payload = EvalPayload(
        inputs=task.inputs, targets=task.targets, X_fit=task.train.X, Y_fit=task.train.Y,
        groups_fit=task.train.groups, X_val=task.test.X, Y_val=task.test.Y, groups_val=task.test.groups,
        max_parameters=4, max_complexity=60, fit_options=FitOptions(n_starts=32, n_local=3), seed=0,
        positive_inputs=(), pairs=task.pairs)
    (record,) = evaluate_batch(["c + k*exp(t*self)"], payload)
    assert record["status"] == "ok" and record["val_error"] < 0.01
    (unpaired,) = evaluate_batch(["c + k*exp(t*self)"], EvalPayload(**{**payload.__dict__, "pairs": ()}))
    assert unpaired["status"] == "parse_error" and "pairs none" in unpaired["reason"]


def test_self_is_the_paired_input_for_each_target():
    law = Law.parse("a*self + b", ["p_1", "p_2"], ["y_1", "y_2"], pairs=[("y_1", "p_1"), ("y_2", "p_2")])
    X = np.array([[1.0, 10.0], [2.0, 20.0]])
    assert law.bound("y_2").evaluate(X, [2.0, 1.0]).tolist() == [21.0, 41.0]
    assert law.bound("y_1").parameters == law.parameters
    with pytest.raises(FormulaError, match=re.escape("evaluate it for one target, law.bound(target)")):
        law.evaluate(X, [2.0, 1.0])
    with pytest.raises(FormulaError, match=re.escape("target 'y_3' has no paired input")):
        law.bound("y_3")


@pytest.mark.parametrize(("pairs", "message"), [
    ({"z_{i}": "p_{i}"}, "'pairs' key 'z_{i}' matches no target (targets: y_1, y_2, y_3)"),
    ({"y_{i}": "q_{i}"}, "'pairs' pairs 'y_1' with 'q_1', which is not an input (inputs: p_1, p_2, p_3)"),
    ({"y_1": "p_1", "y_2": "p_2"}, "'pairs' leaves target 'y_3' unpaired; pair every target"),
    ({"y_{i}": "p_{i}", "y_1": "p_2"}, "'pairs' pairs target 'y_1' twice"),
])
def test_bad_pairs_name_the_problem(pairs, message):
    with pytest.raises(TaskError, match=re.escape(message)):
        mixture_task(pairs=pairs)


def test_self_without_pairs_is_a_clear_error():
    task = mixture_task(pairs=None)
    with pytest.raises(FormulaError, match=re.escape("'self' names the input paired with each target, but this "
                                                     "task pairs none (give the task 'pairs')")):
        task.parse_law("c + k*exp(t*self)")


def zeros_task():
    rng = np.random.default_rng(1)
    x = np.concatenate([np.zeros(12), rng.uniform(0.0, 1.0, 60)])
    y = 3.0 - 0.4 * np.log(x + 0.05) + 0.002 * rng.standard_normal(x.size)
    return task_from_frame(pd.DataFrame({"x": x, "y": y}), name="zeros", inputs="x", target="y",
                           split={"extrapolate": {"by": [], "test_fraction": 0.2}})


def test_log_of_an_input_with_zeros_plus_a_fitted_offset_fits():
    task = zeros_task()
    evaluation = evaluate_law(task, "a + b*log(x + eps)")
    fitted = evaluation.fit.parameters()["all"]
    assert fitted["eps"] == pytest.approx(0.05, rel=0.1)
    assert fitted["b"] == pytest.approx(-0.4, rel=0.05)
    assert evaluation.metrics["test"].r2 > 0.99


def test_log_of_an_input_with_zeros_alone_is_still_rejected():
    task = zeros_task()
    with pytest.raises(DataError, match=re.escape("needs x > 0 (it is inside a log or a fractional power), but row 1 "
                                                  "has x = 0")):
        evaluate_law(task, "a + b*log(x)")
    with pytest.raises(DataError, match="needs x > 0"):
        evaluate_law(task, "a + b*log(x - 1)")  # a negative shift cannot help
    assert Law.parse("a + b*log(x + eps)", ["x"]).log_domain_variables() == ()
    assert Law.parse("a + (x + 1)**0.5", ["x"]).log_domain_variables() == ()


def test_a_self_law_record_reads_back_with_its_pairs():
    from lawsearch.export import law_from_record

    evaluation = evaluate_law(mixture_task(), "c + k*exp(t*self)")
    record = evaluation.record()
    assert record["pairs"] == [["y_1", "p_1"], ["y_2", "p_2"], ["y_3", "p_3"]]
    assert law_from_record(record) == evaluation.law


def test_mutations_apply_to_a_self_law():
    from lawsearch.proposers.base import ScoredLaw, SearchContext
    from lawsearch.proposers.mutate import MutationProposer

    task = mixture_task()
    context = SearchContext(inputs=task.inputs, targets=task.targets, X=task.train.X, Y=task.train.Y,
                            groups=task.train.groups, rng=np.random.default_rng(0), max_parameters=5,
                            best=[ScoredLaw("c + k*exp(t*self)", 9, 3, 0.01, "library")], pairs=task.pairs)
    children = [task.parse_law(p.formula) for p in MutationProposer().propose(context, 12)]
    assert children and all(child.uses_self for child in children)


@pytest.mark.slow  # minutes on 2 shared cores
def test_discover_and_report_with_a_self_law(tmp_path):
    """A paired task runs end to end: the human law naming 'self' is seeded, scored, mutated and
    reported (law.json, its bootstrap intervals, the report's figures)."""
    from lawsearch.report.html import write_report
    from lawsearch.search.engine import discover
    from lawsearch.search.settings import SearchSettings

    task = mixture_task(human_laws=[{"name": "own share", "formula": "c + k*exp(t*self)"}], max_parameters=4)
    settings = SearchSettings(proposers=("library", "mutate"), seed=0, generations=2, proposals_per_generation=8,
                              initial_library=10, islands=1, population_size=8, search_starts=8, search_local=2,
                              time_limit=120, bootstrap=4, workers=1, refine_top=2)
    result = discover(task, settings, out=tmp_path / "run")
    assert result.law_json["law"]["metrics"]["test"]["r2"] > 0.99 and "self" in result.law_json["law"]["formula"]
    assert result.law_json["human_laws"][0]["metrics"]["test"]["r2"] > 0.99
    html, _ = write_report(result.run_dir, task)
    assert "data:image/png;base64," in html.read_text()


def test_a_self_law_is_written_readably_with_its_pairs():
    """The exponent t is negative for every output: the readable law writes its sign outside and
    still names 'self' (the winner's law.json is written this way)."""
    from lawsearch.naming import readable_fit

    task = mixture_task()
    fit = evaluate_law(task, "c + k*exp(t*self)").fit
    readable = readable_fit(fit)
    assert readable.law.pairs == task.pairs and "exp(-" in readable.law.text and "self" in readable.law.text
    test = task.test
    np.testing.assert_allclose(readable.predict(test.X, test.groups, task.targets),
                               fit.predict(test.X, test.groups, task.targets), rtol=1e-12)



def test_the_library_proposes_a_linear_mixing_law_with_a_saturating_own_share_and_it_recovers_one():
    """y_i = Σ_j a_ij·p_j + b_i·exp(c_i·p_i): every share acts linearly, the output's own share also
    saturates.  The library proposes that shape for a paired task, and fitting it recovers each output's
    coefficients."""
    from lawsearch.proposers.base import SearchContext
    from lawsearch.proposers.library import LibraryProposer

    rng = np.random.default_rng(3)
    shares = rng.dirichlet(np.ones(3), size=120)
    mixing = np.array([[3.0, 2.6, 2.9], [2.2, 2.0, 2.4], [3.5, 3.3, 3.1]])  # row i: output i's a_ij
    own = np.array([[0.6, -4.0], [0.4, -3.0], [0.9, -5.0]])  # b_i, c_i
    frame = pd.DataFrame(shares, columns=["p_1", "p_2", "p_3"])
    for i in range(3):
        clean = shares @ mixing[i] + own[i, 0] * np.exp(own[i, 1] * shares[:, i])
        frame[f"y_{i + 1}"] = clean * (1 + 0.0005 * rng.standard_normal(len(shares)))
    task = mixture_task(frame)
    context = SearchContext(inputs=task.inputs, targets=task.targets, X=task.train.X, Y=task.train.Y,
                            groups=task.train.groups, rng=np.random.default_rng(0), max_parameters=5, pairs=task.pairs)
    proposed = [task.parse_law(p.formula) for p in LibraryProposer().propose(context, 200) if p.note == "proportions"]
    law = next(law for law in proposed if law.uses_self)
    assert law.text == "A*p_1 + B*p_2 + C*p_3 + D*exp(F*self)"
    evaluation = evaluate_law(task, law.text, options=FitOptions(n_starts=64, n_local=6))
    fitted = evaluation.fit.parameters()["all"]
    for i in range(3):
        values = fitted[f"y_{i + 1}"]
        assert [values[name] for name in "ABC"] == pytest.approx(mixing[i], rel=0.02), values
        assert [values[name] for name in "DF"] == pytest.approx(own[i], rel=0.05), values
    assert evaluation.metrics["test"].r2 > 0.999
