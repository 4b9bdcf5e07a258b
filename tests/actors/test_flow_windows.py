"""Windows in a Flow: the same results as SQL's windows on the same input.

A Flow window keeps its windows in the SQL layer's window state, and judges every
record against the exact watermark as of it (DESIGN.md: the largest event time so
far in source order, less the allowed lateness).  So a Flow window and the
equivalent ``GROUP BY k, TUMBLE/HOP/SESSION(...)`` query give the same rows, the
same late count and the same late dead letters, whatever the batches and lanes.
"""

from __future__ import annotations

import doctest
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from partita.actors import (
    CollectSink,
    Flow,
    FlowStream,
    HoppingWindow,
    IterableSource,
    OperatorError,
    SessionWindow,
    TumblingWindow,
    run_sql,
)
from partita.runtime import (
    ActorFailed,
    BatchSizer,
    GraphStats,
    MemoryCheckpointStore,
    Record,
)
from tests.actors.test_recovery import Crash, CrashingSink, TickingSource

# -- the two sides ------------------------------------------------------------------------

AGGREGATES = "COUNT(*) AS n, SUM(x) AS s, MIN(x) AS lo, MAX(x) AS hi, AVG(x) AS m"

windows = st.one_of(
    st.tuples(st.just("tumble"), st.sampled_from((5, 10)), st.just(0)),
    st.tuples(st.just("hop"), st.just(10), st.sampled_from((3, 5, 10))),
    st.tuples(st.just("session"), st.sampled_from((3, 7)), st.just(0)),
)


def windower(kind: str, size: int, slide: int) -> Any:
    if kind == "tumble":
        return TumblingWindow(size)
    if kind == "hop":
        return HoppingWindow(size, slide=slide)
    return SessionWindow(size)


def sql_window(kind: str, size: int, slide: int) -> str:
    if kind == "tumble":
        return f"TUMBLE(ts, INTERVAL '{size}' MILLISECOND)"
    if kind == "hop":
        return f"HOP(ts, INTERVAL '{slide}' MILLISECOND, INTERVAL '{size}' MILLISECOND)"
    return f"SESSION(ts, INTERVAL '{size}' MILLISECOND)"


def key_of(r: Record) -> Any:
    return r["k"]


def as_set(rows: list[Record]) -> Counter[str]:
    return Counter(json.dumps(r, sort_keys=True) for r in rows)


def late_of(stats: GraphStats) -> int:
    return sum(a.rows_late for a in stats.actors)


async def flow_run(
    records: list[Record],
    window: tuple[str, int, int],
    *,
    lateness: int = 0,
    late: str = "drop",
    emit: str = "final",
    partitions: int = 1,
    batch: int = 4,
) -> tuple[list[Record], GraphStats, Flow]:
    out = CollectSink("out")
    flow = Flow()
    (
        flow.source(IterableSource("in", records, sizer=BatchSizer.fixed(batch)))
        .key_by(key_of, partitions=partitions)
        .window(windower(*window), ts="ts", allowed_lateness=lateness, late=late, emit=emit)  # type: ignore[arg-type]
        .aggregate(n="count", s=("sum", "x"), lo=("min", "x"), hi=("max", "x"), m=("mean", "x"))
        .sink(out)
    )
    stats = await flow.run()
    return out.rows, stats, flow


async def sql_run(
    records: list[Record],
    window: tuple[str, int, int],
    *,
    lateness: int = 0,
    late: str = "drop",
    emit: str = "final",
    partitions: int = 1,
    batch: int = 4,
) -> Any:
    query = (
        f"SELECT k AS key, window_start, window_end, {AGGREGATES} FROM t "
        f"GROUP BY k, {sql_window(*window)} EMIT {emit.upper()}"
    )
    return await run_sql(
        query,
        records,
        allowed_lateness=lateness,
        late=late,  # type: ignore[arg-type]
        partitions=partitions,
        batch_size=batch,
    )


