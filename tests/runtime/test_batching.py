"""The adaptive batch sizer stays within its bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partita.runtime import BatchSizer


def test_validation_messages() -> None:
    with pytest.raises(ValueError, match=r"^minimum batch size must be >= 1, got 0$"):
        BatchSizer(minimum=0)
    with pytest.raises(ValueError, match=r"^maximum batch size 5 is below minimum 10$"):
        BatchSizer(minimum=10, maximum=5)
    with pytest.raises(ValueError, match=r"^need 0 <= low < high <= 1, got low=0.8 high=0.5$"):
        BatchSizer(low=0.8, high=0.5)
    with pytest.raises(ValueError, match=r"^factor must be > 1, got 1.0$"):
        BatchSizer(factor=1.0)


def test_grows_when_empty_shrinks_when_full_and_halves_on_pressure() -> None:
    sizer = BatchSizer(minimum=10, maximum=100, initial=40, factor=2.0)
    sizer.observe(0.0)
    assert sizer.size == 80
    sizer.observe(0.5)  # between low and high: unchanged
    assert sizer.size == 80
    sizer.observe(0.0)
    assert sizer.size == 100  # capped
    sizer.observe(1.0)
    assert sizer.size == 50
    sizer.shrink()
    assert sizer.size == 25
    sizer.shrink()
    sizer.shrink()
    assert sizer.size == 10  # floored


def test_initial_is_clamped_and_fixed_never_moves() -> None:
    assert BatchSizer(minimum=10, maximum=20, initial=5).size == 10
    assert BatchSizer(minimum=10, maximum=20, initial=50).size == 20
    fixed = BatchSizer.fixed(7)
    for occupancy in (0.0, 1.0, 0.0):
        fixed.observe(occupancy)
    fixed.shrink()
    assert fixed.size == 7


@given(
    minimum=st.integers(1, 50),
    span=st.integers(0, 500),
    factor=st.floats(1.01, 4.0),
    steps=st.lists(st.one_of(st.floats(0.0, 1.0), st.none()), max_size=60),
)
def test_size_always_within_bounds(
    minimum: int, span: int, factor: float, steps: list[float | None]
) -> None:
    sizer = BatchSizer(minimum=minimum, maximum=minimum + span, factor=factor)
    for step in steps:
        if step is None:
            sizer.shrink()
        else:
            sizer.observe(step)
        assert minimum <= sizer.size <= minimum + span
