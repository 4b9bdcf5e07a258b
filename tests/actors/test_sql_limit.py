"""``LIMIT n`` from the Python API: ``run_sql`` and ``open_sql`` stop after ``n`` rows."""

from __future__ import annotations

import itertools

from partita.actors import open_sql, run_sql


async def test_run_sql_returns_at_most_limit_rows_and_stops_reading() -> None:
    read = itertools.count()
    records = ({"x": next(read)} for _ in range(1_000_000))
    result = await run_sql("SELECT x FROM t WHERE x % 2 = 0 LIMIT 3", records, batch_size=16)
    assert result.rows == [{"x": 0}, {"x": 2}, {"x": 4}]
    assert next(read) < 1_000  # the source stopped being read soon after the limit


async def test_open_sql_stream_ends_after_limit_rows() -> None:
    records = ({"x": i} for i in range(1_000_000))
    async with open_sql("SELECT x FROM t LIMIT 5", records, batch_size=4) as stream:
        rows = [row async for row in stream]
    assert rows == [{"x": i} for i in range(5)]


async def test_a_limit_above_the_row_count_returns_everything() -> None:
    result = await run_sql("SELECT x FROM t LIMIT 10", [{"x": 1}, {"x": 2}])
    assert result.rows == [{"x": 1}, {"x": 2}]
