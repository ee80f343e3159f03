"""Atomic file writes: a crash never leaves a half-written result or checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import DataError, OutputError

__all__ = ["write_text_atomic", "write_bytes_atomic", "write_json_atomic", "append_jsonl", "read_jsonl", "writing",
           "make_dir"]


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn an operating-system error while writing ``path`` (read-only or full disk, a file
    where a folder should be) into an :class:`OutputError` that names the path."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def make_dir(path: str | Path) -> None:
    """Create folder ``path`` (and its parents); an :class:`OutputError` names a file in the way."""
    path = Path(path)
    blocker = next((p for p in (*reversed(path.parents), path) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        where = "is a file" if blocker == path else f"lies under {blocker}, which is a file"
        raise OutputError(f"cannot create the folder {path}: it {where}")
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    A failure (e.g. a full disk) leaves the old ``path`` as it was and raises :class:`OutputError`."""
    path = Path(path)
    make_dir(path.parent)
    with writing(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes the file private; results are meant to be shared
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Atomically write UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Atomically write strict JSON (no NaN/Infinity)."""
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def append_jsonl(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Append records as JSON lines and fsync (used for the run history)."""
    if not records:
        return
    with writing(path), open(path, "a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, allow_nan=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: Path, *, skip_bad_lines: bool = False) -> list[dict[str, Any]]:
    """The objects of a JSON Lines file, one per non-blank line.  A line that is not a JSON object
    is a :class:`DataError` naming it, or, with ``skip_bad_lines``, passed over (a line cut by a kill)."""
    records = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if skip_bad_lines:
                continue
            raise DataError(f"{path}: line {number} is not valid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            if skip_bad_lines:
                continue
            raise DataError(f"{path}: line {number} is not a JSON object")
        records.append(record)
    return records
