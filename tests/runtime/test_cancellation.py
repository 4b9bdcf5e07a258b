"""Cancellation: graceful (drain within a deadline), hard, and a consumer that went away."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from partita.runtime import (
    Actor,
    ActorState,
    Batch,
    BatchSizer,
    ConsumerGone,
    Graph,
    Sink,
    open_supervisor,
    run_graph,
)
from tests.runtime._helpers import Collect, Counter, chain

S = ActorState


def graph(delay: float = 1.0) -> tuple[Graph, Counter, Collect]:
    src = Counter("src", sizer=BatchSizer.fixed(5))
    sink = Collect("sink", delay=delay)
    return chain(src, Actor("mid"), sink, capacity=2), src, sink


async def test_graceful_cancel_drains_and_completes(autojump_clock: trio.testing.MockClock) -> None:
    g, src, sink = graph()
    with trio.fail_after(1000):
        async with open_supervisor(g) as sup:
            await trio.sleep(10)
            start = trio.current_time()
            await sup.cancel(graceful=True, deadline=100)
            assert trio.current_time() - start < 100
    assert sup.state is S.COMPLETED
    assert all(a.state is S.COMPLETED for a in g)
    # Everything the source handed over arrived, once, in order; the sink flushed.
    assert sink.rows == list(range(src.position))
    assert sink.flushed
    assert sup.stats().items_buffered == 0


async def test_graceful_cancel_past_its_deadline_cancels_hard(
    autojump_clock: trio.testing.MockClock,
) -> None:
    g, _, sink = graph(delay=1000.0)
    with trio.fail_after(10_000):
        async with open_supervisor(g) as sup:
            await trio.sleep(1)
            start = trio.current_time()
            await sup.cancel(graceful=True, deadline=5)
            assert trio.current_time() - start == 5
    assert sup.state is S.CANCELLED
    assert [a.state for a in g] == [S.CANCELLED] * 3
    assert not sink.flushed


async def test_hard_cancel_leaves_everything_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    g, _, sink = graph()
    with trio.fail_after(1000):
        async with open_supervisor(g) as sup:
            await trio.sleep(3.5)
            start = trio.current_time()
            await sup.cancel(graceful=False)
            assert trio.current_time() == start
            assert sup.state is S.CANCELLED
    assert [a.state for a in g] == [S.CANCELLED] * 3
    assert sup.stats().state is S.CANCELLED
    assert sink.rows == list(range(len(sink.rows)))


async def test_leaving_the_block_with_an_error_cancels_the_graph() -> None:
    g, _, _ = graph()

    class Oops(Exception):
        pass

    def oops() -> None:
        raise Oops

    with pytest.RaisesGroup(Oops, allow_unwrapped=True, flatten_subgroups=True):
        async with open_supervisor(g) as sup:
            await trio.testing.wait_all_tasks_blocked()
            oops()
    assert sup.state is S.CANCELLED
    assert all(a.state is S.CANCELLED for a in g)


@attrs.define(eq=False)
class Impatient(Sink):
    """Its reader leaves after three batches."""

    batches: int = attrs.field(init=False, default=0)

    async def consume(self, batch: Batch) -> None:
        self.batches += 1
        if self.batches == 3:
            raise ConsumerGone(self.name)


async def test_consumer_gone_cancels_upstream_quietly_and_promptly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    src = Counter("src", sizer=BatchSizer.fixed(5))
    g = chain(src, Actor("mid"), Impatient("sink"), capacity=2)
    start = trio.current_time()
    with trio.fail_after(1):
        stats = await run_graph(g)  # no exception: quiet
    assert trio.current_time() == start  # prompt: no virtual time passed
    assert stats.state is S.CANCELLED
    assert [a.state for a in stats.actors] == [S.CANCELLED] * 3
    assert src.position <= (3 + 2 + 2 + 2) * 5  # the source was stopped, not drained
