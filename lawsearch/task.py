"""Tasks: a validated YAML spec, its data table and its train/test split.

A task spec names a table (CSV, Parquet or JSON Lines file, a Hugging Face
dataset, or a synthetic table), the input columns, the target column(s), an
optional group column (parameters are fitted per group; without one every row
is in group ``"all"``), the split and the human laws to compare with::

    name: chinchilla
    data: {path: chinchilla_scaling_law/data.csv}
    inputs: [params, tokens]
    target: loss
    split: {column: split, by: [params, tokens]}
    limits: {max_parameters: 6}
    human_laws:
      - {name: Hoffmann et al. 2022, formula: "E + A/params**alpha + B/tokens**beta"}

``data.path`` is looked up relative to the YAML file's folder, then under
``$LAWSEARCH_DATA``; ``data.hub`` is the fallback when neither has the file.

Splits.  ``split: {column: c}`` reads 'train'/'test' from column ``c``.
``split: {extrapolate: {by: [...], test_fraction: f}}`` holds out, within each
group, the rows of largest scale (see :func:`holdout_largest`).  Without a
``split`` entry the task extrapolates along all inputs with ``f = 0.2``.
The *scale columns* (``by``; default: all inputs) also decide the search's
validation rows (:meth:`Task.validation_split`); ``by: []`` means the task has
no scale axis, and those holdouts are then seeded random draws per group.  How
many train rows the search validates on follows the test split by default
(:meth:`Task.validation_fraction`).

Pairs.  A multi-output task may pair each target with an input, explicitly
(``pairs: {loss_a: share_a, loss_b: share_b}``) or by a template with ``{i}``
(``pairs: {"loss_domain_{i}": "proportion_domain_{i}"}``); a law then names the
paired input ``self`` (``c + k*exp(t*self)``), fitted per target like any other law.

Every problem is a :class:`TaskError` (the spec) or a :class:`DataError` (the
table) whose message names the file, field, column and 1-based data row.
"""

from __future__ import annotations

import json
import math
import os
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import DataError, LawsearchError, TaskError
from .fit import FitOptions
from .formula import Law, check_plain_name
from .synthetic import generate

__all__ = [
    "AUTO_VALIDATION_BOUNDS",
    "TaskSpec",
    "TaskData",
    "Task",
    "CuratedTask",
    "DataNotFound",
    "TASKS_DIR",
    "load_spec",
    "load_task",
    "task_from_frame",
    "holdout_largest",
    "scale_score",
    "curated_tasks",
    "expand_pairs",
]

#: Curated task YAMLs: the repository's ``tasks/`` folder (present in a source
#: checkout or an editable install; a wheel does not ship it).
TASKS_DIR = Path(__file__).resolve().parents[1] / "tasks"

DATA_ENV = "LAWSEARCH_DATA"
SUFFIXES = (".csv", ".parquet", ".jsonl")
DEFAULT_GROUP = "all"
AUTO_VALIDATION_BOUNDS = (0.05, 0.3)  # the "auto" validation share stays within these


class DataNotFound(DataError):
    """The task's data file is in none of the places searched (and no hub copy could be had)."""


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


def _spec_error(source: str, exc: ValidationError) -> TaskError:
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
        raise _spec_error(str(path), exc) from None
    if spec.data is None:
        raise TaskError(f"{path}: missing required field 'data'")
    return spec


# ---------------------------------------------------------------------- splits


