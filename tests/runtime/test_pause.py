"""Pause and resume: graph and single actor, idempotent, at the next batch boundary, timeouts."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
import trio.testing

from partita.runtime import (
    Actor,
    ActorState,
    BatchSizer,
    Graph,
    InvalidTransition,
    Source,
    Supervisor,
    open_supervisor,
)
from partita.runtime._actor import cell_of
from tests.runtime._helpers import Collect, Counter, chain

S = ActorState


def graph() -> Graph:
    src = Counter("src", sizer=BatchSizer.fixed(4))
    return chain(src, Actor("mid"), Collect("sink"), capacity=[2, 3])


def counters(sup: Supervisor) -> list[tuple[Any, ...]]:
    return [(a.rows_in, a.rows_out, a.items_buffered) for a in sup.stats().actors]


async def test_paused_graph_stops_at_the_next_batch_boundary(
    autojump_clock: trio.testing.MockClock,
) -> None:
    g = graph()
    with trio.fail_after(10_000):
        async with open_supervisor(g) as sup:
            await trio.sleep(5.5)  # mailboxes are full by now: the sink is slow
            assert sup.stats()["sink"].items_buffered == 3
            sup.pause()
            sup.pause()  # idempotent
            assert sup.state is S.PAUSED
            await trio.sleep(1.0)  # the batch the sink was in the middle of finishes
            frozen = counters(sup)
            await trio.sleep(100.0)
            assert counters(sup) == frozen
            assert [a.state for a in g] == [S.PAUSED] * 3
            sup.resume()
            sup.resume()  # idempotent
            assert sup.stats().state is S.RUNNING
            assert [a.state for a in g] == [S.RUNNING] * 3
            await trio.sleep(5.0)
            assert counters(sup) != frozen
            await sup.cancel(graceful=False)


async def test_pausing_one_actor_backs_up_behind_it(autojump_clock: trio.testing.MockClock) -> None:
    g = graph()
    with trio.fail_after(10_000):
        async with open_supervisor(g) as sup:
            sup.pause("mid")
            assert g["mid"].state is S.PAUSED and g["src"].state is S.RUNNING
            assert sup.state is S.RUNNING
            await trio.sleep(1.0)
            before = sup.stats()
            await trio.sleep(50.0)
            after = sup.stats()
            assert after["mid"].rows_in == before["mid"].rows_in
            assert after["mid"].items_buffered == 2  # full: the source is held back
            assert after["src"].rows_out == before["src"].rows_out
            sup.resume("mid")
            await trio.sleep(5.0)
            assert sup.stats()["mid"].rows_in > after["mid"].rows_in
            await sup.cancel(graceful=False)


async def test_pause_with_a_timeout_resumes_by_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    g = graph()
    with trio.fail_after(10_000):
        async with open_supervisor(g) as sup:
            start = trio.current_time()
            sup.pause(timeout=5.0)
            await trio.sleep(4.9)
            assert sup.state is S.PAUSED
            await g["src"].wait_state(S.RUNNING)
            assert trio.current_time() - start == 5.0
            assert sup.stats().state is S.RUNNING
            # A later pause supersedes an earlier timer; resume cancels it.
            sup.pause("mid", timeout=2.0)
            sup.pause("mid")
            await trio.sleep(10.0)
            assert g["mid"].state is S.PAUSED
            sup.pause("mid", timeout=3.0)
            sup.resume("mid")
            sup.pause("mid")
            await trio.sleep(10.0)
            assert g["mid"].state is S.PAUSED
            await sup.cancel(graceful=False)


async def test_control_after_the_end_is_a_no_op() -> None:
    g = chain(Source("src"), Collect("sink"))
    async with open_supervisor(g) as sup:
        pass
    assert sup.state is S.COMPLETED
    sup.pause(timeout=1.0)
    sup.pause("sink", timeout=1.0)
    sup.resume()
    sup.resume("src")
    await sup.cancel()
    await sup.cancel(graceful=False)
    assert sup.state is S.COMPLETED
    with pytest.raises(KeyError):
        sup.pause("nobody")


def test_actor_pause_and_resume_semantics() -> None:
    actor = Actor("a")
    actor.pause()  # before it runs: remembered, no transition
    assert actor.state is S.CREATED and actor.paused
    actor.resume()
    assert not actor.paused
    cell_of(actor).life.transition(S.RUNNING)
    actor.pause()
    assert actor.state is S.PAUSED
    cell_of(actor).life.transition(S.DRAINING)
    actor.resume()
    assert actor.state is S.DRAINING and not actor.paused
    cell_of(actor).life.transition(S.COMPLETED)
    with pytest.raises(
        InvalidTransition, match=r"^actor 'a': illegal transition COMPLETED -> PAUSED$"
    ):
        actor.pause()
    with pytest.raises(
        InvalidTransition, match=r"^actor 'a': illegal transition COMPLETED -> RUNNING$"
    ):
        actor.resume()


@attrs.define(eq=False)
class Inbox(Source):
    """A source that waits for input, like a socket."""

    pending: list[dict[str, int]] = attrs.field(factory=list)
    arrived: trio.Event = attrs.field(factory=trio.Event)

    async def produce(self) -> None:
        while True:
            await self.arrived.wait()
            self.arrived = trio.Event()
            records, self.pending = self.pending, []
            await self.send_records(records)


async def test_a_paused_idle_source_holds_input_that_arrives(
    autojump_clock: trio.testing.MockClock,
) -> None:
    src = Inbox("src")
    sink = Collect("sink")
    g = chain(src, sink, capacity=4)
    with trio.fail_after(100):
        async with open_supervisor(g) as sup:
            await trio.testing.wait_all_tasks_blocked()
            sup.pause()
            src.pending.append({"i": 1})
            src.arrived.set()
            await trio.sleep(5)
            assert cell_of(sink).inbox is not None
            assert cell_of(sink).inbox.sent == 0  # nothing left the paused source
            sup.resume()
            await trio.sleep(5)
            assert sink.rows == [1]
            await sup.cancel(graceful=False)
