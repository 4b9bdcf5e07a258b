"""Actor state to bytes and back: exact, and safe to load (loading never runs code).

The format is a 9-byte header, then one msgpack document::

    b"PTST"  format version (1 byte)  CRC-32 of the payload (4 bytes, big-endian)  payload

msgpack holds ``None``, ``bool``, 64-bit ``int``, ``float`` (as IEEE double, so NaN
payloads, ``-0.0`` and the infinities survive bit for bit), ``str``, ``bytes``,
``list`` and ``dict`` natively.  What it cannot hold goes into extension types whose
payload is again msgpack (or plain bytes):

======  ================  ==================================================
code    Python            payload
======  ================  ==================================================
0       ``int``           beyond 64 bits: two's complement, big-endian
1       ``str``           not valid UTF-8 (lone surrogates): UTF-8 with
                          ``surrogatepass``
2       ``tuple``         an array of the items
3       ``set``           an array of the elements
4       ``frozenset``     an array of the elements
5       ``dict``          a flat array ``[k0, v0, k1, v1, ...]``, used only
                          when two keys would encode alike (containers
                          holding distinct NaN objects)
======  ================  ==================================================

Types are matched exactly (``type(x) is ...``): a subclass (``bool`` aside, which is
its own type), ``bytearray``, ``OrderedDict`` or anything else is a ``TypeError``
naming the type and where it was.  Tuples stay tuples (as dict keys too), dicts
keep their order, and nothing is ever imported or called by name while loading.

Encoding takes a fast path for almost every state: one C-level scan of the object
graph (``gc.get_referents``, level by level) checks that every value has an allowed
type and that containers nest at most :data:`MAX_STATE_DEPTH` deep, then msgpack's C
``Packer`` (``strict_types=True``) walks it and calls back into Python only for what
needs an extension type (tuples, sets, frozensets, big integers).  The output is the
same format 1 bytes the Python walk writes, except that a dict whose distinct keys
encode alike stays a map (it loads back with every pair, as the keys load as
distinct objects).  Anything else -- a type outside the list, a nesting too deep, a
lone surrogate -- goes through the Python walk, which encodes it or names the
problem and its path.
"""

from __future__ import annotations

import gc
import reprlib
import zlib
from collections.abc import Callable
from typing import Any, Final

import msgpack

from ._errors import CheckpointCorrupt

__all__ = ["MAX_STATE_DEPTH", "STATE_FORMAT_VERSION", "decode_state", "encode_state"]

STATE_FORMAT_VERSION: Final = 1
"""The version byte :func:`encode_state` writes; :func:`decode_state` reads only it."""

MAX_STATE_DEPTH: Final = 100
"""How deeply containers may nest in a state (a list in a dict is depth 2)."""

_MAGIC: Final = b"PTST"
_HEADER: Final = len(_MAGIC) + 1 + 4

_BIGINT, _STR, _TUPLE, _SET, _FROZENSET, _DICT = range(6)
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
_SCALARS: Final = frozenset({type(None), bool, float, bytes})


class _Unsupported(Exception):
    """Raised deep in the walk; each container on the way up adds its step."""

    def __init__(self, problem: str, error: type[Exception]) -> None:
        super().__init__(problem)
        self.problem = problem
        self.error = error
        self.steps: list[str] = []


def encode_state(state: object) -> bytes:
    """Serialize ``state`` (plain Python data) exactly, with a version header and checksum.

    Args:
        state: ``None``, ``bool``, ``int`` (any size), ``float``, ``str``, ``bytes``,
            and ``list``, ``tuple``, ``dict`` (any supported hashable keys), ``set``
            and ``frozenset`` of those, nested up to :data:`MAX_STATE_DEPTH` deep.

    Returns:
        Bytes that :func:`decode_state` turns back into an equal value of the same
        types, floats bit for bit.

    Raises:
        TypeError: ``state`` holds a value of another type; the message names the
            type and its path, e.g. ``state['groups'][3]``.
        ValueError: containers nest deeper than :data:`MAX_STATE_DEPTH` (or refer to
            themselves).

    Example:
        >>> from partita.runtime import decode_state, encode_state
        >>> state = {("a", 1): [1.5, -0.0], None: {frozenset({2**70})}}
        >>> decode_state(encode_state(state)) == state
        True
        >>> encode_state({"when": object()})
        Traceback (most recent call last):
          ...
        TypeError: cannot checkpoint a value of type object at state['when']
    """
    payload = _pack_plain(state) if _is_plain(state) else None
    if payload is None:
        payload = _pack_walked(state)
    header = _MAGIC + bytes([STATE_FORMAT_VERSION]) + zlib.crc32(payload).to_bytes(4, "big")
    return header + payload


