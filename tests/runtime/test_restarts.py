"""Restart policies: one-for-one, one-for-all, and the intensity limit."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

import attrs
import pytest
import trio
import trio.testing

from partita.runtime import (
    Actor,
    ActorState,
    Batch,
    BatchSizer,
    Graph,
    RestartIntensityExceeded,
    RestartPolicy,
    Sink,
    Strategy,
    Watermark,
    run_graph,
)
from tests.runtime._helpers import Collect, Counter, chain

S = ActorState


class Boom(Exception):
    pass


@attrs.define(eq=False)
class Flaky(Actor):
    """Raises at the given input batches (counting from 1), after emitting."""

    crash_at: set[int] = attrs.field(factory=set, kw_only=True)
    crash_on_watermark: bool = attrs.field(default=False, kw_only=True)
    seen: int = attrs.field(init=False, default=0)
    starts: int = attrs.field(init=False, default=0)
    errors: list[Boom] = attrs.field(init=False, factory=list)

    def on_start(self) -> None:
        self.starts += 1

    def on_batch(self, batch: Batch) -> None:
        self.seen += 1
        self.emit(list(batch.records))
        if self.seen in self.crash_at:
            self.errors.append(Boom(f"boom {len(self.errors) + 1}"))
            raise self.errors[-1]

    def on_watermark(self, ts: int) -> None:
        self.emit_message(Watermark(ts))
        if self.crash_on_watermark:
            self.crash_on_watermark = False
            raise Boom("in on_watermark")


def graph(flaky: Flaky, n: int = 100) -> tuple[Graph, Collect]:
    src = Counter("src", limit=n, watermarks=True, sizer=BatchSizer.fixed(10))
    sink = Collect("sink")
    return chain(src, flaky, sink, capacity=2), sink


async def test_one_for_one_restarts_only_the_crashed_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Flaky("mid", crash_at={3})
    g, sink = graph(flaky)
    stats = await run_graph(g, restart=RestartPolicy(Strategy.ONE_FOR_ONE))
    assert stats.state is S.COMPLETED
    assert sink.rows == list(range(100))  # the crashed batch handled again, once
    assert (stats["src"].restarts, stats["mid"].restarts, stats["sink"].restarts) == (0, 1, 0)
    assert stats.restarts == 1
    assert flaky.starts == 2
    assert stats["mid"].rows_in == stats["mid"].rows_out == 100


async def test_one_for_all_restarts_every_live_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Flaky("mid", crash_at={3})
    g, sink = graph(flaky)
    stats = await run_graph(g, restart=RestartPolicy(Strategy.ONE_FOR_ALL))
    assert stats.state is S.COMPLETED
    assert sink.rows == list(range(100))
    assert (stats["src"].restarts, stats["mid"].restarts, stats["sink"].restarts) == (1, 1, 1)
    assert stats.restarts == 1


async def test_exceeding_the_intensity_fails_with_the_original_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Flaky("mid", crash_at={2, 3, 4})
    g, _ = graph(flaky)
    policy = RestartPolicy(max_restarts=2, within=10.0)
    message = (
        "actor 'mid' failed 3 times within 10s, more than its restart intensity allows; "
        "last error: Boom: boom 3"
    )
    with pytest.raises(RestartIntensityExceeded, match=f"^{re.escape(message)}$") as info:
        await run_graph(g, restart=policy)
    assert info.value.__cause__ is flaky.errors[-1]
    assert info.value.error is flaky.errors[-1]
    assert (info.value.actor, info.value.restarts, info.value.within) == ("mid", 2, 10.0)
    assert all(a.state in (S.FAILED, S.CANCELLED) for a in g)
    assert flaky.state is S.FAILED


async def test_crashes_spread_out_in_time_never_escalate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The sink takes a second a batch; once the mailboxes are full, so does "mid", and
    # crashes four batches apart are about four seconds apart.
    flaky = Flaky("mid", crash_at={8, 12, 16, 20})
    g, sink = graph(flaky, n=200)
    stats = await run_graph(g, restart=RestartPolicy(max_restarts=1, within=2.5))
    assert stats.state is S.COMPLETED
    assert stats.restarts == 4
    assert sink.rows == list(range(200))


async def test_zero_restarts_fails_at_the_first_crash() -> None:
    flaky = Flaky("mid", crash_at={1})
    g, _ = graph(flaky)
    with pytest.raises(RestartIntensityExceeded, match=r"^actor 'mid' failed 1 times within 5s"):
        await run_graph(g, restart=RestartPolicy(max_restarts=0))


async def test_a_watermark_whose_handler_crashed_is_not_lost(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Flaky("mid", crash_on_watermark=True)
    g, sink = graph(flaky, n=30)
    stats = await run_graph(g, restart=RestartPolicy())
    assert stats.restarts == 1
    assert sink.watermarks == [10, 20, 30]
    assert sink.rows == list(range(30))


@attrs.define(eq=False)
class BadStart(Actor):
    starts: int = attrs.field(init=False, default=0)

    def on_start(self) -> None:
        self.starts += 1
        if self.starts == 1:
            raise Boom("in on_start")


async def test_a_crash_in_on_start_restarts(autojump_clock: trio.testing.MockClock) -> None:
    src = Counter("src", limit=20, watermarks=True, sizer=BatchSizer.fixed(10))
    sink = Collect("sink")
    g = chain(src, BadStart("mid"), sink)
    with trio.fail_after(100):
        stats = await run_graph(g, restart=RestartPolicy())
    assert stats.restarts == 1
    assert sink.rows == list(range(20))


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="max_restarts"):
        RestartPolicy(max_restarts=-1)
    with pytest.raises(ValueError, match="within"):
        RestartPolicy(within=0)


@attrs.define(eq=False)
class SessionSink(Sink):
    """Records its sessions and where each call came: inside a session, in its task."""

    crash_at: set[int] = attrs.field(factory=set, kw_only=True)
    log: list[str] = attrs.field(init=False, factory=list)
    batches: int = attrs.field(init=False, default=0)
    _task: object = attrs.field(init=False, default=None)

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[None]:
        self.log.append("open")
        self._task = trio.lowlevel.current_task()
        try:
            yield
        except BaseException as exc:
            self.log.append(f"closed by {type(exc).__name__}")
            raise
        finally:
            self._task = None
        self.log.append("closed")

    def open_session(self) -> contextlib.AbstractAsyncContextManager[object]:
        return self._session()

    def _inside(self, what: str) -> None:
        assert self._task is trio.lowlevel.current_task(), what
        self.log.append(what)

    async def consume(self, batch: Batch) -> None:
        self.batches += 1
        await trio.sleep(1)
        self._inside("batch")
        if self.batches in self.crash_at:
            raise Boom(f"batch {self.batches}")

    async def flush(self) -> None:
        self._inside("flush")

    async def aclose(self) -> None:
        assert self._task is None
        self.log.append("aclose")


async def test_a_sinks_session_spans_each_run_and_is_closed_before_aclose(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = SessionSink("sink", crash_at={2})
    src = Counter("src", limit=30, sizer=BatchSizer.fixed(10))
    stats = await run_graph(chain(src, sink), restart=RestartPolicy(Strategy.ONE_FOR_ONE))
    assert stats.state is S.COMPLETED and stats["sink"].restarts == 1
    assert sink.log == [
        *("open", "batch", "batch", "closed by Boom", "aclose"),
        *("open", "batch", "batch", "flush", "closed", "aclose"),
    ]


async def test_a_cancelled_sink_closes_its_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = SessionSink("sink")
    src = Counter("src", sizer=BatchSizer.fixed(10))  # never ends
    with trio.move_on_after(5):
        await run_graph(chain(src, sink))
    assert sink.log[0] == "open" and sink.log[-2:] == ["closed by Cancelled", "aclose"]
    assert set(sink.log[1:-2]) == {"batch"}
