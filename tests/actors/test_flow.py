"""The Flow builder: each operator, keyed lanes, custom actors, errors, control."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from partita.actors import CallbackSink, CollectSink, Flow, IterableSource
from partita.actors._operators import StatefulActor
from partita.runtime import (
    Actor,
    ActorFailed,
    ActorState,
    BadRecord,
    Batch,
    BatchSizer,
    Record,
    RestartPolicy,
)

NUMBERS = [{"x": i} for i in range(1000)]


def numbers(n: int = 1000, size: int = 64) -> IterableSource:
    return IterableSource("numbers", [{"x": i} for i in range(n)], sizer=BatchSizer.fixed(size))


async def test_map_filter_flat_map() -> None:
    out = CollectSink("out")
    flow = Flow()
    (
        flow.source(numbers())
        .map(lambda r: {"x": r["x"], "sq": r["x"] * r["x"]})
        .filter(lambda r: r["x"] % 3 == 0)
        .flat_map(lambda r: [r, {"x": -r["x"]}] if r["x"] < 10 else [r])
        .sink(out)
    )
    stats = await flow.run()
    expected: list[Record] = []
    for i in range(0, 1000, 3):
        expected.append({"x": i, "sq": i * i})
        if i < 10:
            expected.append({"x": -i})
    assert out.rows == expected
    assert stats.state is ActorState.COMPLETED
    assert stats["filter-2"].rows_filtered == 1000 - 334
    assert [a.name for a in stats.actors] == ["numbers", "map-1", "filter-2", "flat_map-3", "out"]


def running_total(state: dict[str, int], record: Record) -> list[Record]:
    state["total"] = state.get("total", 0) + record["x"]
    return [{"k": record["k"], "total": state["total"]}]


@pytest.mark.parametrize("partitions", [1, 4])
async def test_key_by_and_stateful(partitions: int) -> None:
    out = CollectSink("out")
    flow = Flow()
    (
        flow.source(numbers())
        .map(lambda r: {**r, "k": r["x"] % 7})
        .key_by(lambda r: r["k"], partitions=partitions)
        .stateful(running_total, init=dict)
        .sink(out)
    )
    stats = await flow.run()
    per_key: dict[int, list[int]] = {}
    for row in out.rows:
        per_key.setdefault(row["k"], []).append(row["total"])
    expected: dict[int, list[int]] = {}
    totals: dict[int, int] = {}
    for i in range(1000):
        totals[i % 7] = totals.get(i % 7, 0) + i
        expected.setdefault(i % 7, []).append(totals[i % 7])
    assert per_key == expected  # per key, in source order, whatever the lanes
    if partitions > 1:
        lanes = [stats[f"stateful-3[{i}]"] for i in range(partitions)]
        assert sum(lane.rows_in for lane in lanes) == 1000
        assert sum(1 for lane in lanes if lane.rows_in) > 1


async def test_stateful_without_key_is_one_state() -> None:
    out = CollectSink("out")
    flow = Flow()
    flow.source(numbers(10)).map(lambda r: {**r, "k": 0}).stateful(running_total).sink(out)
    await flow.run()
    assert [r["total"] for r in out.rows] == [sum(range(i + 1)) for i in range(10)]


async def test_lanes_map_then_merge_to_sink() -> None:
    out = CollectSink("out")
    flow = Flow()
    (
        flow.source(numbers())
        .key_by(lambda r: r["x"] % 3, partitions=3)
        .map(lambda r: {"y": r["x"] + 1})
        .filter(lambda r: r["y"] % 2 == 0)
        .sink(out)
    )
    stats = await flow.run()
    assert sorted(r["y"] for r in out.rows) == list(range(2, 1001, 2))
    assert "map-2[0]" in [a.name for a in stats.actors]


async def test_key_by_straight_to_sink() -> None:
    out = CollectSink("out")
    flow = Flow()
    flow.source(numbers()).key_by(lambda r: r["x"], partitions=2).sink(out)
    await flow.run()
    assert sorted(r["x"] for r in out.rows) == list(range(1000))


@attrs.define(eq=False)
class Tagger(Actor):
    tag: str = "t"

    def on_batch(self, batch: Batch) -> None:
        self.emit([{**r, "tag": self.tag} for r in batch.records])


async def test_via_custom_actor() -> None:
    out = CollectSink("out")
    flow = Flow()
    flow.source(numbers(5)).via(Tagger("tagger", "hello")).map(lambda r: r).sink(out)
    await flow.run()
    assert out.rows == [{"x": i, "tag": "hello"} for i in range(5)]


async def test_operator_error_names_the_offset() -> None:
    flow = Flow()
    flow.source(numbers(size=100)).map(lambda r: {"y": 1 / (r["x"] - 437)}).sink(CollectSink("o"))
    with pytest.raises(ActorFailed) as info:
        await flow.run()
    assert info.value.actor == "map-1"
    assert info.value.offset == 437
    assert isinstance(info.value.error, BadRecord)
    assert "ZeroDivisionError" in str(info.value)


@pytest.mark.parametrize("op", ["filter", "flat_map", "key_by", "stateful"])
async def test_each_operator_reports_offsets(op: str) -> None:
    def bad(*args: Any) -> Any:
        record = args[-1]
        if record["x"] == 123:
            raise ValueError("bad x")
        return [record] if op in ("flat_map", "stateful") else True

    flow = Flow()
    stream = flow.source(numbers(size=50))
    stream = stream.key_by(bad, partitions=2) if op == "key_by" else getattr(stream, op)(bad)
    stream.sink(CollectSink("out"))
    with pytest.raises(ActorFailed) as info:
        await flow.run()
    assert info.value.offset == 123
    assert "ValueError" in str(info.value)


async def test_open_pause_resume_cancel(autojump_clock: trio.testing.MockClock) -> None:
    def endless() -> Iterator[Record]:
        i = 0
        while True:
            yield {"x": i}
            i += 1

    got = 0

    async def count(rows: list[Record]) -> None:
        nonlocal got
        got += len(rows)
        await trio.sleep(0.1)  # a slow sink: virtual time moves while the graph waits

    flow = Flow(capacity=2)
    source = IterableSource("numbers", endless(), sizer=BatchSizer.fixed(10))
    flow.source(source).map(lambda r: r).sink(CallbackSink("out", count))
    async with flow.open() as supervisor:
        await trio.sleep(1)
        supervisor.pause()
        await trio.testing.wait_all_tasks_blocked()
        paused_at = source.rows_out
        await trio.sleep(5)
        assert source.rows_out == paused_at
        supervisor.resume()
        await trio.sleep(1)
        assert source.rows_out > paused_at
        await supervisor.cancel()  # graceful: stop the source, drain, complete
    stats = supervisor.stats()
    assert stats.state is ActorState.COMPLETED
    assert got == source.rows_out


async def test_flow_on_stats_and_validation() -> None:
    seen: list[Any] = []
    flow = Flow()
    flow.source(numbers(10)).sink(CollectSink("out"))
    await flow.run(on_stats=seen.append)
    assert seen[-1].state is ActorState.COMPLETED
    with pytest.raises(ValueError, match="partitions must be >= 1, got 0"):
        Flow().source(numbers()).key_by(lambda r: r["x"], partitions=0)


async def test_restart_policy_retries_a_flaky_operator() -> None:
    failed = False

    def flaky(record: Record) -> Record:
        nonlocal failed
        if record["x"] == 500 and not failed:
            failed = True
            raise ConnectionError("transient")
        return record

    out = CollectSink("out")
    flow = Flow()
    flow.source(numbers()).map(flaky).sink(out)
    stats = await flow.run(restart=RestartPolicy(max_restarts=1))
    assert out.rows == NUMBERS  # the failed batch was handled again: nothing lost or doubled
    assert stats["map-1"].restarts == 1


@pytest.mark.parametrize("partitions", [1, 3])
async def test_stateful_restart_starts_from_the_state_before_the_batch(partitions: int) -> None:
    """Issue 8 item 10: a restarted stateful handler must not double-apply the records
    before the failing one in its batch."""
    failed: set[int] = set()

    def count(state: dict[str, int], record: Record) -> list[Record]:
        x = record["x"]
        if x % 1000 == 999 and x not in failed:
            failed.add(x)
            raise ConnectionError("transient")
        state["n"] = state.get("n", 0) + 1
        return [{"k": record["k"], "n": state["n"]}]

    out = CollectSink("out")
    flow = Flow()
    (
        flow.source(numbers(10_000, size=256))
        .map(lambda r: {**r, "k": r["x"] % 3})
        .key_by(lambda r: r["k"], partitions=partitions)
        .stateful(count)
        .sink(out)
    )
    stats = await flow.run(restart=RestartPolicy(max_restarts=20, within=1e9))
    assert failed == set(range(999, 10_000, 1000))
    per_key: dict[int, list[int]] = {}
    for row in out.rows:
        per_key.setdefault(row["k"], []).append(row["n"])
    assert {k: len(v) for k, v in per_key.items()} == {0: 3334, 1: 3333, 2: 3333}
    assert all(v == list(range(1, len(v) + 1)) for v in per_key.values())
    assert sum(a.restarts for a in stats.actors) == 10


async def test_stateful_restart_without_key_and_with_nested_state() -> None:
    failed: set[int] = set()

    def collect(state: dict[str, list[int]], record: Record) -> None:
        state.setdefault("xs", []).append(record["x"])  # mutated in place, nested
        if record["x"] % 100 == 50 and record["x"] not in failed:
            failed.add(record["x"])
            raise ConnectionError("transient, after a partial update")

    flow = Flow()
    flow.source(numbers(1000, size=64)).stateful(collect, name="acc").sink(CollectSink("out"))
    stats = await flow.run(restart=RestartPolicy(max_restarts=20, within=1e9))
    acc = flow.graph["acc"]
    assert isinstance(acc, StatefulActor)
    assert acc.states[None]["xs"] == list(range(1000))  # each record applied exactly once
    assert stats["acc"].restarts == 10
