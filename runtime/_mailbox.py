"""The bounded mailbox in front of every actor that receives."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import outcome
import trio

from ._errors import MemoryLimitExceeded
from ._memory import MemoryBudget, estimate_nbytes
from ._messages import Message
from ._stats import MailboxStats, OccupancyHistogram

__all__ = ["Mailbox"]

_Item = tuple[int, Message, int]  # (input port, message, estimated bytes)


class _Parked:
    """A ``send`` waiting its turn: for memory room first (unreserved), then for a slot."""

    __slots__ = ("item", "reserved", "task")

    def __init__(self, item: _Item, task: trio.lowlevel.Task, reserved: bool) -> None:
        self.item = item
        self.task = task
        self.reserved = reserved


class Mailbox:
    """A bounded trio memory channel plus accounting.

    ``send`` waits while the mailbox is full: that wait is backpressure, and
    it reaches the source.  Items carry the input port they arrived on, so an
    actor with several inputs knows which one sent what.  Accounting: items
    buffered (exact, from the channel), estimated bytes (``estimate``, by default
    :func:`estimate_nbytes`, taken once per send and reserved before it, so a
    blocked sender's message counts too), an occupancy histogram
    sampled at every send, and the high-water mark.

    Senders are served in the order they came, as trio's channels do:
    ``send`` is ``send_nowait`` plus parking on ``trio.WouldBlock``, and
    ``send_nowait`` raises ``trio.WouldBlock`` while an earlier sender is
    parked (on a full mailbox or on the memory budget), so nothing overtakes
    a waiting message.  Parked senders reserve their bytes in that order too.

    Example:
        >>> async def demo():
        ...     box = Mailbox("sink", capacity=2)
        ...     await box.send(Watermark(5))
        ...     return await box.receive()
        >>> trio.run(demo)
        (0, Watermark(ts=5))
    """

    def __init__(
        self,
        owner: str,
        capacity: int,
        *,
        budget: MemoryBudget | None = None,
        estimate: Callable[[Message], int] = estimate_nbytes,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be >= 1, got {capacity}")
        self.owner = owner
        self.capacity = capacity
        self._budget = budget
        self._estimate = estimate
        if budget is not None:
            budget.join()
        self._tx, self._rx = trio.open_memory_channel[_Item](capacity)
        self.nbytes = 0
        self.high_water = 0
        self.sent = 0
        self.received = 0
        self._histogram = OccupancyHistogram(capacity)
        self._parked: deque[_Parked] = deque()
        self._closed = False

    @property
    def items(self) -> int:
        """Messages buffered now."""
        return self._rx.statistics().current_buffer_used

    def _fits(self, nbytes: int) -> bool:
        """Whether the budget lets ``nbytes`` more in now (raises by its policy)."""
        budget = self._budget
        return budget is None or budget.check(self.owner, self.nbytes, nbytes)

    def _reserve(self, nbytes: int) -> None:
        self.nbytes += nbytes
        if self._budget is not None:
            self._budget.update(self.owner, self.nbytes, nbytes)

    def _release(self, nbytes: int) -> None:
        self.nbytes -= nbytes
        budget = self._budget
        if budget is not None:
            budget.update(self.owner, self.nbytes, -nbytes)
        if self._parked:
            self._admit()
        if budget is not None:
            budget.room_freed()  # this mailbox's senders first, then the others'

    def _sync_waiting(self) -> None:
        """Tell the budget whether a sender here waits for room (it is then the last)."""
        budget = self._budget
        if budget is None:
            return
        parked = self._parked
        if parked and not parked[-1].reserved:
            budget.wait_for_room(self, self._admit)
        else:
            budget.stop_waiting(self)

    def _sent(self) -> None:
        self.sent += 1
        items = self.items
        self._histogram.record(items)
        if items > self.high_water:
            self.high_water = items

    def _offer(self, item: _Item) -> bool:
        """Buffer ``item`` now if it may go in ahead of nobody; ``False`` if it must wait."""
        if self._closed:
            raise trio.BrokenResourceError
        parked = self._parked
        # Behind a sender waiting for memory room, wait too; the budget's verdict (which
        # may raise) is taken when this sender's turn for memory comes, as in `send`.
        if parked and not parked[-1].reserved:
            return False
        if not self._fits(item[2]) or parked:
            return False
        try:
            self._tx.send_nowait(item)
        except trio.WouldBlock:
            return False
        self._reserve(item[2])
        self._sent()
        return True

    def _admit(self) -> None:
        """Let parked senders in, in order: reserve while the budget allows, enter while there
        is a slot.  Called whenever bytes or a slot were freed."""
        parked = self._parked
        index = 0
        while index < len(parked):
            waiter = parked[index]
            if not waiter.reserved:
                try:
                    fits = self._fits(waiter.item[2])
                except MemoryLimitExceeded as exc:  # larger than a whole share: never fits
                    del parked[index]
                    trio.lowlevel.reschedule(waiter.task, outcome.Error(exc))
                    continue
                if not fits:
                    self._sync_waiting()
                    return
                waiter.reserved = True
                self._reserve(waiter.item[2])
            if index == 0:
                try:
                    self._tx.send_nowait(waiter.item)
                except trio.WouldBlock:
                    index += 1
                    continue
                parked.popleft()
                self._sent()
                trio.lowlevel.reschedule(waiter.task)
                continue
            index += 1
        self._sync_waiting()

    def send_nowait(self, message: Message, port: int = 0) -> None:
        """Buffer ``message`` now or raise ``trio.WouldBlock``.

        It would block when the mailbox is full, when the memory budget has no room
        (policy ``"wait"``), or when an earlier ``send`` is still parked.

        Raises:
            MemoryLimitExceeded: the graph's memory budget forbids it.
            trio.BrokenResourceError: the receiving side was closed.
        """
        if not self._offer((port, message, self._estimate(message))):
            raise trio.WouldBlock

    async def send(self, message: Message, port: int = 0) -> None:
        """Buffer ``message``, waiting while the mailbox is full (or the budget has no room).

        Waiting senders go in in the order they came.  Like every trio primitive,
        a cancelled ``send`` did not send.

        Raises:
            MemoryLimitExceeded: the graph's memory budget forbids it.
            trio.BrokenResourceError: the receiving side was closed.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        item = (port, message, self._estimate(message))
        if self._offer(item):
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        parked = self._parked
        # Reserve now only if nobody ahead is still waiting for memory room (order).
        reserve = (not parked or parked[-1].reserved) and self._fits(item[2])
        waiter = _Parked(item, trio.lowlevel.current_task(), reserve)
        if reserve:
            self._reserve(item[2])
        parked.append(waiter)
        self._sync_waiting()

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            parked.remove(waiter)
            if waiter.reserved:
                self._release(waiter.item[2])  # and let the next ones in
            else:
                self._admit()
            self._sync_waiting()
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

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
        """Close the receiving side: senders, parked ones too, get ``trio.BrokenResourceError``."""
        self._closed = True
        self._rx.close()
        parked, self._parked = self._parked, deque()
        if self._budget is not None:
            self._budget.stop_waiting(self)
        for waiter in parked:
            if waiter.reserved:
                self._release(waiter.item[2])
            trio.lowlevel.reschedule(waiter.task, outcome.Error(trio.BrokenResourceError()))

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` if the bookkeeping contradicts itself (for tests).

        Parked senders that reserved their bytes come first; nothing parked could go
        in now (a slot and the budget would allow it); the bytes add up.
        """
        parked = list(self._parked)
        reserved = [waiter.reserved for waiter in parked]
        _check(reserved == sorted(reserved, reverse=True), "a reservation overtook a sender")
        held = sum(waiter.item[2] for waiter in parked if waiter.reserved)
        _check(0 <= held <= self.nbytes, f"parked senders hold {held} of {self.nbytes} bytes")
        if parked and parked[0].reserved:
            _check(self.items == self.capacity, "a reserved sender is parked with a slot free")
        budget = self._budget
        waiting = [waiter for waiter in parked if not waiter.reserved]
        if waiting:
            _check(budget is not None, "a sender waits for memory room without a budget")
            assert budget is not None
            nbytes = waiting[0].item[2]
            _check(not budget.fits(self.nbytes, nbytes), "a sender waits though its bytes fit")

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
            occupancy_counts=tuple(hist.counts),
        )


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(f"mailbox: {message}")
