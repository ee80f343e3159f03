"""Resume is exact and safe (issue 20 items 3, 4, 6): kill -9 at several points and --resume gives
the uninterrupted run's history byte for byte; a history that lost or changed lines is refused; a
worker crash is an error, never a law's score."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import multiprocessing
import pytest

from conftest import synthetic_task
from lawsearch.errors import CheckpointError
from lawsearch.search.engine import Discovery, discover
from lawsearch.search.executors import WorkerCrash
from lawsearch.search.settings import SearchSettings
from test_search import SMALL_TASK

#: Operon keeps state between calls (its call count, residual runs, a queue of translated models):
#: with it the checkpoint must carry proposer state for a resumed run to replay the same calls.
PROPOSERS = ["library", "mutate"] + (["operon"] if importlib.util.find_spec("pyoperon") else [])
CONFIG = f"""
proposers: {json.dumps(PROPOSERS)}
generations: 6
proposals_per_generation: 8
initial_library: 10
islands: 2
search_starts: 8
search_local: 2
refine_top: 1
bootstrap: 0
workers: 1
operon: {{population_size: 40, generations: 4, max_evaluations: 2000, time_limit: 60}}
"""
WALL_TIME = re.compile(rb', "fit_seconds": [0-9.e+-]+')  # the one wall-time field of a history line


def _command(folder: Path, out: Path, *extra: str) -> list[str]:
    (folder / "small.yaml").write_text(SMALL_TASK)
    (folder / "run.yaml").write_text(CONFIG)
    return [sys.executable, "-m", "lawsearch.cli", "discover", str(folder / "small.yaml"), "--config",
            str(folder / "run.yaml"), "--seed", "2", "--time-limit", "600", "--quiet", "--out", str(out), *extra]


def _history_bytes(run_dir: Path) -> bytes:
    return WALL_TIME.sub(b"", (run_dir / "history.jsonl").read_bytes())


def _generation(checkpoint: Path) -> int:
    try:
        return json.loads(checkpoint.read_text())["generation"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return -1


def _kill_after(proc: subprocess.Popen, checkpoint: Path, generation: int) -> None:
    """SIGKILL the run once its checkpoint reaches ``generation`` (or after 5 minutes)."""
    for _ in range(15_000):
        if proc.poll() is not None or _generation(checkpoint) >= generation:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("full")
    subprocess.run(_command(folder, folder / "run"), check=True, capture_output=True, timeout=600)
    return folder / "run"


@pytest.mark.slow  # five runs (with Operon when installed); tests/test_search.py kills one run in the default suite
@pytest.mark.parametrize("kill_after", [1, 3])
def test_kill_9_then_resume_replays_the_uninterrupted_history_byte_for_byte(tmp_path, uninterrupted, kill_after):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(_command(tmp_path, run_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = run_dir / "checkpoint.json"
    _kill_after(proc, checkpoint, kill_after)
    generation = json.loads(checkpoint.read_text())["generation"]
    assert kill_after <= generation < 6 and not (run_dir / "law.json").exists(), "killed mid-way"
    subprocess.run(_command(tmp_path, run_dir, "--resume"), check=True, capture_output=True, timeout=600)
    assert _history_bytes(run_dir) == _history_bytes(uninterrupted)
    winner = [json.loads((d / "law.json").read_text())["law"]["formula"] for d in (run_dir, uninterrupted)]
    assert winner[0] == winner[1]


# ---------------------------------------------------------------------------------------- item 4
SMALL = dict(generations=2, proposals_per_generation=6, initial_library=8, islands=2, search_starts=8,
             search_local=2, time_limit=120, bootstrap=0, workers=1, refine_top=1, proposers=("library", "mutate"))


@pytest.fixture
def killed_run(tmp_path):
    """A run stopped after its first generation, as a kill would leave it (no law.json)."""
    task = synthetic_task()
    settings = SearchSettings(seed=0, **SMALL)
    search = Discovery(task, settings, tmp_path / "run")
    search.run_generation()
    search.close()
    return task, settings, tmp_path / "run"


def _truncate(history: Path) -> None:
    history.write_bytes(history.read_bytes()[:-40])


def _edit(history: Path) -> None:
    data = bytearray(history.read_bytes())
    data[data.index(b'"generation": 0')] = ord(b"x")  # same length, one byte changed
    history.write_bytes(bytes(data))


@pytest.mark.parametrize(("damage", "message"), [
    (_truncate, r"history.jsonl: \d+ bytes, but the checkpoint records \d+: it was truncated; restore "),
    (Path.unlink, r"history.jsonl: missing, but the checkpoint records \d+ bytes of it; restore "),
    (_edit, r"first \d+ bytes differ from the checkpointed history \(SHA-256 mismatch\): it was edited; restore "),
])
def test_a_damaged_history_is_refused_with_how_to_recover(killed_run, damage, message):
    task, settings, run_dir = killed_run
    damage(run_dir / "history.jsonl")
    with pytest.raises(CheckpointError, match=message + r".* or start a new run with another --out"):
        discover(task, settings, out=run_dir, resume=True)
    assert not (run_dir / "law.json").exists()


def test_the_cli_refuses_a_truncated_history_with_exit_2(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run(_command(tmp_path, run_dir) + ["--generations", "1", "--proposers", "library"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    _truncate(run_dir / "history.jsonl")
    before = (run_dir / "checkpoint.json").read_bytes()
    proc = subprocess.run(_command(tmp_path, run_dir, "--resume"), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "it was truncated" in proc.stderr and "Traceback" not in proc.stderr
    assert (run_dir / "checkpoint.json").read_bytes() == before  # nothing written


def test_lines_of_a_killed_generation_after_the_checkpoint_are_cut(killed_run):
    task, settings, run_dir = killed_run
    history = run_dir / "history.jsonl"
    checkpointed = history.read_bytes()
    with open(history, "ab") as handle:
        handle.write(b'{"generation": 1, "formula": "half a li')
    result = discover(task, settings, out=run_dir, resume=True)
    assert history.read_bytes().startswith(checkpointed) and result.state.generation == 2
    assert [json.loads(line)["index"] for line in history.read_text().splitlines()] == \
        list(range(result.state.proposals))


# ---------------------------------------------------------------------------------------- item 6
def test_a_worker_crash_is_an_error_and_never_archived(tmp_path):
    task = synthetic_task()
    settings = SearchSettings(seed=1, **{**SMALL, "generations": 3})
    reference = discover(task, settings, out=tmp_path / "reference")
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))

    def kill_workers(state, search):
        if state.generation == 1:
            for pid in list(pool._processes):  # the pool's worker processes die (OOM killer, segfault …)
                os.kill(pid, signal.SIGKILL)

    search = Discovery(task, settings, tmp_path / "run", executor=pool)
    with pytest.raises(WorkerCrash, match=r"a worker failed in generation 1 \(BrokenProcessPool.*--resume --out"):
        search.run(kill_workers)
    pool.shutdown(wait=True)
    checkpoint = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert checkpoint["generation"] == 1
    assert not [c for c in checkpoint["archive"] if "worker" in json.dumps(c)]
    assert "worker" not in (tmp_path / "run" / "history.jsonl").read_text()
    discover(task, settings, out=tmp_path / "run", resume=True)
    assert _history_bytes(tmp_path / "run") == _history_bytes(reference.run_dir)
