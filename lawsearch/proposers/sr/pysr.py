"""Symbolic regression with PySR (SymbolicRegression.jl, on Julia) as a proposer.

PySR is optional: ``pip install 'lawsearch[pysr]'``.  It runs on Julia, which
``juliacall`` downloads (with SymbolicRegression.jl) the first time ``pysr`` is
imported.  So, once, on a machine that is online::

    pip install 'lawsearch[pysr]'
    python -c "import pysr"          # downloads Julia + SymbolicRegression.jl (a few minutes)

Afterwards ``lawsearch discover`` uses it like any other proposer (``--proposers
library,mutate,operon,pysr`` or the run config's ``proposers:`` list) and takes
its settings from the run config's ``pysr:`` block (see :class:`PySRSettings`)::

    pysr:
      binary_operators: ["+", "-", "*", "/", "^"]
      unary_operators: [exp, log]
      maxsize: 25
      niterations: 40
      timeout_in_seconds: 60

With Julia already installed, point juliacall at it instead of downloading one:
``export PYTHON_JULIAPKG_EXE=$(which julia)``; on an offline machine where the
Julia packages are already installed, also ``export PYTHON_JULIAPKG_OFFLINE=yes``.

Where Julia cannot be had (``import pysr`` fails: ``urllib.error.URLError`` when
juliacall cannot download Julia, an ``ImportError`` when PySR is not installed,
or anything else), :meth:`PySRProposer.propose` raises
:class:`~lawsearch.errors.EngineUnavailable` with these instructions; the search
notes it in the run's log and goes on with its other proposers.

Like the Operon proposer (:mod:`.operon`, sharing the loop in
:class:`~lawsearch.proposers.sr.loop.SRProposer`), each call runs one seeded,
time-bounded search on the search-train rows — direct on raw or log inputs, or
on the residual/ratio of one of the best laws — reads the whole ``equations_``
table and translates every ``equation`` string (PySR's own text, e.g.
``((x0 * 2.5382) + square(x1)) + -0.5``) through the safe parser, function names
mapped by :data:`~lawsearch.proposers.sr.rewrite.PYSR_FUNCTIONS`.  The
``sympy_format`` column is never used (PySR builds it with ``sympify``, which
evaluates text).  With a seed, PySR runs with ``deterministic=True`` and
``parallelism="serial"`` so a run is reproducible.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import EngineUnavailable, TaskError
from ..base import known_settings, split_names
from .loop import EngineModel, SRJob, SRProposer
from .rewrite import PYSR_FUNCTIONS

__all__ = [
    "PySRSettings",
    "PySRProposer",
    "load_pysr",
    "INSTALL_HELP",
    "SUPPORTED_BINARY",
    "SUPPORTED_UNARY",
]

#: PySR operators whose printed form the safe parser reads (after :data:`PYSR_FUNCTIONS`).
SUPPORTED_BINARY = frozenset({"+", "-", "*", "/", "^", "max", "min"})
SUPPORTED_UNARY = frozenset(
    {"exp", "log", "log2", "log10", "log1p", "sqrt", "square", "cube", "neg", "inv", "abs", "tanh", "cbrt"}
)
_EXP_LOG = ("exp", "log", "log2", "log10", "log1p")

INSTALL_HELP = (
    "PySR runs on Julia: pip install 'lawsearch[pysr]', then run python -c 'import pysr' once while online "
    "(juliacall downloads Julia and SymbolicRegression.jl); with Julia already installed, set "
    "PYTHON_JULIAPKG_EXE=/path/to/julia (and PYTHON_JULIAPKG_OFFLINE=yes offline). "
    "The search goes on with its other proposers"
)


def load_pysr() -> Any:
    """Import ``pysr`` lazily or raise :class:`EngineUnavailable` saying how to install Julia / PySR.

    Importing PySR starts Julia (and downloads it the first time), so any failure
    at import — ``ImportError``, ``urllib.error.URLError``, a Julia error — is caught.
    """
    try:
        return importlib.import_module("pysr")
    except ModuleNotFoundError as exc:
        if exc.name in ("pysr", "juliacall", "juliapkg"):
            raise EngineUnavailable(f"PySR is not installed ({exc}). {INSTALL_HELP}") from None
        failure = exc
    except (Exception, SystemExit) as exc:  # URLError from juliacall's download, JuliaError, ...
        failure = exc
    raise EngineUnavailable(
        f"PySR is not usable: import pysr failed ({type(failure).__name__}: {failure}). {INSTALL_HELP}"
    ) from None


@dataclass(frozen=True)
class PySRSettings:
    """Knobs of the PySR proposer (the run settings' ``pysr:`` block), mapped by :meth:`to_pysr_kwargs`.

    - ``binary_operators`` / ``unary_operators``: PySR operator names (see
      :data:`SUPPORTED_BINARY`, :data:`SUPPORTED_UNARY`).
    - ``maxsize``, ``maxdepth``: expression size limits; ``niterations``, ``populations``,
      ``population_size``, ``max_evals``: the search budget; ``timeout_in_seconds``: a wall cap per run.
    - ``exponent_complexity``: the largest complexity of an exponent (``constraints={'^': (-1, k)}``).
    - ``nested_exp_log``: allow exp/log inside exp/log (default: not, via ``nested_constraints``).
    - ``deterministic``: with a seed, ``deterministic=True`` and ``parallelism='serial'``.
    - ``precision``: 32 or 64-bit floats in Julia.
    - ``use_log_inputs``, ``residual_runs``, ``max_rows``, ``standardize_groups``: as for Operon.
    - ``extra``: further ``PySRRegressor`` keyword arguments, passed through last.
    """

    binary_operators: tuple[str, ...] = ("+", "-", "*", "/", "^")
    unary_operators: tuple[str, ...] = ("exp", "log")
    maxsize: int = 25
    maxdepth: int | None = None
    niterations: int = 40
    populations: int = 15
    population_size: int = 33
    max_evals: int | None = None
    timeout_in_seconds: float | None = 60.0
    exponent_complexity: int = 1
    nested_exp_log: bool = False
    deterministic: bool = True
    precision: int = 64
    use_log_inputs: bool = True
    residual_runs: bool = True
    max_rows: int = 400
    standardize_groups: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        binary = _names(self.binary_operators)
        unary = _names(self.unary_operators)
        bad = [o for o in binary if o not in SUPPORTED_BINARY]
        if bad:
            choices = " ".join(sorted(SUPPORTED_BINARY))
            raise TaskError(f"pysr.binary_operators: {bad[0]!r} is not supported; choose from {choices}")
        bad = [o for o in unary if o not in SUPPORTED_UNARY]
        if bad:
            choices = ", ".join(sorted(SUPPORTED_UNARY))
            raise TaskError(f"pysr.unary_operators: {bad[0]!r} is not supported; choose from {choices}")
        if not binary and not unary:
            raise TaskError("pysr: give at least one operator")
        object.__setattr__(self, "binary_operators", tuple(dict.fromkeys(binary)))
        object.__setattr__(self, "unary_operators", tuple(dict.fromkeys(unary)))
        for name in ("maxsize", "niterations", "populations", "population_size", "exponent_complexity"):
            if int(getattr(self, name)) < 1:
                raise TaskError(f"pysr.{name} must be at least 1, got {getattr(self, name)!r}")
        if self.maxsize < 3:
            raise TaskError(f"pysr.maxsize must be at least 3, got {self.maxsize!r}")
        if self.timeout_in_seconds is not None and not (
            self.timeout_in_seconds > 0 and math.isfinite(self.timeout_in_seconds)
        ):
            raise TaskError(f"pysr.timeout_in_seconds must be a positive number, got {self.timeout_in_seconds!r}")
        if self.precision not in (16, 32, 64):
            raise TaskError(f"pysr.precision must be 16, 32 or 64, got {self.precision!r}")
        if self.max_rows < 5:
            raise TaskError(f"pysr.max_rows must be at least 5, got {self.max_rows!r}")
        object.__setattr__(self, "extra", dict(self.extra or {}))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> PySRSettings:
        """Build from the run settings' ``pysr:`` mapping; unknown keys are a :class:`TaskError`."""
        values = known_settings(cls, values, "pysr")
        for key in ("binary_operators", "unary_operators"):
            if isinstance(values.get(key), str):
                values[key] = split_names(values[key])
            elif values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)

    @property
    def operators(self) -> tuple[str, ...]:
        return (*self.binary_operators, *self.unary_operators)

    def to_pysr_kwargs(self, seed: int | None = None) -> dict[str, Any]:
        """Keyword arguments of ``pysr.PySRRegressor`` for one seeded run."""
        kwargs: dict[str, Any] = {
            "binary_operators": list(self.binary_operators),
            "unary_operators": list(self.unary_operators),
            "maxsize": int(self.maxsize),
            "niterations": int(self.niterations),
            "populations": int(self.populations),
            "population_size": int(self.population_size),
            "model_selection": "best",
            "precision": int(self.precision),
            "progress": False,
            "verbosity": 0,
            "temp_equation_file": True,
            "delete_tempfiles": True,
        }
        if self.maxdepth is not None:
            kwargs["maxdepth"] = int(self.maxdepth)
        if self.max_evals is not None:
            kwargs["max_evals"] = int(self.max_evals)
        if self.timeout_in_seconds is not None:
            kwargs["timeout_in_seconds"] = float(self.timeout_in_seconds)
        if "^" in self.binary_operators:
            kwargs["constraints"] = {"^": (-1, int(self.exponent_complexity))}
        nesting = [u for u in self.unary_operators if u in _EXP_LOG]
        if nesting and not self.nested_exp_log:
            kwargs["nested_constraints"] = {u: {v: 0 for v in nesting} for u in nesting}
        if seed is not None:
            kwargs["random_state"] = int(seed)
            if self.deterministic:
                kwargs["deterministic"] = True
                kwargs["parallelism"] = "serial"
        kwargs.update(self.extra)
        return kwargs

    def variants(self) -> list[tuple[str, tuple[str, ...]]]:
        pairs = [("raw", self.operators)]
        if self.use_log_inputs:
            pairs.append(("log", self.operators))
        return pairs


