"""Consuming a Flow: ``async with flow.open() as stream: async for row in stream``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import trio
import trio.testing

from partita.actors import CollectSink, Flow, IterableSource, OperatorError, RowStream
from partita.runtime import ActorFailed, ActorState, BatchSizer, Record


def numbers(n: int, size: int = 10, name: str = "in") -> IterableSource:
    return IterableSource(name, [{"x": i} for i in range(n)], sizer=BatchSizer.fixed(size))


def endless(size: int = 10) -> IterableSource:
    return IterableSource("in", ({"x": i} for i in itertools.count()), sizer=BatchSizer.fixed(size))


def _tasks(task: trio.lowlevel.Task) -> Iterator[trio.lowlevel.Task]:
    yield task
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            yield from _tasks(child)


def _task_ids() -> set[int]:
    return {id(t) for t in _tasks(trio.lowlevel.current_root_task())}


async def test_a_chain_without_a_sink_is_what_async_for_reads() -> None:
    flow = Flow()
    flow.source(numbers(100)).map(lambda r: {"y": r["x"] * 2}).filter(lambda r: r["y"] % 3 == 0)
    async with flow.open() as stream:
        assert isinstance(stream, RowStream)
        rows = [row async for row in stream]
        # the rows ended: the graph has ended too, its stats final
        assert stream.state is ActorState.COMPLETED
    assert rows == [{"y": y} for y in range(0, 200, 2) if y % 3 == 0]
    stats = stream.stats()
    assert stats.state is ActorState.COMPLETED
    assert stats["stream-3"].rows_in == len(rows)
    assert "stream stream-3" in flow.fingerprint()


async def test_keyed_lanes_and_several_open_chains_merge_into_one_stream() -> None:
    flow = Flow()
    flow.source(numbers(200)).key_by(lambda r: r["x"] % 4, partitions=4).map(
        lambda r: {"x": r["x"], "lane": r["x"] % 4}
    )
    flow.source(numbers(50, name="more")).map(lambda r: {"x": -1 - r["x"]})
    flow.source(numbers(30, name="keyed-only")).key_by(lambda r: r["x"], partitions=3)
    async with flow.open() as stream:
        batches = [batch async for batch in stream.batches()]
    rows = [r for batch in batches for r in batch]
    assert sorted(r["x"] for r in rows) == sorted(
        [*range(200), *(-1 - i for i in range(50)), *range(30)]
    )
    per_key: dict[int, list[int]] = {}
    for r in rows:
        if "lane" in r:
            per_key.setdefault(r["lane"], []).append(r["x"])
    assert all(xs == sorted(xs) for xs in per_key.values())  # a key's order is kept


async def test_break_cancels_upstream_promptly_and_leaves_no_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    before = _task_ids()
    source = endless()
    flow = Flow(capacity=2)
    flow.source(source).map(lambda r: {"x": r["x"] + 1})
    seen: list[Record] = []
    with trio.fail_after(5):  # virtual time: a hang fails, no real wait
        async with flow.open() as stream:
            assert len(_task_ids() - before) > 3
            async for row in stream:
                seen.append(row)
                if len(seen) == 25:
                    break
            start = trio.current_time()
    assert trio.current_time() == start  # promptly: no time passed while cancelling
    assert seen == [{"x": i + 1} for i in range(25)]
    assert stream.state is ActorState.CANCELLED
    assert {a.state for a in stream.stats().actors} <= {ActorState.CANCELLED, ActorState.COMPLETED}
    assert _task_ids() <= before
    read = source.rows_out
    await trio.sleep(10)
    assert source.rows_out == read  # nothing reads on after the block


async def test_an_exception_in_the_block_cancels_the_graph_and_propagates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    before = _task_ids()
    flow = Flow()
    flow.source(endless()).map(lambda r: r)
    with pytest.raises(KeyError, match="mine"):
        async with flow.open() as stream:
            async for _row in stream:
                raise KeyError("mine")
    assert stream.state is ActorState.CANCELLED
    assert _task_ids() <= before


async def test_a_slow_consumer_holds_the_graph_back(autojump_clock: trio.testing.MockClock) -> None:
    source = endless(size=10)
    flow = Flow(capacity=2)
    flow.source(source).map(lambda r: r).map(lambda r: r)
    async with flow.open() as stream:
        first = await stream.__anext__()
        assert first == {"x": 0}
        await trio.sleep(60)  # the consumer does something else for a minute
        await trio.testing.wait_all_tasks_blocked()
        held = source.rows_out
        # at most: the batch being read, the channel (2 batches), two mailboxes of
        # 2 batches around each map and the sink, the batches in hand, the source's send
        assert held <= 10 * (1 + 2 + 3 * 2 + 3 + 1)
        await trio.sleep(3600)
        assert source.rows_out == held  # bounded: nothing more is read while nobody reads
        rows = [first]
        async for row in stream:
            rows.append(row)
            if len(rows) == 500:
                break
    assert rows == [{"x": i} for i in range(500)]


async def test_an_actor_failure_raises_out_of_the_loop_as_run_raises_it() -> None:
    def bad(r: Record) -> Record:
        if r["x"] == 42:
            raise ZeroDivisionError("forty-two")
        return r

    streaming = Flow()
    streaming.source(numbers(100)).map(bad, name="bad")
    seen: list[Record] = []
    with pytest.raises(ActorFailed) as streamed:
        async with streaming.open() as stream:
            async for row in stream:
                seen.append(row)
    assert len(seen) <= 40
    assert stream.state is ActorState.FAILED

    flow = Flow()  # the same flow ended at a sink: run() fails alike
    flow.source(numbers(100)).map(bad, name="bad").sink(CollectSink("out"))
    with pytest.raises(ActorFailed) as ran:
        await flow.run()
    assert type(streamed.value.__cause__) is type(ran.value.__cause__) is OperatorError
    assert str(streamed.value) == str(ran.value)
    assert "map(bad) at record offset 42: ZeroDivisionError: forty-two" in str(streamed.value)


async def test_pause_resume_and_graceful_cancel_through_the_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = endless()
    flow = Flow(capacity=2)
    flow.source(source).map(lambda r: r)
    rows: list[Record] = []
    with trio.fail_after(60):
        await _pause_resume_cancel(flow, source, rows)
    assert rows == [{"x": i} for i in range(source.rows_out)]


async def _pause_resume_cancel(flow: Flow, source: IterableSource, rows: list[Record]) -> None:
    async with flow.open() as stream, trio.open_nursery() as nursery:
        rows.append(await stream.__anext__())
        stream.pause()
        await trio.testing.wait_all_tasks_blocked()
        assert stream.state is ActorState.PAUSED
        paused_at = source.rows_out
        with trio.move_on_after(5):  # what is in the channel still comes out; then nothing
            async for row in stream:
                rows.append(row)
        assert len(rows) < paused_at
        assert source.rows_out == paused_at
        stream.resume()
        # a graceful cancel drains what was read: read on while it runs
        nursery.start_soon(stream.cancel)
        rows.extend([row async for row in stream])
    assert stream.state is ActorState.COMPLETED


async def test_a_flow_ending_at_sinks_has_nothing_to_iterate_and_runs_to_its_end() -> None:
    out = CollectSink("out")
    flow = Flow()
    flow.source(numbers(100)).sink(out)
    async with flow.open() as stream:
        with pytest.raises(TypeError, match=r"^this flow has no rows to iterate: every chain"):
            async for _row in stream:
                pass  # pragma: no cover
        with pytest.raises(TypeError, match=r"^this flow has no rows to iterate"):
            await stream.batches().__anext__()
    # leaving the block waited for the end, as a nursery does
    assert stream.state is ActorState.COMPLETED
    assert len(out.rows) == 100


async def test_run_refuses_a_chain_whose_rows_would_go_nowhere() -> None:
    flow = Flow()
    flow.source(numbers(10)).map(lambda r: r, name="tail")
    with pytest.raises(
        ValueError,
        match=r"^a chain of this flow ends without \.sink\(\) \(at 'tail'\): its rows would go "
        r"nowhere; end it with \.sink\(\.\.\.\), or read them with async with flow\.open\(\)$",
    ):
        await flow.run()


async def test_the_stream_of_a_dead_lettering_flow_keeps_its_dead_letters() -> None:
    flow = Flow(on_error="dead-letter")
    flow.source(numbers(10)).map(lambda r: {"y": 10 // (r["x"] - 3)})
    async with flow.open() as stream:
        rows = [row async for row in stream]
    assert len(rows) == 9
    assert [d.offset for d in stream.dead_letters] == [3]
