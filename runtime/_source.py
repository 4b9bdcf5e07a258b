"""Sources: the actors that read from outside and cut batches."""

from __future__ import annotations

import attrs
import trio

from ._actor import Actor
from ._batching import BatchSizer
from ._memory import MemoryBudget
from ._messages import Batch, Record, Watermark

__all__ = ["Source"]


@attrs.define(eq=False)
class Source(Actor):
    """Base class of actors with no input that produce batches.

    Override :meth:`produce`: read from wherever the data is and call
    :meth:`send_records` with about :attr:`batch_size` records at a time.
    Every send is a batch boundary: a pause takes effect there, backpressure
    holds the source there (a full mailbox, or memory pressure), and the
    adaptive :class:`BatchSizer` learns there.  Stopping a source (graceful
    cancellation) interrupts :meth:`produce`; what it had handed over is still
    delivered, then end-of-stream follows.  A restarted source's
    :meth:`produce` is called again: keep the read position in ``self`` to go
    on where it stopped.

    Args:
        name: unique within its graph.
        sizer: the batch-size controller (default adaptive, 256..16384).
    """

    sizer: BatchSizer = attrs.field(factory=BatchSizer, kw_only=True)
    _offset: int = attrs.field(init=False, default=0)
    _budget: MemoryBudget | None = attrs.field(init=False, default=None)
    _stop_scope: trio.CancelScope | None = attrs.field(init=False, default=None)
    _stop_requested: bool = attrs.field(init=False, default=False)

    async def produce(self) -> None:
        """Read the input and :meth:`send_records` it.  Return at its end."""

    @property
    def batch_size(self) -> int:
        """How many records the next batch should hold."""
        return self.sizer.size

    @property
    def stopping(self) -> bool:
        """Whether a graceful stop was asked for."""
        return self._stop_requested

    async def send_records(self, records: list[Record]) -> None:
        """Send ``records`` downstream as one batch at the next source offsets."""
        if not records:
            return
        self._emit_records(records)
        await self._deliver()

    def _emit_records(self, records: list[Record], output: int | None = None) -> None:
        """Emit ``records`` as one batch at the next source offsets, and count them in."""
        n = len(records)
        start = self._offset
        self._offset = start + n
        self.rows_in += n
        self.batches_in += 1
        self.last_batch_size = n
        self.emit_batch(Batch(records, range(start, start + n)), output)

    async def send_batch(self, batch: Batch) -> None:
        """Send a prepared batch downstream (a batch boundary)."""
        self.emit_batch(batch)
        await self._deliver()

    async def send_watermark(self, ts: int) -> None:
        """Send a watermark to every output."""
        self.emit_message(Watermark(ts))
        await self._deliver()

    @property
    def memory_budget(self) -> MemoryBudget | None:
        """The graph's memory budget while it runs (``None`` without ``max_memory``)."""
        return self._budget

    async def deliver(self) -> None:
        """Send what was emitted (:meth:`emit_batch`, :meth:`emit_message`) since the
        last boundary, to the outputs it was emitted to: a batch boundary.

        Use it to send to one output only (``emit_message(msg, output=1)``, say a
        dead-letter output); :meth:`send_records` and :meth:`send_batch` call it.
        """
        await self._deliver()

    async def _deliver(self) -> None:
        self._commit()
        # A pause asked for while produce() waited for input holds this batch back too.
        await self._pause_point()
        await self._send_pending()
        await self._pause_point()
        budget = self._budget
        if budget is not None and budget.under_pressure:
            self.sizer.shrink()
            await budget.wait_relieved()
        elif self._outputs:
            fill = max(box.items / box.capacity for box, _ in self._outputs)
            self.sizer.observe(fill)

    def _stop(self) -> None:
        self._stop_requested = True
        if self._stop_scope is not None:
            self._stop_scope.cancel()

    async def _loop(self) -> None:
        if self._stop_requested:
            return
        with trio.CancelScope() as scope:
            self._stop_scope = scope
            await self._pause_point()
            await self.produce()
        self._stop_scope = None

    def _batch_size(self) -> int | None:
        return self.sizer.size
