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
