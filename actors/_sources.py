"""Sources over Python data: iterables and async iterables.

Every source here reads lazily, one batch at a time: the next batch is read
only after the previous one was handed downstream, so a slow consumer holds
the reader back (backpressure reaches the input).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Sequence
from typing import Generic, TypeAlias, TypeVar

import attrs
import trio

from partita.runtime import (
    BadRecord,
    Batch,
    BatchSizer,
    DeadLetter,
    OnError,
    Record,
    Source,
    check_on_error,
    estimate_nbytes,
)

from ._dead_letter import emit_dead_letters

__all__ = [
    "AsyncIterableSource",
    "ErrorPolicy",
    "IterableSource",
    "Parsed",
    "PumpedSource",
    "RecordSource",
    "default_sizer",
]

ErrorPolicy: TypeAlias = OnError  # the one on_error policy, from the kernel
_T = TypeVar("_T")


def _check_policy(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    check_on_error(value)


def _check_idle(instance: object, attribute: attrs.Attribute[float | None], value: object) -> None:
    if value is not None and not (isinstance(value, int | float) and value > 0):
        raise ValueError(f"idle_timeout must be a positive number of seconds, got {value!r}")


def error_leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions in ``exc`` (nested groups flattened), leaving out ``trio.Cancelled``."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in error_leaves(inner)]
    return [] if isinstance(exc, trio.Cancelled) else [exc]


def single_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception that is not ``trio.Cancelled`` in ``group``, else ``group``."""
    leaves = error_leaves(group)
    return leaves[0] if len(leaves) == 1 else group


