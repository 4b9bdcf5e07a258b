"""One public name, one home: public objects report ``partita`` as their module.

As trio's ``fixup_module_metadata``: a class or function re-exported from
``partita`` shows as ``partita.X`` in reprs, tracebacks of the docs and
``help()``, wherever it is defined.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["fixup_module_metadata"]


def fixup_module_metadata(
    module_name: str, namespace: dict[str, Any], names: Iterable[str]
) -> None:
    """Set ``__module__`` (and ``__qualname__`` of methods) of ``names`` to ``module_name``."""
    seen: set[int] = set()

    def fix_one(qualname: str, name: str, obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        mod = getattr(obj, "__module__", None)
        if mod is None or not mod.startswith("partita."):
            return
        obj.__module__ = module_name
        if isinstance(obj, type):
            obj.__qualname__ = qualname
            for attr_name, value in obj.__dict__.items():
                if getattr(value, "__module__", None) == mod:
                    fix_one(f"{qualname}.{attr_name}", attr_name, value)

    for name in names:
        obj = namespace[name]
        if isinstance(obj, type) or callable(obj):
            fix_one(name, name, obj)
