"""The harness while paused: its input is bounded (no silent hang), and a pause is not
silence (idle ticks count only the time the graph ran: event time comes from records)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from partita.testing import (
    Advance,
    Pause,
    Resume,
    Send,
    open_harness,
)

WINDOW = "SELECT k, COUNT(*) AS n FROM t GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"


async def test_a_pause_is_not_silence(autojump_clock: trio.testing.MockClock) -> None:
    # the record at 900 was sent while the graph was paused for ten seconds: the
    # input was never silent, so it joins its window (it was late: the pause had
    # moved event time on by ten seconds)
    async with open_harness(WINDOW, idle_timeout=0.5) as h:
        await h.send([{"k": "a", "ts": 100}])
        await h.perform([Pause(), Advance(10), Send([{"k": "a", "ts": 900}]), Resume()])
        assert h.rows == []
    assert h.rows == [{"k": "a", "n": 2}]
    assert h.stats().rows_late == 0


async def test_silence_around_a_pause_adds_up(autojump_clock: trio.testing.MockClock) -> None:
    # 0.3 s of silence, a pause of 30 s, then silence again: the idle tick comes once the
    # graph has run 0.5 s in silence (0.2 s after the resume) and moves event time on by
    # 500 ms, from 600 to 1,100, closing the window [0, 1000)
    async with open_harness(WINDOW, idle_timeout=0.5) as h:
        await h.send([{"k": "a", "ts": 600}])
        await h.perform([Advance(0.3), Pause(), Advance(30), Resume(), Advance(0.15)])
        assert h.rows == []  # 0.45 s of silence so far
        await h.advance(0.1)
        assert h.rows == [{"k": "a", "n": 1}]


async def test_the_input_holds_capacity_sends_while_paused_then_says_so(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):  # a hang is a failure, on virtual time
        async with open_harness(lambda s: s.map(lambda r: r), capacity=3) as h:
            h.pause()
            await h.settle()
            # the source, waiting on its input when the pause came, takes one list
            # more (its batch in hand, held at the boundary); then the input holds 3
            for i in range(4):
                await h.send([{"x": i}])
            assert h.pending == 3
            with pytest.raises(
                RuntimeError,
                match=r"^the harness's input holds 3 sends \(capacity=3\) and the graph is "
                r"paused: nothing can take a 4th until it resumes; resume\(\) first, or "
                r"open_harness\(capacity=\.\.\.\)$",
            ):
                await h.send([{"x": 4}])
            assert h.pending == 3  # the refused send is not in the input
            h.resume()
            await h.settle()
            assert h.rows == [{"x": i} for i in range(4)]
            await h.send([{"x": 4}])
    assert h.rows == [{"x": i} for i in range(5)]


async def test_a_full_input_of_a_running_graph_waits_backpressure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with (
        open_harness(lambda s: s.map(lambda r: r), capacity=2, sink_delay=10.0) as h,
        trio.open_nursery() as nursery,
    ):
        sent = 0

        async def feed() -> None:
            nonlocal sent
            for i in range(100):
                await h.send([{"x": i}])
                sent += 1

        nursery.start_soon(feed)
        await trio.sleep(1)
        # the sink takes 10 s a batch: the feeder waits, the input holds at most 2 sends
        # beyond what the graph has taken
        assert sent < 100
        assert h.pending == 2
        start = trio.current_time()
    assert sent == 100
    assert trio.current_time() - start > 500
    assert h.rows == [{"x": i} for i in range(100)]


def test_capacity_is_checked() -> None:
    async def main() -> None:
        async with open_harness(lambda s: s, capacity=0):
            pass  # pragma: no cover

    with pytest.raises(ValueError, match=r"^capacity must be an int >= 1, got 0$"):
        trio.run(main)
