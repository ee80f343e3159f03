"""Symbolic regression with Operon (PyPI ``pyoperon``, C++, prebuilt wheels) as a proposer.

Each call of :meth:`OperonProposer.propose` runs one seeded, time-bounded Operon
search on the search-train rows (never validation or test rows) and returns
formulas read from its whole Pareto front (accuracy × length), translated into
our grammar by :mod:`lawsearch.proposers.sr.translation`: every number Operon
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

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...errors import EngineUnavailable
from .loop import EngineModel, SRJob, SRProposer
from .settings import LOG_OPERATORS, RAW_OPERATORS, SUPPORTED_OPERATORS, OperonSettings

__all__ = [
    "OperonSettings",
    "OperonProposer",
    "RAW_OPERATORS",
    "LOG_OPERATORS",
    "SUPPORTED_OPERATORS",
    "load_operon",
]

INSTALL_HINT = "install it with: pip install 'lawsearch[operon]'  (or: pip install pyoperon)"
PRECISION = 20  # digits after the point in Operon's fixed-point output (keeps tiny weights non-zero)


def load_operon() -> Any:
    """Import ``pyoperon.sklearn`` or raise :class:`EngineUnavailable` saying how to install it."""
    try:
        from pyoperon import sklearn as operon_sklearn
    except (ImportError, OSError) as exc:  # not installed, or a broken binary wheel
        raise EngineUnavailable(f"Operon is not usable ({type(exc).__name__}: {exc}); {INSTALL_HINT}") from None
    return operon_sklearn


class OperonProposer(SRProposer):
    """Proposes laws found by Operon (direct, residual and ratio runs); see the module docstring."""

    name = "operon"

    def __init__(self, settings: OperonSettings | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        if not isinstance(settings, OperonSettings) or overrides:
            base = settings.set_values() if isinstance(settings, OperonSettings) else dict(settings or {})
            settings = OperonSettings.from_mapping({**base, **overrides})
        super().__init__(settings)

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
            except (RuntimeError, ValueError, TypeError, KeyError):  # pragma: no cover - drops one model
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
