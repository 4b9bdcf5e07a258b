"""Rows out of a running graph, as they come: what ``open_sql`` and ``Flow.open`` yield.

The graph's output sink is a :class:`ChannelSink` sending each batch's rows into a
small bounded trio channel (:data:`STREAM_CAPACITY` batches), so a consumer that
reads slowly holds the whole graph back.  :func:`streaming` runs the block: however
the graph ends the channel ends (``async for`` never waits on a graph that is
gone), and a consumer that leaves before the end cancels what still runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

import attrs
import trio

from partita.runtime import ActorState, DeadLetter, GraphStats, Record, Supervisor

from ._dead_letter import DeadLetterSink
from ._sinks import ChannelSink

__all__ = ["STREAM_CAPACITY", "RowStream", "row_channel", "streaming"]

STREAM_CAPACITY = 2
"""Batches the channel between the graph and its consumer holds."""

_S = TypeVar("_S", bound="RowStream")

_ENDED = (ActorState.COMPLETED, ActorState.FAILED, ActorState.CANCELLED)


@attrs.define(eq=False)
class RowStream:
    """A running graph and its output rows as they come: ``async for row in stream``.

    Rows arrive in batches through a small channel; :meth:`batches` gives the
    batches themselves (cheaper for large outputs).  :meth:`pause`, :meth:`resume`,
    :meth:`cancel`, :attr:`state` and :meth:`stats` control and watch the graph, as
    its :attr:`supervisor` does; once the rows ended (the loop is over) the graph
    has ended too.  Leaving the block that opened it before the rows
    ended, or :meth:`close`, cancels everything still running.

    Example:
        >>> import trio
        >>> from partita import Flow, IterableSource
        >>> async def main() -> None:
        ...     flow = Flow()
        ...     flow.source(IterableSource("in", [{"x": i} for i in range(5)])).map(
        ...         lambda r: {"y": r["x"] * 10}
        ...     )  # no .sink(): the rows are the stream
        ...     async with flow.open() as stream:
        ...         async for row in stream:
        ...             print(row)
        ...             if row["y"] == 20:
        ...                 break  # cancels the rest of the graph
        ...     print(stream.state.name)
        >>> trio.run(main)
        {'y': 0}
        {'y': 10}
        {'y': 20}
        CANCELLED

    Attributes:
        supervisor: the graph's :class:`runtime.Supervisor`.
    """

    supervisor: Supervisor
    _receive: trio.MemoryReceiveChannel[list[Record]] | None = attrs.field(
        default=None, kw_only=True
    )
    _dead_letter_sink: DeadLetterSink | None = attrs.field(default=None, kw_only=True)
    _rows: list[Record] = attrs.field(init=False, factory=list)
    _index: int = attrs.field(init=False, default=0)
    _exhausted: bool = attrs.field(init=False, default=False)

    def _channel(self) -> trio.MemoryReceiveChannel[list[Record]]:
        receive = self._receive
        if receive is None:
            raise TypeError(
                "this flow has no rows to iterate: every chain ends at a .sink(); "
                "leave one chain without .sink() to read it with async for"
            )
        return receive

    def __aiter__(self) -> RowStream:
        self._channel()
        return self

    async def __anext__(self) -> Record:
        index = self._index
        rows = self._rows
        if index < len(rows):
            self._index = index + 1
            return rows[index]
        receive = self._channel()
        while True:
            try:
                rows = await receive.receive()
            except trio.EndOfChannel:
                self._rows = []
                self._index = 0
                await self._ended()
                raise StopAsyncIteration from None
            except trio.ClosedResourceError:
                raise StopAsyncIteration from None
            if rows:
                self._rows = rows
                self._index = 1
                return rows[0]

    async def batches(self) -> AsyncIterator[list[Record]]:
        """The rows batch by batch (each a list the caller may keep)."""
        receive = self._channel()
        if self._index < len(self._rows):
            rest = self._rows[self._index :]
            self._rows = []
            self._index = 0
            yield rest
        while True:
            try:
                rows = await receive.receive()
            except trio.EndOfChannel:
                await self._ended()
                return
            except trio.ClosedResourceError:
                return
            yield rows
            del rows

    async def _ended(self) -> None:
        """The rows ended: the sink has flushed; wait for the graph to end too, so that
        after the loop :attr:`state` and :meth:`stats` are final."""
        self._exhausted = True
        await self.supervisor.wait()

    @property
    def state(self) -> ActorState:
        """The graph's state (as ``stream.supervisor.state``)."""
        return self.supervisor.state

    def stats(self) -> GraphStats:
        """The graph's stats now (as ``stream.supervisor.stats()``)."""
        return self.supervisor.stats()

    def pause(self, actor: str | None = None, *, timeout: float | None = None) -> None:
        """Pause the graph, or one actor by name (:meth:`runtime.Supervisor.pause`)."""
        self.supervisor.pause(actor, timeout=timeout)

    def resume(self, actor: str | None = None) -> None:
        """Resume the graph, or one actor by name (:meth:`runtime.Supervisor.resume`)."""
        self.supervisor.resume(actor)

    async def cancel(self, *, graceful: bool = True, deadline: float | None = None) -> None:
        """Stop the graph and wait until it has stopped (:meth:`runtime.Supervisor.cancel`).

        A graceful cancel drains what was read, which needs the rows read: with rows
        to iterate, run it in another task while this one keeps reading.
        """
        await self.supervisor.cancel(graceful=graceful, deadline=deadline)

    @property
    def dead_letters(self) -> list[DeadLetter]:
        """Dead letters kept in memory so far (no ``dead_letter`` destination given)."""
        sink = self._dead_letter_sink
        return [] if sink is None or sink.path is not None else list(sink.dead_letters)

    def close(self) -> None:
        """Stop reading: the sink sees the consumer gone and the graph is cancelled."""
        if self._receive is not None:
            self._receive.close()


def row_channel(
    name: str,
) -> tuple[ChannelSink, trio.MemoryReceiveChannel[list[Record]]]:
    """The output sink named ``name`` and the channel end a :class:`RowStream` reads."""
    send, receive = trio.open_memory_channel[list[Record]](STREAM_CAPACITY)
    return ChannelSink(name, send), receive


@asynccontextmanager
async def streaming(
    open_graph: Callable[[Callable[[], None] | None], AbstractAsyncContextManager[Supervisor]],
    make: Callable[[Supervisor], _S],
    sink: ChannelSink | None,
) -> AsyncIterator[_S]:
    """Run the graph ``open_graph(on_end)`` opens; yield ``make(supervisor)``.

    With an output ``sink``, the graph ending (however) ends the rows, and leaving
    the block before they ended cancels what still runs, now.  Without, leaving
    the block waits for the graph to end, as a nursery does.
    """
    on_end = None if sink is None else sink.channel.close
    async with open_graph(on_end) as running:
        stream = make(running)
        if sink is None:
            yield stream
            return
        try:
            yield stream
        finally:
            if not stream._exhausted:
                # The consumer left before the end: cancel what still runs, now.
                stream.close()
                if running.state not in _ENDED:
                    await running.cancel(graceful=False)
