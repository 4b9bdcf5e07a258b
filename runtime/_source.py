"""Sources: the actors that read from outside and cut batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, cast

import attrs
import trio

from ._actor import Actor
from ._batching import BatchSizer
from ._cell import ActorCell
from ._memory import MemoryBudget, keep_estimate
from ._messages import Barrier, Batch, Record, Watermark

__all__ = ["Source", "SourceCell"]


@attrs.define(eq=False)
class SourceCell(ActorCell):
    """A source's cell: its loop is :meth:`Source.produce`, stoppable and budgeted."""

    budget: MemoryBudget | None = None
    stop_scope: trio.CancelScope | None = None
    stop_requested: bool = False
    barrier_due: int | None = None  # a checkpoint's barrier to emit at the next boundary
    input_done: bool = False  # produce() returned: nothing more, barriers included
    rows_observed: int = 0  # the source's rows_in when the sizer last heard of it

    def request_barrier(self, checkpoint_id: int) -> None:
        """Emit ``Barrier(checkpoint_id)`` at the next batch boundary (the coordinator)."""
        self.barrier_due = checkpoint_id

    def _emit_due_barrier(self) -> None:
        """Snapshot the read position and put the barrier behind what was sent."""
        checkpoint_id = self.barrier_due
        if checkpoint_id is None:
            return
        self.barrier_due = None
        self.aligned(Barrier(checkpoint_id))
        self.commit()

    def stop(self) -> None:
        """Graceful cancellation: interrupt :meth:`Source.produce`."""
        self.stop_requested = True
        if self.stop_scope is not None:
            self.stop_scope.cancel()

    async def loop(self) -> None:
        if self.stop_requested:
            return
        with trio.CancelScope() as scope:
            self.stop_scope = scope
            await self.pause_point()
            await cast("Source", self.actor).produce()
        self.stop_scope = None
        self._emit_due_barrier()  # asked for while the input ended: before end-of-stream
        self.input_done = True

    async def deliver(self) -> None:
        self.commit()
        if self.barrier_due is not None and cast("Source", self.actor).checkpoint_ready():
            self._emit_due_barrier()
        # A pause asked for while produce() waited for input holds this batch back too.
        await self.pause_point()
        await self.send_pending()
        await self.pause_point()
        budget = self.budget
        sizer = cast("Source", self.actor).sizer
        if budget is not None and budget.under_pressure:
            sizer.shrink()
            await budget.wait_relieved()
        elif self.outputs:
            source = cast("Source", self.actor)
            records = source.rows_in - self.rows_observed
            self.rows_observed = source.rows_in
            if records > 0:
                queued = max(box.items for box, _ in self.outputs)
                sizer.observe(records, trio.current_time(), queued)

    def batch_size(self) -> int | None:
        return cast("Source", self.actor).sizer.size

    def restore(self, saved: object) -> None:
        super().restore(saved)
        source = cast("Source", self.actor)
        source._offset = source.rows_in  # the next record's offset, as before the crash
        self.rows_observed = source.rows_in


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

    Checkpoints: a source whose :meth:`snapshot_state` records its read position
    at a batch boundary (after everything it sent, before anything it did not)
    and whose :meth:`restore_state` goes back there sets :attr:`resumable`; a
    graph with checkpoints refuses a source that is not, with its
    :attr:`resume_hint` (how to make it resumable).

    Args:
        name: unique within its graph.
        sizer: the batch-size controller (default adaptive, 256..16384).
    """

    sizer: BatchSizer = attrs.field(factory=BatchSizer, kw_only=True)
    _offset: int = attrs.field(init=False, default=0)
    _cell_type: ClassVar[type[ActorCell]] = SourceCell
    resumable: ClassVar[bool] = False
    resume_hint: ClassVar[str] = "read from a file, or run without checkpoints"
    """What a graph with checkpoints that refuses this source suggests instead."""

    async def produce(self) -> None:
        """Read the input and :meth:`send_records` it.  Return at its end."""

    def checkpoint_ready(self) -> bool:
        """Whether what was sent so far ends at a position :meth:`snapshot_state` can name.

        A checkpoint's barrier waits for a batch boundary where this is true (a
        source that sends what it read in several batches says no until the last).
        Default: always.
        """
        return True

    @property
    def batch_size(self) -> int:
        """How many records the next batch should hold."""
        return self.sizer.size

    @property
    def stopping(self) -> bool:
        """Whether a graceful stop was asked for."""
        return cast(SourceCell, self._cell).stop_requested

    async def send_records(self, records: list[Record]) -> None:
        """Send ``records`` downstream as one batch at the next source offsets."""
        if not records:
            return
        self._emit_records(records)
        await cast(SourceCell, self._cell).deliver()

    def _emit_records(
        self,
        records: list[Record],
        output: int | None = None,
        offsets: Sequence[int] | None = None,
        *,
        nbytes: int | None = None,
    ) -> None:
        """Emit ``records`` as one batch and count them in.

        Their offsets are ``offsets`` (positions the source knows, such as line
        numbers) or else the next source offsets, counted from 0.  ``nbytes``: their
        memory estimate, when the source took it already (the batch keeps it).
        """
        n = len(records)
        start = self._offset
        self._offset = start + n
        self.rows_in += n
        self.batches_in += 1
        self.last_batch_size = n
        batch = Batch(records, range(start, start + n) if offsets is None else offsets)
        if nbytes is not None:
            keep_estimate(batch, nbytes)
        self.emit_batch(batch, output)

    async def send_batch(self, batch: Batch) -> None:
        """Send a prepared batch downstream (a batch boundary)."""
        self.emit_batch(batch)
        await cast(SourceCell, self._cell).deliver()

    async def send_watermark(self, ts: int) -> None:
        """Send a watermark to every output."""
        self.emit_message(Watermark(ts))
        await cast(SourceCell, self._cell).deliver()

    @property
    def memory_budget(self) -> MemoryBudget | None:
        """The graph's memory budget while it runs (``None`` without ``max_memory``)."""
        return cast(SourceCell, self._cell).budget

    async def deliver(self) -> None:
        """Send what was emitted (:meth:`emit_batch`, :meth:`emit_message`) since the
        last boundary, to the outputs it was emitted to: a batch boundary.

        Use it to send to one output only (``emit_message(msg, output=1)``, say a
        dead-letter output); :meth:`send_records` and :meth:`send_batch` call it.
        """
        await cast(SourceCell, self._cell).deliver()
