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

import importlib
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...errors import EngineUnavailable
from .loop import EngineModel, SRJob, SRProposer
from .rewrite import PYSR_FUNCTIONS
from .settings import SUPPORTED_BINARY, SUPPORTED_UNARY, PySRSettings

__all__ = [
    "PySRSettings",
    "PySRProposer",
    "load_pysr",
    "INSTALL_HELP",
    "SUPPORTED_BINARY",
    "SUPPORTED_UNARY",
]

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


class PySRProposer(SRProposer):
    """Proposes laws found by PySR; raises :class:`EngineUnavailable` where Julia/PySR is missing."""

    name = "pysr"
    functions = PYSR_FUNCTIONS

    def __init__(self, settings: PySRSettings | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        if not isinstance(settings, PySRSettings) or overrides:
            base = settings.set_values() if isinstance(settings, PySRSettings) else dict(settings or {})
            settings = PySRSettings.from_mapping({**base, **overrides})
        super().__init__(settings)
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


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan
