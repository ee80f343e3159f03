"""What a finished run hands back: the run folder, law.json and the state; and where runs go by default."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..task import Task
from .checkpoint import RunState


@dataclass
class DiscoveryResult:
    """What a finished (or interrupted) run produced; ``run_dir`` holds the files."""

    run_dir: Path
    law_json: dict[str, Any]
    state: RunState
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    task: Task | None = None

    @property
    def formula(self) -> str:
        return self.law_json["law"]["formula"]

    def _repr_html_(self) -> str:
        """A small table in a notebook: the law beside the human laws, test metrics."""
        from ..notebook import result_html

        return result_html(self)

    def plot(self, **kwargs: Any) -> Any:
        """The per-group fit and extrapolation figure (:func:`lawsearch.notebook.plot_result`)."""
        from ..notebook import plot_result

        return plot_result(self, **kwargs)


def default_run_dir(task: Task, seed: int, root: Path = Path("results")) -> Path:
    """``results/<task>/<UTC timestamp>-s<seed>``."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return root / task.name / f"{stamp}-s{seed}"
