"""How many search-train rows rank laws as all rows do: the choice of ``SEARCH_MAX_ROWS``.

The laws a finished run scored (its history's ``ok`` laws) are fitted with the search's
cheap fitter on the run's search-train rows, once on all of them and once on a seeded
subsample of each size given (:func:`lawsearch.search.budget.cap_rows`), and scored on
the same validation rows.  Reported per size: the fitting CPU time and its ratio to all
rows, the Spearman correlation of the two rankings, how many of the 5 and 10 best agree,
and where the subsample's best law ranks with all rows.  Only train rows are read.

Usage:  python benchmarks/search_rows.py tasks/lr_bsz.yaml RUN/history.jsonl --rows 500,1000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.stats import spearmanr

from lawsearch import load_task
from lawsearch.fit import FitOptions
from lawsearch.search.budget import cap_rows
from lawsearch.search.scoring import EvalPayload, evaluate_batch

#: The search's own fitting effort (its cheap multi-start).
SEARCH_EFFORT = FitOptions(n_starts=24, n_local=3, placed_local=3, max_nfev=200, tol=1e-8)


def scores(task, formulas: list[str], max_rows: int | None) -> tuple[np.ndarray, float, int]:
    """Validation errors (inf where a law fails), fitting CPU seconds and fitting rows."""
    fit_rows, val_rows = task.validation_split(task.validation_fraction(), seed=0)
    if max_rows is not None:
        fit_rows, val_rows = cap_rows(fit_rows, max_rows, 0), cap_rows(val_rows, max_rows, 0)
    positive = tuple(n for j, n in enumerate(task.inputs) if np.all(task.train.X[:, j] > 0))
    payload = EvalPayload(
        inputs=tuple(task.inputs), targets=tuple(task.targets), X_fit=fit_rows.X, Y_fit=fit_rows.Y,
        groups_fit=fit_rows.groups, X_val=val_rows.X, Y_val=val_rows.Y, groups_val=val_rows.groups,
        max_parameters=task.max_parameters, max_complexity=400, fit_options=SEARCH_EFFORT, seed=0,
        positive_inputs=positive, monotone=tuple(task.monotone.items()), smallest_group=task.smallest_group(),
        pairs=task.pairs)
    start = time.process_time()
    results = evaluate_batch(formulas, payload)
    seconds = time.process_time() - start
    return np.array([r["val_error"] if r.get("status") == "ok" else np.inf for r in results]), seconds, len(fit_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task")
    parser.add_argument("history", help="a finished run's history.jsonl (its ok laws are the pool)")
    parser.add_argument("--rows", default="500,1000", help="comma list of subsample sizes")
    args = parser.parse_args()
    task = load_task(args.task)
    records = [json.loads(line) for line in open(args.history, encoding="utf-8")]
    formulas = list(dict.fromkeys(r["formula"] for r in records if r.get("status") == "ok"))
    full, full_seconds, n = scores(task, formulas, None)
    print(f"| rows | fitting CPU s | speed-up | Spearman | 5 best agree | 10 best agree | subsample's best, rank on all rows |")
    print("|---|---|---|---|---|---|---|")
    print(f"| all ({n}) | {full_seconds:.1f} | 1.00 | 1 | 5/5 | 10/10 | 1 |")
    for size in (int(s) for s in args.rows.split(",")):
        errors, seconds, rows = scores(task, formulas, size)
        ok = np.isfinite(full) & np.isfinite(errors)
        rho = spearmanr(full[ok], errors[ok]).statistic
        agree = [len(set(np.argsort(full)[:k]) & set(np.argsort(errors)[:k])) for k in (5, 10)]
        rank = int(np.argsort(np.argsort(full))[np.argmin(errors)]) + 1
        print(f"| {rows} | {seconds:.1f} | {full_seconds / seconds:.2f} | {rho:.3f} | {agree[0]}/5 | {agree[1]}/10 | {rank} |")
    print(f"\n{len(formulas)} laws of {args.history}; validation rows as the search has them.")


if __name__ == "__main__":
    main()
