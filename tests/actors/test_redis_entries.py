"""The entry codec of Redis topics: tables for records that share fields, rows otherwise."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from partita.actors._redis_entries import END, RECORDS, TABLE, decode_entry, encode_entry

scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5)
json_values = st.recursive(
    scalars | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)
records = st.dictionaries(st.sampled_from(["a", "b", "c", "ts"]), json_values, max_size=4)


alike = st.fixed_dictionaries({"ts": json_values, "a": json_values})  # a table fits these


@given(st.lists(records, max_size=60) | st.lists(alike, max_size=60), st.booleans())
def test_every_batch_comes_back_as_it_went_in(batch: list[dict[str, Any]], table: bool) -> None:
    decoded = decode_entry(encode_entry(batch, table=table))
    assert decoded == batch
    assert decoded is not None
    assert [list(r) for r in decoded] == [list(r) for r in batch]  # field order kept


def test_records_sharing_fields_go_as_a_table_of_columns() -> None:
    batch = [{"k": i, "v": str(i)} for i in range(100)]
    fields = encode_entry(batch)
    assert list(fields) == [TABLE]
    assert msgpack.unpackb(fields[TABLE]) == [
        [["k", "v"], [list(range(100)), [str(i) for i in range(100)]]]
    ]
    assert len(fields[TABLE]) < len(encode_entry(batch, table=False)[RECORDS])


@pytest.mark.parametrize(
    "batch",
    [
        [{"a": 1}, {"b": 2}, {"c": 3}, {"a": 4}],  # fields vary from record to record
        [{1: "int key"}],
        [{}],
        [],
    ],
)
def test_what_a_table_does_not_fit_goes_as_rows(batch: list[dict[Any, Any]]) -> None:
    assert list(encode_entry(batch)) == [RECORDS]


@pytest.mark.parametrize(
    "body",
    [
        5,
        [5],
        [[["a"]]],
        [[["a"], [[1], [2]]]],  # two columns for one field
        [[["a", "a"], [[1], [2]]]],  # a field twice
        [[["a", "b"], [[1], [2, 3]]]],  # columns of different lengths
        [[[1], [[1]]]],  # a field that is not a name
        [[[], []]],
        [[["a"], [5]]],
    ],
)
def test_a_malformed_table_is_a_bad_entry(body: object) -> None:
    with pytest.raises(ValueError, match="entry is not a table of records"):
        decode_entry({TABLE: msgpack.packb(body)})


def test_bad_bytes_and_missing_fields_are_bad_entries() -> None:
    with pytest.raises(ValueError, match="entry is not msgpack"):
        decode_entry({TABLE: b"\xc1"})
    with pytest.raises(ValueError, match="entry is not an array of maps"):
        decode_entry({RECORDS: msgpack.packb([1, 2])})
    with pytest.raises(ValueError, match="entry has no 't' or 'r' field"):
        decode_entry({b"x": b""})
    assert decode_entry({END: b""}) is None
