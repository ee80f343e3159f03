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
from concurrent.futures import BrokenExecutor, Executor, Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CheckpointError, EngineUnavailable, LawsearchError
from ..evaluate import jsonable
from ..fit import FitOptions
from ..io import append_jsonl, writing
from ..proposers.base import Proposal, Proposer, optional_hook
from ..proposers.registry import brief_reason, build_proposers
from ..task import Task
from .archive import Candidate
from .budget import REFINE_SHARE, SEARCH_MAX_ROWS, SEARCH_SHARE, cap_rows, deadline_at, with_deadline
from .checkpoint import HISTORY, RunState, load_checkpoint, save_checkpoint
from .scoring import EvalPayload, ParentFit, evaluate_batch, mixture_shares
from .executors import SerialExecutor, WorkerCrash, make_executor
from .folds import extrapolation_folds
from .finalists import Finalists
from .population import Population, new_stats
from .result import DiscoveryResult, default_run_dir
from .rundir import claim_run_dir
from .intake import Intake
from .scheduling import HUMAN_SEED, ProposalScheduling
from .settings import SearchSettings

if TYPE_CHECKING:
    from .outputs import FinishedRun

__all__ = ["discover", "DiscoveryResult", "Discovery", "default_run_dir", "ProgressCallback", "StepCallback"]

_SEARCH_TOL = 1e-8  # the cheap search fits stop at scipy's default tolerance (FitOptions.tol)
ProgressCallback = Callable[[RunState, "Discovery"], None]
StepCallback = Callable[[str, int, int], None]  # (step, done, total) of the long steps after the search


