"""Every human law on every available curated task, checked against an independent scipy fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares

from conftest import shared_data_or_skip
from lawsearch.evaluate import evaluate_law
from lawsearch.formula import Law
from lawsearch.task import TASKS_DIR, load_task

CURATED = ["chinchilla", "data_constrained", "domain_mixture", "easy_question", "lr_bsz", "moe", "parallel",
           "sft", "sparsity", "vocab"]


def _independent_r2(task, law: Law, starts: int = 12) -> float:
    """Plain least squares from random starts (scipy only), per group and target; pooled SLDBench R²."""
    rng = np.random.default_rng(0)
    pred = np.empty_like(task.test.Y)
    for g in task.train.group_names():
        tr, te = task.train.groups == g, task.test.groups == g
        for d, target in enumerate(task.targets):
            X, y = task.train.X[tr], task.train.Y[tr, d]
            bound = law.bound(target)  # 'self' is the input paired with this target

            def residuals(theta):
                with np.errstate(all="ignore"):
                    r = bound.evaluate(X, theta) - y
                return np.where(np.isfinite(r), r, 1e6)

            best = None
            for _ in range(starts):
                start = rng.uniform(0.05, 1.5, law.n_parameters) * rng.choice([1, 10, 100], law.n_parameters)
                try:
                    sol = least_squares(residuals, start, method="trf", max_nfev=400)
                except ValueError:
                    continue
                if best is None or sol.cost < best.cost:
                    best = sol
            pred[te, d] = bound.evaluate(task.test.X[te], best.x)
    with np.errstate(all="ignore"):
        nmse = np.mean((task.test.Y - pred) ** 2, axis=0) / np.var(task.test.Y, axis=0)
    return float(np.mean(1 - nmse)) if np.all(np.isfinite(nmse)) else -np.inf


@pytest.mark.parametrize("name", CURATED)
def test_human_laws_match_or_beat_an_independent_fit(name):
    shared_data_or_skip()
    task = load_task(TASKS_DIR / f"{name}.yaml")
    assert task.human_laws, f"{name} has no human law"
    for human in task.human_laws:
        ours = evaluate_law(task, human.formula).metrics["test"].r2
        independent = _independent_r2(task, task.parse_law(human.formula))
        assert np.isfinite(ours)
        # Our robust multi-start fit is at least as good as plain random-restart least squares
        # (on the NMSE scale: within 5% of it, plus a small absolute slack), or agrees within 0.02.
        assert (1 - ours) <= 1.05 * (1 - independent) + 0.02 or abs(ours - independent) < 0.02, \
            f"{name} / {human.name}: ours {ours:.4f} vs independent {independent:.4f}"


def test_data_constrained_columns_are_the_official_tables():
    """'tokens' is the total D and 'unique_tokens' the unique U, so D >= U on every row."""
    shared_data_or_skip()
    task = load_task(TASKS_DIR / "data_constrained.yaml")
    for rows in (task.train, task.test):
        assert np.all(rows.column("tokens") >= rows.column("unique_tokens"))
        assert np.any(rows.column("tokens") > rows.column("unique_tokens"))  # some runs repeat data


# SLDBench's published test R² of its human baseline (Muennighoff et al.'s form with U_N = N)
SLDBENCH_DATA_CONSTRAINED_HUMAN_R2 = 0.911


def test_data_constrained_sldbench_baseline_reproduces_its_published_r2():
    """Our fit of SLDBench's baseline reaches its published R² (within 0.02, or beyond it: our
    fitter's Huber loss on log residuals finds a better extrapolating optimum than SLDBench's fit)."""
    shared_data_or_skip()
    task = load_task(TASKS_DIR / "data_constrained.yaml")
    baseline = next(h for h in task.human_laws if h.name.endswith("(SLDBench baseline)"))
    evaluation = evaluate_law(task, baseline.formula)
    assert evaluation.metrics["test"].r2 >= SLDBENCH_DATA_CONSTRAINED_HUMAN_R2 - 0.02
    # in the paper's roles (U = unique_tokens, D = tokens) repeated epochs fade with a positive R_D
    assert evaluation.fit.parameters()["all_data"]["R_D"] > 1
