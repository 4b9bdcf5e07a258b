"""Actors: owned state, a bounded inbox, and a loop that handles a batch at a time.

An actor's loop is ``receive → handle synchronously → send``.  Handlers
(:meth:`Actor.on_batch`, :meth:`Actor.on_watermark`, :meth:`Actor.on_end`)
are plain functions: they never ``await``, so a batch is handled whole, with
no await per record.  What they emit is buffered in an outbox and sent after
the handler returns; only then is the input message done.  That makes a
restart exact: a handler that raised emitted nothing, and its message is
handled again by the restarted actor; a send interrupted by a restart is
retried, never repeated.

The machinery behind that (wiring, outbox, alignment, pause, lifecycle) is a
private :class:`~partita.runtime._cell.ActorCell` each actor holds; the
supervisor reaches it with :func:`cell_of`, never through the user's class.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import ClassVar, Literal, cast

import attrs
import trio

from ._cell import ActorCell
from ._lifecycle import ActorState, Lifecycle
from ._mailbox import Mailbox
from ._messages import Barrier, Batch, Message, Record, Watermark
from ._stats import NO_REASON, ActorStats, ErrorReasons

__all__ = ["Actor", "AsyncActor", "Sink", "cell_of"]


class _LifecycleStateView:
    """``Actor.state``: the lifecycle state, a non-data descriptor so that a subclass's
    own ``state`` (an attrs field or a plain attribute) simply takes its place."""

    def __get__(self, actor: Actor | None, owner: type[Actor]) -> ActorState:
        if actor is None:
            raise AttributeError("state")
        return actor._cell.life.state


@attrs.define(eq=False)
class Actor:
    """Base class of every actor.

    Subclass it and override the handlers you need; keep the actor's state in
    its own attributes and (re)initialise it in :meth:`on_start`, which runs at
    every start and restart.  By default an actor forwards batches and
    watermarks unchanged.

    Example:
        >>> import attrs
        >>> @attrs.define(eq=False)
        ... class Doubler(Actor):
        ...     def on_batch(self, batch: Batch) -> None:
        ...         self.emit([{"x": r["x"] * 2} for r in batch.records])

    Args:
        name: unique within its graph; named in errors and stats.
    """

    name: str
    _cell: ActorCell = attrs.field(
        init=False, default=attrs.Factory(lambda self: self._make_cell(), takes_self=True)
    )
    rows_in: int = attrs.field(init=False, default=0)
    rows_out: int = attrs.field(init=False, default=0)
    rows_filtered: int = attrs.field(init=False, default=0)
    rows_late: int = attrs.field(init=False, default=0)
    rows_errored: int = attrs.field(init=False, default=0)
    batches_in: int = attrs.field(init=False, default=0)
    restarts: int = attrs.field(init=False, default=0)
    last_batch_size: int = attrs.field(init=False, default=0)
    _errors: ErrorReasons | None = attrs.field(init=False, default=None)

    _cell_type: ClassVar[type[ActorCell]] = ActorCell

    def _make_cell(self) -> ActorCell:
        return self._cell_type(self, Lifecycle(self.name))

    # ----------------------------------------------------------- handlers
    def on_start(self) -> None:
        """Called at every start and restart, before the first message: set up state."""

    def on_batch(self, batch: Batch) -> None:
        """Handle one batch; call :meth:`emit` for output.  Default: forward it."""
        self.emit_batch(batch)

    def on_watermark(self, ts: int) -> None:
        """The watermark over all inputs advanced to ``ts``.  Default: forward it."""
        self.emit_message(Watermark(ts))

    def on_barrier(self, barrier: Barrier) -> None:
        """Every input delivered ``barrier``, and :meth:`snapshot_state` was taken.

        The kernel forwards the barrier after this returns (behind whatever this
        emits).  Default: nothing.
        """

    def snapshot_state(self) -> object:
        """This actor's state as plain data, for a checkpoint.

        Called when a checkpoint's barrier has come on every input: the state
        must reflect exactly the records handled so far.  Return values of
        ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, and lists,
        tuples, dicts, sets and frozensets of them (see :func:`encode_state`); it
        is encoded before this actor handles anything else.  Default: ``None``
        (a stateless actor).

        Example:
            >>> import attrs
            >>> from partita import Actor, Batch
            >>> @attrs.define(eq=False)
            ... class Counter(Actor):
            ...     n: int = 0
            ...     def on_batch(self, batch: Batch) -> None:
            ...         self.n += len(batch.records)
            ...     def snapshot_state(self) -> object:
            ...         return self.n
            ...     def restore_state(self, state: object) -> None:
            ...         assert isinstance(state, int)
            ...         self.n = state
        """
        return None

    def state_nbytes(self) -> int:
        """Estimated bytes this actor's state holds, for :attr:`ActorStats.state_memory`.

        Called whenever stats are taken, so it must be cheap (sample, as
        :func:`estimate_state_nbytes` does).  Default: 0 (a stateless actor).
        """
        return 0

    def restore_state(self, state: object) -> None:
        """Take back what :meth:`snapshot_state` returned (recovery, before the graph runs).

        Default: nothing to restore.
        """

    def on_end(self) -> None:
        """Every input ended: emit what is left (final rows)."""

    async def flush(self) -> None:
        """After :meth:`on_end`'s output is sent: flush external resources (sinks)."""

    # ------------------------------------------------------------- emitting
    def emit(self, records: list[Record], output: int | None = None) -> None:
        """Emit ``records`` as one batch, to output ``output`` or to all outputs."""
        if records:
            self.emit_batch(Batch(records), output)

    def emit_batch(self, batch: Batch, output: int | None = None) -> None:
        """Emit a batch (keeping its offsets), to output ``output`` or to all outputs."""
        self.rows_out += len(batch.records)
        self._cell.outbox.append((-1 if output is None else output, batch))

    def emit_message(self, message: Message, output: int | None = None) -> None:
        """Emit any message, to output ``output`` or to all outputs."""
        self._cell.outbox.append((-1 if output is None else output, message))

    # ------------------------------------------------------------- counting
    def count_error(self, reason: str, n: int = 1) -> None:
        """Count ``n`` bad records under ``reason``: ``rows_errored`` grows by ``n``.

        :meth:`stats` reports the counts by reason (``errors_by_reason``), most
        frequent first; at most :data:`~partita.runtime.MAX_ERROR_REASONS` distinct
        reasons are kept and the rest counted as ``"other reasons"``, so a reason
        should name a kind of error (``"unparseable JSON"``), not one record.
        Nothing is allocated until the first error.

        Example:
            >>> actor = Actor("parse")
            >>> actor.count_error("unparseable JSON", 2)
            >>> actor.count_error("missing field 'ts'")
            >>> actor.rows_errored, actor.stats().errors_by_reason
            (3, (('unparseable JSON', 2), ("missing field 'ts'", 1)))
        """
        self.rows_errored += n
        errors = self._errors
        if errors is None:
            errors = self._errors = ErrorReasons()
        errors.add(reason, n)

    def set_error_reasons(self, counts: Mapping[str, int]) -> None:
        """Replace the counts by reason wholesale, for an actor that keeps its own
        (a compiled program's counts); ``rows_errored`` is left to the caller.

        Example:
            >>> actor = Actor("partition-0")
            >>> actor.rows_errored = 5
            >>> actor.set_error_reasons({"division by zero": 4})
            >>> actor.stats().errors_by_reason
            (('division by zero', 4), ('no reason given', 1))
        """
        errors = self._errors
        if errors is None:
            if not counts:
                return
            errors = self._errors = ErrorReasons()
        errors.replace(counts)

    @property
    def input_port(self) -> int:
        """Which input the message being handled came from: its index among the
        ``inputs`` the graph gave this actor, in that order (0 outside a handler).

        An actor joining two streams tells their batches apart by it.
        """
        current = self._cell.current
        return 0 if current is None else current[0]

    @property
    def outputs(self) -> int:
        """How many downstream actors this actor sends to."""
        return len(self._cell.outputs)

    # ------------------------------------------------------------ lifecycle
    @property
    def lifecycle_state(self) -> ActorState:
        """The lifecycle state (CREATED, RUNNING, ...): one attribute read."""
        return self._cell.life.state

    state = _LifecycleStateView()
    """The lifecycle state, as :attr:`lifecycle_state`, unless a subclass defines its
    own ``state`` attribute (the kernel never reads this one)."""

    async def wait_state(self, *states: ActorState) -> ActorState:
        """Wait until the actor is in one of ``states``."""
        return await self._cell.life.wait_state(*states)

    def pause(self) -> None:
        """Stop at the next batch boundary.  Idempotent.

        Raises:
            InvalidTransition: the actor already ended (completed, failed or cancelled).
        """
        self._cell.pause()

    def resume(self) -> None:
        """Carry on after :meth:`pause`.  Idempotent.

        Raises:
            InvalidTransition: the actor already ended.
        """
        self._cell.resume()

    @property
    def paused_time(self) -> float:
        """Seconds (trio's clock) this actor has been paused so far, a pause going on
        included: what an actor timing its input's silence leaves out."""
        return self._cell.paused_time()

    @property
    def paused(self) -> bool:
        """Whether a pause is in force."""
        return self._cell.pause_requested

    @property
    def _inbox(self) -> Mailbox | None:
        return self._cell.inbox

    # ---------------------------------------------------------------- stats
    @property
    def checkpointing(self) -> bool:
        """Whether this actor's graph takes checkpoints (known once it is wired to run):
        state a checkpoint alone needs is kept only then."""
        return self._cell.checkpoints is not None

    def stats(self) -> ActorStats:
        """A frozen snapshot of this actor's counters and inbox."""
        cell = self._cell
        box = cell.inbox.stats() if cell.inbox is not None else None
        return ActorStats(
            name=self.name,
            state=cell.life.state,
            rows_in=self.rows_in,
            rows_out=self.rows_out,
            rows_filtered=self.rows_filtered,
            rows_late=self.rows_late,
            rows_errored=self.rows_errored,
            batches_in=self.batches_in,
            items_buffered=box.items_buffered if box else 0,
            estimated_memory=box.estimated_memory if box else 0,
            high_water=box.high_water if box else 0,
            occupancy_p50=box.occupancy_p50 if box else 0,
            occupancy_p99=box.occupancy_p99 if box else 0,
            restarts=self.restarts,
            batch_size=cell.batch_size(),
            errors_by_reason=self._error_snapshot(),
            delivery=getattr(self, "delivery", None),
            watermark=cell.wm,
            occupancy_counts=box.occupancy_counts if box else (),
            state_memory=self.state_nbytes(),
        )

    def _error_snapshot(self) -> tuple[tuple[str, int], ...]:
        errors = self._errors
        if errors is None:
            return ((NO_REASON, self.rows_errored),) if self.rows_errored > 0 else ()
        return errors.snapshot(self.rows_errored)


