"""The Flow builder: graphs of Python operators under one supervisor."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from copy import deepcopy
from typing import Any, TypeAlias

import attrs
import trio

from partita.runtime import (
    Actor,
    DeadLetter,
    Duration,
    Graph,
    GraphStats,
    OnError,
    Record,
    Sink,
    Source,
    SupervisorOptions,
    check_on_error,
)
from partita.sql import LatePolicy

from ._async_ops import AsyncKind, AsyncOperatorActor, Ordering, check_async, check_ordering
from ._checkpoints import CheckpointTarget, supervised
from ._dead_letter import DeadLetterSink
from ._event_clock import EventClock
from ._flow_windows import Emit, WindowedStream, WindowOptions
from ._limit import LimitedSink, RowCount, check_count, check_timeout, wait_bounded
from ._merge import MergeActor
from ._operators import (
    FilterActor,
    FlatMapActor,
    KeyByActor,
    KeyFn,
    MapActor,
    OperatorActor,
    StatefulActor,
    check_sync,
    qualname,
    short_name,
)
from ._row_stream import RowStream, row_channel, streaming
from ._sinks import ChannelSink
from ._window_actor import WindowActor
from ._window_aggs import WindowFold
from ._windowers import HoppingWindow, SessionWindow, TumblingWindow, Windower

DeadLetterTarget: TypeAlias = Sink | str | os.PathLike[str] | None

__all__ = ["Flow", "FlowStream"]


@attrs.define(eq=False)
class Flow:
    """Builds a graph of Python operators, then runs it (same supervisor as SQL).

    Start a chain with :meth:`source`, add operators to the :class:`FlowStream`
    it returns, end it with :meth:`FlowStream.sink`.  Every operator handles
    a batch at a time (C-level ``map`` / ``filter`` over ``batch.records``).

    Example:
        >>> import trio
        >>> from partita import CollectSink, IterableSource
        >>> def total(state: dict, r: dict) -> list[dict]:
        ...     state["n"] = state.get("n", 0) + r["x"]
        ...     return [{"k": r["k"], "total": state["n"]}]
        >>> out = CollectSink("out")
        >>> flow = Flow()
        >>> _ = (
        ...     flow.source(IterableSource("numbers", [{"x": i} for i in range(6)]))
        ...     .map(lambda r: {**r, "k": r["x"] % 2})
        ...     .filter(lambda r: r["x"] > 0)
        ...     .key_by(lambda r: r["k"], partitions=2)
        ...     .stateful(total, init=dict)
        ...     .sink(out)
        ... )
        >>> stats = trio.run(flow.run)
        >>> sorted((r["k"], r["total"]) for r in out.rows)
        [(0, 2), (0, 6), (1, 1), (1, 4), (1, 9)]

    Args:
        capacity: the mailbox capacity (batches) of every actor added.
    """

    capacity: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    on_error: OnError = attrs.field(default="fail", kw_only=True, converter=check_on_error)
    dead_letter: DeadLetterTarget = attrs.field(default=None, kw_only=True)
    graph: Graph = attrs.field(init=False, factory=Graph)
    _count: int = attrs.field(init=False, default=0)
    # what fingerprint() says of each step, in the order they were added
    _steps: list[str] = attrs.field(init=False, factory=list)
    # how many outputs each actor has so far (a dead-letter output comes after them)
    _outputs: dict[str, int] = attrs.field(init=False, factory=dict)
    # the operators whose policy can dead-letter, wired to one sink when the flow runs
    _dead_senders: list[OperatorActor] = attrs.field(init=False, factory=list)
    _dead_sink: Sink | None = attrs.field(init=False, default=None)
    _wired: bool = attrs.field(init=False, default=False)
    # the stream open() yields reads what a chain without .sink() makes
    _stream_sink: ChannelSink | None = attrs.field(init=False, default=None)
    _stream_receive: trio.MemoryReceiveChannel[list[Record]] | None = attrs.field(
        init=False, default=None
    )

    def _name(self, kind: str, name: str | None) -> str:
        self._count += 1
        return name if name is not None else f"{kind}-{self._count}"

    def _add(self, actor: Actor, inputs: Iterable[Actor]) -> Actor:
        inputs = list(inputs)
        self.graph.add(actor, inputs=inputs, capacity=self.capacity)
        for upstream in inputs:
            self._outputs[upstream.name] = self._outputs.get(upstream.name, 0) + 1
        if isinstance(actor, OperatorActor) and actor.on_error == "dead-letter":
            self._dead_senders.append(actor)
        return actor

    def _policy(self, on_error: OnError | None) -> OnError:
        return self.on_error if on_error is None else check_on_error(on_error)

    def _open_ends(self) -> list[Actor]:
        """The chains' ends that no sink takes: what :meth:`open` streams."""
        return [
            a for a in self.graph if not isinstance(a, Sink) and self._outputs.get(a.name, 0) == 0
        ]

    def _wire(self) -> ChannelSink | None:
        """Once, before the flow runs: the sink of the stream :meth:`open` yields, if a
        chain ends without one, then the dead-letter sink, if any operator needs it."""
        if self._wired:
            return self._stream_sink  # the runtime refuses to run a graph twice
        self._wired = True
        stream = self._stream_sink = self._wire_stream()
        if not self._dead_senders:
            return stream
        target = self.dead_letter
        sink = target if isinstance(target, Sink) else DeadLetterSink("dead-letter", target)
        self.graph.add(sink, capacity=self.capacity)
        for sender in self._dead_senders:
            sender.dead_letter_output = self._outputs.get(sender.name, 0)
            self.graph.connect(sender, sink)
        self._dead_sink = sink
        return stream

    def _wire_stream(self) -> ChannelSink | None:
        ends = self._open_ends()
        if not ends:
            return None
        if len(ends) > 1:
            ends = [self._add(MergeActor(self._name("merge", None)), ends)]
        sink, self._stream_receive = row_channel(self._name("stream", None))
        self._add(sink, ends)
        self._step(f"stream {sink.name}")
        return sink

    @property
    def dead_letters(self) -> list[DeadLetter]:
        """The dead letters kept in memory (no ``dead_letter`` destination given)."""
        sink = self._dead_sink
        if isinstance(sink, DeadLetterSink) and sink.path is None:
            return list(sink.dead_letters)
        return []

    def _step(self, text: str) -> None:
        self._steps.append(text)

    def source(self, source: Source) -> FlowStream:
        """Start a chain at ``source`` (any :class:`runtime.Source`)."""
        self.graph.add(source)
        self._step(f"source {_describe_io(source)}")
        return FlowStream(self, [source])

    def fingerprint(self) -> str:
        """What a checkpoint of this flow is of: its steps in order, each with its
        name and the ``module.qualname`` of the user's function (``key_by`` with its
        partitions, sources and sinks with their files).  A checkpoint of another
        fingerprint does not resume this flow: the error names both."""
        return " | ".join(self._steps)

    async def run(
        self,
        options: SupervisorOptions | None = None,
        /,
        *,
        checkpoint: CheckpointTarget = None,
        checkpoint_interval: Duration | None = None,
        fresh: bool = False,
        count: int | None = None,
        # a graceful stop (drain, flush), which a caller's cancel scope cannot give
        timeout: Duration | None = None,  # noqa: ASYNC109
        **fields: Any,
    ) -> GraphStats:
        """Run the graph to its end; return the final stats.

        Args:
            options: how to run it (:class:`runtime.SupervisorOptions`).
            checkpoint: a directory (its ``checkpoints.db``) or a
                :class:`runtime.CheckpointStore`: the flow checkpoints its sources'
                positions, every :meth:`FlowStream.stateful` operator's per-key
                states and its sinks' output, and run again after a crash it
                resumes from the last checkpoint with the output of an
                uninterrupted run (with resumable sources and exactly-once sinks,
                such as the file ones).  Its states must hold only plain data
                (``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes`` and lists,
                tuples, dicts, sets and frozensets of them).
            checkpoint_interval: a duration between checkpoints (default ``"5s"``).
            fresh: ignore (and discard) the checkpoints there, start over.
            count: stop after this many output rows (a bounded run, as Quix's
                ``app.run(count=)``): the flow's sinks get exactly ``count`` rows
                between them (fewer if the input ends first), then the graph stops
                gracefully (the sources stop, the mailboxes drain, every sink
                flushes: files are complete) and the stats' ``stopped_by`` is
                ``"count"``.
            timeout: a duration (``"30s"``, a ``timedelta``; a bare number is
                milliseconds) on trio's clock after which the graph stops
                gracefully as for ``count`` (``stopped_by == "timeout"``).
            **fields: the options' fields as keywords (``restart=``, ``max_memory=``,
                ``memory_policy=``, ``on_stats=``, ``stats_interval=``).

        Raises:
            runtime.ActorFailed: an actor failed (an operator's exception is
                a :class:`runtime.BadRecord` naming the record offset).
            runtime.CheckpointError: the checkpoint is of another flow (both named),
                or a source cannot resume.
            ValueError: ``checkpoint_interval`` or ``fresh`` without ``checkpoint``;
                a chain ends without :meth:`FlowStream.sink` (its rows would go
                nowhere: read them with :meth:`open`); ``count`` is not an int
                >= 1, ``timeout`` not a duration > 0.

        Example:
            >>> import itertools, trio
            >>> from partita import CollectSink, IterableSource
            >>> out = CollectSink("out")
            >>> flow = Flow()
            >>> endless = ({"x": i} for i in itertools.count())
            >>> _ = flow.source(IterableSource("in", endless)).sink(out)
            >>> stats = trio.run(lambda: flow.run(count=5))
            >>> out.rows[-1], len(out.rows), stats.stopped_by, stats.state.name
            ({'x': 4}, 5, 'count', 'COMPLETED')
        """
        limit, seconds = check_count(count), check_timeout(timeout)
        if self._open_ends():
            ends = ", ".join(repr(a.name) for a in self._open_ends())
            raise ValueError(
                f"a chain of this flow ends without .sink() (at {ends}): its rows would go "
                "nowhere; end it with .sink(...), or read them with async with flow.open()"
            )
        rows = self._count_rows(limit)
        async with self.open(
            options,
            checkpoint=checkpoint,
            checkpoint_interval=checkpoint_interval,
            fresh=fresh,
            **fields,
        ) as stream:
            stopped = await wait_bounded(stream.supervisor, rows, seconds)
        return attrs.evolve(stream.stats(), stopped_by=stopped)

    def _count_rows(self, limit: int | None) -> RowCount | None:
        """With a ``limit``: every sink of the flow writes its share of one count."""
        if limit is None:
            return None
        rows = RowCount(limit)
        for sink in [a for a in self.graph if isinstance(a, Sink)]:
            self.graph.replace(sink, LimitedSink.counting(sink, rows))
        return rows

    @asynccontextmanager
    async def open(
        self,
        options: SupervisorOptions | None = None,
        /,
        *,
        checkpoint: CheckpointTarget = None,
        checkpoint_interval: Duration | None = None,
        fresh: bool = False,
        **fields: Any,
    ) -> AsyncIterator[RowStream]:
        """Run the graph for the duration of the block; yields a :class:`RowStream`.

        A chain that ends without :meth:`FlowStream.sink` is what the stream's
        ``async for`` reads (several such chains merge into one stream): its rows
        cross into the block in batches through a small bounded channel, so a slow
        consumer holds the graph back.  Leaving the block before the rows ended
        (``break``, ``return``, an exception) cancels what still runs, at once; an
        actor's failure is raised out of the ``async for`` and the block.

        When every chain ends at a sink there is nothing to iterate, and leaving
        the block waits for the graph to end (like a nursery).  Either way the
        stream pauses, resumes, cancels (``graceful=True``: stop the sources,
        drain, complete) and reports stats (``stream.supervisor`` is the
        :class:`runtime.Supervisor`).  Options as for :meth:`run`.

        Example:
            >>> import trio
            >>> from partita import IterableSource
            >>> async def main() -> None:
            ...     flow = Flow()
            ...     flow.source(IterableSource("in", [{"x": i} for i in range(4)])).filter(
            ...         lambda r: r["x"] % 2 == 1
            ...     )
            ...     async with flow.open() as stream:
            ...         print([row async for row in stream], stream.state.name)
            >>> trio.run(main)
            [{'x': 1}, {'x': 3}] COMPLETED
        """
        sink = self._wire()
        receive = self._stream_receive
        dead = self._dead_sink if isinstance(self._dead_sink, DeadLetterSink) else None
        async with streaming(
            lambda on_end: supervised(
                self.graph,
                SupervisorOptions.of(options, **fields),
                checkpoint,
                interval=checkpoint_interval,
                fresh=fresh,
                job=self.fingerprint,
                on_end=on_end,
            ),
            lambda running: RowStream(running, receive=receive, dead_letter_sink=dead),
            sink,
        ) as stream:
            yield stream


