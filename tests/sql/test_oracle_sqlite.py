"""Non-windowed queries against SQLite on the same rows.

Hypothesis generates records (every field present, NULLs allowed); the same SQL text runs
through ``sql.run_query`` (random partition count and batch size) and through Python's
``sqlite3`` on an in-memory ``events`` table holding the same rows.  Results are compared
as multisets, numbers rounded to 6 significant digits.  The catalogue avoids the places
where SQLite knowingly departs from standard SQL (``ROUND``, CAST of non-numeric text);
integer ``/`` and ``%`` truncate toward zero and division by zero gives NULL in both.
LIKE is case-sensitive in both (standard SQL; SQLite with ``PRAGMA case_sensitive_like``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.sql._reference import Record, normalize, record_strategy, run_sql

COLUMNS = ("ts", "k", "g", "x", "y", "s")

PROJECTIONS: list[str] = [
    "SELECT k, x + 1 AS x1, x * 2 - g AS e, y / 2 AS half, -x AS neg FROM events",
    "SELECT x, CASE WHEN x > 10 THEN 'big' WHEN x < -10 THEN 'small' ELSE 'mid' END AS size "
    "FROM events",
    "SELECT CASE g WHEN 0 THEN 'zero' WHEN 1 THEN 'one' END AS word, g FROM events",
    "SELECT COALESCE(x, g, -1) AS c, COALESCE(s, 'none') AS s2 FROM events",
    "SELECT x, g FROM events WHERE x IN (1, 2, 3, -5) OR g IN (0, 1)",
    "SELECT x FROM events WHERE x NOT IN (1, 2, 3)",
    "SELECT x, y FROM events WHERE x BETWEEN -10 AND 10 AND y NOT BETWEEN -5 AND 5",
    "SELECT s FROM events WHERE s LIKE 'a%' OR s LIKE '_a%'",
    "SELECT s, k FROM events WHERE s NOT LIKE '%a%'",
    "SELECT k, x FROM events WHERE NOT (x > 0)",
    "SELECT k, x FROM events WHERE x <> 3 OR x IS NULL",
    "SELECT k, y FROM events WHERE y > 0 AND (k = 'a' OR g IS NULL)",
    "SELECT UPPER(s) AS u, LOWER(s) AS l, LENGTH(s) AS n, ABS(x) AS a FROM events",
    "SELECT k || '-' || s AS ks FROM events",
    "SELECT CAST(x AS DOUBLE) AS fx, CAST(y AS INTEGER) AS iy FROM events",
    "SELECT ts, x * y AS xy, x - y AS d FROM events WHERE x >= y",
    "SELECT x / 3 AS q, x % 3 AS m, x / g AS qg, x % g AS mg, y / g AS yg FROM events",
    "SELECT SUBSTR(s, 2, 3) AS a, TRIM(s) AS b, REPLACE(s, 'a', 'o') AS c FROM events",
    "SELECT CAST(x AS TEXT) AS t, CAST(y AS TEXT) AS ty, k || x AS kx FROM events",
    "SELECT x FROM events WHERE NOT (x > 0 AND y > 0) OR (x > 0) = (y > 0)",
    "SELECT x FROM events WHERE x IN (g, 1)",
    "SELECT COALESCE(y, x) AS c, NULLIF(x, 0) AS nz FROM events WHERE s < 'b' OR s >= 'c'",
    "SELECT x FROM events WHERE x NOT BETWEEN g AND 10",
]

AGGREGATIONS: list[str] = [
    "SELECT k, COUNT(*) AS n, COUNT(x) AS nx, COUNT(DISTINCT g) AS dg, SUM(x) AS sx, "
    "AVG(y) AS ay, MIN(s) AS mns, MAX(y) AS mxy FROM events GROUP BY k",
    "SELECT g, SUM(x) AS sx FROM events WHERE y IS NULL OR y > 0 GROUP BY g HAVING COUNT(*) > 1",
    "SELECT k, g, COUNT(*) AS n, AVG(x) AS ax FROM events GROUP BY k, g",
    "SELECT k, MAX(x) - MIN(x) AS spread FROM events GROUP BY k HAVING MAX(x) IS NOT NULL",
    "SELECT k, SUM(CASE WHEN x > 0 THEN 1 ELSE 0 END) AS pos, COUNT(s) AS ns FROM events "
    "GROUP BY k",
    "SELECT k, SUM(x * y) AS sxy, AVG(x + 0.5) AS ax, COUNT(*) + 1 AS n1 FROM events GROUP BY k",
    "SELECT UPPER(k) AS uk, COUNT(*) AS n FROM events GROUP BY UPPER(k)",
    "SELECT x % 4 AS m, COUNT(*) AS n FROM events GROUP BY x % 4",
    "SELECT k, COUNT(*) AS n FROM events GROUP BY k HAVING AVG(x) > 0 AND COUNT(*) >= 2",
    "SELECT s, COUNT(*) AS n, MIN(ts) AS t0 FROM events WHERE s LIKE '%a%' GROUP BY s",
    "SELECT g, COUNT(DISTINCT k) AS dk, COUNT(DISTINCT s) AS ds FROM events GROUP BY g "
    "HAVING SUM(x) > 0 OR SUM(x) IS NULL",
]

# A global aggregate without GROUP BY returns one row even over no input in SQL; kept
# separate so that the empty-input case is visible on its own.
GLOBAL_AGGREGATE = "SELECT COUNT(*) AS n, SUM(y) AS sy, MIN(x) AS mn FROM events"


def sqlite_rows(sql_text: str, records: list[Record]) -> list[Record]:
    """Run ``sql_text`` in SQLite over an ``events`` table holding ``records``."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute("PRAGMA case_sensitive_like = ON")
        db.execute("CREATE TABLE events (ts INTEGER, k TEXT, g INTEGER, x INTEGER, y REAL, s TEXT)")
        db.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
            [tuple(r[c] for c in COLUMNS) for r in records],
        )
        cursor = db.execute(sql_text)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        db.close()


