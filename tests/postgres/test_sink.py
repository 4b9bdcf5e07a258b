"""PostgresSink against a real server."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
import trio.testing

from partita import (
    ActorFailed,
    IterableSource,
    PostgresError,
    PostgresSink,
    PostgresSource,
    run_graph,
)
from partita.actors._postgres_sink import _CREATE_PROGRESS
from partita.runtime import (
    Batch,
    BatchSizer,
    Checkpointing,
    Graph,
    MemoryCheckpointStore,
    open_supervisor,
)
from partita.runtime import run_graph as run_supervised
from tests.actors.helpers import free_port

from .conftest import PostgresServer
from .test_source import poll


async def write(postgres: PostgresServer, rows: list[dict[str, object]], **sink: Any) -> None:
    graph = Graph()
    source = IterableSource("src", rows, sizer=BatchSizer.fixed(3))
    graph.add(source)
    dsn = sink.pop("dsn", postgres.dsn)
    graph.add(PostgresSink("pg", dsn, **sink), inputs=[source])
    await run_graph(graph)


async def test_append_with_copy(postgres: PostgresServer) -> None:
    postgres.execute("DROP TABLE IF EXISTS out_a; CREATE TABLE out_a (k text, n int, j jsonb)")
    rows = [{"k": f"k{i}", "n": i, "j": {"i": [i]}} for i in range(10)] + [{"k": "only-k"}]
    await write(postgres, rows, table="out_a")
    got = postgres.execute("SELECT k, n, j FROM out_a ORDER BY n NULLS LAST")
    assert got == [(f"k{i}", i, {"i": [i]}) for i in range(10)] + [("only-k", None, None)]


async def test_upsert_keeps_the_last_row_per_key(postgres: PostgresServer) -> None:
    postgres.execute(
        "DROP TABLE IF EXISTS out_u; CREATE TABLE out_u (k text PRIMARY KEY, total float8)"
    )
    rows = [{"k": f"k{i % 3}", "total": float(i)} for i in range(10)]
    await write(postgres, rows, table="out_u", key="k")
    await write(postgres, rows, table="out_u", key=["k"])  # written again: the same table
    assert postgres.execute("SELECT k, total FROM out_u ORDER BY k") == [
        ("k0", 9.0),
        ("k1", 7.0),
        ("k2", 8.0),
    ]


async def test_a_missing_table_names_the_server(postgres: PostgresServer) -> None:
    with pytest.raises(ActorFailed) as failed:
        await write(postgres, [{"a": 1}], table="no_such_table")
    error = failed.value.error
    assert isinstance(error, PostgresError)
    assert error.sqlstate == "42P01"
    assert str(error).startswith(
        f"postgres 127.0.0.1:{postgres.port}/postgres: write failed after 0 rows"
    )
    with pytest.raises(ValueError, match="table must be a table name"):
        PostgresSink("pg", postgres.dsn, "a..b")


def sessions(postgres: PostgresServer, marker: str) -> list[tuple[Any, ...]]:
    return postgres.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [marker]
    )


def states(postgres: PostgresServer, marker: str) -> list[str]:
    return [
        state
        for (state,) in postgres.execute(
            "SELECT state FROM pg_stat_activity WHERE application_name = %s", [marker]
        )
    ]


@attrs.define(eq=False)
class FailingAfter(IterableSource):
    """Yields its rows, then fails (after the sink has its connection)."""

    async def produce(self) -> None:
        await super().produce()
        raise RuntimeError("the source broke")


@attrs.define(eq=False)
class StallingAfter(IterableSource):
    """Yields its rows, then waits (for a cancel)."""

    async def produce(self) -> None:
        await super().produce()
        await trio.sleep_forever()


@pytest.mark.parametrize("how", ["failed", "cancelled"])
async def test_the_connection_is_closed_when_the_run_fails_or_is_cancelled(
    postgres: PostgresServer, how: str
) -> None:
    postgres.execute("DROP TABLE IF EXISTS out_leak; CREATE TABLE out_leak (n int)")
    marker = f"sink-leak-{how}"
    dsn = f"{postgres.dsn}?application_name={marker}"
    sink = PostgresSink("pg", dsn, "out_leak")
    graph = Graph()
    if how == "failed":
        rows = [{"n": i} for i in range(10)]
        source: IterableSource = FailingAfter("src", rows, sizer=BatchSizer.fixed(3))
        graph.add(source)
        graph.add(sink, inputs=[source])
        with pytest.raises(ActorFailed, match="the source broke"):
            await run_graph(graph)
    else:
        source = StallingAfter("src", [{"n": i} for i in range(10)], sizer=BatchSizer.fixed(3))
        graph.add(source)
        graph.add(sink, inputs=[source])
        with trio.fail_after(60):
            async with open_supervisor(graph) as supervisor:
                # the sink wrote what came and waits for more, its connection idle
                assert await poll(
                    lambda: sink.rows_written == 10 and states(postgres, marker) == ["idle"],
                    tries=5000,  # bounded; a loaded machine takes its time
                )
                await trio.testing.wait_all_tasks_blocked()
                await supervisor.cancel(graceful=False)
    # closed by the time the run returned: the server sees the session end at once
    assert await poll(lambda: not sessions(postgres, marker), tries=100)


async def test_json_columns_take_lists_as_json_and_array_columns_as_arrays(
    postgres: PostgresServer,
) -> None:
    postgres.execute(
        "DROP TABLE IF EXISTS out_j; CREATE TABLE out_j (k text PRIMARY KEY, jb jsonb, "
        "j json, arr int[], s text)"
    )
    rows = [{"k": "a", "jb": [1, {"x": 2}], "j": ["y"], "arr": [1, 2], "s": "t"}]
    for key in (None, "k"):  # COPY, and INSERT ... ON CONFLICT
        postgres.execute("TRUNCATE out_j")
        await write(postgres, rows, table="out_j", key=key)
        got = postgres.execute(
            "SELECT jsonb_typeof(jb), jb, j::text, arr, s FROM out_j WHERE k = 'a'"
        )
        assert got == [("array", [1, {"x": 2}], '["y"]', [1, 2], "t")]


async def test_retractions_delete_by_key_and_are_refused_in_append_mode(
    postgres: PostgresServer,
) -> None:
    postgres.execute("DROP TABLE IF EXISTS out_r; CREATE TABLE out_r (k text PRIMARY KEY, n int)")
    rows: list[dict[str, object]] = [
        {"k": "a", "n": 1}, {"k": "b", "n": 1}, {"k": "c", "n": 1},
        {"_retract": True, "k": "a", "n": 1}, {"k": "a", "n": 2},  # an update as -old +new
        {"_retract": True, "k": "b", "n": 1},  # b is gone
        {"k": "c", "n": 5, "_retract": False},
        {"_retract": True, "k": "zz"},  # nothing to delete: fine
    ]  # fmt: skip
    await write(postgres, rows, table="out_r", key="k")
    assert postgres.execute("SELECT k, n FROM out_r ORDER BY k") == [("a", 2), ("c", 5)]

    postgres.execute("DROP TABLE IF EXISTS out_ra; CREATE TABLE out_ra (k text, n int)")
    with pytest.raises(ActorFailed) as failed:
        await write(postgres, rows, table="out_ra")
    text = str(failed.value.error)
    assert "\n" not in text
    assert text.startswith(f"postgres 127.0.0.1:{postgres.port}/postgres: write failed")
    assert 'a retraction (a row with "_retract": true)' in text and "key=" in text
    assert postgres.execute("SELECT count(*) FROM out_ra") == [(3,)]  # the batch before it


async def test_a_refused_connection_is_one_line(postgres: PostgresServer) -> None:
    port = free_port()
    with pytest.raises(ActorFailed) as failed:
        await write(postgres, [{"a": 1}], table="t", dsn=f"postgresql://u@127.0.0.1:{port}/db")
    error = failed.value.error
    assert isinstance(error, PostgresError) and error.doing == "connect"
    assert str(error).startswith(f"postgres 127.0.0.1:{port}/db: connect failed after 0 rows: ")
    assert "\n" not in str(error)


# ------------------------------------------------------------------ exactly-once


@attrs.define(eq=False)
class CrashingSink(PostgresSink):
    """A PostgresSink held at batch ``hold_at``, and that hangs (a crash to come) right
    after it committed checkpoint ``crash_after`` into the table, before the store has it."""

    hold_at: int | None = None
    crash_after: int | None = None
    held: trio.Event = attrs.field(factory=trio.Event)
    release: trio.Event = attrs.field(factory=trio.Event)
    committed: trio.Event = attrs.field(factory=trio.Event)
    batches: int = 0

    async def consume(self, batch: Batch) -> None:
        self.batches += 1
        if self.hold_at is not None and self.batches >= self.hold_at and not self.release.is_set():
            self.held.set()
            await self.release.wait()
        await super().consume(batch)

    async def commit_checkpoint(self, checkpoint_id: int) -> None:
        await super().commit_checkpoint(checkpoint_id)
        if checkpoint_id == self.crash_after:
            self.committed.set()
            await trio.sleep_forever()


async def latest_id(store: MemoryCheckpointStore) -> int | None:
    latest = await store.latest()
    return None if latest is None else latest.id


def fresh_table(postgres: PostgresServer, table: str, columns: str) -> None:
    """``table`` made anew, and no progress row of a sink writing it."""
    postgres.execute(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({columns})")
    postgres.execute(_CREATE_PROGRESS)
    postgres.execute("DELETE FROM partita_sink_progress WHERE sink_id = %s", [table])


def graph_of(postgres: PostgresServer, rows: int, sink: PostgresSink) -> Graph:
    """A resumable Postgres query of ``rows`` rows (10 a batch) into ``sink``."""
    graph = Graph()
    query = f"SELECT n, 'r' || n AS s FROM generate_series(0, {rows - 1}) n"
    source = PostgresSource("src", postgres.dsn, query, order_by="n", sizer=BatchSizer.fixed(10))
    graph.add(source)
    graph.add(sink, inputs=[source], capacity=2)
    return graph


async def checkpoint_while_held(supervisor: Any, sink: CrashingSink) -> None:
    """Checkpoint 0 with the sink held at its batch ``hold_at``, then let it go on."""
    await sink.held.wait()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervisor.checkpoint)
        await trio.testing.wait_all_tasks_blocked()
        sink.release.set()


@pytest.mark.parametrize("key", [None, "n"], ids=["append", "upsert"])
async def test_a_crash_between_the_sinks_commit_and_the_checkpoints_writes_nothing_twice(
    postgres: PostgresServer, key: str | None
) -> None:
    table = f"out_once_{'u' if key else 'a'}"
    fresh_table(postgres, table, f"n int {'PRIMARY KEY' if key else ''}, s text")
    store = MemoryCheckpointStore()
    checkpoints = Checkpointing(store=store, fingerprint="once")

    sink = CrashingSink("pg", postgres.dsn, table, key=key, hold_at=2, crash_after=1)
    with trio.fail_after(60):
        async with open_supervisor(graph_of(postgres, 1000, sink), checkpoints=checkpoints) as sup:
            await checkpoint_while_held(sup, sink)
            assert await latest_id(store) == 0
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sup.checkpoint)
                await sink.committed.wait()  # in the table, not in the store: crash now
                await sup.cancel(graceful=False)
                nursery.cancel_scope.cancel()
    assert await latest_id(store) == 0
    [(checkpoint, complete)] = postgres.execute(
        "SELECT checkpoint, complete FROM partita_sink_progress WHERE sink_id = %s", [table]
    )
    assert (checkpoint, complete) == (1, False)
    written = postgres.execute(f"SELECT count(*) FROM {table}")[0][0]
    assert 0 < written < 1000

    sink = CrashingSink("pg", postgres.dsn, table, key=key)
    with trio.fail_after(60):
        await run_supervised(graph_of(postgres, 1000, sink), checkpoints=checkpoints)
    got = postgres.execute(f"SELECT n, s FROM {table} ORDER BY n")
    assert got == [(i, f"r{i}") for i in range(1000)]  # each row once
    assert postgres.execute(
        "SELECT complete, rows FROM partita_sink_progress WHERE sink_id = %s", [table]
    ) == [(True, 1000)]


async def test_a_progress_row_of_another_job_is_refused(postgres: PostgresServer) -> None:
    fresh_table(postgres, "out_other", "n int, s text")
    checkpoints = Checkpointing(store=MemoryCheckpointStore(), fingerprint="other")
    sink = CrashingSink("pg", postgres.dsn, "out_other", hold_at=3)
    with trio.fail_after(60):
        async with open_supervisor(graph_of(postgres, 1000, sink), checkpoints=checkpoints) as sup:
            await checkpoint_while_held(sup, sink)
            await sup.cancel(graceful=False)
    # another job took the sink_id since
    postgres.execute("UPDATE partita_sink_progress SET checkpoint = 7 WHERE sink_id = 'out_other'")
    sink = CrashingSink("pg", postgres.dsn, "out_other")
    with pytest.raises(ActorFailed) as failed:
        await run_supervised(graph_of(postgres, 1000, sink), checkpoints=checkpoints)
    text = str(failed.value.error)
    assert text.startswith(f"postgres 127.0.0.1:{postgres.port}/postgres: recover failed")
    assert "committed checkpoint 7, but the run resumes from checkpoint 0" in text
