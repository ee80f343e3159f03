"""The evolutionary discovery loop.

Each generation: proposers suggest formula text → the safe parser → dedup by
canonical form (the archive is the fit cache: an identical law is never fitted
twice) → fitting on search-train rows and scoring on validation rows through an
Executor → island populations keep their best (elitism), migrate every few
generations → history lines + an atomic checkpoint.  The search never sees the
test rows; the winner is picked from the Pareto front (complexity × validation
error), refitted on the whole train split and scored on test once.

Randomness is drawn from ``SeedSequence([seed, generation, proposer, island])``,
so a run is deterministic for a seed and a resumed run continues exactly.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError, EngineUnavailable, LawsearchError
from ..evaluate import jsonable
from ..fit import FitOptions
from ..io import append_jsonl, writing
from ..proposers.base import Proposal, Proposer, ScoredLaw, SearchContext
from ..proposers.registry import brief_reason, build_proposers
from ..task import Task
from .archive import Candidate, select_winner, winner_threshold
from .budget import REFINE_SHARE, SEARCH_MAX_ROWS, SEARCH_SHARE, cap_rows, deadline_at, with_deadline
from .checkpoint import HISTORY, RunState, load_checkpoint, save_checkpoint
from .consensus import consensus_winner
from .evaluation import EvalPayload, evaluate_batch
from .executors import WorkerCrash, make_executor
from .folds import FOLD_FIT_EFFORT, extrapolation_folds, fold_winner
from .rundir import claim_run_dir
from .settings import SearchSettings

__all__ = ["discover", "DiscoveryResult", "Discovery", "default_run_dir", "ProgressCallback", "StepCallback"]

DEFAULT_CADENCE = {"operon": 2, "pysr": 2}  # generations between calls of the slow engines
HUMAN_SEED = "human law"  # note of the human laws seeded in generation 0 (fitted with the full fitter)
_REFINE_ROUNDS = 3  # rounds of refining the contenders before the winner is chosen
_SEARCH_TOL = 1e-8  # the cheap search fits stop at scipy's default tolerance (FitOptions.tol)
ProgressCallback = Callable[[RunState, "Discovery"], None]
StepCallback = Callable[[str, int, int], None]  # (step, done, total) of the long steps after the search


@dataclass
class DiscoveryResult:
    """What a finished (or interrupted) run produced; ``run_dir`` holds the files."""

    run_dir: Path
    law_json: dict[str, Any]
    state: RunState
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    task: Task | None = None

    @property
    def formula(self) -> str:
        return self.law_json["law"]["formula"]

    def _repr_html_(self) -> str:
        """A small table in a notebook: the law beside the human laws, test metrics."""
        from ..notebook import result_html

        return result_html(self)

    def plot(self, **kwargs: Any) -> Any:
        """The per-group fit and extrapolation figure (:func:`lawsearch.notebook.plot_result`)."""
        from ..notebook import plot_result

        return plot_result(self, **kwargs)


def default_run_dir(task: Task, seed: int, root: Path = Path("results")) -> Path:
    """``results/<task>/<UTC timestamp>-s<seed>``."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return root / task.name / f"{stamp}-s{seed}"


