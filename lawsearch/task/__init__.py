"""Tasks: a validated YAML spec, its data table and its train/test split.

A task spec names a table (CSV, Parquet or JSON Lines file, a Hugging Face
dataset, or a synthetic table), the input columns, the target column(s), an
optional group column (parameters are fitted per group; without one every row
is in group ``"all"``), the split and the human laws to compare with::

    name: chinchilla
    data: {path: chinchilla_scaling_law/data.csv}
    inputs: [params, tokens]
    target: loss
    split: {column: split, by: [params, tokens]}
    limits: {max_parameters: 6}
    human_laws:
      - {name: Hoffmann et al. 2022, formula: "E + A/params**alpha + B/tokens**beta"}

``data.path`` is looked up relative to the YAML file's folder, then under
``$LAWSEARCH_DATA``; ``data.hub`` is the fallback when neither has the file.

Splits.  ``split: {column: c}`` reads 'train'/'test' from column ``c``.
``split: {extrapolate: {by: [...], test_fraction: f}}`` holds out, within each
group, the rows of largest scale (see :func:`holdout_largest`).  Without a
``split`` entry the task extrapolates along all inputs with ``f = 0.2``.
The *scale columns* (``by``; default: all inputs) also decide the search's
validation rows (:meth:`Task.validation_split`); ``by: []`` means the task has
no scale axis, and those holdouts are then seeded random draws per group.  How
many train rows the search validates on follows the test split by default
(:meth:`Task.validation_fraction`).

Pairs.  A multi-output task may pair each target with an input, explicitly
(``pairs: {loss_a: share_a, loss_b: share_b}``) or by a template with ``{i}``
(``pairs: {"loss_domain_{i}": "proportion_domain_{i}"}``); a law then names the
paired input ``self`` (``c + k*exp(t*self)``), fitted per target like any other law.

Every problem is a :class:`TaskError` (the spec) or a :class:`DataError` (the
table) whose message names the file, field, column and 1-based data row.
"""

from .curated import TASKS_DIR, CuratedTask, curated_tasks
from .load import load_task, task_from_frame
from .model import AUTO_VALIDATION_BOUNDS, DEFAULT_GROUP, Task, TaskData
from .spec import HumanLaw, TaskSpec, expand_pairs, load_spec
from .splits import holdout_largest, scale_score
from .tables import DATA_ENV, DataNotFound

__all__ = [
    "AUTO_VALIDATION_BOUNDS",
    "TaskSpec",
    "TaskData",
    "Task",
    "CuratedTask",
    "DataNotFound",
    "TASKS_DIR",
    "load_spec",
    "load_task",
    "task_from_frame",
    "holdout_largest",
    "scale_score",
    "curated_tasks",
    "expand_pairs",
    "HumanLaw",
    "DATA_ENV",
    "DEFAULT_GROUP",
]
