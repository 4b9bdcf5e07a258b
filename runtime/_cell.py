"""The kernel's side of an actor: wiring, outbox, input alignment, pause and lifecycle.

A user's :class:`~partita.runtime.Actor` holds handlers, ``emit*`` and counters;
everything the supervisor drives lives here, in one private object the actor
holds (``cell_of(actor)``), so the kernel never reaches into a user's class and
a subclass may use any attribute name it likes.

The loop is ``receive → handle synchronously → send``.  What a handler emits
is buffered in the outbox and becomes pending output only when the handler
returned (:meth:`ActorCell.commit`); a send interrupted by a restart is
retried, never repeated.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

import attrs
import trio

from ._errors import CheckpointCorrupt, ConsumerGone, InvalidTransition
from ._lifecycle import ActorState, Lifecycle
from ._mailbox import Mailbox
from ._messages import Barrier, Batch, EndOfStream, Idle, Message, Watermark

__all__ = ["ActorCell", "Handlers"]

_S = ActorState
_LIVE_OR_NEW = (_S.CREATED, _S.RUNNING, _S.PAUSED, _S.DRAINING)
_Pending = tuple[Mailbox, int, Message]  # (target mailbox, its input port, message)


class Reporter(Protocol):
    """Where an actor's snapshots go (the checkpoint coordinator)."""

    def report(self, checkpoint_id: int, actor: str, state: object) -> None: ...


class Handlers(Protocol):
    """What the cell calls on its actor: the handlers and the counters it keeps."""

    name: str
    rows_in: int
    rows_out: int
    batches_in: int
    last_batch_size: int
    restarts: int

    def on_start(self) -> None: ...
    def on_batch(self, batch: Batch) -> None: ...
    def on_watermark(self, ts: int) -> None: ...
    def on_barrier(self, barrier: Barrier) -> None: ...
    def on_end(self) -> None: ...
    def snapshot_state(self) -> object: ...
    def restore_state(self, state: object) -> None: ...
    async def flush(self) -> None: ...


def _clock() -> float | None:
    """trio's clock, or ``None`` outside a run (an actor paused before it runs)."""
    try:
        return trio.current_time()
    except RuntimeError:
        return None