def _pack_walked(state: object) -> bytes:
    """The payload through the Python walk: slow, and names any problem with its path."""
    try:
        tree = _walk(state, 1)
    except _Unsupported as exc:
        steps = exc.steps[::-1]
        if len(steps) > 12:
            steps = [*steps[:6], f"...({len(steps) - 10} more)...", *steps[-4:]]
        where = "state" + "".join(steps)
        raise exc.error(f"{exc.problem} at {where}") from None
    payload: bytes = msgpack.packb(tree, use_bin_type=True)
    return payload


def decode_state(data: bytes, *, what: str = "checkpoint state") -> object:
    """Load what :func:`encode_state` wrote.  Never runs code, whatever the bytes.

    Args:
        data: the bytes.
        what: names them in errors (for example ``"checkpoint 7, actor 'partition-3'"``).

    Returns:
        The state, equal to the one encoded and of the same types.

    Raises:
        CheckpointCorrupt: the bytes are truncated, damaged (checksum), of another
            format version, or not partita state at all; the message says which.

    Example:
        >>> from partita.runtime import CheckpointCorrupt, decode_state, encode_state
        >>> decode_state(encode_state((1, "\\ud800")))
        (1, '\\ud800')
        >>> try:
        ...     decode_state(encode_state([1, 2])[:-1])
        ... except CheckpointCorrupt as exc:
        ...     print(exc)
        checkpoint state: checksum mismatch (truncated or damaged)
    """
    view = bytes(data)
    if len(view) < _HEADER:
        raise CheckpointCorrupt(what, f"{len(view)} bytes, too short for a header")
    if view[: len(_MAGIC)] != _MAGIC:
        raise CheckpointCorrupt(
            what, f"not partita state (starts with {view[:4]!r}, expected {_MAGIC!r})"
        )
    version = view[len(_MAGIC)]
    if version != STATE_FORMAT_VERSION:
        raise CheckpointCorrupt(
            what,
            f"state format version {version}; this partita reads version {STATE_FORMAT_VERSION}",
        )
    payload = view[_HEADER:]
    if zlib.crc32(payload).to_bytes(4, "big") != view[len(_MAGIC) + 1 : _HEADER]:
        raise CheckpointCorrupt(what, "checksum mismatch (truncated or damaged)")
    try:
        return _Loader().load(payload)
    except _Malformed as exc:
        raise CheckpointCorrupt(what, str(exc)) from None
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        raise CheckpointCorrupt(what, f"malformed payload ({type(exc).__name__}: {exc})") from exc


# ------------------------------------------------------------------------ encoding

_LEAVES: Final = frozenset({type(None), bool, int, float, str, bytes})
_CONTAINERS: Final = frozenset({list, tuple, dict, set, frozenset})
_ALLOWED: Final = _LEAVES | _CONTAINERS
_EXT_CODES: Final[dict[type, int]] = {tuple: _TUPLE, set: _SET, frozenset: _FROZENSET}


def _is_plain(state: object) -> bool:
    """Whether every value in ``state`` has an allowed type, nested at most the limit.

    One level of the graph at a time, in C: ``gc.get_referents`` yields the items of
    every list, tuple, set and frozenset and the keys and values of every dict (it
    skips the leaves, which refer to nothing).  A value reached by two paths is looked
    at twice, as the walk and the packer would.
    """
    level: list[object] = [state]
    for _ in range(MAX_STATE_DEPTH):
        kinds = set(map(type, level))
        if not kinds <= _ALLOWED:
            return False
        if kinds <= _LEAVES:
            return True
        level = gc.get_referents(*level)
    return _CONTAINERS.isdisjoint(map(type, level))


def _pack_plain(state: object) -> bytes | None:
    """The payload through msgpack's C packer; ``None`` for the Python walk to decide.

    ``state`` passed :func:`_is_plain`.  Lone surrogates are left to the walk (they
    need extension type 1, and the packer refuses them).
    """
    idle: list[msgpack.Packer] = []

    def extension(
        obj: Any,
        codes: dict[type, int] = _EXT_CODES,
        new: Callable[..., msgpack.ExtType] = tuple.__new__,
        ext: type[msgpack.ExtType] = msgpack.ExtType,
    ) -> msgpack.ExtType:
        code = codes.get(type(obj))
        if code is None:  # an int beyond 64 bits: nothing else reaches here
            size = (obj.bit_length() + 8) // 8  # room for the sign bit
            return new(ext, (_BIGINT, obj.to_bytes(size, "big", signed=True)))
        # One packer per nesting level in use: a packer is not reentrant.
        packer = idle.pop() if idle else _packer(extension)
        data = packer.pack(list(obj))
        idle.append(packer)
        return new(ext, (code, data))  # tuple.__new__: ExtType() checks its arguments

    try:
        payload: bytes = _packer(extension).pack(state)
    except UnicodeEncodeError:
        return None
    return payload


def _packer(default: Callable[[Any], object]) -> msgpack.Packer:
    return msgpack.Packer(use_bin_type=True, strict_types=True, default=default)


