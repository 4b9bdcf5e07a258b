"""Bounded runs: ``Flow.run`` and ``run_sql`` with ``count=`` and ``timeout=``, and the
CLI's ``--timeout``."""

from __future__ import annotations

import csv
import datetime
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from partita.actors import (
    AsyncIterableSource,
    CollectSink,
    CsvSink,
    Flow,
    IterableSource,
    JsonLinesSink,
    run_sql,
)
from partita.runtime import ActorState, BatchSizer, Record
from tests.actors.test_cli import _live_run, partita


def endless(size: int = 7, name: str = "in") -> IterableSource:
    return IterableSource(name, ({"x": i} for i in itertools.count()), sizer=BatchSizer.fixed(size))


async def ticking(every: float = 1.0) -> AsyncIterator[Record]:
    """A live feed: one record per ``every`` seconds of trio time, forever."""
    for i in itertools.count():
        await trio.sleep(every)
        yield {"x": i, "at": trio.current_time()}


# -------------------------------------------------------------------- count
async def test_flow_count_stops_after_exactly_n_rows_and_completes() -> None:
    out = CollectSink("out")
    flow = Flow(capacity=2)
    flow.source(endless()).map(lambda r: {"y": r["x"] * 2}).sink(out)
    stats = await flow.run(count=100)
    assert out.rows == [{"y": 2 * i} for i in range(100)]
    assert stats.stopped_by == "count"
    assert stats.state is ActorState.COMPLETED
    assert {a.state for a in stats.actors} == {ActorState.COMPLETED}


async def test_flow_count_is_the_rows_of_all_its_sinks_together() -> None:
    evens, odds = CollectSink("evens"), CollectSink("odds")
    flow = Flow(capacity=2)
    flow.source(endless(name="a")).filter(lambda r: r["x"] % 2 == 0).sink(evens)
    flow.source(endless(name="b")).filter(lambda r: r["x"] % 2 == 1).sink(odds)
    stats = await flow.run(count=51)
    assert len(evens.rows) + len(odds.rows) == 51
    assert evens.rows == [{"x": 2 * i} for i in range(len(evens.rows))]
    assert odds.rows == [{"x": 2 * i + 1} for i in range(len(odds.rows))]
    assert stats.stopped_by == "count"


async def test_a_count_the_input_never_reaches_is_a_whole_run() -> None:
    out = CollectSink("out")
    flow = Flow()
    flow.source(IterableSource("in", [{"x": i} for i in range(10)])).sink(out)
    stats = await flow.run(count=11)
    assert len(out.rows) == 10
    assert stats.stopped_by is None
    assert stats.state is ActorState.COMPLETED


async def test_a_count_leaves_complete_files(tmp_path: Path) -> None:
    flow = Flow(capacity=2)
    stream = flow.source(endless(size=5)).map(lambda r: {"x": r["x"], "s": f"v{r['x']}"})
    stream.sink(JsonLinesSink("jsonl", tmp_path / "out.jsonl"))
    stats = await flow.run(count=33)
    assert stats.stopped_by == "count"
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"x": i, "s": f"v{i}"} for i in range(33)]


# ------------------------------------------------------------------ timeout
async def test_flow_timeout_stops_on_trio_time_and_flushes_the_sinks(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    flow = Flow()
    flow.source(AsyncIterableSource("feed", ticking(1.0), sizer=BatchSizer.fixed(1))).sink(
        CsvSink("out", tmp_path / "out.csv")
    )
    start = trio.current_time()
    stats = await flow.run(timeout="10.5s")
    assert trio.current_time() - start == pytest.approx(10.5)
    assert stats.stopped_by == "timeout"
    assert stats.state is ActorState.COMPLETED
    with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["x"]) for r in rows] == list(range(10))  # the records of 10 s, whole
    assert stats["out"].rows_in == 10


async def test_timeout_takes_a_timedelta_or_bare_milliseconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    for timeout in (datetime.timedelta(seconds=3.5), 3500):
        out = CollectSink("out")
        flow = Flow()
        flow.source(AsyncIterableSource("feed", ticking(), sizer=BatchSizer.fixed(1))).sink(out)
        stats = await flow.run(timeout=timeout)
        assert (len(out.rows), stats.stopped_by) == (3, "timeout")


async def test_the_count_or_the_timeout_whichever_comes_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    out = CollectSink("out")
    flow = Flow()
    flow.source(AsyncIterableSource("feed", ticking(), sizer=BatchSizer.fixed(1))).sink(out)
    stats = await flow.run(count=4, timeout="1m")
    assert (len(out.rows), stats.stopped_by) == (4, "count")
    assert trio.current_time() < 10


