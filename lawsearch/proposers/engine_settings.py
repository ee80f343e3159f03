"""The base of the engines' settings blocks (``llm:``, ``operon:``, ``pysr:`` of a run config).

Each block is a frozen pydantic model: unknown keys are refused, strings from the
environment or the command line are read as the field's type (``"3"``, ``"yes"``,
``"none"`` for an optional field), and a bad value is a one-line :class:`TaskError`
naming ``block.field``.  The layers of a block are merged by the one precedence rule of
:mod:`lawsearch.precedence` in :func:`lawsearch.search.settings.resolve_settings`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import TaskError

__all__ = ["EngineSettings", "operator_names"]

_NONE_WORDS = ("", "none", "null")


def operator_names(value: Any) -> tuple[str, ...] | None:
    """Operator lists may be written ``"add,mul"`` or as a list; ``None`` stays ``None``."""
    if value is None:
        return None
    raw = value.split(",") if isinstance(value, str) else value
    return tuple(str(v).strip() for v in raw if str(v).strip())


def _optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(
        annotation)


class EngineSettings(BaseModel):
    """Typed, frozen settings of one engine; ``section`` names its block in messages."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    section: ClassVar[str] = "engine"
    #: other names of settings: alias → the fields it sets.
    aliases: ClassVar[dict[str, tuple[str, ...]]] = {}

    every: int | None = Field(None, ge=1, description="generations between the proposer's calls (None: its "
                                                      "default cadence, see lawsearch.search.scheduling)")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise TaskError(self._one_line(exc)) from None

    @model_validator(mode="before")
    @classmethod
    def _none_words(cls, values: Any) -> Any:
        """``"none"``/``"null"``/``""`` from a command line or the environment unset an optional field."""
        if not isinstance(values, Mapping):
            return values
        return {key: None if (isinstance(value, str) and value.strip().lower() in _NONE_WORDS and key in
                              cls.model_fields and _optional(cls.model_fields[key].annotation)) else value
                for key, value in values.items()}

    @classmethod
    def _one_line(cls, exc: ValidationError) -> str:
        problem = exc.errors()[0]
        field = ".".join(str(p) for p in problem["loc"])
        if problem["type"] == "extra_forbidden":
            return f"{cls.section}.{field}: unknown setting; known: {', '.join(cls.field_names())}"
        message = problem["msg"].removeprefix("Value error, ")
        where = f"{cls.section}.{field}" if field else cls.section
        return f"{where}: {message}, got {problem['input']!r}"

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(sorted(cls.model_fields))

    @classmethod
    def normalize(cls, block: Any, where: str | None = None) -> dict[str, Any]:
        """The block's keys as field names (``-`` read as ``_``, aliases expanded); an unknown key or a
        block that is not a mapping is a :class:`TaskError` naming ``where`` (default: the section)."""
        where = where or cls.section
        if not isinstance(block, Mapping):
            raise TaskError(f"{where}: expected a mapping of settings, got {type(block).__name__}")
        out: dict[str, Any] = {}
        for key, value in block.items():
            name = str(key).replace("-", "_")
            names = cls.aliases.get(name, (cls._field_of(name),))
            if names == (None,):
                raise TaskError(f"{where}.{key}: unknown setting; known: {', '.join(cls.field_names())}")
            out.update(dict.fromkeys(names, value))
        return out

    @classmethod
    def _field_of(cls, name: str) -> str | None:
        return name if name in cls.model_fields else None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> typing.Self:
        """Build from the run config's block (``None``: the defaults)."""
        return cls(**cls.normalize(values or {}))

    def set_values(self) -> dict[str, Any]:
        """The settings given explicitly (JSON-ready), as recorded in law.json."""
        return self.model_dump(mode="json", exclude_unset=True)
