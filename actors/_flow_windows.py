"""Windowed operators on a Flow: :meth:`FlowStream.window` and what it returns.

``stream.key_by(key).window(TumblingWindow("10s"), ts="at")`` (or the shorthands
``tumbling`` / ``hopping`` / ``session``) returns a :class:`WindowedStream`; one of
its folds (:meth:`~WindowedStream.fold`, :meth:`~WindowedStream.reduce`,
:meth:`~WindowedStream.collect`, :meth:`~WindowedStream.count`,
:meth:`~WindowedStream.aggregate` and its shorthands) ends the window and returns
the stream of its rows: ``{"key", "window_start", "window_end", ...}``.  The
semantics are SQL's, from the same window state (:mod:`actors._window_actor`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Literal, Protocol, TypeVar

import attrs

from partita.runtime import Duration, OnError, Record, parse_duration_ms
from partita.sql import LatePolicy, WindowRules, check_late

from ._event_clock import EventTime, event_time
from ._operators import check_sync, qualname
from ._window_aggs import (
    AggregateSpec,
    WindowFold,
    aggregate_fold,
    collect_fold,
    count_fold,
    reduce_fold,
    user_fold,
)
from ._windowers import HoppingWindow, SessionWindow, TumblingWindow, Windower

__all__ = ["Emit", "WindowOptions", "WindowedStream"]

Emit = Literal["final", "changes"]
"""``"final"``: a row per key and window when it closes; ``"changes"``: a row per
record on every window it updates (the last one per window equals the final row)."""

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


def _windower(value: Any) -> Windower:
    if not isinstance(value, TumblingWindow | HoppingWindow | SessionWindow):
        raise TypeError(
            f"window takes a TumblingWindow, HoppingWindow or SessionWindow, got {value!r}"
        )
    return value


def _emit(value: Any) -> Emit:
    if value not in ("final", "changes"):
        raise ValueError(f"emit must be 'final' or 'changes', got {value!r}")
    result: Emit = value
    return result


def _ts(value: Any) -> str | Callable[[Record], Any]:
    if isinstance(value, str):
        return value
    if callable(value):
        check_sync("window", value, "a sync event-time function")
        fn: Callable[[Record], Any] = value
        return fn
    raise TypeError(f"ts must be a field name or a function of the record, got {value!r}")


@attrs.frozen
class WindowOptions:
    """How a Flow window treats time (validated when the flow is built).

    Attributes:
        windower: which windows.
        ts: the event-time field, or a function of the record (epoch ms or ISO-8601).
        lateness_ms: the allowed lateness: the watermark is the largest event time
            seen so far less this.
        late: a record for closed windows only is ``"drop"`` (counted),
            ``"dead-letter"`` (counted, sent to the flow's dead-letter output) or
            ``"update"`` (updates its closed window while retained, re-emitted).
        retention_ms: with ``"update"``, how long past its end a closed window is
            kept (default: the window size or session gap, as in SQL).
        emit: ``"final"`` or ``"changes"``.
    """

    windower: Windower = attrs.field(converter=_windower)
    ts: str | Callable[[Record], Any] = attrs.field(converter=_ts)
    lateness_ms: int = attrs.field(default=0)
    late: LatePolicy = attrs.field(default="drop", converter=check_late)
    retention_ms: int | None = None
    emit: Emit = attrs.field(default="final", converter=_emit)

    @classmethod
    def of(
        cls,
        windower: Windower,
        ts: str | Callable[[Record], Any],
        allowed_lateness: Duration,
        late: LatePolicy,
        retention: Duration | None,
        emit: Emit,
    ) -> WindowOptions:
        """The options from :meth:`FlowStream.window`'s arguments (durations parsed)."""
        lateness = parse_duration_ms(allowed_lateness, "allowed_lateness")
        kept = None if retention is None else parse_duration_ms(retention, "retention")
        return cls(windower, ts, lateness, late, kept, emit)

    def time_of(self) -> EventTime:
        """A record's event time in epoch ms."""
        return event_time(self.ts)

    def rules(self) -> WindowRules:
        """The shared window state's rules."""
        window = self.windower.spec(self.ts if isinstance(self.ts, str) else qualname(self.ts))
        kept = self.retention_ms
        return WindowRules(
            window,
            emit=self.emit,
            late=self.late,
            retention_ms=window.size_ms if kept is None else kept,
        )

    def describe(self) -> str:
        """These options in the flow's fingerprint."""
        ts = repr(self.ts) if isinstance(self.ts, str) else qualname(self.ts)
        return (
            f" {self.windower} ts={ts} lateness={self.lateness_ms}ms late={self.late}"
            f" retention={self.rules().retention_ms}ms emit={self.emit}"
        )


class _Windowing(Protocol[S_co]):
    """What a :class:`WindowedStream` ends in: the stream that adds the window."""

    def _windowed(
        self, options: WindowOptions, fold: WindowFold, name: str | None, on_error: OnError | None
    ) -> S_co: ...


@attrs.frozen
class WindowedStream(Generic[S]):
    """A stream with its windows chosen: end it with what to compute per key and window.

    Made by :meth:`FlowStream.window` (or ``tumbling`` / ``hopping`` / ``session``).
    Each method returns the stream of the window's rows, ``{"key": <key>,
    "window_start": <ms>, "window_end": <ms>, ...}``, one per key and window when the
    window closes (``emit="final"``) or one per update (``emit="changes"``).  Every
    method takes ``name=`` (the operator's name) and ``on_error=`` (what a record
    the user's function raises on does: ``"fail"``, ``"skip"``, ``"dead-letter"``;
    default: the flow's).

    Example:
        >>> import trio
        >>> from partita import CollectSink, Flow, IterableSource
        >>> clicks = [{"user": "ann", "at": 1_000}, {"user": "bob", "at": 1_500},
        ...           {"user": "ann", "at": 2_500}, {"user": "ann", "at": 12_000}]
        >>> out = CollectSink("out")
        >>> flow = Flow()
        >>> _ = (
        ...     flow.source(IterableSource("clicks", clicks))
        ...     .key_by(lambda r: r["user"])
        ...     .tumbling("10s", ts="at")
        ...     .count()
        ...     .sink(out)
        ... )
        >>> _ = trio.run(flow.run)
        >>> sorted((r["key"], r["window_start"], r["count"]) for r in out.rows)
        [('ann', 0, 2), ('ann', 10000, 1), ('bob', 0, 1)]
    """

    _stream: _Windowing[S]
    _options: WindowOptions

    def _end(self, fold: WindowFold, name: str | None, on_error: OnError | None) -> S:
        return self._stream._windowed(self._options, fold, name, on_error)

    def fold(
        self,
        init: Callable[[], Any],
        step: Callable[[Any, Record], Any],
        merge: Callable[[Any, Any], Any] | None = None,
        *,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> S:
        """Per key and window, ``acc = step(acc, record)`` from ``acc = init()``; the
        row's ``value`` is ``acc``.

        ``merge(a, b)`` joins two accumulators: session windows need it (two
        sessions that a record bridges become one).  ``step`` should return the new
        accumulator; checkpointed accumulators hold only plain data.

        Raises:
            TypeError: a function is an ``async def``.
            ValueError: session windows and no ``merge``.
        """
        for fn in (init, step, *(() if merge is None else (merge,))):
            check_sync("fold", fn, "a sync function (await in map_async before the window)")
        if merge is None and isinstance(self._options.windower, SessionWindow):
            raise ValueError(
                "fold on session windows needs merge=: sessions that a record bridges "
                "become one, and their accumulators must be joined"
            )
        return self._end(user_fold(init, step, merge), name, on_error)

    def reduce(
        self,
        fn: Callable[[Any, Any], Any],
        *,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> S:
        """Per key and window, the first record, then ``acc = fn(acc, record)``; the
        row's ``value`` is ``acc`` (sessions merge with ``fn(a, b)`` too).

        Raises:
            TypeError: ``fn`` is an ``async def``.
        """
        check_sync("reduce", fn, "a sync function (await in map_async before the window)")
        return self._end(reduce_fold(fn), name, on_error)

    def collect(self, *, name: str | None = None, on_error: OnError | None = None) -> S:
        """Per key and window, the records as a list (the row's ``value``), in arrival
        order.  The window keeps every record: mind its size."""
        return self._end(collect_fold(), name, on_error)

    def count(self, *, name: str | None = None, on_error: OnError | None = None) -> S:
        """Per key and window, how many records (the row's ``count``)."""
        return self._end(count_fold(), name, on_error)

    def aggregate(
        self,
        *,
        name: str | None = None,
        on_error: OnError | None = None,
        **columns: AggregateSpec,
    ) -> S:
        """Per key and window, named SQL-like aggregates, one row field each.

        ``n="count"`` counts the records; ``total=("sum", "amount")`` sums a field
        (or a function of the record); the functions are ``count``, ``sum``,
        ``min``, ``max`` and ``mean``, with SQL's NULL rules (``None`` inputs are
        ignored; a window of only ``None`` gives ``None``, ``count`` gives 0).

        Example:
            >>> import trio
            >>> from partita import CollectSink, Flow, IterableSource
            >>> sales = [{"shop": "a", "at": 5, "eur": 3}, {"shop": "a", "at": 7, "eur": 5}]
            >>> out = CollectSink("out")
            >>> flow = Flow()
            >>> _ = (
            ...     flow.source(IterableSource("sales", sales))
            ...     .key_by(lambda r: r["shop"])
            ...     .tumbling(10, ts="at")
            ...     .aggregate(n="count", total=("sum", "eur"), avg=("mean", "eur"))
            ...     .sink(out)
            ... )
            >>> _ = trio.run(flow.run)
            >>> out.rows
            [{'key': 'a', 'window_start': 0, 'window_end': 10, 'n': 2, 'total': 8, 'avg': 4.0}]

        Raises:
            ValueError: no columns, or an unknown function.
            TypeError: a column is neither ``"count"`` nor ``(function, input)``, or
                an input function is an ``async def``.
        """
        for spec in columns.values():
            if isinstance(spec, tuple) and len(spec) == 2 and callable(spec[1]):
                check_sync("aggregate", spec[1], "a sync function")
        return self._end(aggregate_fold(columns), name, on_error)

    def sum(
        self,
        field: str | Callable[[Record], Any],
        *,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> S:
        """Per key and window, the sum of ``field`` (the row's ``sum``)."""
        return self.aggregate(name=name, on_error=on_error, sum=("sum", field))

    def min(
        self,
        field: str | Callable[[Record], Any],
        *,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> S:
        """Per key and window, the least ``field`` (the row's ``min``)."""
        return self.aggregate(name=name, on_error=on_error, min=("min", field))

    def max(
        self,
        field: str | Callable[[Record], Any],
        *,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> S:
        """Per key and window, the greatest ``field`` (the row's ``max``)."""
        return self.aggregate(name=name, on_error=on_error, max=("max", field))

    def mean(
        self,
        field: str | Callable[[Record], Any],
        *,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> S:
        """Per key and window, the mean of ``field`` (the row's ``mean``)."""
        return self.aggregate(name=name, on_error=on_error, mean=("mean", field))
