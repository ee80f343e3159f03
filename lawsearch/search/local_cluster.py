"""A throwaway Dask cluster on this machine, started from the command line as a user starts one:
a ``dask scheduler`` process and ``dask worker`` processes (for the scale-out test and benchmark).

    with CommandLineCluster(workdir) as cluster:
        cluster.add_workers(2)
        ...  lawsearch discover TASK --scheduler cluster.address

The scheduler listens on 127.0.0.1 on a port the system picks (no clash with another cluster);
each process runs in its own process group, so :meth:`CommandLineCluster.close` ends it with
everything it started (a worker's nanny and the worker under it).  The workers run in
``workdir/workers``, with this checkout of lawsearch on their ``PYTHONPATH`` and without
``LAWSEARCH_DATA``: they import the code but find no task file, so a run on them proves
that the data travel with the tasks.  Should the process that started the cluster die before
closing it, the scheduler ends after 10 idle minutes and each worker a minute after the scheduler.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import lawsearch

from .. import environment
from ..errors import LawsearchError

__all__ = ["CommandLineCluster"]

CHECKOUT = Path(lawsearch.__file__).resolve().parents[1]


class CommandLineCluster:
    """A scheduler and single-threaded workers, each a ``python -m dask ...`` process group."""

    def __init__(self, workdir: Path, *, startup_timeout: float = 60.0) -> None:
        self.workdir = Path(workdir)
        self.startup_timeout = startup_timeout
        self.address = ""
        self.processes: list[subprocess.Popen] = []
        self.worker_dir = self.workdir / "workers"

    def __enter__(self) -> CommandLineCluster:
        self.worker_dir.mkdir(parents=True, exist_ok=True)
        scheduler_file = self.workdir / "scheduler.json"
        scheduler_file.unlink(missing_ok=True)
        try:
            self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(scheduler_file), "--idle-timeout", "600"],
                        cwd=self.workdir)
            self.address = self._wait_for_address(scheduler_file)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    @property
    def workers(self) -> int:
        """Worker processes started so far."""
        return len(self.processes) - 1

    def add_workers(self, count: int) -> None:
        """Start ``count`` more workers (one process, one thread each) and wait until the scheduler has them all."""
        for _ in range(count):
            self._start(f"worker{self.workers}", ["worker", self.address, "--nworkers", "1", "--nthreads", "1",
                                                  "--no-dashboard", "--local-directory", str(self.worker_dir),
                                                  "--death-timeout", "60"],
                        cwd=self.worker_dir)
        from distributed import Client

        with Client(self.address, timeout="20s") as client:
            try:
                client.wait_for_workers(self.workers, timeout=self.startup_timeout)
            except TimeoutError:
                raise LawsearchError(f"{self.workers} Dask workers did not join {self.address} within "
                                     f"{self.startup_timeout:g}s: see the logs in {self.workdir}") from None

    def close(self) -> None:
        """End every process group (SIGTERM, then SIGKILL for one that has not ended after 10 s) and
        wait (up to 10 s more) until no process of the groups is left, not even one to be reaped."""
        for process in self.processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)  # whatever is left in the group (a nanny's worker)
            process.wait()
        deadline = time.monotonic() + 10.0
        while any(_signal_group(process, 0) for process in self.processes) and time.monotonic() < deadline:
            time.sleep(0.1)  # a nanny's worker, ended with it, waits for init to reap it
        self.processes = []

    def _start(self, name: str, arguments: list[str], *, cwd: Path) -> None:
        env = environment.without_data()
        env["PYTHONPATH"] = os.pathsep.join([str(CHECKOUT), *filter(None, [env.get("PYTHONPATH")])])
        with open(self.workdir / f"{name}.log", "wb") as log:
            self.processes.append(subprocess.Popen([sys.executable, "-m", "dask", *arguments], cwd=cwd, env=env,
                                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def _wait_for_address(self, scheduler_file: Path) -> str:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.processes[0].poll() is not None:
                raise LawsearchError(f"the Dask scheduler exited: see {self.workdir / 'scheduler.log'}")
            try:
                return json.loads(scheduler_file.read_text())["address"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                time.sleep(0.1)
        raise LawsearchError(f"the Dask scheduler did not start within {self.startup_timeout:g}s: "
                             f"see {self.workdir / 'scheduler.log'}")


def _signal_group(process: subprocess.Popen, sig: int) -> bool:
    """Send ``sig`` to the process's group (0: none, only check); False when no process of it is left."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return False
    return True
