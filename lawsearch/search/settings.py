"""Run settings of a discovery: budget, population, proposers, fitting effort.

One precedence rule (:mod:`lawsearch.precedence`): CLI options > environment
(:mod:`lawsearch.environment`) > the run config YAML (``--config``) > the defaults below,
for the engine blocks (``llm:``, ``operon:``, ``pysr:``) too.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_serializer, field_validator,
                      model_validator)

from .. import environment
from ..errors import TaskError
from ..precedence import merge_layers
from ..proposers.engine_settings import EngineSettings
from ..proposers.llm.settings import LLMSettings
from ..proposers.sr.settings import OperonSettings, PySRSettings

__all__ = ["SearchSettings", "PROPOSER_NAMES", "DEFAULT_WEIGHTS", "resolve_settings"]

PROPOSER_NAMES = ("library", "mutate", "operon", "pysr", "llm")
DEFAULT_WEIGHTS = {"library": 1.0, "mutate": 4.0, "operon": 1.0, "pysr": 1.0, "llm": 1.0}
#: the engine blocks of a run config, by proposer name.
ENGINE_BLOCKS: dict[str, type[EngineSettings]] = {"llm": LLMSettings, "operon": OperonSettings, "pysr": PySRSettings}


class SearchSettings(BaseModel):
    """Every knob of a discovery run (see ``lawsearch discover --help``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    generations: int = Field(40, ge=1, description="maximum number of generations")
    max_evals: int = Field(6000, ge=1, description="maximum number of distinct laws fitted")
    time_limit: float = Field(120.0, gt=0, description="wall-time budget in seconds")
    workers: int | None = Field(None, ge=1, description="local worker processes for fitting (None: one per core, "
                                                       "at most 4)")
    scheduler: str | None = Field(None, description="Dask scheduler address, e.g. tcp://host:8786")
    islands: int = Field(4, ge=1)
    population_size: int = Field(24, ge=2, description="survivors per island")
    migration_interval: int = Field(5, ge=1, description="generations between migrations")
    migrants: int = Field(2, ge=0)
    proposals_per_generation: int = Field(32, ge=1)
    initial_library: int = Field(80, ge=0, description="library forms evaluated in generation 0")
    seed_human_laws: bool = Field(True, description="start from the task's human laws too (as library forms)")
    proposers: tuple[str, ...] | None = Field(None, description="None: every available proposer")
    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    validation_fraction: float | typing.Literal["auto"] = Field(
        "auto", description="share of each group's train rows the search validates on; 'auto': the test "
                            "split's share of all rows (Task.validation_fraction)"
    )
    selection_tolerance: float = Field(
        0.0, ge=0, description="winner: simplest Pareto law within best + max(standard error, this relative margin)"
    )
    winner_rule: typing.Literal["lowest", "one-se", "consensus", "anchored"] = Field(
        "lowest", description="the winner without folds: 'lowest', the front's law of lowest validation error; "
                              "'one-se', the simplest law of the one-standard-error "
                              "band; 'consensus', the band's law whose extrapolation agrees most with the others'; "
                              "'anchored', the simplest law of the band that validates at least as well as a seeded "
                              "human law within the band"
    )
    folds: int = Field(1, ge=1, description="nested extrapolation folds of train that rank the finalists (1: the "
                                             "validation cut alone, with the one-standard-error rule)")
    max_parameters: int | None = Field(None, ge=1, description="overrides the task's limits.max_parameters")
    max_complexity: int = Field(200, ge=3, description="largest expression-tree size a law may have")
    search_starts: int = Field(24, ge=1, description="fitter multi-start candidates during the search")
    search_local: int = Field(3, ge=1, description="fitter local optimizations during the search")
    search_max_nfev: int = Field(200, ge=10, description="residual evaluations per local fit during the search")
    batch_size: int = Field(4, ge=1, description="candidates per executor task")
    refine_top: int = Field(8, ge=0, description="best laws re-scored with the full fitter before selection")
    bootstrap: int = Field(100, ge=0, description="bootstrap resamples for the winner's intervals (0: none)")
    bootstrap_time_limit: float = Field(120.0, gt=0, description="wall-time bound of the bootstrap in seconds")
    llm: LLMSettings = Field(default_factory=LLMSettings, description="the LLM proposer's settings (model, ...)")
    llm_cli: dict[str, Any] = Field(default_factory=dict, description="provenance: the llm settings given on the "
                                                                      "command line (--llm-*), already merged into llm")
    operon: OperonSettings = Field(default_factory=OperonSettings, description="the Operon proposer's settings")
    pysr: PySRSettings = Field(default_factory=PySRSettings, description="the PySR proposer's settings")

    @field_serializer("llm", "operon", "pysr")
    def _given(self, block: EngineSettings) -> dict[str, Any]:
        """An engine block is recorded as given (its defaults are the engine's own)."""
        return block.set_values()

    def engines(self) -> dict[str, EngineSettings]:
        """The engine blocks by proposer name."""
        return {"llm": self.llm, "operon": self.operon, "pysr": self.pysr}

    @model_validator(mode="after")
    def _cli_in_llm(self) -> SearchSettings:
        """``llm_cli`` records where settings of ``llm`` came from, so each of its values is ``llm``'s."""
        given = self.llm.model_dump(mode="json")
        for name, value in self.llm_cli.items():
            if name not in given or given[name] != value:
                raise ValueError(f"llm_cli records the --llm-* options merged into llm; llm_cli.{name} = {value!r} "
                                 f"is not llm.{name} = {given.get(name)!r}")
        return self

    @field_validator("proposers")
    @classmethod
    def _known_proposers(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        unknown = [p for p in value if p not in PROPOSER_NAMES]
        if unknown:
            raise ValueError(f"unknown proposer {unknown[0]!r}; choose from {', '.join(PROPOSER_NAMES)}")
        if not value:
            raise ValueError("give at least one proposer")
        return tuple(dict.fromkeys(value))

    @field_validator("scheduler")
    @classmethod
    def _one_executor(cls, value: str | None, info: ValidationInfo) -> str | None:
        workers = info.data.get("workers")
        if value and workers is not None:
            raise ValueError(f"a Dask scheduler runs the fits on its own workers; workers = {workers} (local "
                             "processes) cannot go with it: give --workers or --scheduler, not both")
        return value

    @field_validator("validation_fraction", mode="before")
    @classmethod
    def _fraction(cls, value: Any) -> float | str:
        if value == "auto":
            return value
        try:
            share = float(value)
        except (TypeError, ValueError):
            share = math.nan
        if not 0 < share < 1:
            raise ValueError(f"give a share between 0 and 1 (exclusive), or 'auto'; got {value!r}")
        return share

    @field_validator("weights")
    @classmethod
    def _known_weights(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = [p for p in value if p not in PROPOSER_NAMES]
        if unknown:
            raise ValueError(f"weight for unknown proposer {unknown[0]!r}")
        if any(w < 0 for w in value.values()):
            raise ValueError("proposer weights must be >= 0")
        return {**DEFAULT_WEIGHTS, **value}


def _read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise TaskError(f"{path}: run config not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise TaskError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TaskError(f"{path}: a run config is a mapping of settings")
    return data


def resolve_settings(
    cli: Mapping[str, Any] | None = None,
    config: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> SearchSettings:
    """The run settings by the one precedence rule (:func:`lawsearch.precedence.merge_layers`): CLI options
    > environment (:mod:`lawsearch.environment`) > run config YAML > defaults; ``None`` CLI values are unset.
    The engine blocks (``llm:``, ``operon:``, ``pysr:``; ``--llm-*`` options in ``cli["llm"]``) are merged
    and validated here too, so a bad key or value is a :class:`TaskError` before a run writes anything."""
    source = "defaults" if config is None else str(config)
    layers = [_read_config(Path(config)) if config is not None else {}, environment.settings_layer(environ),
              dict(cli or {})]
    for layer, where in zip(layers, (source, "environment", "the command line")):
        if "llm_cli" in layer:
            raise TaskError(f"{where}: setting 'llm_cli' is recorded from the --llm-* options, not set: "
                            "give the llm settings under 'llm'")
    for layer, where in zip(layers, (None, None, "--llm")):
        for name, block_type in ENGINE_BLOCKS.items():
            if layer.get(name) is not None:
                layer[name] = block_type.normalize(layer[name], where if name == "llm" else None)
    llm_cli = {name: value for name, value in (layers[2].get("llm") or {}).items() if value is not None}
    merged = merge_layers(*layers)
    engines = {name: block_type(**merged.pop(name, {})) for name, block_type in ENGINE_BLOCKS.items()}
    try:
        return SearchSettings(**merged, **engines, llm_cli=LLMSettings(**llm_cli).set_values())
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(p) for p in problem["loc"]) or "settings"
        message = problem["msg"].removeprefix("Value error, ")
        raise TaskError(f"{source}: setting {field!r}: {message}") from None
