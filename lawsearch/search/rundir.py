"""Claiming a run folder: one run at a time, and never a folder that holds someone else's files.

A new run needs an empty or new folder (a folder that holds a run is continued
with ``--resume``); a run holds an exclusive lock on its folder for its whole
lifetime (``fcntl.flock`` on ``run.lock``, which records the holder's pid), so a
second ``--resume`` of a live run is refused instead of interleaving with it.
The operating system drops the lock when the holder exits, even after kill -9.
Where ``fcntl`` is missing (Windows) folders are not locked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from ..errors import CheckpointError
from ..io import make_dir, writing
from .checkpoint import CHECKPOINT, HISTORY

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunLock", "claim_run_dir", "LOCK"]

LOCK = "run.lock"


class RunLock:
    """An exclusive lock on a run folder, held until :meth:`release` (or the process ends)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK
        self._handle: IO[str] | None = None
        with writing(self.path):
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the run's lifetime
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                raise CheckpointError(f"{run_dir} is in use by another lawsearch run (pid {holder}); wait for it "
                                      "to end (or stop it), or give another --out") from None
        with writing(self.path):
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Unlock (closing the file drops the lock); the lock file stays."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def claim_run_dir(run_dir: Path, resume: bool) -> RunLock:
    """Check that ``run_dir`` may take this run, create it and lock it.

    Refused (:class:`CheckpointError`): a new run in a folder that already holds a
    run or any other file; ``resume`` of a folder with no run; a folder locked by
    a live run.  A file in the way is an :class:`~lawsearch.errors.OutputError`.
    """
    if resume and not (run_dir / CHECKPOINT).is_file():
        raise CheckpointError(f"{run_dir}: no {CHECKPOINT} to resume from")
    if not resume and run_dir.is_dir():
        _check_free(run_dir)  # before the lock file is made: a user's folder is left untouched
    make_dir(run_dir)
    lock = RunLock(run_dir)
    if not resume:
        try:
            _check_free(run_dir)  # again, holding the lock: another run may have started meanwhile
        except CheckpointError:
            lock.release()
            raise
    return lock


def _check_free(run_dir: Path) -> None:
    """Refuse a folder that holds a run or any file but the lock."""
    if (run_dir / HISTORY).exists() or (run_dir / CHECKPOINT).exists():
        raise CheckpointError(f"{run_dir} already holds a run: use --resume, or another --out")
    others = sorted(p.name for p in run_dir.iterdir() if p.name != LOCK)
    if others:
        more = f" and {len(others) - 1} more" if len(others) > 1 else ""
        raise CheckpointError(f"{run_dir} is not empty (it holds {others[0]!r}{more}) and is not a lawsearch run: "
                              "give a new or empty folder as --out")
