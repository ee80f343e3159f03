"""Parsing an LLM's answer tolerantly: JSON, fenced blocks, lists or lines of formulas (never executed)."""

from __future__ import annotations

import json
import re
from typing import Any


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n?(.*?)```", re.S)
_FORMULA_FIELD = re.compile(r'"(?:formula|law|expression)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_RATIONALE_FIELD = re.compile(r'"(?:rationale|reason|explanation)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_LIST_MARK = re.compile(r"^\s*(?:\d+\s*[.):]|[-*•])\s+")
_LABEL = re.compile(r"^(?:formula|law|equation|expression|answer)\s*\d*\s*[:：]\s*", re.I)
_PROSE = re.compile(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}\s+[A-Za-z]{2,}")
_FORMULA_KEYS = ("formula", "law", "expression", "equation")
_RATIONALE_KEYS = ("rationale", "reason", "explanation", "note")


def _items_from_json(obj: Any) -> list[tuple[Any, str]] | None:
    """Formulas from a decoded JSON value, or None when it has no recognizable shape."""
    if isinstance(obj, dict):
        for key in ("laws", "formulas", "proposals", "candidates", "results"):
            if key in obj and isinstance(obj[key], list):
                return _items_from_list(obj[key])
        if any(k in obj for k in _FORMULA_KEYS):
            return _items_from_list([obj])
        return None
    if isinstance(obj, list):
        return _items_from_list(obj)
    return None


def _items_from_list(values: list[Any]) -> list[tuple[Any, str]]:
    items: list[tuple[Any, str]] = []
    for v in values:
        if isinstance(v, dict):
            formula = next((v[k] for k in _FORMULA_KEYS if k in v), None)
            rationale = next((v[k] for k in _RATIONALE_KEYS if k in v), "")
            items.append((formula, rationale if isinstance(rationale, str) else json.dumps(rationale)))
        else:
            items.append((v, ""))
    return items


def _decode_embedded(text: str) -> list[tuple[Any, str]] | None:
    """Find the first JSON object/array inside ``text`` (prose before or after is ignored)."""
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch not in "{[":
            continue
        try:
            obj, _ = decoder.raw_decode(text, i)
        except ValueError:
            continue
        items = _items_from_json(obj)
        if items is not None:
            return items
    return None


def _line_formulas(text: str) -> list[tuple[Any, str]]:
    """Fallback: one formula per line (list markers, labels and trailing comments stripped)."""
    items: list[tuple[Any, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("```", "#", "{", "}", "[", "]")):
            continue
        line = _LIST_MARK.sub("", line)
        line = _LABEL.sub("", line.strip("*_ ").strip())
        rationale = ""
        for sep in (" -- ", " — ", " – ", " # ", "  (", " : "):
            if sep in line:
                line, _, rationale = line.partition(sep)
                rationale = rationale.strip(" )")
        line = line.strip().strip("`$\"'").strip().rstrip(".,;")
        if not line or not re.search(r"[-+*/^()]", line) or _PROSE.search(line):
            continue
        items.append((line, rationale))
    return items


def parse_answer(text: str | None) -> tuple[list[tuple[Any, str]], str]:
    """Extract ``(formula, rationale)`` pairs from an LLM answer, tolerantly.

    Tries, in order: the whole text as JSON; JSON inside ```code fences```;
    the first JSON value embedded in prose; ``"formula": "..."`` fields of
    broken JSON; one formula per line.  Returns the pairs and how they were
    found (``json``, ``fenced``, ``embedded``, ``salvaged``, ``lines``,
    ``empty``).  Formula values are *not* validated here (see the proposer).
    """
    if not text or not text.strip():
        return [], "empty"
    text = text.strip()
    for source, how in [(text, "json"), *((block.strip(), "fenced") for _lang, block in _FENCE.findall(text))]:
        try:
            items = _items_from_json(json.loads(source))
        except ValueError:  # not JSON: a fenced block may still hold a JSON value in prose
            items = _decode_embedded(source) if how == "fenced" else None
        if items is not None:
            return items, how
    items = _decode_embedded(text)
    if items is not None:
        return items, "embedded"
    found = _FORMULA_FIELD.findall(text)
    if found:
        rationales = _RATIONALE_FIELD.findall(text)
        out = []
        for i, f in enumerate(found):
            try:
                formula = json.loads(f'"{f}"')
            except ValueError:
                formula = f
            rationale = rationales[i] if i < len(rationales) else ""
            out.append((formula, rationale))
        return out, "salvaged"
    # plain text (maybe inside fences)
    plain = "\n".join(block for _lang, block in _FENCE.findall(text)) or text
    items = _line_formulas(plain)
    return items, "lines" if items else "empty"


_LHS_CALL = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*\([^()=]*\)\s*=(?!=)")


def clean_formula(text: str) -> str:
    """Cosmetic clean-up of formula text before the safe parser sees it (text in, text out)."""
    f = " ".join(text.split())
    f = f.strip().strip("`").strip()
    if f.startswith("$") and f.endswith("$"):
        f = f.strip("$").strip()
    f = f.rstrip(".,;").strip()
    f = _LHS_CALL.sub(lambda m: f"{m.group(1)} =", f)  # "L(N, D) = ..." -> "L = ..."
    return f


def snippet(text: str | None, limit: int = 120) -> str:
    if not text:
        return ""
    t = " ".join(text.split())
    return t if len(t) <= limit else t[: limit - 3] + "..."
