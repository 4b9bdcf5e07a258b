"""The state codec: exact round trips (types and float bits too), clear errors, safe loading."""

from __future__ import annotations

import contextlib
import doctest
import math
import struct
import zlib
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from partita.runtime import (
    MAX_STATE_DEPTH,
    STATE_FORMAT_VERSION,
    CheckpointCorrupt,
    CheckpointError,
    _state_codec,
    decode_state,
    encode_state,
)

# ------------------------------------------------------------------ the comparison


def identical(a: object, b: object) -> bool:
    """Equal, of the same types all the way down, floats bit for bit, dicts in order."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return struct.pack("<d", a) == struct.pack("<d", b)  # type: ignore[arg-type]
    if type(a) in (list, tuple):
        assert isinstance(a, list | tuple) and isinstance(b, list | tuple)
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        assert isinstance(a, dict) and isinstance(b, dict)
        return len(a) == len(b) and all(
            identical(ka, kb) and identical(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if type(a) in (set, frozenset):
        assert isinstance(a, set | frozenset) and isinstance(b, set | frozenset)
        # Iteration order is the table's business; match elements one to one.
        rest = list(b)
        for x in a:
            match = next((i for i, y in enumerate(rest) if identical(x, y)), None)
            if match is None:
                return False
            del rest[match]
        return not rest
    return a == b


def test_identical_tells_apart_what_equality_does_not() -> None:
    assert not identical(0.0, -0.0)
    assert not identical(1, True)
    assert not identical(1, 1.0)
    assert not identical((1,), [1])
    assert not identical({1: 0, 2: 0}, {2: 0, 1: 0})
    assert not identical({frozenset()}, {()})
    quiet, other = math.nan, struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0]
    assert not identical(quiet, other)
    assert identical({(1, "a"): [quiet]}, {(1, "a"): [quiet]})


# ------------------------------------------------------------------ the strategies

INTS = st.integers() | st.integers(-(2**200), 2**200) | st.sampled_from([2**63, 2**64 - 1, 2**64])


def _from_bits(bits: int) -> float:
    value: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return value


# Any 64-bit pattern: NaNs with payloads and signs, subnormals, -0.0, the infinities.
FLOATS = (
    st.floats()
    | st.sampled_from([-0.0, math.inf, -math.inf])
    | st.integers(0, 2**64 - 1).map(_from_bits)
)
TEXT = st.text(st.characters(exclude_categories=()), max_size=8) | st.sampled_from(
    ["\ud800", "a\udfffb", "é\ud83d"]
)
SCALARS = st.none() | st.booleans() | INTS | FLOATS | TEXT | st.binary(max_size=8)
HASHABLE = st.recursive(
    SCALARS,
    lambda inner: (
        st.tuples(inner, inner)
        | st.lists(inner, max_size=3).map(tuple)
        | st.frozensets(inner, max_size=3)
    ),
    max_leaves=8,
)
STATES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(HASHABLE, inner, max_size=4)
        | st.sets(HASHABLE, max_size=4)
        | st.frozensets(HASHABLE, max_size=4)
    ),
    max_leaves=30,
)


@given(STATES)
def test_every_state_round_trips_exactly(state: object) -> None:
    data = encode_state(state)
    assert identical(decode_state(data), state)


@given(STATES)
def test_the_fast_path_loads_as_the_walk_does(state: object) -> None:
    walked = encode_state(None)[:5]
    walked += zlib.crc32(payload := _state_codec._pack_walked(state)).to_bytes(4, "big") + payload
    assert identical(decode_state(encode_state(state)), decode_state(walked))


def test_python_runs_per_extension_value_not_per_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # A plain state never reaches the Python walk, and msgpack's packer calls back
    # once per tuple, set, frozenset or big int: the cost of the rest is C's.
    def no_walk(obj: object, depth: int) -> object:
        raise AssertionError("the Python walk ran")

    calls: list[type] = []
    packer = _state_codec._packer

    def counting(default: Any) -> msgpack.Packer:
        def count(obj: object) -> object:
            calls.append(type(obj))
            return default(obj)

        return packer(count)

    monkeypatch.setattr(_state_codec, "_walk", no_walk)
    monkeypatch.setattr(_state_codec, "_packer", counting)
    state = {f"k{i}": [i, i / 3, "é", None, b"b", {"n": -i}] for i in range(1000)}
    state["ext"] = [(1, "a"), {2}, frozenset({((3,),)}), 2**70]
    assert identical(decode_state(encode_state(state)), state)
    assert sorted(calls, key=str) == sorted([tuple] * 3 + [set, frozenset, int], key=str)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_are_corrupt_or_state(data: bytes) -> None:
    with contextlib.suppress(CheckpointCorrupt):
        decode_state(data)


def _framed(payload: bytes) -> bytes:
    """``payload`` behind a valid header: what a bug or a crafted file could hold."""
    return (
        b"PTST" + bytes([STATE_FORMAT_VERSION]) + zlib.crc32(payload).to_bytes(4, "big") + payload
    )


@given(st.binary(max_size=64) | STATES.map(lambda s: encode_state(s)[9:]), st.data())
def test_arbitrary_payloads_behind_a_valid_header_are_corrupt_or_state(
    payload: bytes, data: st.DataObject
) -> None:
    if payload and data.draw(st.booleans()):  # damage a valid payload in one byte
        at = data.draw(st.integers(0, len(payload) - 1))
        payload = payload[:at] + bytes([data.draw(st.integers(0, 255))]) + payload[at + 1 :]
    with contextlib.suppress(CheckpointCorrupt):
        decode_state(_framed(payload))


# ------------------------------------------------------------------ the edges


@pytest.mark.parametrize(
    "state",
    [
        None,
        True,
        0,
        -(2**63),
        2**64 - 1,
        2**64,
        -(2**63) - 1,
        -(2**1000),
        math.nan,
        -0.0,
        math.inf,
        "\ud800",
        "\ud83d\ude00",  # a surrogate pair stays two code points
        b"",
        (),
        ((),),
        {(1, 2): "a", 1.5: None, None: 1, "k": 2, (): 3, frozenset({1}): 4, b"b": 5},
        {frozenset({(1,), 2}), ("x", None)},
        [{1: {2: [3, (4, {5})]}}],
    ],
)
def test_edges_round_trip(state: object) -> None:
    assert identical(decode_state(encode_state(state)), state)


def test_distinct_nan_keys_that_encode_alike_keep_every_pair() -> None:
    state = {(float("nan"),): 1}
    state[(float("nan"),)] = 2  # tuples of distinct NaN objects: two keys
    assert len(state) == 2
    assert identical(decode_state(encode_state(state)), state)


def test_nesting_up_to_the_limit_works_and_beyond_it_fails_clearly() -> None:
    deep: list[Any] = []
    for _ in range(MAX_STATE_DEPTH - 1):
        deep = [deep]
    assert identical(decode_state(encode_state(deep)), deep)
    tuples: Any = ()
    for _ in range(MAX_STATE_DEPTH - 1):
        tuples = (tuples,)
    assert identical(decode_state(encode_state(tuples)), tuples)
    with pytest.raises(
        ValueError, match=r"^state nested deeper than 100 \(a cycle\?\) at state\[0\]"
    ):
        encode_state([deep])
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="nested deeper than 100"):
        encode_state(cycle)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (object(), r"^cannot checkpoint a value of type object at state$"),
        ({"g": [1, {3: (1, bytearray())}]}, r"type bytearray at state\['g'\]\[1\]\[3\]\[1\]$"),
        ({"g": {3j: 1}}, r"type complex at state\['g'\] \(the key 3j\)$"),
        ({"s": {1, 2.5j}}, r"type complex at state\['s'\] \(an element\)$"),
        ([memoryview(b"x")], r"type memoryview at state\[0\]$"),
        ({"x": msgpack.ExtType(2, b"")}, r"type ExtType at state\['x'\]$"),
    ],
)
def test_other_types_are_refused_naming_type_and_path(state: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        encode_state(state)


def test_subclasses_are_refused_so_types_stay_exact() -> None:
    import collections
    import enum

    class Colour(enum.IntEnum):
        RED = 1

    for value in (collections.OrderedDict(), collections.defaultdict(list), Colour.RED):
        with pytest.raises(TypeError, match=type(value).__qualname__):
            encode_state([value])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"^checkpoint state: 0 bytes, too short for a header$"),
        (b"PTST\x01\x00", "too short for a header"),
        (b"\x80\x04\x95" + bytes(20), r"not partita state \(starts with b'\\x80\\x04\\x95\\x00'"),
        (b"PTST\x02" + bytes(8), "state format version 2; this partita reads version 1"),
        (encode_state([1, 2, 3])[:-1], r"checksum mismatch \(truncated or damaged\)$"),
        (_framed(b"\xc1"), r"malformed payload"),
        (_framed(msgpack.packb([1, 2]) + b"\x00"), r"malformed payload \(ExtraData"),
        (_framed(msgpack.packb(msgpack.ExtType(9, b""))), "unknown extension type 9$"),
        (_framed(msgpack.packb(msgpack.ExtType(2, msgpack.packb(1)))), "does not hold an array"),
        (_framed(msgpack.packb(msgpack.ExtType(0, b""))), "an empty big integer"),
        (_framed(msgpack.packb(b"\xa1\xed\xa0\x80")[:0] + b"\xa3\xed\xa0\x80"), "malformed"),
        (
            _framed(msgpack.packb({msgpack.ExtType(3, msgpack.packb([1])): 1})),
            r"malformed payload \(TypeError",
        ),
    ],
)
def test_corrupt_bytes_say_what_was_wrong(data: bytes, message: str) -> None:
    with pytest.raises(CheckpointCorrupt, match=message) as caught:
        decode_state(data)
    assert isinstance(caught.value, CheckpointError)


def test_errors_name_what_was_decoded() -> None:
    with pytest.raises(CheckpointCorrupt, match=r"^checkpoint 7, actor 'p-3': checksum"):
        decode_state(encode_state("x")[:-1], what="checkpoint 7, actor 'p-3'")


def test_deeply_nested_extensions_in_crafted_bytes_are_corrupt_not_a_crash() -> None:
    payload = msgpack.packb([])
    for _ in range(MAX_STATE_DEPTH + 5):
        payload = msgpack.packb(msgpack.ExtType(2, payload))
    with pytest.raises(CheckpointCorrupt, match="nested deeper than 100"):
        decode_state(_framed(payload))


def test_msgpack_timestamps_in_crafted_bytes_load_as_plain_ints() -> None:
    payload = msgpack.packb(msgpack.Timestamp(1, 5), datetime=False)
    assert decode_state(_framed(payload)) == 1_000_000_005


def test_the_header_carries_the_format_version() -> None:
    data = encode_state({})
    assert data[:4] == b"PTST"
    assert data[4] == STATE_FORMAT_VERSION == 1


def test_docstring_examples() -> None:
    # CheckpointError's example runs in tests/test_facade.py: it reports ``partita``.
    failures, attempted = doctest.testmod(_state_codec, raise_on_error=False, verbose=False)
    assert failures == 0
    assert attempted > 0
