"""Stateful test of a Flow window operator against the naive reference.

A :class:`RuleBasedStateMachine` drives one Flow window actor (on one lane, with its
own event-time clock) straight through its handlers: batches of records near a moving
event-time front (some behind it: late or not) and crash-and-restore, where a fresh
actor takes back the last one's checkpoint state.  Invariants:

* no window is emitted twice;
* no window is emitted before the watermark passes its end (``EMIT FINAL``);
* no window the watermark has passed is still open (the actor's self-check);
* everything emitted is a row of the naive reference (``tests/sql/_reference.py``)
  over the records so far; at the end (``on_end``) the rows and the late count equal it.

``forgetful`` machines run the actor with a clock that forgets the allowed lateness
(it judges records against the largest event time itself); the machine must catch it
(``test_machine_catches_a_clock_without_lateness``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from partita.actors import Flow, IterableSource
from partita.actors._event_clock import EventClock, event_time
from partita.actors._window_actor import WindowActor
from partita.runtime import Batch
from tests.sql._reference import (
    Agg,
    Hop,
    Record,
    ReferenceResult,
    Session,
    Tumble,
    Window,
    WindowQuery,
    normalize,
    normalize_row,
    run_reference,
)

LATENESS = 500
_KEYS = (("key", lambda r: r["k"]),)
_AGGS = (Agg("n", "count_star"), Agg("sx", "sum", lambda r: r["x"]))

_record = st.fixed_dictionaries(
    {
        "dt": st.sampled_from([-2000, -1000, -750, -500, -250, 0, 0, 250, 250, 500, 1000]),
        "k": st.sampled_from(["a", "b", None]),
        "x": st.none() | st.integers(-5, 5),
    }
)


def key_of(r: Record) -> Any:
    return r["k"]


def window_actor(window: Window) -> WindowActor:
    """The window actor a Flow builds for ``window`` (one lane: it keeps the clock)."""
    stream = Flow().source(IterableSource("in", [])).key_by(key_of).map(dict)
    if isinstance(window, Tumble):
        windowed = stream.tumbling(window.size_ms, ts="ts", allowed_lateness=LATENESS)
    elif isinstance(window, Hop):
        windowed = stream.hopping(
            window.size_ms, slide=window.slide_ms, ts="ts", allowed_lateness=LATENESS
        )
    else:
        windowed = stream.session(window.gap_ms, ts="ts", allowed_lateness=LATENESS)
    flow = windowed.aggregate(n="count", sx=("sum", "x"), name="w").flow
    [actor] = [a for a in flow.graph if isinstance(a, WindowActor)]
    assert actor.clock is not None
    return actor


class FlowWindowMachine(RuleBasedStateMachine):
    """One Flow window actor versus the naive reference."""

    WINDOW: ClassVar[Window] = Tumble(1000)
    FORGETFUL: ClassVar[bool] = False  # the clock forgets the allowed lateness

    def __init__(self) -> None:
        super().__init__()
        self.actor = self._new_actor()
        self.records: list[Record] = []
        self.front = 5000
        self.emitted: list[Record] = []
        self.late_before = 0  # rows_late of the actors a crash replaced
        self._cached: tuple[int, ReferenceResult] | None = None

    def _new_actor(self) -> WindowActor:
        actor = window_actor(self.WINDOW)
        if self.FORGETFUL:
            actor.clock = EventClock(event_time("ts"), 0)
        return actor

    def _reference(self) -> ReferenceResult:
        if self._cached is None or self._cached[0] != len(self.records):
            query = WindowQuery(_KEYS, _AGGS, self.WINDOW)
            result = run_reference(query, self.records, allowed_lateness=LATENESS)
            self._cached = (len(self.records), result)
        return self._cached[1]

    def _watermark(self) -> int | None:
        max_ts = max((r["ts"] for r in self.records), default=None)
        return None if max_ts is None else max_ts - LATENESS

    def _take(self, *, finished: bool = False) -> None:
        outbox = self.actor._cell.outbox
        for _, message in outbox:
            if isinstance(message, Batch):
                for row in message.records:
                    wm = self._watermark()
                    assert finished or (wm is not None and row["window_end"] <= wm), (
                        f"window emitted before the watermark ({wm}) passed its end: {row}"
                    )
                    self.emitted.append(row)
        outbox.clear()

    # ---- rules ----------------------------------------------------------------------

    @rule(batch=st.lists(_record, min_size=1, max_size=6))
    def push(self, batch: list[dict[str, Any]]) -> None:
        records: list[Record] = []
        for item in batch:
            ts = max(0, self.front + item["dt"])
            self.front = max(self.front, ts)
            records.append({"ts": ts, "k": item["k"], "x": item["x"]})
        start = len(self.records)
        self.records.extend(records)
        self.actor.on_batch(Batch.from_records(records, start=start))
        self._take()

    @rule()
    def crash_and_restore(self) -> None:
        saved = self.actor.snapshot_state()
        self.late_before += self.actor.rows_late
        self.actor = self._new_actor()
        self.actor.restore_state(saved)

    def teardown(self) -> None:
        self.actor.on_end()
        self._take(finished=True)
        reference = self._reference()
        assert normalize(self.emitted) == normalize(reference.final_rows)
        assert self.late_before + self.actor.rows_late == reference.late

    # ---- invariants -----------------------------------------------------------------

    @invariant()
    def no_window_emitted_twice(self) -> None:
        idents = [
            normalize_row({n: r[n] for n in ("key", "window_start", "window_end")})
            for r in self.emitted
        ]
        assert len(idents) == len(set(idents)), "a window was emitted twice"

    @invariant()
    def emitted_rows_are_reference_rows(self) -> None:
        extra = normalize(self.emitted) - normalize(self._reference().final_rows)
        assert not extra, f"emitted rows the reference lacks: {extra}"

    @invariant()
    def no_open_window_behind_the_watermark(self) -> None:
        wm = self._watermark()
        if wm is not None:
            ends = self.actor.open_window_ends()
            assert all(end > wm for end in ends), (ends, wm)


class HopMachine(FlowWindowMachine):
    WINDOW = Hop(1000, 500)


class SessionMachine(FlowWindowMachine):
    WINDOW = Session(750)


class ForgetfulTumbleMachine(FlowWindowMachine):
    FORGETFUL = True


MACHINE_SETTINGS = settings(stateful_step_count=20, max_examples=40, deadline=None)

TestFlowTumbleWindow = FlowWindowMachine.TestCase
TestFlowTumbleWindow.settings = MACHINE_SETTINGS
TestFlowHopWindow = HopMachine.TestCase
TestFlowHopWindow.settings = MACHINE_SETTINGS
TestFlowSessionWindow = SessionMachine.TestCase
TestFlowSessionWindow.settings = MACHINE_SETTINGS


def test_machine_catches_a_clock_without_lateness() -> None:
    """A clock that forgets the allowed lateness must fail the machine."""
    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            ForgetfulTumbleMachine,
            settings=settings(
                MACHINE_SETTINGS,
                max_examples=200,
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
            ),
        )
