"""run_sql / open_sql end to end, compared with the synchronous reference ``sql.run_query``."""

from __future__ import annotations

import json
import os
import random
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from partita import sql
from partita.actors import (
    AsyncIterableSource,
    CallbackSink,
    CollectSink,
    IterableSource,
    JsonLinesSink,
    JsonLinesSource,
    open_sql,
    run_sql,
)
from partita.runtime import (
    ActorFailed,
    ActorState,
    BadRecord,
    BatchSizer,
    GraphStats,
    Record,
    RestartIntensityExceeded,
    RestartPolicy,
    SupervisorOptions,
    parse_duration_ms,
)

from .helpers import canonical, write_lines

STATELESS = "SELECT symbol, price * qty AS notional FROM t WHERE qty > 20"
GROUP_BY = "SELECT symbol, COUNT(*) AS n, SUM(qty) AS q, MAX(price) AS hi FROM t GROUP BY symbol"
TUMBLE = (
    "SELECT symbol, COUNT(*) AS n, SUM(qty) AS q, window_start, window_end FROM t "
    "GROUP BY symbol, TUMBLE(ts, INTERVAL '1' SECOND)"
)
CHANGES = "SELECT symbol, COUNT(*) AS n, SUM(qty) AS q FROM t GROUP BY symbol EMIT CHANGES"


def trades(n: int, *, seed: int = 1, disorder: int = 0) -> list[Record]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            {
                "symbol": f"S{rng.randrange(13)}",
                "price": round(rng.uniform(1, 100), 2),
                "qty": rng.randrange(1, 100),
                "ts": 10 * i - rng.randrange(disorder + 1),
            }
        )
    return out


def by_key(rows: list[Record]) -> dict[Any, list[Record]]:
    out: dict[Any, list[Record]] = {}
    for row in rows:
        out.setdefault(row["symbol"], []).append(row)
    return out


RECORDS = trades(5000, disorder=300)


@pytest.mark.parametrize("partitions", [1, 4])
@pytest.mark.parametrize("query", [STATELESS, GROUP_BY, TUMBLE])
async def test_matches_reference(query: str, partitions: int) -> None:
    ref = sql.run_query(query, RECORDS, allowed_lateness=100)
    run = await run_sql(query, RECORDS, partitions=partitions, allowed_lateness=100)
    assert canonical(run.rows) == canonical(ref.rows)
    assert run.stats.state is ActorState.COMPLETED
    assert run.stats.rows_late == ref.counts.late
    names = [a.name for a in run.stats.actors]
    assert names == [
        "source",
        "router",
        *(f"partition-{i}" for i in range(partitions)),
        *(["merge"] if partitions > 1 else []),  # one partition feeds the sink
        "sink",
    ]


async def test_tumbling_window_counts_late_records() -> None:
    ref = sql.run_query(TUMBLE, RECORDS)
    assert ref.counts.late > 0
    for partitions, batch_size in [(1, 7), (4, 500)]:
        run = await run_sql(TUMBLE, RECORDS, partitions=partitions, batch_size=batch_size)
        assert canonical(run.rows) == canonical(ref.rows)
        assert run.stats.rows_late == ref.counts.late


@pytest.mark.parametrize("partitions", [1, 4])
async def test_emit_changes_per_key_order(partitions: int) -> None:
    ref = sql.run_query(CHANGES, RECORDS)
    run = await run_sql(CHANGES, RECORDS, partitions=partitions, batch_size=333)
    assert len(run.rows) == len(RECORDS)
    assert by_key(run.rows) == by_key(ref.rows)


async def test_stateless_query_is_not_hashed_per_record() -> None:
    run = await run_sql(STATELESS, RECORDS, partitions=4, batch_size=100)
    # whole source batches, round-robin: 50 batches of 100 records over 4 partitions
    parts = [run.stats[f"partition-{i}"] for i in range(4)]
    assert [p.batches_in for p in parts] == [13, 13, 12, 12]
    assert all(p.rows_in == 100 * p.batches_in for p in parts)


async def test_async_iterable_and_compiled_query() -> None:
    async def gen() -> AsyncIterator[Record]:
        for r in RECORDS[:300]:
            yield r

    query = sql.compile_query(GROUP_BY)
    run = await run_sql(query, gen(), partitions=3)
    assert canonical(run.rows) == canonical(sql.run_query(query, RECORDS[:300]).rows)


async def test_empty_input_global_aggregate() -> None:
    query = "SELECT COUNT(*) AS n FROM t"
    run = await run_sql(query, [], partitions=2)
    assert canonical(run.rows) == canonical(sql.run_query(query, []).rows)


async def test_user_sink_and_on_stats(tmp_path: Path) -> None:
    seen: list[GraphStats] = []
    out = tmp_path / "out.jsonl"
    run = await run_sql(
        STATELESS, RECORDS, JsonLinesSink("sink", out), on_stats=seen.append, partitions=2
    )
    assert run.rows == []
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert canonical(lines) == canonical(sql.run_query(STATELESS, RECORDS).rows)
    assert seen and seen[-1].state is ActorState.COMPLETED


async def test_on_stats_periodic(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[GraphStats] = []

    async def slow() -> AsyncIterator[Record]:
        for r in RECORDS[:10]:
            await trio.sleep(1)  # one record a second (virtual time: autojump_clock)
            yield r

    await run_sql(STATELESS, slow(), on_stats=seen.append, stats_interval="2s")
    assert 5 <= len(seen) <= 7


# ---------------------------------------------------------------- bad input


BAD = [{"symbol": "A", "qty": 30, "price": 1.0}, {"symbol": "B", "qty": "x", "price": 2.0}]


async def test_on_error_fail_names_offset() -> None:
    with pytest.raises(ActorFailed) as info:
        await run_sql("SELECT qty + 1 AS q FROM t", BAD * 3, on_error="fail")
    assert info.value.actor == "partition-0"
    assert info.value.offset == 1
    assert isinstance(info.value.error, BadRecord)
    assert "at record offset 1" in str(info.value)


async def test_on_error_dead_letter_in_memory_and_file(tmp_path: Path) -> None:
    run = await run_sql("SELECT qty + 1 AS q FROM t", BAD * 3, on_error="dead-letter")
    assert [d.offset for d in run.dead_letters] == [1, 3, 5]
    assert run.stats.rows_errored == 3
    assert run.stats["dead-letter"].rows_in == 3
    path = tmp_path / "dead.jsonl"
    run = await run_sql(
        "SELECT qty + 1 AS q FROM t", BAD * 3, on_error="dead-letter", dead_letter=path
    )
    letters = [json.loads(x) for x in path.read_text().splitlines()]
    assert [d["offset"] for d in letters] == [1, 3, 5]
    assert letters[0]["record"] == BAD[1]
    assert run.dead_letters == []


async def test_on_error_skip_counts() -> None:
    run = await run_sql("SELECT qty + 1 AS q FROM t", BAD * 3, partitions=2)
    assert run.stats.rows_errored == 3
    assert len(run.rows) == 3


async def test_late_dead_letters() -> None:
    run = await run_sql(TUMBLE, RECORDS, late="dead-letter", partitions=2)
    ref = sql.run_query(TUMBLE, RECORDS, late="dead-letter")
    assert sorted(d.offset or 0 for d in run.dead_letters) == sorted(
        d.offset or 0 for d in ref.dead_letters
    )
    assert all(d.reason.startswith("late") for d in run.dead_letters)


async def test_malformed_json_lines_to_dead_letter(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", ['{"qty": 30}', "nope", '{"qty": 40}'])
    run = await run_sql(
        "SELECT qty FROM t",
        JsonLinesSource("source", path, on_error="dead-letter"),
        on_error="dead-letter",
    )
    assert run.rows == [{"qty": 30}, {"qty": 40}]
    assert [d.reason[:7] for d in run.dead_letters] == ["line 2:"]
    assert run.stats["source"].rows_errored == 1


async def test_bad_sql_fails_before_running() -> None:
    pulled = 0

    def gen() -> Iterator[Record]:
        nonlocal pulled
        pulled += 1
        yield {}

    with pytest.raises(sql.SqlError, match="line 1, column"):
        await run_sql("SELEC x FROM", gen())
    assert pulled == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"partitions": 0}, "partitions must be an int >= 1, got 0"),
        ({"batch_size": 0}, "batch_size must be >= 1 or None, got 0"),
        ({"on_error": "ignore"}, "on_error must be 'skip', 'dead-letter' or 'fail'"),
        ({"late": "keep"}, "late must be 'drop', 'dead-letter' or 'update'"),
        ({"allowed_lateness": "5 parsecs"}, "allowed_lateness: '5 parsecs' is not a duration"),
        ({"stats_interval": 0}, "stats_interval must be > 0"),
    ],
)
async def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await run_sql(STATELESS, [], **options)


def test_parse_duration() -> None:
    assert [parse_duration_ms(x) for x in ("5s", "250ms", "1m", "2h", "17", 40)] == [
        5000,
        250,
        60_000,
        7_200_000,
        17,
        40,
    ]
    with pytest.raises(ValueError, match="-1 is not a duration"):
        parse_duration_ms(-1)


# -------------------------------------------------------------------- streams


def _tasks() -> int:
    def count(task: trio.lowlevel.Task) -> int:
        return 1 + sum(count(t) for n in task.child_nurseries for t in n.child_tasks)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    return count(root)


async def test_open_sql_streams_rows() -> None:
    async with open_sql(GROUP_BY, RECORDS, partitions=4) as stream:
        rows = [row async for row in stream]
    assert canonical(rows) == canonical(sql.run_query(GROUP_BY, RECORDS).rows)
    assert stream.supervisor.state is ActorState.COMPLETED


async def test_early_exit_cancels_everything(autojump_clock: trio.testing.MockClock) -> None:
    def endless() -> Iterator[Record]:
        i = 0
        while True:
            yield {"symbol": "A", "qty": 50, "price": 1.0, "ts": i}
            i += 1

    before = _tasks()
    with trio.fail_after(5):
        async with open_sql(STATELESS, endless(), partitions=4) as stream:
            async for row in stream:
                assert row["notional"] == 50.0
                break
    stats = stream.supervisor.stats()
    assert stats.state is ActorState.CANCELLED
    assert {a.state for a in stats.actors} <= {ActorState.CANCELLED, ActorState.COMPLETED}
    assert stats["source"].state is ActorState.CANCELLED
    await trio.testing.wait_all_tasks_blocked()
    assert _tasks() == before


async def test_early_exit_with_an_idle_source(autojump_clock: trio.testing.MockClock) -> None:
    async def one_then_silence() -> AsyncIterator[Record]:
        yield {"symbol": "A", "qty": 50, "price": 1.0}
        await trio.sleep_forever()

    before = _tasks()
    start = trio.current_time()
    async with open_sql(STATELESS, one_then_silence()) as stream:
        async for _ in stream:
            break
    assert trio.current_time() - start < 0.01  # prompt, even with nothing flowing
    assert stream.supervisor.state is ActorState.CANCELLED
    await trio.testing.wait_all_tasks_blocked()
    assert _tasks() == before


async def test_exception_in_block_propagates_and_cancels() -> None:
    with pytest.raises(KeyError, match="boom"):
        async with open_sql(STATELESS, trades(100_000)) as stream:
            async for _ in stream:
                raise KeyError("boom")
    assert stream.supervisor.state is ActorState.CANCELLED


async def test_failure_surfaces_from_the_block() -> None:
    with pytest.raises(ActorFailed, match="at record offset 1"):
        async with open_sql("SELECT qty + 1 AS q FROM t", BAD, on_error="fail") as stream:
            async for _ in stream:
                pass


async def test_pause_resume_loses_and_duplicates_nothing() -> None:
    records = trades(20_000, seed=3)
    got: list[Record] = []
    async with open_sql(CHANGES, records, partitions=3, batch_size=256) as stream:
        sup = stream.supervisor
        async for row in stream:
            got.append(row)
            if len(got) == 1000:
                sup.pause()
                await trio.testing.wait_all_tasks_blocked()
                read = sup.stats()["source"].rows_out
                await trio.testing.wait_all_tasks_blocked()
                assert sup.stats()["source"].rows_out == read
                assert sup.state is ActorState.PAUSED
                sup.resume()
    assert by_key(got) == by_key(sql.run_query(CHANGES, records).rows)
    assert len(got) == 20_000


async def test_graceful_cancel_drains(autojump_clock: trio.testing.MockClock) -> None:
    def endless() -> Iterator[Record]:
        i = 0
        while True:
            yield {"symbol": "A", "qty": 50, "price": 1.0, "ts": i}
            i += 1

    got = 0
    async with (
        trio.open_nursery() as nursery,
        open_sql(STATELESS, IterableSource("source", endless())) as stream,
    ):
        async for _ in stream:
            got += 1
            if got == 10:
                # in the background: the drain needs this loop to keep reading
                nursery.start_soon(stream.supervisor.cancel)
    stats = stream.supervisor.stats()
    assert stats.state is ActorState.COMPLETED
    assert got == stats["source"].rows_out  # everything read was delivered


async def test_backpressure_holds_the_source(autojump_clock: trio.testing.MockClock) -> None:
    def endless() -> Iterator[Record]:
        i = 0
        while True:
            yield {"symbol": "A", "qty": 50, "price": 1.0, "ts": i}
            i += 1

    async def slow(rows: list[Record]) -> None:
        await trio.sleep(1)

    source = IterableSource("source", endless(), sizer=BatchSizer.fixed(100))
    with trio.move_on_after(60):
        await run_sql(STATELESS, source, CallbackSink("sink", slow), partitions=2)
    consumed = 60 * 100
    assert source.rows_out <= consumed + 100 * 16 * 6  # only what the mailboxes hold


async def test_idle_timeout_closes_windows(autojump_clock: trio.testing.MockClock) -> None:
    async def bursty() -> AsyncIterator[Record]:
        for i in range(10):
            yield {"symbol": "A", "qty": 1, "price": 1.0, "ts": 100 * i}
        await trio.sleep(30)
        yield {"symbol": "A", "qty": 1, "price": 1.0, "ts": 60_000}

    arrivals: list[tuple[float, Record]] = []
    start = trio.current_time()
    async with open_sql(TUMBLE, bursty(), idle_timeout="1s") as stream:
        async for row in stream:
            arrivals.append((trio.current_time() - start, row))
    first_at, first = arrivals[0]
    assert first["window_start"] == 0 and first["n"] == 10
    assert first_at < 5  # closed by idle time, long before the next record at 30 s
    assert len(arrivals) == 2


async def test_collect_sink_rows_on_result() -> None:
    sink = CollectSink("out")
    run = await run_sql(GROUP_BY, RECORDS[:50], sink)
    assert run.rows is sink.rows and len(run.rows) > 0


async def test_async_source_name() -> None:
    async def gen() -> AsyncIterator[Record]:
        yield {"symbol": "A", "qty": 30, "price": 2.0}

    run = await run_sql(STATELESS, AsyncIterableSource("in", gen()))
    assert run.rows == [{"symbol": "A", "notional": 60.0}]
    assert run.stats["in"].rows_out == 1


async def test_max_memory_cuts_batches_to_fit() -> None:
    run = await run_sql(GROUP_BY, RECORDS, partitions=2, max_memory=1 << 20)
    assert canonical(run.rows) == canonical(sql.run_query(GROUP_BY, RECORDS).rows)
    assert run.stats.max_memory == 1 << 20
    size = run.stats["source"].batch_size
    assert size is not None and size < 4096


async def test_restart_gives_up_on_a_record_that_always_fails() -> None:
    with pytest.raises(RestartIntensityExceeded) as info:
        await run_sql(
            "SELECT qty + 1 AS q FROM t",
            BAD,
            on_error="fail",
            restart=RestartPolicy(max_restarts=2),
        )
    assert info.value.actor == "partition-0"
    assert isinstance(info.value.__cause__, BadRecord)


async def test_early_exit_while_reading_a_silent_pipe() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "wb") as writer:
        writer.write(b'{"symbol": "A", "qty": 50, "price": 2.0}\n')
        writer.flush()
        with trio.fail_after(10):
            async with open_sql(STATELESS, JsonLinesSource("source", reader)) as stream:
                async for row in stream:
                    assert row == {"symbol": "A", "notional": 100.0}
                    break  # the source is blocked reading a pipe nobody writes to
        assert stream.supervisor.state is ActorState.CANCELLED
        writer.close()  # lets the abandoned read thread finish


async def test_stream_ends_when_the_graph_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def one_then_silence() -> AsyncIterator[Record]:
        yield {"symbol": "A", "qty": 50, "price": 1.0}
        await trio.sleep_forever()

    rows = []
    with trio.fail_after(5):
        async with (
            trio.open_nursery() as nursery,
            open_sql(STATELESS, one_then_silence()) as stream,
        ):
            async for row in stream:
                rows.append(row)
                nursery.start_soon(partial(stream.supervisor.cancel, graceful=False))
    assert rows == [{"symbol": "A", "notional": 50.0}]
    assert stream.supervisor.state is ActorState.CANCELLED


async def test_stream_ends_after_cancel_from_the_loop() -> None:
    async with open_sql(STATELESS, trades(100_000)) as stream:
        async for _ in stream:
            await stream.supervisor.cancel(graceful=False)
    assert stream.supervisor.state is ActorState.CANCELLED


# ------------------------------------------------- options live on the query
async def test_compiled_query_dead_letters_reach_run_sql() -> None:
    # issue 8 item 8: the query's on_error was ignored in favour of run_sql's own default.
    query = sql.compile_query("SELECT x + 1 AS y FROM t", on_error="dead-letter")
    run = await run_sql(query, [{"x": 1}, {"x": "a"}, {"x": 2}])
    assert run.rows == [{"y": 2}, {"y": 3}]
    assert [(d.record, d.offset) for d in run.dead_letters] == [({"x": "a"}, 1)]
    assert run.stats["partition-0"].rows_errored == 1


async def test_compiled_query_late_update_has_a_dead_letter_output() -> None:
    query = sql.compile_query(TUMBLE, late="update", retention="1s")
    run = await run_sql(query, RECORDS[:10])
    assert "dead-letter" in [a.name for a in run.stats.actors]
    assert run.dead_letters == []


@pytest.mark.parametrize(
    "option",
    [
        {"on_error": "fail"},
        {"late": "update"},
        {"allowed_lateness": "1s"},
        {"event_time": "ts"},
        {"watermark": "ascending"},
        {"retention": 5},
    ],
)
async def test_compile_options_with_a_compiled_query_are_a_type_error(
    option: dict[str, Any],
) -> None:
    query = sql.compile_query(STATELESS)
    name = next(iter(option))
    with pytest.raises(TypeError, match=rf"^{name}: an option of the compiled query"):
        await run_sql(query, RECORDS, **option)
    with pytest.raises(TypeError, match=rf"^{name}: an option of the compiled query"):
        async with open_sql(query, RECORDS, **option):
            pass


async def test_durations_everywhere_share_one_grammar() -> None:
    ref = sql.run_query(TUMBLE, RECORDS, allowed_lateness=1500)
    for lateness in ("1.5s", 1500, timedelta(milliseconds=1500)):
        run = await run_sql(TUMBLE, RECORDS, allowed_lateness=lateness)
        assert canonical(run.rows) == canonical(ref.rows)
    with pytest.raises(ValueError, match=r"^allowed_lateness: 'nan' is not a duration"):
        await run_sql(TUMBLE, RECORDS, allowed_lateness="nan")
    with pytest.raises(ValueError, match=r"^idle_timeout: '-1s' is not a duration"):
        await run_sql(TUMBLE, RECORDS, idle_timeout="-1s")
    with pytest.raises(ValueError, match=r"^max_memory: '1 parsec' is not a size"):
        await run_sql(TUMBLE, RECORDS, max_memory="1 parsec")


async def test_supervisor_options_value_or_keywords() -> None:
    options = SupervisorOptions(max_memory="1MiB")
    run = await run_sql(GROUP_BY, RECORDS, supervision=options)
    assert run.stats.max_memory == 1 << 20
    run = await run_sql(GROUP_BY, RECORDS, supervision=options, max_memory="2MiB")
    assert run.stats.max_memory == 2 << 20
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_memroy'"):
        await run_sql(GROUP_BY, RECORDS, max_memroy=1)


async def test_a_compiled_querys_own_policy_keeps_its_dead_letters() -> None:
    # issue 8 item 8: the options live in the compiled query; run_sql reads them there
    query = sql.compile_query("SELECT x + 1 AS y FROM t", on_error="dead-letter")
    run = await run_sql(query, [{"x": 1}, {"x": "a"}, {"x": 2}])
    assert run.rows == [{"y": 2}, {"y": 3}]
    assert [d.offset for d in run.dead_letters] == [1]
    assert run.stats.rows_errored == 1


async def test_compile_options_with_a_compiled_query_are_refused() -> None:
    query = sql.compile_query("SELECT x FROM t")
    with pytest.raises(TypeError, match="on_error: an option of the compiled query"):
        await run_sql(query, [{"x": 1}], on_error="fail")
    with pytest.raises(TypeError, match="late: an option of the compiled query"):
        async with open_sql(query, [{"x": 1}], late="update"):
            pass


async def test_late_update_dead_letters_records_past_retention() -> None:
    # issue 8 item 6: through run_sql the expired record was not in dead_letters
    query = "SELECT k, COUNT(*) AS n FROM t GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"
    records = [{"k": "a", "ts": 10_000}, {"k": "a", "ts": 0}, {"k": "a", "ts": 9_500}]
    run = await run_sql(query, records, late="update")
    assert [d.offset for d in run.dead_letters] == [1]
    assert run.dead_letters[0].reason.startswith("late")
    assert run.stats.rows_late == 2
