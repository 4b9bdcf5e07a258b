"""A stateless query's list-comprehension fast path: a batch with a bad record falls
back to the careful loop, so rows, counts and dead letters are what the loop gives."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from partita.runtime import Batch
from partita.sql import _expr, compile_query, run_query

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


# -- the unchecked tier: no NULL checks where Python raises on None ---------------------

TIERED_SQL = [
    "SELECT symbol, price * qty AS notional FROM t WHERE qty > 50",
    "SELECT price + qty AS s, price - qty AS d, -qty AS n FROM t WHERE price >= qty OR qty < 0",
    "SELECT qty = price AS e, qty <> 5 AS ne, price > qty AS gt, price <= 2 AS le FROM t",
    "SELECT price * 2 = qty AS e, qty IS NULL AS n, qty IN (1, 2) AS i FROM t WHERE NOT qty <= 0",
    "SELECT COALESCE(price * qty, 0) AS c, CASE WHEN qty > 5 THEN price END AS k FROM t",
    "SELECT qty BETWEEN 1 AND 50 AS b, symbol || price AS s, price / qty AS q, qty % 3 AS m FROM t",
    "SELECT *, qty + 1 AS q1 FROM t WHERE price IS NOT NULL AND price * qty > 10",
    "SELECT qty FROM t WHERE (qty > 5) = (price > 5) OR -price < qty AND qty <> 3",
    "SELECT (qty > 1) AND (price < 3) AS a, NOT (qty >= price) AS n FROM t",
    # checked and unchecked operators over different columns: a NULL qty must stay NULL
    "SELECT qty <> 5 AS ne, price * 2 AS p FROM t",
    "SELECT qty = 1 AS e, -price AS n FROM t WHERE price > 0",
    "SELECT price + 1 AS p FROM t WHERE qty <> 3 AND price < 100",
    "SELECT symbol FROM t WHERE qty = price OR symbol > 'Z'",
]

TIER_VALUES = st.one_of(
    st.none(), st.integers(-100, 100), st.floats(-1e3, 1e3), st.booleans(), st.just("x")
)


class _LoopOnly(list[dict[str, Any]]):
    """A batch that cannot be iterated: both comprehensions fail at once and the
    careful loop (which indexes) runs alone.  The oracle."""

    def __iter__(self) -> Any:
        raise RuntimeError("the careful loop indexes; the comprehensions iterate")


class _Counting(list[dict[str, Any]]):
    """A batch that counts passes over it (comprehensions) and index reads (the loop)."""

    passes = 0
    reads = 0

    def __iter__(self) -> Any:
        self.passes += 1
        return super().__iter__()

    def __getitem__(self, index: Any) -> Any:
        self.reads += 1
        return super().__getitem__(index)


def _through_program(
    sql: str, chunks: list[list[dict[str, Any]]], *, loop_only: bool
) -> tuple[list[Any], Any, list[tuple[int | None, str]]]:
    program = compile_query(sql, on_error="dead-letter").new_program()
    rows: list[Any] = []
    start = 0
    for chunk in chunks:
        records = _LoopOnly(chunk) if loop_only else list(chunk)
        rows += program.process(Batch(records, range(start, start + len(chunk))))
        start += len(chunk)
    letters = [(d.offset, d.reason) for d in program.take_dead_letters()]
    return rows, program.counts(), letters


def _chunked(records: list[dict[str, Any]], cuts: list[int]) -> list[list[dict[str, Any]]]:
    bounds = sorted({0, len(records), *(c % (len(records) + 1) for c in cuts)})
    return [records[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(TIERED_SQL),
    st.lists(
        st.fixed_dictionaries(
            {"symbol": st.sampled_from(["A", "B"])},
            optional={"price": TIER_VALUES, "qty": TIER_VALUES},
        ),
        max_size=30,
    ),
    st.lists(st.integers(0, 30), max_size=4),
)
def test_the_fast_tiers_give_what_the_careful_loop_gives(
    sql: str, records: list[dict[str, Any]], cuts: list[int]
) -> None:
    chunks = _chunked(records, cuts)
    assert _through_program(sql, chunks, loop_only=False) == _through_program(
        sql, chunks, loop_only=True
    )


def test_the_oracle_catches_an_unchecked_equality(monkeypatch: pytest.MonkeyPatch) -> None:
    # a deliberately broken compiler: = without its NULL check (None == 5 is False)
    monkeypatch.setattr(_expr, "_RAISE_ON_NULL", {**_expr._RAISE_ON_NULL, exp.EQ: "=="})
    sql = "SELECT qty = 5 AS e FROM t"
    chunks = [[{"symbol": "A", "qty": None}]]
    assert _through_program(sql, chunks, loop_only=False) != _through_program(
        sql, chunks, loop_only=True
    )


def test_equality_with_a_null_operand_stays_null_in_a_projection() -> None:
    sql = "SELECT qty = 5 AS e, qty <> 5 AS ne, price * qty = 10 AS m, price > 1 AS g FROM t"
    records = [{"price": 2, "qty": None}, {"price": 2, "qty": 5}, {"price": None, "qty": 5}]
    got = run_query(sql, records, batch_size=100)
    assert got.rows == [
        {"e": None, "ne": None, "m": None, "g": True},
        {"e": True, "ne": False, "m": True, "g": True},
        {"e": True, "ne": False, "m": None, "g": None},
    ]


def test_w1_has_an_unchecked_tier_without_null_checks() -> None:
    source = compile_query(SQL[0]).code.source
    tier = source.split("def process_unchecked(records):")[1].split("\ndef ")[0]
    assert "(r['price']) * (r['qty'])" in tier
    assert "r['qty'] > 50" in tier
    assert "None" not in tier.replace("return None", "")


def test_no_unchecked_tier_where_every_check_stays() -> None:
    code = compile_query("SELECT qty = 5 AS e, COALESCE(qty, 1) AS c FROM t").code
    assert "process_unchecked" not in code.functions


def test_a_batch_with_a_null_costs_one_partial_pass_not_the_loop() -> None:
    program = compile_query(SQL[0]).new_program()
    clean = _Counting({"symbol": "A", "price": 1.0, "qty": q} for q in range(100))
    program.process(Batch(clean, range(100)))
    assert (clean.passes, clean.reads) == (1, 0)
    nulls = _Counting([*clean, {"symbol": "A", "price": None, "qty": 60}])
    rows = program.process(Batch(nulls, range(101)))
    assert (nulls.passes, nulls.reads) == (2, 0)  # unchecked, then NULL-checked
    assert rows[-1] == {"symbol": "A", "notional": None}


def test_after_a_failed_unchecked_pass_the_next_batches_skip_it() -> None:
    program = compile_query(SQL[0]).new_program()
    passes = []
    for _ in range(200):  # a NULL in every batch
        batch = _Counting([{"symbol": "A", "price": None, "qty": 60}] * 10)
        program.process(Batch(batch, range(10)))
        passes.append(batch.passes)
    # one NULL-checked pass each, and an unchecked one ever more rarely (bounded gaps)
    tried = [i for i, p in enumerate(passes) if p == 2]
    assert set(passes) == {1, 2}
    assert len(tried) <= 12
    assert max(b - a for a, b in itertools.pairwise(tried)) <= 65
    for _ in range(80):  # NULL-free again: back to the unchecked tier, every batch
        batch = _Counting([{"symbol": "A", "price": 1.0, "qty": 60}] * 10)
        program.process(Batch(batch, range(10)))
        passes.append(batch.passes)
    assert passes[-5:] == [1] * 5
