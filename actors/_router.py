"""The router: runs a query's routing stage at the source side of a SQL graph."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from partita.runtime import Actor, Batch, DeadLetter, Watermark
from partita.sql import RoutingStage

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
    the stage's own compiled code: this actor does a handful of calls per batch.

    An empty batch is an *idle tick* from the source (see
    :class:`actors.RecordSource`): the router calls the stage's
    ``on_idle(idle_ms)``, when it has one, with the milliseconds since the last
    data or tick, and sends the watermark it returns, so windows close on a
    quiet stream.

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
    _last_active: float = attrs.field(init=False, default=0.0)
    _routed_any: bool = attrs.field(init=False, default=False)
    _watermark: int | None = attrs.field(init=False, default=None)

    def on_start(self) -> None:
        self._last_active = trio.current_time()

    def on_batch(self, batch: Batch) -> None:
        if batch.records:
            self._last_active = trio.current_time()
            self._route(batch)
        else:
            self._idle()

    def on_watermark(self, ts: int) -> None:
        self._send_watermark(ts)

    def snapshot_state(self) -> object:
        """The stage's state (event time, counters) and the watermark sent so far."""
        return {
            "stage": self.stage.snapshot(),
            "watermark": self._watermark,
            "routed_any": self._routed_any,
        }

    def restore_state(self, state: object) -> None:
        saved: Any = state
        self.stage.restore(saved["stage"])
        self._watermark = saved["watermark"]
        self._routed_any = saved["routed_any"]

    def on_end(self) -> None:
        if not self._routed_any:
            # As the reference driver does: every program sees at least one batch, so a
            # global aggregate over no input still gives its one row.
            self._route(Batch([], ()))

    def _route(self, batch: Batch) -> None:
        self._routed_any = True
        stage = self.stage
        routed = stage.route(batch)
        for index, part in enumerate(routed.parts):
            if part is not None:
                self.emit_batch(part, index)
        if routed.watermark is not None:
            self._send_watermark(routed.watermark)
        if routed.late or routed.dead:
            letters = [*routed.late, *routed.dead]
            emit_dead_letters(self, letters, self.dead_letter_output, self.dead_letters)
        counts = stage.counts()
        self.rows_late = counts.late
        self.rows_errored = counts.errored
        if counts.errored:
            reasons = getattr(stage, "error_reasons", None)
            if reasons is not None:
                self.set_error_reasons(dict(reasons()))
        self.rows_filtered = counts.filtered

    def _idle(self) -> None:
        on_idle = getattr(self.stage, "on_idle", None)
        now = trio.current_time()
        idle_ms = max(0, int((now - self._last_active) * 1000))
        self._last_active = now
        if on_idle is None:
            return
        watermark = on_idle(idle_ms)
        if watermark is not None:
            self._send_watermark(watermark)

    def _send_watermark(self, ts: int) -> None:
        if self._watermark is not None and ts <= self._watermark:
            return
        self._watermark = ts
        message = Watermark(ts)
        for index in range(self.stage.partitions):
            self.emit_message(message, index)