streams = st.lists(
    st.fixed_dictionaries(
        {
            "k": st.integers(0, 2),
            "ts": st.integers(0, 60),
            "x": st.one_of(st.none(), st.integers(-5, 9)),
        }
    ),
    max_size=25,
)


@settings(deadline=None, max_examples=60)
@given(
    records=streams,
    window=windows,
    lateness=st.sampled_from((0, 4)),
    late=st.sampled_from(("drop", "dead-letter", "update")),
    emit=st.sampled_from(("final", "changes")),
    partitions=st.sampled_from((1, 2)),
    batch=st.sampled_from((1, 3, 50)),
)
def test_a_flow_window_gives_the_rows_of_the_sql_window(
    records: list[Record],
    window: tuple[str, int, int],
    lateness: int,
    late: str,
    emit: str,
    partitions: int,
    batch: int,
) -> None:
    opts: dict[str, Any] = {"lateness": lateness, "late": late, "emit": emit}

    async def main() -> None:
        rows, stats, flow = await flow_run(
            records, window, partitions=partitions, batch=batch, **opts
        )
        sql = await sql_run(records, window, partitions=2, batch=7, **opts)
        assert as_set(rows) == as_set(sql.rows)
        assert late_of(stats) == late_of(sql.stats)
        if late == "drop":
            assert flow.dead_letters == []
        else:  # "update" dead-letters what is no longer retained
            assert as_set([d.record for d in flow.dead_letters]) == as_set(  # type: ignore[misc]
                [d.record for d in sql.dead_letters]
            )

    trio.run(main)


# -- lateness, worked out by hand from DESIGN.md's rule -----------------------------------

# tumbling 10 ms, allowed lateness 5 ms; the watermark as of each record is the largest
# event time before it less 5:
#   ts  0: watermark -inf           -> [0, 10)
#   ts 12: watermark 0 - 5 = -5     -> [10, 20)
#   ts  3: watermark 12 - 5 = 7     -> [0, 10) is open (ends at 10 > 7): on time
#   ts 20: watermark 7              -> [20, 30)
#   ts  9: watermark 20 - 5 = 15    -> [0, 10) closed (10 <= 15): late
#   ts 14: watermark 15             -> [10, 20) open (20 > 15): on time
#   ts 10: watermark 15             -> [10, 20): on time
#   ts  4: watermark 15             -> late
LATENESS_INPUT = [{"k": "a", "ts": t, "x": 1} for t in (0, 12, 3, 20, 9, 14, 10, 4)]


@pytest.mark.parametrize("partitions", [1, 3])
async def test_late_records_are_counted_by_the_exact_watermark(partitions: int) -> None:
    rows, stats, flow = await flow_run(
        LATENESS_INPUT, ("tumble", 10, 10), lateness=5, partitions=partitions, batch=3
    )
    got = sorted((r["window_start"], r["n"]) for r in rows)
    assert got == [(0, 2), (10, 3), (20, 1)]
    assert late_of(stats) == 2
    assert flow.dead_letters == []  # "drop": counted only


async def test_late_records_are_dead_lettered_with_why() -> None:
    rows, stats, flow = await flow_run(
        LATENESS_INPUT, ("tumble", 10, 10), lateness=5, late="dead-letter", batch=2
    )
    assert sorted((r["window_start"], r["n"]) for r in rows) == [(0, 2), (10, 3), (20, 1)]
    letters = flow.dead_letters
    assert [(d.record["ts"], d.offset) for d in letters] == [(9, 4), (4, 7)]  # type: ignore[index]
    assert letters[0].reason == "late: event time 9 is behind watermark 15; its windows are closed"
    assert late_of(stats) == 2


