"""Where candidate evaluations run: in-process, a local process pool, or a Dask cluster.

Everything goes through the standard :class:`concurrent.futures.Executor`
interface; a Dask ``distributed.Client`` provides one via ``get_executor()``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

from ..errors import EngineUnavailable, LawsearchError

__all__ = ["SerialExecutor", "make_executor", "DaskExecutor", "default_workers", "WorkerCrash"]


class WorkerCrash(LawsearchError, RuntimeError):
    """An executor failed to run a job (a worker process died, a Dask worker was lost): an
    infrastructure failure, never a law's score."""


class SerialExecutor(Executor):
    """Runs each task at once in the calling process (``--workers 1``): no pickling, no pool."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered through the future, as a pool would
            future.set_exception(exc)
        return future


class DaskExecutor(Executor):
    """A Dask distributed cluster as a concurrent.futures Executor (owns its Client)."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise EngineUnavailable(
                "Dask is not installed: pip install 'lawsearch[dask]' to use --scheduler"
            ) from None
        try:
            self.client = Client(address, timeout="20s")
        except ValueError as exc:
            raise LawsearchError(f"--scheduler {address!r} is not a Dask scheduler address ({exc}); give one "
                                 "like tcp://HOST:8786") from None
        except OSError as exc:
            raise LawsearchError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self._executor = self.client.get_executor()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._executor.shutdown(wait=wait)
        self.client.close()


def default_workers() -> int:
    """One worker process per core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def make_executor(workers: int | None = 1, scheduler: str | None = None) -> Executor:
    """The executor for a run: Dask when a scheduler address is given, else a process pool
    with ``workers`` processes (None: :func:`default_workers`), else (one worker) the serial executor."""
    if scheduler:
        return DaskExecutor(scheduler)
    workers = default_workers() if workers is None else workers
    if workers <= 1:
        return SerialExecutor()
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=exit_with_parent, initargs=(os.getpid(),))


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def exit_with_parent(parent: int) -> None:
    """Make this worker process end when the process ``parent`` (the run) dies, even by kill -9.

    On Linux the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``);
    elsewhere a daemon thread checks once a second that the parent is still there.  Either
    way a worker that finds itself orphaned already (the parent died before this ran) exits."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            _watch_parent(parent)
    else:
        _watch_parent(parent)
    if os.getppid() != parent:
        os._exit(1)


def _watch_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="lawsearch-parent-watch", daemon=True).start()