@attrs.define(eq=False)
class _SinkCell(ActorCell):
    """A sink's cell: a batch is handed to :meth:`Sink.consume` (awaited).

    A barrier's snapshot waits for :meth:`Sink.commit_checkpoint` (awaited right
    after the barrier aligned, before anything else is handled), so a checkpoint
    commits only once the sink made its output up to the barrier durable.  Every
    run of the sink ends with :meth:`Sink.aclose`, however it ended.
    """

    sealing: deque[Barrier] = attrs.Factory(deque)

    async def take_batch(self, batch: Batch) -> None:
        sink = cast("Sink", self.actor)
        await sink.consume(batch)
        sink.rows_out += len(batch.records)

    def snapshot(self, barrier: Barrier) -> None:
        self.sealing.append(barrier)  # reported in send_pending, once committed

    async def send_pending(self) -> None:
        sealing = self.sealing
        while sealing:
            barrier = sealing[0]
            await cast("Sink", self.actor).commit_checkpoint(barrier.checkpoint_id)
            sealing.popleft()
            ActorCell.snapshot(self, barrier)
        await super().send_pending()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        sink = cast("Sink", self.actor)
        try:
            async with sink.open_session():
                await super().run(task_status=task_status)
        finally:
            with trio.CancelScope(shield=True):
                await sink.aclose()


