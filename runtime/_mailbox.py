"""The bounded mailbox in front of every actor that receives."""

from __future__ import annotations

import trio

from ._memory import MemoryBudget, estimate_nbytes
from ._messages import Message
from ._stats import MailboxStats, OccupancyHistogram

__all__ = ["Mailbox"]

_Item = tuple[int, Message, int]  # (input port, message, estimated bytes)


class Mailbox:
    """A bounded trio memory channel plus accounting.

    ``send`` waits while the mailbox is full: that wait is backpressure, and
    it reaches the source.  Items carry the input port they arrived on, so an
    actor with several inputs knows which one sent what.  Accounting: items
    buffered (exact, from the channel), estimated bytes (reserved before the
    send, so a blocked sender's message counts too), an occupancy histogram
    sampled at every send, and the high-water mark.

    Example:
        >>> async def demo():
        ...     box = Mailbox("sink", capacity=2)
        ...     await box.send(Watermark(5))
        ...     return await box.receive()
        >>> trio.run(demo)
        (0, Watermark(ts=5))
    """

    def __init__(self, owner: str, capacity: int, *, budget: MemoryBudget | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be >= 1, got {capacity}")
        self.owner = owner
        self.capacity = capacity
        self._budget = budget
        if budget is not None:
            budget.join()
        self._tx, self._rx = trio.open_memory_channel[_Item](capacity)
        self.nbytes = 0
        self.high_water = 0
        self.sent = 0
        self.received = 0
        self._histogram = OccupancyHistogram(capacity)
        self._room: trio.Event | None = None

    @property
    def items(self) -> int:
        """Messages buffered now."""
        return self._rx.statistics().current_buffer_used

    def _reserve(self, nbytes: int) -> None:
        self.nbytes += nbytes
        if self._budget is not None:
            self._budget.update(self.owner, self.nbytes, nbytes)

    def _release(self, nbytes: int) -> None:
        self.nbytes -= nbytes
        if self._budget is not None:
            self._budget.update(self.owner, self.nbytes, -nbytes)
        if self._room is not None:
            self._room.set()
            self._room = None

    def _sent(self) -> None:
        self.sent += 1
        items = self.items
        self._histogram.record(items)
        if items > self.high_water:
            self.high_water = items

    def send_nowait(self, message: Message, port: int = 0) -> None:
        """Buffer ``message`` now or raise ``trio.WouldBlock`` (full, or no memory room)."""
        nbytes = estimate_nbytes(message)
        if self._budget is not None and not self._budget.check(self.owner, self.nbytes, nbytes):
            raise trio.WouldBlock
        self._tx.send_nowait((port, message, nbytes))
        self._reserve(nbytes)
        self._sent()

    async def send(self, message: Message, port: int = 0) -> None:
        """Buffer ``message``, waiting while the mailbox is full.

        Like every trio primitive, a cancelled ``send`` did not send.

        Raises:
            MemoryLimitExceeded: the graph's memory budget forbids it.
            trio.BrokenResourceError: the receiving side was closed.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        nbytes = estimate_nbytes(message)
        budget = self._budget
        if budget is not None:
            while not budget.check(self.owner, self.nbytes, nbytes):
                if self._room is None:
                    self._room = trio.Event()
                await self._room.wait()
        item = (port, message, nbytes)
        self._reserve(nbytes)
        try:
            self._tx.send_nowait(item)
        except trio.WouldBlock:
            try:
                await self._tx.send(item)
            except BaseException:
                self._release(nbytes)
                raise
            self._sent()
            return
        except BaseException:
            self._release(nbytes)
            raise
        self._sent()
        await trio.lowlevel.cancel_shielded_checkpoint()

    def receive_nowait(self) -> tuple[int, Message]:
        """Take the next ``(port, message)`` now or raise ``trio.WouldBlock``."""
        port, message, nbytes = self._rx.receive_nowait()
        self.received += 1
        self._release(nbytes)
        return port, message

    async def receive(self) -> tuple[int, Message]:
        """Take the next ``(port, message)``, waiting while the mailbox is empty.

        Raises:
            trio.EndOfChannel: the mailbox was closed for sending and is empty.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            port, message, nbytes = self._rx.receive_nowait()
        except trio.WouldBlock:
            port, message, nbytes = await self._rx.receive()
            self.received += 1
            self._release(nbytes)
            return port, message
        self.received += 1
        self._release(nbytes)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return port, message

    def close(self) -> None:
        """Close the receiving side: senders get ``trio.BrokenResourceError``."""
        self._rx.close()

    def stats(self) -> MailboxStats:
        """A frozen snapshot of the accounting."""
        hist = self._histogram
        return MailboxStats(
            capacity=self.capacity,
            items_buffered=self.items,
            estimated_memory=self.nbytes,
            high_water=self.high_water,
            occupancy_p50=hist.percentile(0.5),
            occupancy_p99=hist.percentile(0.99),
            sent=self.sent,
            received=self.received,
        )
