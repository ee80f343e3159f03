"""Readable, role-based parameter names in the conventional orientation; the law predicts exactly as before."""

from __future__ import annotations

import numpy as np
import pytest

from lawsearch import Law, fit_law
from lawsearch.naming import parameter_roles, readable_fit


def _chinchilla_rows(seed: int = 0, n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([10 ** rng.uniform(6, 10, n), 10 ** rng.uniform(8, 12, n)])
    y = (1.69 + 406.4 * X[:, 0] ** -0.34 + 410.7 * X[:, 1] ** -0.28) * (1 + 0.005 * rng.normal(size=n))
    return X, y


def test_roles_constant_exponent_scale():
    law = Law.parse("c0 + c1*params**c2 + c3*exp(c4*tokens)", ["params", "tokens"])
    assert parameter_roles(law) == {"c0": "constant", "c1": "scale", "c2": "exponent", "c3": "scale",
                                    "c4": "exponent"}


def test_engine_names_become_chinchillas_and_predictions_are_identical():
    X, y = _chinchilla_rows()
    groups = np.array(["a"] * 40 + ["b"] * 40)
    law = Law.parse("c0 + c1*params**c2 + c3*tokens**c4", ["params", "tokens"])
    fit = fit_law(law, X, y, groups, ["loss"])
    readable = readable_fit(fit)
    assert readable.law.text == "E + A/params**alpha + B/tokens**beta"
    for group, values in readable.parameters().items():
        assert values["alpha"] == pytest.approx(0.34, abs=0.03) and values["alpha"] == -fit.parameters()[group]["c2"]
        assert values["beta"] == pytest.approx(0.28, abs=0.03)
        assert values["A"] == fit.parameters()[group]["c1"]
    before = fit.predict(X, groups, ["loss"])
    after = readable.predict(X, groups, ["loss"])
    np.testing.assert_allclose(after, before, rtol=1e-14, atol=0)
    assert Law.parse(readable.law.text, law.inputs).parameters == readable.law.parameters  # as law.json reads back


def test_a_negative_scale_is_written_with_its_sign_outside():
    rng = np.random.default_rng(1)
    x = 10 ** rng.uniform(1, 5, (60, 1))
    y = 3 - 0.4 * np.log(x[:, 0]) + 0.002 * rng.normal(size=60)
    fit = fit_law(Law.parse("k0 + k1*log(x)", ["x"]), x, y, np.zeros(60), ["y"])
    readable = readable_fit(fit)
    assert readable.law.text == "E - A*log(x)"
    [values] = readable.parameters().values()
    assert values["A"] == pytest.approx(0.4, rel=0.02)


def test_orientation_only_where_every_group_agrees():
    rng = np.random.default_rng(2)
    x = rng.uniform(1, 10, (80, 1))
    groups = np.array(["up"] * 40 + ["down"] * 40)
    y = np.where(groups == "up", 1 + 0.5 * x[:, 0], 1 - 0.5 * x[:, 0]) + 0.01 * rng.normal(size=80)
    fit = fit_law(Law.parse("c0 + c1*x", ["x"]), x, y, groups, ["y"])
    readable = readable_fit(fit)
    assert readable.law.text == "E + A*x"  # slopes of both signs: nothing to flip
    assert readable.parameters()["down"]["A"] < 0 < readable.parameters()["up"]["A"]


def test_names_avoid_the_inputs():
    X, y = _chinchilla_rows()
    law = Law.parse("c0 + c1*E**c2", ["E"])
    readable = readable_fit(fit_law(law, X[:, :1], y, np.zeros(len(y)), ["loss"]))
    assert "E" not in readable.law.parameters and readable.law.text.endswith("/E**alpha")
