"""The safe formula parser: variables vs parameters, rejection, printers, numerics."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from lawsearch.errors import FormulaError
from lawsearch.formula import Law

INPUTS = ("params", "tokens")
CHINCHILLA = "E + A/params**alpha + B/tokens**beta"


def test_inputs_are_variables_and_other_names_parameters_in_text_order():
    law = Law.parse(CHINCHILLA, INPUTS)
    assert law.variables == ("params", "tokens")
    assert law.parameters == ("E", "A", "alpha", "B", "beta")
    assert law.n_parameters == 5


@pytest.mark.parametrize("name", ["N", "E", "S", "I", "Q", "O", "beta", "gamma", "zeta", "lambda_"])
def test_sympy_builtin_names_are_plain_symbols(name):
    law = Law.parse(f"{name} * x + 1", ["x"])
    assert law.parameters == (name,)
    assert law.evaluate(np.array([[2.0]]), [3.0])[0] == pytest.approx(7.0)


def test_complexity_is_tree_size():
    assert Law.parse("a*x", ["x"]).complexity == 3  # Mul(a, x)
    assert Law.parse(CHINCHILLA, INPUTS).complexity == len(list(sympy.preorder_traversal(Law.parse(CHINCHILLA, INPUTS).expr)))


def test_leading_target_is_accepted_only_when_it_names_the_target():
    assert Law.parse(f"loss = {CHINCHILLA}", INPUTS, "loss") == Law.parse(CHINCHILLA, INPUTS)
    assert Law.parse(f"y = {CHINCHILLA}", INPUTS, "loss") == Law.parse(CHINCHILLA, INPUTS)
    with pytest.raises(FormulaError, match="left-hand side 'accuracy' does not name the target"):
        Law.parse(f"accuracy = {CHINCHILLA}", INPUTS, "loss")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('touch PWNED')", "call of \"__import__\\('os'\\).system\" is not allowed"),
        ("__import__('os')", "unknown function '__import__'"),
        ("x.real", "Attribute 'x.real' is not allowed"),
        ("x[0]", "Subscript 'x\\[0\\]' is not allowed"),
        ("(lambda: 1)()", "call of 'lambda: 1' is not allowed"),
        ("lambda: x", "Lambda"),
        ("'text'", "constant 'text' is not a number"),
        ("open('f')", "unknown function 'open'"),
        ("erf(x)", "unknown function 'erf'"),
        ("__class__ + x", "name '__class__' is not allowed"),
        ("x if x else 1", "IfExp"),
        ("[x]", "List"),
        ("x == 1", "Compare"),
        ("y = y = x", "cannot parse"),
        ("x +", "cannot parse formula"),
        ("", "empty formula"),
        ("x / 0", "division by zero"),
        ("log(x, base=2)", "keyword arguments"),
        ("exp(x, 2)", "exp\\(\\) takes 1 argument"),
        ("x @ x", "operator MatMult"),
        ("1e999 * x", "not finite"),
        ("(2) ** (((3) ** (3)) ** (3)) * x", "beyond the range of floating point"),  # not computed exactly
        ("x + 10.0 ** -400", "constant '10.0 \\*\\* \\(-400\\)' is beyond the range of floating point"),
        ("log", "'log' is a function"),
    ],
)
def test_rejections_name_the_token(text, message):
    with pytest.raises(FormulaError, match=message):
        Law.parse(text, ["x"])


def test_code_injection_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FormulaError):
        Law.parse("__import__('os').system('touch PWNED')", ["x"])
    assert not (tmp_path / "PWNED").exists()


def test_size_limits():
    with pytest.raises(FormulaError, match="syntax nodes"):
        Law.parse(" + ".join(["x"] * 300), ["x"])
    with pytest.raises(FormulaError, match="longer than"):
        Law.parse("x" + " " * 5000, ["x"])


def test_caret_is_a_power_with_power_precedence():
    assert Law.parse("a + x^2", ["x"]) == Law.parse("a + x**2", ["x"])


def test_functions_evaluate_like_numpy():
    law = Law.parse("sigmoid(x) + log10(x) + sqrt(x) + abs(-x) + tanh(x) + min(x, 2) + max(x, 2) + log1p(x)", ["x"])
    x = np.array([0.5, 1.0, 3.0])
    expected = 1 / (1 + np.exp(-x)) + np.log10(x) + np.sqrt(x) + x + np.tanh(x) + np.minimum(x, 2) + np.maximum(x, 2) + np.log1p(x)
    np.testing.assert_allclose(law.evaluate(x[:, None], []), expected)


def test_evaluate_and_gradient_match_finite_differences():
    law = Law.parse(CHINCHILLA, INPUTS)
    X = np.array([[1e8, 1e10], [1e9, 1e11], [3e9, 2e11]])
    theta = np.array([1.69, 406.4, 0.34, 410.7, 0.28])
    np.testing.assert_allclose(law.evaluate(X, theta), 1.69 + 406.4 / X[:, 0] ** 0.34 + 410.7 / X[:, 1] ** 0.28)
    jac = law.gradient(X, theta)
    for j in range(5):
        step = np.zeros(5)
        step[j] = 1e-6 * max(1.0, abs(theta[j]))
        numeric = (law.evaluate(X, theta + step) - law.evaluate(X, theta - step)) / (2 * step[j])
        np.testing.assert_allclose(jac[:, j], numeric, rtol=1e-5)


def test_overflow_gives_non_finite_values_not_errors():
    law = Law.parse("exp(a*x) + log(x)", ["x"])
    out = law.evaluate(np.array([[1e6], [-1.0]]), [10.0])
    assert not np.isfinite(out).any()


def test_linear_split_finds_jointly_linear_parameters():
    law = Law.parse(CHINCHILLA, INPUTS)
    split = law.linear_split()
    assert [law.parameters[i] for i in split.linear] == ["E", "A", "B"]
    X = np.array([[1e8, 1e10], [1e9, 1e11]])
    theta = np.array([0.0, 0.0, 0.34, 0.0, 0.28])
    np.testing.assert_allclose(split.design(X, theta)[:, 1], X[:, 0] ** -0.34)
    np.testing.assert_allclose(split.base(X, theta), 0.0)
    # a*b*x: a and b are each linear but not jointly; only one is projected
    assert len(Law.parse("a*b*x + c", ["x"]).linear_split().linear) == 2


def test_gradient_together_computes_each_shared_subexpression_once_with_the_same_values(monkeypatch):
    law = Law.parse(CHINCHILLA, INPUTS)
    X = np.array([[1e8, 1e10], [1e9, 1e11], [3e7, 2e12]])
    theta = np.array([1.69, 406.4, 0.34, 410.7, 0.28])
    separate = [np.broadcast_to(g(X, theta), (3,)) for g in law.gradient_functions()]
    calls = []
    power = np.power
    monkeypatch.setattr(np, "power", lambda *a: calls.append(1) or power(*a))
    together = law.gradient_together()(X, theta)
    # params**-alpha and tokens**-beta each appear in two derivatives (d/dA and d/dalpha, ...)
    assert len(calls) == 2
    assert all(np.array_equal(np.broadcast_to(a, (3,)), b) for a, b in zip(together, separate))
    calls.clear()
    [g(X, theta) for g in law.gradient_functions()]
    assert len(calls) == 4


def test_a_law_is_differentiated_once_whatever_the_order_of_its_parameters(monkeypatch):
    law = Law.parse("B/x**b + E", ["x"])
    assert law.in_text_order() is not law  # its text prints E first
    diff = sympy.diff
    calls = []
    monkeypatch.setattr(sympy, "diff", lambda *a: calls.append(a[1]) or diff(*a))
    law.gradient(np.ones((2, 1)), np.ones(3))
    law.in_text_order().gradient_together()
    law.in_text_order().linear_split()
    assert sorted(map(str, calls)) == ["B", "E", "b"]


def test_roles_of_parameters_and_domain_variables():
    law = Law.parse("E + A*exp(-b*x) + C*log(z) + w**2", ["x", "z", "w"])
    assert law.exponent_parameters() == ("b",)
    assert law.rate_parameters() == ("b",)  # exp(-b*x): a rate of x itself
    power_like = Law.parse("E + A*exp(-b*log(z)) + B*z**(-c)", ["z"])
    assert power_like.exponent_parameters() == ("b", "c") and power_like.rate_parameters() == ()
    assert law.log_domain_variables() == ("z",)


def test_printers():
    law = Law.parse(CHINCHILLA, INPUTS)
    assert "\\alpha" in law.to_latex() and "\\mathrm{params}" in law.to_latex()
    namespace: dict = {}
    exec(compile(law.to_python(), "<law>", "exec"), namespace)  # our own generated source, in a test
    assert namespace["law"](1e9, 1e11, 1.69, 406.4, 0.34, 410.7, 0.28) == pytest.approx(
        law.evaluate(np.array([[1e9, 1e11]]), [1.69, 406.4, 0.34, 410.7, 0.28])[0]
    )
    namespace = {}
    exec(compile(law.to_sympy(), "<law>", "exec"), namespace)
    assert sympy.simplify(namespace["law"] - law.expr) == 0


def test_canonical_key_ignores_parameter_names():
    assert Law.parse("a + b*x**c", ["x"]).canonical == Law.parse("k + m*x**q", ["x"]).canonical
    assert Law.parse("a + b*x**c", ["x"]).canonical != Law.parse("a + b*x**c + d", ["x"]).canonical


def test_canonical_key_ignores_the_order_the_text_wrote_the_law_in():
    written = Law.parse("B/(D_l + x**beta) + E", ["x"])
    printed = Law.parse(written.text, ["x"])  # E + B/(D_l + x**beta): parameters in another order
    assert written.parameters != printed.parameters and written.canonical == printed.canonical
    assert written.in_text_order().parameters == printed.in_text_order().parameters
    # renamed parameters never collide with an input of the same name
    assert Law.parse("a + p0", ["p0"]).canonical != Law.parse("2*p0", ["p0"]).canonical


def test_canonical_key_and_fit_order_do_not_depend_on_the_hash_seed():
    # sympy keeps the arguments of Min in a set, so its tree order changes with PYTHONHASHSEED;
    # a resumed run (a new process) must still deduplicate and fit exactly like the first.
    script = (
        "from lawsearch.formula import Law\n"
        "law = Law.parse('E + A/Min(N**g, K + D)**a + B/Max(D, K*N)**b', ['N', 'D'])\n"
        "print(law.canonical, law.in_text_order().parameters)\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True, text=True, check=True,
        ).stdout
        for seed in range(1, 6)
    }
    assert len(outputs) == 1, outputs


_atoms = st.sampled_from(["x", "z", "a", "b", "2", "0.5", "3"])


@st.composite
def formulas(draw, depth=3):
    if depth == 0 or draw(st.booleans()):
        return draw(_atoms)
    kind = draw(st.sampled_from(["+", "-", "*", "/", "**", "log", "exp", "sqrt", "tanh"]))
    left = draw(formulas(depth=depth - 1))
    if kind in ("log", "exp", "sqrt", "tanh"):
        return f"{kind}({left})"
    return f"({left}) {kind} ({draw(formulas(depth=depth - 1))})"


@settings(max_examples=150, deadline=None)
@given(formulas())
def test_text_round_trip(text):
    try:
        law = Law.parse(text, ["x", "z"])
    except FormulaError:
        return  # e.g. simplifies to a non-finite constant
    again = Law.parse(law.text, ["x", "z"])
    assert sympy.expand(again.expr - law.expr) == 0  # sympy may distribute a number over a sum
    assert set(again.parameters) == set(law.parameters)


def test_trigonometric_functions_and_pi():
    law = Law.parse("b1 - b2*x - atan(b3/(x - b4))/pi + c*sin(2*pi*x/p) + d*cos(x)", ["x"])
    assert law.parameters == ("b1", "b2", "b3", "b4", "c", "p", "d")
    theta = np.array([0.2, 1e-5, 1200.0, -180.0, 0.5, 12.0, 0.25])
    X = np.array([[-4800.0], [3.0]])
    b1, b2, b3, b4, c, p, d = theta
    x = X[:, 0]
    expected = b1 - b2 * x - np.arctan(b3 / (x - b4)) / np.pi + c * np.sin(2 * np.pi * x / p) + d * np.cos(x)
    assert np.allclose(law.evaluate(X, theta), expected, rtol=1e-14)
    step = 1e-6 * np.abs(theta)
    numeric = np.column_stack([(law.evaluate(X, theta + np.eye(7)[j] * step[j])
                                - law.evaluate(X, theta - np.eye(7)[j] * step[j])) / (2 * step[j]) for j in range(7)])
    assert np.allclose(law.gradient(X, theta), numeric, rtol=1e-5, atol=1e-12)
    assert Law.parse(law.text, ["x"]) == law and "pi" in law.text
    assert "atan" in law.to_latex() and "np.arctan" in law.to_python()
