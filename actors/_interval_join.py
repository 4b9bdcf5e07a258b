"""The interval-join actor: one partition of a stream-stream join.

Input 0 is the ``FROM`` stream's join router, input 1 the joined stream's; both
split their records by the join key, so every record of a key reaches one actor.
"""

from __future__ import annotations

import attrs

from partita.runtime import Actor, Batch, Watermark, estimate_state_nbytes
from partita.sql import IntervalJoinState

__all__ = ["IntervalJoinActor"]


@attrs.define(eq=False)
class IntervalJoinActor(Actor):
    """Runs one partition's :class:`partita.sql.IntervalJoinState`.

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

    join: IntervalJoinState
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
