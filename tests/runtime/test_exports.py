"""Every package keeps a sorted ``__all__`` whose names all exist."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

from partita import runtime


def isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def modules_of(package: str) -> list[ModuleType]:
    """The package and every module in it; all of them must import."""
    top = importlib.import_module(package)
    found = [top]
    for info in pkgutil.iter_modules(getattr(top, "__path__", [])):
        found.append(importlib.import_module(f"{package}.{info.name}"))
    return found


@pytest.mark.parametrize(
    "package", ["partita", "partita.runtime", "partita.actors", "partita.sql", "partita.testing"]
)
def test_all_is_sorted_and_complete(package: str) -> None:
    checked = 0
    for module in modules_of(package):
        names = getattr(module, "__all__", None)
        if names is None:
            continue
        checked += 1
        assert list(names) == sorted(names, key=isort_key), module.__name__
        assert len(set(names)) == len(names), module.__name__
        missing = [n for n in names if not hasattr(module, n)]
        assert missing == [], module.__name__
    if package == "partita.runtime":
        assert checked > 1


def test_runtime_exports_its_public_api() -> None:
    public = {n for n in vars(runtime) if not n.startswith("_")}
    submodules = {m.name for m in pkgutil.iter_modules(runtime.__path__)}
    assert public - submodules - {"annotations"} == set(runtime.__all__)
