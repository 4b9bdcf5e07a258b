"""Declared schemas (``CREATE STREAM``) of the two streams of an interval join or a
temporal join (issue 12 item 3): each stream is coerced to its own declared types at
its side of the join, a misspelled column of either is an SqlError before anything
runs, and a stream's declared event time and lateness are its own."""

from __future__ import annotations

import pytest

from partita.actors import run_sql
from partita.sql import SqlError, compile_query

ORDERS = (
    "CREATE STREAM orders (id BIGINT, cur TEXT, amount DOUBLE, ts TIMESTAMP) "
    "WITH (event_time = 'ts');\n"
)
PAYMENTS = "CREATE STREAM payments (oid BIGINT, paid DOUBLE, ts TIMESTAMP);\n"
RATES = (
    "CREATE STREAM rates (cur TEXT, rate DOUBLE, valid_from TIMESTAMP) "
    "WITH (event_time = 'valid_from', lateness = '2s');\n"
)
PAID = (
    "SELECT o.id, o.amount, p.paid, p.ts AS paid_at FROM orders o LEFT JOIN payments p "
    "ON o.id = p.oid AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '1' MINUTE"
)
USD = (
    "SELECT o.id, o.amount * r.rate AS usd FROM orders o "
    "LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.cur = r.cur"
)


async def test_each_stream_of_an_interval_join_is_coerced_to_its_schema() -> None:
    orders = [
        {"id": "1", "cur": "EUR", "amount": "10.5", "ts": "1970-01-01T00:00:01Z"},
        {"id": 2, "cur": "EUR", "amount": 3, "ts": 2},  # epoch seconds
        {"id": "two", "cur": "EUR", "amount": 1, "ts": 3_000},  # not a BIGINT: bad
    ]
    payments = [
        {"oid": "1", "paid": "10.5", "ts": "1970-01-01T00:00:30.000Z"},
        {"oid": 2, "paid": 3, "ts": 200_000},  # too late for order 2
    ]
    run = await run_sql(
        ORDERS + PAYMENTS + PAID, sources={"orders": orders, "payments": payments}, partitions=2
    )
    assert sorted(run.rows, key=lambda r: r["id"]) == [
        {"id": 1, "amount": 10.5, "paid": 10.5, "paid_at": 30_000},
        {"id": 2, "amount": 3.0, "paid": None, "paid_at": None},
    ]
    assert run.stats.rows_errored == 1
    (reason,) = [r for r, _ in run.stats.errors_by_reason()]
    assert reason == "ValueError: column 'id': cannot coerce 'two' to BIGINT"


async def test_a_changelog_declares_its_own_version_time_and_lateness() -> None:
    rates = [
        {"cur": "EUR", "rate": "1.5", "valid_from": 0},
        {"cur": "EUR", "rate": 2, "valid_from": "1970-01-01T00:00:10Z"},
        {"cur": "EUR", "rate": 3, "valid_from": 9},  # (epoch s) 1 s behind: within its 2 s
    ]
    orders = [
        {"id": 1, "cur": "EUR", "amount": 10, "ts": "1970-01-01T00:00:05Z"},
        {"id": 2, "cur": "EUR", "amount": 10, "ts": "1970-01-01T00:00:09.500Z"},
        {"id": 3, "cur": "EUR", "amount": 10, "ts": 10},  # epoch seconds
    ]
    query = compile_query(ORDERS + RATES + USD)
    assert query.temporal_join is not None
    assert query.temporal_join.right_time == "valid_from"
    assert "rates: max event time - 2000 ms" in query.describe()
    run = await run_sql(query, sources={"orders": orders, "rates": rates})
    assert sorted(run.rows, key=lambda r: r["id"]) == [
        {"id": 1, "usd": 15.0},
        {"id": 2, "usd": 30.0},
        {"id": 3, "usd": 20.0},
    ]
    assert run.stats.rows_late == 0


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            ORDERS + PAYMENTS + PAID.replace("o.amount", "o.amout"),
            "line 3, column 14: unknown column 'amout'; did you mean 'amount'?",
        ),
        (
            ORDERS + PAYMENTS + PAID.replace("p.paid,", "p.payd,"),
            "line 3, column 24: unknown column 'payd'; did you mean 'paid'?",
        ),
        (
            ORDERS + RATES + USD.replace("r.rate", "r.rates"),
            "line 3, column 25: unknown column 'rates'; did you mean 'rate'?",
        ),
        (
            ORDERS + "CREATE STREAM payments (oid BIGINT, paid DOUBLE, at TIMESTAMP);\n" + PAID,
            "line 3, column 32: unknown column 'ts'; 'payments' has oid, paid, at",
        ),
        (
            ORDERS.replace("'ts'", "'id'") + PAYMENTS + PAID,
            "line 3, column 116: stream 'orders' declares event_time 'id', but the join reads "
            "its time from o.ts",
        ),
        (
            ORDERS + PAYMENTS + "CREATE STREAM fx (cur TEXT);\n" + PAID,
            "line 3, column 1: stream 'fx' is declared but the query reads 'orders' and 'payments'",
        ),
        (
            ORDERS + "CREATE STREAM rates (cur TEXT, rate DOUBLE);\n" + USD,
            "line 3, column 91: stream 'rates' has no column 'ts', its time in the join; "
            "declared: cur, rate",
        ),
    ],
)
def test_a_misspelled_column_of_either_stream_is_caught_before_anything_runs(
    sql: str, message: str
) -> None:
    with pytest.raises(SqlError) as info:
        compile_query(sql)
    assert str(info.value) == message


async def test_the_schema_option_declares_the_from_stream() -> None:
    query = compile_query(PAID, schema="id BIGINT, amount DOUBLE, ts TIMESTAMP")
    assert query.interval_join is not None
    assert query.interval_join.left_schema is not None
    assert query.interval_join.right_schema is None
    run = await run_sql(
        query,
        sources={
            "orders": [{"id": "7", "amount": "1", "ts": 0}],
            "payments": [{"oid": 7, "paid": 1.0, "ts": 5}],
        },
    )
    assert run.rows == [{"id": 7, "amount": 1.0, "paid": 1.0, "paid_at": 5}]
