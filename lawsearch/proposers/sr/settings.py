"""The settings blocks of the SR engines (``operon:``, ``pysr:`` of a run config), with the
operators each engine may be given."""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from ..engine_settings import EngineSettings, operator_names

__all__ = ["SRSettings", "OperonSettings", "PySRSettings", "RAW_OPERATORS", "LOG_OPERATORS",
           "SUPPORTED_OPERATORS", "SUPPORTED_BINARY", "SUPPORTED_UNARY", "supported_operators"]

RAW_OPERATORS = ("add", "mul", "pow", "constant", "variable")
LOG_OPERATORS = ("add", "sub", "mul", "div", "exp", "constant", "variable")
#: Operon's arithmetic symbols (``aq``: a/sqrt(1+b^2); ``powabs``: abs(a)^b).
_OPERON_ARITHMETIC = ("add", "sub", "mul", "div", "pow", "powabs", "aq", "square", "constant", "variable")


@functools.cache
def supported_operators() -> dict[str, frozenset[str]]:
    """The operators each engine may be given, derived from the grammar's one table on first use (so
    reading settings does not load sympy, which the grammar's builders need):

    - ``SUPPORTED_OPERATORS``: Operon symbols whose printed form the safe parser reads: the arithmetic ones
      and Operon's operators for grammar functions (:func:`~lawsearch.formula.grammar.engine_operators`;
      fmin/fmax and trigonometry are left out);
    - ``SUPPORTED_BINARY``: PySR binary operators the parser reads: the arithmetic ones and PySR's
      operators for the grammar's functions of two arguments;
    - ``SUPPORTED_UNARY``: PySR unary operators the parser reads (after ``PYSR_FUNCTIONS``): PySR's
      operators for the grammar's one-argument functions and the rewritten arithmetic ones.
    """
    from ...formula.grammar import engine_operators
    from .rewrite import GRAMMAR_UNARY, PYSR_UNARY_REWRITES

    pysr = engine_operators("pysr")
    return {
        "SUPPORTED_OPERATORS": (frozenset(_OPERON_ARITHMETIC) | frozenset(engine_operators("operon"))
                                | frozenset(engine_operators("operon", of_abs=True))),
        "SUPPORTED_BINARY": frozenset({"+", "-", "*", "/", "^"}) | frozenset(
            operator for operator, name in pysr.items() if name not in GRAMMAR_UNARY),
        "SUPPORTED_UNARY": frozenset(operator for operator, name in pysr.items()
                                     if name in GRAMMAR_UNARY) | frozenset(PYSR_UNARY_REWRITES),
    }


def __getattr__(name: str) -> Any:
    """``SUPPORTED_OPERATORS``, ``SUPPORTED_BINARY``, ``SUPPORTED_UNARY``: see :func:`supported_operators`."""
    if name in ("SUPPORTED_OPERATORS", "SUPPORTED_BINARY", "SUPPORTED_UNARY"):
        return supported_operators()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_EXP_LOG = ("exp", "log", "log2", "log10", "log1p")


def _supported(value: Any, supported: frozenset[str], separator: str = ", ") -> tuple[str, ...]:
    """Operator names (a list or ``"a,b"``), each checked against ``supported``, without repeats."""
    names = operator_names(value) or ()
    bad = [name for name in names if name not in supported]
    if bad:
        raise ValueError(f"{bad[0]!r} is not supported; choose from {separator.join(sorted(supported))}")
    return tuple(dict.fromkeys(names))


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("give a finite number of seconds")
    return value


class SRSettings(EngineSettings):
    """What every SR engine's block has: log inputs, residual runs, the row cap, group standardizing.

    - ``use_log_inputs``: also run on log-transformed inputs (inputs positive on every row).
    - ``residual_runs``: run on residuals/ratios of the best laws and propose combined laws.
    - ``max_rows``: search-train rows used per run (a seeded subsample above it).
    - ``standardize_groups``: standardize the target within each group when there are several.
    """

    use_log_inputs: bool = True
    residual_runs: bool = True
    max_rows: int = Field(400, ge=5)
    standardize_groups: bool = True