@attrs.define(eq=False)
class RecordSource(Source):
    """Base of partita's sources: data to output 0, dead letters to a side output.

    A source in a SQL graph has two outputs: the router (output 0) and the
    dead-letter sink (:attr:`dead_letter_output`).  Bad input the source finds
    itself (an unparseable line) goes there, counted in ``rows_errored``; with
    no dead-letter output the letters are kept in :attr:`dead_letters`.

    An *idle tick* is an empty batch: a source with :attr:`idle_timeout` sends
    one whenever its input stayed silent that long, so a router can advance
    the watermark of an idle stream (see :class:`actors.RouterActor`).

    Args:
        name: unique within its graph.
        sizer: the batch-size controller (default :func:`default_sizer`).
        idle_timeout: seconds of silence before an idle tick (``None``: never).
        dead_letter_output: the output index of the dead-letter sink, if any.
        on_first_records: called once with the first records read, before they
            are sent (to look at what the input holds: the CLI warns there when
            a column the query reads is in none of them).
    """

    sizer: BatchSizer = attrs.field(factory=lambda: default_sizer(), kw_only=True)
    idle_timeout: float | None = attrs.field(default=None, kw_only=True, validator=_check_idle)
    dead_letter_output: int | None = attrs.field(default=None, kw_only=True)
    on_first_records: Callable[[list[Record]], None] | None = attrs.field(
        default=None, kw_only=True
    )
    dead_letters: list[DeadLetter] = attrs.field(init=False, factory=list)
    _splitting: bool = attrs.field(init=False, default=False)

    def checkpoint_ready(self) -> bool:
        """Not while one read is being sent as several batches (memory budget)."""
        return not self._splitting

    def _data_output(self) -> int | None:
        return None if self.dead_letter_output is None else 0

    async def send_records(self, records: list[Record]) -> None:
        """Send ``records`` as one batch at the next offsets, to the data output only."""
        await self.send_with_dead_letters(records, ())

    async def send_with_dead_letters(
        self,
        records: list[Record],
        dead: Iterable[DeadLetter],
        offsets: Sequence[int] | None = None,
    ) -> None:
        """Send ``records`` and the dead letters found while reading them (one boundary).

        ``offsets`` are the records' own positions in the input (a file source's
        line numbers); by default they are counted from 0.
        """
        letters = list(dead)
        n = len(records)
        if n and self.on_first_records is not None:
            look, self.on_first_records = self.on_first_records, None
            look(records)
        per, nbytes = self._fit(records)
        if per < n:
            try:
                for start in range(0, n, per):
                    chunk = records[start : start + per]
                    where = None if offsets is None else offsets[start : start + per]
                    # the last piece is where the read ends: a checkpoint may be taken there
                    self._splitting = start + per < n
                    await self.send_with_dead_letters(chunk, letters if start == 0 else (), where)
            finally:
                self._splitting = False
            return
        if letters:
            for letter in letters:
                self.count_error(self.error_reason(letter))
            emit_dead_letters(self, letters, self.dead_letter_output, self.dead_letters)
        if n:
            self._emit_records(records, self._data_output(), offsets, nbytes=nbytes)
        elif not letters:
            return
        await self.deliver()

    def describe_offset(self, offset: int) -> str:
        """Where the record at ``offset`` is in the input, for an error message."""
        return f"at record offset {offset}"

    def error_reason(self, letter: DeadLetter) -> str:
        """The kind of error ``letter`` is, short and stable, to count it by (stats)."""
        return "bad record"

    def fit(self, records: list[Record]) -> int:
        """How many of ``records`` one batch may hold under the graph's ``max_memory``.

        A batch must fit well inside one mailbox's share of the budget (an eighth):
        the kernel fails a message larger than a share outright, whatever the
        policy.  Without a budget, all of them.
        """
        return self._fit(records)[0]

    def _fit(self, records: list[Record]) -> tuple[int, int | None]:
        """:meth:`fit`, and the estimate of all of ``records`` when it was taken (the
        batch they are sent as keeps it rather than being measured again)."""
        n = len(records)
        budget = self.memory_budget
        if budget is None or n <= 1:
            return max(n, 1), None
        limit = budget.share // 8
        nbytes = estimate_nbytes(Batch(records))
        if nbytes <= limit:
            return n, nbytes
        per = max(1, n * limit // nbytes)
        self.sizer.cap(per)
        return per, None

    async def send_idle_tick(self) -> None:
        """Tell downstream the input was silent for :attr:`idle_timeout` (an empty batch)."""
        self.emit_message(Batch([]), self._data_output())
        await self.deliver()


@attrs.define(eq=False)
class IterableSource(RecordSource):
    """Reads records from a (sync) iterable, one batch at a time.

    The iterable is consumed lazily with :func:`itertools.islice`, so a
    generator is pulled only as fast as downstream takes batches.  A restarted
    source goes on where it stopped.

    Example:
        >>> src = IterableSource("numbers", ({"x": i} for i in range(10)))

    Args:
        name: unique within its graph.
        records: any iterable of ``dict`` records.
        sizer: the batch-size controller (default :func:`default_sizer`).
    """

    records: Iterable[Record]
    _it: Iterator[Record] | None = attrs.field(init=False, default=None)
    _taken: int = attrs.field(init=False, default=0)

    @property
    def resumable(self) -> bool:  # type: ignore[override]
        """Over a sequence (a list), a checkpoint resumes at the same index: give the
        resumed run the same list.  A generator or another one-shot iterable cannot."""
        return isinstance(self.records, Sequence)

    def snapshot_state(self) -> object:
        return self._taken

    def restore_state(self, state: object) -> None:
        assert isinstance(state, int)
        self._taken = state
        self._it = itertools.islice(iter(self.records), state, None)

    async def produce(self) -> None:
        if self._it is None:
            self._it = iter(self.records)
        it = self._it
        islice = itertools.islice
        while True:
            chunk = list(islice(it, self.batch_size))
            if not chunk:
                return
            self._taken += len(chunk)
            await self.send_records(chunk)
            del chunk


Parsed: TypeAlias = tuple[list[Record], list[DeadLetter], BadRecord | None, Sequence[int] | None]
"""What :meth:`PumpedSource.parse` makes of some items: records, dead letters, a failure,
and the records' positions in the input (``None``: counted from 0)."""


@attrs.define(eq=False)
class PumpedSource(RecordSource, Generic[_T]):
    """A source whose reading runs in a helper task, so silence can be timed.

    The helper (:meth:`pump`) reads the input and hands items over with
    :meth:`put`, through a small bounded channel; the source takes what is
    there (after one ``await``, with ``receive_nowait``), turns it into records
    with :meth:`parse` (synchronously) and sends them, and sends an idle tick
    when nothing came for :attr:`idle_timeout` seconds.  The channel is the
    only read-ahead.

    Restarts: the channel, the item being put, the parsed batches not yet sent
    and the read position live on the source, so a restarted source goes on
    where it stopped, losing and repeating nothing (a pipe read abandoned by
    a cancellation excepted); one that failed on bad input
    (``on_error="fail"``) fails again on the same input.
    """

    channel_capacity: int = attrs.field(default=1, kw_only=True)
    _channel: tuple[trio.MemorySendChannel[_T], trio.MemoryReceiveChannel[_T]] | None = attrs.field(
        init=False, default=None
    )
    _held: list[_T] = attrs.field(init=False, factory=list)
    _pump_done: bool = attrs.field(init=False, default=False)
    _ready: deque[tuple[list[Record], list[DeadLetter], Sequence[int] | None]] = attrs.field(
        init=False, factory=deque
    )
    _failure: BadRecord | None = attrs.field(init=False, default=None)
    _input_ended: bool = attrs.field(init=False, default=False)

    async def pump(self, send: trio.MemorySendChannel[_T]) -> None:
        """Read the input and :meth:`put` items into ``send``; return at its end.

        Keep the read position on ``self``: a restarted source calls it again.
        """

    def parse(self, items: list[_T], end: bool) -> Parsed:
        """Turn ``items`` into records (synchronously); ``end`` marks the input's end."""
        raise NotImplementedError

    def drain_limit(self) -> int:
        """At most how many items to take at once."""
        return self.batch_size

    def checkpoint_ready(self) -> bool:
        """Only when everything parsed was sent: the read position names that point."""
        return not self._ready and not self._splitting

    async def put(self, send: trio.MemorySendChannel[_T], item: _T) -> None:
        """Hand ``item`` to the source; kept for a restart until it is in the channel."""
        self._held.append(item)
        await send.send(item)
        self._held.clear()

    async def produce(self) -> None:
        await self._send_ready()
        if self._failure is not None:
            raise self._failure
        if self._input_ended:
            return
        if self._channel is None:
            self._channel = trio.open_memory_channel[_T](self.channel_capacity)
        send, receive = self._channel
        try:
            async with trio.open_nursery() as nursery:
                if not self._pump_done:
                    nursery.start_soon(self._run_pump, send)
                while not self._input_ended:
                    await self._take(receive)
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise single_error(group) from None
        receive.close()

    async def _run_pump(self, send: trio.MemorySendChannel[_T]) -> None:
        if self._held:
            await send.send(self._held[0])
            self._held.clear()
        await self.pump(send)
        self._pump_done = True
        await send.aclose()

    async def _send_ready(self) -> None:
        ready = self._ready
        while ready:
            records, dead, offsets = ready.popleft()
            await self.send_with_dead_letters(records, dead, offsets)
            del records

    async def _take(self, receive: trio.MemoryReceiveChannel[_T]) -> None:
        idle = math.inf if self.idle_timeout is None else self.idle_timeout
        items: list[_T] = []
        end = False
        # silence counts only while the graph runs: a pause moves the deadline on
        deadline, paused = trio.current_time() + idle, self.paused_time
        while not items and not end:
            with trio.move_on_at(deadline):
                try:
                    items.append(await receive.receive())
                except trio.EndOfChannel:
                    end = True
            now_paused = self.paused_time
            if now_paused <= paused:
                break
            deadline, paused = deadline + now_paused - paused, now_paused
        if not items and not end:
            await self.send_idle_tick()
            return
        limit = self.drain_limit()
        while not end and len(items) < limit:
            try:
                items.append(receive.receive_nowait())
            except trio.WouldBlock:
                break
            except trio.EndOfChannel:
                end = True
        records, dead, failure, offsets = self.parse(items, end)
        del items
        self._input_ended = end
        size = min(self.batch_size, self.fit(records))
        for start in range(0, max(len(records), 1 if dead else 0), size):
            where = None if offsets is None else offsets[start : start + size]
            self._ready.append((records[start : start + size], dead if start == 0 else [], where))
        del records
        self._failure = failure
        await self._send_ready()
        if failure is not None:
            raise failure


@attrs.define(eq=False)
class AsyncIterableSource(PumpedSource[Record]):
    """Reads records from an async iterable (an async generator, a channel, ...).

    A helper task iterates it into a bounded channel (``channel_capacity``
    records); the source sends what has arrived as one batch, so a fast
    iterable gives full batches and a slow one gives small batches without
    waiting for more.

    Example:
        >>> async def ticks():
        ...     for i in range(3):
        ...         yield {"i": i}
        >>> src = AsyncIterableSource("ticks", ticks())

    Args:
        name: unique within its graph.
        records: the async iterable of ``dict`` records.
        idle_timeout: seconds without a record before an idle tick.
    """

    records: AsyncIterable[Record]
    channel_capacity: int = attrs.field(default=1024, kw_only=True)

    async def pump(self, send: trio.MemorySendChannel[Record]) -> None:
        async for record in self.records:
            await self.put(send, record)

    def parse(self, items: list[Record], end: bool) -> Parsed:
        return items, [], None, None


def default_sizer() -> BatchSizer:
    """The adaptive batch size of partita's sources: 4096..16384 records.

    Within those bounds the kernel's sizer grows batches while throughput improves
    and the estimated latency stays under 50 ms (:class:`runtime.BatchSizer`); below
    a few thousand records the per-batch hop costs real throughput, so they start at
    the floor of that range.
    """
    return BatchSizer(minimum=4096, maximum=16384, initial=4096)
