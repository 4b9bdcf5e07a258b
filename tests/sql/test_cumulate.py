"""CUMULATE windows (Flink's cumulating windows): Flink's own examples, the spellings, the
errors, lateness and late updates.  The Hypothesis comparisons against the naive
reference are the ``cumulate-*`` cases of ``tests/sql/test_oracle_windows.py`` (run by
``test_oracle_windows.py`` and ``test_properties.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partita.sql import SqlError, compile_query, run_query
from tests.sql._reference import Record, cumulate_windows, normalize, run_sql, streams

EIGHT = 1_586_937_600_000  # 2020-04-15 08:00 UTC
MINUTE = 60_000

# Flink's Bid table (docs: "Window Table-Valued Functions", CUMULATE)
BIDS = [
    {"bidtime": EIGHT + minute * MINUTE, "price": price, "item": item, "supplier": supplier}
    for minute, price, item, supplier in [
        (5, 4.0, "C", "supplier1"),
        (7, 2.0, "A", "supplier1"),
        (9, 5.0, "D", "supplier2"),
        (11, 3.0, "B", "supplier2"),
        (13, 1.0, "E", "supplier1"),
        (17, 6.0, "F", "supplier2"),
    ]
]
FLINK = (
    "SELECT window_start, window_end, SUM(price) AS price FROM Bid "
    "GROUP BY CUMULATE(bidtime, INTERVAL '2' MINUTE, INTERVAL '10' MINUTE)"
)
# Flink's result, in minutes after 08:00
FLINK_ROWS = [(0, 6, 4.0), (0, 8, 6.0), (0, 10, 11.0), (10, 12, 3.0), (10, 14, 4.0)]
FLINK_ROWS += [(10, 16, 4.0), (10, 18, 10.0), (10, 20, 10.0)]


def _minutes(rows: list[dict[str, Any]]) -> list[tuple[int, int, Any]]:
    return [
        ((r["window_start"] - EIGHT) // MINUTE, (r["window_end"] - EIGHT) // MINUTE, r["price"])
        for r in rows
    ]


@pytest.mark.parametrize("partitions", [1, 2, 3])
@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_flink_cumulate_example(partitions: int, batch_size: int) -> None:
    result = run_query(FLINK, BIDS, partitions=partitions, batch_size=batch_size)
    assert sorted(_minutes(result.rows)) == FLINK_ROWS


def test_flink_cumulate_example_keyed_by_supplier() -> None:
    query = (
        "SELECT supplier, window_start, window_end, SUM(price) AS price FROM Bid "
        "GROUP BY supplier, CUMULATE(bidtime, INTERVAL '2' MINUTE, INTERVAL '10' MINUTE)"
    )
    rows = run_query(query, BIDS, partitions=2).rows
    got = {(r["supplier"], *m) for r, m in zip(rows, _minutes(rows), strict=True)}
    assert got == {
        ("supplier1", 0, 6, 4.0),
        ("supplier1", 0, 8, 6.0),
        ("supplier1", 0, 10, 6.0),
        ("supplier2", 0, 10, 5.0),
        ("supplier2", 10, 12, 3.0),
        ("supplier2", 10, 14, 3.0),
        ("supplier2", 10, 16, 3.0),
        ("supplier2", 10, 18, 9.0),
        ("supplier2", 10, 20, 9.0),
        ("supplier1", 10, 14, 1.0),
        ("supplier1", 10, 16, 1.0),
        ("supplier1", 10, 18, 1.0),
        ("supplier1", 10, 20, 1.0),
    }


def test_spellings_mean_the_same_window() -> None:
    clause = FLINK.replace(
        "GROUP BY CUMULATE(bidtime, INTERVAL '2' MINUTE, INTERVAL '10' MINUTE)",
        "WINDOW CUMULATE(2m, 10m, bidtime)",
    )
    declared = "CREATE STREAM Bid (bidtime TIMESTAMP, price DOUBLE) WITH (event_time = 'bidtime'); "
    declared += FLINK.replace(
        "GROUP BY CUMULATE(bidtime, INTERVAL '2' MINUTE, INTERVAL '10' MINUTE)",
        "WINDOW CUMULATE(INTERVAL '2' MINUTE, INTERVAL '10' MINUTE)",
    )
    bounds = (
        "SELECT CUMULATE_START(bidtime, 120000, 600000) AS window_start, "
        "CUMULATE_END(bidtime, 120000, 600000) AS window_end, SUM(price) AS price FROM Bid "
        "GROUP BY CUMULATE(bidtime, 120000, 600000)"
    )
    expected = run_query(FLINK, BIDS).rows
    for query in (clause, declared, bounds):
        assert run_query(query, BIDS).rows == expected, query
    plan = compile_query(clause).plan
    assert str(plan.window) == "CUMULATE(bidtime, step 120000 ms, size 600000 ms)"


@pytest.mark.parametrize(
    ("query", "line", "col", "message"),
    [
        (
            "SELECT COUNT(*) FROM t GROUP BY CUMULATE(ts, INTERVAL '3' SECOND, 10000)",
            1,
            33,
            "CUMULATE size must be a whole multiple of its step (got step 3000 ms, size 10000 ms)",
        ),
        (
            "SELECT COUNT(*) FROM t GROUP BY CUMULATE(ts, 2000, 1000)",
            1,
            33,
            "whole multiple",
        ),
        ("SELECT COUNT(*)\nFROM t\n  WINDOW CUMULATE(3s, 10s, ts)", 3, 3, "whole multiple"),
        ("SELECT COUNT(*) FROM t WINDOW CUMULATE(10s, ts)", 1, 24, "CUMULATE([time_column,] step"),
        ("SELECT COUNT(*) FROM t GROUP BY CUMULATE(ts, 0, 1000)", 1, 46, "must be positive"),
        (
            "SELECT CUMULATE(ts, 1, 2) AS c FROM t GROUP BY k",
            1,
            8,
            "TUMBLE/HOP/CUMULATE/SESSION belong in GROUP BY",
        ),
    ],
)
def test_cumulate_errors_name_their_position(query: str, line: int, col: int, message: str) -> None:
    with pytest.raises(SqlError) as info:
        compile_query(query)
    assert (info.value.line, info.value.col) == (line, col)
    assert message in info.value.message


def _keyed(*times: int) -> list[dict[str, Any]]:
    return [{"k": "a", "ts": t} for t in times]


WINDOWS = "SELECT k, window_start, window_end, COUNT(*) AS n FROM t GROUP BY k, "
SMALL = WINDOWS + "CUMULATE(ts, INTERVAL '1' SECOND, INTERVAL '3' SECOND)"


def _spans(rows: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
    return [(r["window_start"], r["window_end"], r["n"]) for r in rows]


@pytest.mark.parametrize("batch_size", [1, 2, 10])
@pytest.mark.parametrize("partitions", [1, 2])
def test_a_record_joins_only_its_open_windows_and_is_late_once_its_whole_window_closed(
    batch_size: int, partitions: int
) -> None:
    # 2500 closes [0, 1000) and [0, 2000); 1500 then joins [0, 3000) only; 3100 closes
    # [0, 3000), so 500 is late
    rows = _keyed(100, 2500, 1500, 3100, 500)
    result = run_query(SMALL, rows, batch_size=batch_size, partitions=partitions)
    assert sorted(_spans(result.rows)) == [
        (0, 1000, 1),
        (0, 2000, 1),
        (0, 3000, 3),
        (3000, 4000, 1),
        (3000, 5000, 1),
        (3000, 6000, 1),
    ]
    assert result.counts.late == 1


def test_emit_changes_has_a_row_per_window_joined() -> None:
    result = run_query(SMALL + " EMIT CHANGES", _keyed(100, 1200, 2500))
    assert _spans(result.rows) == [
        (0, 1000, 1),
        (0, 2000, 1),
        (0, 3000, 1),
        (0, 2000, 2),
        (0, 3000, 2),
        (0, 3000, 3),
    ]


def test_late_update_re_emits_every_retained_window_of_the_record() -> None:
    rows = _keyed(100, 1200, 3500, 600)  # 3500 closes all of [0, ...); 600 is late for them
    result = run_query(SMALL, rows, late="update")
    assert _spans(result.rows) == [
        (0, 1000, 1),
        (0, 2000, 2),
        (0, 3000, 2),
        (0, 1000, 2),
        (0, 2000, 3),
        (0, 3000, 3),
        (3000, 4000, 1),
        (3000, 5000, 1),
        (3000, 6000, 1),
    ]
    assert result.counts.late == 1  # counted once, not once per window
    expired = run_query(SMALL, _keyed(100, 9000, 600), late="update")
    assert [d.offset for d in expired.dead_letters if d.reason.startswith("late")] == [2]


def test_dead_lettered_late_record_names_lateness() -> None:
    result = run_query(SMALL, _keyed(100, 3000, 200), late="dead-letter")
    assert [d.offset for d in result.dead_letters] == [2]
    assert result.dead_letters[0].reason.startswith("late")


def test_reference_cumulate_windows() -> None:
    assert cumulate_windows(2500, 3000, 1000) == [(0, 3000)]
    assert cumulate_windows(100, 3000, 1000) == [(0, 1000), (0, 2000), (0, 3000)]
    assert cumulate_windows(-1, 2000, 500) == [(-2000, 0)]


def _batch_oracle(records: list[Record], size: int, step: int) -> list[dict[str, Any]]:
    """The windows of the finished input, computed in one batch: every record in each
    of its windows (nothing late), ``COUNT(*)`` and ``SUM(x)`` per (key, window)."""
    groups: dict[tuple[Any, int, int], list[Record]] = {}
    for record in records:
        for start, end in cumulate_windows(record["ts"], size, step):
            groups.setdefault((record["k"], start, end), []).append(record)
    rows = []
    for (k, start, end), members in groups.items():
        xs = [r["x"] for r in members if r["x"] is not None]
        rows.append(
            {
                "k": k,
                "window_start": start,
                "window_end": end,
                "n": len(members),
                "sx": sum(xs) if xs else None,
            }
        )
    return rows


ORACLE_SQL = (
    "SELECT k, window_start, window_end, COUNT(*) AS n, SUM(x) AS sx FROM events "
    "GROUP BY k, CUMULATE(ts, INTERVAL '250' MILLISECOND, INTERVAL '1' SECOND)"
)


@given(
    records=streams(),
    partitions=st.integers(1, 4),
    batch_size=st.integers(1, 40),
    emit=st.sampled_from(["", " EMIT CHANGES"]),
)
def test_late_updates_end_in_the_batch_result_of_the_finished_input(
    records: list[Record], partitions: int, batch_size: int, emit: str
) -> None:
    """With ``late="update"`` and a retention longer than the stream, every record
    reaches every one of its windows, late or not: the last row of each window is the
    batch result, whatever the partitions, batches or order of the records."""
    got = run_sql(
        ORACLE_SQL + emit,
        records,
        partitions=partitions,
        batch_size=batch_size,
        late="update",
        retention=10**9,
    )
    last: dict[tuple[Any, int, int], dict[str, Any]] = {}
    for row in got.rows:
        last[(row["k"], row["window_start"], row["window_end"])] = row
    assert normalize(last.values()) == normalize(_batch_oracle(records, 1000, 250))
    assert got.counts.errored == 0 and got.dead_letters == []


@given(records=streams(), partitions=st.integers(1, 4), batch_size=st.integers(1, 40))
def test_with_lateness_past_the_stream_final_rows_are_the_batch_result(
    records: list[Record], partitions: int, batch_size: int
) -> None:
    got = run_sql(
        ORACLE_SQL,
        records,
        partitions=partitions,
        batch_size=batch_size,
        allowed_lateness=10**9,
    )
    assert normalize(got.rows) == normalize(_batch_oracle(records, 1000, 250))
    assert got.counts.late == 0
