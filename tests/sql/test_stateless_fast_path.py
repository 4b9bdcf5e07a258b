"""A stateless query's list-comprehension fast path: a batch with a bad record falls
back to the careful loop, so rows, counts and dead letters are what the loop gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from partita.sql import compile_query, run_query

SQL = [
    "SELECT symbol, price * qty AS notional FROM t WHERE qty > 50",
    "SELECT *, qty + 1 AS q1 FROM t WHERE price IS NOT NULL",
    "SELECT qty FROM t",
]

VALUES = st.one_of(st.none(), st.integers(-100, 100), st.floats(-1e3, 1e3), st.just("x"))


def _row_by_row(sql: str, records: list[dict[str, Any]]) -> Any:
    # a batch of one record each: the comprehension fails alone or not at all
    return run_query(sql, records, batch_size=1, on_error="dead-letter")


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(SQL),
    st.lists(
        st.fixed_dictionaries(
            {"symbol": st.sampled_from(["A", "B"]), "price": VALUES, "qty": VALUES}
        ),
        max_size=30,
    ),
    st.integers(1, 40),
)
def test_batches_give_what_single_records_give(
    sql: str, records: list[dict[str, Any]], batch_size: int
) -> None:
    got = run_query(sql, records, batch_size=batch_size, on_error="dead-letter")
    want = _row_by_row(sql, records)
    assert got.rows == want.rows
    assert [(d.offset, d.reason) for d in got.dead_letters] == [
        (d.offset, d.reason) for d in want.dead_letters
    ]
    assert got.counts == want.counts


def test_the_fast_path_is_one_comprehension_before_the_loop() -> None:
    source = compile_query(SQL[0]).code.source
    body = source.split("def process")[1]
    assert body.index("for r in records if") < body.index("while i < n:")
    assert "GROUP" not in SQL[0]
    grouped = compile_query("SELECT symbol, COUNT(*) AS n FROM t GROUP BY symbol").code.source
    process = grouped.split("def process")[1].split("\ndef ")[0]
    assert "for r in records" not in process
