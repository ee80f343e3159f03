"""Scale-out on a real Dask cluster: a `dask scheduler` and two `dask worker` processes started from the
command line, `lawsearch discover --scheduler`, the same history as a local run; --scheduler's errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import CHINCHILLA, CHINCHILLA_TRUE, RANGES
from lawsearch.errors import LawsearchError, TaskError
from lawsearch.search.executors import make_executor
from lawsearch.search.settings import resolve_settings
from lawsearch.synthetic import generate

RUN = dict(proposers=["library", "mutate"], generations=2, proposals_per_generation=8, initial_library=12,
           islands=2, population_size=6, search_starts=6, search_local=1, search_max_nfev=60, refine_top=0,
           time_limit=600, bootstrap=0)


def lawsearch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lawsearch.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def history(run_dir: Path) -> list[dict]:
    """The run's history without its wall-time field."""
    records = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    for record in records:
        record.pop("fit_seconds", None)
    return records


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and two single-threaded workers, started as `python -m dask ...` processes in
    tmp_path/cluster (the workers' cwd: tmp_path/cluster/workers); all ended at teardown."""
    pytest.importorskip("distributed", reason="Dask is not installed: pip install 'lawsearch[dask]'")
    from lawsearch.search.local_cluster import CommandLineCluster

    with CommandLineCluster(tmp_path / "cluster") as started:
        started.add_workers(2)
        groups = [process.pid for process in started.processes]
        yield started
    for group in groups:  # every process of every group has ended (a nanny's worker too)
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)


def test_discover_on_a_dask_cluster_gives_the_local_history(tmp_path, cluster):
    """The task's table is a CSV named relatively to the task file, which is named relatively to the
    directory discover runs in; the workers run elsewhere, so they can only have got the rows with the tasks."""
    from distributed import Client

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    generate(CHINCHILLA, CHINCHILLA_TRUE, RANGES, rows=40, noise=0.005, seed=3,
             groups={"a": {}, "b": {"E": 2.1}}).to_csv(project / "data" / "runs.csv", index=False)
    (project / "task.yaml").write_text(yaml.safe_dump({
        "name": "cluster_check", "data": {"path": "data/runs.csv"}, "inputs": list(RANGES), "target": "y",
        "group": "group", "split": {"extrapolate": {"by": list(RANGES), "test_fraction": 0.2}},
        "limits": {"max_parameters": 6}}))
    (project / "run.yaml").write_text(yaml.safe_dump(RUN))
    common = ["discover", "task.yaml", "--config", "run.yaml", "--seed", "7", "--quiet", "--no-report"]

    local = lawsearch(*common, "--workers", "1", "--out", "local", cwd=project)
    assert local.returncode == 0, local.stderr
    on_dask = lawsearch(*common, "--scheduler", cluster.address, "--out", "dask", cwd=project)
    assert on_dask.returncode == 0, on_dask.stderr

    assert sum(r["status"] == "ok" for r in history(project / "local")) > 15
    assert history(project / "dask") == history(project / "local")
    winner = json.loads((project / "dask" / "law.json").read_text())["law"]
    assert winner == json.loads((project / "local" / "law.json").read_text())["law"]
    with Client(cluster.address) as client:
        seen = client.run(lambda: (Path.cwd(), "lawsearch.search.scoring" in sys.modules))
    assert len(seen) == 2
    assert all(cwd == cluster.worker_dir and not cwd.is_relative_to(project) for cwd, _ in seen.values())
    assert all(scored for _, scored in seen.values()), "each worker fitted laws"


def test_scheduler_and_workers_cannot_go_together(tmp_path):
    with pytest.raises(TaskError, match="'scheduler': a Dask scheduler runs the fits on its own workers; "
                                        "workers = 2 .* give --workers or --scheduler, not both"):
        resolve_settings({"workers": 2, "scheduler": "tcp://127.0.0.1:8786"}, environ={})
    config = tmp_path / "run.yaml"
    config.write_text("workers: 3\n")
    with pytest.raises(TaskError, match="workers = 3"):
        resolve_settings({"scheduler": "tcp://127.0.0.1:8786"}, config, environ={})
    with pytest.raises(TaskError, match="workers = 2"):
        resolve_settings({"scheduler": "tcp://127.0.0.1:8786"}, environ={"LAWSEARCH_WORKERS": "2"})
    assert resolve_settings({"scheduler": "tcp://127.0.0.1:8786"}, environ={}).workers is None


def test_a_bad_scheduler_address_is_a_clear_error():
    pytest.importorskip("distributed", reason="Dask is not installed: pip install 'lawsearch[dask]'")
    with pytest.raises(LawsearchError, match=r"^--scheduler 'tcp://h' is not a Dask scheduler address \(missing "
                                             r"port number in address 'h'\); give one like tcp://HOST:8786$"):
        make_executor(scheduler="tcp://h")
