"""Stats snapshots: state, rows, items buffered, occupancy percentiles, restarts, batch size."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from partita.runtime import (
    Actor,
    ActorState,
    ActorStats,
    Batch,
    BatchSizer,
    GraphStats,
    Sink,
    open_supervisor,
    run_graph,
)
from partita.runtime._stats import OccupancyHistogram
from tests.runtime._helpers import Counter, chain

S = ActorState


@attrs.define(eq=False)
class Evens(Actor):
    def on_batch(self, batch: Batch) -> None:
        kept = [r for r in batch.records if r["i"] % 2 == 0]
        self.rows_filtered += len(batch.records) - len(kept)
        self.emit(kept)


@attrs.define(eq=False)
class Gate(Sink):
    gate: trio.Event = attrs.field(factory=trio.Event)

    async def consume(self, batch: Batch) -> None:
        await self.gate.wait()


async def test_final_stats() -> None:
    g = chain(
        Counter("src", limit=95, sizer=BatchSizer.fixed(10)),
        Evens("evens"),
        Sink("sink"),
        capacity=4,
    )
    stats = await run_graph(g)
    assert stats.state is S.COMPLETED
    src, evens, sink = stats["src"], stats["evens"], stats["sink"]
    assert (src.rows_in, src.rows_out, src.batches_in, src.batch_size) == (95, 95, 10, 10)
    assert (evens.rows_in, evens.rows_out, evens.rows_filtered) == (95, 48, 47)
    assert (evens.batches_in, evens.batch_size) == (10, 5)  # the last batch held five
    assert (sink.rows_in, sink.rows_out) == (48, 48)
    assert stats.rows_filtered == 47 and stats.rows_late == 0 and stats.rows_errored == 0
    assert all(a.state is S.COMPLETED and a.restarts == 0 for a in stats.actors)
    assert stats.items_buffered == stats.estimated_memory == stats.memory_in_use == 0
    assert stats.restarts == 0 and stats.max_memory is None
    assert 0 <= evens.occupancy_p50 <= evens.occupancy_p99 <= evens.high_water <= 4
    with pytest.raises(KeyError):
        stats["nobody"]


async def test_live_stats_of_a_stalled_graph() -> None:
    sink = Gate("sink")
    g = chain(Counter("src", limit=10_000, sizer=BatchSizer.fixed(10)), sink, capacity=4)
    with trio.fail_after(10):
        async with open_supervisor(g, max_memory=10**9) as sup:
            await trio.testing.wait_all_tasks_blocked()
            stats = sup.stats()
            assert isinstance(stats, GraphStats)
            assert stats.state is S.RUNNING
            box = stats["sink"]
            assert isinstance(box, ActorStats)
            assert box.items_buffered == 4 == box.high_water
            assert box.estimated_memory > 0
            # Sampled at each send: 0 (handed to the waiting sink), then 1, 2, 3, 4.
            assert (box.occupancy_p50, box.occupancy_p99) == (2, 4)
            assert stats.memory_in_use == box.estimated_memory
            assert stats.max_memory == 10**9
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                stats.state = S.FAILED  # type: ignore[misc]
            sink.gate.set()
    assert sup.stats().state is S.COMPLETED


def test_occupancy_histogram_percentiles() -> None:
    hist = OccupancyHistogram(4)
    assert hist.percentile(0.5) == 0
    for occupancy in (0, 1, 1, 2, 4):
        hist.record(occupancy)
    assert hist.percentile(0.0) == 0
    assert hist.percentile(0.5) == 1
    assert hist.percentile(0.6) == 1
    assert hist.percentile(0.8) == 2
    assert hist.percentile(0.99) == 4
    assert hist.percentile(1.0) == 4
