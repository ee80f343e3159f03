"""The task spec: its pydantic schema, the YAML loader with unique keys, and the pairs of a multi-output task."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import TaskError


# ---------------------------------------------------------------------- spec


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Names = Annotated[list[str], BeforeValidator(_as_list)]  # a name or a list of names


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HubSpec(_Spec):
    repo: str
    config: str | None = None
    split: str | None = None  # one hub split; by default all, named in the split column


class SyntheticSpec(_Spec):
    law: str
    parameters: dict[str, float]
    inputs: dict[str, tuple[float, float]]
    rows: int = Field(60, ge=1)
    noise: float = Field(0.0, ge=0)
    seed: int = 0
    groups: dict[str, dict[str, float]] | None = None


class DataSpec(_Spec):
    path: str | None = None
    hub: HubSpec | None = None
    synthetic: SyntheticSpec | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if self.synthetic is not None and (self.path is not None or self.hub is not None):
            raise ValueError("give either 'synthetic' or 'path'/'hub', not both")
        if self.synthetic is None and self.path is None and self.hub is None:
            raise ValueError("give 'path', 'hub' or 'synthetic'")
        return self


ScaleRule = typing.Literal["product", "any"]
Trend = typing.Literal["increasing", "decreasing"]


class ExtrapolateSpec(_Spec):
    by: list[str] | None = None
    largest: ScaleRule = "product"
    test_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0  # used only when by: [] (random holdout)


class SplitSpec(_Spec):
    column: str | None = None
    by: list[str] | None = None
    largest: ScaleRule = "product"
    extrapolate: ExtrapolateSpec | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> SplitSpec:
        if (self.column is None) == (self.extrapolate is None):
            raise ValueError("give exactly one of 'column' or 'extrapolate'")
        if self.extrapolate is not None and (self.by is not None or "largest" in self.model_fields_set):
            raise ValueError("with 'extrapolate', put 'by' and 'largest' inside it")
        return self

    @property
    def rule(self) -> tuple[list[str] | None, str]:
        """(scale columns or None for all inputs, how they combine: 'product' or 'any')."""
        if self.extrapolate is not None:
            return self.extrapolate.by, self.extrapolate.largest
        return self.by, self.largest


class LimitsSpec(_Spec):
    max_parameters: int | None = Field(None, ge=1)


class HumanLaw(_Spec):
    name: str
    formula: str
    reference: str | None = None
    notes: str | None = None
    bounds: dict[str, tuple[float, float]] = {}  # parameter -> (low, high): constraints the paper states

    @field_validator("bounds")
    @classmethod
    def _ordered(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (low, high) in value.items():
            if not low < high:
                raise ValueError(f"bounds of {name!r} must have low < high, got [{low:g}, {high:g}]")
        return value


class TaskSpec(_Spec):
    """The YAML task spec.  ``data`` is required in files; tasks built from a DataFrame have none."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    data: DataSpec | None = None
    inputs: Names = Field(min_length=1)
    target: Names = Field(min_length=1)
    group: str | None = None
    split: SplitSpec = Field(default_factory=lambda: SplitSpec(extrapolate=ExtrapolateSpec()))
    limits: LimitsSpec = LimitsSpec()
    monotone: dict[str, Trend] = {}
    pairs: dict[str, str] = {}  # target (or template with {i}) -> its paired input, named 'self' in laws
    human_laws: list[HumanLaw] = []


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The spec model found at a location path (for listing allowed fields)."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        inner = _find_model(field.annotation) if field is not None else None
        if inner is None:
            return None
        model = inner
    return model


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _find_model(arg)
        if found is not None:
            return found
    return None


def spec_error(source: str, exc: ValidationError) -> TaskError:
    parts = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parent = _model_at(TaskSpec, loc[:-1])
            allowed = f" (allowed: {', '.join(parent.model_fields)})" if parent is not None else ""
            parts.append(f"unknown field '{where}'{allowed}")
        elif err["type"] == "missing":
            parts.append(f"missing required field '{where}'")
        elif where:
            parts.append(f"field '{where}': {message}")
        else:
            parts.append(message)
    return TaskError(f"{source}: " + "; ".join(parts))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate keys instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_spec(path: str | Path) -> TaskSpec:
    """Read and validate a task YAML (no data is loaded)."""
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"task file {str(path)!r} not found")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TaskError(f"{path}: invalid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}: cannot read task file: {exc}") from None
    if raw is None:
        raise TaskError(f"{path}: the file is empty; expected a mapping with name, data, inputs and target")
    if not isinstance(raw, dict):
        raise TaskError(f"{path}: expected a mapping with name, data, inputs and target, got {type(raw).__name__}")
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        raise spec_error(str(path), exc) from None
    if spec.data is None:
        raise TaskError(f"{path}: missing required field 'data'")
    return spec


def expand_pairs(pairs: Mapping[str, str], targets: Sequence[str], inputs: Sequence[str],
                 source: str) -> tuple[tuple[str, str], ...]:
    """(target, input) for every target, from a task's ``pairs`` (names, or templates with ``{i}``)."""
    if not pairs:
        return ()
    found: dict[str, str] = {}
    for key, value in pairs.items():
        if "{i}" in key:
            head, _, tail = key.partition("{i}")
            matched = {t: value.replace("{i}", t[len(head):len(t) - len(tail)]) for t in targets
                       if len(t) > len(head) + len(tail) and t.startswith(head) and t.endswith(tail)}
        else:
            matched = {key: value} if key in targets else {}
        if not matched:
            raise TaskError(f"{source}: 'pairs' key {key!r} matches no target (targets: {', '.join(targets)})")
        for target, name in matched.items():
            if name not in inputs:
                raise TaskError(f"{source}: 'pairs' pairs {target!r} with {name!r}, which is not an input "
                                f"(inputs: {', '.join(inputs)})")
            if target in found:
                raise TaskError(f"{source}: 'pairs' pairs target {target!r} twice")
            found[target] = name
    missing = [t for t in targets if t not in found]
    if missing:
        raise TaskError(f"{source}: 'pairs' leaves target {missing[0]!r} unpaired; pair every target")
    return tuple((t, found[t]) for t in targets)