def scale_score(columns: np.ndarray, log: Sequence[bool] | None = None, largest: str = "product") -> np.ndarray:
    """Scale of each row, from its scale columns (each taken as log(x) or as x).

    ``largest="product"``: the sum over columns of log(x) (the log of the
    product), so the largest rows are those largest on all axes together.
    ``largest="any"``: the largest over columns of the row's rank fraction in
    that column (rank / n, ties sharing the highest rank), so the largest rows
    are those near the top of *any* axis.  ``log[j]`` says whether column j
    is taken as a log; by default a column is when all its values are positive.
    """
    X = np.asarray(columns, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if log is None:
        log = [bool(np.all(X[:, j] > 0)) for j in range(X.shape[1])]
    if largest not in ("product", "any"):
        raise ValueError(f"largest must be 'product' or 'any', got {largest!r}")
    with np.errstate(all="ignore"):
        values = np.column_stack([np.log(X[:, j]) if take_log else X[:, j] for j, take_log in enumerate(log)])
    if largest == "product":
        return values.sum(axis=1)
    ranks = np.column_stack([np.searchsorted(np.sort(v), v, side="right") for v in values.T])
    return ranks.max(axis=1) / max(len(X), 1)


def _holdout_count(n: int, fraction: float) -> int:
    """ceil(fraction * n), at least 1 and at most n - 1 (0 for a one-row group)."""
    if n < 2:
        return 0
    return min(max(math.ceil(fraction * n - 1e-9), 1), n - 1)


def holdout_largest(
    scores: np.ndarray | None,
    groups: np.ndarray,
    fraction: float,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Boolean mask of the rows held out: within each group, those of largest scale.

    ``scores`` is an (n,) array of scale scores, or an (n, k) array of scale
    columns combined by :func:`scale_score`.  Rule, per group of m rows: the
    k = ceil(fraction * m) rows of largest score are held out (at least 1 when
    m >= 2, at most m - 1; none when m == 1).  Rows tied with the k-th score go
    together (same scale, same side), so a group may hold out more than k rows;
    when that would leave no training row, ties are broken by row order
    (earlier rows are held out first).  With ``scores=None`` (or k = 0 scale
    columns) there is no scale axis: k rows per group are drawn at random with
    ``seed``.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    groups = np.asarray(groups)
    n = len(groups)
    if scores is not None:
        scores = np.asarray(scores, dtype=float)
        if scores.ndim == 2:
            scores = scale_score(scores) if scores.shape[1] else None
    if scores is not None:
        if scores.shape != (n,):
            raise ValueError(f"scores have shape {scores.shape}, expected ({n},)")
        if not np.all(np.isfinite(scores)):
            raise ValueError("scale scores must be finite")
    rng = np.random.default_rng(seed)
    mask = np.zeros(n, dtype=bool)
    for group in dict.fromkeys(groups.tolist()):
        index = np.flatnonzero(groups == group)
        k = _holdout_count(len(index), fraction)
        if k == 0:
            continue
        if scores is None:
            mask[rng.choice(index, size=k, replace=False)] = True
            continue
        s = scores[index]
        order = np.argsort(-s, kind="stable")
        cutoff = s[order[k - 1]]
        tied_or_larger = s >= cutoff - 1e-9 * max(1.0, abs(cutoff))
        if tied_or_larger.sum() < len(index):
            mask[index[tied_or_larger]] = True
        else:
            mask[index[order[:k]]] = True
    return mask


# ---------------------------------------------------------------------- task objects


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


def _read_file(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported data format {suffix!r} (use {', '.join(SUFFIXES)})")
    try:
        if suffix == ".csv":
            _check_header(path, pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0].tolist())
            return pd.read_csv(path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        return _read_jsonl(path)
    except DataError:
        raise
    except ImportError as exc:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install 'lawsearch[parquet]'): {exc}") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot read the table: {exc}") from None


def _check_header(source: str | Path, names: list[Any]) -> None:
    """Refuse a table with two columns of one name (pandas would rename the second ``loss.1``
    and the task would silently read the first)."""
    seen: set[Any] = set()
    for number, name in enumerate(names, start=1):
        if name in seen:
            raise DataError(f"{source}: column {number} repeats the column name {name!r}; column names must be unique")
        seen.add(name)


def _read_jsonl(path: Path) -> pd.DataFrame:
    """JSON Lines: one object per non-blank line."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {number} is not valid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number} is not a JSON object")
        records.append(record)
    return pd.DataFrame.from_records(records)


def _read_hub(hub: HubSpec, split_column: str) -> pd.DataFrame:
    """Load a Hugging Face dataset; with no ``hub.split``, all splits stacked with their names."""
    try:
        import datasets
    except ImportError:
        raise DataError("the 'datasets' package is not installed (pip install 'lawsearch[hub]')") from None
    try:
        loaded = datasets.load_dataset(hub.repo, hub.config, split=hub.split)
    except Exception as exc:  # network, missing config, ...: all reported the same way
        raise DataError(f"could not load {hub.repo} ({hub.config}) from the Hugging Face hub: {exc}") from None
    if hub.split is not None:
        return loaded.to_pandas()
    return pd.concat([part.to_pandas().assign(**{split_column: name}) for name, part in loaded.items()],
                     ignore_index=True)


def _find_file(relative: str, base: Path | None) -> tuple[Path | None, list[Path]]:
    """The data file, searched relative to ``base`` then under $LAWSEARCH_DATA; also the places tried."""
    given = Path(relative).expanduser()
    places = [given] if given.is_absolute() else []
    if not places:
        if base is not None:
            places.append(base / given)
        if os.environ.get(DATA_ENV):
            places.append(Path(os.environ[DATA_ENV]).expanduser() / given)
    return next((p for p in places if p.is_file()), None), places


def _load_table(spec: TaskSpec, path: Path, use_hub: bool) -> tuple[pd.DataFrame, str]:
    """The task's table and a name for it in messages."""
    data = spec.data
    assert data is not None
    if data.synthetic is not None:
        syn = data.synthetic
        if len(spec.target) != 1:
            raise TaskError(f"{path}: synthetic data supports one target, got {len(spec.target)}")
        try:
            frame = generate(syn.law, syn.parameters, syn.inputs, rows=syn.rows, noise=syn.noise, seed=syn.seed,
                             groups=syn.groups, target=spec.target[0], group_column=spec.group or "group")
        except LawsearchError as exc:
            raise TaskError(f"{path}: data.synthetic: {exc}") from None
        return frame, f"{path} (synthetic data)"
    problems = []
    if data.path is not None:
        found, places = _find_file(data.path, path.parent)
        if found is not None:
            return _read_file(found), str(found)
        env = "" if os.environ.get(DATA_ENV) else f"; {DATA_ENV} is not set"
        problems.append(
            f"data file {data.path!r} not found (looked in {', '.join(map(str, places))}{env}); "
            f"set {DATA_ENV} to the folder that holds it, e.g. export {DATA_ENV}=/path/to/data"
        )
    if data.hub is not None:
        if not use_hub:
            problems.append(f"hub copy {data.hub.repo} not tried")
        else:
            split_column = spec.split.column or "split"
            try:
                return _read_hub(data.hub, split_column), f"hub {data.hub.repo} ({data.hub.config})"
            except DataError as exc:
                problems.append(f"hub fallback failed: {exc}")
    raise DataNotFound(f"{path}: " + "; ".join(problems))


def _require_columns(frame: pd.DataFrame, names: Sequence[str], field: str, source: str) -> None:
    for name in names:
        if name not in frame.columns:
            available = ", ".join(map(str, frame.columns))
            raise DataError(f"{source}: column {name!r} (from '{field}') is not in the table; available: {available}")


def _numeric(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """A column as finite floats, or a DataError naming the first bad row (1-based)."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy() & raw.notna().to_numpy())
    if bad.size:
        raise DataError(f"{source}: column {column!r} is not numeric: row {bad[0] + 1} has {raw.iloc[bad[0]]!r}")
    array = values.to_numpy(dtype=float, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        value = "a missing value" if np.isnan(array[bad[0]]) else f"the value {array[bad[0]]}"
        raise DataError(
            f"{source}: column {column!r} has {value} at row {bad[0] + 1}; inputs and targets must be finite"
        )
    return array


def _labels(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    raw = frame[column]
    missing = np.flatnonzero(raw.isna().to_numpy())
    if missing.size:
        raise DataError(f"{source}: column {column!r} has a missing value at row {missing[0] + 1}")
    return raw.astype(str).to_numpy(dtype=str)


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
    _check_header(source, list(frame.columns))
    frame = frame.reset_index(drop=True)
    split = spec.split
    _require_columns(frame, spec.inputs, "inputs", source)
    _require_columns(frame, spec.target, "target", source)
    if spec.group is not None:
        _require_columns(frame, [spec.group], "group", source)
    if split.column is not None:
        _require_columns(frame, [split.column], "split.column", source)

    X = np.column_stack([_numeric(frame, c, source) for c in spec.inputs])
    Y = np.column_stack([_numeric(frame, c, source) for c in spec.target])
    groups = _labels(frame, spec.group, source) if spec.group else np.full(len(frame), DEFAULT_GROUP)
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
    frame, source = _load_table(spec, path, use_hub)
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
        raise _spec_error(source, exc) from None
    return _build(spec, _check_spec(spec, source), frame, None, source)


# ---------------------------------------------------------------------- curated tasks


@dataclass(frozen=True)
class CuratedTask:
    """One YAML of the curated task folder, as `lawsearch tasks` lists it."""

    name: str
    path: Path
    available: bool
    reason: str = ""
    train_rows: int | None = None
    test_rows: int | None = None
    groups: tuple[str, ...] = ()


def curated_tasks(folder: str | Path | None = None) -> list[CuratedTask]:
    """Every task YAML in ``folder`` (default :data:`TASKS_DIR`), loaded offline when its data is there."""
    folder = Path(folder) if folder is not None else TASKS_DIR
    found = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            spec = load_spec(path)
        except LawsearchError as exc:
            found.append(CuratedTask(path.stem, path, False, str(exc)))
            continue
        try:
            task = load_task(path, use_hub=False)
        except DataNotFound:
            online = ", or go online for the hub copy" if spec.data is not None and spec.data.hub else ""
            found.append(CuratedTask(spec.name, path, False, f"data not found: set {DATA_ENV}{online}"))
        except LawsearchError as exc:
            found.append(CuratedTask(spec.name, path, False, str(exc)))
        else:
            found.append(CuratedTask(spec.name, path, True, "", len(task.train), len(task.test),
                                     tuple(task.train.group_names())))
    return found
