"""The merge actor: fan-in of the partitions' output to one sink."""

from __future__ import annotations

import attrs

from partita.runtime import Actor, Batch

__all__ = ["MergeActor"]


@attrs.define(eq=False)
class MergeActor(Actor):
    """Forwards the batches of all its inputs, as they come, to its output(s).

    Rows of one partition stay in that partition's order; rows of different
    partitions interleave by arrival.  Watermarks are forwarded as the minimum
    over the inputs still live (the kernel computes it).

    Example:
        >>> merge = MergeActor("merge")
    """

    def on_batch(self, batch: Batch) -> None:
        if batch.records:
            self.emit_batch(batch)