async def test_a_run_that_ends_before_its_timeout_is_not_stopped_by_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flow = Flow()
    flow.source(IterableSource("in", [{"x": 1}])).sink(CollectSink("out"))
    stats = await flow.run(timeout="1h")
    assert stats.stopped_by is None
    assert trio.current_time() < 1


# ---------------------------------------------------------------------- SQL
async def test_run_sql_count_and_timeout(autojump_clock: trio.testing.MockClock) -> None:
    records = ({"x": i} for i in itertools.count())
    run = await run_sql("SELECT x * 10 AS y FROM t WHERE x % 3 = 0", records, count=25)
    assert run.rows == [{"y": 30 * i} for i in range(25)]
    assert (run.stats.stopped_by, run.stats.state) == ("count", ActorState.COMPLETED)

    feed = AsyncIterableSource("source", ticking(0.5), sizer=BatchSizer.fixed(1))
    run = await run_sql("SELECT x FROM t", feed, timeout="4.75s")
    assert run.rows == [{"x": i} for i in range(9)]  # at 0.5 s, 1 s, ... 4.5 s
    assert run.stats.stopped_by == "timeout"

    # with a LIMIT, the smaller stops it
    query = "SELECT x FROM t LIMIT 5"
    run = await run_sql(query, ({"x": i} for i in itertools.count()), count=3)
    assert (len(run.rows), run.stats.stopped_by) == (3, "count")
    run = await run_sql(query, ({"x": i} for i in itertools.count()), count=30)
    assert (len(run.rows), run.stats.stopped_by) == (5, None)


async def test_a_windowed_query_stopped_by_its_timeout_closes_what_it_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # a graceful stop is an end of input: the open windows close and are emitted
    async def trades() -> AsyncIterator[Record]:
        for i in itertools.count():
            await trio.sleep(0.1)
            yield {"k": "a", "ts": i * 100}

    sql = "SELECT k, COUNT(*) AS n, window_start FROM t GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"
    source = AsyncIterableSource("source", trades(), sizer=BatchSizer.fixed(1))
    run = await run_sql(sql, source, timeout="2.55s")
    assert run.rows == [
        {"k": "a", "n": 10, "window_start": 0},
        {"k": "a", "n": 10, "window_start": 1000},
        {"k": "a", "n": 5, "window_start": 2000},
    ]


# --------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"count": 0}, r"^count must be an int >= 1 or None, got 0$"),
        ({"count": True}, r"^count must be an int >= 1 or None, got True$"),
        ({"count": "3"}, r"^count must be an int >= 1 or None, got '3'$"),
        ({"count": 2.0}, r"^count must be an int >= 1 or None, got 2\.0$"),
        ({"timeout": 0}, r"^timeout must be more than 0, got 0$"),
        ({"timeout": "0s"}, r"^timeout must be more than 0, got '0s'$"),
        ({"timeout": "-1s"}, r"^timeout: '-1s' is not a duration"),
        ({"timeout": "soon"}, r"^timeout: 'soon' is not a duration"),
    ],
)
async def test_bad_bounds_are_one_clear_error_before_anything_runs(
    options: dict[str, Any], message: str
) -> None:
    source = IterableSource("in", [{"x": 1}])
    flow = Flow()
    flow.source(source).sink(CollectSink("out"))
    with pytest.raises(ValueError, match=message):
        await flow.run(**options)
    assert source.rows_out == 0
    with pytest.raises(ValueError, match=message):
        await run_sql("SELECT x FROM t", [{"x": 1}], **options)


# ---------------------------------------------------------------------- CLI
def test_cli_timeout_stops_a_live_stdin_exits_0_with_a_note(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    sql = "SELECT k, COUNT(*) AS n FROM t GROUP BY k"
    proc = _live_run(tmp_path, "--output", str(out), "--sql", sql, "--timeout", "300ms")
    assert proc.stdin is not None
    proc.stdin.write('{"k": "a"}\n{"k": "a"}\n{"k": "b"}\n')
    proc.stdin.flush()  # and the input stays open: only the timeout ends the run
    try:
        code = proc.wait(timeout=60)  # stdin still open (communicate() would close it)
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert code == 0, err
    assert err == "partita: stopped by --timeout after 300ms; wrote 2 rows\n"
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows == [{"k": "a", "n": 2}, {"k": "b", "n": 1}]


def test_cli_timeout_validation() -> None:
    for value, message in [
        ("0", "--timeout must be more than 0, got 0 ms"),
        ("soon", "Error: Invalid value for '--timeout': 'soon' is not a duration"),
    ]:
        done = partita(
            "run", "--input", "-", "--sql", "SELECT x FROM t", "--timeout", value, stdin=""
        )
        assert done.returncode == 2, done.stderr
        assert message in done.stderr.strip().splitlines()[-1]  # one line says what is wrong
        assert "Traceback" not in done.stderr