async def test_a_hopping_record_joins_its_open_windows_only() -> None:
    # hop 10 every 5: ts 7 is in [0, 10) and [5, 15); ts 15 in [10, 20) and [15, 25);
    # ts 11 comes at watermark 15 (no lateness): of its windows [5, 15) is closed
    # (15 <= 15) and [10, 20) open, so it joins [10, 20) only and is not late
    records = [{"k": "a", "ts": t, "x": t} for t in (7, 15, 11)]
    rows, stats, _ = await flow_run(records, ("hop", 10, 5))
    got = sorted((r["window_start"], r["n"], r["s"]) for r in rows)
    assert got == [(0, 1, 7), (5, 1, 7), (10, 2, 26), (15, 1, 15)]
    assert late_of(stats) == 0


# -- sessions, EMIT CHANGES, folds --------------------------------------------------------


def add(acc: int, r: Record) -> int:
    return acc + r["x"]


def plus(a: int, b: int) -> int:
    return a + b


async def test_sessions_that_a_record_bridges_merge() -> None:
    # gap 5: ts 0 and ts 10 open two sessions, [0, 5) and [10, 15); ts 5 touches both
    # (records exactly gap apart join one session) and merges them into [0, 15)
    records = [{"k": "a", "ts": t, "x": x} for t, x in ((0, 1), (10, 2), (5, 4), (30, 8))]
    out = CollectSink("out")
    flow = Flow()
    (
        flow.source(IterableSource("in", records, sizer=BatchSizer.fixed(1)))
        .key_by(key_of)
        .session(5, ts="ts", allowed_lateness=20)
        .fold(int, add, plus)
        .sink(out)
    )
    await flow.run()
    assert sorted((r["window_start"], r["window_end"], r["value"]) for r in out.rows) == [
        (0, 15, 7),
        (30, 35, 8),
    ]
    sql = await run_sql(
        "SELECT k AS key, window_start, window_end, SUM(x) AS value FROM t "
        "GROUP BY k, SESSION(ts, INTERVAL '5' MILLISECOND)",
        records,
        allowed_lateness=20,
        batch_size=1,
    )
    assert as_set(out.rows) == as_set(sql.rows)


async def test_emit_changes_emits_every_update_and_ends_at_the_final_row() -> None:
    records = [{"k": k, "ts": t, "x": t} for k, t in (("a", 1), ("b", 2), ("a", 3), ("a", 12))]
    changes, _, _ = await flow_run(records, ("tumble", 10, 10), emit="changes")
    final, _, _ = await flow_run(records, ("tumble", 10, 10))
    assert [(r["key"], r["window_start"], r["n"]) for r in changes] == [
        ("a", 0, 1),
        ("b", 0, 1),
        ("a", 0, 2),
        ("a", 10, 1),
    ]
    last = {(r["key"], r["window_start"]): r for r in changes}
    assert as_set(list(last.values())) == as_set(final)


async def window_rows(records: list[Record], end: Any, **window: Any) -> list[Record]:
    out = CollectSink("out")
    flow = Flow()
    stream = flow.source(IterableSource("in", records)).key_by(key_of, partitions=2)
    end(stream.tumbling(10, ts="ts", **window)).sink(out)
    await flow.run()
    return sorted(out.rows, key=lambda r: (r["key"], r["window_start"]))


async def test_reduce_collect_count_and_the_shorthands() -> None:
    records = [{"k": "a", "ts": t, "x": t % 4} for t in (1, 2, 5, 11)]

    def bigger(a: Record, b: Record) -> Record:
        return a if a["x"] >= b["x"] else b

    rows = await window_rows(records, lambda w: w.reduce(bigger))
    assert [(r["window_start"], r["value"]["ts"]) for r in rows] == [(0, 2), (10, 11)]
    rows = await window_rows(records, lambda w: w.collect())
    assert [[v["ts"] for v in r["value"]] for r in rows] == [[1, 2, 5], [11]]
    rows = await window_rows(records, lambda w: w.count())
    assert [r["count"] for r in rows] == [3, 1]
    for method, expected in (("sum", [4, 3]), ("min", [1, 3]), ("max", [2, 3])):
        rows = await window_rows(records, lambda w, m=method: getattr(w, m)("x"))
        assert [r[method] for r in rows] == expected
    rows = await window_rows(records, lambda w: w.mean(lambda r: r["x"] * 2))
    assert [r["mean"] for r in rows] == [pytest.approx(8 / 3), 6.0]


