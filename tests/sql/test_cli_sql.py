"""The CLI's SQL options: ``--limit`` (and the query's ``LIMIT``), run as subprocesses."""

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