def _walk(obj: object, depth: int) -> object:
    """``obj`` as msgpack-native values (``ExtType`` for what msgpack lacks)."""
    kind = type(obj)
    if kind in _SCALARS:
        return obj
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise _Unsupported(f"cannot checkpoint a value of type {kind.__qualname__}", TypeError)
    return encoder(obj, depth)


def _int(obj: Any, depth: int) -> object:
    if _INT_MIN <= obj <= _INT_MAX:
        return obj
    size = (obj.bit_length() + 8) // 8  # room for the sign bit
    return msgpack.ExtType(_BIGINT, obj.to_bytes(size, "big", signed=True))


def _str(obj: Any, depth: int) -> object:
    if obj.isascii():
        return obj
    try:
        obj.encode("utf-8")
    except UnicodeEncodeError:
        return msgpack.ExtType(_STR, obj.encode("utf-8", "surrogatepass"))
    return obj


def _items(obj: Any, depth: int) -> list[object]:
    """The encoded members of a list, tuple or set; the failing one's index in the path."""
    if depth > MAX_STATE_DEPTH:
        raise _Unsupported(f"state nested deeper than {MAX_STATE_DEPTH} (a cycle?)", ValueError)
    out: list[object] = []
    append = out.append
    try:
        for item in obj:
            append(_walk(item, depth + 1))
    except _Unsupported as exc:
        exc.steps.append(f"[{len(out)}]" if type(obj) in (list, tuple) else " (an element)")
        raise
    return out


def _list(obj: Any, depth: int) -> object:
    return _items(obj, depth)


def _packed(code: int) -> Callable[[Any, int], object]:
    def encode(obj: Any, depth: int) -> object:
        return msgpack.ExtType(code, msgpack.packb(_items(obj, depth), use_bin_type=True))

    return encode


def _dict(obj: dict[Any, Any], depth: int) -> object:
    if depth > MAX_STATE_DEPTH:
        raise _Unsupported(f"state nested deeper than {MAX_STATE_DEPTH} (a cycle?)", ValueError)
    out: dict[object, object] = {}
    key: object = None
    done_key = False
    try:
        for key, value in obj.items():
            done_key = False
            encoded_key = _walk(key, depth + 1)
            done_key = True
            out[encoded_key] = _walk(value, depth + 1)
    except _Unsupported as exc:
        exc.steps.append(
            f"[{reprlib.repr(key)}]" if done_key else f" (the key {reprlib.repr(key)})"
        )
        raise
    if len(out) == len(obj):
        return out
    # Two distinct keys encoded alike (say two tuples holding distinct NaN objects):
    # keep every pair, in order.
    flat: list[object] = []
    for key, value in obj.items():
        flat.append(_walk(key, depth + 1))
        flat.append(_walk(value, depth + 1))
    return msgpack.ExtType(_DICT, msgpack.packb(flat, use_bin_type=True))


_ENCODERS: Final[dict[type, Callable[[Any, int], object]]] = {
    int: _int,
    str: _str,
    list: _list,
    dict: _dict,
    tuple: _packed(_TUPLE),
    set: _packed(_SET),
    frozenset: _packed(_FROZENSET),
}


# ------------------------------------------------------------------------ decoding


class _Malformed(Exception):
    """The payload is msgpack, but not what :func:`encode_state` writes."""


class _Loader:
    """One decoding: extension payloads unpack recursively, depth counted."""

    def __init__(self) -> None:
        self._depth = 0

    def load(self, payload: bytes) -> object:
        return msgpack.unpackb(
            payload,
            raw=False,
            use_list=True,
            strict_map_key=False,
            timestamp=2,  # msgpack's own timestamp extension loads as an int, nothing else
            ext_hook=self._ext,
        )

    def _ext(self, code: int, data: bytes) -> object:
        if code == _BIGINT:
            if not data:
                raise _Malformed("an empty big integer")
            return int.from_bytes(data, "big", signed=True)
        if code == _STR:
            return data.decode("utf-8", "surrogatepass")
        if code not in (_TUPLE, _SET, _FROZENSET, _DICT):
            raise _Malformed(f"unknown extension type {code}")
        self._depth += 1
        try:
            if self._depth > MAX_STATE_DEPTH:
                raise _Malformed(f"nested deeper than {MAX_STATE_DEPTH}")
            items = self.load(data)
        finally:
            self._depth -= 1
        if type(items) is not list:
            raise _Malformed(f"extension type {code} does not hold an array")
        if code == _TUPLE:
            return tuple(items)
        if code == _SET:
            return set(items)
        if code == _FROZENSET:
            return frozenset(items)
        if len(items) % 2:
            raise _Malformed("a dict of pairs with an odd number of items")
        return dict(zip(items[::2], items[1::2], strict=True))
