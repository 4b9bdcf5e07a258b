"""Backpressure: a slow sink stalls the source, and memory stays bounded."""

from __future__ import annotations

import attrs
import trio

from partita.runtime import (
    Actor,
    Batch,
    BatchSizer,
    Graph,
    Sink,
    Source,
    estimate_nbytes,
    open_supervisor,
    run_graph,
)
from tests.runtime._helpers import Counter, chain

BATCH = 10


@attrs.define(eq=False)
class SlowSink(Sink):
    """Sleeps a virtual second per batch and checks how far ahead the source got."""

    source: Source = attrs.field(kw_only=True)
    bound: int = attrs.field(kw_only=True)
    boxes: list[Actor] = attrs.field(kw_only=True)
    worst_lead: int = attrs.field(init=False, default=0)
    worst_memory: int = attrs.field(init=False, default=0)
    seen: int = attrs.field(init=False, default=0)

    async def consume(self, batch: Batch) -> None:
        lead = self.source.rows_out - self.seen
        self.worst_lead = max(self.worst_lead, lead)
        memory = sum(a.stats().estimated_memory for a in self.boxes)
        self.worst_memory = max(self.worst_memory, memory)
        await trio.sleep(1.0)
        self.seen += len(batch)


async def test_slow_sink_holds_the_source_back(autojump_clock: trio.testing.MockClock) -> None:
    g = Graph()
    src = g.add(Counter("src", limit=2000, sizer=BatchSizer.fixed(BATCH)))
    assert isinstance(src, Counter)
    mid = g.add(Actor("mid"), inputs=[src], capacity=2)
    capacity = 3
    # In flight at most: the sink's inbox and mid's, the batch mid holds, the one the
    # sink is consuming, and the one the source is blocked sending.
    bound = (capacity + 2 + 3) * BATCH
    sink = SlowSink("sink", source=src, bound=bound, boxes=[])
    g.add(sink, inputs=[mid], capacity=capacity)
    sink.boxes = [mid, sink]
    start = trio.current_time()
    with trio.fail_after(10_000):
        stats = await run_graph(g)
    assert stats["sink"].rows_in == 2000
    assert 0 < sink.worst_lead <= bound
    assert stats["mid"].high_water <= 2
    assert stats["sink"].high_water == capacity  # the sink's inbox did fill up
    # The run took as long as the sink needed: one virtual second per batch.
    assert trio.current_time() - start == 2000 // BATCH
    # Memory: what the two inboxes hold, plus one blocked sender's reservation each.
    one_batch = estimate_nbytes(Batch.from_records([{"i": 1000}] * BATCH))
    assert sink.worst_memory <= (2 + 1 + capacity + 1) * one_batch


async def test_a_blocked_source_is_at_its_bound_when_the_sink_stalls() -> None:
    """After quiescing, the source is exactly mailbox-capacity batches ahead."""
    release = trio.Event()

    @attrs.define(eq=False)
    class Stuck(Sink):
        async def consume(self, batch: Batch) -> None:
            await release.wait()

    g = chain(Counter("src", sizer=BatchSizer.fixed(BATCH)), Stuck("sink"), capacity=4)
    with trio.fail_after(10):
        async with open_supervisor(g) as sup:
            await trio.testing.wait_all_tasks_blocked()
            stats = sup.stats()
            # One batch in consume, four buffered, one the source is blocked on.
            assert stats["src"].rows_out == (1 + 4 + 1) * BATCH
            assert stats["sink"].items_buffered == 4
            await trio.testing.wait_all_tasks_blocked()
            assert sup.stats()["src"].rows_out == stats["src"].rows_out
            await sup.cancel(graceful=False)