@attrs.define(eq=False)
class ActorCell:
    """The running machinery of one actor; see the module docstring."""

    actor: Handlers
    life: Lifecycle
    inbox: Mailbox | None = None
    outputs: list[tuple[Mailbox, int]] = attrs.Factory(list)
    n_inputs: int = 0
    outbox: list[tuple[int, Message]] = attrs.Factory(list)
    pending: deque[_Pending] = attrs.Factory(deque)
    current: tuple[int, Message] | None = None
    ended: set[int] = attrs.Factory(set)
    input_wm: dict[int, int] = attrs.Factory(dict)
    idle: set[int] = attrs.Factory(set)  # inputs left out of the least watermark
    wm: int | None = None
    barriers: dict[int, set[int]] = attrs.Factory(dict)
    # alignment: inputs that delivered a barrier the others have not, and what they
    # sent behind it, held back until it is aligned (then handled first, in order)
    blocked: set[int] = attrs.Factory(set)
    held: deque[tuple[int, Message]] = attrs.Factory(deque)
    replay: deque[tuple[int, Message]] = attrs.Factory(deque)
    checkpoints: Reporter | None = None
    pause_requested: bool = False
    resumed: trio.Event | None = None
    # the time spent paused (trio's clock): a paused actor's silence is not its input's
    paused_total: float = 0.0
    paused_since: float | None = None
    eos_queued: bool = False

    @property
    def state(self) -> ActorState:
        return self.life.state

    # ---------------------------------------------------------------- wiring
    def wire_output(self, mailbox: Mailbox, port: int) -> None:
        self.outputs.append((mailbox, port))

    def wire_input(self, mailbox: Mailbox, n_inputs: int) -> None:
        self.inbox = mailbox
        self.n_inputs = n_inputs

    # ----------------------------------------------------------------- pause
    def pause(self) -> None:
        state = self.life.state
        if state is _S.RUNNING:
            self.life.transition(_S.PAUSED)
        elif state not in (_S.PAUSED, _S.CREATED, _S.DRAINING):
            raise InvalidTransition(self.actor.name, str(state), str(_S.PAUSED))
        if not self.pause_requested:
            self.paused_since = _clock()
        self.pause_requested = True

    def resume(self) -> None:
        state = self.life.state
        if state is _S.PAUSED:
            self.life.transition(_S.RUNNING)
        elif state not in (_S.RUNNING, _S.CREATED, _S.DRAINING):
            raise InvalidTransition(self.actor.name, str(state), str(_S.RUNNING))
        since, now = self.paused_since, _clock()
        if since is not None and now is not None:
            self.paused_total += now - since
        self.paused_since = None
        self.pause_requested = False
        if self.resumed is not None:
            self.resumed.set()
            self.resumed = None

    def paused_time(self) -> float:
        """Seconds paused so far, the pause going on included."""
        since, now = self.paused_since, _clock()
        return self.paused_total + (0.0 if since is None or now is None else now - since)

    async def pause_point(self) -> None:
        while self.pause_requested:
            if self.resumed is None:
                self.resumed = trio.Event()
            await self.resumed.wait()

    # --------------------------------------------------------------- output
    def commit(self) -> None:
        """The handler succeeded: its outbox becomes pending output."""
        outputs = self.outputs
        pending = self.pending
        for index, message in self.outbox:
            if index < 0:
                for mailbox, port in outputs:
                    pending.append((mailbox, port, message))
            else:
                mailbox, port = outputs[index]
                pending.append((mailbox, port, message))
        self.outbox.clear()
        self.current = None

    async def send_pending(self) -> None:
        pending = self.pending
        try:
            while pending:
                mailbox, port, message = pending[0]
                await mailbox.send(message, port)
                pending.popleft()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConsumerGone(self.actor.name) from exc

    # -------------------------------------------------------------- running
    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the actor once (a start or a restart) until it completes."""
        life = self.life
        actor = self.actor
        life.transition(_S.RUNNING)
        if self.pause_requested:
            life.transition(_S.PAUSED)
        self.outbox.clear()
        actor.on_start()
        task_status.started()
        await self.send_pending()
        await self.loop()
        await self.pause_point()
        if life.state is not _S.DRAINING:
            life.transition(_S.DRAINING)
        if not self.eos_queued:
            actor.on_end()
            self.outbox.append((-1, EndOfStream()))
            self.eos_queued = True
            self.commit()
        await self.send_pending()
        await actor.flush()
        life.transition(_S.COMPLETED)

    async def loop(self) -> None:
        inbox = self.inbox
        if inbox is None:
            return
        actor = self.actor
        n_inputs = self.n_inputs
        blocked = self.blocked
        replay = self.replay
        while len(self.ended) < n_inputs:
            await self.pause_point()
            if self.current is None:
                if replay:
                    self.current = replay.popleft()
                else:
                    self.current = await inbox.receive()
                    await self.pause_point()
            port, message = self.current
            if blocked and port in blocked:
                self.held.append(self.current)  # behind a barrier not aligned yet
                self.current = None
                continue
            match message:
                case Batch():
                    await self.take_batch(message)
                    n = len(message.records)
                    actor.rows_in += n
                    actor.batches_in += 1
                    actor.last_batch_size = n
                case Watermark(ts=ts):
                    self._input_watermark(port, ts)
                case Barrier():
                    self._input_barrier(port, message)
                case Idle():
                    self._input_idle(port)
                case EndOfStream():
                    self.ended.add(port)
                    self.input_wm.pop(port, None)
                    self._advance_watermark()
                    self._release_barriers()
            self.commit()
            await self.send_pending()

    async def take_batch(self, batch: Batch) -> None:
        self.actor.on_batch(batch)

    def _input_watermark(self, port: int, ts: int) -> None:
        if self.n_inputs <= 1:
            if self.wm is None or ts > self.wm:
                self.actor.on_watermark(ts)
                self.wm = ts  # after the handler: a crash in it retries the watermark
            return
        self.idle.discard(port)
        self.input_wm[port] = max(ts, self.input_wm.get(port, ts))
        self._advance_watermark()

    def _input_idle(self, port: int) -> None:
        """Input ``port`` is idle: left out of the least watermark until it sends one."""
        if self.n_inputs <= 1 or port in self.idle:
            return
        self.idle.add(port)
        self.input_wm.pop(port, None)
        self._advance_watermark()

    def _advance_watermark(self) -> None:
        live = self.n_inputs - len(self.ended | self.idle)
        if live <= 0 or len(self.input_wm) < live:
            return
        low = min(self.input_wm.values())
        if self.wm is None or low > self.wm:
            self.actor.on_watermark(low)
            self.wm = low

    def _input_barrier(self, port: int, barrier: Barrier) -> None:
        seen = self.barriers.setdefault(barrier.checkpoint_id, set())
        seen.add(port)
        if len(seen) >= self.n_inputs - len(self.ended - seen):
            del self.barriers[barrier.checkpoint_id]
            self.aligned(barrier)
        else:
            self.blocked.add(port)

    def _release_barriers(self) -> None:
        """An input ended: barriers every remaining input delivered are complete now."""
        for checkpoint_id in sorted(self.barriers):
            seen = self.barriers[checkpoint_id]
            if len(seen) >= self.n_inputs - len(self.ended - seen):
                del self.barriers[checkpoint_id]
                self.aligned(Barrier(checkpoint_id))

    def aligned(self, barrier: Barrier) -> None:
        """Every input delivered ``barrier``: snapshot, tell the actor, forward it.

        Everything before the barrier on every input has been handled and nothing
        after it, so the snapshot is this actor's part of a consistent cut.  What
        the blocked inputs sent meanwhile is handled next, before new input.
        """
        actor = self.actor
        if self.checkpoints is not None:
            self.snapshot(barrier)
        actor.on_barrier(barrier)
        self.outbox.append((-1, barrier))
        if self.blocked:
            self.blocked.clear()
            held = self.held
            self.replay.extendleft(reversed(held))
            held.clear()

    # ----------------------------------------------------------- checkpoints
    def snapshot(self, barrier: Barrier) -> None:
        """Report the actor's state for ``barrier`` to the coordinator (checkpoints on)."""
        actor = self.actor
        assert self.checkpoints is not None
        saved = {"state": actor.snapshot_state(), "counts": self._counts()}
        self.checkpoints.report(barrier.checkpoint_id, actor.name, saved)

    _COUNTERS = ("rows_in", "rows_out", "rows_filtered", "rows_late", "rows_errored", "batches_in")

    def _counts(self) -> list[int]:
        actor = self.actor
        return [getattr(actor, name) for name in self._COUNTERS]

    def restore(self, saved: object) -> None:
        """Take back what :meth:`aligned` reported: the actor's state and its counters.

        Raises:
            CheckpointCorrupt: ``saved`` is not what a cell reports.
        """
        if not isinstance(saved, dict) or set(saved) != {"state", "counts"}:
            raise CheckpointCorrupt(
                f"the state of actor {self.actor.name!r}", "not the {state, counts} a cell saves"
            )
        counts = saved["counts"]
        if not (
            isinstance(counts, list)
            and len(counts) == len(self._COUNTERS)
            and all(type(c) is int for c in counts)
        ):
            raise CheckpointCorrupt(
                f"the counters of actor {self.actor.name!r}", f"expected 6 ints, got {counts!r}"
            )
        for name, value in zip(self._COUNTERS, counts, strict=True):
            setattr(self.actor, name, value)
        self.actor.restore_state(saved["state"])

    # ----------------------------------------------------- supervisor's side
    def fail(self) -> None:
        if self.life.state in _LIVE_OR_NEW:
            self.life.transition(_S.FAILED)

    def cancelled(self) -> None:
        if self.life.state in _LIVE_OR_NEW:
            self.life.transition(_S.CANCELLED)

    def restart(self) -> None:
        self.life.transition(_S.CREATED)
        # What the failed handler emitted is discarded, so it was never output.
        actor = self.actor
        for _, message in self.outbox:
            if isinstance(message, Batch):
                actor.rows_out -= len(message.records)
        self.outbox.clear()
        actor.restarts += 1

    def batch_size(self) -> int | None:
        return self.actor.last_batch_size
