"""The exact per-record watermark of a Flow window, taken in stream order.

DESIGN.md's rule, as the SQL router applies it: the watermark is the largest event
time seen so far, in source order, less the allowed lateness; each record is judged
against the watermark as of just before it.  A :class:`EventClock` sits at the one
point where the stream is still in source order (the window's ``key_by`` before
its lanes split, or the window operator itself on a single lane) and stamps every
record with that watermark (:attr:`runtime.Batch.watermarks`).

Example:
    >>> clock = EventClock(event_time("ts"), lateness_ms=2)
    >>> clock.stamp([{"ts": 10}, {"ts": 4}, {"ts": 12}])
    [-inf, 8, 8]
    >>> clock.watermark()
    10
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from partita.runtime import Record
from partita.sql import to_epoch_ms

__all__ = ["BEFORE_ALL", "EventClock", "EventTime", "event_time"]

BEFORE_ALL: Any = -math.inf
"""The watermark before any event time: below every int, compared exactly."""

EventTime = Callable[[Record], int]
"""A record's event time in epoch milliseconds (raises on a record without one)."""


def event_time(ts: str | Callable[[Record], Any]) -> EventTime:
    """The event time of a record: field ``ts`` or ``ts(record)``, as epoch ms.

    The value is an int (epoch milliseconds), an integral float or ISO-8601 text
    (UTC when naive), as for SQL's event-time column.

    Example:
        >>> event_time("at")({"at": "1970-01-01T00:00:01"})
        1000
    """
    if isinstance(ts, str):
        field = ts

        def of_field(record: Record) -> int:
            t = record[field]
            return t if t.__class__ is int else to_epoch_ms(t)

        return of_field
    fn = ts

    def of_fn(record: Record) -> int:
        t = fn(record)
        return t if t.__class__ is int else to_epoch_ms(t)

    return of_fn


@attrs.define
class EventClock:
    """Stamps records with the exact watermark as of each (see the module docstring).

    A record whose event time cannot be read leaves the watermark where it was (the
    window operator then applies its error policy to it).  Its one piece of state,
    the largest event time so far, goes into its owner's checkpoints.
    """

    time_of: EventTime
    lateness_ms: int = 0
    max_ts: int | None = None

    def stamp(self, records: list[Record]) -> list[int]:
        """The watermark as of just before each record (``BEFORE_ALL`` before any)."""
        lateness = self.lateness_ms
        mx: Any = BEFORE_ALL if self.max_ts is None else self.max_ts
        time_of = self.time_of
        out: list[int] = []
        add = out.append
        for record in records:
            add(mx - lateness)
            try:
                t = time_of(record)
            except Exception:  # the window operator names it by its policy
                continue
            if t > mx:
                mx = t
        if mx != BEFORE_ALL:
            self.max_ts = mx
        return out

    def watermark(self) -> int | None:
        """The watermark after every record stamped so far (``None`` before any)."""
        return None if self.max_ts is None else self.max_ts - self.lateness_ms
