"""The router: runs a query's routing stage at the source side of a SQL graph."""

from __future__ import annotations

import attrs
import trio

from partita.runtime import Actor, Batch, DeadLetter, Idle, Watermark
from partita.sql import RouteResult, RouteStep, RoutingStage

from ._dead_letter import emit_dead_letters

__all__ = ["RouterActor"]


@attrs.define(eq=False)
class RouterActor(Actor):
    """Runs a :class:`partita.sql.RoutingStage` on every source batch.

    Output ``i`` is partition ``i``: it gets ``parts[i]`` of each routed batch,
    then the watermark when it advanced.  Late and dead records the stage
    decided go to :attr:`dead_letter_output` when there is one (else they are
    kept in :attr:`dead_letters`); the stage's counts show in ``rows_late`` and
    ``rows_errored``.  The per-record work (event time, lateness, hashing) is
    the stage's own compiled code, and the rules around it (a watermark goes on
    only when it advanced; no input at all still routes one empty batch) are
    :class:`partita.sql.RouteStep`'s: this actor only moves what it returns.

    An empty batch is an *idle tick* from the source (see
    :class:`actors.RecordSource`): the router tells the step the milliseconds
    since the last data or tick (the stage's ``on_idle``), leaving out the time
    it was paused, and sends the watermark it returns, so windows close on a
    quiet stream.  A stage with ``announces_idle`` (an interval join's stream)
    that has seen no event time yet sends :class:`runtime.Idle` instead, once, so
    the join leaves it out of the least watermark until it has one.

    Example:
        >>> router = RouterActor("router", compiled.routing_stage(4))  # doctest: +SKIP

    Args:
        name: ``"router"`` in SQL graphs.
        stage: the routing stage; its ``partitions`` must equal this actor's
            number of outputs (not counting the dead-letter output).
        dead_letter_output: the output index of the dead-letter sink, if any.
    """

    stage: RoutingStage
    dead_letter_output: int | None = attrs.field(default=None, kw_only=True)
    dead_letters: list[DeadLetter] = attrs.field(init=False, factory=list)
    _step: RouteStep = attrs.field(init=False)
    _last_active: float = attrs.field(init=False, default=0.0)
    _paused_then: float = attrs.field(init=False, default=0.0)
    _idle_sent: bool = attrs.field(init=False, default=False)

    def __attrs_post_init__(self) -> None:
        self._step = RouteStep(self.stage)

    def on_start(self) -> None:
        self._mark_active()

    def _mark_active(self) -> float:
        """Now is the last activity; return how long since the one before, not
        counting the time the graph was paused (a pause is not silence)."""
        now, paused = trio.current_time(), self.paused_time
        since = (now - self._last_active) - max(0.0, paused - self._paused_then)
        self._last_active, self._paused_then = now, paused
        return since

    def on_batch(self, batch: Batch) -> None:
        if batch.records:
            self._mark_active()
            self._send(self._step.route(batch))
        else:
            idle_ms = max(0, int(self._mark_active() * 1000))
            watermark = self._step.idle(idle_ms)
            self._send_watermark(watermark)
            if watermark is None and not self._idle_sent and self._announces_idle():
                self._idle_sent = True
                for index in range(self.stage.partitions):
                    self.emit_message(Idle(), index)

    def _announces_idle(self) -> bool:
        """Whether the stage is idle before any event time and says so downstream (a
        stream of an interval join: its join must not wait for it forever)."""
        if not getattr(self.stage, "announces_idle", False):
            return False
        watermark = getattr(self.stage, "watermark", None)
        return watermark is not None and watermark() is None

    def on_watermark(self, ts: int) -> None:
        self._send_watermark(self._step.upstream(ts))

    def snapshot_state(self) -> object:
        """The stage's state (event time, counters) and the watermark sent so far."""
        return self._step.snapshot()

    def restore_state(self, state: object) -> None:
        self._step.restore(state)

    def on_end(self) -> None:
        self._send(self._step.finish())

    def _send(self, routed: RouteResult) -> None:
        for index, part in enumerate(routed.parts):
            if part is not None:
                self.emit_batch(part, index)
        self._send_watermark(routed.watermark)
        if routed.dead_letters:
            letters = list(routed.dead_letters)
            emit_dead_letters(self, letters, self.dead_letter_output, self.dead_letters)
        counts = routed.counts
        self.rows_late = counts.late
        self.rows_errored = counts.errored
        if routed.error_reasons is not None:
            self.set_error_reasons(dict(routed.error_reasons))
        self.rows_filtered = counts.filtered

    def _send_watermark(self, ts: int | None) -> None:
        if ts is None:
            return
        message = Watermark(ts)
        for index in range(self.stage.partitions):
            self.emit_message(message, index)
