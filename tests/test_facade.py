"""``import partita``: the facade's names, and the examples in their docstrings."""

from __future__ import annotations

import doctest

import partita


def test_all_is_sorted_and_complete() -> None:
    assert partita.__all__ == sorted(partita.__all__, key=lambda n: (not n[:1].isupper(), n))
    public = {n for n in vars(partita) if not n.startswith("_")}
    submodules = {"actors", "runtime", "sql", "annotations"}
    assert public - submodules == set(partita.__all__)


def test_docstring_examples_of_every_public_name() -> None:
    # the names report ``partita`` as their module, so doctest finds them here
    result = doctest.testmod(partita, raise_on_error=False, verbose=False)
    assert result.failed == 0
    assert result.attempted > 10
