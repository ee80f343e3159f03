"""From a spec and its table to a checked :class:`Task`: ``load_task`` and ``task_from_frame``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from ..errors import DataError, LawsearchError, TaskError
from ..formula import Law, check_plain_name
from .model import DEFAULT_GROUP, Task, TaskData
from .spec import HumanLaw, SplitSpec, TaskSpec, spec_error, expand_pairs, load_spec
from .splits import holdout_largest, scale_score
from .tables import check_header, label_column, load_table, numeric_column, require_columns


def _check_spec(spec: TaskSpec, source: str) -> tuple[tuple[str, ...], list[tuple[str, Law]]]:
    """Check the spec on its own (names, human laws); return the scale columns and the parsed laws."""
    inputs, targets = list(spec.inputs), list(spec.target)
    for field, names in (("inputs", inputs), ("target", targets)):
        for name in names:
            try:
                check_plain_name(name, "column")
            except LawsearchError as exc:
                raise TaskError(f"{source}: '{field}': {exc}") from None
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise TaskError(f"{source}: '{field}' lists {duplicates[0]!r} twice")
    both = [n for n in targets if n in inputs]
    if both:
        raise TaskError(f"{source}: {both[0]!r} is both an input and a target")
    split = spec.split
    for field, name in (("group", spec.group), ("split.column", split.column)):
        if name is not None and name in inputs + targets:
            raise TaskError(f"{source}: '{field}' column {name!r} is also an input or target")
    by = split.rule[0]
    field = "split.extrapolate.by" if split.extrapolate is not None else "split.by"
    scale = inputs if by is None else by
    for name in scale:
        if name not in inputs:
            raise TaskError(f"{source}: '{field}' column {name!r} is not an input (inputs: {', '.join(inputs)})")
    for name in spec.monotone:
        if name not in inputs:
            raise TaskError(f"{source}: 'monotone' names {name!r}, which is not an input (inputs: {', '.join(inputs)})")
    pairs = expand_pairs(spec.pairs, targets, inputs, source)
    laws = []
    for law in spec.human_laws:
        try:
            laws.append((law.name, Law.parse(law.formula, inputs, targets, pairs=pairs)))
        except LawsearchError as exc:
            raise TaskError(f"{source}: human law {law.name!r}: {exc}") from None
        unknown = [name for name in law.bounds if name not in laws[-1][1].parameters]
        if unknown:
            raise TaskError(f"{source}: human law {law.name!r}: 'bounds' names {unknown[0]!r}, which is not a "
                            f"parameter of its formula (parameters: {', '.join(laws[-1][1].parameters)})")
    return tuple(scale), laws


def _build(spec: TaskSpec, checked: tuple[tuple[str, ...], list[tuple[str, Law]]], frame: pd.DataFrame,
           path: Path | None, source: str) -> Task:
    """Validate the table against the spec, split it, and check the human laws' domains."""
    scale_columns, laws = checked
    if len(frame) == 0:
        raise DataError(f"{source}: the table has no rows")
    check_header(source, list(frame.columns))
    frame = frame.reset_index(drop=True)
    split = spec.split
    require_columns(frame, spec.inputs, "inputs", source)
    require_columns(frame, spec.target, "target", source)
    if spec.group is not None:
        require_columns(frame, [spec.group], "group", source)
    if split.column is not None:
        require_columns(frame, [split.column], "split.column", source)

    X = np.column_stack([numeric_column(frame, c, source) for c in spec.inputs])
    Y = np.column_stack([numeric_column(frame, c, source) for c in spec.target])
    groups = label_column(frame, spec.group, source) if spec.group else np.full(len(frame), DEFAULT_GROUP)
    data = TaskData(tuple(spec.inputs), tuple(spec.target), X, Y, groups, np.arange(1, len(frame) + 1))
    log_scale = tuple(bool(np.all(data.column(c) > 0)) for c in scale_columns)

    if split.column is not None:
        labels = frame[split.column]
        bad = np.flatnonzero(~labels.isin(["train", "test"]).to_numpy())
        if bad.size:
            raise DataError(
                f"{source}: split column {split.column!r} has {labels.iloc[bad[0]]!r} at row {bad[0] + 1}; "
                "expected 'train' or 'test'"
            )
        test = (labels == "test").to_numpy()
    else:
        rule = split.extrapolate
        assert rule is not None
        scores = None
        if scale_columns:
            scores = scale_score(np.column_stack([data.column(c) for c in scale_columns]), log_scale, split.rule[1])
        test = holdout_largest(scores, groups, rule.test_fraction, seed=rule.seed)
    for group in data.group_names():
        in_group = groups == group
        for side, rows in (("training", in_group & ~test), ("test", in_group & test)):
            if not rows.any():
                hint = " (a group needs at least 2 rows to be split)" if split.column is None else ""
                raise DataError(f"{source}: group {group!r} has no {side} rows{hint}")

    task = Task(spec, frame, path, source, test, data, scale_columns, log_scale)
    for name, law in laws:
        problem = task._domain_problem(law)
        if problem:
            raise DataError(f"{path or source}: human law {name!r}: {problem}")
    return task


def load_task(path: str | Path, *, use_hub: bool = True) -> Task:
    """Load a task YAML, its data table and its split.

    ``use_hub=False`` never tries the Hugging Face fallback (no network).
    """
    path = Path(path)
    spec = load_spec(path)
    checked = _check_spec(spec, str(path))
    frame, source = load_table(spec, path, use_hub)
    return _build(spec, checked, frame, path, source)


def task_from_frame(
    frame: pd.DataFrame,
    *,
    name: str,
    inputs: str | Sequence[str],
    target: str | Sequence[str],
    group: str | None = None,
    split: Mapping[str, Any] | SplitSpec | None = None,
    description: str = "",
    max_parameters: int | None = None,
    monotone: Mapping[str, str] | None = None,
    pairs: Mapping[str, str] | None = None,
    human_laws: Sequence[Mapping[str, Any] | HumanLaw] = (),
) -> Task:
    """A task over an in-memory table; arguments mean what the YAML fields of the same name do."""
    raw: dict[str, Any] = {
        "name": name,
        "description": description,
        "inputs": inputs if isinstance(inputs, str) else list(inputs),
        "target": target if isinstance(target, str) else list(target),
        "group": group,
        "limits": {"max_parameters": max_parameters},
        "monotone": dict(monotone or {}),
        "pairs": dict(pairs or {}),
        "human_laws": [h.model_dump() if isinstance(h, HumanLaw) else dict(h) for h in human_laws],
    }
    if split is not None:
        raw["split"] = split.model_dump(exclude_none=True, exclude_defaults=True) if isinstance(split, SplitSpec) else split
    source = f"task {name!r}"
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        raise spec_error(source, exc) from None
    return _build(spec, _check_spec(spec, source), frame, None, source)
