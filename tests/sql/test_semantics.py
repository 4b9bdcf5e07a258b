"""Expressions, NULL semantics, filters, grouping and aggregates (non-windowed)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from partita.sql import run_query


def one(expr: str, **fields: Any) -> Any:
    """The value of ``expr`` over one record."""
    (row,) = run_query(f"SELECT {expr} AS v FROM t", [fields], on_error="fail").rows
    return row["v"]


@pytest.mark.parametrize(
    ("expr", "fields", "expected"),
    [
        ("a + b * 2", {"a": 1, "b": 3}, 7),
        ("(a + b) * 2", {"a": 1, "b": 3}, 8),
        ("a - b", {"a": 1.5, "b": 0.5}, 1.0),
        ("-a", {"a": 4}, -4),
        ("a / b", {"a": 7, "b": 2}, 3),
        ("a / b", {"a": -7, "b": 2}, -3),
        ("a / b", {"a": 7.0, "b": 2}, 3.5),
        ("a / 0", {"a": 7}, None),
        ("a % b", {"a": 7, "b": 3}, 1),
        ("a % b", {"a": -7, "b": 3}, -1),
        ("MOD(a, b)", {"a": 7, "b": 0}, None),
        ("a + NULL", {"a": 1}, None),
        ("a * b", {"a": None, "b": 2}, None),
        ("a = 1", {"a": 1}, True),
        ("a <> 1", {"a": None}, None),
        ("a < b", {"a": 1, "b": 2}, True),
        ("a >= b", {"a": "b", "b": "a"}, True),
        ("s = 'Abc'", {"s": "abc"}, False),
        ("a > 1 AND b > 1", {"a": None, "b": 0}, False),
        ("a > 1 AND b > 1", {"a": None, "b": 5}, None),
        ("a > 1 OR b > 1", {"a": None, "b": 5}, True),
        ("a > 1 OR b > 1", {"a": None, "b": 0}, None),
        ("NOT (a > 1)", {"a": None}, None),
        ("NOT (a > 1)", {"a": 0}, True),
        ("a IS NULL", {"a": None}, True),
        ("a IS NOT NULL", {"a": None}, False),
        ("a IS TRUE", {"a": 1}, True),
        ("a IN (1, 2)", {"a": 2}, True),
        ("a IN (1, 2)", {"a": 3}, False),
        ("a IN (1, NULL)", {"a": 3}, None),
        ("a NOT IN (1, 2)", {"a": 3}, True),
        ("a IN (1, 2)", {"a": None}, None),
        ("a IN (b, 5)", {"a": 4, "b": 4}, True),
        ("a BETWEEN 1 AND 3", {"a": 3}, True),
        ("a NOT BETWEEN 1 AND 3", {"a": 4}, True),
        ("a BETWEEN 1 AND 3", {"a": None}, None),
        ("s LIKE 'ab%'", {"s": "ABC"}, False),
        ("s ILIKE 'ab%'", {"s": "ABC"}, True),
        ("s LIKE 'a_c'", {"s": "abc"}, True),
        ("s LIKE 'a_c'", {"s": "abbc"}, False),
        ("s NOT LIKE '%b%'", {"s": "abc"}, False),
        ("s LIKE '100!%' ESCAPE '!'", {"s": "100%"}, True),
        ("s LIKE '100!%' ESCAPE '!'", {"s": "1000"}, False),
        ("s LIKE p", {"s": "xyz", "p": "x%"}, True),
        ("s LIKE 'a.c'", {"s": "abc"}, False),
        ("CASE WHEN a > 1 THEN 'big' WHEN a > 0 THEN 'small' ELSE 'none' END", {"a": 1}, "small"),
        ("CASE WHEN a > 1 THEN 'big' END", {"a": 0}, None),
        ("CASE WHEN a > 1 THEN 'big' ELSE 'x' END", {"a": None}, "x"),
        ("CASE a WHEN 1 THEN 'one' WHEN 2 THEN 'two' ELSE 'many' END", {"a": 2}, "two"),
        ("CASE a WHEN 1 THEN 'one' ELSE 'other' END", {"a": None}, "other"),
        ("IIF(a > 0, 'pos', 'neg')", {"a": 1}, "pos"),
        ("CAST(a AS INTEGER)", {"a": "42"}, 42),
        ("CAST(a AS INTEGER)", {"a": 4.9}, 4),
        ("CAST(a AS INTEGER)", {"a": "4.5"}, 4),
        ("CAST(a AS REAL)", {"a": "1.5"}, 1.5),
        ("CAST(a AS DOUBLE)", {"a": 2}, 2.0),
        ("CAST(a AS TEXT)", {"a": 5}, "5"),
        ("CAST(a AS VARCHAR)", {"a": None}, None),
        ("CAST(a AS BOOLEAN)", {"a": "true"}, True),
        ("COALESCE(a, b, 3)", {"a": None, "b": None}, 3),
        ("COALESCE(a, b, 3)", {"a": None, "b": 2}, 2),
        ("IFNULL(a, 'x')", {"a": None}, "x"),
        ("NULLIF(a, 1)", {"a": 1}, None),
        ("NULLIF(a, 1)", {"a": 2}, 2),
        ("UPPER(s)", {"s": "abc"}, "ABC"),
        ("LOWER(s)", {"s": "ABC"}, "abc"),
        ("LENGTH(s)", {"s": "héllo"}, 5),
        ("LENGTH(a)", {"a": 1234}, 4),
        ("SUBSTR(s, 2, 3)", {"s": "abcdef"}, "bcd"),
        ("SUBSTRING(s, 3)", {"s": "abcdef"}, "cdef"),
        ("SUBSTR(s, -2)", {"s": "abcdef"}, "ef"),
        ("SUBSTRING(s FROM 2 FOR 2)", {"s": "abcdef"}, "bc"),
        ("TRIM(s)", {"s": "  ab  "}, "ab"),
        ("LTRIM(s)", {"s": "  ab  "}, "ab  "),
        ("RTRIM(s)", {"s": "  ab  "}, "  ab"),
        ("TRIM(LEADING 'x' FROM s)", {"s": "xxabx"}, "abx"),
        ("REPLACE(s, 'a', 'o')", {"s": "banana"}, "bonono"),
        ("CONCAT(s, '-', a)", {"s": "x", "a": 1}, "x-1"),
        ("CONCAT(s, NULL, 'y')", {"s": "x"}, "xy"),
        ("s || '-' || a", {"s": "x", "a": 1}, "x-1"),
        ("s || NULL", {"s": "x"}, None),
        ("ABS(a)", {"a": -3}, 3),
        ("ROUND(a)", {"a": 2.5}, 3.0),
        ("ROUND(a, 2)", {"a": 1.005}, 1.0),
        ("ROUND(a, 1)", {"a": -1.25}, -1.3),
        ("FLOOR(a)", {"a": 2.7}, 2.0),
        ("FLOOR(a)", {"a": 3}, 3),
        ("CEIL(a)", {"a": 2.1}, 3.0),
        ("CEILING(a)", {"a": -2.1}, -2.0),
        ("SQRT(a)", {"a": 16}, 4.0),
        ("SQRT(a)", {"a": -1}, None),
        ("POWER(a, 2)", {"a": 3}, 9.0),
        ("EXP(0)", {}, 1.0),
        ("LN(a)", {"a": 1}, 0.0),
        ("LOG(a)", {"a": 100}, 2.0),
        ("SIGN(a)", {"a": -5}, -1),
        ("TRUE", {}, True),
        ("1.5e3", {}, 1500.0),
        ("'it''s'", {}, "it's"),
    ],
)
def test_expression(expr: str, fields: dict[str, Any], expected: Any) -> None:
    got = one(expr, **fields)
    assert got == expected and type(got) is type(expected), (got, expected)


@pytest.mark.parametrize(
    "expr",
    [
        "7 / 2",
        "-7 / 2",
        "7 % 3",
        "-7 % 3",
        "7.0 / 2",
        "'abc' = 'ABC'",
        "'ABC' LIKE 'abc'",
        "1 = 1.0",
    ],
)
def test_agrees_with_sqlite(expr: str) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("PRAGMA case_sensitive_like = ON")  # LIKE is case-sensitive, as in standard SQL
    (expected,) = db.execute(f"SELECT {expr}").fetchone()
    got = one(expr)
    assert got == expected


def test_select_star_and_aliases() -> None:
    rows = [{"a": 1, "b": "x"}]
    assert run_query("SELECT * FROM t", rows).rows == [{"a": 1, "b": "x"}]
    assert run_query("SELECT *, a + 1 AS c FROM t", rows).rows == [{"a": 1, "b": "x", "c": 2}]
    assert run_query("SELECT a AS first, t.b FROM t", rows).rows == [{"first": 1, "b": "x"}]
    assert run_query("SELECT e.a FROM t AS e", rows).rows == [{"a": 1}]
    assert run_query("SELECT a + 1 FROM t", rows).rows == [{"a + 1": 2}]


def test_select_star_copies_records() -> None:
    rows = [{"a": 1}]
    out = run_query("SELECT * FROM t", rows).rows
    out[0]["a"] = 99
    assert rows == [{"a": 1}]


def test_where_filters_and_counts() -> None:
    rows = [{"x": i} for i in range(10)] + [{"x": None}]
    result = run_query("SELECT x FROM t WHERE x > 6 OR x = 0", rows)
    assert result.rows == [{"x": 0}, {"x": 7}, {"x": 8}, {"x": 9}]
    assert result.counts.filtered == 7
    assert result.counts.rows_in == 11
    assert result.counts.rows_out == 4


def test_missing_field_is_an_error_not_null() -> None:
    result = run_query("SELECT x FROM t", [{"x": None}, {}], on_error="dead-letter")
    assert result.rows == [{"x": None}]
    assert result.dead_letters[0].reason == "missing field 'x'"


GROUP_ROWS: list[dict[str, Any]] = [
    {"k": "a", "x": 1, "y": 1.5, "s": "p"},
    {"k": "b", "x": None, "y": None, "s": None},
    {"k": "a", "x": 3, "y": None, "s": "q"},
    {"k": None, "x": 5, "y": 2.0, "s": "p"},
    {"k": "a", "x": 3, "y": 0.5, "s": "p"},
    {"k": None, "x": None, "y": None, "s": "r"},
]


@pytest.mark.parametrize("partitions", [1, 2, 4])
@pytest.mark.parametrize("batch_size", [1, 4, 100])
def test_group_by_aggregates(partitions: int, batch_size: int) -> None:
    result = run_query(
        "SELECT k, COUNT(*) AS n, COUNT(x) AS nx, COUNT(DISTINCT x) AS dx, SUM(x) AS sx, "
        "AVG(x) AS ax, MIN(s) AS mn, MAX(y) AS my, SUM(y) AS sy FROM t GROUP BY k",
        GROUP_ROWS,
        partitions=partitions,
        batch_size=batch_size,
    )
    by_key = {r["k"]: r for r in result.rows}
    assert by_key["a"] == {
        "k": "a",
        "n": 3,
        "nx": 3,
        "dx": 2,
        "sx": 7,
        "ax": 7 / 3,
        "mn": "p",
        "my": 1.5,
        "sy": 2.0,
    }
    assert by_key["b"] == {
        "k": "b",
        "n": 1,
        "nx": 0,
        "dx": 0,
        "sx": None,
        "ax": None,
        "mn": None,
        "my": None,
        "sy": None,
    }
    assert by_key[None]["n"] == 2 and by_key[None]["sx"] == 5
    assert type(by_key["a"]["sx"]) is int and type(by_key["a"]["ax"]) is float
    assert len(result.rows) == 3


def test_having_and_expressions_over_aggregates() -> None:
    result = run_query(
        "SELECT k, MAX(x) - MIN(x) AS spread, COUNT(*) * 10 AS n10 FROM t GROUP BY k "
        "HAVING COUNT(*) > 1 AND spread >= 0",
        GROUP_ROWS,
    )
    assert sorted(result.rows, key=lambda r: str(r["k"])) == [
        {"k": None, "spread": 0, "n10": 20},
        {"k": "a", "spread": 2, "n10": 30},
    ]


def test_having_can_use_aggregates_not_selected() -> None:
    result = run_query("SELECT k FROM t GROUP BY k HAVING SUM(x) > 5", GROUP_ROWS)
    assert result.rows == [{"k": "a"}]


def test_group_by_expression_and_multiple_keys() -> None:
    rows = [{"s": "Ab", "g": 1}, {"s": "aB", "g": 1}, {"s": "ab", "g": 2}]
    result = run_query("SELECT LOWER(s) AS ls, g, COUNT(*) AS n FROM t GROUP BY LOWER(s), g", rows)
    assert result.rows == [{"ls": "ab", "g": 1, "n": 2}, {"ls": "ab", "g": 2, "n": 1}]


def test_global_aggregate_on_empty_input_gives_one_row() -> None:
    for partitions in (1, 3):
        result = run_query(
            "SELECT COUNT(*) AS n, SUM(x) AS s, AVG(x) AS a, MAX(x) AS m FROM t",
            [],
            partitions=partitions,
        )
        assert result.rows == [{"n": 0, "s": None, "a": None, "m": None}]


def test_global_aggregate() -> None:
    result = run_query(
        "SELECT COUNT(*) AS n, SUM(x) AS s FROM t WHERE x > 1", GROUP_ROWS, partitions=3
    )
    assert result.rows == [{"n": 3, "s": 11}]


def test_group_by_emit_changes_without_window() -> None:
    rows = [{"k": "a", "x": 1}, {"k": "b", "x": 2}, {"k": "a", "x": 3}]
    result = run_query("SELECT k, SUM(x) AS s FROM t GROUP BY k EMIT CHANGES", rows, partitions=2)
    a_rows = [r for r in result.rows if r["k"] == "a"]
    assert a_rows == [{"k": "a", "s": 1}, {"k": "a", "s": 4}]
    assert len(result.rows) == 3


def test_stateless_query_routes_whole_batches_round_robin() -> None:
    from partita.runtime import Batch
    from partita.sql import compile_query

    stage = compile_query("SELECT x FROM t").routing_stage(3)
    batches = [Batch.from_records([{"x": i}] * 5, start=5 * i) for i in range(4)]
    targets = []
    for batch in batches:
        routed = stage.route(batch)
        (target,) = [i for i, part in enumerate(routed.parts) if part is not None]
        assert routed.parts[target] is batch
        assert routed.watermark is None
        targets.append(target)
    assert targets == [0, 1, 2, 0]


def test_keyed_query_sends_one_key_to_one_partition() -> None:
    from partita.runtime import Batch
    from partita.sql import compile_query

    stage = compile_query("SELECT k, COUNT(*) AS n FROM t GROUP BY k").routing_stage(4)
    seen: dict[str, set[int]] = {}
    for start in range(0, 200, 50):
        batch = Batch.from_records([{"k": f"k{i % 13}"} for i in range(50)], start=start)
        for p, part in enumerate(stage.route(batch).parts):
            for rec, off in zip(
                part.records if part else [], part.offsets if part else [], strict=True
            ):
                seen.setdefault(rec["k"], set()).add(p)
                assert off >= start
    assert all(len(parts) == 1 for parts in seen.values())


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"x": 11, "g": None}, False),  # (x >= NULL AND x <= 10) = (NULL AND FALSE)
        ({"x": 5, "g": None}, None),
        ({"x": None, "g": 1}, None),
        ({"x": 5, "g": 1}, True),
    ],
)
def test_between_with_null_bounds_is_three_valued(fields: dict[str, Any], expected: Any) -> None:
    assert one("x BETWEEN g AND 10", **fields) is expected
    negated = None if expected is None else not expected
    assert one("x NOT BETWEEN g AND 10", **fields) is negated


def test_like_is_case_sensitive_and_ilike_is_not() -> None:
    rows = [{"s": "Apple"}, {"s": "apple"}, {"s": "APPLE pie"}, {"s": None}]
    like = run_query("SELECT s FROM t WHERE s LIKE 'app%'", rows).rows
    ilike = run_query("SELECT s FROM t WHERE s ILIKE 'app%'", rows).rows
    not_ilike = run_query("SELECT s FROM t WHERE s NOT ILIKE 'app%'", rows).rows
    assert like == [{"s": "apple"}]
    assert ilike == [{"s": "Apple"}, {"s": "apple"}, {"s": "APPLE pie"}]
    assert not_ilike == []
