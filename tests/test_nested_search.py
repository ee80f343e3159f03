"""The search seeds a mutated law's fit from its nested parent's fit (lawsearch.nested, issue 17 item 4)."""

from __future__ import annotations

import numpy as np

from lawsearch.fit import FitOptions
from lawsearch.formula import Law
from lawsearch.search.scoring import EvalPayload, evaluate_batch

SEARCH_FIT = FitOptions(n_starts=24, n_local=3, max_nfev=200, tol=1e-8)  # the search's cheap fits


def _poly2(cross: bool) -> str:
    """exp(poly2(log inputs)) in four inputs: 9 parameters without cross terms, 15 with them."""
    logs = [f"log({v})" for v in "abcd"]
    terms = ["k0"] + [f"k{i + 1}*{lg}" for i, lg in enumerate(logs)] + [f"q{i + 1}*{lg}**2" for i, lg in enumerate(logs)]
    if cross:
        terms += [f"c{i + 1}{j + 1}*{logs[i]}*{logs[j]}" for i in range(4) for j in range(i + 1, 4)]
    return f"exp({' + '.join(terms)})"


def _huber_log_loss(formula: str, fitted: list, X: np.ndarray, y: np.ndarray) -> float:
    """The fitter's objective (Huber, threshold 1e-3, on log residuals) of a record's fitted parameters."""
    (_, _, theta), = fitted
    r = np.abs(np.log(Law.parse(formula, list("abcd")).evaluate(X, theta)) - np.log(y))
    return float(0.5 * np.sum(np.where(r <= 1e-3, r * r, 2e-3 * r - 1e-6)))


def test_a_mutation_fitted_from_its_nested_parent_fits_train_at_least_as_well():
    rng = np.random.default_rng(4)
    X = 10.0 ** rng.uniform(0.0, 2.0, (100, 4))
    large = Law.parse(_poly2(cross=True), list("abcd"))
    truth = rng.normal(0.0, 0.1, large.n_parameters)
    y = large.evaluate(X, truth) * (1 + 0.01 * rng.standard_normal(100))
    fit_rows, val_rows = slice(0, 80), slice(80, 100)
    payload = EvalPayload(
        inputs=tuple("abcd"), targets=("y",), X_fit=X[fit_rows], Y_fit=y[fit_rows, None],
        groups_fit=np.array(["all"] * 80, dtype=object), X_val=X[val_rows], Y_val=y[val_rows, None],
        groups_val=np.array(["all"] * 20, dtype=object), max_parameters=None, max_complexity=500,
        fit_options=SEARCH_FIT, seed=0, positive_inputs=tuple("abcd"))
    parent, = evaluate_batch([_poly2(cross=False)], payload)
    assert parent["status"] == "ok" and parent["n_parameters"] == 9
    child, = evaluate_batch([_poly2(cross=True)], payload, [(parent["formula"], parent["fitted"])])
    assert child["status"] == "ok" and child["n_parameters"] == 15
    parent_loss = _huber_log_loss(parent["formula"], parent["fitted"], X[fit_rows], y[fit_rows])
    child_loss = _huber_log_loss(child["formula"], child["fitted"], X[fit_rows], y[fit_rows])
    assert child_loss <= parent_loss
    # a law the parent is not nested in gets no start from it, and is still fitted
    other, = evaluate_batch(["k0 + k1*log(a) + k2*log(b)"], payload, [(parent["formula"], parent["fitted"])])
    assert other["status"] == "ok"
