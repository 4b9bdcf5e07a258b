"""Several named inputs from the Python API (issue 12 item 1): ``run_sql(sources=...)``
and ``open_sql(sources=...)`` with a stream and the tables it joins, by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from partita.actors import TableFileError, open_sql, read_table, run_sql
from partita.sql import SqlError, compile_query

ORDERS = [
    {"id": 1, "cur": "EUR", "amount": 10, "ts": 1_000},
    {"id": 2, "cur": "GBP", "amount": 5, "ts": 2_000},
    {"id": 3, "cur": "JPY", "amount": 7, "ts": 61_000},
]
QUERY = "SELECT o.id, o.amount * r.rate AS usd FROM orders o LEFT JOIN rates r ON o.cur = r.cur"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    orders = tmp_path / "orders.jsonl"
    orders.write_text("".join(json.dumps(r) + "\n" for r in ORDERS), encoding="utf-8")
    rates = tmp_path / "rates.csv"
    rates.write_text("cur,rate\nEUR,1.5\nGBP,2\n", encoding="utf-8")
    return orders, rates


async def test_run_sql_reads_named_files(files: tuple[Path, Path]) -> None:
    orders, rates = files
    run = await run_sql(QUERY, sources={"orders": orders, "rates": str(rates)}, partitions=2)
    assert sorted(run.rows, key=lambda r: r["id"]) == [
        {"id": 1, "usd": 15.0},
        {"id": 2, "usd": 10},
        {"id": 3, "usd": None},
    ]


async def test_a_window_over_the_join_from_iterables() -> None:
    rates = [{"cur": "EUR", "region": "eu"}, {"cur": "GBP", "region": "eu"}]
    run = await run_sql(
        "SELECT r.region, window_start, SUM(o.amount) AS s FROM orders o JOIN rates r "
        "ON o.cur = r.cur GROUP BY r.region, TUMBLE(o.ts, INTERVAL '1' MINUTE)",
        sources={"orders": ORDERS, "rates": rates},
    )
    assert run.rows == [{"region": "eu", "window_start": 0, "s": 15}]
    assert run.stats["router"].rows_filtered == 1  # JPY matched no rate


async def test_open_sql_streams_joined_rows() -> None:
    rates = [{"cur": "EUR", "rate": 1.0}]
    async with open_sql(QUERY, sources={"orders": ORDERS, "rates": rates}) as stream:
        rows = [row async for row in stream]
    assert [r["id"] for r in rows] == [1, 2, 3]


async def test_a_compiled_query_takes_only_its_stream_by_name() -> None:
    query = compile_query(QUERY, tables={"rates": [{"cur": "EUR", "rate": 2.0}]})
    run = await run_sql(query, sources={"orders": ORDERS[:1]})
    assert run.rows == [{"id": 1, "usd": 20.0}]
    with pytest.raises(SqlError, match="'rates' is not read by the query: it reads 'orders'"):
        await run_sql(query, sources={"orders": ORDERS, "rates": []})


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ({"orders": ORDERS}, "the query reads 'rates' but no input of that name was given"),
        ({"orders": ORDERS, "rates": [], "x": []}, "input 'x' is not read by the query"),
    ],
)
async def test_unknown_and_missing_inputs_are_one_sql_error(
    sources: dict[str, object], message: str
) -> None:
    with pytest.raises(SqlError, match=message):
        await run_sql(QUERY, sources=sources)  # type: ignore[arg-type]


async def test_source_and_sources_are_exclusive_and_a_table_must_be_rows() -> None:
    with pytest.raises(TypeError, match="not both"):
        await run_sql(QUERY, ORDERS, sources={"orders": ORDERS})
    with pytest.raises(TypeError, match="give the query's input"):
        await run_sql(QUERY)
    with pytest.raises(TypeError, match="table 'rates' must be a file path or an iterable"):
        await run_sql(QUERY, sources={"orders": ORDERS, "rates": 5})  # type: ignore[dict-item]
    with pytest.raises(SqlError, match="no table 'rates' to join"):
        await run_sql(QUERY, ORDERS)


def test_read_table_reads_json_lines_and_names_a_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "t.jsonl"
    good.write_text('{"a": 1}\n\n{"a": 2, "b": "x"}\n', encoding="utf-8")
    assert read_table(good) == [{"a": 1}, {"a": 2, "b": "x"}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n[1]\n', encoding="utf-8")
    with pytest.raises(TableFileError, match="line 2: expected a JSON object, got list"):
        read_table(bad)
    csv = tmp_path / "bad.csv"
    csv.write_text("a,b\n1,2\n3\n", encoding="utf-8")
    with pytest.raises(TableFileError, match="line 3: expected 2 fields, got 1"):
        read_table(csv)
    with pytest.raises(TableFileError, match="no such file"):
        read_table(tmp_path / "nope.csv")
