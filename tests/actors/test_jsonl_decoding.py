"""JSON-lines decoding: the fast path (msgspec, a chunk per call) reads exactly what
Python's ``json`` reads line by line, with the same offsets and the same messages."""

from __future__ import annotations

import datetime
import decimal
import doctest
import enum
import itertools
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partita.actors import JsonLinesSource, _files, _jsonl
from partita.actors._files import _decode_objects

# Lines chosen to catch a chunk decoder that is not line-aligned or not json's twin:
# values spanning lines, two values on one line, blank lines, CRLF, what only
# Python's json reads (NaN, 1e400, a lone surrogate, a BOM) and what it rejects.
LINES = [
    b'{"a": 1}',
    b'{"a": 1.5, "b": "x"}',
    b'{"big": 123456789012345678901234567890, "neg": -0.0, "f": 0.1}',
    b'{"a": 1}\r',
    b'{"a": {"b": [1, {"c": null}]}}',
    b'{"a":',
    b"1}",
    b"}",
    b'{"a": 1} {"b": 2}',
    b'{"a": 1}{"b": 2}',
    b"",
    b"   ",
    b"\t\r",
    b'{"x": NaN}',
    b'{"x": 1e400}',
    b'{"s": "\\ud800"}',
    b'\xef\xbb\xbf{"a": 1}',
    b'{"s": "\xff"}',
    b"[1, 2]",
    b'"text"',
    b"nope",
    b'{"a": [1,',
    b"2]}",
    b'{"\\u00e9": "\\u2028", "t": true, "f": false}',
    b'{"deep": ' + b"[" * 5000 + b"]" * 5000 + b"}",
]


def _reference(lines: list[bytes]) -> tuple[list[Any], list[tuple[int, str]]]:
    """Python's json, one line at a time: (records, (line, reason) of each bad line)."""
    records: list[Any] = []
    bad: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            bad.append((number, f"line {number}: {exc}"))
            continue
        except RecursionError:
            bad.append((number, f"line {number}: JSON nested too deeply to decode"))
            continue
        if type(value) is dict:
            records.append((number, value))
        else:
            kind = type(value).__name__
            bad.append((number, f"line {number}: expected a JSON object, got {kind}"))
    return records, bad


def _parse_in_chunks(data: bytes, cuts: list[int]) -> tuple[list[Any], list[tuple[int, str]]]:
    source = JsonLinesSource("src", "unused.jsonl", on_error="dead-letter")
    records: list[Any] = []
    bad: list[tuple[int, str]] = []
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    for i, piece in enumerate(pieces):
        end = i == len(pieces) - 1
        rows, dead, failure, offsets = source.parse([piece] if piece else [], end)
        assert failure is None
        if rows:
            assert offsets is not None
            records += zip(offsets, rows, strict=True)
        bad += [(int(d.reason.split(":")[0].split()[1]), d.reason) for d in dead]
    return records, bad


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 is not 1.0; NaN is NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return b != b
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(LINES), max_size=12),
    st.booleans(),
    st.lists(st.integers(min_value=0), max_size=4),
)
def test_chunked_decoding_matches_json_line_by_line(
    lines: list[bytes], final_newline: bool, cuts: list[int]
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    expected = _reference(data.split(b"\n"))
    got = _parse_in_chunks(data, cuts)
    assert got[1] == expected[1]
    assert len(got[0]) == len(expected[0])
    for (n, row), (m, want) in zip(got[0], expected[0], strict=True):
        assert n == m
        assert _same(row, want), (row, want)


def test_fast_path_takes_plain_chunks_and_refuses_misaligned_ones() -> None:
    assert _decode_objects(b'{"a": 1}\r\n{"b": 2}\r\n') == [{"a": 1}, {"b": 2}]
    assert _decode_objects(b'{"a": 1}\n{"b": 2}') == [{"a": 1}, {"b": 2}]
    # one value over two lines and two values on one line: as many values as lines
    assert _decode_objects(b'{"a":\n{}}\n{}{}\n') is None
    assert _decode_objects(b'{"a": 1}\n\n{"b": 2}\n') is None
    assert _decode_objects(b'{"x": NaN}\n') is None


def test_examples_in_the_jsonl_modules() -> None:
    for module in (_files, _jsonl):
        result = doctest.testmod(module, raise_on_error=False, verbose=False)
        assert result.failed == 0
        assert result.attempted >= 2


ROWS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(exclude_categories=[]), max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=4), ROWS, max_size=4), max_size=5))
def test_encoded_lines_read_back_as_the_rows(rows: list[dict[str, Any]]) -> None:
    # ints of any size stay ints, floats round-trip, NaN/infinity become null,
    # lone surrogates are escaped: one valid UTF-8 JSON line per row
    data = _jsonl.encode_lines(rows)
    lines = data.decode("utf-8").split("\n")
    assert lines.pop() == ""
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        back = json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c}"))
        assert _same(back, _jsonl._finite(row))
        assert _jsonl.encode_row(row) == line


class _Color(enum.Enum):
    RED = "r"


class _Size(enum.IntEnum):
    BIG = 3


