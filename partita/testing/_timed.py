"""Sources for tests: records at given processing times, and records fed by the test."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import trio

from partita.actors._sources import Parsed, PumpedSource
from partita.runtime import Record

__all__ = ["ChannelSource", "Timed", "TimedSource"]


def _at(_inst: object, _attr: object, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValueError(f"at must be a finite number of seconds >= 0, got {value!r}")


@attrs.frozen
class Timed:
    """A record and the processing time it arrives at: ``at`` seconds after the
    source started (its event time, if any, is a field of the record).

    Example:
        >>> Timed(1.5, {"k": "a", "ts": 1_000})
        Timed(at=1.5, record={'k': 'a', 'ts': 1000})
    """

    at: float = attrs.field(validator=_at)
    record: Record


def _events(events: Iterable[Timed]) -> tuple[Timed, ...]:
    return tuple(events)


@attrs.define(eq=False)
class TimedSource(PumpedSource[Record]):
    """Emits each record at its :class:`Timed` ``at``: ``trio.sleep_until`` on the
    run's clock, so under a ``MockClock`` it takes no real time, and the silence
    between records is silence the graph sees (with ``idle_timeout``, idle ticks
    that advance a SQL query's watermark and close its windows).

    Records due at the same moment go out together, as one batch.  A restarted
    source goes on where it stopped.

    Example:
        >>> src = TimedSource("events", [Timed(0, {"ts": 0}), Timed(5, {"ts": 100})])

    Args:
        name: unique within its graph.
        events: the records with their arrival times, in arrival order (``at``
            non-decreasing).
        idle_timeout: seconds of silence before an idle tick (``None``: never).

    Raises:
        ValueError: ``at`` goes backwards.
    """

    events: Sequence[Timed] = attrs.field(converter=_events)
    channel_capacity: int = attrs.field(default=1024, kw_only=True)
    _next: int = attrs.field(init=False, default=0)
    _start: float | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        for before, after in zip(self.events, self.events[1:], strict=False):
            if after.at < before.at:
                raise ValueError(
                    f"events must arrive in order of 'at', got {after.at} after {before.at}"
                )

    async def pump(self, send: trio.MemorySendChannel[Record]) -> None:
        if self._start is None:
            self._start = trio.current_time()
        events = self.events
        while self._next < len(events):
            event = events[self._next]
            await trio.sleep_until(self._start + event.at)
            self._next += 1
            await self.put(send, event.record)

    def parse(self, items: list[Record], end: bool) -> Parsed:
        return items, [], None, None


@attrs.define(eq=False)
class ChannelSource(PumpedSource[list[Record]]):
    """Reads lists of records from a trio channel: each list the test sends arrives
    as one batch (what :class:`Harness` feeds its graph through)."""

    receive: trio.MemoryReceiveChannel[list[Record]]
    channel_capacity: int = attrs.field(default=1, kw_only=True)
    #: how many lists the source has taken into batches so far
    taken: int = attrs.field(init=False, default=0)
    _took: trio.Event = attrs.field(init=False, factory=trio.Event)

    async def wait_taken(self, taken: int) -> None:
        """Wait until the source has taken more than ``taken`` lists."""
        while self.taken <= taken:
            await self._took.wait()

    async def pump(self, send: trio.MemorySendChannel[list[Record]]) -> None:
        async for chunk in self.receive:
            await self.put(send, chunk)

    def drain_limit(self) -> int:
        return 1  # one list, one batch

    def parse(self, items: list[list[Record]], end: bool) -> Parsed:
        self.taken += len(items)
        self._took.set()
        self._took = trio.Event()
        records: list[Any] = [r for chunk in items for r in chunk]
        return records, [], None, None
