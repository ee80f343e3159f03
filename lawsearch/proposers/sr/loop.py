"""The engine-independent proposer loop of the symbolic-regression proposers.

:class:`SRProposer` decides which rows, direct or residual runs and deduplication;
:mod:`.operon` and :mod:`.pysr` fill it in with one engine call each.

Each :meth:`SRProposer.propose` call runs one engine search on the search-train
rows (never validation or test rows), seeded from ``context.rng``:

- *direct* runs model the target; they alternate between raw inputs and
  ``log(inputs)`` (inputs that are positive on every row), each with its operator set;
- once the search has scored laws (``context.best``), *residual* runs
  co-optimize form and parameters: a parent law (one of the best three) is
  refitted with the shared fitter, the engine models the residual ``y - f(x)``
  (proposed as ``parent + correction``) or the ratio ``y / f(x)`` (proposed as
  ``parent * (1 + correction)``), and the loop keeps what validates best.

Groups are pooled (the engine finds one form; our fitter refits it per group);
with several groups the target is first standardized within each group so that
group offsets and scales do not swamp the shape.  The whole front is translated;
proposals alternate best-criterion-first and shortest-first, skip laws already
proposed or already in ``context.best``, and unused translations are kept for
the next call.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import FitError, FormulaError, LawsearchError
from ...formula import Law
from ..base import Proposal, SearchContext
from .rewrite import CallRewrite
from .translation import Translation, combine, translate


log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- the proposer loop
MIN_ROWS = 5
_QUEUE_LIMIT = 64


@dataclass(frozen=True)
class EngineModel:
    """One model of an engine's front: its text, size, training loss and selection criterion (lower is better)."""

    expression: str
    length: int
    loss: float = math.nan
    criterion: float = math.nan


@dataclass(frozen=True)
class SRJob:
    """One engine run: ``mode`` is ``direct``, ``add`` (residual) or ``mul`` (ratio)."""

    mode: str
    transform: str  # "raw" | "log" (the inputs actually log-transformed are decided per input)
    operators: tuple[str, ...]
    target: int
    parent: str | None = None


@dataclass
class _Candidate:
    translation: Translation
    job: SRJob
    transforms: tuple[str, ...]
    model: EngineModel
    seed: int


