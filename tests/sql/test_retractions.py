"""``EMIT CHANGES WITH RETRACTIONS``: a sink that applies the changes holds the final result.

The convention (shared with the Postgres sink, which deletes by key on it): a
retraction is the group's old row with ``"_retract": True``; a new row has no such
field.  The property: applying the change rows in order to a table keyed by the group
(a retraction deletes its row, which must be there; a new row inserts, and its key must
be free) ends with exactly the ``EMIT FINAL`` rows, for any partition count and batch
size.  A deliberately broken consumer (one that ignores retractions) is shown failing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partita.sql import SqlError, compile_query, run_query
from tests.sql._reference import normalize, record_strategy

QUERIES = [
    ("SELECT k, COUNT(*) AS n, SUM(x) AS sx FROM events GROUP BY k", ("k",)),
    (
        "SELECT k, g, MAX(y) AS my, COUNT(DISTINCT s) AS ds FROM events GROUP BY k, g",
        ("k", "g"),
    ),
    ("SELECT k, SUM(x) AS sx FROM events GROUP BY k HAVING SUM(x) > 0", ("k",)),
    (
        "SELECT k, window_start, COUNT(*) AS n, MIN(x) AS mn FROM events "
        "GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND) HAVING COUNT(*) > 1",
        ("k", "window_start"),
    ),
    (
        "SELECT k, window_start, COUNT(*) AS n FROM events "
        "GROUP BY k, HOP(ts, INTERVAL '500' MILLISECOND, INTERVAL '1' SECOND)",
        ("k", "window_start"),
    ),
    (  # CUMULATE windows share their start: a row is known by its end too
        "SELECT k, window_start, window_end, SUM(x) AS sx FROM events "
        "GROUP BY k, CUMULATE(ts, INTERVAL '500' MILLISECOND, INTERVAL '2' SECOND)",
        ("k", "window_start", "window_end"),
    ),
]


def apply_changes(rows: Sequence[dict[str, Any]], key: Sequence[str]) -> list[dict[str, Any]]:
    """An upserting sink: a retraction deletes its row (which must be the row held)."""
    table: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        k = tuple(row[c] for c in key)
        if row.get("_retract"):
            old = {c: v for c, v in row.items() if c != "_retract"}
            assert table.pop(k) == old, "a retraction must match the row held"
        else:
            assert "_retract" not in row
            assert k not in table, "a new row comes only after its old one was retracted"
            table[k] = row
    return list(table.values())


def ignore_retractions(rows: Sequence[dict[str, Any]], key: Sequence[str]) -> list[dict[str, Any]]:
    """The broken twin: a consumer that keeps every row it is sent."""
    return [r for r in rows if not r.get("_retract")]


@pytest.mark.parametrize(("query", "key"), QUERIES)
@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(record_strategy, max_size=30),
    partitions=st.integers(1, 3),
    batch_size=st.integers(1, 10),
)
def test_applied_changes_end_as_the_final_rows(
    query: str, key: tuple[str, ...], records: list[Any], partitions: int, batch_size: int
) -> None:
    final = run_query(query, records, allowed_lateness=10_000)
    changes = run_query(
        query + " EMIT CHANGES WITH RETRACTIONS",
        records,
        partitions=partitions,
        batch_size=batch_size,
        allowed_lateness=10_000,
    )
    assert normalize(apply_changes(changes.rows, key)) == normalize(final.rows)


def test_the_broken_consumer_is_caught() -> None:
    records = [{"k": "a", "x": 1}, {"k": "a", "x": 2}]
    query = "SELECT k, SUM(x) AS sx FROM events GROUP BY k"
    changes = run_query(query + " EMIT CHANGES WITH RETRACTIONS", records).rows
    final = run_query(query, records).rows
    assert normalize(apply_changes(changes, ("k",))) == normalize(final)
    assert normalize(ignore_retractions(changes, ("k",))) != normalize(final)


def test_a_change_retracts_the_old_row_first() -> None:
    rows = [{"k": "a", "x": 1}, {"k": "b", "x": 5}, {"k": "a", "x": 2}, {"k": "a", "x": None}]
    got = run_query("SELECT k, SUM(x) AS s FROM t GROUP BY k EMIT CHANGES WITH RETRACTIONS", rows)
    assert got.rows == [
        {"k": "a", "s": 1},
        {"k": "b", "s": 5},
        {"k": "a", "s": 1, "_retract": True},
        {"k": "a", "s": 3},
        # SUM ignores the NULL: the row did not change, so nothing is emitted
    ]


def test_a_group_that_stops_qualifying_is_retracted() -> None:
    rows = [{"k": "a", "x": 3}, {"k": "a", "x": -5}, {"k": "a", "x": 4}]
    got = run_query(
        "SELECT k, SUM(x) AS s FROM t GROUP BY k HAVING SUM(x) > 0 EMIT CHANGES WITH RETRACTIONS",
        rows,
    )
    assert got.rows == [
        {"k": "a", "s": 3},
        {"k": "a", "s": 3, "_retract": True},
        {"k": "a", "s": 2},
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT x FROM t EMIT CHANGES WITH RETRACTIONS", "needs GROUP BY or aggregates"),
        (
            "SELECT k, COUNT(*) AS n FROM t GROUP BY k, SESSION(ts, 100) "
            "EMIT CHANGES WITH RETRACTIONS",
            "not supported over SESSION",
        ),
    ],
)
def test_where_retractions_are_refused(text: str, message: str) -> None:
    with pytest.raises(SqlError, match=message):
        compile_query(text)
    with pytest.raises(ValueError, match="late='update'"):
        compile_query(
            "SELECT k, COUNT(*) AS n FROM t GROUP BY k EMIT CHANGES WITH RETRACTIONS",
            late="update",
        )