class OperonSettings(SRSettings):
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
    """

    section: ClassVar[str] = "operon"

    operators: tuple[str, ...] | None = None
    max_length: int = Field(25, ge=3)
    max_depth: int = Field(10, ge=1)
    population_size: int = Field(500, ge=1)
    generations: int = Field(200, ge=1)
    max_evaluations: int = Field(300_000, ge=1)
    time_limit: float = Field(10.0, gt=0)
    optimizer_iterations: int = Field(5, ge=0)
    n_threads: int = Field(1, ge=1)

    @field_validator("operators", mode="before")
    @classmethod
    def _operators(cls, value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        supported = supported_operators()["SUPPORTED_OPERATORS"]
        ops = tuple(dict.fromkeys((*_supported(value, supported), "constant", "variable")))
        if not set(ops) - {"constant", "variable"}:
            raise ValueError("give at least one operation (e.g. add, mul)")
        return ops

    @field_validator("time_limit")
    @classmethod
    def _time_limit(cls, value: float) -> float:
        return _finite(value)

    def variants(self) -> list[tuple[str, tuple[str, ...]]]:
        """The (input transform, operator set) pairs the direct runs alternate between."""
        raw_ops = self.operators or RAW_OPERATORS
        log_ops = self.operators or LOG_OPERATORS
        pairs = [("raw", raw_ops)]
        if self.use_log_inputs:
            pairs.append(("log", log_ops))
        return pairs


class PySRSettings(SRSettings):
    """Knobs of the PySR proposer (the run settings' ``pysr:`` block), mapped by :meth:`to_pysr_kwargs`.

    - ``binary_operators`` / ``unary_operators``: PySR operator names (see
      :data:`SUPPORTED_BINARY`, :data:`SUPPORTED_UNARY`).
    - ``maxsize``, ``maxdepth``: expression size limits; ``niterations``, ``populations``,
      ``population_size``, ``max_evals``: the search budget; ``timeout_in_seconds``: a wall cap per run.
    - ``exponent_complexity``: the largest complexity of an exponent (``constraints={'^': (-1, k)}``).
    - ``nested_exp_log``: allow exp/log inside exp/log (default: not, via ``nested_constraints``).
    - ``deterministic``: with a seed, ``deterministic=True`` and ``parallelism='serial'``.
    - ``precision``: 16, 32 or 64-bit floats in Julia.
    - ``extra``: further ``PySRRegressor`` keyword arguments, passed through last.
    """

    section: ClassVar[str] = "pysr"

    binary_operators: tuple[str, ...] = ("+", "-", "*", "/", "^")
    unary_operators: tuple[str, ...] = ("exp", "log")
    maxsize: int = Field(25, ge=3)
    maxdepth: int | None = None
    niterations: int = Field(40, ge=1)
    populations: int = Field(15, ge=1)
    population_size: int = Field(33, ge=1)
    max_evals: int | None = None
    timeout_in_seconds: float | None = Field(60.0, gt=0)
    exponent_complexity: int = Field(1, ge=1)
    nested_exp_log: bool = False
    deterministic: bool = True
    precision: Literal[16, 32, 64] = 64
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("binary_operators", mode="before")
    @classmethod
    def _binary(cls, value: Any) -> tuple[str, ...]:
        return _supported(value, supported_operators()["SUPPORTED_BINARY"], " ")

    @field_validator("unary_operators", mode="before")
    @classmethod
    def _unary(cls, value: Any) -> tuple[str, ...]:
        return _supported(value, supported_operators()["SUPPORTED_UNARY"])

    @field_validator("timeout_in_seconds")
    @classmethod
    def _timeout(cls, value: float | None) -> float | None:
        return None if value is None else _finite(value)

    @model_validator(mode="after")
    def _some_operator(self) -> PySRSettings:
        if not self.binary_operators and not self.unary_operators:
            raise ValueError("give at least one operator")
        return self

    @property
    def operators(self) -> tuple[str, ...]:
        return (*self.binary_operators, *self.unary_operators)

    def to_pysr_kwargs(self, seed: int | None = None) -> dict[str, Any]:
        """Keyword arguments of ``pysr.PySRRegressor`` for one seeded run."""
        kwargs: dict[str, Any] = {
            "binary_operators": list(self.binary_operators),
            "unary_operators": list(self.unary_operators),
            "maxsize": self.maxsize,
            "niterations": self.niterations,
            "populations": self.populations,
            "population_size": self.population_size,
            "model_selection": "best",
            "precision": self.precision,
            "progress": False,
            "verbosity": 0,
            "temp_equation_file": True,
            "delete_tempfiles": True,
        }
        if self.maxdepth is not None:
            kwargs["maxdepth"] = self.maxdepth
        if self.max_evals is not None:
            kwargs["max_evals"] = self.max_evals
        if self.timeout_in_seconds is not None:
            kwargs["timeout_in_seconds"] = self.timeout_in_seconds
        if "^" in self.binary_operators:
            kwargs["constraints"] = {"^": (-1, self.exponent_complexity)}
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
