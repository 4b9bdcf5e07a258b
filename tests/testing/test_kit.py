"""partita.testing on itself: run_sync, the virtual-time harness, faults, strategies."""

from __future__ import annotations

import doctest
import subprocess
import sys
import time

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import partita.testing
from partita import (
    ActorFailed,
    CollectSink,
    Flow,
    IterableSource,
    RestartIntensityExceeded,
    RestartPolicy,
)
from partita.testing import (
    Advance,
    Crash,
    CrashAfter,
    InjectedFault,
    Pause,
    Resume,
    Send,
    SlowSink,
    TestStream,
    Timed,
    interleavings,
    open_harness,
    records,
    run_steps,
    run_sync,
    streams,
)

WINDOW = "SELECT k, COUNT(*) AS n FROM t GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"


def test_docstring_examples() -> None:
    result = doctest.testmod(partita.testing, raise_on_error=False, verbose=False)
    assert result.failed == 0
    assert result.attempted >= 15


def test_importing_partita_and_the_kit_does_not_import_hypothesis() -> None:
    code = (
        "import sys, partita, partita.testing\n"
        "from partita.testing import run_sync, open_harness, CrashAfter\n"
        "assert 'hypothesis' not in sys.modules, 'imported'\n"
        "partita.testing.streams\n"
        "assert 'hypothesis' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ run_sync


def test_run_sync_runs_sql_a_pipeline_function_and_a_flow() -> None:
    data = [{"k": "a", "v": 1}, {"k": "b", "v": 2}, {"k": "a", "v": 3}]
    rows = run_sync("SELECT k, SUM(v) AS s FROM t GROUP BY k", data, partitions=2)
    assert sorted(rows, key=lambda r: r["k"]) == [{"k": "a", "s": 4}, {"k": "b", "s": 2}]
    assert run_sync(lambda s: s.filter(lambda r: r["v"] > 1), data) == data[1:]
    out = CollectSink("out")
    flow = Flow()
    flow.source(IterableSource("src", data)).map(lambda r: {"v": -r["v"]}).sink(out)
    assert run_sync(flow) == [{"v": -1}, {"v": -2}, {"v": -3}]


def test_run_sync_errors() -> None:
    flow = Flow()
    flow.source(IterableSource("src", [{"x": 1}])).sink(CollectSink("a"))
    with pytest.raises(TypeError, match=r"^a Flow has its own sources"):
        run_sync(flow, [{"x": 1}])
    two = Flow()
    stream = two.source(IterableSource("src", []))
    stream.sink(CollectSink("a"))
    stream.sink(CollectSink("b"))
    with pytest.raises(
        TypeError, match=r"^a Flow's output is its one CollectSink; this one has 2$"
    ):
        run_sync(two)
    with pytest.raises(TypeError, match=r"^records must be all Timed or all plain records"):
        run_sync(WINDOW, [Timed(0, {"k": "a", "ts": 0}), {"k": "a", "ts": 1}])
    with pytest.raises(ActorFailed):
        run_sync(lambda s: s.map(lambda r: r["missing"]), [{"x": 1}])


def test_timed_records_arrive_on_virtual_time_and_silence_advances_event_time() -> None:
    # the second record comes 60 s after the first.  With an idle timeout the silence
    # moves the watermark on by the time idle (to ~60,100 ms): a record at 5,000 ms
    # is then late and dropped, one at 70,000 ms is not.  Without, nothing is late.
    # No real minute goes by.
    def events(ts: int) -> list[Timed]:
        return [Timed(0, {"k": "a", "ts": 100}), Timed(60, {"k": "b", "ts": ts})]

    start = time.monotonic()
    both = [{"k": "a", "n": 1}, {"k": "b", "n": 1}]
    assert run_sync(WINDOW, events(5_000), idle_timeout=1.0) == [{"k": "a", "n": 1}]
    assert run_sync(WINDOW, events(70_000), idle_timeout=1.0) == both
    assert run_sync(WINDOW, events(5_000)) == both
    assert time.monotonic() - start < 30
    with pytest.raises(ValueError, match=r"^events must arrive in order of 'at', got 1 after 2$"):
        run_sync(WINDOW, [Timed(2, {"ts": 0}), Timed(1, {"ts": 0})])


# ------------------------------------------------------------------- harness


async def test_a_window_closes_after_enough_silence_and_not_before(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_harness(WINDOW, idle_timeout=0.5) as h:
        await h.send([{"k": "a", "ts": 100}, {"k": "a", "ts": 900}])
        assert h.rows == []
        t0 = trio.current_time()
        await h.advance(0.4)  # less than the idle timeout: no tick yet
        assert h.rows == []
        await h.advance(0.2)  # the tick: the watermark moves 500+ ms, past 1000
        assert h.rows == [{"k": "a", "n": 2}]
        assert trio.current_time() - t0 == pytest.approx(0.6)
        await h.send([{"k": "a", "ts": 1_500}])
    assert h.rows == [{"k": "a", "n": 2}, {"k": "a", "n": 1}]  # the end closed the last


async def test_without_an_idle_timeout_silence_closes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_harness(WINDOW) as h:
        await h.send([{"k": "a", "ts": 100}])
        await h.advance(3_600)
        assert h.rows == []
        assert await h.end() == [{"k": "a", "n": 1}]


async def test_a_pause_holds_the_output_until_the_resume(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_harness(lambda s: s.map(lambda r: {"y": r["x"]})) as h:
        await h.send([{"x": 1}])
        assert h.rows == [{"y": 1}]
        await h.perform([Pause(), Send([{"x": 2}]), Advance(10), Send([{"x": 3}])])
        assert h.rows == [{"y": 1}]
        assert h.supervisor.state.name == "PAUSED"
        await h.perform([Resume()])
        assert h.rows == [{"y": 1}, {"y": 2}, {"y": 3}]


async def test_a_crash_without_a_restart_policy_fails_the_harness(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(ActorFailed) as info:
        async with open_harness(lambda s: s) as h:
            await h.perform([Crash(), Send([{"x": 1}])])
    assert isinstance(info.value.__cause__, InjectedFault)
    assert str(info.value.__cause__) == "injected crash in 'output' at batch 1 (crash 1 of 1)"


# -------------------------------------------------------------------- faults


def crash_flow(crash: CrashAfter, n: int, **options: object) -> tuple[list[dict[str, int]], Flow]:
    out = CollectSink("out")
    flow = Flow()
    src = IterableSource("src", [{"i": i} for i in range(n)], sizer=partita.BatchSizer.fixed(10))
    flow.source(src).via(crash).sink(out)
    return out.rows, flow


@pytest.mark.parametrize("at", [1, 7, 10, 11, 95])
def test_crash_after_n_records_crashes_at_the_nth_record(at: int) -> None:
    crash = CrashAfter("crash", records=at)
    rows, flow = crash_flow(crash, 100)
    with pytest.raises(ActorFailed) as info:
        run_sync(flow)
    fault = info.value.__cause__
    assert isinstance(fault, InjectedFault)
    assert fault.where == f"record {at}, offset {at - 1}"
    assert len(rows) == (at - 1) // 10 * 10  # the batches before the one holding it


def test_crash_after_n_batches_under_a_restart_policy_loses_and_repeats_nothing() -> None:
    crash = CrashAfter("crash", batches=3, times=4)
    _, flow = crash_flow(crash, 200)
    assert run_sync(flow, restart=RestartPolicy(max_restarts=10)) == [{"i": i} for i in range(200)]
    assert crash.crashes == 4
    assert crash.batches_seen == 20
    # more crashes than the intensity allows escalate
    crash = CrashAfter("crash", records=15, times=5)
    _, flow = crash_flow(crash, 200)
    with pytest.raises(RestartIntensityExceeded):
        run_sync(flow, restart=RestartPolicy(max_restarts=2, within=60))


def test_crash_after_options() -> None:
    with pytest.raises(ValueError, match=r"^give one of records= or batches=$"):
        CrashAfter("c")
    with pytest.raises(ValueError, match=r"^give one of records= or batches=$"):
        CrashAfter("c", records=1, batches=1)
    with pytest.raises(ValueError, match=r"^records must be >= 1, got 0$"):
        CrashAfter("c", records=0)


async def test_a_slow_sink_takes_virtual_time_and_holds_the_source_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = SlowSink("out", delay=2.0)
    flow = Flow(capacity=1)
    src = IterableSource("src", [{"i": i} for i in range(100)], sizer=partita.BatchSizer.fixed(10))
    flow.source(src).sink(sink)
    start = trio.current_time()
    stats = await flow.run()
    assert trio.current_time() - start == pytest.approx(20.0)  # ten batches, 2 s each
    assert sink.batches == 10 and len(sink.rows) == 100
    assert stats["out"].high_water <= 1


# ---------------------------------------------------------------- strategies


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2_000),
    st.integers(0, 3_000),
    st.sampled_from([0.0, 0.2]),
    st.data(),
)
def test_streams_keep_their_promises(
    disorder: int, extra_lateness: int, p: float, data: st.DataObject
) -> None:
    lateness = disorder + extra_lateness
    stream = data.draw(
        streams(
            disorder_ms=disorder,
            lateness_ms=lateness,
            late=p,
            duplicates=p,
            bad=p,
            idle_gap=2.0,
            max_size=30,
        )
    )
    stream.check_invariants()
    assert (stream.disorder_ms, stream.lateness_ms) == (disorder, lateness)
    high = None
    for i, event in enumerate(stream.events):
        if i in stream.late or i in stream.bad:
            continue
        ts = event.record["ts"]
        if high is not None:
            assert high - ts <= disorder <= lateness  # within the stated lateness
        high = ts if high is None else max(high, ts)
    if p == 0.0:
        assert stream.late == stream.duplicates == stream.bad == frozenset()


def test_check_invariants_catches_a_stream_that_breaks_its_promise() -> None:
    # the broken twin: a record 300 ms behind in a stream that promises 100
    events = (Timed(0, {"ts": 1_000}), Timed(0, {"ts": 700}))
    with pytest.raises(AssertionError, match="event 1 is out of order by more"):
        TestStream(events, "ts", 100, 100).check_invariants()
    with pytest.raises(AssertionError, match="late event 1 is not late"):
        TestStream(events, "ts", 100, 500, late=frozenset({1})).check_invariants()
    with pytest.raises(AssertionError, match="event 1 is no duplicate"):
        TestStream(events, "ts", 500, 500, duplicates=frozenset({1})).check_invariants()
    TestStream(events, "ts", 300, 300).check_invariants()


@given(records({"k": ["x", "y"], "n": int, "f": float, "s": str, "b": bool}))
def test_records_follow_the_schema(record: dict[str, object]) -> None:
    assert set(record) == {"k", "n", "f", "s", "b"}
    assert record["k"] in ("x", "y")
    assert isinstance(record["n"], int) and isinstance(record["f"], float)
    assert isinstance(record["s"], str) and isinstance(record["b"], bool)


def test_strategy_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match=r"^field 'x': expected int, float, str, bool"):
        records({"x": dict})
    with pytest.raises(ValueError, match=r"^late must be a probability in \[0, 1\], got 2$"):
        streams(late=2)
    with pytest.raises(ValueError, match=r"^disorder_ms must be >= 0, got -1$"):
        streams(disorder_ms=-1)


DATA = [{"i": i} for i in range(30)]


@settings(max_examples=40, deadline=None)
@given(interleavings(DATA, crash=True, cancel=True))
def test_an_interleaving_sends_everything_once_and_leaves_nothing_paused(steps: list) -> None:
    assert [r for s in steps if isinstance(s, Send) for r in s.records] == DATA
    paused = False
    for step in steps:
        if isinstance(step, Pause):
            paused = True
        elif isinstance(step, Resume):
            paused = False
    assert not paused


@settings(max_examples=25, deadline=None)
@given(interleavings(DATA, crash=True))
def test_an_interleaving_really_pauses_and_crashes(steps: list) -> None:
    # replay the steps one at a time and look after each: while paused, nothing
    # comes out; a crash restarts the sink; the output equals the input in order
    async def main() -> tuple[list[dict[str, int]], int]:
        async with open_harness(lambda s: s, restart=RestartPolicy(max_restarts=100)) as h:
            paused_at: int | None = None
            for step in steps:
                await h.perform([step])
                if isinstance(step, Pause):
                    paused_at = len(h.rows)
                elif isinstance(step, Resume):
                    paused_at = None
                if paused_at is not None:
                    assert len(h.rows) == paused_at
                    assert h.supervisor.state.name == "PAUSED"
        return h.rows, h.stats().restarts

    rows, restarts = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert rows == DATA
    crashes = sum(isinstance(s, Crash) for s in steps)
    sent_after_crash = any(
        isinstance(s, Send)
        for i, s in enumerate(steps)
        if any(isinstance(c, Crash) for c in steps[:i])
    )
    assert restarts <= crashes
    if sent_after_crash:
        assert restarts >= 1


@settings(max_examples=20, deadline=None)
@given(streams(disorder_ms=400, max_size=25, idle_gap=3.0), st.data())
def test_a_window_query_under_any_interleaving_equals_its_plain_run(
    stream: TestStream, data: st.DataObject
) -> None:
    # what a user's property test looks like: the same input, fed with pauses,
    # silences and sink crashes, gives the rows of a plain run (no idle timeout:
    # with one, silence moves event time on, and that changes what is late)
    options = {"allowed_lateness": 400, "restart": RestartPolicy(max_restarts=100)}
    expected = run_sync(WINDOW, stream.records, **options)
    steps = data.draw(interleavings(stream.records, crash=True))
    got = run_steps(WINDOW, steps, **options)
    key = lambda r: (r["k"], r["n"])  # noqa: E731
    assert sorted(got, key=key) == sorted(expected, key=key)
