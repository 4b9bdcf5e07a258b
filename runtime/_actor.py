"""Actors: owned state, a bounded inbox, and a loop that handles a batch at a time.

An actor's loop is ``receive → handle synchronously → send``.  Handlers
(:meth:`Actor.on_batch`, :meth:`Actor.on_watermark`, :meth:`Actor.on_end`)
are plain functions: they never ``await``, so a batch is handled whole, with
no await per record.  What they emit is buffered in an outbox and sent after
the handler returns; only then is the input message done.  That makes a
restart exact: a handler that raised emitted nothing, and its message is
handled again by the restarted actor; a send interrupted by a restart is
retried, never repeated.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import attrs
import trio

from ._errors import ConsumerGone, InvalidTransition
from ._lifecycle import ActorState, Lifecycle
from ._mailbox import Mailbox
from ._messages import Barrier, Batch, EndOfStream, Message, Record, Watermark
from ._stats import NO_REASON, ActorStats, ErrorReasons

__all__ = ["Actor", "Sink"]

_S = ActorState
_Pending = tuple[Mailbox, int, Message]  # (target mailbox, its input port, message)


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
    _life: Lifecycle = attrs.field(
        init=False, default=attrs.Factory(lambda self: Lifecycle(self.name), takes_self=True)
    )
    _inbox: Mailbox | None = attrs.field(init=False, default=None)
    _outputs: list[tuple[Mailbox, int]] = attrs.field(init=False, factory=list)
    _n_inputs: int = attrs.field(init=False, default=0)
    _outbox: list[tuple[int, Message]] = attrs.field(init=False, factory=list)
    _pending: deque[_Pending] = attrs.field(init=False, factory=deque)
    _current: tuple[int, Message] | None = attrs.field(init=False, default=None)
    _ended: set[int] = attrs.field(init=False, factory=set)
    _input_wm: dict[int, int] = attrs.field(init=False, factory=dict)
    _wm: int | None = attrs.field(init=False, default=None)
    _barriers: dict[int, set[int]] = attrs.field(init=False, factory=dict)
    _pause_requested: bool = attrs.field(init=False, default=False)
    _resumed: trio.Event | None = attrs.field(init=False, default=None)
    _eos_queued: bool = attrs.field(init=False, default=False)
    rows_in: int = attrs.field(init=False, default=0)
    rows_out: int = attrs.field(init=False, default=0)
    rows_filtered: int = attrs.field(init=False, default=0)
    rows_late: int = attrs.field(init=False, default=0)
    rows_errored: int = attrs.field(init=False, default=0)
    batches_in: int = attrs.field(init=False, default=0)
    restarts: int = attrs.field(init=False, default=0)
    last_batch_size: int = attrs.field(init=False, default=0)
    _errors: ErrorReasons | None = attrs.field(init=False, default=None)

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
        """Every input delivered ``barrier``.  Default: forward it."""
        self.emit_message(barrier)

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
        self._outbox.append((-1 if output is None else output, batch))

    def emit_message(self, message: Message, output: int | None = None) -> None:
        """Emit any message, to output ``output`` or to all outputs."""
        self._outbox.append((-1 if output is None else output, message))

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
    def outputs(self) -> int:
        """How many downstream actors this actor sends to."""
        return len(self._outputs)

    # ------------------------------------------------------------ lifecycle
    @property
    def state(self) -> ActorState:
        """The lifecycle state: one attribute read."""
        return self._life.state

    async def wait_state(self, *states: ActorState) -> ActorState:
        """Wait until the actor is in one of ``states``."""
        return await self._life.wait_state(*states)

    def pause(self) -> None:
        """Stop at the next batch boundary.  Idempotent.

        Raises:
            InvalidTransition: the actor already ended (completed, failed or cancelled).
        """
        state = self._life.state
        if state is _S.RUNNING:
            self._life.transition(_S.PAUSED)
        elif state not in (_S.PAUSED, _S.CREATED, _S.DRAINING):
            raise InvalidTransition(self.name, str(state), str(_S.PAUSED))
        self._pause_requested = True

    def resume(self) -> None:
        """Carry on after :meth:`pause`.  Idempotent.

        Raises:
            InvalidTransition: the actor already ended.
        """
        state = self._life.state
        if state is _S.PAUSED:
            self._life.transition(_S.RUNNING)
        elif state not in (_S.RUNNING, _S.CREATED, _S.DRAINING):
            raise InvalidTransition(self.name, str(state), str(_S.RUNNING))
        self._pause_requested = False
        if self._resumed is not None:
            self._resumed.set()
            self._resumed = None

    @property
    def paused(self) -> bool:
        """Whether a pause is in force."""
        return self._pause_requested

    async def _pause_point(self) -> None:
        while self._pause_requested:
            if self._resumed is None:
                self._resumed = trio.Event()
            await self._resumed.wait()

    # -------------------------------------------------------------- running
    def _wire_output(self, mailbox: Mailbox, port: int) -> None:
        self._outputs.append((mailbox, port))

    def _wire_input(self, mailbox: Mailbox, n_inputs: int) -> None:
        self._inbox = mailbox
        self._n_inputs = n_inputs

    def _commit(self) -> None:
        """The handler succeeded: its outbox becomes pending output."""
        outputs = self._outputs
        pending = self._pending
        for index, message in self._outbox:
            if index < 0:
                for mailbox, port in outputs:
                    pending.append((mailbox, port, message))
            else:
                mailbox, port = outputs[index]
                pending.append((mailbox, port, message))
        self._outbox.clear()
        self._current = None

    async def _send_pending(self) -> None:
        pending = self._pending
        try:
            while pending:
                mailbox, port, message = pending[0]
                await mailbox.send(message, port)
                pending.popleft()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConsumerGone(self.name) from exc

    async def _run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        life = self._life
        life.transition(_S.RUNNING)
        if self._pause_requested:
            life.transition(_S.PAUSED)
        self._outbox.clear()
        self.on_start()
        task_status.started()
        await self._send_pending()
        await self._loop()
        await self._pause_point()
        if life.state is not _S.DRAINING:
            life.transition(_S.DRAINING)
        if not self._eos_queued:
            self.on_end()
            self.emit_message(EndOfStream())
            self._eos_queued = True
            self._commit()
        await self._send_pending()
        await self.flush()
        life.transition(_S.COMPLETED)

    async def _loop(self) -> None:
        inbox = self._inbox
        if inbox is None:
            return
        n_inputs = self._n_inputs
        while len(self._ended) < n_inputs:
            await self._pause_point()
            if self._current is None:
                self._current = await inbox.receive()
                await self._pause_point()
            port, message = self._current
            match message:
                case Batch():
                    await self._take_batch(message)
                    n = len(message.records)
                    self.rows_in += n
                    self.batches_in += 1
                    self.last_batch_size = n
                case Watermark(ts=ts):
                    self._input_watermark(port, ts)
                case Barrier():
                    self._input_barrier(port, message)
                case EndOfStream():
                    self._ended.add(port)
                    self._input_wm.pop(port, None)
                    self._advance_watermark()
                    self._release_barriers()
            self._commit()
            await self._send_pending()

    async def _take_batch(self, batch: Batch) -> None:
        self.on_batch(batch)

    def _input_watermark(self, port: int, ts: int) -> None:
        if self._n_inputs <= 1:
            if self._wm is None or ts > self._wm:
                self.on_watermark(ts)
                self._wm = ts  # after the handler: a crash in it retries the watermark
            return
        self._input_wm[port] = max(ts, self._input_wm.get(port, ts))
        self._advance_watermark()

    def _advance_watermark(self) -> None:
        live = self._n_inputs - len(self._ended)
        if live <= 0 or len(self._input_wm) < live:
            return
        low = min(self._input_wm.values())
        if self._wm is None or low > self._wm:
            self.on_watermark(low)
            self._wm = low

    def _input_barrier(self, port: int, barrier: Barrier) -> None:
        seen = self._barriers.setdefault(barrier.checkpoint_id, set())
        seen.add(port)
        if len(seen) >= self._n_inputs - len(self._ended - seen):
            self.on_barrier(barrier)
            del self._barriers[barrier.checkpoint_id]

    def _release_barriers(self) -> None:
        """An input ended: barriers every remaining input delivered are complete now."""
        for checkpoint_id in sorted(self._barriers):
            seen = self._barriers[checkpoint_id]
            if len(seen) >= self._n_inputs - len(self._ended - seen):
                self.on_barrier(Barrier(checkpoint_id))
                del self._barriers[checkpoint_id]

    def _fail(self) -> None:
        if self._life.state in (_S.CREATED, _S.RUNNING, _S.PAUSED, _S.DRAINING):
            self._life.transition(_S.FAILED)

    def _cancelled(self) -> None:
        if self._life.state in (_S.CREATED, _S.RUNNING, _S.PAUSED, _S.DRAINING):
            self._life.transition(_S.CANCELLED)

    def _restart(self) -> None:
        self._life.transition(_S.CREATED)
        # What the failed handler emitted is discarded, so it was never output.
        for _, message in self._outbox:
            if isinstance(message, Batch):
                self.rows_out -= len(message.records)
        self._outbox.clear()
        self.restarts += 1

    # ---------------------------------------------------------------- stats
    def _batch_size(self) -> int | None:
        return self.last_batch_size

    def stats(self) -> ActorStats:
        """A frozen snapshot of this actor's counters and inbox."""
        box = self._inbox.stats() if self._inbox is not None else None
        return ActorStats(
            name=self.name,
            state=self._life.state,
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
            batch_size=self._batch_size(),
            errors_by_reason=self._error_snapshot(),
        )

    def _error_snapshot(self) -> tuple[tuple[str, int], ...]:
        errors = self._errors
        if errors is None:
            return ((NO_REASON, self.rows_errored),) if self.rows_errored > 0 else ()
        return errors.snapshot(self.rows_errored)


@attrs.define(eq=False)
class Sink(Actor):
    """An actor at the end of a graph that writes batches somewhere, asynchronously.

    Override :meth:`consume` (one ``await`` per batch, never per record) and,
    if needed, :meth:`flush`.  Raise :class:`ConsumerGone` when the reader of
    the output went away; the supervisor then cancels the graph quietly.
    """

    async def consume(self, batch: Batch) -> None:
        """Write one batch."""

    async def _take_batch(self, batch: Batch) -> None:
        await self.consume(batch)
        self.rows_out += len(batch.records)
