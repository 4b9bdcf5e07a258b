"""Interval stream-stream joins (issue 12 item 2) against DuckDB on the same finished
input, and their planning and errors.

Each case runs the query as an actor graph (``actors.run_sql`` with two streams,
a random partition count and batch size, and the two sources interleaving as trio
schedules them) and the same SQL in DuckDB over two tables.  A record that is late
on its own stream (behind that stream's max event time before it, less the allowed
lateness) is left out of DuckDB's tables: lateness is decided per stream, in that
stream's own order, so which records are late does not depend on the interleaving,
and everything else must agree with the batch engine as a multiset.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from partita.actors import run_sql
from partita.sql import IntervalJoinState, SqlError, compile_query, query_inputs
from tests.sql._reference import Record, duckdb_rows, normalize, on_time

ORDERS = {"id": "BIGINT", "cur": "TEXT", "amount": "BIGINT", "ts": "BIGINT"}
PAYMENTS = {"oid": "BIGINT", "paid": "BIGINT", "ts": "BIGINT"}

orders_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.none() | st.integers(0, 8),
            "cur": st.sampled_from(["EUR", "GBP", "USD"]),
            "amount": st.none() | st.integers(-5, 20),
            "ts": st.integers(0, 30_000),
        }
    ),
    max_size=30,
)
payments_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "oid": st.none() | st.integers(0, 8),
            "paid": st.integers(0, 50),
            "ts": st.integers(0, 30_000),
        }
    ),
    max_size=30,
)

_ON = "ON o.id = p.oid AND p.ts BETWEEN o.ts - INTERVAL '2' SECOND AND o.ts + INTERVAL '5' SECOND"

CASES: list[str] = [
    f"SELECT o.id, o.amount, p.paid, p.ts AS pts FROM orders o JOIN payments p {_ON}",
    f"SELECT o.id, o.ts, p.paid FROM orders o LEFT JOIN payments p {_ON}",
    f"SELECT o.id, p.oid, p.paid FROM orders o FULL OUTER JOIN payments p {_ON}",
    "SELECT o.id, p.paid FROM orders o JOIN payments p ON p.oid = o.id "
    "AND p.ts >= o.ts AND p.ts < o.ts + INTERVAL '3' SECOND",
    "SELECT o.id, p.paid FROM orders o JOIN payments p ON o.id = p.oid "
    "AND o.ts > p.ts - INTERVAL '1' SECOND AND o.ts <= p.ts + INTERVAL '4' SECOND",
    f"SELECT o.cur, COUNT(*) AS n, SUM(p.paid) AS paid FROM orders o JOIN payments p {_ON} "
    "WHERE p.paid > 3 GROUP BY o.cur",
    f"SELECT o.cur, COUNT(p.paid) AS paid_n, COUNT(*) AS n FROM orders o "
    f"LEFT JOIN payments p {_ON} GROUP BY o.cur",
    f"SELECT o.cur, window_start, COUNT(*) AS n, SUM(p.paid) AS paid FROM orders o "
    f"JOIN payments p {_ON} GROUP BY o.cur, TUMBLE(o.ts, INTERVAL '10' SECOND)",
    f"SELECT window_start, COUNT(*) AS n FROM orders o JOIN payments p {_ON} "
    "GROUP BY TUMBLE(p.ts, INTERVAL '5' SECOND)",
    f"SELECT o.cur, window_start, COUNT(*) AS n, MAX(p.paid) AS top FROM orders o "
    f"LEFT JOIN payments p {_ON} GROUP BY o.cur, TUMBLE(o.ts, INTERVAL '10' SECOND)",
]


def _duckdb_sql(query: str) -> str:
    """The same query for DuckDB: windows as integer arithmetic on epoch ms."""
    text = query
    for column, size in (("o.ts", 10_000), ("p.ts", 5_000)):
        spec = f"TUMBLE({column}, INTERVAL '{size // 1000}' SECOND)"
        if spec in text:
            start = f"({column} // {size}) * {size}"
            text = text.replace(spec, start).replace("window_start", f"{start} AS window_start")
    for seconds in (1, 2, 3, 4, 5):
        text = text.replace(f"INTERVAL '{seconds}' SECOND", str(seconds * 1000))
    return text


def _duckdb(query: str, orders: list[Record], payments: list[Record]) -> list[Record]:
    return duckdb_rows(
        _duckdb_sql(query), {"orders": (ORDERS, orders), "payments": (PAYMENTS, payments)}
    )


async def _partita(
    query: str,
    orders: list[Record],
    payments: list[Record],
    *,
    partitions: int,
    batch_size: int,
    lateness: int,
) -> Any:
    return await run_sql(
        query,
        sources={"orders": orders, "payments": payments},
        partitions=partitions,
        batch_size=batch_size,
        allowed_lateness=lateness,
    )


@pytest.mark.parametrize("query", CASES)
@settings(max_examples=25, deadline=None)
@given(
    orders=orders_strategy,
    payments=payments_strategy,
    partitions=st.integers(1, 3),
    batch_size=st.integers(1, 9),
    lateness=st.sampled_from([0, 3_000, 40_000]),
)
def test_interval_join_agrees_with_duckdb(
    query: str,
    orders: list[Record],
    payments: list[Record],
    partitions: int,
    batch_size: int,
    lateness: int,
) -> None:
    run = trio.run(
        lambda: _partita(
            query, orders, payments, partitions=partitions, batch_size=batch_size, lateness=lateness
        )
    )
    on_time_orders, on_time_payments = on_time(orders, lateness), on_time(payments, lateness)
    expected = _duckdb(query, on_time_orders, on_time_payments)
    assert normalize(run.rows) == normalize(expected)
    late = len(orders) - len(on_time_orders) + len(payments) - len(on_time_payments)
    assert run.stats.rows_late == late


async def test_state_stays_bounded_on_an_endless_stream() -> None:
    """Every order is paid one second later; the join holds only the records of the
    last few seconds however long the stream runs (its watermark evicts the rest)."""
    query = compile_query(
        "SELECT o.id, p.paid FROM orders o JOIN payments p ON o.id = p.oid "
        "AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '2' SECOND",
        allowed_lateness=500,
    )
    join = query.interval_join
    assert join is not None
    state = IntervalJoinState.of(join)
    most = 0
    joined = 0
    for second in range(2_000):
        base = second * 1000
        lefts = [[second * 10 + i, base + i * 50, {"id": second * 10 + i}] for i in range(10)]
        rights = [
            [second * 10 + i - 10, base + i * 50, {"p.paid": i}] for i in range(10)
        ]  # the payments of the orders of the second before
        joined += len(state.left(lefts)) + len(state.right(rights))
        joined += len(state.advance(base - 500))
        most = max(most, state.held())
    assert joined == 10 * 1_999
    assert most <= 2 * 10 * 5  # two sides, ten records a second, the last few seconds


def test_the_bounds_become_one_range_of_right_minus_left() -> None:
    def bounds(on: str) -> tuple[int, int]:
        q = compile_query(f"SELECT o.id FROM orders o JOIN payments p ON o.id = p.oid AND {on}")
        assert q.interval_join is not None
        return q.interval_join.lower, q.interval_join.upper

    assert bounds("p.ts BETWEEN o.ts AND o.ts + INTERVAL '1' HOUR") == (0, 3_600_000)
    assert bounds("p.ts BETWEEN o.ts - INTERVAL '5' SECOND AND o.ts") == (-5_000, 0)
    assert bounds("p.ts > o.ts AND p.ts < o.ts + INTERVAL '1' SECOND") == (1, 999)
    assert bounds("o.ts >= p.ts - INTERVAL '2' SECOND AND o.ts <= p.ts") == (0, 2_000)
    assert bounds("p.ts >= INTERVAL '1' SECOND + o.ts AND p.ts <= o.ts + 1500") == (1_000, 1_500)
    inputs = query_inputs(
        "SELECT o.id FROM orders o JOIN payments p ON o.id = p.oid "
        "AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '1' HOUR"
    )
    assert (inputs.stream, inputs.joined, inputs.tables) == ("orders", "payments", ())
    assert inputs.names == ("orders", "payments")


@pytest.mark.parametrize(
    ("query", "message", "col"),
    [
        (
            "SELECT o.id FROM orders o JOIN payments p ON o.id = p.oid AND p.ts >= o.ts",
            "no table 'payments' to join.*a join of two streams bounds time both ways",
            32,
        ),
        (
            "SELECT o.id FROM orders o JOIN payments p ON o.id = p.oid AND p.ts >= o.ts "
            "AND p.ts > o.ts - 5",
            "needs a lower and an upper time bound",
            46,
        ),
        (
            "SELECT id FROM orders o JOIN payments p ON o.id = p.oid "
            "AND p.ts BETWEEN o.ts AND o.ts + 5",
            "qualify every column",
            8,
        ),
        (
            "SELECT o.id FROM orders o JOIN payments p ON o.id = p.oid "
            "AND p.ts BETWEEN o.ts + 9 AND o.ts + 5",
            "the time bounds match nothing",
            46,
        ),
        (
            "SELECT o.id FROM orders o RIGHT JOIN payments p ON o.id = p.oid "
            "AND p.ts BETWEEN o.ts AND o.ts + 5",
            "RIGHT JOIN is not supported",
            27,
        ),
        (
            "SELECT o.id FROM orders o JOIN payments p ON o.id > p.oid "
            "AND p.ts BETWEEN o.ts AND o.ts + 5",
            "must use one time column per stream",
            46,
        ),
        (
            "SELECT o.id FROM orders o JOIN payments p ON o.id = p.oid "
            "AND p.ts BETWEEN p.ts AND o.ts + 5",
            "a time bound must relate the two streams",
            63,
        ),
        (
            "SELECT COUNT(*) AS n FROM orders o JOIN payments p ON o.id = p.oid "
            "AND p.ts BETWEEN o.ts AND o.ts + 5 GROUP BY TUMBLE(o.at, INTERVAL '1' SECOND)",
            "runs over o.ts or p.ts",
            103,
        ),
        (
            "SELECT COUNT(*) AS n FROM orders o LEFT JOIN payments p ON o.id = p.oid "
            "AND p.ts BETWEEN o.ts AND o.ts + 5 GROUP BY TUMBLE(p.ts, INTERVAL '1' SECOND)",
            "runs over o.ts, the join's time column",
            108,
        ),
        (
            "SELECT o.id FROM orders o JOIN orders p ON o.id = p.oid "
            "AND p.ts BETWEEN o.ts AND o.ts + 5",
            "a self-join is not supported",
            32,
        ),
    ],
)
def test_errors_say_what_and_where(query: str, message: str, col: int) -> None:
    with pytest.raises(SqlError, match=message) as info:
        compile_query(query)
    assert info.value.line == 1
    assert info.value.col == col


async def test_both_streams_must_be_given() -> None:
    query = (
        "SELECT o.id FROM orders o JOIN payments p ON o.id = p.oid "
        "AND p.ts BETWEEN o.ts AND o.ts + 5"
    )
    with pytest.raises(SqlError, match="no input of that name was given"):
        await run_sql(query, sources={"orders": []})
    with pytest.raises(SqlError, match="give both"):
        await run_sql(query, [{"id": 1, "ts": 0}])


async def test_late_records_are_dead_lettered_with_their_stream() -> None:
    query = (
        "SELECT o.id, p.paid FROM orders o JOIN payments p ON o.id = p.oid "
        "AND p.ts BETWEEN o.ts AND o.ts + 1000"
    )
    orders = [{"id": 1, "ts": 5000}, {"id": 2, "ts": 1000}]  # the second is 4 s late
    payments = [{"oid": 1, "paid": 3, "ts": 5500}, {"oid": 2, "paid": 4, "ts": 1500}]
    run = await run_sql(
        query,
        sources={"orders": orders, "payments": payments},
        allowed_lateness=1000,
        late="dead-letter",
    )
    assert run.rows == [{"id": 1, "paid": 3}]
    assert sorted(d.record["ts"] for d in run.dead_letters) == [1000, 1500]
    assert {d.stage for d in run.dead_letters} == {"join-left", "join-right"}
    assert run.stats["router-orders"].rows_late == 1
    assert run.stats["router-payments"].rows_late == 1


async def test_a_bad_event_time_is_a_bad_record_by_policy() -> None:
    query = (
        "SELECT o.id, p.paid FROM orders o LEFT JOIN payments p ON o.id = p.oid "
        "AND p.ts BETWEEN o.ts AND o.ts + 1000"
    )
    orders = [{"id": 1, "ts": 0}, {"id": 2}, {"id": 3, "ts": "soon"}]
    run = await run_sql(query, sources={"orders": orders, "payments": []}, on_error="dead-letter")
    assert run.rows == [{"id": 1, "paid": None}]
    assert len(run.dead_letters) == 2
    assert run.stats.rows_errored == 2


async def test_an_idle_stream_does_not_hold_the_join_back_forever(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With an idle timeout, a stream that sends nothing is left out of the least
    watermark: the orders' outer rows come while the payments stream is still silent
    (without it they would wait for the payments' first record or their end)."""
    from partita.actors import open_sql

    payments_go = trio.Event()

    async def orders() -> Any:
        for i in range(3):
            yield {"id": i, "ts": i * 1000}
        await trio.sleep_forever()

    async def payments() -> Any:
        await payments_go.wait()
        yield {"oid": 9, "paid": 1, "ts": 0}

    query = (
        "SELECT o.id, p.paid FROM orders o LEFT JOIN payments p ON o.id = p.oid "
        "AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '1' SECOND"
    )
    rows = []
    with trio.fail_after(120):
        async with open_sql(
            query, sources={"orders": orders(), "payments": payments()}, idle_timeout="1s"
        ) as stream:
            async for row in stream:
                rows.append(row)
                if len(rows) == 3:
                    break
            assert not payments_go.is_set()
    assert sorted(r["id"] for r in rows) == [0, 1, 2]
    assert all(r["paid"] is None for r in rows)


async def test_a_stream_running_ahead_waits_so_the_join_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Payments cover five times the event time per record of orders: without the
    routers' watermark alignment the join would hold the payments of all that time
    ahead (here about half the stream); with it, the records of about the drift."""
    most = 0
    advance = IntervalJoinState.advance

    def watched(self: IntervalJoinState, watermark: int) -> list[Record]:
        nonlocal most
        most = max(most, self.held())
        return advance(self, watermark)

    monkeypatch.setattr(IntervalJoinState, "advance", watched)
    n = 20_000
    orders = ({"id": i, "ts": i} for i in range(n))
    payments = ({"oid": i * 5, "paid": 1, "ts": i * 5} for i in range(n))
    query = compile_query(
        "SELECT o.id, p.paid FROM orders o JOIN payments p ON o.id = p.oid "
        "AND p.ts BETWEEN o.ts AND o.ts + 10"
    )
    assert query.join_max_drift == 1000
    run = await run_sql(query, sources={"orders": orders, "payments": payments}, batch_size=100)
    assert len(run.rows) == n // 5
    # the drift (1000 ms: 1000 orders, 200 payments) and a few batches in flight
    assert most < 3_000