class Discovery:
    """One discovery run over a task, resumable from its run directory."""

    def __init__(
        self,
        task: Task,
        settings: SearchSettings,
        run_dir: Path,
        *,
        resume: bool = False,
        executor: Executor | None = None,
        log: Callable[[str], None] | None = None,
        started: float | None = None,
        warn: Callable[[str], None] | None = None,
        steps: StepCallback | None = None,
    ) -> None:
        self._session_start = time.monotonic() if started is None else started  # the time limit counts from here
        self.task = task
        self.settings = settings
        self.run_dir = Path(run_dir)
        self._log_sink = log
        self._warn_sink = warn
        self._step_sink = steps
        self._own_executor = executor is None
        self.executor = executor
        self.max_parameters = settings.max_parameters or task.max_parameters
        self.validation_fraction = task.validation_fraction(settings.validation_fraction)
        self.search_train, self.validation = (cap_rows(rows, SEARCH_MAX_ROWS, settings.seed)
                                              for rows in task.validation_split(self.validation_fraction,
                                                                                seed=settings.seed))
        self.folds = extrapolation_folds(task, self.validation_fraction, settings.folds, seed=settings.seed)
        self.selection: dict[str, Any] = {}
        self.payload = self._payload()
        built = build_proposers(settings.proposers, {"operon": settings.operon, "pysr": settings.pysr,
                                                     "llm": {**settings.llm, "cli": settings.llm_cli}})
        self.proposers: list[Proposer] = built.proposers
        self.notes = built.notes
        named = [name for name in settings.proposers or () if name in built.unavailable]
        why = "; ".join(f"{name}: {brief_reason(name, built.unavailable[name])}" for name in named)
        if named and not self.proposers:  # before anything is written
            raise EngineUnavailable(f"the requested proposer cannot run — {why}")
        self.state = self._initial_state(resume)
        for proposer in self.proposers:  # in law.json even when none of its calls succeeded
            self.state.proposer_stats.setdefault(proposer.name, _new_stats())
            if proposer.name in self.state.proposer_state and hasattr(proposer, "load_state"):
                proposer.load_state(self.state.proposer_state[proposer.name])
        briefs = {f"{name}: unavailable — {exc}": f"{name} skipped: {brief_reason(name, exc)}"
                  for name, exc in built.unavailable.items()}
        for note in self.notes:
            self.log(note, shown=briefs.get(note))
        if named:
            self.warn(f"requested proposer cannot run — {why}; going on with "
                      f"{', '.join(p.name for p in self.proposers)}")
        auto = " ('auto': the test split's share of the rows)" if settings.validation_fraction == "auto" else ""
        self.log(f"validation: {len(self.validation)} of {len(task.train)} train rows, "
                 f"share {self.validation_fraction:.3g}{auto}; {len(self.folds)} nested extrapolation fold(s) "
                 "rank the finalists")
        if not self.proposers:
            raise LawsearchError("no proposer is available for this run")
        self._elapsed_before = self.state.elapsed
        self._tried = False  # whether this session ran a generation

    # ------------------------------------------------------------------ setup
    def _payload(self) -> EvalPayload:
        train = self.task.train
        positive = tuple(name for j, name in enumerate(train.inputs) if np.all(train.X[:, j] > 0)
                         and np.all(self.task.test.X[:, j] > 0))
        st = self.search_train
        va = self.validation
        return EvalPayload(
            inputs=tuple(self.task.inputs), targets=tuple(self.task.targets),
            X_fit=st.X, Y_fit=st.Y, groups_fit=st.groups, X_val=va.X, Y_val=va.Y, groups_val=va.groups,
            max_parameters=self.max_parameters, max_complexity=self.settings.max_complexity,
            fit_options=FitOptions(n_starts=self.settings.search_starts, n_local=self.settings.search_local,
                                   max_nfev=self.settings.search_max_nfev, tol=_SEARCH_TOL),
            seed=self.settings.seed, positive_inputs=positive, monotone=tuple(self.task.monotone.items()),
            smallest_group=self.task.smallest_group(), pairs=self.task.pairs,
        )

    def _initial_state(self, resume: bool) -> RunState:
        settings = self.settings.model_dump(mode="json")
        self._lock = claim_run_dir(self.run_dir, resume)
        if resume:
            try:
                state = load_checkpoint(self.run_dir)
                if state.task != self.task.name:
                    raise CheckpointError(f"{self.run_dir} is a run of task {state.task!r}, not {self.task.name!r}")
                if state.settings.get("seed") != self.settings.seed:
                    raise CheckpointError(
                        f"{self.run_dir} was run with seed {state.settings.get('seed')}, not {self.settings.seed}")
            except CheckpointError:
                self._lock.release()  # the folder is not this run's to continue
                raise
            state.settings = settings  # budgets may be extended on resume
            self.log(f"resuming {self.run_dir} after generation {state.generation}")
            return state
        with writing(self.run_dir / HISTORY):
            (self.run_dir / HISTORY).touch()
        return RunState(task=self.task.name, settings=settings,
                        islands=[[] for _ in range(self.settings.islands)])

    def log(self, message: str, shown: str | None = None) -> None:
        """Append a line to run.log and pass it (or its short form ``shown``) to the caller's sink."""
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%H:%M:%S")
        with writing(self.run_dir / "run.log"), open(self.run_dir / "run.log", "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {message}\n")
        if self._log_sink is not None:
            self._log_sink(shown or message)

    def warn(self, message: str) -> None:
        """A warning: into run.log, and to the caller's warning sink (shown even when progress is not),
        else as a Python :class:`UserWarning`."""
        self.log(f"warning: {message}")
        if self._warn_sink is not None:
            self._warn_sink(message)
        else:
            warnings.warn(message, UserWarning, stacklevel=3)

    def step(self, name: str, done: int, total: int) -> None:
        """Report the progress of a long step after the search (refining finalists, bootstrap)."""
        if self._step_sink is not None:
            self._step_sink(name, done, total)

    # ------------------------------------------------------------------ budget
    @property
    def elapsed(self) -> float:
        return self._elapsed_before + (time.monotonic() - self._session_start)

    def budget_left(self) -> bool:
        """Whether the search may start another generation (see :mod:`lawsearch.search.budget`):
        until a law is fitted, one generation of this session runs whatever the time."""
        s = self.settings
        if self.state.generation >= s.generations or self.state.evaluations >= s.max_evals:
            return False
        if self.best_error() == math.inf:
            return self.elapsed < REFINE_SHARE * s.time_limit or not self._tried
        return self.elapsed < SEARCH_SHARE * s.time_limit

    def _fit_deadline(self) -> float:
        """When this generation's fits stop: at the search's share of the time limit; until a law
        is fitted, at the refinement's share (and :meth:`_fit_first_law` goes on after it)."""
        return self.deadline(SEARCH_SHARE if self.best_error() < math.inf else REFINE_SHARE)

    def _fit_first_law(self, cheap: dict[str, str], outcome: dict[str, dict[str, Any]]) -> None:
        """A run always has a law to write: when the time limit cut every fit of a generation and
        no law is fitted yet, the ``cheap`` laws (key -> formula) it cut are fitted here, in order and
        without the deadline, until one is ok (cheap fits past the limit, on at most SEARCH_MAX_ROWS rows)."""
        if self.best_error() < math.inf or any(r["status"] == "ok" for r in outcome.values()):
            return
        for key in [k for k in cheap if outcome[k]["status"] == "timeout"]:
            outcome[key] = evaluate_batch([cheap[key]], self.payload)[0]
            if outcome[key]["status"] == "ok":
                self.log("the time limit came before any fit: fitted the first law past it")
                return

    def _proposal_deadline(self) -> float:
        """When a proposer's waits (an LLM request, an SR run) must end: half the time left to the
        fits' deadline, leaving the other half to fit what was proposed."""
        now = time.time()
        return now + max(self._fit_deadline() - now, 0.0) / 2

    def deadline(self, share: float) -> float:
        """The ``time.time()`` at which this run reaches ``share`` of its time limit."""
        return deadline_at(self.settings.time_limit, self.elapsed, share)

    # ------------------------------------------------------------------ proposals
    def _rng(self, *keys: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.settings.seed, self.state.generation, *keys]))

    def _context(self, rng: np.random.Generator, best: list[Candidate]) -> SearchContext:
        st = self.search_train
        return SearchContext(
            inputs=tuple(self.task.inputs), targets=tuple(self.task.targets), X=st.X, Y=st.Y, groups=st.groups,
            rng=rng, max_parameters=self.max_parameters, generation=self.state.generation,
            best=[ScoredLaw(c.formula, c.complexity, c.n_parameters, c.val_error, c.source) for c in best],
            failures=self._recent_failures(), task_name=self.task.name, task_description=self.task.description,
            seen=set(self.state.archive.candidates), deadline=self._proposal_deadline(), pairs=self.task.pairs,
        )

    def _recent_failures(self, k: int = 8) -> list[tuple[str, str]]:
        failed = [c for c in self.state.archive.candidates.values() if not c.ok]
        return [(c.formula, "could not be fitted or predicted non-finite values") for c in failed[-k:]]

    def _shares(self) -> dict[str, int]:
        """Proposals per proposer this generation, by weight (cadence of slow engines respected)."""
        g = self.state.generation
        s = self.settings
        if g == 0:
            return {p.name: (s.initial_library if p.name == "library" else
                             0 if p.name == "mutate" else s.proposals_per_generation // 4)
                    for p in self.proposers}
        active = {p.name: s.weights.get(p.name, 1.0) for p in self.proposers if g % self._cadence(p.name) == 0}
        total = sum(active.values())
        if total <= 0:
            return {}
        return {name: max(1, round(s.proposals_per_generation * w / total)) for name, w in active.items() if w > 0}

    def _cadence(self, name: str) -> int:
        """Generations between calls of a proposer: the engine block's ``every`` (operon, pysr, llm)."""
        block = getattr(self.settings, name, None)
        every = block.get("every") if isinstance(block, dict) else None
        return max(1, int(every if every is not None else DEFAULT_CADENCE.get(name, 1)))

    def _call(self, proposer: Proposer, context: SearchContext, n: int) -> list[Proposal]:
        try:
            proposals = proposer.propose(context, n)
        except EngineUnavailable as exc:
            self.log(f"{proposer.name}: unavailable — {exc}; going on without it",
                     shown=f"{proposer.name} skipped: {brief_reason(proposer.name, exc)}")
            self.notes.append(f"{proposer.name}: unavailable — {exc}")
            self.proposers = [p for p in self.proposers if p is not proposer]
            return []
        except Exception as exc:  # a proposer bug is recorded, never fatal
            self.state.proposer_stats.setdefault(proposer.name, _new_stats())["errors"] += 1
            self.log(f"{proposer.name}: proposer failed: {type(exc).__name__}: {exc}")
            return []
        self._events += _event_records(proposer, self.state.generation)
        return list(proposals)[: max(n, 0)]

    def _collect(self) -> list[tuple[Proposal, int]]:
        """All proposals of this generation, each with the island it will join."""
        shares = self._shares()
        archive = self.state.archive
        n_islands = len(self.state.islands)
        collected: list[tuple[Proposal, int]] = []
        if self.state.generation == 0 and self.settings.seed_human_laws:
            collected += [(Proposal(h.formula, "library", note=f"{HUMAN_SEED}: {h.name}"), k % n_islands)
                          for k, h in enumerate(self.task.human_laws)]
        for index, proposer in enumerate(list(self.proposers)):
            n = shares.get(proposer.name, 0)
            if n <= 0:
                continue
            if proposer.name == "mutate":
                for island, keys in enumerate(self.state.islands):
                    members = [archive.get(k) for k in keys]
                    if not members:
                        continue
                    per_island = max(1, math.ceil(n / n_islands))
                    context = self._context(self._rng(index, island), members)
                    collected += [(p, island) for p in self._call(proposer, context, per_island)]
            else:
                context = self._context(self._rng(index), archive.best(20))
                for k, proposal in enumerate(self._call(proposer, context, n)):
                    collected.append((proposal, (self.state.generation + k) % n_islands))
        return collected

    # ------------------------------------------------------------------ one generation
    def run_generation(self) -> None:
        """Propose, deduplicate, evaluate, select, migrate, record, checkpoint."""
        state = self.state
        g = state.generation
        self._tried = True
        self._events: list[dict[str, Any]] = []
        proposals = self._collect()
        records: list[dict[str, Any]] = list(self._events)
        pending: dict[str, tuple[str, int, Proposal]] = {}  # key -> (formula, island, first proposal)
        pairs: list[tuple[Proposal, dict[str, Any]]] = []
        for proposal, island in proposals:
            record = {"generation": g, "formula": proposal.formula, "source": proposal.source,
                      "parents": list(proposal.parents), "note": proposal.note}
            pairs.append((proposal, record))
            if proposal.meta:
                record["meta"] = proposal.meta
            records.append(record)
            try:
                law = self.task.parse_law(proposal.formula)
            except LawsearchError as exc:
                record.update(status="parse_error", reason=str(exc))
                continue
            record["formula"] = law.text
            key = law.canonical
            if key in state.archive or key in pending:
                known = state.archive.candidates.get(key)
                record.update(status="duplicate", val_error=known.val_error if known and known.ok else None)
                continue
            pending[key] = (law.text, island, proposal)
            record.update(status="pending", key=key)
        thorough = [key for key, (_, _, p) in pending.items() if p.note.startswith(HUMAN_SEED)]
        cheap = [key for key in pending if key not in thorough]
        deadline = self._fit_deadline()
        payload = dataclasses.replace(self.payload, fit_options=with_deadline(self.payload.fit_options, deadline))
        outcome = dict(zip(cheap, self._evaluate([pending[k][0] for k in cheap], payload)))
        outcome.update(zip(thorough, self._run_jobs([([pending[k][0]], self._thorough_payload(pending[k][0],
                                                                                              deadline=deadline))
                                                     for k in thorough])))
        self._fit_first_law({k: pending[k][0] for k in cheap}, outcome)
        best_before = self.best_error()
        for record in records:
            if record.get("status") != "pending":
                continue
            key = record.pop("key")
            result = outcome[key]
            record.update({k: v for k, v in result.items() if k not in ("key", "formula")})
            if result["status"] == "timeout":  # not fitted: never archived, so a longer run fits it afresh
                continue
            formula, island, proposal = pending[key]
            formula = result.get("formula", formula)  # reparametrized where parameters act only together
            error = result.get("val_error", math.inf)
            cand = Candidate(key=key, formula=formula, complexity=result.get("complexity", 0),
                             n_parameters=result.get("n_parameters", 0), val_error=error,
                             source=proposal.source, generation=g, parents=list(proposal.parents),
                             val_se=result.get("val_se", math.inf))
            cand.refined = key in thorough
            state.archive.add(cand)
            state.evaluations += 1
            if cand.ok:
                state.islands[island].append(key)
        self._update_stats(records, best_before)
        self._report_outcomes(pairs)
        self._select()
        if (g + 1) % self.settings.migration_interval == 0:
            self._migrate()
        for i, record in enumerate(records):
            record["index"] = state.proposals + i
        state.proposals += len(records)
        append_jsonl(self.run_dir / HISTORY, [jsonable(r) for r in records])  # strict JSON: inf/nan -> null
        state.generation += 1
        best = state.archive.best(1)
        state.best_trace.append({"generation": g, "evaluations": state.evaluations,
                                 "elapsed": round(self.elapsed, 3),
                                 "val_error": best[0].val_error if best else None,
                                 "source": best[0].source if best else None})
        state.elapsed = self.elapsed
        state.proposer_state = {p.name: p.state_dict() for p in self.proposers if hasattr(p, "state_dict")}
        save_checkpoint(self.run_dir, state)

    def _thorough_payload(self, formula: str, on_all_train: bool = False, *, deadline: float) -> EvalPayload:
        """The search payload with the default (thorough) fitter instead of the cheap one, within
        the bounds a human law's spec states, stopping at ``deadline``; with ``on_all_train``, the
        law is fitted on all of train, as the winner will be (its validation error then means
        nothing, its trends do)."""
        options = with_deadline(self.task.fit_options(self.task.parse_law(formula)), deadline)
        payload = dataclasses.replace(self.payload, fit_options=options)
        if on_all_train:
            train = self.task.train
            payload = dataclasses.replace(payload, X_fit=train.X, Y_fit=train.Y, groups_fit=train.groups)
        return payload

    def _evaluate(self, formulas: list[str], payload: EvalPayload | None = None,
                  batch_size: int | None = None) -> list[dict[str, Any]]:
        size = batch_size or self.settings.batch_size
        return self._run_jobs([(formulas[i:i + size], payload or self.payload) for i in range(0, len(formulas), size)])

    def _run_jobs(self, jobs: list[tuple[list[str], EvalPayload]], step: str | None = None) -> list[dict[str, Any]]:
        """Score each (batch of formulas, payload) job through the executor; results in order.
        With a ``step`` name, each finished job is reported to :meth:`step`.

        :func:`evaluate_batch` never raises for a bad candidate, so an exception here is the
        infrastructure's (a worker process that died, a lost Dask worker): it is a
        :class:`WorkerCrash`, never a law's score; nothing of the generation is archived.
        """
        if not jobs:
            return []
        executor = self.get_executor()
        results: list[dict[str, Any]] = []
        try:
            futures = [executor.submit(evaluate_batch, batch, payload) for batch, payload in jobs]
            for done, future in enumerate(futures, start=1):
                results += future.result()
                if step is not None:
                    self.step(step, done, len(jobs))
        except Exception as exc:
            raise WorkerCrash(f"a worker failed in generation {self.state.generation} ({type(exc).__name__}: "
                              f"{exc}); nothing of that generation was recorded: fix the cause and continue with "
                              f"--resume --out {self.run_dir}") from exc
        return results

    def _update_stats(self, records: list[dict[str, Any]], best_before: float) -> None:
        running_best = best_before
        for record in records:
            if record["status"] == "event":
                continue
            stats = self.state.proposer_stats.setdefault(record["source"], _new_stats())
            stats["proposed"] += 1
            status = record["status"]
            stats[status if status in stats else "failed"] += 1
            if status == "ok" and record["val_error"] < running_best:
                running_best = record["val_error"]
                stats["improving"] += 1
                record["improved"] = True

    def _report_outcomes(self, pairs: list[tuple[Proposal, dict[str, Any]]]) -> None:
        """Tell proposers that want it (the LLM's run summary) what became of their proposals."""
        by_name = {p.name: p for p in self.proposers if hasattr(p, "record_outcome")}
        for proposal, record in pairs:
            if proposal.source in by_name:
                by_name[proposal.source].record_outcome(proposal, record["status"] == "ok",
                                                        bool(record.get("improved")))

    def _select(self) -> None:
        """Elitism: each island keeps its ``population_size`` best distinct laws."""
        archive = self.state.archive
        size = self.settings.population_size
        for i, keys in enumerate(self.state.islands):
            unique = [k for k in dict.fromkeys(keys) if archive.get(k).ok]
            unique.sort(key=lambda k: (archive.get(k).val_error, archive.get(k).complexity, archive.get(k).formula))
            self.state.islands[i] = unique[:size]

    def _migrate(self) -> None:
        """Ring migration: each island's best few join the next island."""
        islands = self.state.islands
        if len(islands) < 2:
            return
        migrants = [keys[: self.settings.migrants] for keys in islands]
        for i, group in enumerate(migrants):
            islands[(i + 1) % len(islands)].extend(k for k in group if k not in islands[(i + 1) % len(islands)])
        self._select()

    def best_error(self) -> float:
        best = self.state.archive.best(1)
        return best[0].val_error if best else math.inf

    # ------------------------------------------------------------------ the run
    def run(self, progress: ProgressCallback | None = None) -> DiscoveryResult:
        """Run generations until the budget is spent (or Ctrl-C), then write the results."""
        from .outputs import write_outputs

        interrupted = False
        try:
            try:
                while self.budget_left():
                    self.run_generation()
                    if progress is not None:
                        progress(self.state, self)
            except KeyboardInterrupt:
                interrupted = True
                self.log("interrupted: writing the best law so far")
            if not self.state.archive.best(1):
                raise LawsearchError("the search found no law that could be fitted; see history.jsonl for the reasons")
            self.refine_finalists()
            law_json = write_outputs(self)
            self.state.finished = not interrupted
            self.state.elapsed = self.elapsed
            save_checkpoint(self.run_dir, self.state)
        finally:
            self.close()
        return DiscoveryResult(self.run_dir, law_json, self.state, interrupted, self.notes, task=self.task)

    def refine_finalists(self) -> None:
        """Re-score the contenders (the best laws and the Pareto front) with the full fitter.

        During the search laws are fitted with a cheap multi-start; before the winner is
        chosen, the ``refine_top`` best laws and the front's laws within twice the best
        validation error or within the winner rule's reach (:func:`winner_threshold`: a
        large standard error reaches further) are refitted on search-train with the default
        (thorough) fitter and their validation errors updated.  Each contender is also fitted
        on all of train, as the winner will be, and dropped if that fit is degenerate (a
        parameter at the fitter's limit, :func:`~lawsearch.fit.pinned_parameter`) or breaks a
        declared trend (``monotone``) beyond the data: the law that gets extrapolated is that fit.
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
        and drop those whose fit is degenerate or breaks a declared trend; a fit that ``deadline``
        cuts short changes nothing."""
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
        if self.settings.seed_human_laws:
            human = (self.task.parse_law(h.formula).canonical for h in self.task.human_laws)
            finalists += [archive.get(k) for k in human if k in archive and archive.get(k).ok]
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

    def get_executor(self) -> Executor:
        """The run's executor (made on first use)."""
        if self.executor is None:
            self.executor = make_executor(self.settings.workers, self.settings.scheduler)
        return self.executor

    def close(self) -> None:
        """Shut down the executor (if this run made it) and every proposer; unlock the run folder."""
        if self.executor is not None and self._own_executor:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None
        for proposer in self.proposers:
            try:
                proposer.close()
            except Exception as exc:  # closing must not hide the run's result
                self.log(f"{proposer.name}: close failed: {exc}")
        self._lock.release()

    def winner(self) -> Candidate:
        """The finalist chosen on the extrapolation folds (:func:`~.folds.fold_winner`), else (a single
        fold, or none scored) the Pareto-front law chosen by :func:`select_winner`; the choice is
        described in ``self.selection``."""
        by_folds = fold_winner(list(self.state.archive.candidates.values()))
        if by_folds is not None:
            chosen, self.selection = by_folds
            self.selection["folds"] = [{"fit_rows": len(fit), "held_out_rows": len(held)} for fit, held in self.folds]
            return chosen
        if self.settings.winner_rule == "consensus":  # lawsearch/search/consensus.py
            by_consensus = self._consensus_winner()
            if by_consensus is not None:
                chosen, self.selection = by_consensus
                return chosen
        self.selection = {"rule": "one-standard-error: simplest Pareto law with validation NMSE <= best + its "
                                  "standard error (or within selection_tolerance, relative)",
                          "tolerance": self.settings.selection_tolerance}
        chosen = select_winner(self.state.archive.front(), self.settings.selection_tolerance)
        if chosen is None:
            raise LawsearchError("no law was fitted successfully")
        return chosen

    def _consensus_winner(self) -> tuple[Candidate, dict[str, Any]] | None:
        """The consensus rule's winner and its record (:func:`~.consensus.consensus_winner`)."""
        return consensus_winner(self.state.archive.front(), self.task, self.validation,
                                tolerance=self.settings.selection_tolerance, seed=self.settings.seed)


def _event_records(proposer: Proposer, generation: int) -> list[dict[str, Any]]:
    """History lines for what a proposer reports itself (e.g. formulas an LLM wrote that it rejected)."""
    pop = getattr(proposer, "pop_events", None)
    records = []
    for event in pop() if callable(pop) else []:
        event = dict(event)
        kind = event.pop("event", "event")
        if kind.endswith("_rejected") and "formula" in event:
            records.append({"generation": generation, "formula": event.pop("formula"), "source": proposer.name,
                            "parents": [], "note": "rejected by the proposer", "status": "rejected",
                            "reason": event.pop("reason", ""), "by_proposer": True, "meta": event})
        else:
            records.append({"generation": generation, "source": proposer.name, **event, "status": "event",
                            "event": kind})
    return records


def _new_stats() -> dict[str, Any]:
    return {"proposed": 0, "ok": 0, "duplicate": 0, "parse_error": 0, "rejected": 0, "fit_failed": 0,
            "timeout": 0, "failed": 0, "improving": 0, "errors": 0}


def discover(
    task: Task | str | Path,
    settings: SearchSettings | None = None,
    *,
    out: str | Path | None = None,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    log: Callable[[str], None] | None = None,
    executor: Executor | None = None,
    started: float | None = None,
    warn: Callable[[str], None] | None = None,
    steps: StepCallback | None = None,
) -> DiscoveryResult:
    """Run a discovery on a task (object or YAML path) and write its results to ``out``.

    The time limit counts from ``started`` (a ``time.monotonic()``; default: now)."""
    from ..task import load_task

    started = time.monotonic() if started is None else started
    if not isinstance(task, Task):
        task = load_task(task)
    settings = settings or SearchSettings()
    run_dir = Path(out) if out is not None else default_run_dir(task, settings.seed)
    search = Discovery(task, settings, run_dir, resume=resume, executor=executor, log=log, started=started,
                       warn=warn, steps=steps)
    return search.run(progress)
