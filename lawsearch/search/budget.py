"""The run's time budget: how ``--time-limit`` is shared by the phases of a run.

The limit bounds the whole run (its wall time over all its sessions, from the
start of ``discover``): the search, the refinement of the finalists, the final
fits, the bootstrap and the files.  Each phase ends at a share of it:

- the search starts no generation once :data:`SEARCH_SHARE` of the limit has
  passed, and every fit of a generation stops there (a law not fitted by then
  is recorded with status ``timeout`` and is not archived, so a longer run
  fits it afresh); a proposer's waits (an LLM request and its retry waits, an
  SR run) end halfway to that point, leaving the rest to the fits.  Until a
  first law is fitted the search may go on to :data:`REFINE_SHARE`, and one
  generation runs even when loading the task took longer; if its deadline cut
  every fit, its laws are fitted past it, one by one, until one fits: a run
  always has a law to write;
- the finalists are refitted with the thorough fitter until :data:`REFINE_SHARE`;
- the winner's and the human laws' fits on all of train, then the bootstrap,
  until :data:`FINAL_SHARE` (the winner's fit gets at least :data:`WINNER_FIT_GRACE`
  of the limit, even when the earlier phases overran); the rest writes the files.

A phase that ends early (the generations or ``max_evals`` end the search) leaves
its time to the next.  Fits cut short by a deadline stop with the best
parameters found so far (:attr:`lawsearch.fit.FitOptions.deadline`), so a run
that the time limit ends is not deterministic; one that its generations end is.

The search's cheap fits use at most :data:`SEARCH_MAX_ROWS` search-train rows
(and as many validation rows), a seeded subsample of each group, so that a big
table does not make one generation outlast the budget nor starve the search; the finalists and the
winner are fitted on all the rows.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from ..fit import FitOptions
from ..task import TaskData

__all__ = ["SEARCH_SHARE", "WINNER_FIT_GRACE", "REFINE_SHARE", "FINAL_SHARE", "SEARCH_MAX_ROWS", "deadline_at",
           "with_deadline", "cap_rows"]

SEARCH_SHARE = 0.6
WINNER_FIT_GRACE = 0.05  # the winner's fit on all of train gets at least this share, even past FINAL_SHARE
REFINE_SHARE = 0.75  # the final fits are on all of train: on a big table they cost more than the refits
FINAL_SHARE = 0.95
#: Rows enough to rank laws of up to 30 parameters: on lr_bsz's generation-0 pool (98 laws, 2507
#: search-train rows) the validation errors fitted on 1000 of them rank the laws as all rows do
#: (Spearman 0.99, 8 of the 10 best the same) at 2.8x less fitting time (benchmarks/search_rows.py).
SEARCH_MAX_ROWS = 1000


def deadline_at(time_limit: float, elapsed: float, share: float) -> float:
    """The ``time.time()`` at which a run that has used ``elapsed`` seconds reaches ``share`` of its limit."""
    return time.time() + share * time_limit - elapsed


def with_deadline(options: FitOptions | None, deadline: float) -> FitOptions:
    """``options`` (None: the defaults) that stop at ``deadline``."""
    return dataclasses.replace(options or FitOptions(), deadline=deadline)


def cap_rows(data: TaskData, max_rows: int, seed: int) -> TaskData:
    """``data`` itself when it has at most ``max_rows`` rows, else a seeded subsample of that
    many, the same share of each group (at least one row each), in the original order."""
    n = len(data)
    if n <= max_rows:
        return data
    rng = np.random.default_rng(np.random.SeedSequence([seed, n, max_rows]))
    keep = []
    for name in data.group_names():
        index = np.flatnonzero(data.groups == name)
        size = max(1, math.floor(index.size * max_rows / n))
        keep.append(rng.choice(index, size=size, replace=False))
    return data.subset(np.sort(np.concatenate(keep)))
