"""Reading a task's data table: files, the hub, synthetic tables; checked columns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import environment
from ..errors import DataError, LawsearchError, TaskError
from ..io import read_jsonl
from ..synthetic import generate
from .spec import HubSpec, TaskSpec


DATA_ENV = environment.DATA
SUFFIXES = (".csv", ".parquet", ".jsonl")


class DataNotFound(DataError):
    """The task's data file is in none of the places searched (and no hub copy could be had)."""


def read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported data format {suffix!r} (use {', '.join(SUFFIXES)})")
    try:
        if suffix == ".csv":
            check_header(path, pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0].tolist())
            return pd.read_csv(path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.DataFrame.from_records(read_jsonl(path))
    except DataError:
        raise
    except ImportError as exc:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install 'lawsearch[parquet]'): {exc}") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot read the table: {exc}") from None


def check_header(source: str | Path, names: list[Any]) -> None:
    """Refuse a table with two columns of one name (pandas would rename the second ``loss.1``
    and the task would silently read the first)."""
    seen: set[Any] = set()
    for number, name in enumerate(names, start=1):
        if name in seen:
            raise DataError(f"{source}: column {number} repeats the column name {name!r}; column names must be unique")
        seen.add(name)


def _read_hub(hub: HubSpec, split_column: str) -> pd.DataFrame:
    """Load a Hugging Face dataset; with no ``hub.split``, all splits stacked with their names."""
    try:
        import datasets
    except ImportError:
        raise DataError("the 'datasets' package is not installed (pip install 'lawsearch[hub]')") from None
    try:
        loaded = datasets.load_dataset(hub.repo, hub.config, split=hub.split)
    except (OSError, ValueError) as exc:  # network (ConnectionError), no such dataset (FileNotFoundError), bad config
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
        data_dir = environment.data_dir()
        if data_dir is not None:
            places.append(data_dir / given)
    return next((p for p in places if p.is_file()), None), places


def load_table(spec: TaskSpec, path: Path, use_hub: bool) -> tuple[pd.DataFrame, str]:
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
            return read_table(found), str(found)
        env = "" if environment.data_dir() else f"; {DATA_ENV} is not set"
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


def require_columns(frame: pd.DataFrame, names: Sequence[str], field: str, source: str) -> None:
    for name in names:
        if name not in frame.columns:
            available = ", ".join(map(str, frame.columns))
            raise DataError(f"{source}: column {name!r} (from '{field}') is not in the table; available: {available}")


def numeric_column(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
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


def label_column(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    raw = frame[column]
    missing = np.flatnonzero(raw.isna().to_numpy())
    if missing.size:
        raise DataError(f"{source}: column {column!r} has a missing value at row {missing[0] + 1}")
    return raw.astype(str).to_numpy(dtype=str)
