"""The interval-join actors: one partition of a stream-stream join, and the routers of
its two streams, kept within a bounded drift of each other in event time.

Input 0 of a join actor is the ``FROM`` stream's router, input 1 the joined
stream's; both split their records by the join key, so every record of a key reaches
one actor.  The join evicts by the *least* of the two streams' watermarks, so a
stream that runs ahead in event time (its source is faster, or covers more time per
record) would fill the join with its records while the other catches up: the routers
share a :class:`WatermarkAlignment` and the one ahead by more than its ``max_drift``
waits (holding its source back through its mailbox) until the other catches up, as
Flink's watermark alignment does.
"""

from __future__ import annotations

import attrs
import trio

from partita.runtime import Actor, AsyncActor, Batch, Watermark, estimate_state_nbytes
from partita.sql import StreamJoinState

from ._router import RouterActor

__all__ = ["IntervalJoinActor", "JoinSideRouter", "WatermarkAlignment"]


@attrs.define(eq=False)
class WatermarkAlignment:
    """The watermarks of a join's streams, so that none runs ahead of the others by
    more than ``max_drift`` ms.

    A stream ahead waits in :meth:`wait_turn`.  Only the streams that have a
    watermark constrain the others (one that has sent nothing yet, or is idle before
    any record, holds no one back), and an ended one none.

    Example:
        >>> align = WatermarkAlignment(1000, 2)
        >>> align.update(0, 5000)
        >>> align.ahead(0)  # stream 1 has no watermark yet: no one to wait for
        False
        >>> align.update(1, 3000)
        >>> align.ahead(0), align.ahead(1)
        (True, False)
        >>> align.finish(1)
        >>> align.ahead(0)
        False
    """

    max_drift: int = attrs.field(validator=attrs.validators.ge(0))
    streams: int = attrs.field(validator=attrs.validators.ge(1))
    _marks: dict[int, int] = attrs.field(init=False, factory=dict)
    _ended: set[int] = attrs.field(init=False, factory=set)
    _lot: trio.lowlevel.ParkingLot = attrs.field(init=False, factory=trio.lowlevel.ParkingLot)

    def update(self, stream: int, watermark: int | None) -> None:
        """Stream ``stream``'s watermark is now ``watermark`` (``None``: none yet)."""
        if watermark is None or self._marks.get(stream) == watermark:
            return
        self._marks[stream] = watermark
        self._lot.unpark_all()

    def finish(self, stream: int) -> None:
        """Stream ``stream`` ended: it holds no one back any more."""
        self._ended.add(stream)
        self._marks.pop(stream, None)
        self._lot.unpark_all()

    def ahead(self, stream: int) -> bool:
        """Whether ``stream`` is more than ``max_drift`` ahead of a stream still going."""
        mine = self._marks.get(stream)
        if mine is None:
            return False
        others = [w for s, w in self._marks.items() if s != stream and s not in self._ended]
        return bool(others) and mine > min(others) + self.max_drift

    async def wait_turn(self, stream: int) -> None:
        """Return once ``stream`` is not ahead (at once if it is not)."""
        while self.ahead(stream):
            await self._lot.park()


@attrs.define(eq=False)
class JoinSideRouter(RouterActor, AsyncActor):
    """The router of one stream of an interval join (a :class:`RouterActor` whose
    stage is a :class:`partita.sql.JoinSideStage`), kept within the alignment's drift.

    Before it routes a batch it waits while its stream's watermark is ahead of the
    other stream's by more than ``alignment.max_drift``; meanwhile its mailbox fills
    and its source waits.
    """

    alignment: WatermarkAlignment = attrs.field(kw_only=True)
    stream: int = attrs.field(kw_only=True)

    def on_start(self) -> None:
        super().on_start()
        self._tell()

    async def on_batch_async(self, batch: Batch) -> None:
        if batch.records:
            await self.alignment.wait_turn(self.stream)
        self.on_batch(batch)
        self._tell()

    def on_end(self) -> None:
        super().on_end()
        self.alignment.finish(self.stream)

    def _tell(self) -> None:
        watermark = getattr(self.stage, "watermark", None)
        if watermark is not None:
            self.alignment.update(self.stream, watermark())


@attrs.define(eq=False)
class IntervalJoinActor(Actor):
    """Runs one partition's join of two streams: a :class:`partita.sql.IntervalJoinState`
    or a :class:`partita.sql.TemporalJoinState`.

    A batch from input 0 (the left stream) or 1 (the right one) is probed against
    the other side's records of its keys; the joined rows go to output 0 as one
    batch.  The watermark the kernel hands it (the least of the two inputs') evicts
    what no record to come can match, sending the outer rows of the unmatched
    first, then that watermark less ``hold`` (so no joined row is ever behind the
    watermark it sends).  The state survives a restart of the actor and is in
    checkpoints.

    Example:
        >>> join = IntervalJoinActor("join-0", compiled.new_join_state(), 0)  # doctest: +SKIP

    Args:
        name: ``"join-<i>"`` in SQL graphs.
        state: the partition's join state.
        hold: how far (ms) the watermark it sends trails the one it gets.
    """

    join: StreamJoinState
    hold: int = attrs.field(validator=attrs.validators.ge(0))

    def on_batch(self, batch: Batch) -> None:
        if not batch.records:
            return
        entries = batch.records
        rows = self.join.left(entries) if self.input_port == 0 else self.join.right(entries)  # type: ignore[arg-type]
        if rows:
            self.emit_batch(Batch(rows))

    def on_watermark(self, ts: int) -> None:
        rows = self.join.advance(ts)
        if rows:
            self.emit_batch(Batch(rows))
        self.emit_message(Watermark(ts - self.hold))

    def on_end(self) -> None:
        rows = self.join.finish()
        if rows:
            self.emit_batch(Batch(rows))

    def snapshot_state(self) -> object:
        """Each side's records still in reach, and the watermark."""
        return self.join.snapshot()

    def restore_state(self, state: object) -> None:
        self.join.restore(state)

    def state_nbytes(self) -> int:
        """The records the join holds, estimated (sampled)."""
        return estimate_state_nbytes(self.join.memory_view())
