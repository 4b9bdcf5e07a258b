"""Bad SQL fails before anything runs, naming line, column and what is supported;
bad records are handled per record by policy."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from partita.runtime import BadRecord
from partita.sql import SqlError, compile_query, run_query


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("SELECT a FROM t RIGHT JOIN u ON t.a = u.a", 1, 17, "RIGHT JOIN is not supported"),
        ("SELECT a FROM t\nORDER BY a", 2, 1, "ORDER BY is not supported"),
        ("SELECT a FROM t LIMIT 0", 1, 17, "LIMIT takes a positive integer"),
        ("SELECT a FROM t LIMIT 5 OFFSET 2", 1, 25, "OFFSET is not supported"),
        ("SELECT a FROM (SELECT a FROM u)", 1, 15, "subqueries are not supported"),
        ("SELECT a FROM t WHERE a IN (SELECT b FROM u)", 1, 29, "subqueries are not supported"),
        ("SELECT a FROM t WHERE EXISTS (SELECT 1 FROM u)", 1, 23, "subqueries are not supported"),
        ("SELECT SUM(a) OVER (PARTITION BY b) FROM t", 1, 8, "window functions (OVER)"),
        ("SELECT a FROM t; SELECT b FROM t", 1, 1, "only CREATE STREAM declarations may come"),
        ("SELECT FOO(a) FROM t", 1, 8, "unknown function FOO; supported: "),
        ("SELECT DATE_ADD(a, 1) FROM t", 1, 8, "is not supported; supported: "),
        ("SELECT DISTINCT * FROM t", 1, 8, "SELECT DISTINCT * is not supported"),
        ("SELECT DISTINCT a, COUNT(*) FROM t", 1, 8, "SELECT DISTINCT with aggregates"),
        ("SELECT /* d */ DISTINCT a FROM t GROUP BY a", 1, 16, "DISTINCT with GROUP BY"),
        ("SELECT DISTINCT ON (k) k FROM t", 1, 8, "SELECT DISTINCT ON is not supported"),
        (
            "SELECT\n  DISTINCT k FROM t GROUP BY SESSION(ts, 10) EMIT CHANGES",
            2,
            3,
            "SELECT DISTINCT ... EMIT CHANGES over SESSION",
        ),
        ("SELECT COUNT(a, b) FROM t", 1, 8, "COUNT takes one argument"),
        ("SELECT a,\n 'abc FROM t", 2, 2, "unterminated string: no closing '"),
        ('SELECT "abc FROM t', 1, 8, 'unterminated quoted name: no closing "'),
        ("SELECT a /* x FROM t", 1, 10, "unterminated comment"),
        (
            "SELECT window_end, SUM(p) AS s FROM TABLE(HOP(TABLE t, DESCRIPTOR(ts), 1, 2)) "
            "GROUP BY window_start, window_end",
            1,
            37,
            "window table-valued functions (FROM TABLE(HOP(TABLE t, DESCRIPTOR(ts), ...))) are "
            "not supported; read the stream (FROM t) and group by the window: GROUP BY ..., "
            "HOP(ts, slide, size)",
        ),
        ("WITH x AS (SELECT 1) SELECT a FROM x", 1, 6, "WITH (common table expressions)"),
        ("SELECT a FROM t UNION SELECT a FROM u", 1, 1, "only SELECT queries are supported"),
        ("INSERT INTO t VALUES (1)", 1, 1, "only SELECT queries are supported"),
        ("SELECT 1", 1, 1, "FROM <stream> is required"),
        ("SELECT a FROM t HAVING a > 1", 1, 17, "HAVING needs GROUP BY or aggregates"),
        ("SELECT a FROM t WHERE SUM(a) > 1", 1, 23, "aggregates are not allowed in WHERE"),
        ("SELECT SUM(MAX(a)) FROM t", 1, 12, "nested aggregates are not supported"),
        ("SELECT k, x FROM t GROUP BY k", 1, 11, "column 'x' must appear in GROUP BY"),
        ("SELECT * FROM t GROUP BY k", 1, 1, "SELECT * cannot be used with GROUP BY"),
        ("SELECT a, a FROM t", 1, 11, "duplicate output column 'a'"),
        ("SELECT k FROM t GROUP BY k, TUMBLE(ts, INTERVAL '1' FORTNIGHT)", 1, 40, "interval unit"),
        ("SELECT k FROM t GROUP BY k, TUMBLE(ts + 1, 1000)", 1, 36, "must be a column name"),
        ("SELECT COUNT(*) FROM t GROUP BY TUMBLE(ts, 1000), TUMBLE(ts, 2000)", 1, 51, "only one"),
        ("SELECT COUNT(*) FROM t GROUP BY HOP(ts, 1000, 300)", 1, 33, "at least its slide"),
        ("SELECT TUMBLE(ts, 1000) FROM t", 1, 8, "belong in GROUP BY"),
        ("SELECT TUMBLE_START(ts, 1000) FROM t", 1, 8, "needs a windowed GROUP BY"),
        (
            "SELECT k FROM t GROUP BY k WINDOW TUMBLING(INTERVAL '1' SECOND)",
            1,
            28,
            "event-time column",
        ),
        ("SELECT k FROM t GROUP BY k WINDOW SLIDING(1000, t2)", 1, 28, "size, advance [, time"),
        ("SELECT a FROM t WINDOW w AS (PARTITION BY b)", 1, 17, "named WINDOW clauses"),
        ("SELECT CAST(a AS DATE) FROM t", 1, 8, "CAST to DATE is not supported"),
        ("SELECT u.a FROM t", 1, 8, "unknown table 'u'"),
        ("SELECT a FROM t EMIT CHANGES EMIT FINAL", 1, 30, "multiple EMIT clauses"),
        ("SELECT a FROM", 1, 10, "syntax error: Expected table name but got the end of the query"),
        ("", 1, 1, "empty query"),
        ("SELECT a IS 5 FROM t", 1, 8, "IS supports NULL, TRUE and FALSE"),
        ("SELECT SUM(DISTINCT a) FROM t", 1, 8, "COUNT(DISTINCT x) only"),
        ("SELECT COUNT(*) AS n FROM t GROUP BY CUBE(k)", 1, 43, "ROLLUP/CUBE"),
    ],
)
def test_unsupported_sql_is_rejected_before_running(
    text: str, line: int, col: int, message: str
) -> None:
    with pytest.raises(SqlError) as info:
        compile_query(text)
    err = info.value
    assert message in err.message, err.message
    assert (err.line, err.col) == (line, col), str(err)
    assert str(err).startswith(f"line {line}, column {col}: ")


ERROR_TEXTS = [
    case[0] for case in test_unsupported_sql_is_rejected_before_running.pytestmark[0].args[1]
]


@pytest.mark.parametrize("text", [t for t in ERROR_TEXTS if t])
def test_every_error_position_moves_with_the_text(text: str) -> None:
    """An error points at its construct, not at a default line 1, column 1: the same
    query two lines and three columns further on moves its position as much."""
    with pytest.raises(SqlError) as first:
        compile_query(text)
    with pytest.raises(SqlError) as moved:
        compile_query("\n\n   " + text)
    line, col = first.value.line, first.value.col
    assert (moved.value.line, moved.value.col) == (line + 2, col + 3 if line == 1 else col)
    assert moved.value.message == first.value.message


def test_an_unknown_window_clause_column_names_its_position() -> None:
    declared = "CREATE STREAM t (a BIGINT, ts TIMESTAMP);\n"
    with pytest.raises(SqlError) as info:
        compile_query(declared + "SELECT COUNT(*) AS n FROM t WINDOW TUMBLING(1s, tss)")
    assert (info.value.line, info.value.col) == (2, 49)
    assert info.value.message == "unknown column 'tss'; did you mean 'ts'?"
    with pytest.raises(SqlError) as option:  # the time column of an option: at the clause
        compile_query(declared + "SELECT COUNT(*) AS n FROM t WINDOW TUMBLING(1s)", event_time="x")
    assert (option.value.line, option.value.col) == (2, 29)


def test_unsupported_messages_say_what_is_supported() -> None:
    with pytest.raises(SqlError, match="use GROUP BY with TUMBLE/HOP/SESSION"):
        compile_query("SELECT ROW_NUMBER() OVER (ORDER BY a) FROM t")
    with pytest.raises(SqlError, match="UPPER"):
        compile_query("SELECT NOPE(a) FROM t")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"on_error": "ignore"}, "on_error must be 'skip', 'dead-letter' or 'fail', got 'ignore'"),
        ({"late": "keep"}, "late must be 'drop', 'dead-letter' or 'update', got 'keep'"),
        ({"watermark": "punctuated"}, "watermark must be 'bounded' or 'ascending'"),
        ({"allowed_lateness": -1}, "allowed_lateness: -1 is not a duration"),
        ({"allowed_lateness": "nan"}, "allowed_lateness: 'nan' is not a duration"),
        ({"retention": "inf"}, "retention: 'inf' is not a duration"),
        ({"watermark": "ascending", "allowed_lateness": 5}, "takes no allowed_lateness"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        compile_query("SELECT a FROM t", **options)


def test_options_are_durations_and_unknown_ones_fail() -> None:
    q = compile_query("SELECT a FROM t", allowed_lateness="1.5s", late="update", retention="2m")
    assert (q.options.allowed_lateness_ms, q.options.retention_ms) == (1500, 120_000)
    with pytest.raises(TypeError, match="allowed_latenes"):
        compile_query("SELECT a FROM t", allowed_latenes=5)


def test_run_query_argument_errors() -> None:
    q = compile_query("SELECT a FROM t")
    with pytest.raises(TypeError, match="compile options can only be given with SQL text"):
        run_query(q, [], on_error="fail")
    with pytest.raises(ValueError, match="batch_size must be >= 1, not 0"):
        run_query(q, [], batch_size=0)
    with pytest.raises(ValueError, match="partitions must be >= 1, not 0"):
        run_query(q, [], partitions=0)


BAD_ROWS: list[dict[str, Any]] = [
    {"k": "a", "x": 1},
    {"k": "a"},  # missing x
    {"k": "b", "x": "oops"},  # wrong type
    {"k": "b", "x": 2},
]


def test_skip_counts_bad_records() -> None:
    result = run_query("SELECT k, x + 1 AS y FROM t", BAD_ROWS)
    assert result.rows == [{"k": "a", "y": 2}, {"k": "b", "y": 3}]
    assert result.dead_letters == []
    assert result.counts.errored == 2
    assert result.counts.rows_in == 4


def test_dead_letter_gives_reason_and_offset() -> None:
    result = run_query(
        "SELECT k, x + 1 AS y FROM t", BAD_ROWS, on_error="dead-letter", batch_size=3
    )
    reasons = [(d.offset, d.reason) for d in result.dead_letters]
    assert reasons[0] == (1, "missing field 'x'")
    assert reasons[1][0] == 2 and reasons[1][1].startswith("TypeError")
    assert result.dead_letters[0].record == {"k": "a"}


@pytest.mark.parametrize("partitions", [1, 3])
def test_fail_names_the_offset(partitions: int) -> None:
    with pytest.raises(BadRecord) as info:
        run_query(
            "SELECT k, SUM(x) AS s FROM t GROUP BY k",
            [{"k": "a", "x": 1}] * 5 + [{"k": "a"}],
            on_error="fail",
            partitions=partitions,
            batch_size=4,
        )
    assert info.value.offset == 5
    assert "missing field 'x'" in str(info.value)
    assert "at record offset 5" in str(info.value)
    assert isinstance(info.value.__cause__, KeyError)


def test_group_update_is_all_or_nothing() -> None:
    rows = [
        {"k": "a", "x": 1, "y": 1.0},
        {"k": "a", "x": 5, "y": "bad"},  # SUM(x) would succeed, SUM(y) fails
        {"k": "a", "x": 2, "y": 2.0},
    ]
    result = run_query(
        "SELECT k, COUNT(*) AS n, SUM(x) AS sx, SUM(y) AS sy, COUNT(DISTINCT x) AS dx "
        "FROM t GROUP BY k",
        rows,
    )
    assert result.rows == [{"k": "a", "n": 2, "sx": 3, "sy": 3.0, "dx": 2}]
    assert result.counts.errored == 1


def test_failed_record_does_not_create_a_group() -> None:
    rows = [{"k": "new", "x": "bad", "y": 1}, {"k": "a", "x": 1, "y": 1}]
    result = run_query("SELECT k, MIN(y) AS m, SUM(x) AS s FROM t GROUP BY k", rows)
    assert result.rows == [{"k": "a", "m": 1, "s": 1}]


def test_changes_row_failure_leaves_state_untouched() -> None:
    rows = [{"k": "a", "x": 1}, {"k": "a", "x": 0}, {"k": "a", "x": 2}]
    result = run_query(
        "SELECT k, SUM(x) AS s, SUM(x) + k AS bad FROM t GROUP BY k EMIT CHANGES",
        rows,
        on_error="dead-letter",
    )
    # every change row fails to build (number + text), so nothing is aggregated either
    assert result.rows == []
    assert result.counts.errored == 3


def test_bad_event_time_is_a_routing_error() -> None:
    rows: list[dict[str, Any]] = [
        {"k": "a", "ts": 1},
        {"k": "a", "ts": None},
        {"k": "a", "ts": "not a date"},
        {"k": "a"},
    ]
    result = run_query(
        "SELECT k, COUNT(*) AS n FROM t GROUP BY k, TUMBLE(ts, 1000)",
        rows,
        on_error="dead-letter",
    )
    assert result.rows == [{"k": "a", "n": 1}]
    assert [d.offset for d in result.dead_letters] == [1, 2, 3]
    assert all(d.stage == "sql-route" for d in result.dead_letters)
    assert result.counts.errored == 3
    assert result.counts.rows_in == 4


@pytest.mark.parametrize("partitions", [1, 2, 4])
def test_partition_error_offset_skips_late_records(partitions: int) -> None:
    rows: list[dict[str, Any]] = [{"k": f"k{i % 3}", "ts": 100 * i, "x": 1} for i in range(30)]
    rows[20] = {"k": "k2", "ts": 5, "x": 1}  # late
    rows[25] = {"k": "k1", "ts": 2500, "x": "bad"}
    with pytest.raises(BadRecord) as info:
        run_query(
            "SELECT k, SUM(x) AS s FROM t GROUP BY k, TUMBLE(ts, 1000)",
            rows,
            partitions=partitions,
            batch_size=30,
            on_error="fail",
        )
    assert info.value.offset == 25


@pytest.mark.parametrize(
    ("text", "line", "col", "got"),
    [
        ("SELECT symbol,, x FROM t", 1, 15, "','"),
        ("SELECT a, FROM t", 1, 11, "'FROM'"),
        ("SELECT COALESCE(a,) FROM t", 1, 19, "')'"),
        ("SELECT a,\n  b,\n  , c FROM t", 3, 3, "','"),
    ],
)
def test_empty_list_items_are_syntax_errors(text: str, line: int, col: int, got: str) -> None:
    message = re.escape(f"expected an expression after ',', got {got}")
    with pytest.raises(SqlError, match=message) as info:
        compile_query(text)
    assert (info.value.line, info.value.col) == (line, col)


# ------------------------------------------------- hostile SQL (issue 8 items 16, 17)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "SELECT COUNT(*) AS n FROM t GROUP BY TUMBLE(ts, INTERVAL 'inf' SECOND)",
            "interval amount 'inf' is not a finite number",
        ),
        (
            "SELECT COUNT(*) AS n FROM t GROUP BY TUMBLE(ts, INTERVAL 'nan' SECOND)",
            "interval amount 'nan' is not a finite number",
        ),
        (
            "SELECT COUNT(*) AS n FROM t GROUP BY TUMBLE(ts, 1.5)",
            "a window size in milliseconds must be an integer, got 1.5",
        ),
        ("SELECT x FROM t GROUP BY 1.5", "GROUP BY position must be an integer, got 1.5"),
        ("SELECT " + "+".join(["x"] * 1000) + " AS y FROM t", "nested too deeply"),
        ("SELECT " + "(" * 500 + "x" + ")" * 500 + " AS y FROM t", "nested too deeply"),
    ],
)
def test_hostile_sql_is_a_positioned_error(query: str, message: str) -> None:
    with pytest.raises(SqlError, match=re.escape(message)) as info:
        compile_query(query)
    assert info.value.line is not None
    assert info.value.col is not None


@pytest.mark.parametrize(
    "expr",
    [
        "(" * 50 + "x" + ")" * 50,
        "+".join(["x"] * 64),
        "COALESCE(" * 60 + "x" + ", 0)" * 60,
    ],
)
def test_deep_expressions_within_the_limit_run(expr: str) -> None:
    rows = run_query(f"SELECT {expr} AS y FROM t", [{"x": 1}]).rows
    assert len(rows) == 1


def test_an_infinite_literal_is_a_value() -> None:
    rows = run_query("SELECT 1e999 AS a, -1e999 AS b, x + 1e999 AS c FROM t", [{"x": 1}]).rows
    assert rows == [{"a": math.inf, "b": -math.inf, "c": math.inf}]


def test_an_epoch_given_as_text_says_so() -> None:
    # issue 8 item 20: it said "month must be in 1..12"
    query = "SELECT COUNT(*) AS n FROM t GROUP BY TUMBLE(ts, INTERVAL '1' SECOND)"
    with pytest.raises(BadRecord, match="send epoch milliseconds as a JSON number"):
        run_query(query, [{"ts": "1700000000000"}], on_error="fail")
