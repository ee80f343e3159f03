"""Tests of the shared robust fitter (lawsearch.fit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import curve_fit

from lawsearch.errors import DataError, FitError
from lawsearch.fit import (
    EXPONENT_BOUNDS, PENALTY, RATE_BOUNDS, FitOptions, GroupFit, LawFit, fit_group, fit_law, pinned_parameter,
)
from lawsearch.fit import multistart
from lawsearch.fit.runs import Group, Runs
from lawsearch.formula import Law

CHINCHILLA = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}
CHINCHILLA_LAW = Law.parse("E + A/N**alpha + B/D**beta", ["N", "D"])


def chinchilla_data(seed: int, n: int = 150, noise: float = 0.001) -> tuple[np.ndarray, np.ndarray]:
    """N log-uniform 1e7..1e10, D log-uniform 1e9..1e12, multiplicative Gaussian noise."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([10 ** rng.uniform(7, 10, n), 10 ** rng.uniform(9, 12, n)])
    truth = [CHINCHILLA[p] for p in CHINCHILLA_LAW.parameters]
    y = CHINCHILLA_LAW.evaluate(X, truth) * (1 + noise * rng.standard_normal(n))
    return X, y


def chinchilla_truth() -> np.ndarray:
    return np.array([CHINCHILLA[p] for p in CHINCHILLA_LAW.parameters])


def within(theta: np.ndarray, truth: np.ndarray, rtol: float) -> bool:
    return bool(np.all(np.abs(np.asarray(theta) / truth - 1) < rtol))


