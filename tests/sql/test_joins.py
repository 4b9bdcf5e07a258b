"""Stream-table joins (issue 12 item 2) against DuckDB on the same finished input.

Each case runs partita's query through ``sql.run_query`` (random partition count and
batch size) with the table given to ``compile_query(tables=...)``, and the same SQL in
DuckDB over two tables; results are compared as multisets.  NULL keys, keys that match
several table rows and keys that match none are all in the generated data.  The
table may be empty, so the cases qualify its columns (an unqualified name is resolved
against the columns the table's rows have).
"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partita.runtime import Batch
from partita.sql import SqlError, compile_query, query_inputs, run_query
from tests.sql._reference import Record, normalize

ORDERS = {"id": "BIGINT", "cur": "TEXT", "amount": "BIGINT", "ts": "BIGINT"}
RATES = {"cur": "TEXT", "rate": "DOUBLE", "region": "TEXT"}

orders_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.integers(0, 50),
            "cur": st.none() | st.sampled_from(["EUR", "GBP", "JPY", "USD"]),
            "amount": st.none() | st.integers(-5, 20),
            "ts": st.integers(0, 20_000),
        }
    ),
    max_size=30,
)
rates_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "cur": st.none() | st.sampled_from(["EUR", "GBP", "JPY", "CHF"]),
            "rate": st.none() | st.sampled_from([0.5, 1.0, 1.25, 2.0]),
            "region": st.sampled_from(["eu", "asia", "uk"]),
        }
    ),
    max_size=6,
)

CASES: list[str] = [
    "SELECT o.id, o.amount * r.rate AS usd FROM orders o JOIN rates r ON o.cur = r.cur",
    "SELECT o.id, r.rate, r.region FROM orders o LEFT JOIN rates r ON o.cur = r.cur",
    "SELECT id, r.rate FROM orders AS o LEFT JOIN rates AS r ON o.cur = r.cur "
    "WHERE r.rate > 0.75 OR r.rate IS NULL",
    "SELECT r.region, COUNT(*) AS n, SUM(o.amount * r.rate) AS usd FROM orders o "
    "JOIN rates r ON o.cur = r.cur GROUP BY r.region",
    "SELECT o.cur, COUNT(r.rate) AS rated, COUNT(*) AS n FROM orders o "
    "LEFT JOIN rates r ON r.cur = o.cur GROUP BY o.cur",
    "SELECT rates.region, COUNT(*) AS n FROM orders JOIN rates ON orders.cur = rates.cur "
    "WHERE amount > 2 GROUP BY rates.region HAVING COUNT(*) > 1",
    "SELECT o.id FROM orders o JOIN rates r ON o.cur = r.cur AND o.amount > r.rate",
]


def duckdb_rows(sql_text: str, orders: list[Record], rates: list[Record]) -> list[Record]:
    db = duckdb.connect(":memory:")
    try:
        for name, columns, rows in (("orders", ORDERS, orders), ("rates", RATES, rates)):
            db.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
            if rows:
                marks = ", ".join("?" * len(columns))
                db.executemany(
                    f"INSERT INTO {name} VALUES ({marks})",
                    [tuple(r[c] for c in columns) for r in rows],
                )
        cursor = db.execute(sql_text)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        db.close()


def _ours(sql_text: str, orders: list[Record], rates: list[Record], **run: Any) -> list[Record]:
    query = compile_query(sql_text, tables={"rates": rates})
    result = run_query(query, orders, **run)
    assert result.counts.errored == 0
    return result.rows


@pytest.mark.parametrize("query", CASES[:-1])
@settings(max_examples=25, deadline=None)
@given(
    orders=orders_strategy,
    rates=rates_strategy,
    partitions=st.integers(1, 3),
    batch_size=st.integers(1, 10),
)
def test_join_matches_duckdb(
    query: str, orders: list[Record], rates: list[Record], partitions: int, batch_size: int
) -> None:
    got = _ours(query, orders, rates, partitions=partitions, batch_size=batch_size)
    assert normalize(got) == normalize(duckdb_rows(query, orders, rates))


def test_on_takes_equalities_only() -> None:
    with pytest.raises(SqlError, match="takes equalities") as info:
        compile_query(CASES[-1], tables={"rates": []})
    assert (info.value.line, info.value.col) == (1, 61)


@settings(max_examples=25, deadline=None)
@given(orders=orders_strategy, rates=rates_strategy, batch_size=st.integers(1, 10))
def test_join_results_do_not_depend_on_partitions_or_batches(
    orders: list[Record], rates: list[Record], batch_size: int
) -> None:
    """A windowed aggregate over the join: the same rows whatever the partitioning."""
    query = (
        "SELECT r.region, window_start, COUNT(*) AS n, SUM(o.amount) AS s FROM orders o "
        "LEFT JOIN rates r ON o.cur = r.cur GROUP BY r.region, TUMBLE(o.ts, INTERVAL '5' SECOND)"
    )
    ordered = sorted(orders, key=lambda r: r["ts"])  # in order: nothing late
    one = normalize(_ours(query, ordered, rates, partitions=1, batch_size=1000))
    assert normalize(_ours(query, ordered, rates, partitions=3, batch_size=batch_size)) == one


def test_several_matching_rows_give_a_row_each_and_keep_offsets() -> None:
    rates = [{"cur": "GBP", "rate": 1.3}, {"cur": "GBP", "rate": 1.31}, {"cur": "EUR", "rate": 1}]
    query = compile_query(
        "SELECT o.id, r.rate FROM orders o JOIN rates r ON o.cur = r.cur",
        tables={"rates": rates},
    )
    stage = query.routing_stage(1)
    batch = Batch.from_records([{"id": 1, "cur": "GBP"}, {"id": 2, "cur": "X"}, {"id": 3}])
    routed = stage.route(batch)
    part = routed.parts[0]
    assert part is not None
    assert part.records == [
        {"id": 1, "cur": "GBP", "r.rate": 1.3, "r.cur": "GBP"},
        {"id": 1, "cur": "GBP", "r.rate": 1.31, "r.cur": "GBP"},
    ]
    assert list(part.offsets) == [0, 0]
    # id 2 matched nothing (filtered); id 3 has no cur at all (a bad record, skipped)
    assert (stage.counts().filtered, stage.counts().errored) == (1, 1)


def test_composite_keys_and_a_key_expression() -> None:
    rates = [{"a": 1, "b": "x", "v": "one-x"}, {"a": 2, "b": "x", "v": "two-x"}]
    got = run_query(
        "SELECT s.n, t.v FROM s JOIN t ON s.n + 1 = t.a AND t.b = s.tag",
        [{"n": 0, "tag": "x"}, {"n": 1, "tag": "x"}, {"n": 1, "tag": "y"}, {"n": None, "tag": "x"}],
        tables={"t": rates},
    )
    assert got.rows == [{"n": 0, "v": "one-x"}, {"n": 1, "v": "two-x"}]


def test_two_tables() -> None:
    got = run_query(
        "SELECT o.id, r.rate, c.name FROM orders o JOIN rates r ON o.cur = r.cur "
        "LEFT JOIN customers c ON o.cust = c.id",
        [{"id": 1, "cur": "EUR", "cust": 7}, {"id": 2, "cur": "EUR", "cust": 8}],
        tables={"rates": [{"cur": "EUR", "rate": 1.1}], "customers": [{"id": 7, "name": "Ada"}]},
    )
    assert got.rows == [
        {"id": 1, "rate": 1.1, "name": "Ada"},
        {"id": 2, "rate": 1.1, "name": None},
    ]


def test_a_declared_schema_coerces_the_stream_before_the_join() -> None:
    got = run_query(
        "CREATE STREAM orders (id BIGINT, cur_id BIGINT); "
        "SELECT o.id, r.name FROM orders o JOIN currencies r ON o.cur_id = r.id",
        [{"id": "1", "cur_id": "7"}],
        tables={"currencies": [{"id": 7, "name": "EUR"}]},
    )
    assert got.rows == [{"id": 1, "name": "EUR"}]


@pytest.mark.parametrize(
    ("query", "col", "message"),
    [
        ("SELECT cur FROM orders o JOIN rates r ON o.cur = r.cur", 8, "'cur' is ambiguous"),
        ("SELECT o.id, r.nope FROM orders o JOIN rates r ON o.cur = r.cur", 14, "no column 'nope'"),
        ("SELECT x.id FROM orders o JOIN rates r ON o.cur = r.cur", 8, "unknown table 'x'"),
        ("SELECT * FROM orders o JOIN rates r ON o.cur = r.cur", 1, r"SELECT \* over a join"),
        ("SELECT o.id FROM orders o RIGHT JOIN rates r ON o.cur = r.cur", 27, "RIGHT JOIN"),
        ("SELECT o.id FROM orders o JOIN rates r USING (cur)", 27, "USING"),
        ("SELECT o.id FROM orders o JOIN rates o ON o.cur = o.cur", 32, "two inputs"),
        ("SELECT o.id FROM orders o JOIN customers c ON o.c = c.id", 32, "no table 'customers'"),
        ("SELECT o.id FROM orders o JOIN rates r ON r.rate = r.cur", 43, "the other not using"),
    ],
)
def test_join_errors_name_the_position(query: str, col: int, message: str) -> None:
    with pytest.raises(SqlError, match=message) as info:
        compile_query(query, tables={"rates": [{"cur": "EUR", "rate": 1.0}]})
    assert (info.value.line, info.value.col) == (1, col)


def test_an_unambiguous_unqualified_column_resolves_and_a_schema_finds_ambiguity() -> None:
    rates = [{"cur": "EUR", "rate": 2.0}]
    got = run_query(
        "SELECT id, rate FROM orders o JOIN rates r ON o.cur = r.cur",
        [{"id": 1, "cur": "EUR"}],
        tables={"rates": rates},
    )
    assert got.rows == [{"id": 1, "rate": 2.0}]
    with pytest.raises(SqlError, match="'rate' is ambiguous"):
        compile_query(
            "SELECT rate FROM orders o JOIN rates r ON o.cur = r.cur",
            tables={"rates": rates},
            schema="cur TEXT, rate DOUBLE",
        )


def test_a_table_given_but_not_joined_is_an_error() -> None:
    with pytest.raises(SqlError, match="'rates' was given but the query does not join it"):
        compile_query("SELECT id FROM orders", tables={"rates": []})


def test_an_unhashable_table_key_is_an_error_and_a_stream_one_a_bad_record() -> None:
    with pytest.raises(SqlError, match="row 1: join key"):
        compile_query(
            "SELECT o.id FROM orders o JOIN rates r ON o.cur = r.cur",
            tables={"rates": [{"cur": ["EUR"]}]},
        )
    got = run_query(
        "SELECT o.id FROM orders o JOIN rates r ON o.cur = r.cur",
        [{"id": 1, "cur": ["EUR"]}, {"id": 2, "cur": "EUR"}],
        tables={"rates": [{"cur": "EUR"}]},
        on_error="dead-letter",
    )
    assert got.rows == [{"id": 2}]
    assert [d.record for d in got.dead_letters] == [{"id": 1, "cur": ["EUR"]}]


def test_query_inputs_names_the_stream_then_the_tables() -> None:
    text = "SELECT o.id FROM orders o JOIN rates r ON o.cur = r.cur JOIN c ON o.k = c.k"
    assert query_inputs(text).names == ("orders", "rates", "c")


def test_explain_and_describe_show_the_join() -> None:
    query = compile_query(
        "SELECT o.id, r.rate FROM orders o LEFT JOIN rates r ON o.cur = r.cur",
        tables={"rates": [{"cur": "EUR", "rate": 1.0}]},
    )
    assert 'LeftJoin(rates AS r ON "cur" = r.cur)' in query.explain()
    assert "def join0(records, offsets, on_bad):" in query.explain()
    assert "table rates (LEFT JOIN as r, 1 rows; the query reads rate, cur)" in query.describe()
    assert "the query reads cur, id)" in query.describe()
