"""Interval joins, an adversarial pass (issue 12): the cases a Flink user tries next,
each against DuckDB on the same finished input where it applies.

* keys of several columns, NULL keys and keys SQL calls equal across the streams
  (``1 = 1.0 = TRUE``, as DuckDB has it), with INNER, LEFT and FULL joins;
* zero-width, negative and strict intervals, bounds written either way round;
* HAVING, DISTINCT, a GROUP BY of the joined stream's column;
* HOP, CUMULATE, SESSION and TUMBLE over either time column after the join, checked
  against the same window over DuckDB's joined rows run as one finished stream;
* the same multiset for every partition count and batch size.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from partita.actors import run_sql
from tests.sql._reference import Record, duckdb_rows, normalize, on_time

ORDERS = {"n": "BIGINT", "id": "DOUBLE", "cur": "TEXT", "amount": "BIGINT", "ts": "BIGINT"}
PAYMENTS = {"m": "BIGINT", "oid": "DOUBLE", "cur": "TEXT", "paid": "BIGINT", "ts": "BIGINT"}

# keys SQL calls equal in different spellings: 1, 1.0 and TRUE are one key
_key = st.none() | st.integers(0, 3) | st.sampled_from([1.0, 2.0, True, False])
_cur = st.none() | st.sampled_from(["EUR", "GBP"])


def _numbered(rows: list[Record], name: str) -> list[Record]:
    return [{name: i, **row} for i, row in enumerate(rows)]


orders_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "id": _key,
            "cur": _cur,
            "amount": st.none() | st.integers(-5, 20),
            "ts": st.integers(0, 40).map(lambda i: i * 250),
        }
    ),
    max_size=25,
).map(lambda rows: _numbered(rows, "n"))
payments_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "oid": _key,
            "cur": _cur,
            "paid": st.integers(0, 50),
            "ts": st.integers(0, 40).map(lambda i: i * 250),
        }
    ),
    max_size=25,
).map(lambda rows: _numbered(rows, "m"))

_ONS = {
    "two keys": "ON o.id = p.oid AND o.cur = p.cur "
    "AND p.ts BETWEEN o.ts - INTERVAL '2' SECOND AND o.ts + INTERVAL '3' SECOND",
    "negative": "ON o.id = p.oid "
    "AND p.ts BETWEEN o.ts - INTERVAL '3' SECOND AND o.ts - INTERVAL '1' SECOND",
    "positive": "ON p.oid = o.id AND p.ts BETWEEN o.ts + INTERVAL '1' SECOND AND o.ts + 2500",
    "zero width": "ON o.id = p.oid AND p.ts BETWEEN o.ts AND o.ts",
    "strict, right to left": "ON o.id = p.oid "
    "AND o.ts < p.ts AND p.ts - INTERVAL '2' SECOND < o.ts",
    "offsets on both sides": "ON o.id = p.oid "
    "AND o.ts + INTERVAL '1' SECOND >= p.ts - 500 AND o.ts - INTERVAL '1' SECOND <= p.ts",
}

#: per kind of join, the queries one example draws from (each ON of every kind above)
CASES: dict[str, list[str]] = {
    kind: [f"SELECT o.n, p.m FROM orders o {kind} payments p {on}" for on in _ONS.values()]
    for kind in ("JOIN", "LEFT JOIN", "FULL JOIN")
}
CASES["aggregates"] = [
    f"SELECT o.cur, COUNT(*) AS c, SUM(p.paid) AS paid FROM orders o JOIN payments p "
    f"{_ONS['negative']} GROUP BY o.cur HAVING COUNT(*) > 1",
    f"SELECT p.cur, COUNT(*) AS c, COUNT(o.amount) AS amounts FROM orders o "
    f"FULL JOIN payments p {_ONS['two keys']} GROUP BY p.cur",
    f"SELECT DISTINCT o.cur, p.paid FROM orders o LEFT JOIN payments p {_ONS['positive']}",
    f"SELECT p.paid, MIN(o.amount) AS low FROM orders o JOIN payments p {_ONS['zero width']} "
    "GROUP BY p.paid HAVING MIN(o.amount) IS NOT NULL",
]


def _duckdb_sql(query: str) -> str:
    return re.sub(r"INTERVAL '(\d+)' SECOND", lambda m: str(int(m[1]) * 1000), query)


def _duckdb(query: str, orders: list[Record], payments: list[Record]) -> list[Record]:
    return duckdb_rows(
        _duckdb_sql(query), {"orders": (ORDERS, orders), "payments": (PAYMENTS, payments)}
    )


def _run(query: str, orders: list[Record], payments: list[Record], **options: Any) -> Any:
    return trio.run(
        lambda: run_sql(query, sources={"orders": orders, "payments": payments}, **options)
    )


@pytest.mark.parametrize("kind", sorted(CASES))
@settings(max_examples=15, deadline=None)
@given(
    data=st.data(),
    orders=orders_strategy,
    payments=payments_strategy,
    partitions=st.sampled_from([1, 3, 8]),
    batch_size=st.sampled_from([1, 7, 1000]),
    lateness=st.sampled_from([0, 2_000, 40_000]),
)
def test_interval_join_agrees_with_duckdb(
    kind: str,
    data: st.DataObject,
    orders: list[Record],
    payments: list[Record],
    partitions: int,
    batch_size: int,
    lateness: int,
) -> None:
    query = data.draw(st.sampled_from(CASES[kind]), label="query")
    run = _run(
        query,
        orders,
        payments,
        partitions=partitions,
        batch_size=batch_size,
        allowed_lateness=lateness,
    )
    expected = _duckdb(query, on_time(orders, lateness), on_time(payments, lateness))
    assert normalize(run.rows) == normalize(expected)


#: (a window after a join, the same window over the joined rows as one stream
#: ``joined`` with columns cur, ots, pts, paid; the join those rows come from)
WINDOWED: list[tuple[str, str, str]] = [
    (
        "SELECT o.cur, window_start, window_end, COUNT(*) AS c, SUM(p.paid) AS paid "
        "FROM orders o JOIN payments p {on} "
        "GROUP BY o.cur, HOP(o.ts, INTERVAL '1' SECOND, 2500)",
        "SELECT cur, window_start, window_end, COUNT(*) AS c, SUM(paid) AS paid FROM joined "
        "GROUP BY cur, HOP(ots, INTERVAL '1' SECOND, 2500)",
        "JOIN",
    ),
    (
        "SELECT o.cur, window_start, window_end, COUNT(*) AS c, COUNT(p.paid) AS paid "
        "FROM orders o LEFT JOIN payments p {on} "
        "GROUP BY o.cur, CUMULATE(o.ts, INTERVAL '1' SECOND, INTERVAL '3' SECOND)",
        "SELECT cur, window_start, window_end, COUNT(*) AS c, COUNT(paid) AS paid FROM joined "
        "GROUP BY cur, CUMULATE(ots, INTERVAL '1' SECOND, INTERVAL '3' SECOND)",
        "LEFT JOIN",
    ),
    (
        "SELECT o.cur, window_start, window_end, COUNT(*) AS c FROM orders o "
        "LEFT JOIN payments p {on} GROUP BY o.cur, SESSION(o.ts, INTERVAL '1' SECOND)",
        "SELECT cur, window_start, window_end, COUNT(*) AS c FROM joined "
        "GROUP BY cur, SESSION(ots, INTERVAL '1' SECOND)",
        "LEFT JOIN",
    ),
    (
        "SELECT window_start, COUNT(*) AS c, MAX(p.paid) AS top FROM orders o "
        "JOIN payments p {on} GROUP BY TUMBLE(p.ts, INTERVAL '2' SECOND)",
        "SELECT window_start, COUNT(*) AS c, MAX(paid) AS top FROM joined "
        "GROUP BY TUMBLE(pts, INTERVAL '2' SECOND)",
        "JOIN",
    ),
    (
        "SELECT p.cur, window_start, COUNT(*) AS c FROM orders o "
        "JOIN payments p {on} GROUP BY p.cur, SESSION(p.ts, INTERVAL '1' SECOND)",
        "SELECT pcur AS cur, window_start, COUNT(*) AS c FROM joined "
        "GROUP BY pcur, SESSION(pts, INTERVAL '1' SECOND)",
        "JOIN",
    ),
]


@pytest.mark.parametrize(("query", "over_joined", "kind"), WINDOWED)
@settings(max_examples=8, deadline=None)
@given(
    on=st.sampled_from(["negative", "positive", "offsets on both sides", "zero width"]),
    orders=orders_strategy,
    payments=payments_strategy,
    partitions=st.sampled_from([1, 3, 8]),
    batch_size=st.sampled_from([1, 7, 1000]),
    lateness=st.sampled_from([0, 2_000]),
)
def test_a_window_after_the_join_sees_every_joined_row(
    query: str,
    over_joined: str,
    kind: str,
    on: str,
    orders: list[Record],
    payments: list[Record],
    partitions: int,
    batch_size: int,
    lateness: int,
) -> None:
    """The join holds its watermark back by the interval: no joined row is late for
    the window, whichever time column it runs over and whatever the interval's sign."""
    text = query.format(on=_ONS[on])
    run = _run(
        text,
        orders,
        payments,
        partitions=partitions,
        batch_size=batch_size,
        allowed_lateness=lateness,
    )
    joined = _duckdb(
        "SELECT o.cur AS cur, o.ts AS ots, p.ts AS pts, p.paid AS paid, p.cur AS pcur "
        f"FROM orders o {kind} payments p {_ONS[on]}",
        on_time(orders, lateness),
        on_time(payments, lateness),
    )
    time = "pts" if "(pts" in over_joined else "ots"
    expected = trio.run(
        lambda: run_sql(
            over_joined,
            sorted(joined, key=lambda r: r[time]),
            event_time=time,
            allowed_lateness=10**9,
        )
    )
    assert run.stats.rows_late == len(orders) + len(payments) - len(
        on_time(orders, lateness)
    ) - len(on_time(payments, lateness))
    assert normalize(run.rows) == normalize(expected.rows)


async def test_a_session_after_an_outer_join_is_not_closed_under_a_row_still_held() -> None:
    """The order at 10 s waits in the join for a payment until the watermark passes it;
    the session of the order at 9 s (ending at 10 s) must still be open then, as it
    would be for the same two orders read as one stream, in order."""
    query = (
        "SELECT window_start, window_end, COUNT(*) AS c FROM orders o LEFT JOIN payments p "
        "ON o.id = p.oid AND p.ts BETWEEN o.ts AND o.ts "
        "GROUP BY SESSION(o.ts, INTERVAL '1' SECOND)"
    )
    orders = [{"id": None, "ts": 9_000}, {"id": 0, "ts": 10_000}]
    run = await run_sql(query, sources={"orders": orders, "payments": []}, batch_size=1)
    assert run.rows == [{"window_start": 9_000, "window_end": 11_000, "c": 2}]
