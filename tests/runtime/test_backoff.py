"""Restart backoff: capped exponential waits with jitter, on virtual time, in the stats."""

from __future__ import annotations

import random

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from partita.runtime import (
    Actor,
    ActorState,
    Backoff,
    Batch,
    BatchSizer,
    Graph,
    RestartPolicy,
    Strategy,
    open_supervisor,
    run_graph,
)
from tests.runtime._helpers import Collect, Counter, chain


class Boom(Exception):
    pass


@attrs.define(eq=False)
class Flaky(Actor):
    """Raises at the given input batches (counting from 1); notes when it crashed and
    when it started."""

    crash_at: set[int] = attrs.field(factory=set, kw_only=True)
    seen: int = attrs.field(init=False, default=0)
    crashed_at: list[float] = attrs.field(init=False, factory=list)
    started_at: list[float] = attrs.field(init=False, factory=list)

    def on_start(self) -> None:
        self.started_at.append(trio.current_time())

    def on_batch(self, batch: Batch) -> None:
        self.seen += 1
        if self.seen in self.crash_at:
            self.crashed_at.append(trio.current_time())
            raise Boom(f"boom at batch {self.seen}")
        self.emit(list(batch.records))


def graph(flaky: Flaky, n: int = 100, delay: float = 0.0) -> tuple[Graph, Collect]:
    src = Counter("src", limit=n, sizer=BatchSizer.fixed(10))
    sink = Collect("sink", delay=delay)
    return chain(src, flaky, sink, capacity=2), sink


def waits(flaky: Flaky) -> list[float]:
    """How long each restart waited: from a crash to the next start."""
    return [s - c for c, s in zip(flaky.crashed_at, flaky.started_at[1:], strict=True)]


async def test_waits_double_from_min_up_to_max(autojump_clock: trio.testing.MockClock) -> None:
    flaky = Flaky("mid", crash_at={2, 3, 4, 5})
    g, sink = graph(flaky)
    backoff = Backoff(min=1.0, max=3.0, random_factor=0.0)
    policy = RestartPolicy(max_restarts=10, within=1000.0, backoff=backoff)
    stats = await run_graph(g, restart=policy)
    assert stats.state is ActorState.COMPLETED
    assert sink.rows == list(range(100))  # each crashed batch handled again
    assert waits(flaky) == [1.0, 2.0, 3.0, 3.0]
    assert (stats.restarts, stats["mid"].restarts) == (4, 4)
    assert stats.backoff_time == 9.0


async def test_without_backoff_a_restart_is_immediate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Flaky("mid", crash_at={2, 3})
    g, _ = graph(flaky)
    stats = await run_graph(g, restart=RestartPolicy(max_restarts=5))
    assert waits(flaky) == [0.0, 0.0]
    assert (stats.restarts, stats.backoff_time) == (2, 0.0)


async def test_jitter_is_seeded_and_within_the_random_factor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backoff = Backoff(min=0.5, max=4.0, random_factor=0.5, seed=42)
    policy = RestartPolicy(max_restarts=10, within=1000.0, backoff=backoff)
    runs = []
    for _ in range(2):
        flaky = Flaky("mid", crash_at={2, 3, 4, 5, 6})
        g, _ = graph(flaky)
        stats = await run_graph(g, restart=policy)
        runs.append((waits(flaky), stats.backoff_time))
    assert runs[0][0] == pytest.approx(runs[1][0])  # the same seed, the same waits
    rng = random.Random(42)
    expected = [min(4.0, 0.5 * 2**n) * (1 + 0.5 * rng.random()) for n in range(5)]
    assert runs[0][0] == pytest.approx(expected)
    for n, wait in enumerate(runs[0][0]):
        base = min(4.0, 0.5 * 2**n)
        assert base - 1e-9 <= wait < base * 1.5
    assert runs[0][1] == pytest.approx(sum(expected))


async def test_crashes_further_apart_than_the_window_start_again_from_min(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # the sink takes a second a batch: crashes eight batches apart are ~8 s apart,
    # more than the 5 s window, so none of them counts the one before it
    flaky = Flaky("mid", crash_at={3, 11, 19})
    g, _ = graph(flaky, n=300, delay=1.0)
    backoff = Backoff(min=0.25, max=8.0, random_factor=0.0)
    stats = await run_graph(g, restart=RestartPolicy(max_restarts=1, within=5.0, backoff=backoff))
    assert stats.state is ActorState.COMPLETED
    assert waits(flaky) == [0.25, 0.25, 0.25]
    assert stats.backoff_time == 0.75


async def test_one_for_all_waits_for_the_crashed_actor_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Flaky("mid", crash_at={2})
    g, sink = graph(flaky)
    backoff = Backoff(min=2.0, max=2.0, random_factor=0.0)
    policy = RestartPolicy(Strategy.ONE_FOR_ALL, backoff=backoff)
    stats = await run_graph(g, restart=policy)
    assert waits(flaky) == [2.0]
    assert (stats["src"].restarts, stats["mid"].restarts, stats["sink"].restarts) == (1, 1, 1)
    assert stats.backoff_time == 2.0
    assert sink.rows == list(range(100))


async def test_cancelling_during_a_backoff_ends_the_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Flaky("mid", crash_at={2})
    g, _ = graph(flaky)
    backoff = Backoff(min=100.0, max=100.0, random_factor=0.0)
    async with open_supervisor(g, restart=RestartPolicy(backoff=backoff)) as sup:
        while not flaky.crashed_at:
            await trio.testing.wait_all_tasks_blocked()
            await trio.sleep(0.5)
        await trio.sleep(3.0)
        assert flaky.state is ActorState.FAILED  # waiting to restart
        start = trio.current_time()
        await sup.cancel(graceful=False)
        assert trio.current_time() == start  # no wait for the backoff to end
    stats = sup.stats()
    assert stats.state is ActorState.CANCELLED
    assert len(flaky.started_at) == 1
    assert stats.backoff_time == pytest.approx(trio.current_time() - flaky.crashed_at[0])


@given(
    st.floats(0.001, 100.0),
    st.floats(1.0, 1000.0),
    st.floats(0.0, 2.0),
    st.integers(0, 200),
    st.integers(0, 2**32),
)
def test_a_delay_is_the_capped_doubling_times_at_most_the_random_factor(
    low: float, factor: float, random_factor: float, n: int, seed: int
) -> None:
    backoff = Backoff(min=low, max=low * factor, random_factor=random_factor)
    delay = backoff.delay(n, random.Random(seed))
    base = min(low * factor, low * 2.0**n)
    assert base <= delay <= base * (1 + random_factor)
    assert delay <= backoff.max * (1 + random_factor)


def test_backoff_validation() -> None:
    with pytest.raises(ValueError, match="'min' must be > 0"):
        Backoff(min=0)
    with pytest.raises(ValueError, match=r"^backoff max \(1.0\) must be >= min \(2.0\)$"):
        Backoff(min=2.0, max=1.0)
    with pytest.raises(ValueError, match="'random_factor' must be >= 0"):
        Backoff(random_factor=-0.1)
    with pytest.raises(TypeError, match=r"^backoff must be a Backoff or None, got 1\.5$"):
        RestartPolicy(backoff=1.5)  # type: ignore[arg-type]