@attrs.define(eq=False)
class FlowStream:
    """The open end of a chain in a :class:`Flow`: add operators to it.

    After :meth:`key_by` with ``partitions=n`` the chain runs in ``n`` lanes:
    each following operator is one actor per lane (named ``"<name>[i]"``),
    until :meth:`via` or :meth:`sink` merges the lanes.
    """

    flow: Flow
    _tails: list[Actor]
    _fanout: KeyByActor | None = None
    _lanes: int = 1
    _key: KeyFn | None = None

    def _per_lane(self, name: str, make: Callable[[str], Actor]) -> FlowStream:
        flow = self.flow
        if self._fanout is not None:
            lanes = self._lanes
            names = [name] if lanes == 1 else [f"{name}[{i}]" for i in range(lanes)]
            tails = [flow._add(make(n), [self._fanout]) for n in names]
        elif len(self._tails) == 1:
            tails = [flow._add(make(name), self._tails)]
        else:
            tails = [flow._add(make(f"{name}[{i}]"), [tail]) for i, tail in enumerate(self._tails)]
        return FlowStream(flow, tails, None, len(tails), self._key)

    def _single(self) -> list[Actor]:
        stream = self
        if stream._fanout is not None:
            stream = stream._per_lane(f"{stream._fanout.name}-lane", Actor)
        if len(stream._tails) == 1:
            return stream._tails
        flow = self.flow
        return [flow._add(MergeActor(flow._name("merge", None)), stream._tails)]

    def _operator(self, kind: str, name: str | None, fn: object, extra: str = "") -> str:
        name = self.flow._name(kind, name)
        self.flow._step(f"{kind} {name} {qualname(fn)}{extra}")
        return name

    def _options(self, kind: str, fn: object, on_error: OnError | None) -> dict[str, Any]:
        """The keywords every operator actor takes: its label and its policy."""
        return {"label": f"{kind}({short_name(fn)})", "on_error": self.flow._policy(on_error)}

    def map(
        self,
        fn: Callable[[Record], Record],
        *,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> FlowStream:
        """Replace each record by ``fn(record)``.

        ``on_error`` (``"fail"``, ``"skip"``, ``"dead-letter"``; default: the flow's)
        says what a record ``fn`` raises on does, as for every operator.

        Raises:
            TypeError: ``fn`` is an ``async def`` (use :meth:`map_async`).
        """
        check_sync("map", fn, "map_async(fn, max_in_flight=...)")
        opts = self._options("map", fn, on_error)
        return self._per_lane(self._operator("map", name, fn), lambda n: MapActor(n, fn, **opts))

    def filter(
        self,
        predicate: Callable[[Record], Any],
        *,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> FlowStream:
        """Keep the records for which ``predicate(record)`` is true.

        Raises:
            TypeError: ``predicate`` is an ``async def`` (use :meth:`filter_async`).
        """
        check_sync("filter", predicate, "filter_async(fn, max_in_flight=...)")
        opts = self._options("filter", predicate, on_error)
        return self._per_lane(
            self._operator("filter", name, predicate),
            lambda n: FilterActor(n, predicate, **opts),
        )

    def flat_map(
        self,
        fn: Callable[[Record], Iterable[Record]],
        *,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> FlowStream:
        """Replace each record by the records of ``fn(record)`` (zero or more).

        Raises:
            TypeError: ``fn`` is an ``async def`` (use :meth:`flat_map_async`).
        """
        check_sync("flat_map", fn, "flat_map_async(fn, max_in_flight=...)")
        opts = self._options("flat_map", fn, on_error)
        return self._per_lane(
            self._operator("flat_map", name, fn), lambda n: FlatMapActor(n, fn, **opts)
        )

    def _async(
        self,
        kind: AsyncKind,
        fn: Callable[[Record], Any],
        max_in_flight: int,
        ordered: Ordering,
        name: str | None,
        on_error: OnError | None,
    ) -> FlowStream:
        check_async(kind, fn, generators=kind == "flat_map")
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ValueError(f"max_in_flight must be an int >= 1, got {max_in_flight!r}")
        ordering = check_ordering(ordered, self._key)
        opts = self._options(f"{kind}_async", fn, on_error)
        key = self._key
        step = self._operator(
            f"{kind}_async", name, fn, f" max_in_flight={max_in_flight} ordered={ordering!r}"
        )
        return self._per_lane(
            step,
            lambda n: AsyncOperatorActor(
                n, fn, kind, max_in_flight, ordering, key if ordering == "key" else None, **opts
            ),
        )

    def map_async(
        self,
        fn: Callable[[Record], Awaitable[Record]],
        *,
        max_in_flight: int = 16,
        ordered: Ordering = True,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> FlowStream:
        """Replace each record by ``await fn(record)``, at most ``max_in_flight`` at once.

        For calling a service or a database per record.  The records of a batch are
        awaited concurrently by a pool of at most ``max_in_flight`` tasks (per lane
        after :meth:`key_by`); the batch's results go on as one batch when all are
        done, in input order (``ordered=True``), in input order per key
        (``ordered="key"``, after :meth:`key_by`: a key's records are awaited one
        after the other) or in completion order (``ordered=False``).  While a batch
        is in flight the operator takes no more input: upstream waits.  Cancelling
        the flow cancels the calls in flight; none is left running.

        Example:
            >>> import trio
            >>> from partita import CollectSink, IterableSource
            >>> async def enrich(r: dict) -> dict:
            ...     await trio.sleep(0.01 * (3 - r["x"]))  # a slow service
            ...     return {**r, "y": r["x"] * 10}
            >>> out = CollectSink("out")
            >>> flow = Flow()
            >>> _ = flow.source(IterableSource("in", [{"x": i} for i in range(3)])).map_async(
            ...     enrich, max_in_flight=3
            ... ).sink(out)
            >>> _ = trio.run(flow.run)
            >>> out.rows
            [{'x': 0, 'y': 0}, {'x': 1, 'y': 10}, {'x': 2, 'y': 20}]

        Raises:
            TypeError: ``fn`` is not an ``async def`` (use :meth:`map`).
            ValueError: ``max_in_flight < 1``, or ``ordered`` is not ``True``,
                ``False`` or ``"key"`` (``"key"`` needs :meth:`key_by` first).
        """
        return self._async("map", fn, max_in_flight, ordered, name, on_error)

    def filter_async(
        self,
        predicate: Callable[[Record], Awaitable[Any]],
        *,
        max_in_flight: int = 16,
        ordered: Ordering = True,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> FlowStream:
        """Keep the records for which ``await predicate(record)`` is true (as :meth:`map_async`)."""
        return self._async("filter", predicate, max_in_flight, ordered, name, on_error)

    def flat_map_async(
        self,
        fn: Callable[[Record], Any],
        *,
        max_in_flight: int = 16,
        ordered: Ordering = True,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> FlowStream:
        """Replace each record by the records of ``await fn(record)`` (an iterable), or of
        ``fn(record)`` when ``fn`` is an async generator (as :meth:`map_async`)."""
        return self._async("flat_map", fn, max_in_flight, ordered, name, on_error)

    def key_by(
        self,
        key: KeyFn,
        *,
        partitions: int = 1,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> FlowStream:
        """Partition by ``key(record)``: hash it across ``partitions`` lanes.

        Records of one key always take one lane, in order; :meth:`stateful`
        keeps its state per key.

        Raises:
            ValueError: ``partitions < 1``.
            TypeError: ``key`` is an ``async def``.
        """
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        check_sync("key_by", key, "a sync key (compute it with map_async first)")
        inputs = self._single()
        opts = self._options("key_by", key, on_error)
        actor = KeyByActor(
            self._operator("key_by", name, key, f" partitions={partitions}"), key, **opts
        )
        self.flow._add(actor, inputs)
        return FlowStream(self.flow, [actor], actor, partitions, key)

    def stateful(
        self,
        fn: Callable[[Any, Record], Iterable[Record] | None],
        *,
        init: Callable[[], Any] = dict,
        copy: Callable[[Any], Any] = deepcopy,
        name: str | None = None,
        on_error: OnError | None = None,
    ) -> FlowStream:
        """Run ``fn(state, record) -> rows`` with one state per key (``init()`` makes one).

        The key is the last :meth:`key_by`'s (one state for all records without one).
        A batch applies all or nothing: ``fn`` works on a ``copy`` of each state the
        batch touches, kept only when the whole batch succeeded, so under a
        restart policy a retried batch starts from the states before it.
        ``copy=copy.copy`` is cheaper for flat states.  A record skipped or
        dead-lettered by ``on_error`` leaves the states as if it never came.

        Raises:
            TypeError: ``fn`` is an ``async def`` (do the awaiting in
                :meth:`map_async` before it).
        """
        check_sync("stateful", fn, "map_async(fn, max_in_flight=...) before it")
        key = self._key
        opts = self._options("stateful", fn, on_error)
        step = self._operator("stateful", name, fn, f" init={qualname(init)}")
        return self._per_lane(step, lambda n: StatefulActor(n, fn, init, key, copy, **opts))

    def window(
        self,
        windower: Windower,
        *,
        ts: str | Callable[[Record], Any],
        allowed_lateness: Duration = 0,
        late: LatePolicy = "drop",
        retention: Duration | None = None,
        emit: Emit = "final",
    ) -> WindowedStream[FlowStream]:
        """Keyed event-time windows, as SQL's (end them with a fold of the result).

        The key is the last :meth:`key_by`'s (one group per window without one).
        ``windower`` is a :class:`TumblingWindow`, :class:`HoppingWindow` or
        :class:`SessionWindow`; ``ts`` the event-time field or a function of the
        record (epoch ms, or ISO-8601 text).  The watermark is the largest event
        time so far, in source order, less ``allowed_lateness``; a window closes when
        the watermark reaches its end, and end of input closes all.  A record is
        judged against the watermark as of itself: one for closed windows only is
        ``late`` -- ``"drop"`` (counted in ``rows_late``), ``"dead-letter"``
        (counted, and sent to the flow's dead-letter output) or ``"update"`` (its
        closed window, kept ``retention`` past its end, is updated and re-emitted).
        ``emit="changes"`` emits a row on every update instead of one at the close.
        See :class:`WindowedStream` for the folds, and docs/api.md.

        The window follows :meth:`key_by` directly (its lanes get their watermark
        from there) or runs on one lane.

        Example:
            >>> import trio
            >>> from partita import CollectSink, HoppingWindow, IterableSource
            >>> out = CollectSink("out")
            >>> flow = Flow()
            >>> _ = (
            ...     flow.source(IterableSource("in", [{"k": "a", "t": 7}, {"k": "a", "t": 12}]))
            ...     .key_by(lambda r: r["k"])
            ...     .window(HoppingWindow(10, slide=5), ts="t", emit="changes")
            ...     .count()
            ...     .sink(out)
            ... )
            >>> _ = trio.run(flow.run)
            >>> [(r["window_start"], r["count"]) for r in out.rows]
            [(0, 1), (5, 1), (5, 2), (10, 1)]

        Raises:
            TypeError: ``windower`` is not a window, or ``ts`` is an ``async def``.
            ValueError: a bad duration or policy, or the stream runs in several lanes
                that did not come straight from :meth:`key_by`.
        """
        options = WindowOptions.of(windower, ts, allowed_lateness, late, retention, emit)
        if self._fanout is None and len(self._tails) > 1:
            raise ValueError(
                f"window after key_by(partitions={len(self._tails)}) and other operators: "
                "put the window right after key_by (its watermark is exact in source "
                "order, before the lanes split), or the other operators before key_by"
            )
        if self._fanout is not None and self._fanout.clock is not None:
            raise ValueError(f"key_by {self._fanout.name!r} already feeds a window")
        return WindowedStream(self, options)

    def tumbling(
        self, size: Duration, *, ts: str | Callable[[Record], Any], **options: Any
    ) -> WindowedStream[FlowStream]:
        """:meth:`window` of :class:`TumblingWindow` ``(size)``; same keywords."""
        return self.window(TumblingWindow(size), ts=ts, **options)

    def hopping(
        self, size: Duration, *, slide: Duration, ts: str | Callable[[Record], Any], **options: Any
    ) -> WindowedStream[FlowStream]:
        """:meth:`window` of :class:`HoppingWindow` ``(size, slide=slide)``; same keywords."""
        return self.window(HoppingWindow(size, slide=slide), ts=ts, **options)

    def session(
        self, gap: Duration, *, ts: str | Callable[[Record], Any], **options: Any
    ) -> WindowedStream[FlowStream]:
        """:meth:`window` of :class:`SessionWindow` ``(gap)``; same keywords."""
        return self.window(SessionWindow(gap), ts=ts, **options)

    def _windowed(
        self, options: WindowOptions, fold: WindowFold, name: str | None, on_error: OnError | None
    ) -> FlowStream:
        """The window actors (one per lane) of :meth:`window` ending in ``fold``."""
        flow = self.flow
        fanout = self._fanout
        if fanout is not None:
            if fanout.clock is not None:
                raise ValueError(f"key_by {fanout.name!r} already feeds a window")
            fanout.clock = EventClock(options.time_of(), options.lateness_ms)
        name = flow._name("window", name)
        flow._step(f"window {name} {fold.describe}{options.describe()}")
        policy = flow._policy(on_error)
        key = self._key

        def make(lane: str) -> Actor:
            clock = (
                None if fanout is not None else EventClock(options.time_of(), options.lateness_ms)
            )
            actor = WindowActor(
                lane,
                options.windower,
                options.time_of(),
                key,
                fold,
                options.rules(),
                clock,
                label=f"window {fold.label}",
                on_error=policy,
            )
            if options.late != "drop" and policy != "dead-letter":
                flow._dead_senders.append(actor)  # late records go to the dead letters
            return actor

        stream = self._per_lane(name, make)
        return FlowStream(flow, stream._tails, None, stream._lanes, None)

    def via(self, actor: Actor) -> FlowStream:
        """Send the stream through ``actor`` (any :class:`runtime.Actor`); lanes merge first."""
        inputs = self._single()
        self.flow._add(actor, inputs)
        self.flow._step(f"via {_describe_io(actor)}")
        return FlowStream(self.flow, [actor], None, 1, None)

    def sink(self, sink: Sink) -> Flow:
        """End the chain at ``sink`` (lanes merge first); returns the :class:`Flow`."""
        self.flow._add(sink, self._single())
        # a sink's name and file, not its class: a subclass (a wrapper) writes alike
        self.flow._step(f"sink {_describe_io(sink, kind=False)}")
        return self.flow


def _describe_io(actor: Actor, *, kind: bool = True) -> str:
    """An actor's class (unless ``kind`` is false) and name, and its file or input."""
    text = f"{type(actor).__name__} {actor.name}" if kind else actor.name
    path = getattr(actor, "path", None)
    if isinstance(path, str | os.PathLike):
        text += f" {os.fspath(path)!r}"
    describe_input = getattr(actor, "describe_input", None)
    if callable(describe_input):
        text += f" {describe_input()}"
    return text
