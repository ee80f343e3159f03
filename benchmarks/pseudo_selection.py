"""Winner rules compared on whole searches, train rows only: each task's largest train rows play the test split.

For each task and seed a *pseudo-task* is made from the train split alone: its
largest-scale train rows, the same share of each group as the real test split
holds of the table, become the pseudo-test, and the rest its train split.  A full
search (``discover``, with 3 nested extrapolation folds scored for the finalists)
runs on the pseudo-task, so the pool the rules choose from is the one a real run
builds, winner's curse included.  Every finalist is then fitted on the pseudo-train
rows and scored on the pseudo-test rows, and each rule's choice is looked up.  No
test row of the task is ever read.

Rules (all on the run's finalists: the laws it refined with the full fitter or scored on the folds;
only the number of the real test rows is read, never their values):

- ``lowest``: lowest validation error (fold 1), the default without folds;
- ``one-se``: the simplest finalist within the lowest validation error + its standard error;
- ``paired``: the simplest finalist whose validation row errors are not worse than the best's by more
  than the standard error of their row-by-row difference (each refitted on search-train);
- ``folds`` (finalists scored on every fold): :func:`~lawsearch.search.folds.select_by_folds` (mean log fold error, penalty chosen on the folds);
- ``folds-0``: the same with no complexity penalty;
- ``veto-2``: the lowest validation error among the finalists within 2x of the best on folds 2-3
  (geometric mean), so a law that wins fold 1 but extrapolates worse on the others is passed over;
- ``band-folds``: the one-standard-error band of fold 1, then the lowest mean log error over all folds;
- ``human``: the best seeded human law by validation error (a reference, not a rule);
- ``oracle``: the finalist best on the pseudo-test (the ceiling of any rule).

Usage:  python benchmarks/pseudo_selection.py --tasks moe,sparsity --seeds 2 --time-limit 100 --out results/pseudo
        python benchmarks/pseudo_selection.py --out results/pseudo --table-only
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import statistics
from pathlib import Path

import numpy as np

from lawsearch import evaluate_law, load_task
from lawsearch.bench import curated_tasks
from lawsearch.errors import LawsearchError
from lawsearch.fit import FitOptions, fit_law
from lawsearch.quick import discover
from lawsearch.search.archive import Archive
from lawsearch.search.folds import FOLD_FIT_EFFORT, select_by_folds
from lawsearch.search.settings import SearchSettings
from lawsearch.task import holdout_largest

RULES = ("lowest", "one-se", "paired", "folds", "folds-0", "veto-2", "band-folds", "human", "oracle")


def pseudo_task(task):
    """The task with its largest train rows (the real test split's share) as the test split."""
    held = holdout_largest(task.scale_score(task.train), task.train.groups, task.test_share, seed=0)
    pseudo = copy.copy(task)
    pseudo.train, pseudo.test = task.train.subset(~held), task.train.subset(held)
    return pseudo


def validation_rows(task, formula: str, seed: int) -> list[float] | None:
    """Each validation row's error (mean over outputs of the squared error over the output's validation
    variance, as the search's NMSE) of ``formula`` fitted on search-train with the folds' effort."""
    search_train, validation = task.validation_split("auto", seed=seed)
    law = task.parse_law(formula)
    options = dataclasses.replace(task.fit_options(law) or FitOptions(), **FOLD_FIT_EFFORT)
    try:
        fit = fit_law(law, search_train.X, search_train.Y, search_train.groups, task.targets, options, seed=seed)
        with np.errstate(all="ignore"):
            pred = fit.predict(validation.X, validation.groups, task.targets)
    except LawsearchError:
        return None
    scale = np.var(validation.Y, axis=0)
    scale = np.where(scale > 1e-12 * np.var(search_train.Y, axis=0), scale, np.var(search_train.Y, axis=0))
    with np.errstate(all="ignore"):
        rows = np.mean((validation.Y - pred) ** 2 / np.maximum(scale, 1e-300), axis=1)
    return rows.tolist() if np.all(np.isfinite(rows)) else None


def finalists(run: Path, task, seed: int) -> list[dict]:
    """The run's finalists (the laws refined with the full fitter or scored on the folds), each with its
    pseudo-test R² and NMSE."""
    state = json.loads((run / "checkpoint.json").read_text())
    archive = Archive.from_list(state["archive"])
    human = {task.parse_law(h.formula).canonical for h in task.human_laws}
    rows = []
    for cand in archive.candidates.values():
        if not cand.ok or not (cand.refined or cand.fold_errors):
            continue
        try:
            test = evaluate_law(task, cand.formula, seed=0).metrics["test"]
            r2, nmse = float(test.r2), float(test.nmse)
        except LawsearchError:
            r2, nmse = -math.inf, math.inf
        rows.append({"formula": cand.formula, "n_parameters": cand.n_parameters, "complexity": cand.complexity,
                     "val_error": cand.val_error, "val_se": cand.val_se, "fold_errors": cand.fold_errors or [],
                     "human": cand.key in human, "r2": r2, "nmse": nmse,
                     "val_rows": validation_rows(task, cand.formula, seed)})
    return rows


def choose(rule: str, rows: list[dict]) -> dict | None:
    """The finalist ``rule`` picks (see the module doc)."""
    finite = [r for r in rows if len(r["fold_errors"]) > 1 and all(math.isfinite(e) for e in r["fold_errors"])]
    if rule == "lowest":
        return min(rows, key=lambda r: (r["val_error"], r["complexity"]), default=None)
    if rule == "one-se":
        best = min(rows, key=lambda r: r["val_error"], default=None)
        if best is None:
            return None
        band = [r for r in rows if r["val_error"] <= best["val_error"] + best["val_se"]]
        return min(band, key=lambda r: (r["complexity"], r["val_error"]))
    if rule == "paired":
        return paired_one_se(rows)
    if rule in ("folds", "folds-0"):
        choice = select_by_folds([r["fold_errors"] for r in finite], [r["n_parameters"] for r in finite],
                                 [r["complexity"] for r in finite],
                                 **({"penalties": (0.0,)} if rule == "folds-0" else {}))
        return None if choice is None else finite[choice.index]
    if rule == "veto-2":
        later = {id(r): _mean_log(r["fold_errors"][1:]) for r in finite}
        bar = min(later.values(), default=math.inf) + math.log(2.0)
        return min((r for r in finite if later[id(r)] <= bar), key=lambda r: (r["val_error"], r["complexity"]),
                   default=None)
    if rule == "band-folds":
        best = min(rows, key=lambda r: r["val_error"], default=None)
        band = [r for r in finite if best is not None and r["val_error"] <= best["val_error"] + best["val_se"]]
        return min(band, key=lambda r: _mean_log(r["fold_errors"]), default=None)
    if rule == "human":
        return min((r for r in rows if r["human"]), key=lambda r: r["val_error"], default=None)
    return max(rows, key=lambda r: r["r2"], default=None)


def _mean_log(errors: list[float]) -> float:
    """The mean of the logs of fold errors (the log of their geometric mean)."""
    return statistics.fmean(math.log(max(e, 1e-300)) for e in errors)


def paired_one_se(rows: list[dict]) -> dict | None:
    """The simplest finalist not worse than the best (lowest mean row error) by more than the standard
    error of their row-by-row difference (a paired one-standard-error rule)."""
    scored = [r for r in rows if r.get("val_rows") is not None]
    if not scored:
        return None
    best = min(scored, key=lambda r: (np.mean(r["val_rows"]), r["complexity"]))
    base = np.asarray(best["val_rows"])
    eligible = []
    for r in scored:
        diff = np.asarray(r["val_rows"]) - base
        se = diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else 0.0
        if diff.mean() <= se:
            eligible.append(r)
    return min(eligible, key=lambda r: (r["complexity"], np.mean(r["val_rows"])))


def clipped(r2: float) -> float:
    return min(max(r2, -1.0), 1.0)


def table(out: Path) -> None:
    """The rules' pseudo-test R² (clipped to [-1, 1]) per task and seed, and the means over the runs
    where every rule chose a law."""
    results = json.loads((out / "results.json").read_text())
    print("| task | seed | finalists | " + " | ".join(RULES) + " |")
    print("|---|---|---|" + "---|" * len(RULES))
    per_rule: dict[str, list[float]] = {rule: [] for rule in RULES}
    or_lowest: dict[str, list[float]] = {rule: [] for rule in RULES}
    for key, rows in sorted(results.items()):
        name, seed = key.rsplit("/", 1)
        chosen = {rule: choose(rule, rows) for rule in RULES}
        if all(chosen.values()):
            for rule in RULES:
                per_rule[rule].append(clipped(chosen[rule]["r2"]))
        if chosen["lowest"] is not None:
            for rule in RULES:
                or_lowest[rule].append(clipped((chosen[rule] or chosen["lowest"])["r2"]))
        cells = [f"{clipped(c['r2']):.4f}" if c else "—" for c in chosen.values()]
        print(f"| {name} | {seed} | {len(rows)} | " + " | ".join(cells) + " |")
    runs = len(per_rule["oracle"])
    print(f"| mean (clipped), the {runs} runs where every rule chose | | | "
          + " | ".join(f"{statistics.fmean(v):.4f}" if v else "—" for v in per_rule.values()) + " |")
    print(f"| mean (clipped), all {len(or_lowest['lowest'])} runs, lowest's law where a rule cannot choose | | | "
          + " | ".join(f"{statistics.fmean(v):.4f}" if v else "—" for v in or_lowest.values()) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", help="comma-separated curated task names (default: every available one)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/pseudo"))
    parser.add_argument("--table-only", action="store_true", help="print the table of a finished --out")
    args = parser.parse_args()
    if not args.table_only:
        curated = [c for c in curated_tasks() if c.available]
        names = args.tasks.split(",") if args.tasks else [c.name for c in curated]
        results_path = args.out / "results.json"
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        for curated_task in curated:
            if curated_task.name not in names:
                continue
            task = pseudo_task(load_task(curated_task.path))
            for seed in range(args.seeds):
                key = f"{task.name}/{seed}"
                if key in results:
                    continue
                settings = SearchSettings(seed=seed, time_limit=args.time_limit, generations=10**9,
                                          max_evals=10**9, folds=3, workers=args.workers, bootstrap=0)
                run = args.out / task.name / f"seed{seed}"
                if not (run / "law.json").exists():  # a finished run is scored again, not rerun
                    discover(task, settings, out=run, log=lambda _: None)
                results[key] = finalists(run, task, seed)
                args.out.mkdir(parents=True, exist_ok=True)
                results_path.write_text(json.dumps(results, indent=1))
                print(key, {rule: round(clipped(c["r2"]), 4) for rule in RULES
                            if (c := choose(rule, results[key])) is not None}, flush=True)
    table(args.out)


if __name__ == "__main__":
    main()
