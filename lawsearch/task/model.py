"""The :class:`Task` and its rows as arrays (:class:`TaskData`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..fit import FitOptions
from ..formula import Law
from .spec import TaskSpec, expand_pairs
from .splits import holdout_largest, scale_score


DEFAULT_GROUP = "all"
AUTO_VALIDATION_BOUNDS = (0.05, 0.3)  # the "auto" validation share stays within these


@dataclass(frozen=True)
class TaskData:
    """Rows of a task as arrays: inputs X, targets Y, group labels and source row numbers."""

    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    X: np.ndarray  # (n, len(inputs)) float
    Y: np.ndarray  # (n, len(targets)) float
    groups: np.ndarray  # (n,) str labels
    rows: np.ndarray  # (n,) 1-based row numbers in the source table

    def subset(self, mask: np.ndarray) -> TaskData:
        """The rows selected by a boolean mask or an index array."""
        return TaskData(self.inputs, self.targets, self.X[mask], self.Y[mask], self.groups[mask], self.rows[mask])

    def group_names(self) -> list[str]:
        """Group labels in order of first appearance."""
        return list(dict.fromkeys(self.groups.tolist()))

    def column(self, name: str) -> np.ndarray:
        """The values of one input column."""
        return self.X[:, self.inputs.index(name)]

    def __len__(self) -> int:
        return len(self.rows)


class Task:
    """A loaded task: spec, table, train/test split and human laws.  Build with :func:`load_task`."""

    def __init__(self, spec: TaskSpec, frame: pd.DataFrame, path: Path | None, source: str, test: np.ndarray,
                 data: TaskData, scale_columns: tuple[str, ...], log_scale: tuple[bool, ...]) -> None:
        self.spec = spec
        self.path = path
        self.name = spec.name
        self.description = spec.description
        self.inputs = tuple(spec.inputs)
        self.targets = tuple(spec.target)
        self.group_column = spec.group
        self.frame = frame
        self.source = source
        self.train = data.subset(~test)
        self.test = data.subset(test)
        self.human_laws = list(spec.human_laws)
        self.max_parameters = spec.limits.max_parameters
        self.scale_columns = scale_columns
        self.scale_rule = spec.split.rule[1]
        self.monotone = dict(spec.monotone)
        self.pairs = expand_pairs(spec.pairs, self.targets, self.inputs, spec.name)
        self._log_scale = log_scale

    def __repr__(self) -> str:
        return (
            f"Task({self.name!r}: {len(self.train)} train / {len(self.test)} test rows, "
            f"{len(self.train.group_names())} group(s))"
        )

    def smallest_group(self) -> tuple[str, int]:
        """The group with the fewest train rows, and their number (a law with more parameters
        than that cannot be determined by its fit on the group)."""
        names, counts = np.unique(self.train.groups, return_counts=True)
        return str(names[np.argmin(counts)]), int(counts.min())

    def parse_law(self, text: str) -> Law:
        """Parse formula text with this task's inputs and targets."""
        return Law.parse(text, self.inputs, self.targets, pairs=self.pairs)

    def scale_score(self, data: TaskData | np.ndarray) -> np.ndarray | None:
        """Scale score of each row of ``data`` (rows, or an input matrix in the order of
        ``inputs``); None when the task has no scale columns.

        Whether a column enters as log(x) is decided on the whole table, so
        train and test rows are scored alike; with ``split.largest: any`` the
        ranks are those within ``data``.
        """
        if not self.scale_columns:
            return None
        X = data.X if isinstance(data, TaskData) else np.asarray(data, dtype=float)
        columns = np.column_stack([X[:, self.inputs.index(c)] for c in self.scale_columns])
        return scale_score(columns, self._log_scale, self.scale_rule)

    @property
    def test_share(self) -> float:
        """The test split's share of all the task's rows."""
        return len(self.test) / (len(self.train) + len(self.test))

    def validation_fraction(self, setting: float | str = "auto") -> float:
        """The share of each group's train rows the search validates on, for a setting.

        A number is used as given.  ``"auto"`` mirrors the task's extrapolation: the
        test split's share of all rows (:attr:`test_share`), clipped to
        :data:`AUTO_VALIDATION_BOUNDS`, so search-train relates to validation as train
        to test (sft: 12 train rows and 1 test row per group, so 1 validation row).
        Only the number of test rows is used, never their values.
        """
        if setting != "auto":
            return float(setting)
        low, high = AUTO_VALIDATION_BOUNDS
        return min(max(self.test_share, low), high)

    def validation_split(self, fraction: float | str = "auto", seed: int = 0) -> tuple[TaskData, TaskData]:
        """(search_train, validation), both carved from the train rows only.

        Validation rows are the largest-scale train rows of each group
        (:func:`holdout_largest` on the scale columns; random with ``seed``
        when the task has none), a share ``fraction`` of them (a number, or
        ``"auto"``: see :meth:`validation_fraction`).  Test rows are never included.
        """
        fraction = self.validation_fraction(fraction)
        held = holdout_largest(self.scale_score(self.train), self.train.groups, fraction, seed=seed)
        return self.train.subset(~held), self.train.subset(held)

    def fit_options(self, law: Law) -> FitOptions | None:
        """Fitter options for ``law``: the stated ``bounds`` when it is one of the task's human
        laws (the same expression), else None (the defaults)."""
        for human in self.human_laws:
            if human.bounds and self.parse_law(human.formula).expr == law.expr:
                return FitOptions(bounds=dict(human.bounds))
        return None

    def check_law_domain(self, law: Law | str) -> None:
        """Raise DataError if an input the law takes a log or fractional power of is ever <= 0."""
        problem = self._domain_problem(self.parse_law(law) if isinstance(law, str) else law)
        if problem:
            raise DataError(f"task {self.name!r}: {problem}")

    def _domain_problem(self, law: Law) -> str | None:
        rows = np.concatenate([self.train.rows, self.test.rows])
        for name in law.log_domain_variables():
            if name not in self.inputs:
                continue
            values = np.concatenate([self.train.column(name), self.test.column(name)])
            bad = np.flatnonzero(values <= 0)
            if bad.size:
                first = bad[np.argmin(rows[bad])]
                return (
                    f"law {law.text!r} needs {name} > 0 (it is inside a log or a fractional power), "
                    f"but row {rows[first]} has {name} = {values[first]:g}"
                )
        return None


# ---------------------------------------------------------------------- data tables