async def test_a_window_without_key_by_has_one_group_per_window() -> None:
    records = [{"ts": t} for t in (1, 2, 15)]
    out = CollectSink("out")
    flow = Flow()
    flow.source(IterableSource("in", records)).map(dict).tumbling(10, ts="ts").count().sink(out)
    await flow.run()
    assert out.rows == [
        {"key": None, "window_start": 0, "window_end": 10, "count": 2},
        {"key": None, "window_start": 10, "window_end": 20, "count": 1},
    ]


async def test_event_time_from_a_function_and_iso_text() -> None:
    records = [{"k": "a", "at": "1970-01-01T00:00:01.5"}, {"k": "a", "at": "1970-01-01T00:00:09"}]
    out = CollectSink("out")
    flow = Flow()
    (
        flow.source(IterableSource("in", records))
        .key_by(key_of)
        .tumbling("10s", ts=lambda r: r["at"])
        .count()
        .sink(out)
    )
    await flow.run()
    assert out.rows == [{"key": "a", "window_start": 0, "window_end": 10_000, "count": 2}]


# -- errors by policy ---------------------------------------------------------------------


def strict_add(acc: int, r: Record) -> int:
    return acc + r["x"]  # KeyError for a record without x


BAD_INPUT = [{"k": "a", "ts": 1, "x": 1}, {"k": "a", "ts": 2}, {"k": "a", "ts": 3, "x": 5}]


def strict_flow(on_error: str, out: CollectSink) -> Flow:
    flow = Flow()
    (
        flow.source(IterableSource("in", BAD_INPUT))
        .key_by(key_of)
        .tumbling(10, ts="ts")
        .fold(int, strict_add, name="sums", on_error=on_error)  # type: ignore[arg-type]
        .sink(out)
    )
    return flow


async def test_a_failing_step_fails_the_flow_naming_the_operator_and_offset() -> None:
    with pytest.raises(ActorFailed) as failed:
        await strict_flow("fail", CollectSink("out")).run()
    assert isinstance(failed.value.error, OperatorError)
    assert str(failed.value.error) == "window fold(strict_add) at record offset 1: KeyError 'x'"


async def test_a_failing_step_is_skipped_and_counted_or_dead_lettered() -> None:
    out = CollectSink("out")
    stats = await strict_flow("skip", out).run()
    assert [r["value"] for r in out.rows] == [6]
    assert stats["sums"].rows_errored == 1
    out = CollectSink("out")
    flow = strict_flow("dead-letter", out)
    await flow.run()
    assert [r["value"] for r in out.rows] == [6]
    [letter] = flow.dead_letters
    assert (letter.record, letter.offset) == ({"k": "a", "ts": 2}, 1)
    assert letter.reason == "window fold(strict_add): KeyError 'x'"


async def test_a_record_without_event_time_goes_to_the_policy() -> None:
    records = [{"k": "a", "ts": 1}, {"k": "a"}, {"k": "a", "ts": "soon"}, {"k": "a", "ts": 2}]
    out = CollectSink("out")
    flow = Flow(on_error="dead-letter")
    flow.source(IterableSource("in", records)).key_by(key_of).tumbling(10, ts="ts").count().sink(
        out
    )
    await flow.run()
    assert out.rows == [{"key": "a", "window_start": 0, "window_end": 10, "count": 2}]
    assert [d.offset for d in flow.dead_letters] == [1, 2]
    assert flow.dead_letters[0].reason == "window count(): KeyError 'ts'"


# -- build-time errors --------------------------------------------------------------------


