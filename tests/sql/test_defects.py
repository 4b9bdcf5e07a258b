"""Regression tests for issue 8 items 4, 5, 14 and 16 (parts) in the SQL layer."""

from __future__ import annotations

import pytest

from partita.runtime import BadRecord
from partita.sql import SqlError, compile_query, run_query

BIG = 2**63

_WINDOWS = [
    "TUMBLE(ts, INTERVAL '1' SECOND)",
    "HOP(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)",
    "CUMULATE(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)",
    "SESSION(ts, INTERVAL '1' SECOND)",
]


@pytest.mark.parametrize("window", _WINDOWS)
@pytest.mark.parametrize("late", ["drop", "update"])
@pytest.mark.parametrize("partitions", [1, 2])
def test_event_times_beyond_2_63_are_windowed_exactly(
    window: str, late: str, partitions: int
) -> None:
    records = [{"k": "a", "ts": BIG + 5}, {"k": "a", "ts": BIG + 10}]
    sql = f"SELECT k, window_start, COUNT(*) AS n FROM t GROUP BY k, {window}"
    result = run_query(sql, records, late=late, partitions=partitions)
    assert sum(r["n"] for r in result.rows) >= 2
    assert all(r["window_start"] > BIG - 3000 for r in result.rows)
    assert result.counts.late == 0


def test_window_size_beyond_2_63_ms_closes_at_end_of_input() -> None:
    sql = (
        "SELECT k, COUNT(*) AS n FROM t GROUP BY k, TUMBLE(ts, INTERVAL '10000000000000000' SECOND)"
    )
    assert run_query(sql, [{"k": "a", "ts": 5}]).rows == [{"k": "a", "n": 1}]


@pytest.mark.parametrize(
    "group_by", ["k", "k, TUMBLE(ts, INTERVAL '1' SECOND)", "k, SESSION(ts, INTERVAL '1' SECOND)"]
)
def test_output_row_failure_is_counted_and_dead_lettered(group_by: str) -> None:
    sql = f"SELECT k, MAX(x) + 1 AS m FROM t GROUP BY {group_by}"
    records = [{"k": "a", "x": "s", "ts": 1}, {"k": "b", "x": 1, "ts": 1}]
    skipped = run_query(sql, records)
    assert skipped.rows == [{"k": "b", "m": 2}]
    assert skipped.counts.errored == 1
    dead = run_query(sql, records, on_error="dead-letter")
    assert len(dead.dead_letters) == 1
    assert "'a'" in dead.dead_letters[0].reason
    with pytest.raises(BadRecord, match="'a'"):
        run_query(sql, records, on_error="fail")


def test_session_heap_keeps_one_entry_per_open_session() -> None:
    query = compile_query(
        "SELECT k, COUNT(*) AS n FROM t GROUP BY k, SESSION(ts, INTERVAL '1' HOUR)"
    )
    stage = query.routing_stage(1)
    program = query.new_program()
    from partita.runtime import Batch

    for start in range(0, 20_000, 1000):
        batch = Batch.from_records(
            [{"k": "a", "ts": t} for t in range(start, start + 1000)], start=start
        )
        part = stage.route(batch).parts[0]
        assert part is not None
        program.process(part)
    assert program.scheduled_closes() <= 2


def test_huge_float_literal_runs() -> None:
    assert run_query("SELECT 1e999 AS x FROM t", [{"a": 1}]).rows == [{"x": float("inf")}]


def test_infinite_interval_is_a_sql_error() -> None:
    with pytest.raises(SqlError) as info:
        compile_query("SELECT COUNT(*) AS n FROM t GROUP BY TUMBLE(ts, INTERVAL 'inf' SECOND)")
    assert info.value.line == 1


@pytest.mark.parametrize("window", _WINDOWS)
@pytest.mark.parametrize("partitions", [1, 2])
def test_event_times_below_minus_2_63_are_not_late(window: str, partitions: int) -> None:
    # the router's "nothing seen yet" is None, not a -(2**63) sentinel a record can pass
    records = [{"k": "a", "ts": -(2**64)}, {"k": "a", "ts": -(2**64) + 10}]
    sql = f"SELECT k, COUNT(*) AS n FROM t GROUP BY k, {window}"
    result = run_query(sql, records, partitions=partitions)
    assert result.counts.late == 0
    assert sum(r["n"] for r in result.rows) >= 2


def test_generated_source_leaves_linecache_with_its_query() -> None:
    import gc
    import linecache

    query = compile_query("SELECT x + 1 AS y FROM t")
    filename = query.code.filename
    assert filename in linecache.cache
    del query
    gc.collect()
    assert filename not in linecache.cache
