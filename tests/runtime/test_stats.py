"""Stats snapshots: state, rows, items buffered, occupancy percentiles, restarts, batch size."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from partita.runtime import (
    MAX_ERROR_REASONS,
    OTHER_REASONS,
    Actor,
    ActorFailed,
    ActorState,
    ActorStats,
    Batch,
    BatchSizer,
    GraphStats,
    Sink,
    open_supervisor,
    run_graph,
)
from partita.runtime._stats import (
    MAX_REASON_LENGTH,
    NO_REASON,
    ErrorReasons,
    OccupancyHistogram,
    merge_error_reasons,
)
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
            assert box.occupancy_counts == (1, 1, 1, 1, 1)  # one send at each occupancy
            assert stats["src"].occupancy_counts == ()  # a source has no inbox
            assert stats.memory_in_use == box.estimated_memory
            assert stats.max_memory == 10**9
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                stats.state = S.FAILED  # type: ignore[misc]
            sink.gate.set()
    assert sup.stats().state is S.COMPLETED


async def test_watermarks_in_stats_and_the_failure_of_the_graph() -> None:
    class Boom(Sink):
        async def consume(self, batch: Batch) -> None:
            if batch.records[0]["i"] >= 20:
                raise ZeroDivisionError("boom")

    g = chain(
        Counter("src", limit=100, watermarks=True, sizer=BatchSizer.fixed(10)),
        Actor("mid"),
        Boom("sink"),
        capacity=2,
    )
    with pytest.raises(ActorFailed) as failed:
        async with open_supervisor(g) as sup:
            assert sup.failure is None
    stats = sup.stats()
    assert stats["src"].watermark is None  # a source sends watermarks, it has no input
    assert stats["mid"].watermark is not None
    assert stats["mid"].watermark >= 20
    assert sup.failure is failed.value
    assert sup.failure.actor == "sink"


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


@attrs.define(eq=False)
class Picky(Actor):
    """Counts odd records as errors under a reason saying their remainder mod 3."""

    def on_batch(self, batch: Batch) -> None:
        kept = []
        for r in batch.records:
            if r["i"] % 2:
                self.count_error(f"odd, {r['i'] % 3} mod 3")
            else:
                kept.append(r)
        self.emit(kept)


@attrs.define(eq=False)
class Assigned(Actor):
    """Sets its error counters wholesale, as the SQL actors do from their program."""

    def on_batch(self, batch: Batch) -> None:
        bad = sum(1 for r in batch.records if r["i"] % 2)
        self.rows_errored += bad
        self.set_error_reasons({"odd, 0 mod 3": self.rows_errored})
        self.emit(batch.records)


async def test_errors_by_reason_in_actor_and_graph_stats() -> None:
    g = chain(
        Counter("src", limit=30, sizer=BatchSizer.fixed(7)),
        Picky("picky"),
        Sink("sink"),
    )
    stats = await run_graph(g)
    picky = stats["picky"]
    # Odd i in 0..29: 15 of them; i % 3 == 0 for 3, 9, 15, 21, 27; == 1 for 1, 7, 13, 19, 25.
    assert picky.rows_errored == 15
    assert picky.errors_by_reason == (
        ("odd, 0 mod 3", 5),
        ("odd, 1 mod 3", 5),
        ("odd, 2 mod 3", 5),
    )
    assert stats["src"].errors_by_reason == () == stats["sink"].errors_by_reason
    assert stats.errors_by_reason() == picky.errors_by_reason


async def test_graph_merges_reasons_across_actors_most_frequent_first() -> None:
    g = chain(
        Counter("src", limit=30, sizer=BatchSizer.fixed(7)),
        Picky("picky"),
        Assigned("assigned"),
        Sink("sink"),
    )
    stats = await run_graph(g)
    assert stats["assigned"].rows_errored == 0  # picky dropped the odd ones
    assert stats.errors_by_reason() == (
        ("odd, 0 mod 3", 5),
        ("odd, 1 mod 3", 5),
        ("odd, 2 mod 3", 5),
    )
    again = await run_graph(
        chain(
            Counter("src", limit=30, sizer=BatchSizer.fixed(7)),
            Assigned("assigned"),
            Picky("picky"),
            Sink("sink"),
        )
    )
    assert again["assigned"].errors_by_reason == (("odd, 0 mod 3", 15),)
    assert again.errors_by_reason() == (
        ("odd, 0 mod 3", 20),
        ("odd, 1 mod 3", 5),
        ("odd, 2 mod 3", 5),
    )
    assert sum(n for _, n in again.errors_by_reason()) == again.rows_errored


def test_count_error_keeps_at_most_max_reasons() -> None:
    actor = Actor("a")
    assert actor.stats().errors_by_reason == ()
    for k in range(MAX_ERROR_REASONS + 5):
        actor.count_error(f"reason {k:02d}", n=k + 1)
    actor.count_error("reason 00")  # a kept reason keeps counting
    reasons = actor.stats().errors_by_reason
    assert len(reasons) == MAX_ERROR_REASONS + 1
    assert reasons[-1] == (OTHER_REASONS, sum(range(MAX_ERROR_REASONS + 1, MAX_ERROR_REASONS + 6)))
    kept = reasons[:-1]
    assert [n for _, n in kept] == sorted((n for _, n in kept), reverse=True)
    assert dict(kept)["reason 00"] == 2
    assert set(dict(kept)) == {f"reason {k:02d}" for k in range(MAX_ERROR_REASONS)}
    assert sum(n for _, n in reasons) == actor.rows_errored


def test_long_reasons_are_cut_and_ties_sort_by_reason() -> None:
    reasons = ErrorReasons()
    reasons.add("b")
    reasons.add("a")
    reasons.add("x" * 10_000, 3)
    reasons.add("x" * 10_001)  # the same after cutting
    ((long, n), *rest) = reasons.snapshot()
    assert (len(long), long[-1], n) == (MAX_REASON_LENGTH, "\u2026", 4)
    assert rest == [("a", 1), ("b", 1)]
    reasons.add(OTHER_REASONS, 2)
    assert reasons.snapshot()[-1] == (OTHER_REASONS, 2) and reasons.total == 8


def test_assigned_counts_and_wholesale_reasons() -> None:
    actor = Actor("partition-0")
    actor.rows_errored = 4  # assigned directly: no reason known
    assert actor.stats().errors_by_reason == ((NO_REASON, 4),)
    actor.set_error_reasons({"division by zero": 3, "bad cast": 0})
    assert actor.stats().errors_by_reason == (("division by zero", 3), (NO_REASON, 1))
    actor.set_error_reasons({f"r{k:02d}": 100 - k for k in range(MAX_ERROR_REASONS + 2)})
    actor.rows_errored = sum(100 - k for k in range(MAX_ERROR_REASONS + 2))
    reasons = actor.stats().errors_by_reason
    # The most frequent are the ones kept; the two least frequent go to "other reasons".
    assert [r for r, _ in reasons] == [f"r{k:02d}" for k in range(MAX_ERROR_REASONS)] + [
        OTHER_REASONS
    ]
    assert reasons[-1] == (OTHER_REASONS, (100 - MAX_ERROR_REASONS) + (99 - MAX_ERROR_REASONS))
    actor.set_error_reasons({})
    actor.rows_errored = 0
    assert actor.stats().errors_by_reason == ()


def test_merged_reasons_stay_bounded() -> None:
    groups = [((f"r{k:02d}", k + 1), (OTHER_REASONS, 1)) for k in range(MAX_ERROR_REASONS + 3)]
    merged = merge_error_reasons(groups)
    assert len(merged) == MAX_ERROR_REASONS + 1
    assert merged[0] == (f"r{MAX_ERROR_REASONS + 2:02d}", MAX_ERROR_REASONS + 3)
    assert merged[-1] == (OTHER_REASONS, MAX_ERROR_REASONS + 3 + 1 + 2 + 3)
    assert sum(n for _, n in merged) == sum(n for g in groups for _, n in g)
