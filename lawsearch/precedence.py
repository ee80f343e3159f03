"""The one precedence rule of configuration: CLI options > environment > run config > defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["merge_layers"]


def merge_layers(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge settings layers given lowest first (run config, environment, CLI): a later layer's value
    wins, a ``None`` value leaves the setting unset, and a mapping (an engine block such as ``llm:``)
    is merged key by key the same way."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if value is None:
                continue
            if isinstance(value, Mapping):
                below = merged.get(key)
                merged[key] = merge_layers(below if isinstance(below, Mapping) else {}, value)
            else:
                merged[key] = value
    return merged