class Discovery(ProposalScheduling, Population, Finalists):
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
        built = build_proposers(settings.proposers, settings.engines())
        self.proposers: list[Proposer] = built.proposers
        self.notes = built.notes
        named = [name for name in settings.proposers or () if name in built.unavailable]
        why = "; ".join(f"{name}: {brief_reason(name, built.unavailable[name])}" for name in named)
        if named and not self.proposers:  # before anything is written
            raise EngineUnavailable(f"the requested proposer cannot run — {why}")
        self.state = self._initial_state(resume)
        for proposer in self.proposers:  # in law.json even when none of its calls succeeded
            self.state.proposer_stats.setdefault(proposer.name, new_stats())
            load_state = optional_hook(proposer, "load_state")
            if proposer.name in self.state.proposer_state and load_state is not None:
                load_state(self.state.proposer_state[proposer.name])
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
        shares = mixture_shares(tuple(train.inputs), train.X)
        st = self.search_train
        va = self.validation
        return EvalPayload(
            inputs=tuple(self.task.inputs), targets=tuple(self.task.targets),
            X_fit=st.X, Y_fit=st.Y, groups_fit=st.groups, X_val=va.X, Y_val=va.Y, groups_val=va.groups,
            max_parameters=self.max_parameters, max_complexity=self.settings.max_complexity,
            fit_options=FitOptions(n_starts=self.settings.search_starts, n_local=self.settings.search_local,
                                   placed_local=self.settings.search_local,
                                   max_nfev=self.settings.search_max_nfev, tol=_SEARCH_TOL),
            seed=self.settings.seed, positive_inputs=positive, monotone=tuple(self.task.monotone.items()),
            smallest_group=self.task.smallest_group(), pairs=self.task.pairs, shares=shares,
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

    # ------------------------------------------------------------------ one generation
    def run_generation(self) -> None:
        """Propose, deduplicate, evaluate, select, migrate, record, checkpoint.

        The slow proposers (:data:`~.scheduling.OVERLAPPED`: an SR engine's run, an LLM's answers)
        are asked while the other proposals' laws are fitted, when the executor fits elsewhere than
        in this process; the proposals, their records and every fit are the same either way."""
        state = self.state
        g = state.generation
        self._tried = True
        self._events: list[dict[str, Any]] = []
        intake = Intake(g, self.task, state.archive)
        overlap = not isinstance(self.get_executor(), SerialExecutor)
        intake.add(self._collect(overlapped=False if overlap else None))
        thorough = [key for key, (_, _, p) in intake.pending.items() if p.note.startswith(HUMAN_SEED)]
        deadline = self._fit_deadline()
        payload = dataclasses.replace(self.payload, fit_options=with_deadline(self.payload.fit_options, deadline))
        # the seeded human laws first: a time limit that cuts the generation short never cuts them
        jobs = [([intake.pending[k][0]], self._thorough_payload(intake.pending[k][0], deadline=deadline))
                for k in thorough]
        cheap = [key for key in intake.pending if key not in thorough]
        futures = self._submit(jobs) + self._submit(self._batches(intake, cheap, payload))
        if overlap:
            intake.add(self._collect(overlapped=True))
            later = [key for key in intake.pending if key not in thorough and key not in cheap]
            futures += self._submit(self._batches(intake, later, payload))
            cheap += later
        outcome = dict(zip(thorough + cheap, self._gather(futures)))
        records, pending, pairs = list(self._events) + intake.records, intake.pending, intake.pairs
        self._fit_first_law({k: pending[k][0] for k in cheap}, outcome)
        best_before = self.best_error()
        for record in records:
            if record.get("status") != "pending":
                continue
            key = record.pop("key")
            result = outcome[key]
            record.update({k: v for k, v in result.items() if k not in ("key", "formula", "fitted")})
            if result["status"] == "timeout":  # not fitted: never archived, so a longer run fits it afresh
                continue
            formula, island, proposal = pending[key]
            formula = result.get("formula", formula)  # reparametrized where parameters act only together
            error = result.get("val_error", math.inf)
            cand = Candidate(key=key, formula=formula, complexity=result.get("complexity", 0),
                             n_parameters=result.get("n_parameters", 0), val_error=error,
                             source=proposal.source, generation=g, parents=list(proposal.parents),
                             val_se=result.get("val_se", math.inf), fitted=result.get("fitted"))
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
        state.proposer_state = {p.name: hook() for p in self.proposers if (hook := optional_hook(p, "state_dict"))}
        save_checkpoint(self.run_dir, state)

    def _thorough_payload(self, formula: str, on_all_train: bool = False, *, deadline: float) -> EvalPayload:
        """The search payload with the default (thorough) fitter instead of the cheap one, within
        the bounds a human law's spec states, stopping at ``deadline``; with ``on_all_train``, the
        law is fitted on all of train, as the winner will be (its validation error then means
        nothing, its trends and its finiteness beyond the data along the scale axes do)."""
        options = with_deadline(self.task.fit_options(self.task.parse_law(formula)), deadline)
        payload = dataclasses.replace(self.payload, fit_options=options)
        if on_all_train:
            train = self.task.train
            payload = dataclasses.replace(payload, X_fit=train.X, Y_fit=train.Y, groups_fit=train.groups,
                                          finite_beyond=tuple(self.task.scale_columns))
        return payload

    def _evaluate(self, formulas: list[str], payload: EvalPayload | None = None,
                  parents: list[ParentFit | None] | None = None, batch_size: int | None = None) -> list[dict[str, Any]]:
        return self._run_jobs(self._jobs(formulas, payload, parents, batch_size))

    def _jobs(self, formulas: list[str], payload: EvalPayload | None = None,
              parents: list[ParentFit | None] | None = None, batch_size: int | None = None) -> list[tuple]:
        """Executor jobs scoring ``formulas`` in batches of ``batch_size`` (default: the settings')."""
        size = batch_size or self.settings.batch_size
        parents = parents or [None] * len(formulas)
        return [(formulas[i:i + size], payload or self.payload, parents[i:i + size])
                for i in range(0, len(formulas), size)]

    def _batches(self, intake: Intake, keys: list[str], payload: EvalPayload) -> list[tuple]:
        """The jobs scoring the pending laws ``keys`` with the search's cheap fitter."""
        return self._jobs([intake.pending[k][0] for k in keys], payload,
                          [self._parent_fit(intake.pending[k][2]) for k in keys])

    def _parent_fit(self, proposal: Proposal) -> ParentFit | None:
        """The search fit of a proposal's first parent, if it was fitted: a mutation's multi-start
        starts there where the parent is nested in it (:mod:`lawsearch.nested`)."""
        try:
            parent = self.state.archive.candidates.get(self.task.parse_law(proposal.parents[0]).canonical)
        except (IndexError, LawsearchError):
            return None
        return (parent.formula, parent.fitted) if parent is not None and parent.fitted else None

    def _run_jobs(self, jobs: list[tuple], step: str | None = None) -> list[dict[str, Any]]:
        """Score each (batch of formulas, payload[, parent fits]) job through the executor; results
        in order.  With a ``step`` name, each finished job is reported to :meth:`step`."""
        return self._gather(self._submit(jobs), step)

    def _submit(self, jobs: list[tuple]) -> list[Future]:
        """Start each job on the executor (a :class:`SerialExecutor` runs it at once)."""
        executor = self.get_executor()
        try:
            return [executor.submit(evaluate_batch, *job) for job in jobs]
        except (BrokenExecutor, RuntimeError, OSError) as exc:  # a broken pool, a lost cluster
            raise self._crash(exc) from exc

    def _gather(self, futures: list[Future], step: str | None = None) -> list[dict[str, Any]]:
        """The results of the jobs ``futures``, in order.

        :func:`evaluate_batch` never raises for a bad candidate, so an exception here is the
        infrastructure's (a worker process that died, a lost Dask worker): it is a
        :class:`WorkerCrash`, never a law's score; nothing of the generation is archived.
        """
        results: list[dict[str, Any]] = []
        try:
            for done, future in enumerate(futures, start=1):
                results += future.result()
                if step is not None:
                    self.step(step, done, len(futures))
        except Exception as exc:  # re-raised: an infrastructure failure (candidates' own failures are data already)
            raise self._crash(exc) from exc
        return results

    def _crash(self, exc: Exception) -> WorkerCrash:
        return WorkerCrash(f"a worker failed in generation {self.state.generation} ({type(exc).__name__}: "
                           f"{exc}); nothing of that generation was recorded: fix the cause and continue with "
                           f"--resume --out {self.run_dir}")

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
            law_json = write_outputs(self._finished_run())
            self.notes[:] = law_json["notes"]
            self.state.finished = not interrupted
            self.state.elapsed = self.elapsed
            save_checkpoint(self.run_dir, self.state)
        finally:
            self.close()
        return DiscoveryResult(self.run_dir, law_json, self.state, interrupted, self.notes, task=self.task)

    def _finished_run(self) -> FinishedRun:
        """The frozen record of this run that :func:`~.outputs.write_outputs` writes out."""
        from .outputs import FinishedRun

        winner = self.winner()
        summaries = {p.name: hook() for p in self.proposers if (hook := optional_hook(p, "run_summary"))}
        return FinishedRun(task=self.task, settings=self.settings, state=self.state, run_dir=self.run_dir,
                           winner=winner, selection=self.selection, search_train=self.search_train,
                           validation_rows=len(self.validation), validation_fraction=self.validation_fraction,
                           notes=tuple(self.notes), proposer_summaries=summaries, elapsed=lambda: self.elapsed,
                           log=self.log, step=self.step, executor=self.get_executor)

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
            except (OSError, RuntimeError) as exc:  # closing must not hide the run's result
                self.log(f"{proposer.name}: close failed: {exc}")
        self._lock.release()


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
