"""The Flow builder: graphs of Python operators under one supervisor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from copy import deepcopy
from typing import Any

import attrs

from partita.runtime import (
    Actor,
    Graph,
    GraphStats,
    Record,
    Sink,
    Source,
    Supervisor,
    SupervisorOptions,
    open_supervisor,
)

from ._merge import MergeActor
from ._operators import (
    FilterActor,
    FlatMapActor,
    KeyByActor,
    KeyFn,
    MapActor,
    StatefulActor,
)

__all__ = ["Flow", "FlowStream"]


@attrs.define(eq=False)
class Flow:
    """Builds a graph of Python operators, then runs it (same supervisor as SQL).

    Start a chain with :meth:`source`, add operators to the :class:`FlowStream`
    it returns, end it with :meth:`FlowStream.sink`.  Every operator handles
    a batch at a time (C-level ``map`` / ``filter`` over ``batch.records``).

    Example:
        >>> import trio
        >>> from actors import CollectSink, IterableSource
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
    graph: Graph = attrs.field(init=False, factory=Graph)
    _count: int = attrs.field(init=False, default=0)

    def _name(self, kind: str, name: str | None) -> str:
        self._count += 1
        return name if name is not None else f"{kind}-{self._count}"

    def _add(self, actor: Actor, inputs: Iterable[Actor]) -> Actor:
        return self.graph.add(actor, inputs=inputs, capacity=self.capacity)

    def source(self, source: Source) -> FlowStream:
        """Start a chain at ``source`` (any :class:`runtime.Source`)."""
        self.graph.add(source)
        return FlowStream(self, [source])

    async def run(self, options: SupervisorOptions | None = None, /, **fields: Any) -> GraphStats:
        """Run the graph to its end; return the final stats.

        Args:
            options: how to run it (:class:`runtime.SupervisorOptions`).
            **fields: its fields as keywords (``restart=``, ``max_memory=``,
                ``memory_policy=``, ``on_stats=``, ``stats_interval=``).

        Raises:
            runtime.ActorFailed: an actor failed (an operator's exception is
                a :class:`runtime.BadRecord` naming the record offset).
        """
        async with self.open(options, **fields) as supervisor:
            pass
        return supervisor.stats()

    @asynccontextmanager
    async def open(
        self, options: SupervisorOptions | None = None, /, **fields: Any
    ) -> AsyncIterator[Supervisor]:
        """Run the graph for the duration of the block; yields its supervisor.

        Leaving the block waits for the graph to end (like a nursery); call
        ``supervisor.cancel()`` to stop it sooner.  Options as for :meth:`run`.
        """
        async with open_supervisor(self.graph, options, **fields) as supervisor:
            yield supervisor


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

    def map(self, fn: Callable[[Record], Record], *, name: str | None = None) -> FlowStream:
        """Replace each record by ``fn(record)``."""
        return self._per_lane(self.flow._name("map", name), lambda n: MapActor(n, fn))

    def filter(self, predicate: Callable[[Record], Any], *, name: str | None = None) -> FlowStream:
        """Keep the records for which ``predicate(record)`` is true."""
        return self._per_lane(self.flow._name("filter", name), lambda n: FilterActor(n, predicate))

    def flat_map(
        self, fn: Callable[[Record], Iterable[Record]], *, name: str | None = None
    ) -> FlowStream:
        """Replace each record by the records of ``fn(record)`` (zero or more)."""
        return self._per_lane(self.flow._name("flat_map", name), lambda n: FlatMapActor(n, fn))

    def key_by(self, key: KeyFn, *, partitions: int = 1, name: str | None = None) -> FlowStream:
        """Partition by ``key(record)``: hash it across ``partitions`` lanes.

        Records of one key always take one lane, in order; :meth:`stateful`
        keeps its state per key.

        Raises:
            ValueError: ``partitions < 1``.
        """
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        inputs = self._single()
        actor = KeyByActor(self.flow._name("key_by", name), key)
        self.flow._add(actor, inputs)
        return FlowStream(self.flow, [actor], actor, partitions, key)

    def stateful(
        self,
        fn: Callable[[Any, Record], Iterable[Record] | None],
        *,
        init: Callable[[], Any] = dict,
        copy: Callable[[Any], Any] = deepcopy,
        name: str | None = None,
    ) -> FlowStream:
        """Run ``fn(state, record) -> rows`` with one state per key (``init()`` makes one).

        The key is the last :meth:`key_by`'s (one state for all records without one).
        A batch applies all or nothing: ``fn`` works on a ``copy`` of each state the
        batch touches, kept only when the whole batch succeeded, so under a
        restart policy a retried batch starts from the states before it.
        ``copy=copy.copy`` is cheaper for flat states.
        """
        key = self._key
        return self._per_lane(
            self.flow._name("stateful", name), lambda n: StatefulActor(n, fn, init, key, copy)
        )

    def via(self, actor: Actor) -> FlowStream:
        """Send the stream through ``actor`` (any :class:`runtime.Actor`); lanes merge first."""
        inputs = self._single()
        self.flow._add(actor, inputs)
        return FlowStream(self.flow, [actor], None, 1, None)

    def sink(self, sink: Sink) -> Flow:
        """End the chain at ``sink`` (lanes merge first); returns the :class:`Flow`."""
        self.flow._add(sink, self._single())
        return self.flow