async def async_step(acc: int, r: Record) -> int:
    return acc


def a_stream() -> FlowStream:
    return Flow().source(IterableSource("in", [])).key_by(key_of)


def test_bad_windows_are_refused_when_built() -> None:
    with pytest.raises(ValueError, match=r"slide \(10ms\) must be at most size \(5ms\)"):
        HoppingWindow(5, slide=10)
    with pytest.raises(ValueError, match="size must be positive, got 0"):
        TumblingWindow(0)
    with pytest.raises(ValueError, match="gap: '-1s' is not a duration"):
        SessionWindow("-1s")
    with pytest.raises(TypeError, match="size must be a duration"):
        TumblingWindow(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="window takes a TumblingWindow"):
        a_stream().window(10, ts="ts")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="late must be 'drop', 'dead-letter' or 'update'"):
        a_stream().tumbling(10, ts="ts", late="ignore")
    with pytest.raises(ValueError, match="emit must be 'final' or 'changes'"):
        a_stream().tumbling(10, ts="ts", emit="always")
    with pytest.raises(ValueError, match="allowed_lateness"):
        a_stream().tumbling(10, ts="ts", allowed_lateness="-5ms")


def test_bad_folds_are_refused_when_built() -> None:
    with pytest.raises(TypeError, match="fold\\(async_step\\): async_step is an async function"):
        a_stream().tumbling(10, ts="ts").fold(int, async_step)
    with pytest.raises(ValueError, match="fold on session windows needs merge="):
        a_stream().session(10, ts="ts").fold(int, add)
    with pytest.raises(ValueError, match="unknown function 'median'"):
        a_stream().tumbling(10, ts="ts").aggregate(m=("median", "x"))
    with pytest.raises(ValueError, match="only 'count' stands alone"):
        a_stream().tumbling(10, ts="ts").aggregate(s="sum")
    with pytest.raises(ValueError, match="at least one column"):
        a_stream().tumbling(10, ts="ts").aggregate()


def test_a_window_must_follow_key_by_when_the_lanes_split() -> None:
    stream = Flow().source(IterableSource("in", [])).key_by(key_of, partitions=2).map(dict)
    with pytest.raises(ValueError, match=r"window after key_by\(partitions=2\) and other"):
        stream.tumbling(10, ts="ts")


# -- checkpoints --------------------------------------------------------------------------


def build(path: Path, out: Path, *, crash_at: int | None = None, kind: str = "hop") -> Flow:
    flow = Flow()
    stream = flow.source(TickingSource("source", path, sizer=BatchSizer.fixed(5))).key_by(
        key_of, partitions=2, name="by-key"
    )
    if kind == "session":
        windowed = stream.session(4, ts="ts", allowed_lateness=3)
    else:
        windowed = stream.hopping(10, slide=5, ts="ts", allowed_lateness=3)
    windowed.fold(int, add, plus, name="sums").sink(CrashingSink("sink", out, crash_at=crash_at))
    return flow


@settings(deadline=None, max_examples=15)
@given(
    raw=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 80)), min_size=1, max_size=60),
    kind=st.sampled_from(("hop", "session")),
    crashes=st.lists(st.integers(1, 6), min_size=1, max_size=2),
)
def test_a_crashed_window_resumed_gives_the_uninterrupted_output(
    tmp_path_factory: pytest.TempPathFactory,
    raw: list[tuple[int, int]],
    kind: str,
    crashes: list[int],
) -> None:
    folder = tmp_path_factory.mktemp("flow")
    path = folder / "in.jsonl"
    lines = [json.dumps({"k": f"key-{k}", "ts": t, "x": t % 7}) for k, t in raw]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    expected, got = folder / "expected.jsonl", folder / "got.jsonl"

    async def main() -> None:
        await build(path, expected, kind=kind).run()
        store = MemoryCheckpointStore()
        for crash_at in crashes:
            try:
                await build(path, got, crash_at=crash_at, kind=kind).run(
                    checkpoint=store, checkpoint_interval="1ms"
                )
            except ActorFailed as failed:
                assert isinstance(failed.error, Crash)
                store = store.crashed()
            else:
                return
        await build(path, got, kind=kind).run(checkpoint=store, checkpoint_interval="1ms")

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert sorted(got.read_text().splitlines()) == sorted(expected.read_text().splitlines())


