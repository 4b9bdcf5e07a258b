"""Helper actors and graph builders shared by the runtime kernel tests."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import trio

from partita.runtime import Actor, Batch, Graph, Sink, Source


@attrs.define(eq=False)
class Counter(Source):
    """Counts up, one batch of ``{"i": ...}`` records at a time.

    It stops after ``limit`` records (never, if ``limit`` is None); the first record
    holds ``first``.  With ``watermarks``, each batch is followed by a watermark at
    the number of records sent so far.  ``sizes`` records the size of every batch.
    """

    limit: int | None = attrs.field(default=None, kw_only=True)
    first: int = attrs.field(default=0, kw_only=True)
    watermarks: bool = attrs.field(default=False, kw_only=True)
    position: int = attrs.field(init=False, default=0)
    sizes: list[int] = attrs.field(init=False, factory=list)

    async def produce(self) -> None:
        while self.limit is None or self.position < self.limit:
            n = self.batch_size
            if self.limit is not None:
                n = min(n, self.limit - self.position)
            self.sizes.append(n)
            records = [{"i": self.first + self.position + j} for j in range(n)]
            self.position += n
            await self.send_records(records)
            if self.watermarks:
                await self.send_watermark(self.position)


@attrs.define(eq=False)
class Collect(Sink):
    """Takes ``delay`` (virtual) seconds a batch; keeps the rows' ``i`` and the watermarks."""

    delay: float = attrs.field(default=1.0, kw_only=True)
    rows: list[int] = attrs.field(init=False, factory=list)
    watermarks: list[int] = attrs.field(init=False, factory=list)
    flushed: bool = attrs.field(init=False, default=False)

    async def consume(self, batch: Batch) -> None:
        await trio.sleep(self.delay)
        self.rows.extend(r["i"] for r in batch.records)

    def on_watermark(self, ts: int) -> None:
        self.watermarks.append(ts)

    async def flush(self) -> None:
        self.flushed = True


def chain(*actors: Actor, capacity: int | Sequence[int] | None = None) -> Graph:
    """A graph of ``actors``, each feeding the next.

    ``capacity`` is the inbox capacity of every actor after the first, or one per
    such actor; None keeps :meth:`Graph.add`'s default.
    """
    n = len(actors) - 1
    capacities = [capacity] * n if capacity is None or isinstance(capacity, int) else capacity
    if len(capacities) != n:
        raise ValueError(f"{n} capacities needed, got {len(capacities)}")
    g = Graph()
    g.add(actors[0])
    for upstream, actor, cap in zip(actors[:-1], actors[1:], capacities, strict=True):
        if cap is None:
            g.add(actor, inputs=[upstream])
        else:
            g.add(actor, inputs=[upstream], capacity=cap)
    return g
