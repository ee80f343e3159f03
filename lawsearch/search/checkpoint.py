"""Run state saved atomically after every generation, and restored by ``--resume``.

The state holds everything the next generation depends on: the archive (which
is also the fit cache), the island populations, counters, each proposer's own
state (an SR engine's call count and queue, the LLM's budget counters) and the
byte length and SHA-256 of history.jsonl at the time of the checkpoint.
Randomness is derived from (seed, generation), so no generator state needs
saving, and a resumed run replays the generations of an uninterrupted one.  On
resume the history is cut back to that length, so a run killed mid-generation
leaves no gap and no duplicate line; a history shorter than that, or whose
first bytes no longer hash the same (truncated, deleted or edited), is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..io import write_json_atomic
from .archive import Archive

__all__ = ["RunState", "save_checkpoint", "load_checkpoint", "check_history", "CHECKPOINT", "HISTORY"]

CHECKPOINT = "checkpoint.json"
HISTORY = "history.jsonl"
FORMAT_VERSION = 1


@dataclass
class RunState:
    """The search's state between two generations."""

    task: str
    settings: dict[str, Any]
    generation: int = 0  # generations completed
    archive: Archive = field(default_factory=Archive)
    islands: list[list[str]] = field(default_factory=list)
    evaluations: int = 0  # laws fitted (cache hits excluded)
    proposals: int = 0  # history lines written
    elapsed: float = 0.0  # wall seconds spent over all sessions of this run
    history_bytes: int = 0
    history_sha256: str | None = None  # of the first history_bytes bytes (None: a checkpoint from before hashes)
    proposer_state: dict[str, dict[str, Any]] = field(default_factory=dict)  # per proposer, for an exact resume
    proposer_stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    best_trace: list[dict[str, Any]] = field(default_factory=list)  # best val error after each generation
    finished: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "task": self.task,
            "settings": self.settings,
            "generation": self.generation,
            "archive": self.archive.to_list(),
            "islands": self.islands,
            "evaluations": self.evaluations,
            "proposals": self.proposals,
            "elapsed": self.elapsed,
            "history_bytes": self.history_bytes,
            "history_sha256": self.history_sha256,
            "proposer_state": self.proposer_state,
            "proposer_stats": self.proposer_stats,
            "best_trace": self.best_trace,
            "finished": self.finished,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        if data.get("version") != FORMAT_VERSION:
            raise CheckpointError(f"checkpoint format {data.get('version')!r} is not supported")
        return cls(
            task=data["task"],
            settings=data["settings"],
            generation=data["generation"],
            archive=Archive.from_list(data["archive"]),
            islands=data["islands"],
            evaluations=data["evaluations"],
            proposals=data["proposals"],
            elapsed=data["elapsed"],
            history_bytes=data["history_bytes"],
            history_sha256=data.get("history_sha256"),
            proposer_state=data.get("proposer_state", {}),
            proposer_stats=data["proposer_stats"],
            best_trace=data["best_trace"],
            finished=data["finished"],
        )


def save_checkpoint(run_dir: Path, state: RunState) -> None:
    """Record the history's current length and hash in the state and write it atomically."""
    history = run_dir / HISTORY
    data = history.read_bytes() if history.exists() else b""
    state.history_bytes = len(data)
    state.history_sha256 = hashlib.sha256(data).hexdigest()
    write_json_atomic(run_dir / CHECKPOINT, state.to_dict())


def load_checkpoint(run_dir: Path) -> RunState:
    """Load a run's state, check history.jsonl against it (:func:`check_history`) and cut the
    history back to the checkpoint."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        raise CheckpointError(f"{run_dir}: no {CHECKPOINT} to resume from")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc})") from None
    _check_fields(path, data)
    try:
        state = RunState.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None
    check_history(run_dir, state)
    history = run_dir / HISTORY
    if history.stat().st_size > state.history_bytes:
        with open(history, "r+b") as handle:
            handle.truncate(state.history_bytes)
            handle.flush()
            os.fsync(handle.fileno())
    return state


def check_history(run_dir: Path, state: RunState) -> None:
    """Refuse (:class:`CheckpointError`) a history.jsonl that lost or changed lines the checkpoint
    recorded: it must hold at least ``history_bytes`` bytes whose SHA-256 is ``history_sha256``
    (lines after them are the killed generation's, and are cut)."""
    history = run_dir / HISTORY
    recover = (f"restore {HISTORY} from a copy, or start a new run with another --out "
               "(a resumed run's history must continue the checkpointed one)")
    if not history.exists() and state.history_bytes == 0:
        history.touch()
    if not history.exists():
        raise CheckpointError(f"{history}: missing, but the checkpoint records {state.history_bytes} bytes of it; "
                              f"{recover}")
    size = history.stat().st_size
    if size < state.history_bytes:
        raise CheckpointError(f"{history}: {size} bytes, but the checkpoint records {state.history_bytes}: "
                              f"it was truncated; {recover}")
    if state.history_sha256 is None:
        return
    digest = hashlib.sha256()
    with open(history, "rb") as handle:
        digest.update(handle.read(state.history_bytes))
    if digest.hexdigest() != state.history_sha256:
        raise CheckpointError(f"{history}: its first {state.history_bytes} bytes differ from the checkpointed "
                              f"history (SHA-256 mismatch): it was edited; {recover}")
_COUNTS = ("generation", "evaluations", "proposals", "history_bytes")
_TYPES: dict[str, tuple[type, ...]] = {"task": (str,), "settings": (dict,), "archive": (list,), "islands": (list,),
                                       "proposer_stats": (dict,), "best_trace": (list,), "finished": (bool,)}


def _check_fields(path: Path, data: Any) -> None:
    """Refuse (:class:`CheckpointError`, naming the field) a checkpoint whose fields have the wrong
    type or range, or whose islands name laws that are not in its archive."""
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: a checkpoint is a JSON object, this is a JSON {type(data).__name__}")
    problem = None
    for name in _COUNTS:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problem = f"'{name}' must be a whole number >= 0, got {value!r}"
            break
    elapsed = data.get("elapsed")
    if problem is None and (isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)) or not elapsed >= 0):
        problem = f"'elapsed' must be a number of seconds >= 0, got {elapsed!r}"
    for name, types in _TYPES.items():
        if problem is None and not isinstance(data.get(name), types):
            problem = f"'{name}' must be a {types[0].__name__}, got {data.get(name)!r}"[:200]
    if problem is None:
        keys = {c.get("key") for c in data["archive"] if isinstance(c, dict)}
        for i, island in enumerate(data["islands"]):
            unknown = [k for k in island if k not in keys] if isinstance(island, list) else [island]
            if unknown:
                problem = f"island {i} names {unknown[0]!r}, which is not a law of its archive"
                break
    if problem is not None:
        raise CheckpointError(f"{path}: corrupt checkpoint: {problem}; start a new run with another --out")