def curve_fit_default(X: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Single-start scipy curve_fit from its default start (all ones); None if it gives up."""

    def f(X, E, A, alpha, B, beta):
        return E + A / X[:, 0] ** alpha + B / X[:, 1] ** beta

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return curve_fit(f, X, y)[0]
        except (RuntimeError, ValueError):
            return None


# ---------------------------------------------------------------------- the key test
def test_chinchilla_recovery_beats_single_start_curve_fit():
    """All five coefficients within 5% in >= 19 of 20 seeds; curve_fit from ones: far fewer.

    The noise is 0.1%: at 1% noise no estimator can meet the 5% criterion with ~150 rows
    (B's standard error is then ~20%, see test_chinchilla_one_percent_noise_reaches_the_optimum).
    """
    truth = chinchilla_truth()
    ours = theirs = 0
    for seed in range(20):
        X, y = chinchilla_data(seed)
        fit = fit_group(CHINCHILLA_LAW, X, y, seed=seed)
        assert fit.success and np.all(np.isfinite(fit.theta))
        ours += within(fit.theta, truth, 0.05)
        p = curve_fit_default(X, y)
        theirs += p is not None and within(p, truth, 0.05)
    assert ours >= 19, f"recovered in only {ours}/20 seeds"
    assert theirs <= 10, f"curve_fit recovered in {theirs}/20 seeds: the comparison is meaningless"
    assert ours - theirs >= 9


def test_chinchilla_one_percent_noise_reaches_the_optimum():
    """At 1% noise (the issue's setting) our objective is never worse than at the true parameters."""
    truth = chinchilla_truth()
    for seed in range(20):
        X, y = chinchilla_data(seed, noise=0.01)
        fit = fit_group(CHINCHILLA_LAW, X, y, seed=seed)
        r = np.abs(np.log(CHINCHILLA_LAW.evaluate(X, truth)) - np.log(y))
        at_truth = 0.5 * np.sum(np.where(r <= 1e-3, r * r, 2e-3 * r - 1e-6))  # Huber on log residuals
        assert fit.loss <= at_truth, f"seed {seed}: loss {fit.loss} > {at_truth} at the true parameters"
        # E and the exponents are well identified even at this noise level.
        assert within(fit.theta[[0, 2, 4]], truth[[0, 2, 4]], 0.15)


# ---------------------------------------------------------------------- other laws
def test_plain_loss_on_a_target_that_goes_negative():
    law = Law.parse("a*x**2 + b*x + c", ["x"])
    rng = np.random.default_rng(3)
    x = np.linspace(0.1, 5.0, 60)
    y = 1.5 * x**2 - 4.0 * x + 1.0
    assert y.min() < 0 < y.max()
    y = y + 0.01 * rng.standard_normal(x.size)
    fit = fit_group(law, x[:, None], y)
    assert fit.success
    assert within(fit.theta, np.array([1.5, -4.0, 1.0]), 0.03)
    with pytest.raises(FitError, match="positive target"):
        fit_group(law, x[:, None], y, FitOptions(loss="huber_log"))
    squared = fit_group(law, x[:, None], y, FitOptions(loss="squared"))
    assert np.allclose(squared.theta, np.polyfit(x, y, 2), rtol=1e-6)


def test_law_with_an_exponential_term():
    law = Law.parse("a*exp(-b*x) + c", ["x"])
    rng = np.random.default_rng(4)
    x = np.linspace(0.0, 6.0, 80)
    y = (3.0 * np.exp(-0.8 * x) + 0.5) * (1 + 0.001 * rng.standard_normal(x.size))
    fit = fit_group(law, x[:, None], y)
    assert fit.success
    assert within(fit.theta, np.array([3.0, 0.8, 0.5]), 0.01)


def test_purely_linear_law_is_solved_exactly_without_search():
    law = Law.parse("a + b*x + c*log(x)", ["x"])
    x = np.linspace(1.0, 100.0, 30)
    y = 2.0 + 0.5 * x - 0.3 * np.log(x)
    fit = fit_group(law, x[:, None], y, FitOptions(n_starts=1, n_local=1))
    assert fit.success
    np.testing.assert_allclose(fit.theta, [2.0, 0.5, -0.3], rtol=1e-10)
    assert fit.loss < 1e-20


def test_law_without_analytic_gradient_still_fits():
    law = Law.parse("abs(a*x) + b", ["x"])  # d|u|/du = sign(u) has no numpy form: finite differences
    x = np.linspace(0.5, 4.0, 40)
    fit = fit_group(law, x[:, None], 2.0 * x + 1.0)
    assert fit.success
    assert abs(abs(fit.theta[0]) - 2.0) < 1e-6 and abs(fit.theta[1] - 1.0) < 1e-6


def test_bounds_are_respected():
    X, y = chinchilla_data(1)
    options = FitOptions(bounds={"alpha": (0.5, 1.0), "E": (0.0, 1.0), "not_a_parameter": (0.0, 1.0)})
    fit = fit_group(CHINCHILLA_LAW, X, y, options)
    values = fit.as_dict(CHINCHILLA_LAW)
    assert 0.5 <= values["alpha"] <= 1.0
    assert 0.0 <= values["E"] <= 1.0
    assert fit.success and np.isfinite(fit.loss)


def test_a_steep_rate_beyond_the_exponent_bounds_is_recovered():
    """t in exp(t*r) is a rate (RATE_BOUNDS), not a power exponent: over r in [0, 1] a rate of -25
    (Ye et al.'s mixture law needs ~20) must not be clipped at EXPONENT_BOUNDS."""
    law = Law.parse("c + k*exp(t*r)", ["r"])
    assert law.rate_parameters() == ("t",) and RATE_BOUNDS[0] < -25 < EXPONENT_BOUNDS[0]
    r = np.linspace(0.0, 1.0, 40)
    y = 2.0 + 5.0 * np.exp(-25.0 * r)
    fit = fit_group(law, r[:, None], y)
    assert within(fit.theta, np.array([2.0, 5.0, -25.0]), 1e-4)


def test_a_fit_pressed_against_a_default_bound_is_degenerate():
    """A/log(x)**alpha imitates the power law x**-0.5 only with alpha past the exponent bound
    (and A growing with it): its best fit sits on the limit, so the limit shapes its extrapolation."""
    x = np.geomspace(1e9, 1e11, 30)[:, None]
    y = 2.0 + 300.0 * x ** -0.5
    groups = np.full(30, "g")
    log_law, power_law = Law.parse("c0 + A/log(x)**alpha", ["x"]), Law.parse("c0 + A/x**alpha", ["x"])
    pinned = fit_law(log_law, x, y, groups, ["y"])
    assert pinned.fits[0].as_dict(log_law)["alpha"] == pytest.approx(EXPONENT_BOUNDS[1])
    assert pinned_parameter(pinned) == ("degenerate fit: alpha = 10 (group 'g') is at the fitter's limit 10; "
                                        "the best fit lies beyond it")
    assert pinned_parameter(fit_law(power_law, x, y, groups, ["y"])) is None
    # a bound the options state (a human law's) is deliberate: a fit on it is not degenerate
    stated = FitOptions(bounds={"alpha": EXPONENT_BOUNDS})
    assert pinned_parameter(fit_law(log_law, x, y, groups, ["y"], stated), stated) is None


def _grid_mixtures(rng: np.random.Generator, n: int) -> np.ndarray:
    """n mixtures of 5 domains with proportions in quarters (like the shared mixture data)."""
    X = rng.integers(0, 5, (n, 5)).astype(float)
    X[X.sum(axis=1) == 0, 0] = 1.0
    return X / X.sum(axis=1, keepdims=True)


def test_the_default_tolerance_polishes_a_flat_mixture_valley_to_its_end():
    """Ye et al.'s mixture law on grid mixtures: under the Huber loss, scipy's tolerance of
    1e-8 stops the joint polish before the bottom of the flat c-k valley; the default does not."""
    rng = np.random.default_rng(31)
    X = _grid_mixtures(rng, 20)
    y = (2.15 + 0.0246 * np.exp(X @ np.array([-11.5, 5.0, 5.0, 4.8, 2.8]))) * (1 + 0.01 * rng.standard_normal(20))
    law = Law.parse("c + k*exp(t2*r2 + t3*r3 + t4*r4 + t5*r5)", ["r1", "r2", "r3", "r4", "r5"])
    tight, loose = fit_group(law, X, y), fit_group(law, X, y, FitOptions(tol=1e-8))
    assert FitOptions().tol == 1e-10 and tight.success and loose.success
    assert tight.loss < loose.loss * (1 - 5e-3)


def test_the_polish_lowers_the_huber_threshold_in_steps(monkeypatch):
    """Ye et al.'s mixture law and the same law without its redundant rate (the proportions sum
    to 1) are one function class.  With 1% noise against the 0.1% threshold the Huber loss is
    nearly absolute: a polish straight at that threshold leaves the short form well above the
    optimum the redundant form reaches; lowering the threshold in steps gets both there."""
    names = ["r1", "r2", "r3", "r4", "r5"]
    full = Law.parse("c + k*exp(t1*r1 + t2*r2 + t3*r3 + t4*r4 + t5*r5)", names)
    short = Law.parse("c + k*exp(t2*r2 + t3*r3 + t4*r4 + t5*r5)", names)
    rng = np.random.default_rng(1)
    X = _grid_mixtures(rng, 20)
    y = (2.15 + 0.0246 * np.exp(X @ np.array([-11.5, 5.0, 5.0, 4.8, 2.8]))) * (1 + 0.01 * rng.standard_normal(20))
    optimum = fit_group(full, X, y).loss
    assert fit_group(short, X, y).loss == pytest.approx(optimum, rel=1e-6)
    monkeypatch.setattr(multistart, "CONTINUATION_STEPS", 0)
    assert fit_group(short, X, y).loss > 1.05 * optimum


def test_every_fit_seed_reaches_the_optimum_of_a_law_with_a_location_in_a_log():
    """A data-constrained law with an offset K2 inside a log: with scipy's sequential local fits,
    from fit seed 0 the first two agreed on a basin 44% above the optimum.  The local fits now
    all run (together), and every seed reaches the same optimum."""
    rng = np.random.default_rng(2)
    n = 60
    N, U = 10 ** rng.uniform(7, 9.5, n), 10 ** rng.uniform(8, 10, n)
    D = U * 10 ** rng.uniform(0, 2, n)
    y = 1.8 + 400 / N ** 0.34 + 600 / (U * (1 + 3 * (1 - np.exp(-(D / U - 1) / 3)))) ** 0.3
    X, y = np.column_stack([N, D, U]), y * np.exp(rng.normal(0, 0.01, n))
    law = Law.parse("B1*log(U) + (A1/N + B2/D + C1/(K2 + U))**alpha1*log(K2 + U)", ["N", "D", "U"])
    losses = [fit_group(law, X, y, seed=seed).loss for seed in range(3)]
    assert max(losses) == pytest.approx(min(losses), rel=1e-3)
    assert min(losses) < 1.3e-3  # the optimum, not the basin 44% above it


def test_the_same_law_written_in_another_order_fits_identically():
    X, y = chinchilla_data(5, noise=0.01)
    reordered = Law.parse("B/D**beta + A/N**alpha + E", ["N", "D"])
    assert reordered.parameters != CHINCHILLA_LAW.parameters and reordered.expr == CHINCHILLA_LAW.expr
    a, b = fit_group(CHINCHILLA_LAW, X, y), fit_group(reordered, X, y)
    assert a.as_dict(CHINCHILLA_LAW) == b.as_dict(reordered) and a.loss == b.loss
    start = fit_group(reordered, X, y, FitOptions(n_starts=1, n_local=1), start=b.theta)
    assert start.as_dict(reordered) == pytest.approx(b.as_dict(reordered), rel=1e-6)  # the start is mapped too


# ---------------------------------------------------------------------- robustness
def test_overflowing_law_never_yields_nan():
    law = Law.parse("b*exp(a*x)", ["x"])
    x = np.linspace(0.0, 1e4, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning may escape either
        fit = fit_group(law, x[:, None], 1.0 + x / 1e4)
        plain = fit_group(law, x[:, None], 1.0 - x / 5e3)
    for f in (fit, plain):
        assert np.all(np.isfinite(f.theta))
        assert not np.isnan(f.loss)
        assert np.all(np.isfinite(law.evaluate(x[:, None], f.theta))) == f.success


def test_law_that_is_never_finite_fails_cleanly():
    law = Law.parse("sqrt(-x - a**2) + b", ["x"])
    x = np.linspace(1.0, 2.0, 10)
    fit = fit_group(law, x[:, None], x)
    assert not fit.success
    assert fit.loss == np.inf
    assert np.all(np.isfinite(fit.theta))
    assert "finite" in fit.message


def test_log_residuals_of_nonpositive_and_nonfinite_predictions_are_finite_penalties():
    y = np.array([2.0, 2.0, 2.0, 2.0, 2.0])
    law = Law.parse("a*x", ["x"])
    runs = Runs.build(law, [Group(np.ones((5, 1)), y, True, True, 1e-3, np.zeros(1), np.ones(1))], np.zeros(1, dtype=int))
    r = runs.residuals(np.array([[2.0, 1e-9, 0.0, -1.0, np.nan, 2.0, 2.0, 2.0]]))[0]
    assert np.all(r[5:] == 0.0)  # padded rows
    assert np.all(np.isfinite(r))
    assert r[0] == 0.0
    assert r[1] > r[2] > r[3] > -PENALTY  # monotone below the floor, so a fit can climb out
    assert r[4] == PENALTY


@pytest.mark.parametrize("n_rows", [1, 3])
def test_fewer_rows_than_parameters(n_rows):
    X, y = chinchilla_data(5, n=n_rows)
    fit = fit_group(CHINCHILLA_LAW, X, y)
    assert fit.n_rows == n_rows
    assert fit.success and np.all(np.isfinite(fit.theta))
    np.testing.assert_allclose(CHINCHILLA_LAW.evaluate(X, fit.theta), y, rtol=1e-6)


def test_rows_with_missing_values_are_left_out():
    X, y = chinchilla_data(6, n=60)
    y[:5] = np.nan
    X[5, 0] = np.inf
    fit = fit_group(CHINCHILLA_LAW, X, y)
    assert fit.n_rows == 54 and fit.success
    empty = fit_group(CHINCHILLA_LAW, X[:5], y[:5])
    assert empty.n_rows == 0 and not empty.success and empty.loss == np.inf
    assert np.all(np.isfinite(empty.theta))


def test_a_peak_placed_in_the_data_gets_twice_the_local_fits_unless_told():
    """A Gaussian peak's location and width start among the data's values; such a law's local fits
    run from twice ``n_local`` screened starts by default (``placed_local``), and it is recovered."""
    x = np.linspace(0.0, 10.0, 80)[:, None]
    y = 1.0 + 2.0 * np.exp(-((x[:, 0] - 6.5) / 0.7) ** 2) + 0.01 * np.random.default_rng(0).standard_normal(80)
    law = Law.parse("c + a*exp(-(x - m)**2/w**2)", ["x"])
    default, told = fit_group(law, x, y, FitOptions(n_local=4)), fit_group(law, x, y, FitOptions(n_local=4, placed_local=3))
    assert default.message.startswith("best of 8 local fits") and told.message.startswith("best of 3 local fits")
    assert within(default.theta, np.array([1.0, 2.0, 6.5, 0.7]) * [1, 1, 1, np.sign(default.theta[3])], 0.02)


def test_bad_options_and_shapes_are_rejected():
    with pytest.raises(FitError, match="loss"):
        FitOptions(loss="l1")  # type: ignore[arg-type]
    with pytest.raises(FitError, match="n_local"):
        FitOptions(n_local=0)
    with pytest.raises(FitError, match="placed_local must be at least 1"):
        FitOptions(placed_local=0)
    with pytest.raises(FitError, match="alpha"):
        FitOptions(bounds={"alpha": (1.0, 0.0)})
    with pytest.raises(FitError, match="tol"):
        FitOptions(tol=0.0)
    X, y = chinchilla_data(0, n=10)
    with pytest.raises(DataError):
        fit_group(CHINCHILLA_LAW, X[:, :1], y)
    with pytest.raises(DataError):
        fit_law(CHINCHILLA_LAW, X, y[:9], np.zeros(10), ["loss"])


# ---------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_parameters_and_another_seed_the_same_optimum():
    X, y = chinchilla_data(7, noise=0.01)
    a = fit_group(CHINCHILLA_LAW, X, y, seed=11)
    b = fit_group(CHINCHILLA_LAW, X, y, seed=11)
    c = fit_group(CHINCHILLA_LAW, X, y, seed=12)
    assert np.array_equal(a.theta, b.theta) and a.loss == b.loss
    # The seed drives the random starts, yet a well-posed law's fit ends at one optimum.
    assert c.loss == pytest.approx(a.loss, rel=1e-6)


def test_group_seeds_do_not_depend_on_hash_randomization():
    """Per-group seeds come from the group names, stably across processes (no salted hash())."""
    script = (
        "import json, numpy as np\n"
        "from lawsearch.formula import Law\n"
        "from lawsearch.fit import fit_law\n"
        "law = Law.parse('E + A/N**alpha + B/D**beta', ['N', 'D'])\n"
        "rng = np.random.default_rng(0)\n"
        "X = np.column_stack([10 ** rng.uniform(7, 10, 80), 10 ** rng.uniform(9, 12, 80)])\n"
        "y = law.evaluate(X, [1.69, 406.4, 0.34, 410.7, 0.28]) * (1 + 0.01 * rng.standard_normal(80))\n"
        "groups = np.where(np.arange(80) % 2, 'small', 'large')\n"
        "print(json.dumps(fit_law(law, X, y, groups, ['loss'], seed=3).parameters()))\n"
    )
    root = Path(__file__).resolve().parents[1]
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]


def test_group_results_do_not_depend_on_group_order():
    X1, y1 = chinchilla_data(8, n=60, noise=0.01)
    X2, y2 = chinchilla_data(9, n=60, noise=0.01)
    X, y = np.vstack([X1, X2]), np.concatenate([y1, y2])
    groups = np.array(["a"] * 60 + ["b"] * 60)
    first = fit_law(CHINCHILLA_LAW, X, y, groups, ["loss"], seed=1)
    order = np.r_[60:120, 0:60]
    second = fit_law(CHINCHILLA_LAW, X[order], y[order], groups[order], ["loss"], seed=1)
    assert [f.group for f in second.fits] == ["b", "a"]
    for group in ("a", "b"):
        assert np.array_equal(first.get(group, "loss").theta, second.get(group, "loss").theta)


# ---------------------------------------------------------------------- groups and targets
def power_law_data(params: dict[str, float], x: np.ndarray) -> np.ndarray:
    return params["c"] + params["a"] * x ** (-params["b"])


def test_per_group_and_per_target_fitting():
    law = Law.parse("c + a*x**(-b)", ["x"])
    x = np.geomspace(1.0, 1e4, 40)
    truths = {
        ("g1", "loss"): {"c": 1.0, "a": 5.0, "b": 0.5},
        ("g1", "error"): {"c": 0.1, "a": 2.0, "b": 0.2},
        ("g2", "loss"): {"c": 3.0, "a": 50.0, "b": 0.9},
        ("g2", "error"): {"c": 0.5, "a": 0.5, "b": 1.5},
    }
    X = np.concatenate([x, x])[:, None]
    groups = np.array(["g1"] * 40 + ["g2"] * 40)
    Y = np.column_stack(
        [np.concatenate([power_law_data(truths[(g, t)], x) for g in ("g1", "g2")]) for t in ("loss", "error")]
    )
    result = fit_law(law, X, Y, groups, ["loss", "error"])
    assert isinstance(result, LawFit) and len(result.fits) == 4
    for (group, target), truth in truths.items():
        fit = result.get(group, target)
        assert isinstance(fit, GroupFit) and fit.n_rows == 40 and fit.success
        assert fit.as_dict(law) == pytest.approx(truth, rel=1e-6)

    params = result.parameters()
    assert set(params) == {"g1", "g2"}
    assert set(params["g1"]) == {"loss", "error"}
    assert set(params["g2"]["error"]) == {"c", "a", "b"}
    assert params["g2"]["error"]["b"] == pytest.approx(1.5, rel=1e-6)
    json.dumps(params)  # JSON-ready: plain floats

    pred = result.predict(X[::-1], groups[::-1], ["error", "loss"])
    assert pred.shape == (80, 2)
    np.testing.assert_allclose(pred, Y[::-1][:, ::-1], rtol=1e-6)


def test_single_target_parameters_and_unseen_group():
    law = Law.parse("c + a*x**(-b)", ["x"])
    x = np.geomspace(1.0, 1e4, 30)
    y = power_law_data({"c": 1.0, "a": 5.0, "b": 0.5}, x)
    result = fit_law(law, x[:, None], y[:, None], np.full(30, "only"), ["loss"])
    params = result.parameters()
    assert list(params) == ["only"]
    assert set(params["only"]) == {"c", "a", "b"}
    assert result.predict(x[:5, None], np.full(5, "only"), ["loss"]).shape == (5, 1)
    with pytest.raises(FitError, match="'missing'"):
        result.get("missing", "loss")
    with pytest.raises(FitError, match="'missing'"):
        result.predict(x[:2, None], np.array(["only", "missing"]), ["loss"])
    with pytest.raises(FitError, match="'other'"):
        result.get("only", "other")


def test_a_start_point_joins_the_multi_start():
    """One cheap start from a good point (e.g. a bootstrap warm start) reaches that optimum."""
    X, y = chinchilla_data(3)
    law = CHINCHILLA_LAW
    full = fit_group(law, X, y)
    cheap = FitOptions(n_starts=1, n_local=1)
    warm = fit_group(law, X, y, cheap, start=full.theta)
    assert warm.loss <= full.loss * (1 + 1e-6)
    np.testing.assert_allclose(warm.theta, full.theta, rtol=1e-3)
    fit = fit_law(law, X, y, np.array(["g"] * len(y)), ["y"], cheap, start={("g", "y"): full.theta})
    np.testing.assert_allclose(fit.get("g", "y").theta, full.theta, rtol=1e-3)


def test_a_rate_bound_scales_with_the_data():
    """b2 in exp(b2/(x + b3)) multiplies 1/(x + b3) ~ 1/100: its natural scale is ~100, so its
    default bound widens beyond RATE_BOUNDS and MGH10's shape is recovered from no start."""
    law = Law.parse("b1*exp(b2/(x + b3))", ["x"])
    x = np.linspace(50.0, 125.0, 16)[:, None]
    truth = np.array([0.0056, 6181.0, 345.0])
    y = law.evaluate(x, truth) * (1 + 1e-4 * np.random.default_rng(0).standard_normal(16))
    fit = fit_group(law, x, y, FitOptions(loss="squared"))
    assert fit.default_bounds[1][1] >= RATE_BOUNDS[1] * 125.0 > truth[1]
    np.testing.assert_allclose(fit.theta, truth, rtol=0.05)
    assert pinned_parameter(LawFit(law, (fit,))) is None


def test_a_given_start_is_optimized_and_never_beaten_by_a_worse_basin():
    """From a start in the right basin the cheapest fit ends there, whatever its own starts find."""
    law = Law.parse("b1*exp(-b2*x) + b3*exp(-(x - b4)**2/b5**2)", ["x"])
    x = np.linspace(1.0, 250.0, 120)[:, None]
    truth = np.array([100.0, 0.01, 80.0, 120.0, 20.0])
    y = law.evaluate(x, truth) + np.random.default_rng(1).normal(0.0, 0.5, 120)
    cheap = FitOptions(loss="squared", n_starts=1, n_local=1)
    fit = fit_group(law, x, y, cheap, start=truth * 1.05)
    np.testing.assert_allclose(np.abs(fit.theta), truth, rtol=0.02)


def _poly2_law(cross: bool) -> Law:
    """exp(poly2(log inputs)) in four inputs: 9 parameters without cross terms, 15 with them."""
    logs = [f"log({v})" for v in "abcd"]
    terms = ["k0"] + [f"k{i + 1}*{lg}" for i, lg in enumerate(logs)] + [f"q{i + 1}*{lg}**2" for i, lg in enumerate(logs)]
    if cross:
        terms += [f"c{i + 1}{j + 1}*{logs[i]}*{logs[j]}" for i in range(4) for j in range(i + 1, 4)]
    return Law.parse(f"exp({' + '.join(terms)})", list("abcd"))


def test_a_law_fits_at_least_as_well_as_a_law_nested_in_it_when_started_from_its_fit():
    from lawsearch.nested import nested_start

    small, large = _poly2_law(cross=False), _poly2_law(cross=True)
    assert (small.n_parameters, large.n_parameters) == (9, 15)
    rng = np.random.default_rng(4)
    X = 10.0 ** rng.uniform(0.0, 2.0, (80, 4))
    truth = {p: v for p, v in zip(large.parameters, rng.normal(0.0, 0.1, 15))}
    y = large.evaluate(X, [truth[p] for p in large.parameters]) * (1 + 0.01 * rng.standard_normal(80))
    cheap = FitOptions(n_starts=24, n_local=3, max_nfev=200, tol=1e-8)  # the search's fits
    parent = fit_group(small, X, y, cheap)
    start = nested_start(small, parent.theta, large, X)
    assert start is not None and np.allclose(large.evaluate(X, start), small.evaluate(X, parent.theta))
    child = fit_group(large, X, y, cheap, start=start)
    assert child.loss <= parent.loss
    assert nested_start(large, child.theta, small, X) is None  # the larger law is not nested in the smaller


def test_local_fits_follow_scipys_bounded_trust_region_step_for_step():
    """Each local fit is scipy's ``least_squares`` (trf, bounds): the same point after every number
    of evaluations, also where the optimum lies beyond a bound (it is approached from inside)."""
    from scipy.optimize import least_squares

    from lawsearch.fit.local import local_fits

    rng = np.random.default_rng(4)
    x = np.linspace(1.0, 5.0, 30)[:, None]
    y = 3.0 * x[:, 0] ** 2.5 * (1 + 0.01 * rng.standard_normal(30))
    law = Law.parse("a*x**b", ["x"])
    lower, upper = np.array([-1e3, -10.0]), np.array([1e3, 2.0])  # b's optimum, 2.5, is beyond its bound
    runs = Runs.build(law, [Group(x, y, False, False, 1.0, lower, upper)], np.zeros(2, dtype=int))
    starts = np.array([[1.0, 0.5], [50.0, -1.0]])

    def fun(theta):
        return runs.take(np.array([0])).fun(theta[None], False)[0][:30]

    for nfev in (3, 10, 40):
        ours = local_fits(runs, starts, False, nfev, 1e-10)
        for k, start in enumerate(starts):
            theirs = least_squares(fun, start, bounds=(lower, upper), method="trf", max_nfev=nfev,
                                   ftol=1e-10, xtol=1e-10, gtol=1e-10,
                                   jac=lambda t: runs.take(np.array([0])).jac(t[None], False)[0][:30])
            np.testing.assert_allclose(ours.x[k], theirs.x, rtol=1e-7)
            assert ours.x[k, 1] < upper[1]  # strictly inside
