"""Sinks: collect rows in memory, write JSON lines, or hand batches to a callback."""

from __future__ import annotations

import inspect
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import IO, Any

import attrs
import trio

from partita.runtime import Batch, ConsumerGone, Record, Sink

__all__ = ["CallbackSink", "CollectSink", "JsonLinesSink"]


@attrs.define(eq=False)
class CollectSink(Sink):
    """Keeps every row it receives in :attr:`rows`, in arrival order.

    Memory grows with the output: use it for results you would hold anyway.

    Example:
        >>> sink = CollectSink("sink")
        >>> sink.rows
        []

    Args:
        name: unique within its graph.
    """

    rows: list[Record] = attrs.field(init=False, factory=list)

    async def consume(self, batch: Batch) -> None:
        self.rows.extend(batch.records)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


@attrs.define(eq=False)
class JsonLinesSink(Sink):
    """Writes one JSON object per row to a file, or to stdout with ``"-"``.

    Each batch is written with one call in a worker thread; the file is
    flushed (and closed, unless it is stdout) at the end.  A closed stdout
    (``partita ... | head``) raises :class:`runtime.ConsumerGone`, which
    cancels the graph quietly.

    Example:
        >>> sink = JsonLinesSink("sink", "out.jsonl")

    Args:
        name: unique within its graph.
        path: the file to create or truncate, or ``"-"`` for stdout.
    """

    path: str | os.PathLike[str] = "-"
    _file: IO[str] | None = attrs.field(init=False, default=None)

    def _open(self) -> IO[str]:
        if self._file is None:
            if self.path == "-":
                self._file = sys.stdout
            else:
                self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        return self._file

    def _write(self, text: str) -> None:
        self._open().write(text)

    async def consume(self, batch: Batch) -> None:
        records = batch.records
        if not records:
            return
        dumps = json.dumps
        text = "".join([dumps(r, default=_json_default) + "\n" for r in records])
        try:
            await trio.to_thread.run_sync(self._write, text)
        except BrokenPipeError as exc:
            raise ConsumerGone(self.name) from exc

    def _close(self) -> None:
        file = self._open()
        file.flush()
        if file is not sys.stdout:
            file.close()
        self._file = None

    async def flush(self) -> None:
        try:
            await trio.to_thread.run_sync(self._close)
        except BrokenPipeError as exc:
            raise ConsumerGone(self.name) from exc


@attrs.define(eq=False)
class CallbackSink(Sink):
    """Calls ``fn(rows)`` once per batch; ``fn`` may be sync or async.

    Example:
        >>> seen = []
        >>> sink = CallbackSink("sink", seen.extend)

    Args:
        name: unique within its graph.
        fn: called with each batch's rows (a list it may keep); an async ``fn``
            is awaited, which holds the graph back while it runs (backpressure).
    """

    fn: Callable[[list[Record]], Awaitable[None] | None]

    async def consume(self, batch: Batch) -> None:
        records = batch.records
        if not records:
            return
        result = self.fn(records)
        if inspect.isawaitable(result):
            await result


@attrs.define(eq=False)
class ChannelSink(Sink):
    """Sends each batch's rows into a trio memory channel (what :class:`QueryStream` reads).

    Closes the channel at the end; if the reader closed its side, raises
    :class:`runtime.ConsumerGone` so everything upstream is cancelled.
    """

    channel: trio.MemorySendChannel[list[Record]]

    async def consume(self, batch: Batch) -> None:
        records = batch.records
        if not records:
            return
        try:
            await self.channel.send(records)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConsumerGone(self.name) from exc

    async def flush(self) -> None:
        await self.channel.aclose()
