"""JSON lines out: strict JSON, whatever the rows hold, written off the event loop.

Every sink that writes JSON lines (rows, dead letters, the CLI's output) encodes
and writes through here, so they agree on the rules:

* the output is compact strict JSON (``{"a":1,"b":"x"}``, no spaces), UTF-8;
* a float NaN or infinity becomes ``null`` (JSON has no such numbers; Python's
  ``json`` would write a bare ``NaN``); every other number is written so that
  it reads back as the same value (ints as ints, of any size; floats exactly);
* a string holding a lone surrogate (valid JSON input such as ``"\\ud800"``
  decodes to one) is written escaped (``"\\ud800"``), so the line is valid JSON
  and valid UTF-8 and no other row is lost;
* a value JSON has no type for is written as its ``str()`` (bytes as UTF-8
  text, ``datetime`` as ``str(dt)``).

The common case is one ``msgspec`` ``encode_lines`` call per batch, in C, after a
check that every key is a ``str`` and every value a plain JSON value (str, int,
float, bool, None, or lists and dicts of them) -- so msgspec's own ways with other
types (bytes as base64, datetimes in RFC 3339) never apply.  The careful path
(Python's ``json``, a row at a time) runs for the batches that fail the check
and for the rows msgspec refuses (a lone surrogate).
"""

from __future__ import annotations

import errno
import gc
import json
import math
import os
import sys
from collections.abc import Iterable
from typing import IO, Any

import attrs
import msgspec

__all__ = ["JsonLinesWriter", "encode_lines", "encode_row"]


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


_encode = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, default=_default, separators=(",", ":")
).encode
_encode_ascii = json.JSONEncoder(
    ensure_ascii=True, allow_nan=False, default=_default, separators=(",", ":")
).encode


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (containers copied)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _careful(row: Any) -> bytes:
    """One row as a JSON line by Python's ``json`` (the rows msgspec is not given)."""
    try:
        text = _encode(row)
    except ValueError:  # NaN or infinity somewhere in the row
        text = _encode(_finite(row))
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escape it, as JSON allows
        return (_encode_ascii(_finite(row)) + "\n").encode("ascii")


_ENCODER = msgspec.json.Encoder()
_PLAIN = frozenset({str, int, float, bool, type(None)})
_NESTED = frozenset({dict, list, tuple})


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind in _PLAIN:
        return True
    if kind is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if kind is list or kind is tuple:
        return all(map(_plain, value))
    return False


def _referents_are_the_values() -> bool:
    """Whether ``gc.get_referents`` of a dict lists its values alone when every key is
    a ``str`` (CPython's str-keyed dicts), and its keys too otherwise."""

    class _Key(str):
        pass

    return (
        gc.get_referents({"k": 0}) == [0]
        and len(gc.get_referents({1: 0})) == 2
        and len(gc.get_referents({_Key("k"): 0})) == 2
    )


# CPython keeps a dict whose keys are all exact ``str`` in a kind of its own and
# visits only its values when the collector asks; any other key (an int, a str
# subclass) turns the dict into the general kind, whose keys are visited too.  So
# one C call lists every value of a batch of such dicts, and the count says
# whether every key was a str.
_VALUES_BY_REFERENTS = _referents_are_the_values()
_DICT = frozenset({dict})


def _all_plain(rows: list[Any]) -> bool:
    """Every row a dict of ``str`` keys and plain JSON values.

    The common batch (dicts with str keys) is checked with a few C calls over the
    whole batch: the type of every row, every value (``gc.get_referents``) and
    their number; any other batch by :func:`_all_plain_by_iteration`, which gives
    the same answer more slowly.

    Example:
        >>> _all_plain([{"a": 1, "b": [0.5, {"c": None}]}, {"a": "x"}])
        True
        >>> _all_plain([{"a": b"x"}]), _all_plain([{1: 1}]), _all_plain([[1]])
        (False, False, False)
    """
    if _VALUES_BY_REFERENTS and set(map(type, rows)) == _DICT:
        values = gc.get_referents(*rows)
        if len(values) == sum(map(len, rows)):  # no key other than a str
            kinds = set(map(type, values))
            if kinds <= _PLAIN:
                return True
            if kinds - _PLAIN - _NESTED:
                return False
            try:
                return all(_plain(v) for v in values if type(v) in _NESTED)
            except RecursionError:  # nesting too deep
                return False
    return _all_plain_by_iteration(rows)


