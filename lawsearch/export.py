"""Export a law (with its fitted parameters) as LaTeX, sympy source or standalone Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from .errors import LawsearchError
from .formula import Law

__all__ = ["ExportFormat", "export_law", "load_law_json", "load_law_record", "law_from_record"]

ExportFormat = Literal["latex", "sympy", "python"]


def load_law_json(source: str | Path) -> dict[str, Any]:
    """Read a run's whole law.json (from its directory or the file); the law object is under ``law``."""
    path = Path(source)
    if path.is_dir():
        path = path / "law.json"
    if not path.exists():
        raise LawsearchError(f"{path}: no law.json here (give a run directory or a law.json file)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise LawsearchError(f"{path}: not a law.json (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise LawsearchError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    record = data.get("law", data) if isinstance(data, dict) else None
    if not isinstance(record, dict) or "formula" not in record or "inputs" not in record:
        raise LawsearchError(f"{path}: no law object with 'formula' and 'inputs'")
    if not isinstance(record["formula"], str):
        raise LawsearchError(f"{path}: the law's 'formula' must be text, got {record['formula']!r}"[:300])
    if not isinstance(record["inputs"], list) or not all(isinstance(n, str) for n in record["inputs"]):
        raise LawsearchError(f"{path}: the law's 'inputs' must be a list of names, got {record['inputs']!r}"[:300])
    if "law" not in data:
        return {"task": path.parent.name, "law": record, "human_laws": []}
    if not isinstance(data.get("task"), str):
        raise LawsearchError(f"{path}: no 'task' naming the law's task")
    return data


def load_law_record(source: str | Path) -> dict[str, Any]:
    """Read the law object of a run directory (its law.json) or of a law.json file."""
    return load_law_json(source)["law"]


def law_from_record(record: dict[str, Any]) -> Law:
    """Re-parse the law of a law object (through the safe parser)."""
    return Law.parse(record["formula"], record["inputs"], pairs=[tuple(p) for p in record.get("pairs", [])])


def _python_source(law: Law, fitted: dict[str, Any] | None) -> str:
    source = law.to_python("law")
    if not fitted:
        return source
    args = ", ".join(law.variables)
    multi_target = any(isinstance(v, dict) for params in fitted.values() for v in params.values())
    lookup = "PARAMETERS[group][target]" if multi_target else "PARAMETERS[group]"
    signature = f"{args}, group={next(iter(fitted))!r}" + (", target=None" if multi_target else "")
    return (
        source
        + f"\n\n# Fitted parameters per group{' and target' if multi_target else ''}.\n"
        + f"PARAMETERS = {json.dumps(fitted, indent=4)}\n\n\n"
        + f"def predict({signature}):\n"
        + '    """Predictions with the fitted parameters of one group."""\n'
        + f"    return law({args}, **{lookup})\n"
    )


def export_law(law: Law, fmt: ExportFormat, fitted: dict[str, Any] | None = None) -> str:
    """Text of ``law`` in ``fmt``; Python output embeds ``fitted`` parameters when given."""
    if fmt == "latex":
        return law.to_latex() + "\n"
    if fmt == "sympy":
        return law.to_sympy()
    if fmt == "python":
        return _python_source(law, fitted)
    raise LawsearchError(f"unknown export format {fmt!r}; choose latex, sympy or python")
