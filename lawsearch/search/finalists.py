"""After the search: the finalists refitted with the full fitter, ranked on the extrapolation folds, and the winner."""

from __future__ import annotations

import dataclasses
import math
import time


from ..errors import LawsearchError
from .anchor import anchored_winner
from .archive import Candidate, select_winner, winner_threshold
from .budget import REFINE_SHARE
from .checkpoint import save_checkpoint
from .consensus import consensus_winner
from .folds import FOLD_FIT_EFFORT, fold_winner

_REFINE_ROUNDS = 3  # rounds of refining the contenders before the winner is chosen


class Finalists:
    """The finalist side of :class:`~.engine.Discovery`: refinement, fold scores, the winner."""

    def refine_finalists(self) -> None:
        """Re-score the contenders (the best laws and the Pareto front) with the full fitter.

        During the search laws are fitted with a cheap multi-start; before the winner is
        chosen, the ``refine_top`` best laws and the front's laws within twice the best
        validation error or within the winner rule's reach (:func:`winner_threshold`: a
        large standard error reaches further) are refitted on search-train with the default
        (thorough) fitter and their validation errors updated.  Each contender is also fitted
        on all of train, as the winner will be, and dropped if that fit is degenerate (a
        parameter at the fitter's limit, :func:`~lawsearch.fit.pinned_parameter`), breaks a
        declared trend (``monotone``) beyond the data or is not finite there along the scale axes
        (:func:`~.scoring.infinite_beyond`): the law that gets extrapolated is that fit.
        As dropping or re-scoring changes the contenders, this repeats (a few rounds at most)
        until every contender has been through both.  Still no test row.
        """
        archive = self.state.archive
        if self.settings.refine_top <= 0:
            return
        checked: set[str] = set()
        deadline = self.deadline(REFINE_SHARE)
        for _ in range(_REFINE_ROUNDS):
            if time.time() >= deadline:
                self.log("refining: stopped at its share of the time limit")
                break
            best = archive.best(self.settings.refine_top)
            if not best:
                break
            front = archive.front()
            bar = max(2 * best[0].val_error, winner_threshold(front, self.settings.selection_tolerance))
            contenders = [c for c in front if c.val_error <= bar]
            if self.settings.winner_rule == "anchored":  # a human law that sets the bar is checked too
                contenders += [h for h in self.seeded_human_laws() if h.val_error <= bar]
            keys = list(dict.fromkeys([c.key for c in best] + [c.key for c in contenders]))
            refits = [k for k in keys if not archive.get(k).refined]
            checks = [k for k in keys if k not in checked]
            if not refits and not checks:
                break
            self._refine(refits, checks, deadline)
            checked.update(checks)
        self._score_folds(deadline)
        self.state.elapsed = self.elapsed
        save_checkpoint(self.run_dir, self.state)

    def _refine(self, refits: list[str], checks: list[str], deadline: float) -> None:
        """Refit ``refits`` on search-train with the full fitter; fit ``checks`` on all of train
        and drop those whose fit is degenerate, breaks a declared trend or is not finite beyond the
        data; a fit that ``deadline`` cuts short changes nothing."""
        archive = self.state.archive
        self.log(f"refining {len(refits)} finalists with the full fitter"
                 + (f", checking {len(checks)} fitted on all of train" if checks else ""))
        jobs = [([archive.get(k).formula], self._thorough_payload(archive.get(k).formula, deadline=deadline))
                for k in refits]
        jobs += [([archive.get(k).formula], self._thorough_payload(archive.get(k).formula, on_all_train=True,
                                                                   deadline=deadline))
                 for k in checks]
        results = self._run_jobs(jobs, step="refining finalists")
        for key, result in zip(refits, results):
            cand = archive.get(key)
            if result.get("status") == "timeout":
                continue  # keep the search's score; a later round does not retry it
            if result.get("status") == "ok":
                cand.val_error, cand.val_se = result["val_error"], result["val_se"]
            elif result.get("status") == "rejected":  # the thorough fit is degenerate or breaks a trend
                cand.val_error, cand.val_se = math.inf, math.inf
                self.log(f"refit of {cand.formula} rejected: {result.get('reason')}")
            else:  # keep the search's score
                self.log(f"refit of {cand.formula} failed: {result.get('reason')}")
            cand.refined = True
        for key, result in zip(checks, results[len(refits):]):
            cand = archive.get(key)
            if result.get("status") == "rejected" and cand.ok:
                cand.val_error, cand.val_se = math.inf, math.inf
                self.log(f"fit on all of train of {cand.formula} rejected: {result.get('reason')}")

    def _score_folds(self, deadline: float) -> None:
        """Score the finalists (the ``refine_top`` best, the front within reach of the winner rule and
        the human laws the search was seeded with) on the extrapolation folds beyond the first
        (:mod:`.folds`; fold 1 is the validation cut they were refined on), with the fitter's effort
        cut to :data:`~.folds.FOLD_FIT_EFFORT`, stopping at ``deadline``."""
        if len(self.folds) < 2:
            return
        archive = self.state.archive
        front = archive.front()
        bar = max(2 * self.best_error(), winner_threshold(front, self.settings.selection_tolerance))
        finalists = archive.best(self.settings.refine_top) + [c for c in front if c.val_error <= bar]
        finalists += self.seeded_human_laws()
        keys = [k for k in dict.fromkeys(c.key for c in finalists) if archive.get(k).fold_errors is None]
        jobs = []
        for key in keys:
            payload = self._thorough_payload(archive.get(key).formula, deadline=deadline)
            payload = dataclasses.replace(payload, fit_options=dataclasses.replace(payload.fit_options,
                                                                                  **FOLD_FIT_EFFORT))
            jobs += [([archive.get(key).formula],
                      dataclasses.replace(payload, X_fit=fit.X, Y_fit=fit.Y, groups_fit=fit.groups,
                                          X_val=held.X, Y_val=held.Y, groups_val=held.groups))
                     for fit, held in self.folds[1:]]
        self.log(f"scoring {len(keys)} finalists on {len(self.folds) - 1} more extrapolation folds")
        results = iter(self._run_jobs(jobs))
        for key in keys:
            cand = archive.get(key)
            errors = [next(results).get("val_error", math.inf) for _ in self.folds[1:]]
            cand.fold_errors = [cand.val_error, *errors]

    def seeded_human_laws(self) -> list[Candidate]:
        """The fitted candidates of the human laws the search was seeded with (none when it was not)."""
        if not self.settings.seed_human_laws:
            return []
        archive = self.state.archive
        human = (self.task.parse_law(h.formula).canonical for h in self.task.human_laws)
        return [archive.get(k) for k in human if k in archive and archive.get(k).ok]

    def winner(self) -> Candidate:
        """The finalist chosen on the extrapolation folds (:func:`~.folds.fold_winner`), else (a single
        fold, or none scored) the Pareto-front law chosen by the ``winner_rule`` setting (lowest validation
        error, one standard error, consensus or human-anchored); the choice is described in ``self.selection``."""
        by_folds = fold_winner(list(self.state.archive.candidates.values()))
        if by_folds is not None:
            chosen, self.selection = by_folds
            self.selection["folds"] = [{"fit_rows": len(fit), "held_out_rows": len(held)} for fit, held in self.folds]
            return chosen
        front, tolerance = self.state.archive.front(), self.settings.selection_tolerance
        if self.settings.winner_rule == "consensus":  # lawsearch/search/consensus.py
            by_consensus = consensus_winner(front, self.task, self.validation, tolerance=tolerance,
                                            seed=self.settings.seed)
            if by_consensus is not None:
                chosen, self.selection = by_consensus
                return chosen
        if self.settings.winner_rule == "anchored":  # lawsearch/search/anchor.py
            human = self.seeded_human_laws()
            self.selection = {"rule": "human-anchored one-standard-error: simplest Pareto law with validation NMSE "
                                      "<= best + its standard error, and <= that of a seeded human law within it",
                              "tolerance": tolerance, "anchors": [h.formula for h in human]}
            chosen = anchored_winner(front, human, tolerance)
        elif self.settings.winner_rule == "lowest":
            self.selection = {"rule": "lowest validation NMSE on the Pareto front (ties: the simpler law)"}
            chosen = min(front, key=lambda c: (c.val_error, c.complexity), default=None)
        else:
            self.selection = {"rule": "one-standard-error: simplest Pareto law with validation NMSE <= best + its "
                                      "standard error (or within selection_tolerance, relative)",
                              "tolerance": tolerance}
            chosen = select_winner(front, tolerance)
        if chosen is None:
            raise LawsearchError("no law was fitted successfully")
        return chosen