def _all_plain_by_iteration(rows: list[Any]) -> bool:
    """:func:`_all_plain` for any batch (two passes, in C mostly)."""
    try:
        keys = {type(k) for r in rows for k in r}
        kinds = {type(v) for r in rows for v in r.values()}
        if keys - {str}:
            return False
        if kinds <= _PLAIN:
            return True
        if kinds - _PLAIN - _NESTED:
            return False
        return all(_plain(v) for r in rows for v in r.values() if type(v) in _NESTED)
    except (AttributeError, TypeError, RecursionError):  # not dicts; nesting too deep
        return False


def encode_row(row: Any) -> str:
    """One row as strict JSON text (no newline).

    Example:
        >>> encode_row({"x": float("nan"), "y": [1.5, float("inf")], "s": "é", "n": 2**70})
        '{"x":null,"y":[1.5,null],"s":"é","n":1180591620717411303424}'
        >>> encode_row({"b": b"\\xffab", 1: {2, 3}})
        '{"b":"\ufffdab","1":"{2, 3}"}'
    """
    return encode_lines([row])[:-1].decode("utf-8")


def encode_lines(rows: Iterable[Any]) -> bytes:
    """Rows as JSON lines, UTF-8 encoded, ready to write.

    Example:
        >>> encode_lines([{"a": 1, "b": 0.1}, {"a": "\\ud800"}])
        b'{"a":1,"b":0.1}\\n{"a":"\\\\ud800"}\\n'
    """
    rows = rows if isinstance(rows, list) else list(rows)
    if _all_plain(rows):
        try:
            return _ENCODER.encode_lines(rows)
        except UnicodeEncodeError:  # a lone surrogate: the careful path escapes it
            pass
    return b"".join([_careful(r) for r in rows])


@attrs.define(eq=False)
class JsonLinesWriter:
    """Writes encoded batches to a file or stdout with ``os.write``: no Python buffer.

    Each :meth:`write` is one batch, and it is in the file when ``write`` returns
    (a live run's rows show at once; nothing waits in a buffer at exit).  It
    blocks while the reader does not read, so call it from a worker thread.

    Args:
        path: a file to create or truncate (at the first write), or ``"-"``.

    Attributes:
        length: bytes in the file (those this writer wrote, after ``resume_at``).
        resume_at: when set before the file is opened, the file is not truncated
            but cut back to this many bytes, and writing goes on from there (a
            resume from a checkpoint); a shorter file is an ``OSError``.
    """

    path: str | os.PathLike[str]
    length: int = attrs.field(init=False, default=0)
    resume_at: int | None = attrs.field(init=False, default=None)
    _file: IO[bytes] | None = attrs.field(init=False, default=None)
    _fd: int = attrs.field(init=False, default=-1)

    def resume(self, length: int) -> None:
        """Go on from a checkpoint: the file holds ``length`` committed bytes (the rest
        is cut away when it is opened); :attr:`length` says so from now on."""
        self.resume_at = self.length = length

    def open(self) -> None:
        """Create (truncate) the file now, if it is not open yet."""
        if self._fd >= 0:
            return
        if self.path == "-":
            sys.stdout.flush()
            self._fd = sys.stdout.fileno()
        elif self.resume_at is not None:
            try:
                self._file = open(self.path, "r+b")  # noqa: SIM115
            except FileNotFoundError:
                if self.resume_at:
                    raise OSError(
                        errno.ENOENT,
                        f"is gone, but the checkpoint had written {self.resume_at:,} bytes to it",
                    ) from None
                self._file = open(self.path, "wb")  # noqa: SIM115
            self._fd = self._file.fileno()
            size = os.fstat(self._fd).st_size
            if size < self.resume_at:
                raise OSError(
                    errno.EINVAL,
                    f"has {size:,} bytes, fewer than the {self.resume_at:,} the checkpoint "
                    "wrote: it is not the file the checkpoint was taken of",
                )
            os.ftruncate(self._fd, self.resume_at)
            os.lseek(self._fd, self.resume_at, os.SEEK_SET)
            self.length = self.resume_at
        else:
            self._file = open(self.path, "wb")  # noqa: SIM115
            self._fd = self._file.fileno()

    def write(self, data: bytes) -> None:
        """Write all of ``data`` (raises ``BrokenPipeError`` if the reader is gone)."""
        self.open()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self.length += written

    def close(self) -> None:
        """Close the file (never stdout)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._fd = -1
