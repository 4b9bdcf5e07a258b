"""The Postgres programs of docs/api.md run as written, against the real test server."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import trio

from partita import IterableSource, run_graph
from partita.runtime import Graph

from .conftest import PostgresServer

API = Path(__file__).resolve().parents[2] / "docs" / "api.md"
DOC_DSN = "postgresql://app@db.internal:5432/shop"


def block_after(heading: str, nth: int = 0) -> str:
    """The ``nth`` python block after ``heading`` in api.md (dedented: list items indent)."""
    text = API.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", section, re.S | re.M)
    return textwrap.dedent(blocks[nth][1])


def test_the_postgres_program_streams_a_window_aggregate_into_a_table(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres.execute(
        "DROP TABLE IF EXISTS orders, spent; "
        "CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric, "
        "created_at timestamptz); "
        "INSERT INTO orders SELECT i, 'c' || (i % 5), (i % 300)::numeric, "
        "'2024-01-01'::timestamptz + i * interval '1 minute' FROM generate_series(1, 2000) i; "
        "CREATE TABLE spent (customer text, window_start bigint, spent float8, "
        "PRIMARY KEY (customer, window_start))"
    )
    program = block_after("### `PostgresSource`")
    assert program.rstrip().endswith("trio.run(main)") and DOC_DSN in program
    monkeypatch.chdir(tmp_path)  # the program's checkpoint directory "ck"
    namespace: dict[str, Any] = {"__name__": "api_postgres"}
    code = program.replace(DOC_DSN, postgres.dsn).replace("trio.run(main)", "")
    exec(compile(code, "docs/api.md", "exec"), namespace)
    trio.run(namespace["main"])
    want = postgres.execute(
        "SELECT customer, (extract(epoch FROM date_trunc('hour', created_at)) * 1000)::bigint, "
        "SUM(total)::float8 FROM orders WHERE total > 100 GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert len(want) > 50
    assert postgres.execute("SELECT * FROM spent ORDER BY 1, 2") == want
    assert (tmp_path / "ck" / "checkpoints.db").exists()


async def test_the_retraction_example_deletes_and_updates(postgres: PostgresServer) -> None:
    postgres.execute(
        "DROP TABLE IF EXISTS counts; CREATE TABLE counts (customer text PRIMARY KEY, n int)"
    )
    namespace: dict[str, Any] = {"partita": __import__("partita"), "DSN": postgres.dsn}
    exec(compile(block_after("### `PostgresSink`"), "docs/api.md", "exec"), namespace)
    graph = Graph()
    source = IterableSource("src", namespace["rows"])
    graph.add(source)
    graph.add(namespace["sink"], inputs=[source])
    await run_graph(graph)
    assert postgres.execute("SELECT customer, n FROM counts") == [("ann", 2)]