class SRProposer:
    """Engine-independent proposer loop; subclasses implement :meth:`_load`, :meth:`_variants`,
    :meth:`_search` and :meth:`_placeholders` (and may set :attr:`functions`).

    ``settings`` must have ``residual_runs``, ``max_rows`` and ``standardize_groups``.
    """

    name = "sr"
    functions: Mapping[str, CallRewrite] | None = None

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._calls = 0
        self._residual_calls = 0
        self._seen: set[str] = set()
        self._queue: list[tuple[str, Proposal]] = []  # (canonical key, proposal) left over from earlier runs
        self._deadline: float | None = None  # time.time() by which a run must end (SearchContext.deadline)
        self.last_run: dict[str, Any] = {}

    def _engine_seconds(self) -> float:
        """Seconds until the context's deadline (infinite without one): an engine run is cut to it."""
        return math.inf if self._deadline is None else self._deadline - time.time()

    # ------------------------------------------------------------------ engine hooks
    def _load(self) -> Any:  # pragma: no cover - abstract
        """Import the engine or raise :class:`EngineUnavailable`."""
        raise NotImplementedError

    def _variants(self) -> list[tuple[str, tuple[str, ...]]]:  # pragma: no cover - abstract
        """The (input transform, operator set) pairs direct runs alternate between."""
        raise NotImplementedError

    def _search(
        self, engine: Any, X: np.ndarray, y: np.ndarray, job: SRJob, seed: int
    ) -> list[EngineModel]:  # pragma: no cover - abstract
        """Run the engine on (X, y) and return its whole front."""
        raise NotImplementedError

    def _placeholders(self, n: int) -> list[str]:  # pragma: no cover - abstract
        """The engine's names of the n columns of X."""
        raise NotImplementedError

    # ------------------------------------------------------------------ protocol
    def check_available(self) -> None:
        """Raise :class:`EngineUnavailable` now if the engine cannot run (before a search relies on it)."""
        self._load()

    def propose(self, context: SearchContext, n: int) -> list[Proposal]:
        engine = self._load()
        self._deadline = context.deadline
        if n <= 0 or self._engine_seconds() <= 0:
            return []
        seed = int(context.rng.integers(0, 2**31 - 1))
        job = self._next_job(context)
        self._calls += 1
        started = time.perf_counter()
        fresh: list[_Candidate] = []
        error = ""
        try:
            fresh = self._run_job(engine, context, job, seed)
        except LawsearchError as exc:
            error = str(exc)
            log.info("%s: %s run skipped: %s", self.name, job.mode, exc)
        except Exception as exc:  # an engine run's own failure, recorded as data (the run's event), never fatal
            error = f"{type(exc).__name__}: {exc}"
            log.warning("%s: %s run failed: %s", self.name, job.mode, error)
        self.last_run = {
            "mode": job.mode,
            "transform": job.transform,
            "operators": ",".join(job.operators),
            "target": context.targets[job.target] if context.targets else "",
            "parent": job.parent,
            "seed": seed,
            "seconds": round(time.perf_counter() - started, 3),
            "translated": len(fresh),
            "error": error,
        }
        known = self._known(context)
        chosen: list[Proposal] = []
        leftovers: list[tuple[str, Proposal]] = []
        for key, proposal in [*((c.translation.law.canonical, self._proposal(c)) for c in fresh), *self._queue]:
            if key in known:
                continue
            known.add(key)
            if len(chosen) < n:
                self._seen.add(key)
                chosen.append(proposal)
            else:
                leftovers.append((key, proposal))
        self._queue = leftovers[:_QUEUE_LIMIT]
        return chosen

    def close(self) -> None:
        self._queue.clear()

    def state_dict(self) -> dict[str, Any]:
        """What the next calls depend on (JSON-ready), for the run's checkpoint."""
        return {"calls": self._calls, "residual_calls": self._residual_calls, "seen": sorted(self._seen),
                "queue": [{"key": key, "formula": p.formula, "parents": list(p.parents), "note": p.note,
                           "meta": p.meta} for key, p in self._queue]}

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (a resumed run makes the calls an uninterrupted one would)."""
        self._calls = int(state["calls"])
        self._residual_calls = int(state["residual_calls"])
        self._seen = set(state["seen"])
        self._queue = [(item["key"], Proposal(formula=item["formula"], source=self.name,
                                              parents=tuple(item["parents"]), note=item["note"],
                                              meta=item["meta"])) for item in state["queue"]]

    # ------------------------------------------------------------------ jobs
    def _known(self, context: SearchContext) -> set[str]:
        known = set(self._seen)
        for scored in context.best:
            try:
                known.add(Law.parse(scored.formula, context.inputs).canonical)
            except LawsearchError:
                continue
        return known

    def _next_job(self, context: SearchContext) -> SRJob:
        """Direct runs on each variant first; then residual, ratio and direct runs in turn."""
        variants = self._variants()
        k = self._calls
        n_targets = max(1, len(context.targets))
        target = (k // len(variants)) % n_targets
        residual_ok = bool(self.settings.residual_runs) and bool(context.best)
        if k < len(variants) or not residual_ok:
            transform, ops = variants[k % len(variants)]
            return SRJob("direct", transform, ops, target)
        r = k - len(variants)
        mode = ("add", "mul", "direct")[r % 3]
        transform, ops = variants[(r // 3) % len(variants)]
        if mode == "direct":
            return SRJob("direct", transform, ops, target)
        parents = context.best[: min(3, len(context.best))]
        parent = parents[self._residual_calls % len(parents)].formula
        self._residual_calls += 1
        return SRJob(mode, transform, ops, target, parent)

    @staticmethod
    def _transforms(context: SearchContext, job: SRJob) -> tuple[str, ...]:
        """Per input: ``"log"`` in a log run where the input is positive on every finite row."""
        if job.transform != "log":
            return ("raw",) * len(context.inputs)
        X = np.asarray(context.X, dtype=float)
        out = []
        for j in range(len(context.inputs)):
            col = X[:, j][np.isfinite(X[:, j])]
            out.append("log" if col.size and np.all(col > 0) else "raw")
        return tuple(out)

    def _rows(self, context: SearchContext, job: SRJob, rng: np.random.Generator) -> np.ndarray:
        X = np.asarray(context.X, dtype=float)
        Y = np.asarray(context.Y, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        ok = np.all(np.isfinite(X), axis=1) & np.isfinite(Y[:, job.target])
        rows = np.flatnonzero(ok)
        if rows.size > self.settings.max_rows:
            rows = np.sort(rng.choice(rows, size=self.settings.max_rows, replace=False))
        return rows

    def _run_job(self, engine: Any, context: SearchContext, job: SRJob, seed: int) -> list[_Candidate]:
        rng = np.random.default_rng(seed)
        if not context.inputs or np.asarray(context.X).size == 0:
            return []
        transforms = self._transforms(context, job)
        if job.transform == "log" and "log" not in transforms:
            # no input is positive throughout: run on raw inputs with the raw variant's operators
            raw = [v for v in self._variants() if v[0] == "raw"] or [("raw", job.operators)]
            job = dataclasses.replace(job, transform="raw", operators=raw[0][1])
        rows = self._rows(context, job, rng)
        if rows.size < MIN_ROWS:
            return []
        X = np.asarray(context.X, dtype=float)[rows]
        Y = np.asarray(context.Y, dtype=float)
        Y = (Y[:, None] if Y.ndim == 1 else Y)[rows]
        groups = np.asarray(context.groups)[rows] if len(context.groups) else np.zeros(rows.size)
        y = Y[:, job.target].astype(float)
        parent: Law | None = None
        if job.mode != "direct":
            parent = Law.parse(job.parent or "", context.inputs)
            pred = self._parent_predictions(parent, X, Y[:, [job.target]], groups, context, job, seed)
            with np.errstate(all="ignore"):
                y = y - pred if job.mode == "add" else y / pred
                scale = float(np.nanmax(np.abs(pred))) if np.any(np.isfinite(pred)) else 0.0
            keep = np.isfinite(y) & np.isfinite(pred) & (np.abs(pred) > 1e-12 * max(1.0, scale))
            X, y, groups = X[keep], y[keep], groups[keep]
            if y.size < MIN_ROWS:
                return []
        if self.settings.standardize_groups:
            y = _standardize_by_group(y, groups)
        if not np.all(np.isfinite(y)) or float(np.ptp(y)) == 0.0:
            return []
        features = X.copy()
        for j, how in enumerate(transforms):
            if how == "log":
                features[:, j] = np.log(X[:, j])
        positive = [n for j, n in enumerate(context.inputs) if np.all(X[:, j] > 0)]
        front = self._search(engine, features, y, job, seed)
        placeholders = self._placeholders(len(context.inputs))
        out: list[_Candidate] = []
        for model in front:
            try:
                tr = translate(
                    model.expression,
                    placeholders,
                    context.inputs,
                    transforms=transforms,
                    functions=self.functions,
                    positive=positive,
                    max_parameters=None if parent is not None else context.max_parameters,
                )
                if parent is not None:
                    tr = combine(parent, tr, job.mode, max_parameters=context.max_parameters)
            except (FormulaError, ValueError) as exc:
                log.debug("%s: dropped %r: %s", self.name, model.expression, exc)
                continue
            out.append(_Candidate(tr, job, transforms, model, seed))
        return _interleave(out)

    def _parent_predictions(
        self,
        parent: Law,
        X: np.ndarray,
        Y: np.ndarray,
        groups: np.ndarray,
        context: SearchContext,
        job: SRJob,
        seed: int,
    ) -> np.ndarray:
        """The parent refitted per group on these rows (cheap fitter settings), predicted on them."""
        from ...fit import FitOptions, fit_law

        target = [context.targets[job.target]] if context.targets else ["y"]
        try:
            fitted = fit_law(parent, X, Y, groups, target, FitOptions(n_starts=16, n_local=2), seed=seed)
            pred = fitted.predict(X, groups, target)
        except (FitError, FormulaError) as exc:
            raise FitError(f"parent {parent.text!r} could not be refitted: {exc}") from None
        return np.asarray(pred, dtype=float).reshape(-1)

    def _proposal(self, cand: _Candidate) -> Proposal:
        job = cand.job
        what = {"direct": "direct", "add": "residual: parent + correction", "mul": "ratio: parent * (1 + correction)"}
        ops = ",".join(o for o in job.operators if o not in ("constant", "variable"))
        logged = [n for n, how in zip(cand.translation.law.inputs, cand.transforms) if how == "log"]
        note = f"{self.name} {what[job.mode]}; ops {ops}" + (f"; on log({', '.join(logged)})" if logged else "")
        meta: dict[str, Any] = {
            "engine": self.name,
            "mode": job.mode,
            "transform": job.transform,
            "operators": list(job.operators),
            "target_index": job.target,
            "engine_expression": cand.model.expression,
            "engine_length": cand.model.length,
            "seed": cand.seed,
            "init": {k: float(v) for k, v in cand.translation.init.items() if math.isfinite(v)},
        }
        if math.isfinite(cand.model.loss):
            meta["engine_loss"] = cand.model.loss
        if math.isfinite(cand.model.criterion):
            meta["engine_criterion"] = cand.model.criterion
        parents = (job.parent,) if job.parent else ()
        return Proposal(formula=cand.translation.formula, source=self.name, parents=parents, note=note, meta=meta)


def _interleave(candidates: list[_Candidate]) -> list[_Candidate]:
    """Best criterion first and simplest first, alternately: accurate and short models both come early."""

    def criterion(c: _Candidate) -> float:
        return c.model.criterion if math.isfinite(c.model.criterion) else math.inf

    by_fit = sorted(candidates, key=lambda c: (criterion(c), c.model.length))
    by_size = sorted(candidates, key=lambda c: (c.translation.law.complexity, c.model.length))
    out: list[_Candidate] = []
    seen: set[int] = set()
    for pair in zip(by_fit, by_size):
        for cand in pair:
            if id(cand) not in seen:
                seen.add(id(cand))
                out.append(cand)
    return out


def _standardize_by_group(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``(y - mean_g) / std_g`` within each group, when there are several groups of >= 3 rows."""
    labels = np.asarray(groups)
    unique = list(dict.fromkeys(labels.tolist()))
    if len(unique) < 2:
        return y
    out = y.astype(float).copy()
    for g in unique:
        rows = labels == g
        if rows.sum() < 3:
            continue
        sd = float(np.std(out[rows]))
        out[rows] = (out[rows] - float(np.mean(out[rows]))) / (sd if sd > 0 else 1.0)
    return out