@attrs.define(eq=False)
class Sink(Actor):
    """An actor at the end of a graph that writes batches somewhere, asynchronously.

    Override :meth:`consume` (one ``await`` per batch, never per record) and,
    if needed, :meth:`flush`.  Raise :class:`ConsumerGone` when the reader of
    the output went away; the supervisor then cancels the graph quietly.

    :attr:`delivery` says what a sink guarantees across a crash and a resume
    from a checkpoint: ``"exactly-once"`` when its :meth:`snapshot_state` records
    what it had written at the barrier and :meth:`restore_state` takes back what
    came after (a file cut back to its committed length); ``"at-least-once"``
    (the default) when rows written after the last checkpoint are written again.
    """

    _cell_type: ClassVar[type[ActorCell]] = _SinkCell
    delivery: ClassVar[Literal["exactly-once", "at-least-once"]] = "at-least-once"

    async def consume(self, batch: Batch) -> None:
        """Write one batch."""

    async def commit_checkpoint(self, checkpoint_id: int) -> None:
        """Barrier ``checkpoint_id`` came on every input: make durable what came before it.

        Called with checkpoints on, before this sink's :meth:`snapshot_state` is
        taken and reported, so checkpoint ``checkpoint_id`` can commit only after
        this returned: a transactional sink commits here, with the id, what it
        wrote since the last barrier.  Default: nothing.

        .. versionadded:: 0.1
        """

    def open_session(self) -> AbstractAsyncContextManager[object]:
        """What the sink holds for one run (a client, a pool), as an async context manager.

        Entered as each run of the sink starts (a start or a restart), exited as it
        ends: after :meth:`flush` when the run completed, and when it failed, was
        cancelled or is about to restart (then under that cancellation), before
        :meth:`aclose`.  Every :meth:`consume`, :meth:`commit_checkpoint` and
        :meth:`flush` of the run happens inside it and in the task that entered
        it, so a client bound to the task that enters it (coredis) can serve the
        whole run instead of one batch.  Default: nothing.

        Example:
            >>> import contextlib, attrs, trio
            >>> from partita.runtime import Sink
            >>> @attrs.define(eq=False)
            ... class Held(Sink):
            ...     @contextlib.asynccontextmanager
            ...     async def _session(self):
            ...         print("open")
            ...         yield
            ...         print("closed")
            ...     def open_session(self):
            ...         return self._session()
            >>> async def main() -> None:
            ...     async with Held("sink").open_session():
            ...         print("batches")
            >>> trio.run(main)
            open
            batches
            closed

        .. versionadded:: 0.1
        """
        return contextlib.nullcontext()

    async def aclose(self) -> None:
        """Release what the sink holds (a connection): its run ended, however it ended.

        Called after :meth:`flush` when the run completed, and when it failed, was
        cancelled, or is about to restart (a restarted sink starts afresh).  It
        runs shielded from cancellation: bound any wait in it.  Default: nothing.

        .. versionadded:: 0.1
        """


