"""``partita run --input postgres://...`` as a subprocess against the test server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from .conftest import PostgresServer

pytestmark = pytest.mark.slow


def partita(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partita", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_windowed_query_over_a_postgres_input(postgres: PostgresServer, tmp_path: Path) -> None:
    postgres.execute(
        "DROP TABLE IF EXISTS trades; CREATE TABLE trades (id int PRIMARY KEY, "
        "sym text, px numeric, at timestamptz); INSERT INTO trades SELECT i, "
        "CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END, i * 1.5, "
        "'2024-01-01'::timestamptz + i * interval '1 second' FROM generate_series(1, 100) i"
    )
    sql = (
        "SELECT sym, COUNT(*) AS n, window_start FROM t "
        "GROUP BY sym, TUMBLE(at, INTERVAL '10' SECOND)"
    )
    out = tmp_path / "out.jsonl"
    done = partita(
        "run", "--sql", sql, "--input", postgres.dsn, "--query",
        "SELECT id, sym, px, at FROM trades", "--output", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(r["n"] for r in rows) == 100
    assert {r["sym"] for r in rows} == {"A", "B"}

    # the query in the URL, resumable with order_by, under --checkpoint
    url = f"{postgres.dsn}?query={quote('SELECT id, sym, px, at FROM trades')}&order_by=id"
    done = partita(
        "run", "--sql", sql, "--input", url, "--output", str(out),
        "--checkpoint", str(tmp_path / "ck"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sum(json.loads(line)["n"] for line in out.read_text().splitlines()) == 100


def test_postgres_input_usage_errors(postgres: PostgresServer, tmp_path: Path) -> None:
    done = partita("run", "--sql", "SELECT * FROM t", "--input", postgres.dsn)
    assert done.returncode == 2
    assert "needs a query" in done.stderr
    done = partita("run", "--sql", "SELECT * FROM t", "--input", "x.jsonl", "--query", "SELECT 1")
    assert done.returncode == 2
    assert "--query is for a postgres:// --input" in done.stderr
    done = partita(
        "run", "--sql", "SELECT * FROM t", "--input", postgres.dsn, "--query", "SELECT 1",
        "--checkpoint", str(tmp_path / "ck"),
    )  # fmt: skip
    assert done.returncode != 0
    assert "PostgresSource cannot resume" in done.stderr


def test_a_group_by_upserted_into_a_postgres_table(postgres: PostgresServer) -> None:
    postgres.execute(
        "DROP TABLE IF EXISTS src_u, out_cli; CREATE TABLE src_u AS SELECT i, "
        "'k' || (i % 3) AS k FROM generate_series(1, 30) i; "
        "CREATE TABLE out_cli (k text PRIMARY KEY, n bigint)"
    )
    done = partita(
        "run", "--sql", "SELECT k, COUNT(*) AS n FROM t GROUP BY k EMIT CHANGES",
        "--input", postgres.dsn, "--query", "SELECT i, k FROM src_u",
        "--output", f"{postgres.dsn}?table=out_cli&key=k",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert postgres.execute("SELECT k, n FROM out_cli ORDER BY k") == [
        ("k0", 10), ("k1", 10), ("k2", 10),
    ]  # fmt: skip
    done = partita(
        "run", "--sql", "SELECT * FROM t", "--input", postgres.dsn, "--query", "SELECT 1 AS a",
        "--output", postgres.dsn,
    )  # fmt: skip
    assert done.returncode == 2
    assert "needs the table" in done.stderr


def test_emit_changes_with_retractions_into_an_upsert_table(postgres: PostgresServer) -> None:
    postgres.execute(
        "DROP TABLE IF EXISTS r_in, r_out; CREATE TABLE r_in AS SELECT i AS id, "
        "'k' || (i % 3) AS k, i AS v FROM generate_series(1, 30) i; "
        "CREATE TABLE r_out (k text PRIMARY KEY, n bigint, s bigint)"
    )
    sql = (
        "SELECT k, COUNT(*) AS n, SUM(v) AS s FROM t GROUP BY k HAVING SUM(v) < 150 "
        "EMIT CHANGES WITH RETRACTIONS"
    )
    query = "SELECT id, k, v FROM r_in"
    done = partita(
        "run", "--sql", sql, "--input", postgres.dsn, "--query", query,
        "--output", f"{postgres.dsn}?table=r_out&key=k",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # k0 (165) and k2 (155) passed the HAVING and were retracted once they left it
    assert postgres.execute("SELECT k, n, s FROM r_out ORDER BY k") == [("k1", 10, 145)]
    done = partita(
        "run", "--sql", sql, "--input", postgres.dsn, "--query", query,
        "--output", f"{postgres.dsn}?table=r_in",
    )  # fmt: skip
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert 'a retraction (a row with "_retract": true)' in line and "key=" in line
