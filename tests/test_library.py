"""The library proposer: known law families instantiated for a task's inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy

from lawsearch.fit import FitOptions, fit_law
from lawsearch.formula import Law
from lawsearch.proposers.base import Proposer, ScoredLaw, SearchContext
from lawsearch.proposers.library import FAMILIES, Columns, LibraryProposer, ParameterNames


def make_context(inputs, X, Y=None, max_parameters=None, seed=0) -> SearchContext:
    X = np.asarray(X, dtype=float)
    Y = np.full((len(X), 1), 2.5) if Y is None else np.asarray(Y, dtype=float).reshape(len(X), -1)
    return SearchContext(
        inputs=tuple(inputs),
        targets=("loss",),
        X=X,
        Y=Y,
        groups=np.array(["all"] * len(X)),
        rng=np.random.default_rng(seed),
        max_parameters=max_parameters,
        best=[ScoredLaw(formula="E + A/params**alpha", complexity=8, n_parameters=3, val_error=0.1)],
    )


def _rng():
    return np.random.default_rng(42)


def two_positive(max_parameters=None):
    X = np.exp(_rng().uniform([16, 20], [23, 27], size=(40, 2)))
    return make_context(("params", "tokens"), X, max_parameters=max_parameters)


def one_negative(max_parameters=None):
    X = _rng().uniform(-2, 3, size=(40, 1))
    return make_context(("log_flops",), X, Y=-_rng().uniform(0.1, 0.5, 40), max_parameters=max_parameters)


def five_proportions(max_parameters=None):
    P = _rng().dirichlet(np.ones(5), size=40)
    P[P < 0.1] = 0.0  # mixtures that leave some domains out
    return make_context([f"proportion_domain_{i}" for i in range(1, 6)], P, max_parameters=max_parameters)


def four_inputs(max_parameters=None):
    rng = _rng()
    X = np.column_stack([
        rng.uniform(1e-4, 2e-2, 40),  # lr: in (0, 1], but not a proportion
        2.0 ** rng.integers(4, 12, 40),
        np.exp(rng.uniform(22, 29, 40)),
        np.exp(rng.uniform(19, 21, 40)),
    ])
    return make_context(("lr", "bsz", "data_size", "params"), X, max_parameters=max_parameters)


CONTEXTS = {"two_positive": two_positive, "one_negative": one_negative,
            "five_proportions": five_proportions, "four_inputs": four_inputs}


def walk(proposer, context, batch=7):
    """Every proposal the library makes, in batches, until it runs dry."""
    out = []
    while batch_out := proposer.propose(context, batch):
        out += batch_out
    return out


def same_up_to_renaming(a: Law, b: Law) -> bool:
    if a.variables != b.variables or a.n_parameters != b.n_parameters:
        return False
    source = [a.symbol(p) for p in a.parameters]
    for target in itertools.permutations(b.symbol(p) for p in b.parameters):
        if a.expr.xreplace(dict(zip(source, target))) == b.expr:
            return True
    return False


def test_is_a_proposer():
    assert isinstance(LibraryProposer(), Proposer)
    assert LibraryProposer.name == "library"


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_every_form_parses_and_is_safe_for_its_columns(name):
    context = CONTEXTS[name]()
    columns = Columns.from_context(context)
    proposals = walk(LibraryProposer(), context)
    assert len(proposals) >= 6
    laws = []
    for proposal in proposals:
        assert proposal.source == "library" and proposal.note in dict(FAMILIES)
        law = Law.parse(proposal.formula, context.inputs)
        assert law.variables, proposal.formula
        assert all(p not in context.inputs and not p.startswith("_") for p in law.parameters)
        # logs and non-integer powers only of columns that are all positive
        assert set(law.log_domain_variables()) <= set(columns.positive), proposal.formula
        laws.append(law)
    assert len({law.expr for law in laws}) == len(laws), "a form was proposed twice"


def test_column_kinds():
    assert Columns.from_context(two_positive()).positive == ("params", "tokens")
    assert Columns.from_context(one_negative()).positive == ()
    proportions = Columns.from_context(five_proportions())
    assert proportions.positive == () and len(proportions.unit) == 5
    four = Columns.from_context(four_inputs())
    assert four.positive == ("lr", "bsz", "data_size", "params") and four.unit == ("lr",)


@pytest.mark.parametrize("name", sorted(CONTEXTS))
@pytest.mark.parametrize("cap", [2, 3, 5])
def test_max_parameters_is_respected(name, cap):
    context = CONTEXTS[name](max_parameters=cap)
    proposals = walk(LibraryProposer(), context)
    assert proposals
    assert all(Law.parse(p.formula, context.inputs).n_parameters <= cap for p in proposals)
    if cap < 4:
        assert len(proposals) < len(walk(LibraryProposer(), CONTEXTS[name]()))


def test_chinchilla_is_among_the_first_proposals():
    context = two_positive()
    first = LibraryProposer().propose(context, 3)
    chinchilla = Law.parse("E + A*params**-alpha + B*tokens**-beta", context.inputs)
    assert any(same_up_to_renaming(Law.parse(p.formula, context.inputs), chinchilla) for p in first)


def test_known_laws_are_in_the_library():
    """Human laws of the SLDBench tasks appear (up to renaming) for matching inputs."""
    cases = {
        ("params", "tokens"): ["E + A/(params**alpha*tokens**beta)", "E + (A/params + B/tokens)**alpha"],
        ("log_flops",): ["E + A/(1 + exp(-k*(log_flops - z0)))", "E + A*log_flops + B*log_flops**2"],
        ("sft_data_size",): ["E + A/(K + sft_data_size**alpha)"],
        ("num_params", "parallel_size"): ["E + A*(num_params*(1 + k*log(parallel_size)))**(-alpha)"],
    }
    for inputs, formulas in cases.items():
        X = two_positive().X[:, : len(inputs)] if inputs != ("log_flops",) else one_negative().X
        laws = [Law.parse(p.formula, inputs) for p in walk(LibraryProposer(), make_context(inputs, X))]
        for formula in formulas:
            human = Law.parse(formula, inputs)
            assert any(same_up_to_renaming(law, human) for law in laws), formula


def test_all_families_contribute():
    notes = {p.note for p in walk(LibraryProposer(), two_positive())}
    assert notes == {name for name, _ in FAMILIES} - {"proportions", "response_surface"}
    assert "proportions" in {p.note for p in walk(LibraryProposer(), five_proportions())}
    assert "response_surface" in {p.note for p in walk(LibraryProposer(), four_inputs())}
    notes_one = {p.note for p in walk(LibraryProposer(), one_negative())}
    assert {"log_linear", "log_polynomial", "sigmoid", "exponential"} <= notes_one


def test_first_batch_spans_the_families():
    notes = [p.note for p in LibraryProposer().propose(two_positive(), len(FAMILIES))]
    assert len(set(notes)) >= len(FAMILIES) - 2


def test_walk_is_exhaustive_then_empty_and_deterministic():
    context = four_inputs(max_parameters=7)
    proposer = LibraryProposer()
    first = walk(proposer, context)
    assert proposer.propose(context, 10) == []
    again = walk(LibraryProposer(), four_inputs(max_parameters=7), batch=50)
    assert [p.formula for p in first] == [p.formula for p in again]


def test_laws_already_scored_are_skipped():
    context = two_positive()
    everything = walk(LibraryProposer(), context)
    context.seen = {Law.parse(p.formula, context.inputs).canonical for p in everything[:5]}
    rest = walk(LibraryProposer(), context)
    assert [p.formula for p in rest] == [p.formula for p in everything[5:]]


def test_a_new_task_restarts_the_library():
    proposer = LibraryProposer()
    walk(proposer, two_positive())
    assert proposer.propose(one_negative(), 3)


def test_parameter_names_avoid_inputs_and_functions():
    names = ParameterNames(("E", "A", "alpha"))
    assert names.new("E").name == "E1"
    assert names.coefficient().name == "B"
    assert names.exponent().name == "beta"
    assert names.new("log").name == "log1" and names.new("lambda").name == "lambda1"
    # a task whose inputs are named like the library's parameters
    X = np.exp(_rng().uniform(1, 5, size=(30, 2)))
    context = make_context(("E", "A"), X)
    first = Law.parse(LibraryProposer().propose(context, 1)[0].formula, context.inputs)
    assert first.variables == ("E", "A") and first.n_parameters == 5
    assert all(isinstance(s, sympy.Symbol) for s in first.expr.free_symbols)


def _recovers(formula: str, truth: dict[str, float], inputs: tuple[str, ...], X: np.ndarray, family: str,
              noise: float = 0.002, rtol: float = 0.1, options: FitOptions | None = None,
              same: dict[str, float] | None = None) -> None:
    """The library proposes ``formula`` (up to renaming) as a law of ``family``, and fitting it to noisy
    data drawn from ``truth`` recovers every coefficient within ``rtol`` (or those of ``same``, the
    same law with its terms' labels swapped)."""
    law = Law.parse(formula, inputs)
    clean = law.evaluate(X, [truth[p] for p in law.parameters])
    Y = clean * (1 + noise * np.random.default_rng(7).standard_normal(len(X)))
    proposals = walk(LibraryProposer(), make_context(inputs, X, Y=Y))
    assert any(p.note == family and same_up_to_renaming(Law.parse(p.formula, inputs), law) for p in proposals), formula
    fit = fit_law(law, X, Y[:, None], np.array(["all"] * len(X)), ("loss",),
                  options or FitOptions(n_starts=64, n_local=6), seed=0)
    fitted = fit.fits[0].as_dict(law)
    matches = [all(fitted[name] == pytest.approx(value, rel=rtol) for name, value in t.items())
               for t in (truth, same or truth)]
    assert any(matches), fitted


def test_moving_valley_recovers_an_optimum_that_moves_with_size():
    rng = _rng()
    params = np.exp(rng.uniform(16, 23, 60))
    lr = np.exp(rng.uniform(-10, -3, 60))
    truth = {"E": 2.0, "A": 0.05, "z0": 0.5, "alpha": -0.35, "B": 30.0, "beta": 0.2}
    _recovers("E + B/params**beta + A*(log(lr) - z0 - alpha*log(params))**2", truth, ("lr", "params"),
              np.column_stack([lr, params]), "moving_valley", rtol=0.15)


def test_power_interaction_recovers_a_saturating_count_and_a_log_log_term():
    rng = _rng()
    params = np.exp(rng.uniform(16, 22, 150))
    experts = 2.0 ** rng.integers(0, 10, 150)
    truth = {"E": 1.5, "A": 40.0, "alpha": 0.2, "beta": 0.15, "gamma": 0.004, "K": 40.0}
    saturated = "log(experts/(1 + experts/K))"
    _recovers(f"E + A*exp(-alpha*log(params) - beta*{saturated} + gamma*log(params)*{saturated})", truth,
              ("params", "experts"), np.column_stack([params, experts]), "power_interaction", noise=0.0005, rtol=0.15,
              options=FitOptions())


@pytest.mark.parametrize("formula, truth, same", [
    ("(A + B*log(x))/(1 + C*log(x))", {"A": 3.0, "B": -0.2, "C": 0.05}, None),
    ("E + A*exp(alpha*log(x)) + B*exp(-beta*log(x))", {"E": 1.0, "A": 0.01, "alpha": 0.5, "B": 2.0, "beta": 0.4},
     {"E": 1.0, "A": 2.0, "alpha": -0.4, "B": 0.01, "beta": -0.5}),
])
def test_log_shapes_recover_rational_and_u_shaped_laws(formula, truth, same):
    x = np.geomspace(1.0, 1e4, 60)
    _recovers(formula, truth, ("x",), x[:, None], "log_shapes", same=same)


def test_effective_repeats_recover_diminishing_returns_of_repeated_data():
    rng = _rng()
    params = np.exp(rng.uniform(17, 21, 150))
    unique = np.exp(rng.uniform(19, 22, 150))
    tokens = unique * np.exp(rng.uniform(0, 4, 150))  # up to ~55 epochs
    truth = {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 400.0, "beta": 0.28, "R": 8.0}
    _recovers("E + A/params**alpha + B/(R*unique*(1 - exp(-tokens/(R*unique))))**beta", truth,
              ("params", "tokens", "unique"), np.column_stack([params, tokens, unique]), "effective_repeats",
              noise=0.001, rtol=0.15)


def test_response_surface_recovers_a_valley_whose_optimum_moves_with_two_inputs():
    """Three inputs: loss is quadratic in log lr and log bsz, with optima that move with log size;
    the full second-order surface (10 linear parameters) is proposed and fitted exactly."""
    rng = _rng()
    X = np.column_stack([np.exp(rng.uniform(-9, -4, 200)), 2.0 ** rng.integers(4, 12, 200),
                         np.exp(rng.uniform(18, 22, 200))])
    truth = {"E": 9.0, "A": -0.5, "B": 0.04, "C": 0.3, "D": 0.02, "F": -0.6, "G": 0.01,
             "H": 0.01, "K": 0.03, "M": -0.005}
    z = "log(lr)", "log(bsz)", "log(params)"
    formula = (f"E + A*{z[0]} + B*{z[0]}**2 + C*{z[1]} + D*{z[1]}**2 + F*{z[2]} + G*{z[2]}**2"
               f" + H*{z[0]}*{z[1]} + K*{z[0]}*{z[2]} + M*{z[1]}*{z[2]}")
    _recovers(formula, truth, ("lr", "bsz", "params"), X, "response_surface", noise=0.0002)


def test_the_response_surface_needs_three_inputs_and_room_for_its_parameters():
    assert "response_surface" not in {p.note for p in walk(LibraryProposer(), two_positive())}
    assert "response_surface" not in {p.note for p in walk(LibraryProposer(), four_inputs(max_parameters=14))}
    surfaces = [p for p in walk(LibraryProposer(), four_inputs(max_parameters=15)) if p.note == "response_surface"]
    assert len(surfaces) == 1 and Law.parse(surfaces[0].formula, four_inputs().inputs).n_parameters == 15