@attrs.define(eq=False)
class _AsyncCell(ActorCell):
    """An async actor's cell: a batch is handed to :meth:`AsyncActor.on_batch_async`."""

    async def take_batch(self, batch: Batch) -> None:
        await cast("AsyncActor", self.actor).on_batch_async(batch)


@attrs.define(eq=False)
class AsyncActor(Actor):
    """An actor whose batch handler awaits: one ``await`` per batch, never per record.

    Override :meth:`on_batch_async` to call out (an HTTP service, a database) while
    handling a batch; start any concurrent work in a nursery inside it, so that
    nothing outlives the batch.  While it runs the actor takes no other message:
    its inbox fills and upstream waits (backpressure).  What it emits is sent when
    it returns, as for :meth:`Actor.on_batch`: if it raises, nothing was emitted and
    a restart handles the batch again.  Watermarks, barriers and the end of the
    stream reach it between batches, as for any actor.

    Example:
        >>> import attrs, trio
        >>> @attrs.define(eq=False)
        ... class Slow(AsyncActor):
        ...     async def on_batch_async(self, batch: Batch) -> None:
        ...         await trio.sleep(0)
        ...         self.emit_batch(batch)
    """

    _cell_type: ClassVar[type[ActorCell]] = _AsyncCell

    async def on_batch_async(self, batch: Batch) -> None:
        """Handle one batch, awaiting as needed.  Default: :meth:`Actor.on_batch`."""
        self.on_batch(batch)


def cell_of(actor: Actor) -> ActorCell:
    """The kernel object that runs ``actor`` (the supervisor's one way in)."""
    return actor._cell