async def test_a_resumed_window_restores_its_open_windows(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"k": f"key-{i % 3}", "ts": i * 2 + (i % 5), "x": i} for i in range(300)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    store = MemoryCheckpointStore()
    with pytest.raises(ActorFailed, match="crash in batch 20"):
        await build(path, out, crash_at=20).run(checkpoint=store, checkpoint_interval="1ms")
    assert await store.latest() is not None
    stats = await build(path, out).run(checkpoint=store.crashed(), checkpoint_interval="1ms")
    assert stats.resumed_from is not None
    expected = tmp_path / "expected.jsonl"
    await build(path, expected).run()
    assert sorted(out.read_text().splitlines()) == sorted(expected.read_text().splitlines())


# -- the guide's example ------------------------------------------------------------------


def test_the_api_guide_window_example_prints_what_it_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text("utf-8")
    section = text.split("## Windows in a Flow", 1)[1]
    program, printed = re.findall(r"```(?:python)?\n(.*?)```", section, re.S)[:2]
    assert program.rstrip().endswith("trio.run(main)")
    namespace: dict[str, object] = {"__name__": "api_windows_example"}
    code = compile(program.replace("trio.run(main)", ""), "docs/api.md", "exec")
    exec(code, namespace)
    main = namespace["main"]
    assert callable(main)
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert capsys.readouterr().out == printed


def test_the_window_modules_docstring_examples() -> None:
    from partita.actors import _event_clock, _flow_windows, _window_aggs, _windowers

    for module in (_event_clock, _flow_windows, _window_aggs, _windowers):
        # Public classes report `partita` as their module once the facade hands them
        # out (partita._metadata), and doctest then skips them here: name them all.
        defined = {name: getattr(module, name) for name in getattr(module, "__all__", ())}
        finder = doctest.DocTestFinder(exclude_empty=True)
        runner = doctest.DocTestRunner(verbose=False)
        tests = finder.find(module)
        for name, obj in defined.items():
            tests += finder.find(obj, f"{module.__name__}.{name}", module=False, globs=vars(module))
        for test in tests:
            runner.run(test, out=lambda _: None)
        result = runner.summarize(verbose=False)
        assert result.failed == 0, module.__name__
        assert result.attempted > 0, module.__name__


async def test_window_rows_stream_out_of_flow_open() -> None:
    records = [{"k": "a", "ts": t} for t in (1, 2, 11, 25)]
    flow = Flow()
    flow.source(IterableSource("in", records)).key_by(key_of).tumbling(10, ts="ts").count()
    async with flow.open() as stream:
        got = [(row["window_start"], row["count"]) async for row in stream]
    assert got == [(0, 2), (10, 1), (20, 1)]


def test_open_windows_count_in_the_state_memory() -> None:
    from partita.actors._window_actor import WindowActor
    from partita.runtime import Batch

    flow = Flow()
    flow.source(IterableSource("in", [])).map(dict).tumbling(1_000, ts="ts").collect().sink(
        CollectSink("out")
    )
    [actor] = [a for a in flow.graph if isinstance(a, WindowActor)]
    empty = actor.state_nbytes()  # the state's own dicts
    actor.on_batch(Batch.from_records([{"ts": i, "text": "x" * 100} for i in range(50)]))
    assert actor.state_nbytes() > empty + 50 * 100  # the collected records, sampled
    actor.on_end()  # end of input closes (and drops) every window
    assert actor.state_nbytes() < empty + 1_000  # (an emptied dict keeps its table)
