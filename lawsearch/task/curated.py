"""The curated task folder, as ``lawsearch tasks`` lists it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


from ..errors import LawsearchError
from .load import load_task
from .spec import load_spec
from .tables import DATA_ENV, DataNotFound


#: Curated task YAMLs: the repository's ``tasks/`` folder (present in a source
#: checkout or an editable install; a wheel does not ship it).
TASKS_DIR = Path(__file__).resolve().parents[2] / "tasks"


@dataclass(frozen=True)
class CuratedTask:
    """One YAML of the curated task folder, as `lawsearch tasks` lists it."""

    name: str
    path: Path
    available: bool
    reason: str = ""
    train_rows: int | None = None
    test_rows: int | None = None
    groups: tuple[str, ...] = ()


def curated_tasks(folder: str | Path | None = None) -> list[CuratedTask]:
    """Every task YAML in ``folder`` (default :data:`TASKS_DIR`), loaded offline when its data is there."""
    folder = Path(folder) if folder is not None else TASKS_DIR
    found = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            spec = load_spec(path)
        except LawsearchError as exc:
            found.append(CuratedTask(path.stem, path, False, str(exc)))
            continue
        try:
            task = load_task(path, use_hub=False)
        except DataNotFound:
            online = ", or go online for the hub copy" if spec.data is not None and spec.data.hub else ""
            found.append(CuratedTask(spec.name, path, False, f"data not found: set {DATA_ENV}{online}"))
        except LawsearchError as exc:
            found.append(CuratedTask(spec.name, path, False, str(exc)))
        else:
            found.append(CuratedTask(spec.name, path, True, "", len(task.train), len(task.test),
                                     tuple(task.train.group_names())))
    return found
