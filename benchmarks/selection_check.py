"""Winner rules compared on train rows only: the largest train rows play the test split.

For each finished run folder (e.g. a bench's ``<task>/seed0``), the laws of the run's
generation 0 (the library forms, the seeded human laws and the first SR proposals: none
of them chosen by any validation error, so the pool is not biased towards the rule that
uses the search's own validation cut) are fitted on three nested extrapolation folds of
train (:func:`lawsearch.search.folds.extrapolation_folds`).  Fold 1, the largest train
rows, is the *pseudo-test*: no rule sees it.  Each rule chooses a law from folds 2-3 only,
as it would choose from the real folds, and the chosen law's NMSE on fold 1 is reported
with its regret (log ratio to the best law of the pool there).  No test row is read.

Rules: ``lowest`` (the default: lowest error on one cut, fold 2); ``one-se`` (the simplest
Pareto law within the lowest error + its standard error on fold 2); ``human-anchored`` (one-se, but
where a seeded human law is within the band, the winner must validate at least as well as
it); ``folds`` (:func:`~lawsearch.search.folds.select_by_folds` on folds 2-3).

Usage:  python benchmarks/selection_check.py results/bench/*/seed0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from lawsearch import load_task
from lawsearch.fit import FitOptions
from lawsearch.search.anchor import anchored_winner
from lawsearch.search.archive import Archive, Candidate, pareto_front, select_winner
from lawsearch.search.folds import extrapolation_folds, select_by_folds
from lawsearch.search.scoring import EvalPayload, evaluate_batch

RULES = ("lowest", "one-se", "human-anchored", "folds")
#: The search's own fitting effort (its cheap multi-start): the rules see errors as the search does.
SEARCH_EFFORT = FitOptions(n_starts=24, n_local=3, placed_local=3, max_nfev=200, tol=1e-8)


def fold_scores(task, formulas: list[str], folds, seed: int, max_parameters: int | None) -> list[list[tuple]]:
    """Per formula, (error, se, n_parameters, complexity) on each fold (inf where it fails)."""
    positive = tuple(n for j, n in enumerate(task.inputs) if np.all(task.train.X[:, j] > 0))
    scores = [[] for _ in formulas]
    for fit, held in folds:
        payload = EvalPayload(
            inputs=tuple(task.inputs), targets=tuple(task.targets), X_fit=fit.X, Y_fit=fit.Y,
            groups_fit=fit.groups, X_val=held.X, Y_val=held.Y, groups_val=held.groups,
            max_parameters=max_parameters, max_complexity=200, fit_options=SEARCH_EFFORT,
            seed=seed, positive_inputs=positive, monotone=tuple(task.monotone.items()),
            smallest_group=task.smallest_group(), pairs=task.pairs)
        for i, result in enumerate(evaluate_batch(formulas, payload)):
            ok = result.get("status") == "ok"
            scores[i].append((result["val_error"] if ok else math.inf, result["val_se"] if ok else math.inf,
                              result.get("n_parameters", 0), result.get("complexity", 0)))
    return scores


def choose(rule: str, pool: list[Candidate], scores: list[list[tuple]], human: dict[str, str]) -> int | None:
    """Index into ``pool`` of the law ``rule`` picks from folds 2-3 (fold 1 unseen)."""
    cands = [dataclasses.replace(c, val_error=s[1][0], val_se=s[1][1]) for c, s in zip(pool, scores)]
    if rule == "folds":
        usable = [i for i, s in enumerate(scores) if all(math.isfinite(f[0]) for f in s[1:])]
        choice = select_by_folds([[f[0] for f in scores[i][1:]] for i in usable],
                                 [pool[i].n_parameters for i in usable], [pool[i].complexity for i in usable])
        return None if choice is None else usable[choice.index]
    front = pareto_front(cands)
    if rule == "lowest":
        chosen = min((c for c in cands if c.ok), key=lambda c: (c.val_error, c.complexity), default=None)
    elif rule == "one-se":
        chosen = select_winner(front)
    else:
        chosen = anchored_winner(front, [c for c in cands if c.key in human and c.ok])
    return None if chosen is None else [c.key for c in cands].index(chosen.key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders (checkpoint.json, law.json)")
    parser.add_argument("--scores", type=Path, help="JSON file that keeps each run's fold scores (reused if there)")
    args = parser.parse_args()
    saved = json.loads(args.scores.read_text()) if args.scores and args.scores.exists() else {}
    table = []
    for run in args.runs:
        law_json = json.loads((run / "law.json").read_text())
        state = json.loads((run / "checkpoint.json").read_text())
        task = load_task(law_json["task_path"])
        seed = int(law_json["seed"])
        fraction = task.validation_fraction(law_json["settings"].get("validation_fraction", "auto"))
        folds = extrapolation_folds(task, fraction, 3, seed=seed)
        if len(folds) < 3:
            print(f"{task.name}: only {len(folds)} folds, skipped")
            continue
        archive = Archive.from_list(state["archive"])
        human = {task.parse_law(h.formula).canonical: h.formula for h in task.human_laws}
        pool = [c for c in archive.candidates.values() if c.ok and c.generation == 0 and c.key not in human]
        pool += [Candidate(key=key, formula=formula, complexity=0, n_parameters=0, val_error=0.0, source="human",
                           generation=0) for key, formula in human.items()]
        if str(run) not in saved:
            saved[str(run)] = fold_scores(task, [c.formula for c in pool], folds, seed,
                                          law_json["settings"].get("max_parameters") or task.max_parameters)
            if args.scores:
                args.scores.write_text(json.dumps(saved))
        scores = saved[str(run)]
        pool = [dataclasses.replace(c, n_parameters=next((f[2] for f in s if f[2]), c.n_parameters),
                                    complexity=next((f[3] for f in s if f[3]), c.complexity))
                for c, s in zip(pool, scores)]
        pseudo = np.array([s[0][0] for s in scores])
        best = float(np.min(pseudo[np.isfinite(pseudo)]))
        row = {"task": task.name, "pool": len(pool)}
        for rule in RULES:
            index = choose(rule, pool, scores, human)
            err = pseudo[index] if index is not None else math.inf
            row[rule] = (err, math.log(err / best) if math.isfinite(err) else math.inf,
                         pool[index].formula if index is not None else None)
        table.append(row)
        print(task.name, {r: (round(row[r][0], 4), round(row[r][1], 3), row[r][2]) for r in RULES}, flush=True)
    print("\n| task | pool | " + " | ".join(f"{r} NMSE (regret)" for r in RULES) + " |")
    print("|---|---|" + "---|" * len(RULES))
    for row in table:
        print(f"| {row['task']} | {row['pool']} | "
              + " | ".join(f"{row[r][0]:.4g} ({row[r][1]:.3f})" for r in RULES) + " |")
    print("| mean regret | | " + " | ".join(f"{np.mean([row[r][1] for row in table]):.3f}" for r in RULES) + " |")
    print("| wins (lowest pseudo-test NMSE, ties shared) | | " + " | ".join(
        str(sum(row[r][0] <= min(row[q][0] for q in RULES) for row in table)) for r in RULES) + " |")
    print("\nRegret: log(pseudo-test NMSE of the chosen law / the pool's best there). Fold 1 = pseudo-test.")


if __name__ == "__main__":
    main()
