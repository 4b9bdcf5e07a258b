"""Declared schemas: ``CREATE STREAM ... WITH (...)`` and ``schema=``.

Unknown columns fail at compile time with a position and the nearest name; records are
coerced to the declared types at the source by a generated loop; a record that cannot
be is a bad record by policy.  The property: a query over a declared stream gives what
the same query without a schema gives over records already converted by hand, for any
partition count and batch size.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partita.runtime import BadRecord
from partita.sql import SqlError, compile_query, parse_schema, run_query
from tests.sql._reference import normalize

DDL = (
    "CREATE STREAM orders (id BIGINT, cur TEXT, amount DOUBLE, ok BOOLEAN, ts TIMESTAMP)\n"
    "  WITH (event_time = 'ts', lateness = '5s');\n"
)


def test_a_declared_stream_carries_its_event_time_and_lateness() -> None:
    q = compile_query(DDL + "SELECT cur, COUNT(*) AS n FROM orders GROUP BY cur")
    assert q.schema is not None
    assert q.schema.names == ("id", "cur", "amount", "ok", "ts")
    assert (q.schema.event_time, q.options.allowed_lateness_ms) == ("ts", 5000)
    # an explicit option wins over the declaration
    assert compile_query(DDL + "SELECT id FROM orders", allowed_lateness=0).options.lateness == 0
    windowed = compile_query(
        DDL
        + "SELECT cur, COUNT(*) AS n FROM orders GROUP BY cur WINDOW TUMBLING(INTERVAL '1' MINUTE)"
    )
    assert windowed.plan.window is not None and windowed.plan.window.time_column == "ts"


def test_describe_prints_inputs_columns_types_event_time_and_watermark() -> None:
    text = compile_query(DDL + "SELECT id, amount FROM orders WHERE ok").describe()
    assert text.splitlines() == [
        "input orders",
        "  id      BIGINT",
        "  cur     TEXT",
        "  amount  DOUBLE",
        "  ok      BOOLEAN",
        "  ts      TIMESTAMP",
        "  event time: ts",
        "  watermark: max(ts) - 5000 ms (bounded)",
        "output id, amount (EMIT FINAL)",
    ]


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        (DDL + "SELECT amout FROM orders", 3, 8, "unknown column 'amout'; did you mean 'amount'?"),
        (DDL + "SELECT id FROM orders WHERE Cur = 'EUR'", 3, 29, "did you mean 'cur'?"),
        (DDL + "SELECT o.idd FROM orders o", 3, 8, "unknown column 'idd'; did you mean 'id'?"),
        (DDL + "SELECT zzz FROM orders", 3, 8, "unknown column 'zzz'; 'orders' has id, cur,"),
        (
            DDL + "SELECT COUNT(*) AS n FROM orders GROUP BY TUMBLE(tss, INTERVAL '1' SECOND)",
            3,
            50,
            "unknown column 'tss'; did you mean 'ts'?",
        ),
        (DDL + "SELECT id FROM order", 3, 16, "unknown stream 'order'; declared: 'orders'"),
        ("CREATE STREAM s (a BIGINT, a TEXT); SELECT a FROM s", 1, 28, "declared twice"),
        ("CREATE STREAM s (a MAP); SELECT a FROM s", 1, 18, "unsupported column type MAP"),
        ("CREATE STREAM s (a INT) WITH (x = '1'); SELECT a FROM s", 1, 35, "WITH takes"),
        ("CREATE STREAM s (a INT) WITH (lateness = 'soon'); SELECT a FROM s", 1, 42, "lateness"),
        ("CREATE STREAM s (a INT) WITH (event_time = 'b'); SELECT a FROM s", 1, 1, "'b'"),
        ("CREATE STREAM s (a INT)", 1, 1, "has no query"),
        ("SELECT a FROM t; SELECT b FROM t", 1, 1, "only CREATE STREAM declarations"),
    ],
)
def test_schema_errors_name_line_column_and_the_nearest_name(
    text: str, line: int, col: int, message: str
) -> None:
    with pytest.raises(SqlError) as info:
        compile_query(text)
    assert message in info.value.message
    assert (info.value.line, info.value.col) == (line, col)


def test_a_one_line_schema_declares_the_only_input_whatever_its_name() -> None:
    assert run_query("SELECT a + 1 AS b FROM t", [{"a": "41"}], schema="a BIGINT").rows == [
        {"b": 42}
    ]
    with pytest.raises(SqlError, match="unknown column 'c'; did you mean 'cc'"):
        compile_query("SELECT c FROM anything", schema="a INT, cc TEXT")
    with pytest.raises(SqlError, match="either in CREATE STREAM or as an option"):
        compile_query(DDL + "SELECT id FROM orders", schema="id INT")
    with pytest.raises(SqlError) as info:
        parse_schema("a INT, b VARCHAR(3), c NOPE")
    assert (info.value.col, info.value.message) == (
        22,
        "unsupported column type NOPE; use BIGINT, DOUBLE, TEXT, BOOLEAN, TIMESTAMP",
    )


def test_values_are_coerced_at_the_source() -> None:
    rows: list[dict[str, Any]] = [
        {"id": "12", "cur": "EUR", "amount": "2.5", "ok": "true", "ts": 1_700_000_000},
        {"id": 13.0, "cur": 7, "amount": 3, "ok": 0, "ts": "1700000000123"},
        {"id": 14, "cur": "USD", "amount": 1.5, "ok": True, "ts": "2023-11-14T22:13:20.5Z"},
        {"id": 15, "cur": "USD", "ts": 1_700_000_000.25},  # missing columns are NULL
    ]
    got = run_query(DDL + "SELECT * FROM orders", rows)
    assert got.rows == [
        {"id": 12, "cur": "EUR", "amount": 2.5, "ok": True, "ts": 1_700_000_000_000},
        {"id": 13, "cur": "7", "amount": 3.0, "ok": False, "ts": 1_700_000_000_123},
        {"id": 14, "cur": "USD", "amount": 1.5, "ok": True, "ts": 1_700_000_000_500},
        {"id": 15, "cur": "USD", "ts": 1_700_000_000_250, "amount": None, "ok": None},
    ]
    assert got.counts.errored == 0


def test_a_record_that_already_has_the_types_is_not_copied() -> None:
    q = compile_query(DDL + "SELECT id FROM orders")
    coerce = q.code.functions["coerce"]
    record = {"id": 1, "cur": "EUR", "amount": 1.0, "ok": False, "ts": 1_700_000_000_000}
    (out,), skipped = coerce([record], [0], None)
    assert out is record and skipped == []
    assert "def coerce(records, offsets, on_bad):" in q.explain()


@pytest.mark.parametrize(
    ("value", "column"),
    [("x", "id"), (True, "id"), (1.5, "id"), ("abc", "amount"), ("maybe", "ok"), ([1], "cur")],
)
def test_an_uncoercible_value_is_a_bad_record_by_policy(value: Any, column: str) -> None:
    good = {"id": 1, "cur": "EUR", "amount": 1.0, "ok": True, "ts": 1_700_000_000_000}
    rows = [good, {**good, column: value}, good]
    query = DDL + "SELECT id FROM orders"
    assert run_query(query, rows).counts.errored == 1
    dead = run_query(query, rows, on_error="dead-letter", partitions=2)
    assert dead.rows == [{"id": 1}, {"id": 1}]
    ((letter),) = dead.dead_letters
    assert (letter.offset, letter.stage) == (1, "sql-route")
    assert f"column {column!r}: cannot coerce {value!r}" in letter.reason
    with pytest.raises(BadRecord, match="at record offset 1"):
        run_query(query, rows, on_error="fail")


def test_timestamps_tell_seconds_from_milliseconds_by_size() -> None:
    rows = [{"t": v} for v in (99_999_999_999, 100_000_000_000, -5, "2024-01-01", 1.5)]
    got = run_query("SELECT t FROM s", rows, schema="t TIMESTAMP").rows
    assert [r["t"] for r in got] == [
        99_999_999_999_000,
        100_000_000_000,
        -5000,
        1_704_067_200_000,
        1500,
    ]


# -- property: a declared schema is the same as converting by hand ---------------------

_VALUES = {
    "id": st.none() | st.integers(-5, 5) | st.integers(-5, 5).map(str),
    "cur": st.none() | st.sampled_from(["EUR", "USD"]) | st.integers(0, 2),
    "amount": st.none() | st.integers(-3, 3) | st.sampled_from(["1.5", "-2", "0.25"]),
    "ts": st.integers(0, 40).map(lambda i: 1_700_000_000_000 + i * 700)
    | st.integers(0, 40).map(lambda i: str(1_700_000_000_000 + i * 700)),
}


def _by_hand(record: dict[str, Any]) -> dict[str, Any]:
    def num(v: Any, kind: type) -> Any:
        return None if v is None else kind(float(v)) if kind is int else kind(v)

    return {
        "id": num(record["id"], int),
        "cur": None if record["cur"] is None else str(record["cur"]),
        "amount": num(record["amount"], float),
        "ts": int(record["ts"]),
    }


QUERIES = [
    "SELECT cur, COUNT(*) AS n, SUM(amount) AS s, MAX(id) AS m FROM orders GROUP BY cur",
    "SELECT cur, COUNT(*) AS n, window_start FROM orders GROUP BY cur "
    "WINDOW TUMBLING(INTERVAL '5' SECOND)",
    "SELECT id * 2 AS d, cur FROM orders WHERE amount > 0",
]


@pytest.mark.parametrize("query", QUERIES)
@settings(max_examples=40, deadline=None)
@given(
    records=st.lists(st.fixed_dictionaries(_VALUES), max_size=30),
    partitions=st.integers(1, 3),
    batch_size=st.integers(1, 10),
)
def test_a_schema_is_the_same_as_converting_by_hand(
    query: str, records: list[dict[str, Any]], partitions: int, batch_size: int
) -> None:
    ddl = "CREATE STREAM orders (id BIGINT, cur TEXT, amount DOUBLE, ts TIMESTAMP) "
    ddl += "WITH (event_time = 'ts', lateness = '30s');\n"
    got = run_query(ddl + query, records, partitions=partitions, batch_size=batch_size)
    expected = run_query(
        query, [_by_hand(r) for r in records], event_time="ts", allowed_lateness=30_000
    )
    assert normalize(got.rows) == normalize(expected.rows)
    assert got.counts == expected.counts


@pytest.mark.parametrize(
    ("select", "column"),
    [
        ("SELECT o.id, o.amout FROM orders o JOIN rates r ON o.cur = r.cur", 14),
        ("SELECT id, amout FROM orders o JOIN rates r ON o.cur = r.cur", 12),
        ("SELECT o.id, o.amout AS a FROM orders o LEFT JOIN rates r ON o.cur = r.cur", 14),
    ],
)
def test_a_misspelled_stream_column_is_caught_with_a_table_join(select: str, column: int) -> None:
    """A join names each output as written (``o.amout`` becomes ``amout AS amout``):
    that alias must not excuse the column it names."""
    ddl = "CREATE STREAM orders (id BIGINT, cur TEXT, amount DOUBLE, ts TIMESTAMP);\n"
    with pytest.raises(SqlError) as info:
        compile_query(ddl + select, tables={"rates": [{"cur": "EUR", "rate": 1.0}]})
    assert str(info.value) == (
        f"line 2, column {column}: unknown column 'amout'; did you mean 'amount'?"
    )
