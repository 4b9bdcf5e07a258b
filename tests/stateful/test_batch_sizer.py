"""The batch sizer against its rules, over any sequence of deliveries and pressure.

Rules deliver a batch (its records, the time it took, how many batches are queued
behind it) or signal memory pressure; the model keeps the window the sizer is
filling, so after each window it knows the rate and the estimated latency the sizer
saw, and the invariants check what the sizer did with them: it always stays in
bounds, it never grows past the latency bound, and it shrinks when over it.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from partita.runtime import BatchSizer

from ._trio_machine import machine_settings

MINIMUM, MAXIMUM, TARGET, WINDOW = 64, 4096, 0.05, 2


class SizerMachine(RuleBasedStateMachine):
    sizer_type: ClassVar[type[BatchSizer]] = BatchSizer

    def __init__(self) -> None:
        super().__init__()
        self.sizer = self.sizer_type(
            minimum=MINIMUM, maximum=MAXIMUM, initial=256, target_latency=TARGET, window=WINDOW
        )
        self.now = 0.0
        self.started = False
        self.window: list[int] = []
        self.window_start = 0.0
        self.size_before = self.sizer.size
        self.verdict: str | None = None  # "over" / "within": the last window's latency

    @rule(
        seconds=st.floats(1e-5, 0.5),
        queued=st.integers(0, 6),
        fraction=st.sampled_from([1.0, 1.0, 0.5, 0.1]),
    )
    def deliver(self, seconds: float, queued: int, fraction: float) -> None:
        records = max(1, int(self.sizer.size * fraction))  # a source may send fewer
        self.size_before = self.sizer.size
        self.now += seconds
        self.sizer.observe(records, self.now, queued)
        self.verdict = None
        if not self.started:
            self.started = True
            self.window_start = self.now
            return
        self.window.append(records)
        if len(self.window) == WINDOW:
            rate = sum(self.window) / (self.now - self.window_start)
            latency = self.size_before * (max(queued, 1) + 1) / rate
            self.verdict = "over" if latency > TARGET else "within"
            self.window = []
            self.window_start = self.now

    @rule()
    def pressure(self) -> None:
        self.size_before = self.sizer.size
        self.sizer.shrink()
        self.verdict = "pressure"

    @invariant()
    def in_bounds(self) -> None:
        assert MINIMUM <= self.sizer.size <= MAXIMUM

    @invariant()
    def latency_and_pressure_never_grow_it(self) -> None:
        if self.verdict in ("over", "pressure"):
            assert self.sizer.size <= self.size_before
            assert self.sizer.size < self.size_before or self.size_before == MINIMUM

    @invariant()
    def it_moves_only_at_a_window_or_under_pressure(self) -> None:
        if self.verdict is None:
            assert self.sizer.size == self.size_before


class GreedySizer(BatchSizer):
    """Broken on purpose: ignores the latency bound (throughput only)."""

    def __init__(self, **kwargs: float) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.target_latency = float("inf")


class GreedySizerMachine(SizerMachine):
    sizer_type = GreedySizer


TestSizerMachine = SizerMachine.TestCase
TestSizerMachine.settings = machine_settings(steps=60)


def test_the_machine_catches_a_sizer_that_ignores_latency() -> None:
    from hypothesis.stateful import run_state_machine_as_test

    settings = machine_settings(steps=60, phases=[Phase.generate], database=None)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(GreedySizerMachine, settings=settings)
