"""The PySR proposer: settings mapping, translation of PySR's equation strings, missing Julia.

The real-Julia test is marked ``julia`` and skipped where Julia / PySR cannot start.
"""

from __future__ import annotations

import importlib
import itertools
import os
import shutil
import sys
import types
import urllib.error

import numpy as np
import pandas as pd
import pytest
import sympy

from lawsearch.errors import EngineUnavailable, FormulaError, TaskError
from lawsearch.formula import Law
from lawsearch.formula.grammar import engine_operators
from lawsearch.proposers.sr import pysr as pysr_proposer
from lawsearch.proposers.base import Proposer, ScoredLaw, SearchContext
from lawsearch.proposers.sr.pysr import PySRProposer, PySRSettings, equations_to_models, load_pysr
from lawsearch.proposers.sr import PYSR_FUNCTIONS, rewrite_calls, translate
from lawsearch.proposers.sr.rewrite import GRAMMAR_UNARY
from lawsearch.proposers.sr.settings import SUPPORTED_BINARY, SUPPORTED_UNARY

INPUTS = ("N", "D")
PYSR_VARS = ["x0", "x1"]


def pysr_translate(text: str, inputs=INPUTS, **kw):
    return translate(text, PYSR_VARS[: len(inputs)], inputs, functions=PYSR_FUNCTIONS, **kw)


def same_form(law: Law, reference: Law) -> bool:
    """Equal up to the names of the parameters."""
    if law.n_parameters != reference.n_parameters:
        return False
    mine = [law.symbol(p) for p in law.parameters]
    return any(
        law.expr.xreplace(dict(zip(mine, map(reference.symbol, perm)))) == reference.expr
        for perm in itertools.permutations(reference.parameters)
    )


def context(seed: int = 0, **kw) -> SearchContext:
    rng = np.random.default_rng(7)
    N = 10 ** rng.uniform(7, 10, 80)
    D = 10 ** rng.uniform(9, 12, 80)
    y = 1.69 + 406.4 * N**-0.34 + 410.7 * D**-0.28
    return SearchContext(
        inputs=INPUTS, targets=("loss",), X=np.column_stack([N, D]), Y=y[:, None], groups=np.zeros(80),
        rng=np.random.default_rng(seed), max_parameters=6, **kw,
    )


# ---------------------------------------------------------------------- settings mapping
def test_settings_map_onto_pysr_keywords():
    s = PySRSettings(maxsize=20, niterations=15, populations=8, timeout_in_seconds=30)
    kw = s.to_pysr_kwargs(seed=42)
    assert kw["binary_operators"] == ["+", "-", "*", "/", "^"]
    assert kw["unary_operators"] == ["exp", "log"]
    assert (kw["maxsize"], kw["niterations"], kw["populations"]) == (20, 15, 8)
    assert kw["timeout_in_seconds"] == 30.0
    assert kw["random_state"] == 42
    assert kw["deterministic"] is True and kw["parallelism"] == "serial"
    assert kw["constraints"] == {"^": (-1, 1)}
    assert kw["nested_constraints"] == {"exp": {"exp": 0, "log": 0}, "log": {"exp": 0, "log": 0}}
    assert kw["progress"] is False and kw["verbosity"] == 0
    assert kw["temp_equation_file"] is True and kw["delete_tempfiles"] is True  # nothing left in the cwd


def test_settings_mapping_variants():
    settings = PySRSettings(unary_operators=("exp", "sqrt"), binary_operators=("+", "*"), deterministic=False)
    kw = settings.to_pysr_kwargs(3)
    assert "constraints" not in kw  # no '^'
    assert kw["nested_constraints"] == {"exp": {"exp": 0}}
    assert kw["random_state"] == 3 and "deterministic" not in kw and "parallelism" not in kw
    unseeded = PySRSettings().to_pysr_kwargs()
    assert "random_state" not in unseeded and "deterministic" not in unseeded
    assert "nested_constraints" not in PySRSettings(nested_exp_log=True).to_pysr_kwargs()
    assert PySRSettings(exponent_complexity=3).to_pysr_kwargs()["constraints"] == {"^": (-1, 3)}
    assert PySRSettings(timeout_in_seconds=None).to_pysr_kwargs().get("timeout_in_seconds") is None
    extra = PySRSettings(extra={"batching": True, "maxsize": 12}).to_pysr_kwargs(1)
    assert extra["batching"] is True and extra["maxsize"] == 12  # extra wins


