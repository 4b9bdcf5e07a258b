"""Async operators in a Flow: ordering, bounded concurrency, backpressure, cancellation.

Every test runs on virtual time (MockClock with autojump): the "slow service" sleeps
there, never on the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from partita.actors import CollectSink, Flow, IterableSource
from partita.actors._async_ops import AsyncOperatorActor
from partita.runtime import ActorFailed, ActorState, BatchSizer, Record


def run_virtual(main: Any) -> Any:
    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


@st.composite
def delayed_records(draw: st.DrawFn) -> list[Record]:
    n = draw(st.integers(0, 40))
    return [{"i": i, "k": draw(st.integers(0, 3)), "d": draw(st.integers(0, 20))} for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(
    delayed_records(),
    st.sampled_from([True, "key", False]),
    st.integers(1, 8),
    st.integers(1, 12),
    st.integers(1, 3),
)
def test_ordering_under_random_delays(
    records: list[Record], ordered: Any, max_in_flight: int, batch: int, lanes: int
) -> None:
    running: dict[int, int] = {}  # calls in flight per key
    peak = 0
    total = 0

    async def service(r: Record) -> Record:
        nonlocal peak, total
        total += 1
        peak = max(peak, total)
        running[r["k"]] = running.get(r["k"], 0) + 1
        if ordered == "key":
            assert running[r["k"]] == 1  # a key's records one after the other
        await trio.sleep(r["d"] / 1000)
        running[r["k"]] -= 1
        total -= 1
        return {**r, "done": trio.current_time()}

    out = CollectSink("out")

    async def main() -> None:
        flow = Flow()
        source = IterableSource("in", records, sizer=BatchSizer.fixed(batch))
        stream = flow.source(source)
        if ordered == "key" or lanes > 1:
            stream = stream.key_by(lambda r: r["k"], partitions=lanes)
        stream.map_async(service, max_in_flight=max_in_flight, ordered=ordered).sink(out)
        await flow.run()

    run_virtual(main)
    rows = out.rows
    assert sorted(r["i"] for r in rows) == [r["i"] for r in records]
    assert peak <= max_in_flight * lanes
    for k in range(4):
        if ordered is not False:  # per key (a key takes one lane) in input order
            assert [r["i"] for r in rows if r["k"] == k] == [r["i"] for r in records if r["k"] == k]
    if ordered is True and lanes == 1:
        assert [r["i"] for r in rows] == [r["i"] for r in records]
    if ordered is False and lanes == 1:
        # within a batch, in completion order
        for start in range(0, len(records), batch):
            chunk = rows[start : start + batch]
            assert [r["done"] for r in chunk] == sorted(r["done"] for r in chunk)


async def test_concurrency_is_bounded_and_upstream_waits() -> None:
    gate = trio.Event()

    async def blocked(r: Record) -> Record:
        await gate.wait()
        return r

    flow = Flow(capacity=2)
    records = [{"x": i} for i in range(200)]
    source = IterableSource("in", records, sizer=BatchSizer.fixed(10))
    out = CollectSink("out")
    flow.source(source).map_async(blocked, max_in_flight=4, name="call").sink(out)
    actor = next(a for a in flow.graph if isinstance(a, AsyncOperatorActor))
    async with flow.open():
        await trio.testing.wait_all_tasks_blocked()
        assert actor.in_flight == 4  # never more than max_in_flight
        # the batch in flight, a full inbox and one batch the source is sending: it waits
        assert source.rows_out <= 10 * (1 + 2 + 1)
        gate.set()
    assert actor.in_flight == 0
    assert out.rows == records


def _tasks(task: trio.lowlevel.Task) -> Iterator[trio.lowlevel.Task]:
    yield task
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            yield from _tasks(child)


async def test_cancelling_leaves_no_task_running(autojump_clock: trio.testing.MockClock) -> None:
    started = 0
    finished = 0

    async def forever(r: Record) -> Record:
        nonlocal started, finished
        started += 1
        try:
            await trio.sleep_forever()
        finally:
            finished += 1
        return r  # pragma: no cover

    root = trio.lowlevel.current_root_task()
    before = {id(t) for t in _tasks(root)}
    flow = Flow()
    source = IterableSource("in", [{"x": i} for i in range(100)], sizer=BatchSizer.fixed(20))
    flow.source(source).key_by(lambda r: r["x"] % 2, partitions=2).map_async(
        forever, max_in_flight=5
    ).sink(CollectSink("out"))
    async with flow.open() as supervisor:
        await trio.testing.wait_all_tasks_blocked()
        assert started == 10  # 5 per lane
        during = {id(t) for t in _tasks(root)} - before
        assert len(during) > 10
        await supervisor.cancel(graceful=False)
    assert supervisor.state is ActorState.CANCELLED
    assert finished == started == 10
    assert {id(t) for t in _tasks(root)} <= before


@pytest.mark.parametrize("policy", ["skip", "dead-letter", "fail"])
async def test_async_errors_by_policy(policy: str, autojump_clock: trio.testing.MockClock) -> None:
    async def lookup(r: Record) -> Record:
        await trio.sleep(0.001 * (r["x"] % 5))
        return {"x": r["x"], "name": {0: "zero"}.get(r["x"] % 4) or r["missing"]}

    flow = Flow(on_error=policy)  # type: ignore[arg-type]
    out = CollectSink("out")
    source = IterableSource("in", [{"x": i} for i in range(20)], sizer=BatchSizer.fixed(6))
    flow.source(source).map_async(lookup, max_in_flight=3).sink(out)
    if policy == "fail":
        with pytest.raises(ActorFailed) as info:
            await flow.run()
        assert str(info.value.error) == ("map_async(lookup) at record offset 1: KeyError 'missing'")
        return
    stats = await flow.run()
    assert [r["x"] for r in out.rows] == list(range(0, 20, 4))
    assert stats["map_async-1"].rows_errored == 15
    letters = flow.dead_letters
    assert len(letters) == (15 if policy == "dead-letter" else 0)
    if letters:
        assert letters[0].reason == "map_async(lookup): KeyError 'missing'"


async def test_filter_async_and_flat_map_async(autojump_clock: trio.testing.MockClock) -> None:
    async def is_even(r: Record) -> bool:
        await trio.sleep(0.001 * (10 - r["x"] % 10))
        return r["x"] % 2 == 0

    async def twice(r: Record) -> list[Record]:
        await trio.sleep(0.001)
        return [r, r]

    async def pieces(r: Record) -> Any:
        for j in range(2):
            await trio.sleep(0.001)
            yield {"x": r["x"], "j": j}

    out = CollectSink("out")
    flow = Flow()
    source = IterableSource("in", [{"x": i} for i in range(30)], sizer=BatchSizer.fixed(7))
    (
        flow.source(source)
        .filter_async(is_even, max_in_flight=4)
        .flat_map_async(twice, max_in_flight=2)
        .flat_map_async(pieces)
        .sink(out)
    )
    stats = await flow.run()
    assert out.rows == [{"x": x, "j": j} for x in range(0, 30, 2) for _ in range(2) for j in (0, 1)]
    assert stats["filter_async-1"].rows_filtered == 15


def test_async_operator_arguments_are_checked() -> None:
    stream = Flow().source(IterableSource("in", []))

    async def fetch(r: Record) -> Record:
        return r

    with pytest.raises(TypeError, match=r"^map_async\(<lambda>\): <lambda> is not an async"):
        stream.map_async(lambda r: r)
    with pytest.raises(ValueError, match="max_in_flight must be an int >= 1, got 0"):
        stream.map_async(fetch, max_in_flight=0)
    with pytest.raises(ValueError, match="ordered must be True, False or 'key', got 'input'"):
        stream.map_async(fetch, ordered="input")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"ordered='key' needs a key: call key_by\(\)"):
        stream.map_async(fetch, ordered="key")
