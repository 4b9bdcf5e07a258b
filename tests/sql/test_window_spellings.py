"""Window spellings of velostream and ksqlDB, and a lateness written in SQL.

Each spelling compiles to the same window as the Flink form and gives the same rows;
``GRACE PERIOD`` (and ``CREATE STREAM ... WITH (lateness = ...)``) set the query's
allowed lateness unless the ``allowed_lateness`` option is given.
"""

from __future__ import annotations

import pytest

from partita.sql import SqlError, compile_query, run_query

ROWS = [{"k": "a", "ts": t} for t in (0, 61_000, 30_000, 200_000, 95_000)]
FLINK = "SELECT k, COUNT(*) AS n, window_start FROM t GROUP BY k, TUMBLE(ts, INTERVAL '1' MINUTE)"


@pytest.mark.parametrize(
    "clause",
    [
        "WINDOW TUMBLING(1m, ts)",
        "WINDOW TUMBLING(ts, 1m)",
        "WINDOW TUMBLING(ts, INTERVAL '1' MINUTE)",
        "WINDOW TUMBLING(60s, ts)",
        "WINDOW TUMBLING(60000ms, ts)",
        "WINDOW TUMBLING (SIZE 1 MINUTE, ts)",
        "WINDOW TUMBLING(SIZE 60 SECONDS, ts)",
    ],
)
def test_tumbling_spellings_mean_one_window(clause: str) -> None:
    query = f"SELECT k, COUNT(*) AS n, window_start FROM t GROUP BY k {clause}"
    assert str(compile_query(query).plan.window) == "TUMBLE(ts, 60000 ms)"
    assert run_query(query, ROWS).rows == run_query(FLINK, ROWS).rows


def test_sliding_and_session_spellings() -> None:
    sliding = compile_query("SELECT COUNT(*) AS n FROM t WINDOW SLIDING(10m, 5m, ts)")
    assert str(sliding.plan.window) == "HOP(ts, slide 300000 ms, size 600000 ms)"
    session = compile_query(
        "SELECT k, COUNT(*) AS n FROM t GROUP BY k WINDOW SESSION(30m)", event_time="ts"
    )
    assert str(session.plan.window) == "SESSION(ts, gap 1800000 ms)"
    uneven = compile_query("SELECT COUNT(*) AS n FROM t WINDOW SLIDING(1m, 25s, ts)")
    assert str(uneven.plan.window) == "HOP(ts, slide 25000 ms, size 60000 ms)"


def test_grace_period_is_the_querys_lateness() -> None:
    query = (
        "SELECT k, COUNT(*) AS n, window_start FROM t GROUP BY k "
        "WINDOW TUMBLING(ts, 1m, GRACE PERIOD 40s)"
    )
    ksql = (
        "SELECT k, COUNT(*) AS n, window_start FROM t GROUP BY k "
        "WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 40 SECONDS, ts)"
    )
    assert compile_query(query).options.allowed_lateness_ms == 40_000
    graced = run_query(query, ROWS)
    assert (
        graced.rows
        == run_query(ksql, ROWS).rows
        == run_query(FLINK, ROWS, allowed_lateness="40s").rows
    )
    assert graced.counts.late == 1  # 30_000 joins window 0, still open; 95_000 is late
    assert run_query(FLINK, ROWS).counts.late == 2
    # the option, given, wins over the SQL
    assert run_query(query, ROWS, allowed_lateness=0).counts.late == 2


def test_grace_period_beats_the_declared_lateness() -> None:
    ddl = "CREATE STREAM t (k TEXT, ts TIMESTAMP) WITH (event_time = 'ts', lateness = '1s');\n"
    declared = compile_query(ddl + "SELECT k, COUNT(*) AS n FROM t GROUP BY k WINDOW TUMBLING(1m)")
    assert declared.options.allowed_lateness_ms == 1000
    graced = compile_query(
        ddl + "SELECT k, COUNT(*) AS n FROM t GROUP BY k WINDOW TUMBLING(1m, GRACE PERIOD 2m)"
    )
    assert graced.options.allowed_lateness_ms == 120_000


@pytest.mark.parametrize(
    ("clause", "message"),
    [
        (
            "WINDOW TUMBLING(1m, ts, GRACE PERIOD 1s, GRACE PERIOD 2s)",
            "GRACE PERIOD is given twice",
        ),
        ("WINDOW TUMBLING(1m)", "needs an event-time column"),
        ("WINDOW SLIDING(1m, 2m, ts)", "SLIDING size must be at least its advance"),
        ("WINDOW TUMBLING(1m, 2m, ts)", "WINDOW TUMBLING takes TUMBLING([time_column,] size"),
        ("WINDOW TUMBLING(1 PARSEC, ts)", "syntax error"),
    ],
)
def test_bad_window_clauses(clause: str, message: str) -> None:
    with pytest.raises(SqlError, match=message.replace("(", r"\(").replace("[", r"\[")):
        compile_query(f"SELECT COUNT(*) AS n FROM t {clause}")