def test_settings_validation():
    s = PySRSettings.from_mapping({"unary_operators": "exp,log,sqrt", "maxsize": 18})
    assert s.unary_operators == ("exp", "log", "sqrt") and s.maxsize == 18
    with pytest.raises(TaskError, match="sin"):
        PySRSettings(unary_operators=("sin",))
    with pytest.raises(TaskError, match="unknown setting"):
        PySRSettings.from_mapping({"max_size": 10})
    with pytest.raises(TaskError):
        PySRSettings(maxsize=2)
    with pytest.raises(TaskError):
        PySRSettings(precision=8)


# ---------------------------------------------------------------------- translation of PySR's output
# ``equation`` strings as SymbolicRegression.jl prints them (string_tree): infix + - * / ^ with
# parentheses, functions by name (square, cube, neg, inv, and safe_* shown under their plain names),
# negative constants written "+ -0.5", Float32 exponents as "1.0f-5" in older versions.
@pytest.mark.parametrize(
    ("equation", "expected"),
    [
        ("((x0 ^ -0.34) * 406.4) + (((x1 ^ -0.28) * 410.7) + 1.69)", "E + A*N**a + B*D**b"),
        ("(406.4 / (x0 ^ 0.34)) + ((410.7 * inv(x1 ^ 0.28)) + 1.69)", "E + A*N**a + B*D**b"),  # signs merge
        ("1.69 + exp(6.007 + (-0.34 * log(x0))) + exp(6.018 + (log(x1) * -0.28))", "E + A*N**a + B*D**b"),
        ("(square(x0) * 2.5382) + -0.5", "c + a*N**2"),
        ("neg(cube(x1)) * 1.5f-5 + 3.0", "c + a*D**3"),
        ("sqrt(x0) * 0.5 + log(x1) * 1.0e-3", "a*sqrt(N) + b*log(D)"),
        ("max(x0 * 2.0, x1) + -1.0", "Max(a*N, D) + c"),
    ],
)
def test_translates_pysr_equation_strings(equation, expected):
    assert same_form(pysr_translate(equation).law, Law.parse(expected, INPUTS))


def test_pysr_translation_matches_the_engine_prediction():
    eq = "((x0 ^ -0.34) * 406.4) + (((x1 ^ -0.28) * 410.7) + 1.69)"
    tr = pysr_translate(eq)
    X = np.array([[1e8, 1e10], [2e9, 3e11]])
    expected = X[:, 0] ** -0.34 * 406.4 + X[:, 1] ** -0.28 * 410.7 + 1.69
    assert tr.law.evaluate(X, [tr.init[p] for p in tr.law.parameters]) == pytest.approx(expected, rel=1e-12)


def test_pysr_function_names_are_rewritten_on_the_syntax_tree():
    assert rewrite_calls("square(x0) + inv(x1)", PYSR_FUNCTIONS) == "x0 ** 2 + 1 / x1"
    assert rewrite_calls("neg(x0 ^ 2.0)", PYSR_FUNCTIONS) == "-x0 ** 2.0"
    assert rewrite_calls("safe_log(x0) + safe_pow(x0, 0.5)", PYSR_FUNCTIONS) == "log(x0) + x0 ** 0.5"
    assert rewrite_calls("1.5f-5 * x0", PYSR_FUNCTIONS) == "1.5e-05 * x0"
    # a negative constant base stays the base of the power
    law = pysr_translate("(-0.5 ^ x0) + x1").law
    assert law.expr.has(sympy.Pow) and law.n_parameters == 1


