"""Symbolic regression with Operon (PyPI ``pyoperon``, C++, prebuilt wheels) as a proposer.

Each call of :meth:`OperonProposer.propose` runs one seeded, time-bounded Operon
search on the search-train rows (never validation or test rows) and returns
formulas read from its whole Pareto front (accuracy × length), translated into
our grammar by :mod:`lawsearch.proposers.sr.translate`: every number Operon
fitted becomes a parameter, which the shared fitter refits per group, so SR
output competes on exactly the same validation score as every other proposal.

The calls cycle through direct runs and residual/ratio runs on the best laws
(see :class:`lawsearch.proposers.sr.loop.SRProposer`).  Direct runs
alternate raw inputs with ``add,mul,pow,constant,variable`` and ``log(inputs)``
with ``add,sub,mul,div,exp,constant,variable`` (there ``exp(k*log x)`` reads
back as ``x**k``): these two small sets recover ``E + A*N**-a + B*D**-b``
exactly, while large operator sets bloat the front.  Operon runs with
``objectives=['r2', 'length']`` (NSGA-II), ``optimizer_iterations`` > 0 (its
default 0 leaves constants untuned) and BIC to rank its front (its default
MDL picks trivially short models); every model of ``pareto_front_`` is read,
printed with ``get_model_string(precision=20)`` (fixed-point, ``^`` for powers).

Operon is deterministic for a seed (``random_state``, drawn from
``context.rng``) even with several threads, as long as the evaluation budget
(``max_evaluations``/``generations``) ends the run before ``time_limit`` does.

Settings come from the run settings' ``operon:`` block (see :class:`OperonSettings`)::

    operon:
      operators: [add, mul, pow, constant, variable]   # default: alternate the two sets above
      max_length: 25
      time_limit: 10        # seconds per Operon run
      n_threads: 1
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import EngineUnavailable, TaskError
from ..base import known_settings, split_names
from .loop import EngineModel, SRJob, SRProposer

__all__ = [
    "OperonSettings",
    "OperonProposer",
    "RAW_OPERATORS",
    "LOG_OPERATORS",
    "SUPPORTED_OPERATORS",
    "load_operon",
]

RAW_OPERATORS = ("add", "mul", "pow", "constant", "variable")
LOG_OPERATORS = ("add", "sub", "mul", "div", "exp", "constant", "variable")
#: Operon symbols whose printed form the safe parser reads (fmin/fmax and trigonometry are left out).
SUPPORTED_OPERATORS = frozenset(
    {
        "add", "sub", "mul", "div", "pow", "powabs", "aq", "exp", "log", "logabs", "log1p",
        "sqrt", "sqrtabs", "cbrt", "square", "abs", "tanh", "constant", "variable",
    }
)
INSTALL_HINT = "install it with: pip install 'lawsearch[operon]'  (or: pip install pyoperon)"
PRECISION = 20  # digits after the point in Operon's fixed-point output (keeps tiny weights non-zero)


def load_operon() -> Any:
    """Import ``pyoperon.sklearn`` or raise :class:`EngineUnavailable` saying how to install it."""
    try:
        from pyoperon import sklearn as operon_sklearn
    except Exception as exc:  # ImportError, or a broken binary wheel
        raise EngineUnavailable(f"Operon is not usable ({type(exc).__name__}: {exc}); {INSTALL_HINT}") from None
    return operon_sklearn


@dataclass(frozen=True)
class OperonSettings:
    """Knobs of the Operon proposer (the run settings' ``operon:`` block).

    - ``operators``: Operon symbols (``add,sub,mul,div,pow,exp,log,sqrt,square,...``;
      ``constant`` and ``variable`` are always added); ``None`` alternates the two small
      measured sets :data:`RAW_OPERATORS` (raw inputs) and :data:`LOG_OPERATORS` (log inputs).
    - ``max_length``/``max_depth``: tree size limits.
    - ``population_size``, ``generations``, ``max_evaluations``: the search budget, which
      normally ends a run; ``time_limit``: wall seconds per run, a cap (a run it cuts short
      is not reproducible).
    - ``optimizer_iterations``: Levenberg-Marquardt steps on each model's constants.
    - ``n_threads``: Operon threads (results do not depend on it).
    - ``use_log_inputs``: also run on log-transformed inputs (inputs positive on every row).
    - ``residual_runs``: run on residuals/ratios of the best laws and propose combined laws.
    - ``max_rows``: search-train rows used per run (a seeded subsample above it).
    - ``standardize_groups``: standardize the target within each group when there are several.
    """

    operators: tuple[str, ...] | None = None
    max_length: int = 25
    max_depth: int = 10
    population_size: int = 500
    generations: int = 200
    max_evaluations: int = 300_000
    time_limit: float = 10.0
    optimizer_iterations: int = 5
    n_threads: int = 1
    use_log_inputs: bool = True
    residual_runs: bool = True
    max_rows: int = 400
    standardize_groups: bool = True

    def __post_init__(self) -> None:
        if self.operators is not None:
            raw = self.operators.split(",") if isinstance(self.operators, str) else self.operators
            ops = tuple(str(o).strip() for o in raw if str(o).strip())
            unknown = [o for o in ops if o not in SUPPORTED_OPERATORS]
            if unknown:
                raise TaskError(
                    f"operon.operators: {unknown[0]!r} is not supported; choose from "
                    f"{', '.join(sorted(SUPPORTED_OPERATORS))}"
                )
            ops = tuple(dict.fromkeys((*ops, "constant", "variable")))
            if not set(ops) - {"constant", "variable"}:
                raise TaskError("operon.operators: give at least one operation (e.g. add, mul)")
            object.__setattr__(self, "operators", ops)
        for name in ("max_depth", "population_size", "generations", "max_evaluations", "n_threads"):
            if int(getattr(self, name)) < 1:
                raise TaskError(f"operon.{name} must be at least 1, got {getattr(self, name)!r}")
        if self.max_length < 3:
            raise TaskError(f"operon.max_length must be at least 3, got {self.max_length!r}")
        if self.optimizer_iterations < 0:
            raise TaskError(f"operon.optimizer_iterations must be >= 0, got {self.optimizer_iterations!r}")
        if not (self.time_limit > 0 and math.isfinite(self.time_limit)):
            raise TaskError(f"operon.time_limit must be a positive number of seconds, got {self.time_limit!r}")
        if self.max_rows < 5:
            raise TaskError(f"operon.max_rows must be at least 5, got {self.max_rows!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> OperonSettings:
        """Build from the run settings' ``operon:`` mapping; unknown keys are a :class:`TaskError`."""
        values = known_settings(cls, values, "operon")
        values["operators"] = split_names(values.get("operators"))
        return cls(**values)

    def variants(self) -> list[tuple[str, tuple[str, ...]]]:
        """The (input transform, operator set) pairs the direct runs alternate between."""
        raw_ops = self.operators or RAW_OPERATORS
        log_ops = self.operators or LOG_OPERATORS
        pairs = [("raw", raw_ops)]
        if self.use_log_inputs:
            pairs.append(("log", log_ops))
        return pairs


class OperonProposer(SRProposer):
    """Proposes laws found by Operon (direct, residual and ratio runs); see the module docstring."""

    name = "operon"

    def __init__(self, settings: OperonSettings | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        base = dataclasses.asdict(settings) if isinstance(settings, OperonSettings) else dict(settings or {})
        super().__init__(OperonSettings.from_mapping({**base, **overrides}))

    def _load(self) -> Any:
        return load_operon()

    def _variants(self) -> list[tuple[str, tuple[str, ...]]]:
        return self.settings.variants()

    def _placeholders(self, n: int) -> list[str]:
        return [f"X{i + 1}" for i in range(n)]

    def regressor(self, engine: Any, operators: tuple[str, ...], seed: int) -> Any:
        """The configured ``pyoperon.sklearn.SymbolicRegressor``."""
        s = self.settings
        return engine.SymbolicRegressor(
            allowed_symbols=",".join(operators),
            objectives=["r2", "length"],
            model_selection_criterion="bayesian_information_criterion",
            optimizer_iterations=s.optimizer_iterations,
            max_length=s.max_length,
            max_depth=s.max_depth,
            population_size=s.population_size,
            generations=s.generations,
            max_evaluations=s.max_evaluations,
            n_threads=s.n_threads,
            max_time=max(1, int(math.ceil(min(s.time_limit, self._engine_seconds())))),
            random_state=seed,
        )

    def _search(self, engine: Any, X: np.ndarray, y: np.ndarray, job: SRJob, seed: int) -> list[EngineModel]:
        reg = self.regressor(engine, job.operators, seed)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            reg.fit(np.ascontiguousarray(X, dtype=float), np.ascontiguousarray(y, dtype=float))
        names = self._placeholders(X.shape[1])
        front = []
        for model in reg.pareto_front_:
            try:
                text = reg.get_model_string(model["tree"], precision=PRECISION, names=names)
            except Exception:  # pragma: no cover - a formatter problem drops one model
                continue
            front.append(
                EngineModel(
                    expression=text,
                    length=int(model.get("length", 0)),
                    loss=float(model.get("mean_squared_error", math.nan)),
                    criterion=float(model.get("bayesian_information_criterion", math.nan)),
                )
            )
        return front
