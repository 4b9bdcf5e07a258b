"""The CLI's SQL options, run as subprocesses: ``--limit`` (and the query's ``LIMIT``),
``--sql-file``, ``--schema`` and ``partita describe``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.actors.test_cli import ROOT, TRADES, partita, rows_of, write_jsonl

pytestmark = pytest.mark.slow


def test_limit_stops_a_push_query_on_a_stream_that_does_not_end() -> None:
    """stdin stays open: only the limit can end the run."""
    env = {**os.environ, "NO_COLOR": "1"}
    args = ["run", "--sql", "SELECT symbol, qty FROM t", "--input", "-", "--limit", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "partita", *args, "--batch-size", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for record in TRADES:
            proc.stdin.write(f'{{"symbol": "{record["symbol"]}", "qty": {record["qty"]}}}\n')
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0
        assert rows_of(proc.stdout.read()) == [
            {"symbol": "A", "qty": 100},
            {"symbol": "B", "qty": 10},
        ]
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_the_querys_limit_and_the_option_take_the_smaller(tmp_path: Path) -> None:
    trades = write_jsonl(tmp_path / "trades.jsonl", TRADES)
    out = tmp_path / "out.jsonl"
    done = partita(
        "run",
        "--sql",
        "SELECT symbol, COUNT(*) AS n FROM t GROUP BY symbol EMIT CHANGES LIMIT 3",
        "--input",
        str(trades),
        "--output",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert rows_of(out.read_text()) == [
        {"symbol": "A", "n": 1},
        {"symbol": "B", "n": 1},
        {"symbol": "A", "n": 2},
    ]
    done = partita("run", "--sql", "SELECT qty FROM t LIMIT 3", "--input", str(trades))
    assert rows_of(done.stdout) == [{"qty": 100}, {"qty": 10}, {"qty": 60}]
    done = partita(
        "run", "--sql", "SELECT qty FROM t LIMIT 3", "--input", str(trades), "--limit", "1"
    )
    assert (done.returncode, rows_of(done.stdout), done.stderr) == (0, [{"qty": 100}], "")


JOB = """-- orders with their schema
CREATE STREAM orders (id BIGINT, cur TEXT, amount DOUBLE, ts TIMESTAMP)
  WITH (event_time = 'ts', lateness = '5s');

SELECT cur, COUNT(*) AS n, SUM(amount) AS total, window_start
FROM orders GROUP BY cur WINDOW TUMBLING(INTERVAL '1' MINUTE);
"""

ORDERS = [
    {"id": "1", "cur": "EUR", "amount": "2.5", "ts": 1_700_000_000},
    {"id": 2, "cur": "EUR", "amount": 1, "ts": "2023-11-14T22:13:30Z"},
    {"id": "x", "cur": "EUR", "amount": 1, "ts": 1_700_000_000_000},
]


def test_a_sql_file_with_its_schema_runs_and_is_described(tmp_path: Path) -> None:
    job = tmp_path / "job.sql"
    job.write_text(JOB, encoding="utf-8")
    orders = write_jsonl(tmp_path / "orders.jsonl", ORDERS)
    done = partita("run", "--sql-file", str(job), "--input", str(orders))
    assert done.returncode == 0, done.stderr
    assert rows_of(done.stdout) == [
        {"cur": "EUR", "n": 2, "total": 3.5, "window_start": 1_699_999_980_000}
    ]
    assert "column 'id': cannot coerce 'x' to BIGINT" in done.stderr
    described = partita("describe", "--sql-file", str(job))
    assert described.returncode == 0, described.stderr
    assert described.stdout.splitlines() == [
        "input orders",
        "  id      BIGINT",
        "  cur     TEXT",
        "  amount  DOUBLE",
        "  ts      TIMESTAMP",
        "  event time: ts",
        "  watermark: max(ts) - 5000 ms (bounded)",
        "  window: TUMBLE(ts, 60000 ms)",
        "output cur, n, total, window_start (EMIT FINAL)",
    ]


def test_a_misspelled_column_fails_before_anything_runs(tmp_path: Path) -> None:
    orders = write_jsonl(tmp_path / "orders.jsonl", ORDERS)
    done = partita(
        "run",
        "--sql",
        "SELECT amout FROM t",
        "--schema",
        "id BIGINT, amount DOUBLE",
        "--input",
        str(orders),
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "partita: SQL error at line 1, column 8: unknown column 'amout'; did you mean 'amount'?\n"
    )
    bad_type = partita("describe", "--sql", "SELECT a FROM t", "--schema", "a INT, b BLOBBY")
    assert (bad_type.returncode, bad_type.stderr.count("\n")) == (2, 1)
    assert "--schema: column 8: unsupported column type BLOBBY" in bad_type.stderr
    neither = partita("describe")
    assert (neither.returncode, neither.stderr) == (
        2,
        "partita: give the query as --sql QUERY or --sql-file PATH (one of them)\n",
    )
    missing = partita("describe", "--sql-file", str(tmp_path / "nope.sql"))
    assert missing.returncode == 2 and "cannot read --sql-file" in missing.stderr
