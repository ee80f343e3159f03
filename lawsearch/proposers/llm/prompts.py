"""The prompts of the LLM proposer: the plain-text templates and the messages built from the search's state and the data summary."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import string
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ProposerError, TaskError
from ...formula import FUNCTIONS
from ...summary import Rows, format_best_laws, format_failures, format_summary, residual_pattern, summarize_data
from ..base import ScoredLaw, SearchContext
from .client import Job
from .settings import TEMPLATE_SLOTS

log = logging.getLogger("lawsearch.llm")


# ============================================================================ templates
def load_template(kind: str, prompts_dir: str | os.PathLike[str] | None = None) -> string.Template:
    """Load a prompt template; lines starting with ``##`` (documentation) are dropped."""
    if kind not in TEMPLATE_SLOTS:
        raise ProposerError(f"unknown prompt template {kind!r}")
    if prompts_dir is not None:
        path = Path(prompts_dir) / f"{kind}.txt"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TaskError(f"llm.prompts_dir: cannot read {path}: {exc.strerror or exc}") from None
        where = str(path)
    else:
        text = (resources.files("lawsearch") / "prompts" / f"{kind}.txt").read_text(encoding="utf-8")
        where = f"lawsearch/prompts/{kind}.txt"
    body = "\n".join(line for line in text.splitlines() if not line.startswith("##")).strip("\n") + "\n"
    template = string.Template(body)
    if not template.is_valid():
        raise TaskError(f"{where}: invalid '$' placeholder (write $$ for a literal dollar)")
    unknown = set(template.get_identifiers()) - set(TEMPLATE_SLOTS[kind])
    if unknown:
        raise TaskError(
            f"{where}: unknown slot(s) {', '.join('$' + u for u in sorted(unknown))}; "
            f"known: {', '.join('$' + s for s in TEMPLATE_SLOTS[kind])}"
        )
    return template


def render_template(template: string.Template, slots: Mapping[str, Any]) -> str:
    """Fill every slot (values are inserted verbatim, never re-interpreted); tidy blank lines."""
    text = template.substitute({k: str(v) for k, v in slots.items()})
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


class PromptMixin:
    """Planning a call (propose, mutate or crossover) and building its messages; mixed into :class:`LLMProposer`."""

    # ------------------------------------------------------------------ planning and prompts
    def _plan(self, context: SearchContext) -> tuple[str, tuple[str, ...], int]:
        rng = context.rng
        best = list(context.best)[:20]
        r = float(rng.random())
        seed = int(rng.integers(0, 2**31 - 1))
        if not best or r < self.settings.explore:
            return "propose", (), seed
        if len(best) >= 2 and r < self.settings.explore + self.settings.crossover:
            a = self._tournament(best, rng)
            rest = [i for i in range(len(best)) if i != a]
            b = rest[min(int(j) for j in rng.choice(len(rest), size=min(3, len(rest)), replace=False))]
            return "crossover", (best[a].formula, best[b].formula), seed
        return "mutate", (best[self._tournament(best, rng)].formula,), seed

    @staticmethod
    def _tournament(best: list[ScoredLaw], rng: np.random.Generator, k: int = 3) -> int:
        picks = rng.choice(len(best), size=min(k, len(best)), replace=False)
        return int(min(int(p) for p in picks))  # best is sorted, best first

    def _data_summary(self, context: SearchContext) -> str:
        X = np.ascontiguousarray(context.X, dtype=float)
        Y = np.ascontiguousarray(context.Y, dtype=float)
        key = (
            context.inputs,
            context.targets,
            hashlib.sha256(X.tobytes() + Y.tobytes() + np.asarray(context.groups).astype(str).tobytes()).hexdigest(),
        )
        if key != self._summary_key:
            self._summary_text = format_summary(
                summarize_data(Rows(context.inputs, context.targets, X, Y, context.groups))
            )
            self._summary_key = key
            self._residual_cache.clear()
        return self._summary_text

    def _residuals(self, formula: str, context: SearchContext) -> str:
        if formula not in self._residual_cache:
            self._residual_cache[formula] = residual_pattern(
                formula, Rows(context.inputs, context.targets, context.X, context.Y, context.groups)
            )
        return self._residual_cache[formula]

    def _system_text(self, context: SearchContext, n_laws: int) -> str:
        inputs = ", ".join(context.inputs)
        functions = ", ".join(sorted(set(FUNCTIONS) - {"Abs", "Min", "Max"}))
        if context.max_parameters:
            limit = f"At most {context.max_parameters} fitted parameters per law; fewer is better."
        else:
            limit = "Use few fitted parameters (at most 6 is a good rule); fewer is better."
        x = context.inputs[0] if context.inputs else "x"
        example = {"laws": [{"formula": f"A * {x}**(-alpha) + E", "rationale": "power law with an irreducible term"}]}
        answer = (
            f"Answer with JSON only (no prose, no code fences): an object with a list \"laws\" of {n_laws} "
            "entries, each with a \"formula\" (the right-hand side of the law) and a \"rationale\" (one short "
            f"sentence).  Shape, with an example entry that you must not copy: {json.dumps(example)}"
        )
        return render_template(
            self.templates["system"],
            {
                "inputs": inputs,
                "targets": ", ".join(context.targets),
                "functions": functions,
                "parameter_limit": limit,
                "answer_format": answer,
            },
        )

    def _law_line(self, formula: str, context: SearchContext) -> str:
        for law in context.best:
            if law.formula == formula:
                return f"validation error {law.val_error:.4g}, {law.n_parameters} parameters, complexity {law.complexity}"
        return "validation error unknown"

    def _make_job(
        self, context: SearchContext, kind: str, parents: tuple[str, ...], seed: int, n_laws: int
    ) -> Job:
        system = self._system_text(context, n_laws)
        task = context.task_name or "(unnamed task)"
        if context.task_description:
            task += f" — {context.task_description}"
        failures = list(context.failures)[-8:] + list(self._rejections)[-8:]
        slots: dict[str, Any] = {
            "system": system if self._system_in_user else "",
            "task": task,
            "data_summary": self._data_summary(context),
            "failures": format_failures(failures),
            "n_laws": n_laws,
            "targets": ", ".join(context.targets),
            "inputs": ", ".join(context.inputs),
        }
        if kind == "propose":
            slots["best_laws"] = format_best_laws(context.best)
        elif kind == "mutate":
            (law,) = parents
            best = context.best
            law_obj = next((b for b in best if b.formula == law), None)
            slots.update(
                law=law,
                law_error=f"{law_obj.val_error:.4g}" if law_obj else "unknown",
                law_params=(
                    f"{law_obj.n_parameters} fitted parameters, complexity {law_obj.complexity}" if law_obj else ""
                ),
                residuals=self._residuals(law, context),
                best_laws=format_best_laws([b for b in best if b.formula != law], limit=5),
            )
        else:
            a, b = parents
            slots.update(
                law_a=a, law_a_error=self._law_line(a, context), law_b=b, law_b_error=self._law_line(b, context)
            )
        user = render_template(self.templates[kind], slots)
        if self._system_in_user:
            messages = [{"role": "user", "content": user}]
        else:
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        with self._lock:
            self._call_counter += 1
            call_id = f"llm-{self._call_counter:05d}"
        return Job(call_id, kind, messages, n_laws, seed, parents, context.generation)
