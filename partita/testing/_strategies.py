"""Hypothesis strategies: records, streams with controlled disorder, and interleavings.

This module imports Hypothesis; ``partita.testing`` imports it only when one of its
names is first used.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from hypothesis import strategies as st

from partita.runtime import Record

from ._harness import Advance, Cancel, Crash, Pause, Resume, Send, Step
from ._timed import Timed

__all__ = ["TestStream", "interleavings", "records", "streams"]

_SCALARS: dict[type, st.SearchStrategy[Any]] = {
    int: st.integers(-(2**31), 2**31),
    float: st.floats(-1e9, 1e9, allow_nan=False),
    str: st.text(max_size=8),
    bool: st.booleans(),
}

BAD_TIME = "not a time"
"""The event time of a bad record :func:`streams` makes (a string no parser takes)."""


def records(schema: Mapping[str, Any] | None = None) -> st.SearchStrategy[Record]:
    """Records with the fields of ``schema``: each a type (``int``, ``float``, ``str``,
    ``bool``), a Hypothesis strategy, or a list of the values to pick from.

    Default: ``{"k": ["a", "b", "c"], "v": int}`` (a few keys, an integer value).

    Example:
        >>> from hypothesis import given, strategies as st
        >>> @given(records({"k": ["x", "y"], "qty": st.integers(0, 10)}))
        ... def test(record):
        ...     assert record["k"] in ("x", "y") and 0 <= record["qty"] <= 10
        >>> test()

    Raises:
        TypeError: a field's kind is none of those.
    """
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name, kind in (schema if schema is not None else {"k": ["a", "b", "c"], "v": int}).items():
        if isinstance(kind, st.SearchStrategy):
            fields[name] = kind
        elif isinstance(kind, type) and kind in _SCALARS:
            fields[name] = _SCALARS[kind]
        elif isinstance(kind, list | tuple) and kind:
            fields[name] = st.sampled_from(list(kind))
        else:
            raise TypeError(
                f"field {name!r}: expected int, float, str, bool, a strategy or a list of "
                f"values, got {kind!r}"
            )
    return st.fixed_dictionaries(fields)


@attrs.frozen
class TestStream:
    """A stream :func:`streams` drew: records with event times, at processing times.

    Attributes:
        events: the records in arrival order, each with its arrival time.
        event_time: the event-time field (epoch milliseconds).
        disorder_ms: every record but the late and the bad ones has an event time at
            most this far behind the largest event time before it.
        lateness_ms: the allowed lateness the stream was drawn against.
        late: indexes (into :attr:`events`) of the records drawn late: more than
            ``lateness_ms`` behind the largest event time before them, so behind
            the watermark (whether a query drops one depends on its windows: a
            record is late there only when all its windows have closed).
        duplicates: indexes of records that repeat the record just before them.
        bad: indexes of bad records: their event time is :data:`BAD_TIME`.
    """

    __test__ = False  # not a pytest test class, whatever its name

    events: tuple[Timed, ...]
    event_time: str
    disorder_ms: int
    lateness_ms: int
    late: frozenset[int] = frozenset()
    duplicates: frozenset[int] = frozenset()
    bad: frozenset[int] = frozenset()

    @property
    def records(self) -> list[Record]:
        """The records, in arrival order (for :func:`run_sync` without times)."""
        return [e.record for e in self.events]

    def good(self) -> list[Record]:
        """The records that are neither bad nor late (duplicates included)."""
        skip = self.late | self.bad
        return [e.record for i, e in enumerate(self.events) if i not in skip]

    def check_invariants(self) -> None:
        """Assert what the stream promises: arrival times never go back; a good
        record is at most ``disorder_ms`` behind the largest event time before it; a
        late one more than ``lateness_ms`` behind; a duplicate equals the record
        before it; a bad one has :data:`BAD_TIME`."""
        high: int | None = None
        last_at = 0.0
        for i, event in enumerate(self.events):
            assert event.at >= last_at, f"event {i} arrives before event {i - 1}"
            last_at = event.at
            ts = event.record.get(self.event_time)
            if i in self.bad:
                assert ts == BAD_TIME, f"bad event {i} has event time {ts!r}"
                continue
            assert isinstance(ts, int), f"event {i} has event time {ts!r}"
            if i in self.duplicates:
                assert event.record == self.events[i - 1].record, f"event {i} is no duplicate"
            if high is not None:
                if i in self.late:
                    assert ts < high - self.lateness_ms, f"late event {i} is not late"
                else:
                    assert ts >= high - self.disorder_ms, f"event {i} is out of order by more"
            else:
                assert i not in self.late, f"event {i} is late with nothing before it"
            if i not in self.late:
                high = ts if high is None else max(high, ts)


def _check_ms(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")


def streams(
    record_strategy: st.SearchStrategy[Record] | None = None,
    *,
    event_time: str = "ts",
    min_size: int = 0,
    max_size: int = 40,
    start_ms: int = 0,
    max_step_ms: int = 500,
    disorder_ms: int = 0,
    lateness_ms: int | None = None,
    late: float = 0.0,
    duplicates: float = 0.0,
    bad: float = 0.0,
    idle_gap: float = 0.0,
) -> st.SearchStrategy[TestStream]:
    """Streams of records with event times, arriving at processing times.

    Event time runs forward by steps of ``0..max_step_ms`` from ``start_ms``; each
    record is put up to ``disorder_ms`` behind that (never further behind the
    largest event time before it).  With probability ``late`` a record is
    instead *late*: more than ``lateness_ms`` (default ``disorder_ms``) behind;
    ``duplicates`` repeats the record before; ``bad`` makes a record whose event
    time is :data:`BAD_TIME`.  Records arrive together, except that with
    ``idle_gap`` one arrives up to that many seconds of silence after the one
    before (with probability 1/4): silence a harness with ``idle_timeout``
    turns into idle ticks.  :meth:`TestStream.check_invariants` asserts all that.

    Example:
        >>> from hypothesis import given, settings
        >>> @settings(max_examples=20)
        ... @given(streams(disorder_ms=200, late=0.1, idle_gap=2.0))
        ... def test(stream):
        ...     stream.check_invariants()
        >>> test()

    Raises:
        ValueError: a negative size, step or time, a probability outside [0, 1].
    """
    for name, value in (
        ("min_size", min_size),
        ("max_step_ms", max_step_ms),
        ("disorder_ms", disorder_ms),
        ("start_ms", start_ms),
    ):
        _check_ms(name, value)
    if max_size < min_size:
        raise ValueError(f"max_size ({max_size}) must be >= min_size ({min_size})")
    lateness = disorder_ms if lateness_ms is None else lateness_ms
    _check_ms("lateness_ms", lateness)
    for name, p in (("late", late), ("duplicates", duplicates), ("bad", bad)):
        _check_probability(name, p)
    if idle_gap < 0:
        raise ValueError(f"idle_gap must be >= 0 seconds, got {idle_gap}")
    base = record_strategy if record_strategy is not None else records()

    def chance(draw: st.DrawFn, p: float) -> bool:
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        return draw(st.integers(0, 999)) < int(p * 1000)

    @st.composite
    def build(draw: st.DrawFn) -> TestStream:
        n = draw(st.integers(min_size, max_size))
        events: list[Timed] = []
        late_at: set[int] = set()
        dup_at: set[int] = set()
        bad_at: set[int] = set()
        clock = start_ms  # event time running forward
        high: int | None = None  # the largest good event time so far
        at = 0.0
        while len(events) < n:
            i = len(events)
            if idle_gap and draw(st.integers(0, 3)) == 0:
                at += draw(st.integers(0, int(idle_gap * 1000))) / 1000
            if events and (i - 1) not in bad_at and chance(draw, duplicates):
                events.append(Timed(at, dict(events[-1].record)))
                dup_at.add(i)
                if i - 1 in late_at:
                    late_at.add(i)
                continue
            record = dict(draw(base))
            if chance(draw, bad):
                record[event_time] = BAD_TIME
                bad_at.add(i)
            elif high is not None and chance(draw, late):
                record[event_time] = high - lateness - 1 - draw(st.integers(0, max_step_ms))
                late_at.add(i)
            else:
                clock += draw(st.integers(0, max_step_ms))
                ts = clock - draw(st.integers(0, disorder_ms))
                if high is not None:
                    ts = max(ts, high - disorder_ms)
                record[event_time] = ts
                high = ts if high is None else max(high, ts)
            events.append(Timed(at, record))
        return TestStream(
            tuple(events),
            event_time,
            disorder_ms,
            lateness,
            frozenset(late_at),
            frozenset(dup_at),
            frozenset(bad_at),
        )

    return build()


def interleavings(
    records: Sequence[Record],
    *,
    pause: bool = True,
    crash: bool = False,
    cancel: bool = False,
    max_advance: float = 5.0,
    max_steps: int = 12,
) -> st.SearchStrategy[list[Step]]:
    """What may happen to a running pipeline while ``records`` are fed to it: lists
    of :data:`Step` for :meth:`Harness.perform`.

    Every record is sent exactly once and in order (in :class:`Send` batches of
    any size); between them come :class:`Advance` (up to ``max_advance``
    seconds of silence), with ``pause`` :class:`Pause` and :class:`Resume` (of
    the whole graph; a pause is always resumed before the end, so the input can
    end; at most ``max_steps + 1`` sends, fewer than a harness's input holds), with
    ``crash`` :class:`Crash` of the harness's sink (run the harness with a
    restart policy), and with ``cancel`` maybe a :class:`Cancel` at the end (the
    output is then a prefix of what the whole input makes, for an
    order-preserving pipeline).

    Example:
        >>> from hypothesis import given, settings
        >>> data = [{"x": i} for i in range(10)]
        >>> @settings(max_examples=20)
        ... @given(interleavings(data, crash=True))
        ... def test(steps):
        ...     sent = [r for s in steps if isinstance(s, Send) for r in s.records]
        ...     assert sent == data
        >>> test()
    """
    data = list(records)
    controls: list[st.SearchStrategy[Step]] = [
        st.builds(Advance, st.integers(0, int(max_advance * 1000)).map(lambda ms: ms / 1000))
    ]
    if pause:
        controls += [st.just(Pause()), st.just(Resume())]
    if crash:
        controls.append(st.just(Crash()))
    control = st.one_of(controls)

    @st.composite
    def build(draw: st.DrawFn) -> list[Step]:
        cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=max_steps)))
        bounds = [0, *cuts, len(data)]
        steps: list[Step] = []
        paused = False
        for lo, hi in itertools.pairwise(bounds):
            for step in draw(st.lists(control, max_size=2)):
                if isinstance(step, Pause):
                    paused = True
                elif isinstance(step, Resume):
                    paused = False
                steps.append(step)
            if hi > lo:
                steps.append(Send(tuple(data[lo:hi])))  # while paused too: it waits for the resume
        if paused:
            steps.append(Resume())
        if cancel and draw(st.booleans()):
            steps.append(Cancel(graceful=draw(st.booleans())))
        return steps

    return build()