def _check(sql_text: str, records: list[Record], partitions: int, batch_size: int) -> Any:
    expected = sqlite_rows(sql_text, records)
    got = run_sql(sql_text, records, partitions=partitions, batch_size=batch_size)
    assert normalize(got.rows) == normalize(expected)
    assert got.counts.rows_in == len(records)
    assert got.counts.errored == 0
    assert got.counts.late == 0
    assert got.dead_letters == []
    return got


common = {
    "records": st.lists(record_strategy, max_size=40),
    "partitions": st.integers(1, 4),
    "batch_size": st.integers(1, 50),
}


@pytest.mark.parametrize("sql_text", PROJECTIONS)
@given(**common)
def test_projection_matches_sqlite(
    sql_text: str, records: list[Record], partitions: int, batch_size: int
) -> None:
    got = _check(sql_text, records, partitions, batch_size)
    # a stateless query emits one row per record that passes WHERE
    assert got.counts.filtered == len(records) - len(got.rows)


@pytest.mark.parametrize("sql_text", AGGREGATIONS)
@given(**common)
def test_aggregation_matches_sqlite(
    sql_text: str, records: list[Record], partitions: int, batch_size: int
) -> None:
    _check(sql_text, records, partitions, batch_size)


@given(
    records=st.lists(record_strategy, min_size=1, max_size=40),
    partitions=st.integers(1, 4),
    batch_size=st.integers(1, 50),
)
def test_global_aggregate_matches_sqlite(
    records: list[Record], partitions: int, batch_size: int
) -> None:
    _check(GLOBAL_AGGREGATE, records, partitions, batch_size)


def test_global_aggregate_over_no_rows_is_one_row() -> None:
    """SQL: an aggregate without GROUP BY over no rows gives one row (COUNT 0, others NULL)."""
    assert sqlite_rows(GLOBAL_AGGREGATE, []) == [{"n": 0, "sy": None, "mn": None}]
    got = run_sql(GLOBAL_AGGREGATE, [])
    assert got.rows == [{"n": 0, "sy": None, "mn": None}]


def test_null_is_a_group_key() -> None:
    records: list[Record] = [
        {"ts": 0, "k": None, "g": 1, "x": 1, "y": None, "s": None},
        {"ts": 1, "k": None, "g": None, "x": None, "y": None, "s": None},
        {"ts": 2, "k": "a", "g": None, "x": 2, "y": 1.5, "s": "z"},
    ]
    sql_text = (
        "SELECT k, COUNT(*) AS n, COUNT(x) AS nx, SUM(y) AS sy, MIN(s) AS ms FROM events GROUP BY k"
    )
    got = _check(sql_text, records, 2, 1)
    assert normalize(got.rows) == normalize(
        [
            {"k": None, "n": 2, "nx": 1, "sy": None, "ms": None},
            {"k": "a", "n": 1, "nx": 1, "sy": 1.5, "ms": "z"},
        ]
    )


def test_not_between_with_null_bound_is_three_valued() -> None:
    """x BETWEEN NULL AND 10 is (x >= NULL AND x <= 10): FALSE when x > 10, so NOT is TRUE."""
    records: list[Record] = [{"ts": 0, "k": None, "g": None, "x": 11, "y": None, "s": None}]
    sql_text = "SELECT x FROM events WHERE x NOT BETWEEN g AND 10"
    assert sqlite_rows(sql_text, records) == [{"x": 11}]
    assert run_sql(sql_text, records).rows == [{"x": 11}]
