"""Lazy exports of a package (PEP 562): a public name is imported from its module on first use, so
importing the package (or one of its light submodules) stays fast."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, modules: Mapping[str, Sequence[str]]) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and the module ``__getattr__`` of ``package``, from its public names by the module
    that defines them (absolute, or relative to ``package``)."""
    home = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name in home:
            return getattr(importlib.import_module(home[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return sorted(home), __getattr__