@pytest.mark.parametrize("operator", sorted(SUPPORTED_UNARY))
def test_every_supported_unary_operator_and_its_guarded_twins_read_as_the_grammar(operator):
    """The operator tables come from the grammar: every unary operator a pysr: block may name, and the
    safe_/_abs twins SymbolicRegression.jl prints for the grammar's functions, translate to a law."""
    X = np.array([[2.0, 3.0], [5.0, 7.0]])
    law = pysr_translate(f"{operator}(x0 * 1.5)").law
    assert np.all(np.isfinite(law.evaluate(X, [1.5] * law.n_parameters)))
    if operator in GRAMMAR_UNARY:
        for twin in (f"safe_{operator}", f"{operator}_abs"):
            expected = Law.parse(f"{operator}(abs(N))" if twin.endswith("_abs") else f"{operator}(N)", ["N"], ["y"])
            assert Law.parse(rewrite_calls(f"{twin}(x0)", PYSR_FUNCTIONS).replace("x0", "N"), ["N"], ["y"]).expr \
                == expected.expr


@pytest.mark.parametrize("operator, function, of_abs", sorted(
    [(op, name, False) for op, name in engine_operators("pysr").items()]
    + [(op, name, True) for op, name in engine_operators("pysr", of_abs=True).items()]))
def test_every_grammar_function_pysr_has_round_trips_through_its_translator(operator, function, of_abs):
    """PySR's operator for a grammar function (the grammar's one table), printed as PySR prints a call,
    translates to the same law as the grammar function itself (of ``abs`` for ``logm``, ``sqrtm``); a pysr:
    block may name it."""
    binary = function not in GRAMMAR_UNARY
    argument = "abs(x0 * 1.5)" if of_abs else "x0 * 1.5"
    engine_text = f"{operator}(x0 * 1.5, x1)" if binary else f"{operator}(x0 * 1.5)"
    grammar_text = f"{function}({argument}, x1)" if binary else f"{function}({argument})"
    law = pysr_translate(engine_text).law
    assert same_form(law, translate(grammar_text, PYSR_VARS, INPUTS).law), (law.text, grammar_text)
    assert operator in (SUPPORTED_BINARY if binary else SUPPORTED_UNARY) or of_abs


def test_pysr_translation_rejects_unsupported_and_unsafe_text():
    with pytest.raises(FormulaError, match="erf"):
        pysr_translate("erf(x0) * 2.0")
    with pytest.raises(FormulaError):
        pysr_translate("__import__('os').system('true')")
    with pytest.raises(FormulaError):
        pysr_translate("x0 + Inf")
    with pytest.raises(FormulaError, match="square"):
        pysr_translate("square(x0, x1)")


def test_equations_table_is_read_from_its_equation_column():
    # what PySRRegressor.equations_ looks like (sympy_format holds sympy objects, never used)
    x0 = sympy.Symbol("x0")
    table = pd.DataFrame(
        {
            "complexity": [1, 5, 9],
            "loss": [0.12, 0.004, 1e-6],
            "equation": ["3.8552167", "(x0 ^ -0.2) * 12.5", "((x0 ^ -0.34) * 406.4) + ((x1 ^ -0.28) * 410.7)"],
            "score": [0.0, 0.8, 1.7],
            "sympy_format": [sympy.Float(3.8552167), 12.5 * x0**-0.2, x0],
            "lambda_format": [None, None, None],
        }
    )
    models = equations_to_models(table)
    assert [m.expression for m in models] == list(table["equation"])
    assert [m.length for m in models] == [1, 5, 9]
    assert models[2].criterion == pytest.approx(-1.7)
    assert len(equations_to_models([table, table])) == 6  # multi-output: a list of tables


# ---------------------------------------------------------------------- engine unavailable
def test_url_error_at_import_is_engine_unavailable_with_instructions(monkeypatch):
    calls = []

    def failing_import(name, *args, **kwargs):
        if name == "pysr":
            calls.append(name)
            raise urllib.error.URLError("[Errno -2] Name or service not known")
        return importlib.import_module(name, *args, **kwargs)

    monkeypatch.setattr(pysr_proposer.importlib, "import_module", failing_import)
    p = PySRProposer()
    assert isinstance(p, Proposer) and p.name == "pysr"
    with pytest.raises(EngineUnavailable) as info:
        p.propose(context(), 4)
    message = str(info.value)
    assert "URLError" in message and "Julia" in message
    assert "pip install 'lawsearch[pysr]'" in message and "PYTHON_JULIAPKG_EXE" in message
    with pytest.raises(EngineUnavailable):
        p.propose(context(), 4)
    assert calls == ["pysr"]  # the failed start is not retried on every call


