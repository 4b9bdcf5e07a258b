"""Temporal joins of a stream with a changelog (issue 12 item 2: a table kept up to
date from a changelog stream), against DuckDB's ``ASOF JOIN`` on the same finished
input, and their planning and errors.

Each case runs the query as an actor graph (``actors.run_sql`` with two streams, a
random partition count and batch size, the two sources interleaving as trio
schedules them) and the same join in DuckDB: ``orders o ASOF [LEFT] JOIN rates r ON
o.cur = r.cur AND o.ts >= r.ts`` picks, for each order, its currency's last version
at or before the order's time; a version that deletes the key (a changelog record
with only its key and time) is a row with ``del`` true there.  A record late on its
own stream (behind that stream's max event time before it, less the lateness) is
left out of DuckDB's tables, and of versions at the same time for one key only the
last is kept (partita takes the last to arrive).
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from partita.actors import run_sql
from partita.sql import SqlError, TemporalJoinState, compile_query, query_inputs
from tests.sql._reference import Record, duckdb_rows, normalize, on_time

orders_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.integers(0, 1000),
            "cur": st.none() | st.sampled_from(["EUR", "GBP", "USD"]),
            "amount": st.integers(-5, 20),
            "ts": st.integers(0, 30_000),
        }
    ),
    max_size=30,
)
rates_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "cur": st.sampled_from(["EUR", "GBP", "USD"]),
            "rate": st.none() | st.integers(1, 9),  # None: a deletion
            "ts": st.integers(0, 30_000),
        }
    ),
    max_size=20,
)

_JOIN = "JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.cur = r.cur"

# (partita's query, DuckDB's: ``r.rate`` is NULL for a deletion, ``{where}`` drops
# the rows an inner join does not have)
CASES: list[tuple[str, str]] = [
    (
        f"SELECT o.id, o.amount, r.rate FROM orders o {_JOIN}",
        "SELECT o.id, o.amount, r.rate FROM orders o ASOF JOIN rates r "
        "ON o.cur = r.cur AND o.ts >= r.ts WHERE NOT r.del",
    ),
    (
        f"SELECT o.id, o.ts, r.rate, r.ts AS version FROM orders o LEFT {_JOIN}",
        "SELECT o.id, o.ts, r.rate, CASE WHEN r.del THEN NULL ELSE r.ts END AS version "
        "FROM orders o ASOF LEFT JOIN rates r ON o.cur = r.cur AND o.ts >= r.ts",
    ),
    (
        f"SELECT o.cur, COUNT(*) AS n, SUM(o.amount * r.rate) AS total FROM orders o {_JOIN} "
        "WHERE r.rate > 2 GROUP BY o.cur",
        "SELECT o.cur, COUNT(*) AS n, SUM(o.amount * r.rate) AS total FROM orders o "
        "ASOF JOIN rates r ON o.cur = r.cur AND o.ts >= r.ts WHERE NOT r.del AND r.rate > 2 "
        "GROUP BY o.cur",
    ),
    (
        f"SELECT o.cur, window_start, COUNT(r.rate) AS rated, COUNT(*) AS n "
        f"FROM orders o LEFT {_JOIN} GROUP BY o.cur, TUMBLE(o.ts, INTERVAL '10' SECOND)",
        "SELECT o.cur, (o.ts // 10000) * 10000 AS window_start, COUNT(r.rate) AS rated, "
        "COUNT(*) AS n FROM orders o ASOF LEFT JOIN rates r ON o.cur = r.cur AND o.ts >= r.ts "
        "GROUP BY o.cur, (o.ts // 10000) * 10000",
    ),
]


def _changelog(rates: list[Record]) -> list[Record]:
    """The changelog partita reads: a deletion is a record with its key and time only."""
    return [r if r["rate"] is not None else {"cur": r["cur"], "ts": r["ts"]} for r in rates]


def _duckdb(query: str, orders: list[Record], rates: list[Record]) -> list[Record]:
    last: dict[tuple[str, int], Record] = {}
    for rate in rates:  # of versions at one time, the last
        last.pop((rate["cur"], rate["ts"]), None)
        last[(rate["cur"], rate["ts"])] = rate
    versions = [{**r, "del": r["rate"] is None} for r in last.values()]
    return duckdb_rows(
        query,
        {
            "orders": ({"id": "BIGINT", "cur": "TEXT", "amount": "BIGINT", "ts": "BIGINT"}, orders),
            "rates": (
                {"cur": "TEXT", "rate": "BIGINT", "ts": "BIGINT", "del": "BOOLEAN"},
                versions,
            ),
        },
    )


@pytest.mark.parametrize(("query", "duck"), CASES)
@settings(max_examples=25, deadline=None)
@given(
    orders=orders_strategy,
    rates=rates_strategy,
    partitions=st.integers(1, 3),
    batch_size=st.integers(1, 9),
    lateness=st.sampled_from([0, 3_000, 40_000]),
)
def test_temporal_join_agrees_with_duckdb_asof(
    query: str,
    duck: str,
    orders: list[Record],
    rates: list[Record],
    partitions: int,
    batch_size: int,
    lateness: int,
) -> None:
    async def main() -> Any:
        return await run_sql(
            query,
            sources={"orders": orders, "rates": _changelog(rates)},
            partitions=partitions,
            batch_size=batch_size,
            allowed_lateness=lateness,
        )

    run = trio.run(main)
    on_time_orders, on_time_rates = on_time(orders, lateness), on_time(rates, lateness)
    assert normalize(run.rows) == normalize(_duckdb(duck, on_time_orders, on_time_rates))
    late = len(orders) - len(on_time_orders) + len(rates) - len(on_time_rates)
    assert run.stats.rows_late == late


async def test_an_enrichment_from_a_changelog() -> None:
    rates = [
        {"cur": "EUR", "rate": 1.10, "ts": 0},
        {"cur": "GBP", "rate": 1.30, "ts": 0},
        {"cur": "EUR", "rate": 1.12, "ts": 60_000},
        {"cur": "GBP", "ts": 90_000},  # GBP is no longer quoted
    ]
    orders = [
        {"id": 1, "cur": "EUR", "amount": 10, "ts": 30_000},
        {"id": 2, "cur": "EUR", "amount": 10, "ts": 60_000},
        {"id": 3, "cur": "GBP", "amount": 20, "ts": 61_000},
        {"id": 4, "cur": "GBP", "amount": 20, "ts": 95_000},
        {"id": 5, "cur": None, "amount": 1, "ts": 96_000},
    ]
    run = await run_sql(
        "SELECT o.id, o.amount * r.rate AS usd FROM orders o "
        "LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.cur = r.cur",
        sources={"orders": orders, "rates": rates},
        partitions=2,
    )
    assert sorted(run.rows, key=lambda r: r["id"]) == [
        {"id": 1, "usd": 11.0},
        {"id": 2, "usd": 11.200000000000001},
        {"id": 3, "usd": 26.0},
        {"id": 4, "usd": None},
        {"id": 5, "usd": None},
    ]


def test_state_stays_bounded_on_an_endless_stream() -> None:
    """Each of 100 keys gets a new version every second and an order every 100 ms:
    the state holds one or two versions per key and the orders of the last second
    however long the streams run."""
    query = compile_query(
        "SELECT o.id, r.v FROM orders o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.k = r.k"
    )
    join = query.temporal_join
    assert join is not None
    state = TemporalJoinState.of(join)
    most = joined = 0
    for second in range(1_000):
        base = second * 1000
        state.right([[k, base, {"r.v": second}] for k in range(100)])
        for tick in range(10):
            t = base + tick * 100
            rows = state.left([[k, t, {"id": k}] for k in range(100)])
            rows += state.advance(t - 200)
            assert all(row["r.v"] in (second, second - 1) for row in rows)
            joined += len(rows)
            most = max(most, state.held())
    assert joined == 100 * 10 * 1_000 - 100 * 3  # all but the last 300 ms
    assert most <= 100 * 2 + 100 * 3


def test_query_inputs_name_the_changelog_as_the_joined_stream() -> None:
    inputs = query_inputs(f"SELECT o.id FROM orders o {_JOIN}")
    assert (inputs.stream, inputs.joined, inputs.tables) == ("orders", "rates", ())


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            f"SELECT o.id FROM orders o FULL {_JOIN}",
            "line 1, column 27: a temporal join is INNER or LEFT; FULL is not supported",
        ),
        (
            "SELECT o.id FROM orders o JOIN rates FOR SYSTEM_TIME AS OF r.ts AS r ON o.cur = r.cur",
            "line 1, column 60: FOR SYSTEM_TIME AS OF takes the time column of the FROM "
            "stream (o.<column>)",
        ),
        (
            "SELECT o.id FROM orders o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r "
            "ON o.cur = r.cur AND o.amount > r.min",
            "line 1, column 91: a temporal join's ON takes equalities o.col = r.col joined by AND",
        ),
        (
            f"SELECT id FROM orders o {_JOIN}",
            "line 1, column 8: column 'id': qualify every column of a stream-stream join "
            "(o.id or r.id)",
        ),
        (
            f"SELECT window_start, COUNT(*) AS n FROM orders o {_JOIN} "
            "GROUP BY TUMBLE(r.ts, INTERVAL '1' MINUTE)",
            "line 1, column 110: a window after a temporal join runs over o.ts, the "
            "stream's time column",
        ),
        (
            f"SELECT o.id FROM orders o {_JOIN} JOIN fx f ON o.cur = f.cur",
            "line 1, column 87: a temporal join joins two streams; other joins are not "
            "supported with it",
        ),
    ],
)
def test_what_a_temporal_join_refuses(sql: str, message: str) -> None:
    with pytest.raises(SqlError) as info:
        compile_query(sql)
    assert str(info.value) == message


async def test_without_the_changelog_the_error_names_both_inputs() -> None:
    with pytest.raises(
        SqlError, match="the query reads 'rates' but no input of that name was given"
    ):
        await run_sql(f"SELECT o.id FROM orders o {_JOIN}", sources={"orders": []})


def test_describe_names_the_changelog() -> None:
    q = compile_query(f"SELECT o.id, r.rate FROM orders o LEFT {_JOIN}")
    assert q.describe().splitlines()[:3] == [
        "input orders (stream; the query reads id)",
        "input rates (stream; the query reads rate)",
        "  LEFT temporal join of stream orders (as o) with changelog rates (as r) as of "
        "o.ts on o.cur = r.cur; versions by r.ts",
    ]


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT o.cur, COUNT(*) AS n FROM orders o {_JOIN} "
        "GROUP BY o.cur, TUMBLE(o.ts, INTERVAL '1' SECOND)",
        "SELECT o.id, COUNT(*) AS n FROM orders o JOIN payments p ON o.id = p.oid "
        "AND p.ts BETWEEN o.ts AND o.ts + 5 GROUP BY o.id, TUMBLE(o.ts, INTERVAL '1' SECOND)",
    ],
)
def test_late_update_is_refused_over_a_join_of_two_streams(sql: str) -> None:
    """A late record is handled at its stream's side of the join (dropped or
    dead-lettered there): no window downstream could be updated by it."""
    with pytest.raises(ValueError) as info:
        compile_query(sql, late="update")
    assert str(info.value) == (
        "late='update' is not supported over a join of two streams: a late record is "
        "dropped or dead-lettered at its stream's side of the join (use late='drop' or "
        "late='dead-letter')"
    )


async def test_a_session_after_a_temporal_join_is_not_split() -> None:
    """An order waiting in the join can be exactly at the watermark the join sends on;
    a session ending there must stay open for it (as after an interval join)."""
    orders = [
        {"id": 1, "cur": None, "ts": 9_000},  # no rate: LEFT JOIN's NULLs, at once
        {"id": 2, "cur": "EUR", "ts": 10_000},  # waits for the watermark to pass 10 s
    ]
    run = await run_sql(
        "SELECT window_start, window_end, COUNT(*) AS n FROM orders o "
        "LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.cur = r.cur "
        "GROUP BY SESSION(o.ts, INTERVAL '1' SECOND)",
        sources={"orders": orders, "rates": [{"cur": "EUR", "rate": 1.0, "ts": 0}]},
    )
    assert run.rows == [{"window_start": 9_000, "window_end": 11_000, "n": 2}]
