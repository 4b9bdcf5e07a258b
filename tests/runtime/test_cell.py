"""The supervisor and the graph reach an actor's machinery through its cell only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from partita.runtime import Actor, Sink, Source

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"


def _actor_private_names() -> set[str]:
    names: set[str] = set()
    for cls in (Actor, Source, Sink):
        for klass in cls.__mro__:
            names.update(n for n in vars(klass) if n.startswith("_") and not n.startswith("__"))
        names.update(n for n in getattr(cls, "__slots__", ()) if n.startswith("_"))
    return names


def _private_reads(path: Path) -> set[str]:
    """Every ``x._name`` in ``path`` where ``x`` is not ``self``."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id == "self")
        ):
            out.add(node.attr)
    return out


def test_the_check_knows_the_actor_private_names() -> None:
    assert {"_cell", "_offset", "_make_cell"} <= _actor_private_names()


@pytest.mark.parametrize("module", ["_supervisor.py", "_graph.py"])
def test_kernel_touches_no_private_member_of_an_actor(module: str) -> None:
    assert _private_reads(RUNTIME / module) & _actor_private_names() == set()