def test_missing_pysr_package_is_engine_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pysr", None)
    with pytest.raises(EngineUnavailable, match="not installed"):
        load_pysr()


def test_any_exception_at_import_is_engine_unavailable(monkeypatch):
    def broken(name, *args, **kwargs):
        raise RuntimeError("JuliaError: could not load SymbolicRegression")

    monkeypatch.setattr(pysr_proposer.importlib, "import_module", broken)
    with pytest.raises(EngineUnavailable, match="JuliaError"):
        load_pysr()


# ---------------------------------------------------------------------- the loop with a stand-in PySR
class FakePySRRegressor:
    """Stands in for pysr.PySRRegressor: records its keywords, returns a hand-written front."""

    instances: list[FakePySRRegressor] = []
    front = [
        ("((x0 ^ -0.34) * 406.4) + (((x1 ^ -0.28) * 410.7) + 1.69)", 9, 1e-8, 2.0),
        ("(x0 ^ -0.3) * 30.0 + 2.0", 5, 1e-3, 0.5),
        ("erf(x0)", 2, 0.5, 0.0),  # not in our grammar: dropped
        ("3.1", 1, 0.6, 0.0),  # no input: dropped
    ]

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        FakePySRRegressor.instances.append(self)

    def fit(self, X, y):
        self.X, self.y = X, y
        self.equations_ = pd.DataFrame(
            [{"equation": e, "complexity": c, "loss": l, "score": s} for e, c, l, s in self.front]
        )
        return self


@pytest.fixture
def fake_pysr(monkeypatch):
    FakePySRRegressor.instances = []
    module = types.ModuleType("pysr")
    module.PySRRegressor = FakePySRRegressor
    monkeypatch.setitem(sys.modules, "pysr", module)
    return FakePySRRegressor


def test_proposer_translates_the_whole_equations_table(fake_pysr):
    p = PySRProposer(niterations=5, use_log_inputs=False)
    proposals = p.propose(context(seed=3), 10)
    reg = fake_pysr.instances[0]
    assert reg.kwargs["niterations"] == 5 and reg.kwargs["deterministic"] is True
    assert isinstance(reg.kwargs["random_state"], int)
    assert reg.X.shape == (80, 2)
    assert len(proposals) == 2
    assert all(q.source == "pysr" and q.meta["engine"] == "pysr" for q in proposals)
    laws = [Law.parse(q.formula, INPUTS) for q in proposals]
    assert sorted(law.n_parameters for law in laws) == [3, 5]
    assert p.propose(context(seed=3), 10) == []  # nothing new: the same front again


def test_proposer_log_runs_and_residual_runs(fake_pysr):
    parent = "E + A*N**(-alpha)"
    p = PySRProposer(niterations=5)
    ctx = context(seed=4, best=[ScoredLaw(parent, 7, 3, 0.01, "library")])
    p.propose(ctx, 10)  # raw
    p.propose(ctx, 10)  # log inputs
    assert np.allclose(fake_pysr.instances[1].X, np.log(ctx.X))
    residual = p.propose(ctx, 10)  # y - f(x)
    assert p.last_run["mode"] == "add"
    assert residual and all(q.parents == (parent,) for q in residual)
    assert all("A/N**alpha" in q.formula for q in residual)


# ---------------------------------------------------------------------- real PySR (needs Julia)
def _julia_or_skip():
    if shutil.which("julia") is None and not os.environ.get("PYTHON_JULIAPKG_EXE"):
        pytest.skip("Julia is not installed here (no `julia` on PATH, PYTHON_JULIAPKG_EXE unset)")
    try:
        load_pysr()
    except EngineUnavailable as exc:
        pytest.skip(f"PySR cannot start: {exc}")


@pytest.mark.julia
def test_real_pysr_run_finds_a_parseable_law():
    _julia_or_skip()
    p = PySRProposer(niterations=10, populations=4, maxsize=15, timeout_in_seconds=120, use_log_inputs=False)
    proposals = p.propose(context(seed=0), 10)
    assert proposals
    assert all(Law.parse(q.formula, INPUTS).variables for q in proposals)
