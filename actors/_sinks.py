"""Sinks: collect rows in memory, write JSON lines, or hand batches to a callback."""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Literal, Protocol

import attrs
import trio

from partita.runtime import Batch, ConsumerGone, Record, Sink

from ._jsonl import JsonLinesWriter, encode_lines

__all__ = [
    "CallbackSink",
    "CollectSink",
    "FileOutput",
    "JsonLinesSink",
    "finish_output",
    "write_output",
]


class FileOutput(Protocol):
    """A sink writing bytes to a file or stdout (:func:`write_output`)."""

    name: str
    path: str | os.PathLike[str]
    reader_gone: bool


async def write_output(sink: FileOutput, writer: JsonLinesWriter, data: bytes) -> None:
    """Append ``data`` in a thread; stdout's reader gone is :class:`ConsumerGone`.

    Any other failure is one line naming the file (``cannot write output ...``).
    """
    try:
        await trio.to_thread.run_sync(writer.write, data, abandon_on_cancel=True)
    except BrokenPipeError as exc:
        sink.reader_gone = True
        raise ConsumerGone(sink.name) from exc
    except OSError as exc:
        raise _write_error(sink, exc) from None


async def finish_output(sink: FileOutput, writer: JsonLinesWriter) -> None:
    """Open the file if no row came (an empty result is still a file), then close it."""
    try:
        await trio.to_thread.run_sync(writer.open)
    except OSError as exc:
        raise _write_error(sink, exc) from None
    writer.close()


def _write_error(sink: FileOutput, exc: OSError) -> OSError:
    return OSError(exc.errno, f"cannot write output {os.fspath(sink.path)!r}: {exc.strerror}")


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

    delivery: ClassVar[Literal["exactly-once", "at-least-once"]] = "exactly-once"

    async def consume(self, batch: Batch) -> None:
        self.rows.extend(batch.records)

    def snapshot_state(self) -> object:
        """The rows so far (a checkpoint of a collecting run holds its whole output)."""
        return list(self.rows)

    def restore_state(self, state: object) -> None:
        assert isinstance(state, list)
        self.rows = list(state)


@attrs.define(eq=False)
class JsonLinesSink(Sink):
    """Writes one JSON object per row to a file, or to stdout with ``"-"``.

    Each batch is encoded once and written with one call in a worker thread,
    so a slow reader never blocks the event loop, and it is in the file when the
    next batch comes (no buffer to flush).  The output is strict JSON: NaN and
    infinities are written as ``null``, lone surrogates escaped (see
    ``partita.actors._jsonl``).  A closed stdout (``partita ... | head``) raises
    :class:`partita.ConsumerGone`, which cancels the graph quietly.

    Example:
        >>> sink = JsonLinesSink("sink", "out.jsonl")

    Args:
        name: unique within its graph.
        path: the file to create or truncate, or ``"-"`` for stdout.

    Checkpoints: into a file, exactly-once: the checkpoint holds the file's length,
    and a resumed run cuts the file back to it before writing on (what was
    written after the checkpoint is written again, once).  Into stdout,
    at-least-once (rows after the last checkpoint are written again).

    Attributes:
        rows_written: rows in the file so far.
        reader_gone: whether the reader of stdout went away (the run was then
            cancelled quietly; a command exits 141, as if SIGPIPE ended it).

    Raises:
        OSError: a write failed (a full disk, a lost mount); its ``strerror``
            names the file: ``cannot write output 'out.jsonl': No space left on device``.
    """

    path: str | os.PathLike[str] = "-"
    rows_written: int = attrs.field(init=False, default=0)
    reader_gone: bool = attrs.field(init=False, default=False)
    _writer: JsonLinesWriter = attrs.field(init=False)

    @_writer.default
    def _make_writer(self) -> JsonLinesWriter:
        return JsonLinesWriter(self.path)

    @property
    def delivery(self) -> Literal["exactly-once", "at-least-once"]:  # type: ignore[override]
        """Exactly-once into a file, at-least-once into stdout."""
        return "at-least-once" if self.path == "-" else "exactly-once"

    def snapshot_state(self) -> object:
        """What the file holds at the barrier: its length, and the rows in it."""
        return {"bytes": self._writer.length, "rows": self.rows_written}

    def restore_state(self, state: object) -> None:
        saved: Any = state
        self.rows_written = saved["rows"]
        if self.path != "-":
            self._writer.resume(saved["bytes"])

    async def consume(self, batch: Batch) -> None:
        records = batch.records
        if not records:
            return
        await write_output(self, self._writer, encode_lines(records))
        self.rows_written += len(records)

    async def flush(self) -> None:
        await finish_output(self, self._writer)


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
