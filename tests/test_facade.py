"""``import partita``: the facade's names, and the examples in their docstrings."""

from __future__ import annotations

import doctest
import subprocess
import sys

import pytest

import partita


def test_all_is_sorted_and_complete() -> None:
    assert partita.__all__ == sorted(partita.__all__, key=lambda n: (not n[:1].isupper(), n))
    public = {n for n in dir(partita) if not n.startswith("_")}
    submodules = {"actors", "runtime", "sql", "testing", "annotations"}
    assert public - submodules == set(partita.__all__)


def test_docstring_examples_of_every_public_name() -> None:
    # the names report ``partita`` as their module, so doctest finds them here (once
    # used: ``import partita`` imports them lazily)
    for name in partita.__all__:
        getattr(partita, name)
    result = doctest.testmod(partita, raise_on_error=False, verbose=False)
    assert result.failed == 0
    assert result.attempted > 10


def test_import_partita_imports_neither_trio_nor_sqlglot_nor_rich() -> None:
    # start-up time: the names are imported when first used (``partita.X``)
    code = (
        "import sys, partita; "
        "print(sorted(m for m in ('trio', 'sqlglot', 'rich', 'click') if m in sys.modules)); "
        "partita.Batch; "
        "print('trio' in sys.modules, 'sqlglot' in sys.modules, partita.Batch.__module__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["[]", "True False partita"]


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        partita.nosuch  # noqa: B018
    assert partita.sql.compile_query is partita.compile_query
