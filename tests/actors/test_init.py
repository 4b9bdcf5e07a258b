"""The package front: a sorted ``__all__`` of names that exist."""

from __future__ import annotations

from partita import actors


def test_all_is_sorted_and_complete() -> None:
    assert actors.__all__ == sorted(actors.__all__)
    for name in actors.__all__:
        assert getattr(actors, name) is not None
    public = {n for n in vars(actors) if not n.startswith("_")}
    assert set(actors.__all__) == public