class PySRProposer(SRProposer):
    """Proposes laws found by PySR; raises :class:`EngineUnavailable` where Julia/PySR is missing."""

    name = "pysr"
    functions = PYSR_FUNCTIONS

    def __init__(self, settings: PySRSettings | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        if isinstance(settings, PySRSettings):
            base = {f.name: getattr(settings, f.name) for f in dataclasses.fields(PySRSettings)}
        else:
            base = dict(settings or {})
        super().__init__(PySRSettings.from_mapping({**base, **overrides}))
        self._unavailable: EngineUnavailable | None = None

    def _load(self) -> Any:
        if self._unavailable is not None:  # do not retry a failed Julia start on every call
            raise self._unavailable
        try:
            return load_pysr()
        except EngineUnavailable as exc:
            self._unavailable = exc
            raise

    def _variants(self) -> list[tuple[str, tuple[str, ...]]]:
        return self.settings.variants()

    def _placeholders(self, n: int) -> list[str]:
        return [f"x{i}" for i in range(n)]

    def _search(self, engine: Any, X: np.ndarray, y: np.ndarray, job: SRJob, seed: int) -> list[EngineModel]:
        reg = engine.PySRRegressor(**self.settings.to_pysr_kwargs(seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg.fit(np.asarray(X, dtype=float), np.asarray(y, dtype=float))
        return equations_to_models(reg.equations_)


def equations_to_models(equations: Any) -> list[EngineModel]:
    """Rows of PySR's ``equations_`` table (a DataFrame with ``equation``, ``complexity``,
    ``loss``, ``score`` columns; a list of them for several outputs) as engine models.

    Only the ``equation`` text is read; lower criterion is better (``-score``).
    """
    tables = equations if isinstance(equations, list) else [equations]
    models: list[EngineModel] = []
    for table in tables:
        if table is None:
            continue
        records = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
        for row in records:
            text = row.get("equation", row.get("Equation"))
            if not isinstance(text, str) or not text.strip():
                continue
            score = _number(row.get("score"))
            size = _number(row.get("complexity", row.get("Complexity")))
            models.append(
                EngineModel(
                    expression=text,
                    length=int(size) if math.isfinite(size) else 0,
                    loss=_number(row.get("loss", row.get("Loss"))),
                    criterion=-score if math.isfinite(score) else math.nan,
                )
            )
    return models


def _names(values: Any) -> tuple[str, ...]:
    """Operator names from a list or a comma-separated string."""
    items = values.split(",") if isinstance(values, str) else (values or ())
    return tuple(str(v).strip() for v in items if str(v).strip())


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan
