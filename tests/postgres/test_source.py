"""PostgresSource against a real server (the ``postgres`` fixture of conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

from partita import ActorFailed, ActorState, BadRecord, PostgresError, PostgresSource
from partita.actors import CollectSink
from partita.runtime import (
    BatchSizer,
    CheckpointError,
    Checkpointing,
    Graph,
    MemoryCheckpointStore,
    RestartPolicy,
    Strategy,
    open_supervisor,
)
from partita.runtime import run_graph as run_supervised
from tests.actors.helpers import HeldSink, collect

from .conftest import PostgresServer

GUARD = 20  # seconds: a deadlock fails the test instead of hanging it


def graph_of(source: PostgresSource, sink: CollectSink, capacity: int = 2) -> Graph:
    graph = Graph()
    graph.add(source)
    graph.add(sink, inputs=[source], capacity=capacity)
    return graph


async def poll(check: Callable[[], bool], tries: int = 200) -> bool:
    """Ask the server (through ``check``, run in a thread) until it says yes; bounded."""
    for _ in range(tries):
        if await trio.to_thread.run_sync(check):
            return True
    return False


def backends(postgres: PostgresServer, marker: str) -> list[tuple[Any, ...]]:
    """The sessions of the source connected with :func:`dsn_of` ``marker``."""
    return postgres.execute(
        "SELECT pid, state FROM pg_stat_activity WHERE application_name = %s", [marker]
    )


def dsn_of(postgres: PostgresServer, marker: str) -> str:
    """The server's DSN with ``marker`` as the application name, to find the session by."""
    return f"{postgres.dsn}?application_name={marker}"


async def test_types_map_to_plain_json_values(postgres: PostgresServer) -> None:
    query = """
        SELECT 7::int AS i, 2::bigint AS big, 1.25::float8 AS f, 1.5::numeric AS n,
               '{"a": [1, 2]}'::jsonb AS jb, '[1, "x"]'::json AS j,
               '2024-01-02 03:04:05.678+02'::timestamptz AS tz,
               '1970-01-01 00:00:01.0009'::timestamp AS ts,
               'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,
               ARRAY[1.5, 2]::numeric[] AS na, ARRAY['a', NULL] AS ta,
               '2024-02-03'::date AS d, '1 day 2 hours'::interval AS iv,
               '\\x0102'::bytea AS b, true AS bo, NULL::text AS nothing, 'é'::text AS s
    """
    rows, _ = await collect(PostgresSource("pg", postgres.dsn, query))
    assert rows == [
        {
            "i": 7, "big": 2, "f": 1.25, "n": 1.5, "jb": {"a": [1, 2]}, "j": [1, "x"],
            "tz": 1704157445678, "ts": 1000, "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "na": [1.5, 2.0], "ta": ["a", None], "d": "2024-02-03", "iv": "1 day 02:00:00",
            "b": "\\x0102", "bo": True, "nothing": None, "s": "é",
        }
    ]  # fmt: skip


async def test_numeric_and_timestamp_choices(postgres: PostgresServer) -> None:
    from decimal import Decimal

    query = "SELECT 1.10::numeric AS n, '2024-01-02 03:04:05+02'::timestamptz AS t"
    rows, _ = await collect(
        PostgresSource("pg", postgres.dsn, query, numeric="decimal", timestamps="iso")
    )
    assert rows == [{"n": Decimal("1.10"), "t": "2024-01-02 01:04:05+00"}]
    rows, _ = await collect(PostgresSource("pg", postgres.dsn, query, numeric="str"))
    assert rows == [{"n": "1.10", "t": 1704157445000}]
    with pytest.raises(ValueError, match="numeric must be 'float', 'decimal' or 'str', got 'int'"):
        PostgresSource("pg", postgres.dsn, query, numeric="int")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="order_by must name one or more columns, got"):
        PostgresSource("pg", postgres.dsn, query, order_by=[])


async def test_bad_rows_by_policy(postgres: PostgresServer) -> None:
    query = (
        "SELECT i, CASE WHEN i = 3 THEN 'infinity'::timestamptz "
        "ELSE to_timestamp(i) END AS t FROM generate_series(1, 5) i"
    )
    source = PostgresSource("pg", postgres.dsn, query, on_error="dead-letter")
    rows, stats = await collect(source)
    assert [r["i"] for r in rows] == [1, 2, 4, 5]
    [letter] = source.dead_letters
    assert letter.reason == (
        "row 3: column 't': no epoch milliseconds for this timestamp ('infinity')"
    )
    assert letter.record == {"i": 3, "t": "infinity"}
    assert stats.actors[0].errors_by_reason == (("unmappable value", 1),)

    with pytest.raises(ActorFailed) as failed:
        await collect(PostgresSource("pg", postgres.dsn, query, on_error="fail"))
    assert isinstance(failed.value.error, BadRecord)
    assert "row 3: column 't'" in str(failed.value)

    keyed = "SELECT * FROM (VALUES (1), (NULL), (2)) AS v(k)"
    source = PostgresSource("pg", postgres.dsn, keyed, order_by="k")
    rows, stats = await collect(source)
    assert rows == [{"k": 1}, {"k": 2}]  # NULLs sort last, and are bad keys
    assert stats.actors[0].errors_by_reason == (("NULL order_by key", 1),)


async def test_a_slow_sink_holds_the_server_back(postgres: PostgresServer) -> None:
    postgres.execute("DROP SEQUENCE IF EXISTS bp_seq; CREATE SEQUENCE bp_seq")
    query = "SELECT i, nextval('bp_seq') AS s FROM generate_series(1, 100000) i"
    chunk, capacity, hold = 100, 2, 5
    source = PostgresSource("pg", postgres.dsn, query, sizer=BatchSizer.fixed(chunk))
    sink = HeldSink("sink", hold_at=hold)
    with trio.fail_after(GUARD):
        async with open_supervisor(graph_of(source, sink, capacity)):
            await sink.held.wait()
            # the server evaluates nextval() once per row it produces: the sequence is
            # how far the cursor went.  Ask a while: an unbounded reader would race on.
            bound = (hold + capacity + 2) * chunk
            for _ in range(30):
                [(produced,)] = await trio.to_thread.run_sync(
                    postgres.execute, "SELECT last_value FROM bp_seq"
                )
                assert produced <= bound
                assert source.rows_fetched <= bound
            sink.release.set()
    assert [r["i"] for r in sink.rows] == list(range(1, 100001))
    assert postgres.execute("SELECT last_value FROM bp_seq") == [(100000,)]


async def test_pause_keeps_the_cursor_and_resume_goes_on(postgres: PostgresServer) -> None:
    query = "SELECT i FROM generate_series(1, 5000) i"
    source = PostgresSource(
        "pg", dsn_of(postgres, "pause-test"), query, sizer=BatchSizer.fixed(100)
    )
    sink = HeldSink("sink", hold_at=3)
    with trio.fail_after(GUARD):
        async with open_supervisor(graph_of(source, sink)) as supervisor:
            await sink.held.wait()
            supervisor.pause()
            sink.release.set()
            await source.wait_state(ActorState.PAUSED)
            # a fetch under way when the pause came ends at the next batch boundary
            fetched, steady = -1, 0
            for _ in range(200):
                if steady == 5:
                    break
                steady = steady + 1 if source.rows_fetched == fetched else 0
                fetched = source.rows_fetched
                await trio.to_thread.run_sync(backends, postgres, "pause-test")
            assert fetched < 5000
            for _ in range(10):  # paused: the session is there, the cursor open, unread
                sessions = await trio.to_thread.run_sync(backends, postgres, "pause-test")
                assert [state for _, state in sessions] == ["idle in transaction"]
                assert source.rows_fetched == fetched
            supervisor.resume()
    assert [r["i"] for r in sink.rows] == list(range(1, 5001))


@pytest.mark.parametrize("busy", [True, False], ids=["query-running", "sink-waiting"])
async def test_cancel_reaches_the_server(postgres: PostgresServer, busy: bool) -> None:
    marker = f"cancel-test-{int(busy)}"
    # busy: the server is computing when the cancel comes; else the sink holds the cursor
    query = "SELECT pg_sleep(60) AS x" if busy else "SELECT i FROM generate_series(1, 1000000) i"
    source = PostgresSource("pg", dsn_of(postgres, marker), query, sizer=BatchSizer.fixed(100))
    sink = HeldSink("sink", hold_at=1)
    with trio.fail_after(GUARD):
        async with open_supervisor(graph_of(source, sink)) as supervisor:
            want = "active" if busy else "idle in transaction"
            assert await poll(lambda: [s for _, s in backends(postgres, marker)] == [want])
            with trio.fail_after(2):  # the cancel is prompt, on the trio side too
                await supervisor.cancel(graceful=False)
        # gone from the server within a second (bounded polling of the real server)
        with trio.fail_after(1):
            assert await poll(lambda: not backends(postgres, marker), tries=10_000)


async def test_a_killed_connection_names_the_server_and_the_rows(
    postgres: PostgresServer,
) -> None:
    marker = "kill-test"
    query = "SELECT i FROM generate_series(1, 100000) i"
    source = PostgresSource("pg", dsn_of(postgres, marker), query, sizer=BatchSizer.fixed(100))
    sink = HeldSink("sink", hold_at=3)
    with trio.fail_after(GUARD), pytest.raises(ActorFailed) as failed:
        async with open_supervisor(graph_of(source, sink)):
            await sink.held.wait()
            [(pid, _)] = await trio.to_thread.run_sync(backends, postgres, marker)
            postgres.execute("SELECT pg_terminate_backend(%s)", [pid])
            sink.release.set()
    error = failed.value.error
    assert isinstance(error, PostgresError)
    assert error.server == f"127.0.0.1:{postgres.port}/postgres"
    assert error.rows == source.rows_fetched > 0
    assert str(error).startswith(
        f"postgres 127.0.0.1:{postgres.port}/postgres: read failed after {error.rows:,} rows"
    )
    assert "password" not in str(error)


async def test_a_restart_after_a_killed_connection_reads_on_after_the_key(
    postgres: PostgresServer,
) -> None:
    marker = "restart-test"
    query = "SELECT i, i * 2 AS j FROM generate_series(1, 3000) i "
    source = PostgresSource(
        "pg", dsn_of(postgres, marker), query, order_by="i", sizer=BatchSizer.fixed(100)
    )
    sink = HeldSink("sink", hold_at=3)
    restart = RestartPolicy(Strategy.ONE_FOR_ONE, max_restarts=1, within=60)
    with trio.fail_after(GUARD):
        async with open_supervisor(graph_of(source, sink), restart=restart):
            await sink.held.wait()
            [(pid, _)] = await trio.to_thread.run_sync(backends, postgres, marker)
            postgres.execute("SELECT pg_terminate_backend(%s)", [pid])
            sink.release.set()
    assert source.restarts == 1
    assert [r["i"] for r in sink.rows] == list(range(1, 3001))


async def test_without_order_by_a_restart_cannot_go_on(postgres: PostgresServer) -> None:
    marker = "no-key-restart"
    query = "SELECT i FROM generate_series(1, 3000) i"
    source = PostgresSource("pg", dsn_of(postgres, marker), query, sizer=BatchSizer.fixed(100))
    sink = HeldSink("sink", hold_at=3)
    restart = RestartPolicy(Strategy.ONE_FOR_ONE, max_restarts=1, within=60)
    with trio.fail_after(GUARD), pytest.raises(ActorFailed) as failed:
        async with open_supervisor(graph_of(source, sink), restart=restart):
            await sink.held.wait()
            [(pid, _)] = await trio.to_thread.run_sync(backends, postgres, marker)
            postgres.execute("SELECT pg_terminate_backend(%s)", [pid])
            sink.release.set()
    assert "without order_by=" in str(failed.value.__cause__ or failed.value)


async def test_checkpoint_resume_with_order_by_loses_and_repeats_nothing(
    postgres: PostgresServer,
) -> None:
    postgres.execute(
        "DROP TABLE IF EXISTS events; "
        "CREATE TABLE events (id uuid PRIMARY KEY, at timestamptz NOT NULL, n int); "
        "INSERT INTO events SELECT gen_random_uuid(), "
        "'2024-01-01'::timestamptz + i * interval '1.5 ms', i FROM generate_series(1, 2000) i"
    )
    query = "SELECT id, at, n FROM events"
    store = MemoryCheckpointStore()

    def job(hold_at: int | None) -> tuple[PostgresSource, HeldSink]:
        source = PostgresSource(
            "pg", postgres.dsn, query, order_by=["at", "id"], sizer=BatchSizer.fixed(50)
        )
        return source, HeldSink("sink", hold_at=hold_at)

    source, sink = job(hold_at=20)
    checkpoints = Checkpointing(store=store, fingerprint="pg-test")
    with trio.fail_after(GUARD):
        async with open_supervisor(graph_of(source, sink), checkpoints=checkpoints) as sup:
            await sup.checkpoint()
            await sink.held.wait()
            await sup.cancel(graceful=False)  # a crash: what came after is lost
    first = len(sink.rows)
    assert 0 < first < 2000

    source, sink = job(hold_at=None)
    with trio.fail_after(GUARD):
        await run_supervised(graph_of(source, sink), checkpoints=checkpoints)
    assert source.rows_fetched == 2000
    assert [r["n"] for r in sink.rows] == list(range(1, 2001))  # in key order, once each
    assert len({r["id"] for r in sink.rows}) == 2000


async def test_without_order_by_checkpoints_are_refused(postgres: PostgresServer) -> None:
    source = PostgresSource("pg", postgres.dsn, "SELECT 1 AS x")
    assert not source.resumable
    checkpoints = Checkpointing(store=MemoryCheckpointStore(), fingerprint="x")
    with pytest.raises(CheckpointError, match="PostgresSource cannot resume") as refused:
        await run_supervised(graph_of(source, CollectSink("sink")), checkpoints=checkpoints)
    assert "unique key to read in and resume after: order_by=" in str(refused.value)
    assert "read from a file" not in str(refused.value)


async def test_a_bad_query_names_the_server(postgres: PostgresServer) -> None:
    with pytest.raises(ActorFailed) as failed:
        await collect(PostgresSource("pg", postgres.dsn, "SELECT nope FROM nowhere"))
    error = failed.value.error
    assert isinstance(error, PostgresError)
    assert error.sqlstate == "42P01"
    assert str(error).startswith(f"postgres 127.0.0.1:{postgres.port}/postgres: query failed")


async def test_a_query_ending_in_a_comment_reads_with_order_by(postgres: PostgresServer) -> None:
    # order_by wraps the query as a subquery: a trailing -- comment must not swallow it
    query = "SELECT * FROM (VALUES (2), (1)) AS v(k) -- the keys"
    rows, _ = await collect(PostgresSource("pg", postgres.dsn, query, order_by="k"))
    assert rows == [{"k": 1}, {"k": 2}]


async def test_a_restart_after_a_failing_row_reads_that_row_again(
    postgres: PostgresServer,
) -> None:
    # on_error="fail": the bad row is not handed over, so its key is not the resume
    # point; a restarted source must meet it (and fail) again, not skip it
    query = (
        "SELECT i, CASE WHEN i = 3 THEN 'infinity'::timestamptz "
        "ELSE to_timestamp(i) END AS t FROM generate_series(1, 5) i"
    )
    source = PostgresSource("pg", postgres.dsn, query, order_by="i", on_error="fail")
    sink = CollectSink("sink")
    restart = RestartPolicy(Strategy.ONE_FOR_ONE, max_restarts=1, within=60)
    with trio.fail_after(GUARD), pytest.raises(ActorFailed) as failed:
        await run_supervised(graph_of(source, sink), restart=restart)
    assert source.restarts == 1
    assert "row 3: column 't'" in str(failed.value.__cause__ or failed.value)
    assert [r["i"] for r in sink.rows] == [1, 2]
    assert source.snapshot_state() == {"key": ["2"], "rows": 2}


async def test_a_refused_connection_is_one_line_naming_connect(postgres: PostgresServer) -> None:
    from tests.actors.helpers import free_port

    port = free_port()  # nothing listens there
    dsn = f"postgresql://app:secret@127.0.0.1:{port}/shop"
    with pytest.raises(ActorFailed) as failed:
        await collect(PostgresSource("pg", dsn, "SELECT 1 AS x"))
    error = failed.value.error
    assert isinstance(error, PostgresError)
    assert error.doing == "connect"
    text = str(error)
    assert text.startswith(f"postgres 127.0.0.1:{port}/shop: connect failed after 0 rows: ")
    assert "\n" not in text and "\t" not in text and "secret" not in text
    assert "refused" in text
