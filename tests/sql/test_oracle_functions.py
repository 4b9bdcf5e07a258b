"""The functions and predicates of issue 12 against DuckDB on the same rows, NULLs included.

Each case is a pair: partita's SQL (run through ``sql.run_query`` with a random partition
count and batch size) and the DuckDB query that means the same (DuckDB timestamps are
converted to and from partita's epoch milliseconds with ``epoch_ms``; its
``REGEXP_REPLACE`` replaces every match only with the ``'g'`` option, and its
``REGEXP_EXTRACT`` gives ``''`` where partita gives NULL for no match).  Results are
compared as multisets.  Where SQLite has the function too (``IS [NOT] DISTINCT FROM``,
``NULLIF``, ``instr``) the same rows also go through ``sqlite3``.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partita.sql import SqlError, compile_query, run_query
from tests.sql._reference import Record, normalize

COLUMNS = {"k": "TEXT", "x": "BIGINT", "y": "BIGINT", "s": "TEXT", "ts": "BIGINT", "sec": "DOUBLE"}

records_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "k": st.none() | st.sampled_from(["a", "b", ",", "", "ab"]),
            "x": st.none() | st.integers(-4, 4),
            "y": st.none() | st.integers(-4, 4),
            "s": st.none() | st.text(alphabet="abc,x", max_size=8),
            # 1938 .. 2096, leap days and negative epochs included
            "ts": st.none() | st.integers(-(10**12), 4 * 10**12),
            "sec": st.none() | st.integers(-(10**9), 4 * 10**9).map(lambda n: n / 2),
        }
    ),
    max_size=25,
)

PAIRS: list[tuple[str, str]] = [
    (
        "SELECT x IS DISTINCT FROM y AS d, x IS NOT DISTINCT FROM y AS nd, "
        "s IS DISTINCT FROM k AS ds, NOT (x IS DISTINCT FROM 1) AS one FROM events",
        "",
    ),
    (
        "SELECT k, x FROM events WHERE x IS NOT DISTINCT FROM y OR k IS DISTINCT FROM 'a'",
        "",
    ),
    (
        "SELECT GREATEST(x, y) AS g, LEAST(x, y, 0) AS l, GREATEST(s, k) AS gs, "
        "LEAST(x, NULL) AS ln, GREATEST(1, 2) AS c FROM events",
        "",
    ),
    ("SELECT NULLIF(x, y) AS n, NULLIF(s, '') AS ns FROM events", ""),
    (
        "SELECT POSITION('a' IN s) AS p, STRPOS(s, k) AS sp, STRPOS(s, ',') AS c FROM events",
        "",
    ),
    (
        "SELECT SPLIT_PART(s, ',', 2) AS a, SPLIT_PART(s, ',', -1) AS b, "
        "SPLIT_PART(s, k, x) AS c, SPLIT_PART(s, 'x', 0) AS z FROM events",
        "",
    ),
    (
        "SELECT REGEXP_LIKE(s, 'a.b') AS m, REGEXP_LIKE(s, k) AS mk, "
        "REGEXP_EXTRACT(s, '([a-c]+),(x*)', 2) AS e, REGEXP_EXTRACT(s, 'b+') AS e0, "
        "REGEXP_REPLACE(s, '[ab]', '<\\0>') AS r, REGEXP_REPLACE(s, '(a)(b)?', '\\2\\1') AS r2 "
        "FROM events",
        "SELECT regexp_matches(s, 'a.b') AS m, regexp_matches(s, k) AS mk, "
        "CASE WHEN regexp_matches(s, '([a-c]+),(x*)') "
        "THEN regexp_extract(s, '([a-c]+),(x*)', 2) END AS e, "
        "CASE WHEN regexp_matches(s, 'b+') THEN regexp_extract(s, 'b+') END AS e0, "
        "regexp_replace(s, '[ab]', '<\\0>', 'g') AS r, "
        "regexp_replace(s, '(a)(b)?', '\\2\\1', 'g') AS r2 FROM events",
    ),
    (
        "SELECT s FROM events WHERE REGEXP_LIKE(s, '^a') AND NOT REGEXP_LIKE(s, 'x$')",
        "SELECT s FROM events WHERE regexp_matches(s, '^a') AND NOT regexp_matches(s, 'x$')",
    ),
    (
        "SELECT DATE_TRUNC('second', ts) AS s1, DATE_TRUNC('hour', ts) AS h, "
        "DATE_TRUNC('day', ts) AS d, DATE_TRUNC('week', ts) AS w, "
        "DATE_TRUNC('month', ts) AS mo, DATE_TRUNC('quarter', ts) AS q, "
        "DATE_TRUNC('year', ts) AS y FROM events",
        "SELECT epoch_ms(date_trunc('second', epoch_ms(ts))) AS s1, "
        "epoch_ms(date_trunc('hour', epoch_ms(ts))) AS h, "
        "epoch_ms(date_trunc('day', epoch_ms(ts))) AS d, "
        "epoch_ms(date_trunc('week', epoch_ms(ts))) AS w, "
        "epoch_ms(date_trunc('month', epoch_ms(ts))) AS mo, "
        "epoch_ms(date_trunc('quarter', epoch_ms(ts))) AS q, "
        "epoch_ms(date_trunc('year', epoch_ms(ts))) AS y FROM events",
    ),
    (
        "SELECT EXTRACT(YEAR FROM ts) AS y, EXTRACT(QUARTER FROM ts) AS q, "
        "EXTRACT(MONTH FROM ts) AS mo, EXTRACT(WEEK FROM ts) AS w, EXTRACT(DAY FROM ts) AS d, "
        "EXTRACT(DOY FROM ts) AS doy, EXTRACT(DOW FROM ts) AS dow, "
        "EXTRACT(ISODOW FROM ts) AS idow, EXTRACT(HOUR FROM ts) AS h, "
        "EXTRACT(MINUTE FROM ts) AS mi, EXTRACT(SECOND FROM ts) AS s, "
        "EXTRACT(MILLISECOND FROM ts) AS ms, EXTRACT(EPOCH FROM ts) AS e FROM events",
        "SELECT extract(year FROM epoch_ms(ts)) AS y, extract(quarter FROM epoch_ms(ts)) AS q, "
        "extract(month FROM epoch_ms(ts)) AS mo, extract(week FROM epoch_ms(ts)) AS w, "
        "extract(day FROM epoch_ms(ts)) AS d, extract(doy FROM epoch_ms(ts)) AS doy, "
        "extract(dow FROM epoch_ms(ts)) AS dow, extract(isodow FROM epoch_ms(ts)) AS idow, "
        "extract(hour FROM epoch_ms(ts)) AS h, extract(minute FROM epoch_ms(ts)) AS mi, "
        "extract(second FROM epoch_ms(ts)) AS s, "
        "extract(millisecond FROM epoch_ms(ts)) AS ms, "
        "extract(epoch FROM epoch_ms(ts)) AS e FROM events",
    ),
    (
        "SELECT TO_TIMESTAMP(sec) AS t, FROM_UNIXTIME(sec) AS f, "
        "ts + INTERVAL '90' MINUTE AS later, ts - INTERVAL '1' DAY AS earlier, "
        "INTERVAL '1' SECOND + ts AS plus FROM events",
        "SELECT epoch_ms(to_timestamp(sec)) AS t, epoch_ms(to_timestamp(sec)) AS f, "
        "epoch_ms(epoch_ms(ts) + INTERVAL 90 MINUTE) AS later, "
        "epoch_ms(epoch_ms(ts) - INTERVAL 1 DAY) AS earlier, "
        "epoch_ms(INTERVAL 1 SECOND + epoch_ms(ts)) AS plus FROM events",
    ),
    (
        "SELECT k, COUNT(*) AS n FROM events "
        "WHERE DATE_TRUNC('year', ts) > ts - INTERVAL '100' DAY GROUP BY k",
        "SELECT k, COUNT(*) AS n FROM events "
        "WHERE date_trunc('year', epoch_ms(ts)) > epoch_ms(ts) - INTERVAL 100 DAY GROUP BY k",
    ),
    ("SELECT DISTINCT k, x FROM events", ""),
    ("SELECT DISTINCT SPLIT_PART(s, ',', 1) AS head FROM events WHERE x > 0", ""),
    ("SELECT DISTINCT k FROM events EMIT FINAL", "SELECT DISTINCT k FROM events"),
]

SQLITE_TOO = {PAIRS[0][0], PAIRS[1][0], PAIRS[3][0]}


def duckdb_rows(sql_text: str, records: list[Record]) -> list[Record]:
    """``sql_text`` in DuckDB over an ``events`` table holding ``records`` (UTC)."""
    db = duckdb.connect(":memory:")
    try:
        db.execute("SET TimeZone = 'UTC'")
        db.execute(f"CREATE TABLE events ({', '.join(f'{c} {t}' for c, t in COLUMNS.items())})")
        if records:
            db.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                [tuple(r[c] for c in COLUMNS) for r in records],
            )
        cursor = db.execute(sql_text)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        db.close()


def sqlite_rows(sql_text: str, records: list[Record]) -> list[Record]:
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"CREATE TABLE events ({', '.join(f'{c} {t}' for c, t in COLUMNS.items())})")
        db.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
            [tuple(r[c] for c in COLUMNS) for r in records],
        )
        cursor = db.execute(sql_text)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        db.close()


def _plain(rows: list[Record]) -> Any:
    # DuckDB gives EXTRACT(EPOCH) as a float and booleans as bool: normalize() compares
    # numbers as floats rounded, so 1 and 1.0 agree
    return normalize(rows)


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
@settings(max_examples=25, deadline=None)
@given(
    records=records_strategy,
    partitions=st.integers(1, 3),
    batch_size=st.integers(1, 10),
)
def test_function_matches_duckdb(
    ours: str, theirs: str, records: list[Record], partitions: int, batch_size: int
) -> None:
    expected = duckdb_rows(theirs or ours, records)
    got = run_query(ours, records, partitions=partitions, batch_size=batch_size)
    assert _plain(got.rows) == _plain(expected)
    assert got.counts.errored == 0
    if ours in SQLITE_TOO:
        assert _plain(got.rows) == _plain(sqlite_rows(ours, records))


def test_greatest_ignores_nulls_and_is_null_only_when_all_are() -> None:
    rows = [{"a": None, "b": 2}, {"a": None, "b": None}]
    got = run_query("SELECT GREATEST(a, b) AS g, LEAST(a, b, 5) AS l FROM t", rows).rows
    assert got == [{"g": 2, "l": 2}, {"g": None, "l": 5}]


def test_timestamps_may_be_iso_text() -> None:
    rows = [{"ts": "2024-02-29T23:59:59.999Z"}]
    (row,) = run_query(
        "SELECT DATE_TRUNC('month', ts) AS m, EXTRACT(DOY FROM ts) AS doy, "
        "ts + INTERVAL '1' MILLISECOND AS next, TO_TIMESTAMP('1970-01-01T00:00:01Z') AS one "
        "FROM t",
        rows,
    ).rows
    assert row == {"m": 1706745600000, "doy": 60, "next": 1709251200000, "one": 1000}


def test_a_bad_pattern_is_an_sql_error_with_its_position() -> None:
    with pytest.raises(SqlError) as info:
        compile_query("SELECT k,\n  REGEXP_LIKE(s, 'a(') AS m FROM t")
    assert (info.value.line, info.value.col) == (2, 18)
    assert "invalid regular expression 'a('" in info.value.message


def test_a_literal_pattern_is_compiled_once_per_query() -> None:
    q = compile_query("SELECT REGEXP_LIKE(s, 'a+') AS m, REGEXP_REPLACE(s, 'a+', 'b') AS r FROM t")
    assert list(q.code.constants) == ["_re0", "_repl0"]
    assert "re.compile('a+')" in q.explain()


def test_a_pattern_known_at_run_time_that_is_bad_makes_a_bad_record() -> None:
    rows = [{"s": "abc", "p": "("}, {"s": "abc", "p": "b"}]
    got = run_query("SELECT REGEXP_LIKE(s, p) AS m FROM t", rows, on_error="dead-letter")
    assert got.rows == [{"m": True}]
    assert "invalid regular expression '('" in got.dead_letters[0].reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT STRPOS(s) FROM t", "STRPOS is missing an argument"),
        ("SELECT STRPOS(s, 'a', 2) FROM t", "STRPOS does not take that many"),
        ("SELECT REGEXP_REPLACE(s, 'a', 'b', 'g') FROM t", "REGEXP_REPLACE does not take"),
        ("SELECT NULLIF(a, b, c) FROM t", "too many arguments (3 given, at most 2)"),
        ("SELECT GREATEST() FROM t", "GREATEST is missing an argument"),
        ("SELECT DATE_TRUNC('fortnight', ts) FROM t", "DATE_TRUNC takes ('unit', timestamp)"),
        ("SELECT EXTRACT(CENTURY FROM ts) FROM t", "EXTRACT takes (field FROM timestamp)"),
        ("SELECT TO_TIMESTAMP(s, 'yyyy') FROM t", "TO_TIMESTAMP takes one argument"),
        ("SELECT INTERVAL '1' HOUR AS i FROM t", "an INTERVAL can only be added"),
        ("SELECT ts + INTERVAL '1' MONTH FROM t", "unsupported interval unit 'MONTH'"),
        ("SELECT REGEXP_EXTRACT(s, 'a', 1) FROM t", "group 1 is out of range"),
        ("SELECT REGEXP_REPLACE(s, 'a', '\\1') FROM t", "names group 1; the pattern has 0"),
    ],
)
def test_errors_speak_partitas_sql(
    text: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="sqlglot"), pytest.raises(SqlError) as info:
        compile_query(text)
    assert message in info.value.message
    for internal in ("STR_POSITION", "sqlglot", "<class", "Token"):
        assert internal not in str(info.value)
    assert caplog.records == []


def test_no_sqlglot_warning_for_the_new_functions(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="sqlglot"):
        for ours, _ in PAIRS:
            compile_query(ours).explain()
    assert caplog.records == []


def test_limit_stops_the_run_after_n_rows() -> None:
    rows = [{"k": i % 3, "x": i} for i in range(1000)]
    got = run_query("SELECT k, x FROM t EMIT CHANGES LIMIT 5", rows, batch_size=10)
    assert got.rows == [{"k": i % 3, "x": i} for i in range(5)]
    assert got.counts.rows_in == 10  # it stopped reading after the first batch
    changes = run_query("SELECT k, COUNT(*) AS n FROM t GROUP BY k EMIT CHANGES LIMIT 4", rows)
    assert changes.rows == [{"k": 0, "n": 1}, {"k": 1, "n": 1}, {"k": 2, "n": 1}, {"k": 0, "n": 2}]
    assert compile_query("SELECT k FROM t LIMIT 3").limit == 3
    assert "Limit(3)" in str(compile_query("SELECT k FROM t LIMIT 3").plan)


def test_distinct_emits_each_row_once_at_first_sight() -> None:
    rows = [{"k": k} for k in "abacab"]
    got = run_query("SELECT DISTINCT k FROM t", rows, batch_size=1)
    assert got.rows == [{"k": "a"}, {"k": "b"}, {"k": "c"}]


def test_windowed_distinct_is_bounded_by_the_watermark() -> None:
    rows = [{"k": k, "ts": i * 100} for i, k in enumerate("abab" * 5)]
    query = "SELECT DISTINCT k, window_start FROM t WINDOW TUMBLING(INTERVAL '400' MILLISECOND, ts)"
    got = run_query(query, rows)
    assert [(r["window_start"], r["k"]) for r in got.rows] == [
        (ws, k) for ws in range(0, 2000, 400) for k in "ab"
    ]
    program = compile_query(query).new_program()
    assert "windows" in str(program.snapshot())  # state per window, closed windows evicted