def test_values_json_has_no_type_for_are_written_as_their_str() -> None:
    # never msgspec's own encodings (bytes as base64, datetimes in RFC 3339)
    when = datetime.datetime(2024, 1, 31, 12, 30, tzinfo=datetime.UTC)
    rows = [
        {"when": when, "raw": b"\xffab", "d": decimal.Decimal("1.50"), "u": uuid.UUID(int=5)},
        {"tags": {"x"}, "c": _Color.RED, "s": _Size.BIG, "t": (1, 2.5), 7: None},
        {"nested": {"k": [when]}},
    ]
    assert _jsonl.encode_lines(rows).decode().splitlines() == [
        '{"when":"2024-01-31 12:30:00+00:00","raw":"\ufffdab","d":"1.50",'
        '"u":"00000000-0000-0000-0000-000000000005"}',
        '{"tags":"{\'x\'}","c":"_Color.RED","s":3,"t":[1,2.5],"7":null}',
        '{"nested":{"k":["2024-01-31 12:30:00+00:00"]}}',
    ]


def _encode_lines_before(rows: list[Any]) -> bytes:
    """``encode_lines`` as it was before the batch check went to C (the oracle)."""
    if _jsonl._all_plain_by_iteration(rows):
        try:
            return _jsonl._ENCODER.encode_lines(rows)
        except UnicodeEncodeError:
            pass
    return b"".join([_jsonl._careful(r) for r in rows])


class _Int(int):
    pass


class _Str(str):
    pass


class _Float(float):
    pass


class _Dict(dict):  # type: ignore[type-arg]
    pass


class _List(list):  # type: ignore[type-arg]
    pass


def _general(row: dict[Any, Any]) -> dict[Any, Any]:
    """The same dict, but of CPython's general kind (a non-str key came and went)."""
    out: dict[Any, Any] = {0: None}
    out.update(row)
    del out[0]
    return out


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63, 2**64, -(2**63) - 1, 2**70])
    | st.floats()
    | st.sampled_from([1e16, 1e-7, 1.5e300, -0.0])
    | st.text(st.characters(exclude_categories=[]), max_size=3)
    | st.binary(max_size=3)
    | st.binary(max_size=3).map(bytearray)
    | st.datetimes()
    | st.dates()
    | st.times()
    | st.timedeltas()
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.sampled_from([_Color.RED, _Size.BIG, _Int(2), _Str("s"), _Float(0.5)])
)
KEYS = st.text(max_size=2) | st.integers(0, 3) | st.sampled_from([_Str("k"), 1.5, None, True])
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.frozensets(st.integers(), max_size=2)
        | st.sets(st.text(max_size=2), max_size=2)
        | st.dictionaries(KEYS, inner, max_size=3)
        | st.dictionaries(st.text(max_size=2), inner, max_size=2).map(_Dict)
        | st.lists(inner, max_size=2).map(_List)
    ),
    max_leaves=6,
)
PLAIN_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=6,
)
ROW = st.one_of(
    st.dictionaries(st.text(max_size=3), PLAIN_VALUES, max_size=4),  # the common batch
    st.dictionaries(st.text(max_size=3), VALUES, max_size=4),
    st.dictionaries(KEYS, VALUES, max_size=3),
    st.dictionaries(st.text(max_size=3), VALUES, max_size=3).map(_general),
    st.dictionaries(st.text(max_size=3), VALUES, max_size=3).map(_Dict),
)


def _outcome(encode: Any, rows: list[Any]) -> Any:
    try:
        return encode(rows)
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)


@settings(max_examples=1000, deadline=None)
@given(st.lists(ROW, max_size=6) | st.lists(st.dictionaries(st.text(max_size=3), PLAIN_VALUES)))
def test_encoded_lines_are_the_bytes_they_were_for_every_kind_of_value(rows: list[Any]) -> None:
    # the check that sends a batch to msgspec or to Python's json answers as before,
    # so every value (1e16 is 1e16 from msgspec, 1e+16 from json) keeps its bytes
    assert _jsonl._all_plain(rows) == _jsonl._all_plain_by_iteration(rows)
    assert _outcome(_jsonl.encode_lines, rows) == _outcome(_encode_lines_before, rows)


def test_the_batch_check_sees_keys_and_values_the_collector_lists() -> None:
    assert _jsonl._VALUES_BY_REFERENTS  # CPython: else every batch takes the slow check
    assert _jsonl._all_plain([{"a": 1, "b": [1.5, {"c": None}]}, {"d": "x"}])
    assert not _jsonl._all_plain([{"a": 1}, {1: 1}])
    assert not _jsonl._all_plain([{"a": 1}, {_Str("a"): 1}])
    assert not _jsonl._all_plain([{"a": 1}, _general({"a": b"x"})])
    assert _jsonl._all_plain([{"a": 1}, _general({"a": 2})])
    assert not _jsonl._all_plain([{"a": [1, {"b": {2}}]}])
    assert not _jsonl._all_plain([{"a": 1}, [("a", 1)]])
    assert not _jsonl._all_plain([{"a": _Int(1)}])
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert not _jsonl._all_plain([{"a": deep}])
