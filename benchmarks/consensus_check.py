"""The winner rules compared on the same archives: one-standard-error vs consensus.

For each finished run folder given (e.g. those of ``lawsearch bench --seeds 3``), the
search's archive is read from its checkpoint and the winner chosen twice, by the
one-standard-error rule (the default) and by the consensus rule
(:mod:`lawsearch.search.consensus`); both winners are then fitted on train and scored
on test.  The rules see train rows only; test rows only score their choices, so the
spread over seeds of each rule can be compared at equal search.

Usage:  python benchmarks/consensus_check.py results/bench/moe/seed0 results/bench/moe/seed1 ...
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from lawsearch import evaluate_law, load_task
from lawsearch.search.archive import Archive, select_winner
from lawsearch.search.consensus import consensus_winner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders (checkpoint.json, law.json)")
    args = parser.parse_args()
    rows: dict[str, list[tuple[int, float, float, str, str]]] = defaultdict(list)
    for run in args.runs:
        law_json = json.loads((run / "law.json").read_text())
        state = json.loads((run / "checkpoint.json").read_text())
        task = load_task(law_json["task_path"])
        seed = int(law_json["seed"])
        settings = law_json["settings"]
        front = Archive.from_list(state["archive"]).front()
        tolerance = float(settings.get("selection_tolerance", 0.0))
        _, validation = task.validation_split(settings.get("validation_fraction", "auto"), seed=seed)
        old = select_winner(front, tolerance)
        new, _ = consensus_winner(front, task, validation, tolerance=tolerance, seed=seed)
        r2_old, r2_new = (evaluate_law(task, c.formula, seed=seed).metrics["test"].r2 for c in (old, new))
        rows[task.name].append((seed, r2_old, r2_new, old.formula, new.formula))
    print("| task | seed | one-SE R² | consensus R² | same law |\n|---|---|---|---|---|")
    for name, results in rows.items():
        for seed, r2_old, r2_new, f_old, f_new in sorted(results):
            print(f"| {name} | {seed} | {r2_old:.4f} | {r2_new:.4f} | {'yes' if f_old == f_new else 'no'} |")
    print("\n| task | rule | mean | min | max | spread (max - min) |\n|---|---|---|---|---|---|")
    for name, results in rows.items():
        for label, column in (("one-SE", 1), ("consensus", 2)):
            values = np.clip([r[column] for r in results], -1, 1)
            print(f"| {name} | {label} | {values.mean():.4f} | {values.min():.4f} | {values.max():.4f} | "
                  f"{values.max() - values.min():.4f} |")
    print("\n(R² clipped to [-1, 1] in the summary, as on SLDBench's leaderboard)")


if __name__ == "__main__":
    main()
