"""The quick path from a table to a law, without writing a task YAML first.

``lawsearch discover data.csv --inputs params,tokens --target loss`` and
``lawsearch.discover(frame, inputs=[...], target=...)`` build the task in memory:
the inputs, the target (one column or several), an optional group column, and an
extrapolation split that holds out the largest runs (``test_largest``, by default
20%, ranked by the product of the inputs within each group).  The run folder gets
the equivalent ``task.yaml`` (and, for a DataFrame, its ``data.csv``), so the run
can be repeated with ``lawsearch discover RUN/task.yaml`` and reported on later.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .errors import TaskError
from .io import write_text_atomic
from .search.engine import Discovery, DiscoveryResult, ProgressCallback, StepCallback, default_run_dir
from .search.settings import SearchSettings
from .task import Task, load_task, task_from_frame
from .task.tables import SUFFIXES, read_table  # the reader of task YAMLs, for CSV, Parquet and JSON Lines

__all__ = ["discover", "is_table", "table_task", "DEFAULT_TEST_LARGEST", "TASK_FILE"]

DEFAULT_TEST_LARGEST = 0.2
TASK_FILE = "task.yaml"
TABLE_FILE = "data.csv"  # a DataFrame's rows, written beside its task.yaml


def is_table(source: Any) -> bool:
    """Whether ``source`` is a data table (a DataFrame, or a CSV / Parquet / JSON Lines path)."""
    return isinstance(source, pd.DataFrame) or Path(str(source)).suffix.lower() in SUFFIXES


def _names(value: str | Sequence[str] | None, option: str) -> list[str]:
    names = value.split(",") if isinstance(value, str) else list(value or [])
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names:
        raise TaskError(f"a data table needs {option}: the column name(s), e.g. {option} params,tokens")
    return names


def table_task(
    table: pd.DataFrame | str | Path,
    inputs: str | Sequence[str] | None,
    target: str | Sequence[str] | None,
    *,
    group: str | None = None,
    test_largest: float = DEFAULT_TEST_LARGEST,
    name: str | None = None,
) -> tuple[Task, dict[str, Any]]:
    """The task over a table, and its spec as the YAML mapping (``data.path``: the file's absolute
    path, or :data:`TABLE_FILE` for a DataFrame).  Bad input is a :class:`TaskError` / ``DataError``."""
    inputs, targets = _names(inputs, "--inputs"), _names(target, "--target")
    if isinstance(test_largest, bool) or not isinstance(test_largest, (int, float)) or not 0 < test_largest < 1:
        raise TaskError(f"--test-largest must be a share between 0 and 1 (e.g. 0.2), got {test_largest!r}")
    if isinstance(table, pd.DataFrame):
        frame, data_path, stem = table, TABLE_FILE, "table"
    else:
        path = Path(table)
        frame, data_path, stem = read_table(path), str(path.resolve()), path.stem
    name = name or (re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip("_.-") or "table")
    spec: dict[str, Any] = {
        "name": name,
        "description": f"Built by lawsearch from {data_path}: {', '.join(targets)} vs {', '.join(inputs)}.",
        "data": {"path": data_path},
        "inputs": inputs,
        "target": targets[0] if len(targets) == 1 else targets,
        **({"group": group} if group else {}),
        "split": {"extrapolate": {"by": list(inputs), "test_fraction": float(test_largest)}},
    }
    task = task_from_frame(frame, name=name, inputs=inputs, target=spec["target"], group=group,
                           split=spec["split"], description=spec["description"])
    return task, spec


def _settings(settings: SearchSettings | None, options: dict[str, Any]) -> SearchSettings:
    if not options:
        return settings or SearchSettings()
    base = settings.model_dump() if settings is not None else {}
    return SearchSettings(**{**base, **options})


def discover(
    data: Task | pd.DataFrame | str | Path,
    settings: SearchSettings | None = None,
    *,
    inputs: str | Sequence[str] | None = None,
    target: str | Sequence[str] | None = None,
    group: str | None = None,
    test_largest: float = DEFAULT_TEST_LARGEST,
    out: str | Path | None = None,
    resume: bool = False,
    report: bool = False,
    progress: ProgressCallback | None = None,
    log: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
    steps: StepCallback | None = None,
    executor: Executor | None = None,
    started: float | None = None,
    **options: Any,
) -> DiscoveryResult:
    """Discover a law for a task (a :class:`Task` or a task YAML) or for a table (a DataFrame, or a
    CSV / Parquet / JSON Lines file, with ``inputs`` and ``target``)::

        result = lawsearch.discover(frame, inputs=["params", "tokens"], target="loss", time_limit=60)

    Further keyword arguments are :class:`SearchSettings` fields (over ``settings``);
    ``report=True`` also writes ``report.html`` into the run folder.  The time limit counts from
    ``started`` (a ``time.monotonic()``; default: now).
    """
    settings = _settings(settings, options)
    spec = None
    if is_table(data):
        task, spec = table_task(data, inputs, target, group=group, test_largest=test_largest)
    elif any(v is not None for v in (inputs, target, group)):
        raise TaskError("inputs, target and group are for a data table (CSV, Parquet, JSON Lines or a "
                        "DataFrame); a task YAML names its own")
    else:
        task = data if isinstance(data, Task) else load_task(data)
    run_dir = Path(out) if out is not None else default_run_dir(task, settings.seed)
    if spec is not None:
        task.path = run_dir / TASK_FILE
    search = Discovery(task, settings, run_dir, resume=resume, executor=executor, log=log, warn=warn, steps=steps,
                       started=started)
    if spec is not None:  # the run folder is now this run's (Discovery checked it)
        if isinstance(data, pd.DataFrame) and not (run_dir / TABLE_FILE).exists():
            write_text_atomic(run_dir / TABLE_FILE, data.to_csv(index=False))
        write_text_atomic(run_dir / TASK_FILE, yaml.safe_dump(spec, sort_keys=False))
    result = search.run(progress)
    if report:
        from .report.html import write_report

        write_report(result.run_dir, result.task)
    return result
