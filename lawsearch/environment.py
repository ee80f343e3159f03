"""The environment variables lawsearch reads, read here and nowhere else.

Run settings: ``LAWSEARCH_SEED``, ``LAWSEARCH_WORKERS``, ``LAWSEARCH_TIME_LIMIT``,
``LAWSEARCH_SCHEDULER``; the LLM block: ``LAWSEARCH_LLM_MODEL`` and
``LAWSEARCH_LLM_BASE_URL`` (or ``OPENAI_BASE_URL``; the first wins); the LLM's API key
from the variable its settings name (``OPENAI_API_KEY``); the data folder
``LAWSEARCH_DATA``; the LLM answer cache under ``XDG_CACHE_HOME``.  Every function takes
the mapping to read (``None``: :data:`os.environ`), so tests pass their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["DATA", "SETTINGS_VARIABLES", "LLM_VARIABLES", "read", "settings_layer", "llm_layer", "api_key",
           "data_dir", "cache_home", "without_data"]

DATA = "LAWSEARCH_DATA"
#: variable → run setting it sets.
SETTINGS_VARIABLES = {
    "LAWSEARCH_SEED": "seed",
    "LAWSEARCH_WORKERS": "workers",
    "LAWSEARCH_TIME_LIMIT": "time_limit",
    "LAWSEARCH_SCHEDULER": "scheduler",
}
#: LLM setting → the variables that set it, the first set one wins.
LLM_VARIABLES = {
    "model": ("LAWSEARCH_LLM_MODEL",),
    "base_url": ("LAWSEARCH_LLM_BASE_URL", "OPENAI_BASE_URL"),
}


def read(environ: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The environment to read: ``environ``, or the process's own."""
    return os.environ if environ is None else environ


def llm_layer(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``llm:`` settings the environment sets (empty variables are unset)."""
    env = read(environ)
    layer = {}
    for name, variables in LLM_VARIABLES.items():
        value = next((env[var] for var in variables if env.get(var)), None)
        if value is not None:
            layer[name] = value
    return layer


def settings_layer(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The run settings the environment sets, as a layer of :func:`lawsearch.precedence.merge_layers`."""
    env = read(environ)
    layer: dict[str, Any] = {name: env[var] for var, name in SETTINGS_VARIABLES.items() if env.get(var)}
    llm = llm_layer(env)
    if llm:
        layer["llm"] = llm
    return layer


def api_key(variable: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The API key held by ``variable`` (``None`` when unset or empty)."""
    return read(environ).get(variable) or None


def data_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The folder ``LAWSEARCH_DATA`` names (``None`` when unset)."""
    value = read(environ).get(DATA)
    return Path(value).expanduser() if value else None


def cache_home(environ: Mapping[str, str] | None = None) -> Path:
    """The user's cache folder: ``$XDG_CACHE_HOME``, else ``~/.cache``."""
    value = read(environ).get("XDG_CACHE_HOME")
    return Path(value) if value else Path(os.path.expanduser("~")) / ".cache"


def without_data(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without ``LAWSEARCH_DATA`` (for processes that must not read local data)."""
    return {k: v for k, v in read(environ).items() if k != DATA}
