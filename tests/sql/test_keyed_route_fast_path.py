"""The keyed router's one-pass scatter: a batch with a record that has no key, or an
unhashable one, anywhere in it falls back to the careful loop, so on several partitions
the rows, the counts and the dead letters are those of one partition (not routed by key)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partita.sql import compile_query, run_query

QUERIES = {
    "group-by": "SELECT k, COUNT(*) AS n, SUM(x) AS s FROM t GROUP BY k",
    "tumble": (
        "SELECT k, window_start, COUNT(*) AS n, SUM(x) AS s FROM t "
        "GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"
    ),
}

_KEYS = st.one_of(
    st.sampled_from(["a", "b", "c", "d", "e", None]),
    st.just(["unhashable"]),
    st.just(Ellipsis),  # Ellipsis: the record has no "k" at all
)


@st.composite
def _streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Records mostly in event-time order (the one-pass branch of the windowed router),
    with keys now and then missing or unhashable."""
    keys = draw(st.lists(_KEYS, min_size=1, max_size=60))
    ts = 0
    records = []
    for i, key in enumerate(keys):
        ts += draw(st.integers(min_value=0, max_value=400))
        record: dict[str, Any] = {"x": i, "ts": ts}
        if key is not Ellipsis:
            record["k"] = key
        records.append(record)
    return records


def _canon(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(repr(sorted(r.items())) for r in rows)


@pytest.mark.parametrize("name", sorted(QUERIES))
@given(records=_streams(), batch_size=st.integers(min_value=1, max_value=25))
def test_a_bad_key_anywhere_in_a_batch_gives_what_one_partition_gives(
    name: str, records: list[dict[str, Any]], batch_size: int
) -> None:
    query = compile_query(QUERIES[name], on_error="skip")
    one = run_query(query, records, partitions=1, batch_size=batch_size)
    three = run_query(query, records, partitions=3, batch_size=batch_size)
    assert _canon(three.rows) == _canon(one.rows)
    assert three.counts == one.counts
    assert sorted(d.offset for d in three.dead_letters) == sorted(
        d.offset for d in one.dead_letters
    )


def test_a_missing_key_after_the_first_records_leaves_no_record_twice() -> None:
    # the pass has already put records into their partitions' lists when one lacks
    # its key: the careful loop starts from fresh lists, so none is counted twice
    records = [{"k": "a", "x": 1}, {"k": "b", "x": 2}, {"x": 3}, {"k": "a", "x": 4}]
    result = run_query(
        "SELECT k, SUM(x) AS s FROM t GROUP BY k", records, partitions=2, on_error="skip"
    )
    assert _canon(result.rows) == _canon([{"k": "a", "s": 5}, {"k": "b", "s": 2}])
    assert result.counts.errored == 1
