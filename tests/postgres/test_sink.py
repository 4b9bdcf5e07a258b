"""PostgresSink against a real server."""

from __future__ import annotations

import pytest

from partita import ActorFailed, IterableSource, PostgresError, PostgresSink, run_graph
from partita.runtime import BatchSizer, Graph

from .conftest import PostgresServer


async def write(postgres: PostgresServer, rows: list[dict[str, object]], **sink: object) -> None:
    graph = Graph()
    source = IterableSource("src", rows, sizer=BatchSizer.fixed(3))
    graph.add(source)
    graph.add(PostgresSink("pg", postgres.dsn, **sink), inputs=[source])  # type: ignore[arg-type]
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
