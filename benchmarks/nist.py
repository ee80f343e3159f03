"""The shared fitter on NIST's 27 certified nonlinear-regression problems (StRD).

    python benchmarks/nist.py [--data $LAWSEARCH_DATA/nist_strd] [--problems Gauss2 MGH10 ...] [--seed 0]

Fits every problem with ``fit_group`` (loss ``squared``; ``squared_log`` for Nelson, whose model
is for log(y)) from (a) no starting values, (b) NIST's Start 1 and (c) Start 2, and prints per
problem and start the log relative error (LRE: the digits that agree with the certified value,
capped at 11) of the residual sum of squares, the smallest LRE over the parameters (up to the
law's symmetries: interchangeable terms of a sum, parameters seen only squared) and the time;
beside them what ``scipy.optimize.least_squares`` (trf, analytic Jacobian, tolerances 1e-15)
reaches from Start 1.  Target: RSS LRE >= 6 and parameter LRE >= 4 everywhere, each fit under
10 s.  Not a test: measurements to report (tests/test_nist.py runs the no-start case).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from lawsearch.fit import FitOptions, fit_group
from lawsearch.nist import NistProblem, lre, parameter_lres, read_problems

RSS_TARGET, PARAMETER_TARGET, SECONDS_TARGET = 6.0, 4.0, 10.0


def fit_from(problem: NistProblem, start: np.ndarray | None, seed: int) -> tuple[float, float, float]:
    """(RSS LRE, smallest parameter LRE, seconds) of one fit by the shared fitter."""
    begin = time.perf_counter()
    fit = fit_group(problem.law, problem.X, problem.y, FitOptions(loss=problem.loss), seed=seed, start=start)
    seconds = time.perf_counter() - begin
    return (lre(problem.rss(fit.theta), problem.certified_rss),
            float(parameter_lres(problem.law, fit.theta, problem.certified).min()), seconds)


def scipy_from_start1(problem: NistProblem) -> tuple[float, float]:
    """(RSS LRE, smallest parameter LRE) of plain ``least_squares`` from Start 1."""
    law, X = problem.law, problem.X
    target = np.log(problem.y) if problem.log_target else problem.y

    def residuals(theta: np.ndarray) -> np.ndarray:
        pred = law.evaluate(X, theta)
        with np.errstate(all="ignore"):
            r = (np.log(pred) if problem.log_target else pred) - target
        return np.where(np.isfinite(r), r, 1e100)

    def jacobian(theta: np.ndarray) -> np.ndarray:
        grad = law.gradient(X, theta)
        if problem.log_target:
            grad = grad / law.evaluate(X, theta)[:, None]
        return np.where(np.isfinite(grad), grad, 0.0)

    try:
        res = least_squares(residuals, problem.start1, jac=jacobian, method="trf", ftol=1e-15, xtol=1e-15,
                            gtol=1e-15, max_nfev=10000)
        theta = res.x
    except (ValueError, np.linalg.LinAlgError):
        theta = problem.start1
    return (lre(problem.rss(theta), problem.certified_rss),
            float(parameter_lres(law, theta, problem.certified).min()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("LAWSEARCH_DATA", "../shared/data")) / "nist_strd"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--problems", nargs="*", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    problems = [p for p in read_problems(args.data) if not args.problems or p.name in args.problems]
    starts = ("none", "start1", "start2")
    print("| problem | " + " | ".join(f"{s}: RSS LRE / min param LRE / s" for s in starts)
          + " | scipy from start1: RSS LRE / min param LRE |")
    print("|---" * (len(starts) + 2) + "|")
    passed = {s: 0 for s in starts}
    scipy_passed, worst = 0, 0.0
    for problem in problems:
        cells = []
        for name, start in zip(starts, (None, problem.start1, problem.start2)):
            rss, param, seconds = fit_from(problem, start, args.seed)
            ok = rss >= RSS_TARGET and param >= PARAMETER_TARGET and seconds <= SECONDS_TARGET
            passed[name] += ok
            worst = max(worst, seconds)
            cells.append(f"{rss:4.1f} / {param:4.1f} / {seconds:4.1f}{'' if ok else ' ✗'}")
        rss, param = scipy_from_start1(problem)
        scipy_ok = rss >= RSS_TARGET and param >= PARAMETER_TARGET
        scipy_passed += scipy_ok
        cells.append(f"{rss:4.1f} / {param:4.1f}{'' if scipy_ok else ' ✗'}")
        print(f"| {problem.name} | " + " | ".join(cells) + " |", flush=True)
    n = len(problems)
    print(f"\nsolved (RSS LRE >= {RSS_TARGET:g}, parameter LRE >= {PARAMETER_TARGET:g}, <= {SECONDS_TARGET:g} s): "
          + ", ".join(f"{s} {passed[s]}/{n}" for s in starts)
          + f"; scipy least_squares from start1 {scipy_passed}/{n}; slowest fit {worst:.1f} s")


if __name__ == "__main__":
    main()
