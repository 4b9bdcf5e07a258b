"""JSON lines out: strict JSON, whatever the rows hold, written off the event loop.

Every sink that writes JSON lines (rows, dead letters, the CLI's output) encodes
and writes through here, so they agree on the rules:

* the output is strict JSON: a float NaN or infinity becomes ``null`` (JSON has
  no such numbers; Python's ``json`` would write a bare ``NaN``);
* a string holding a lone surrogate (valid JSON input such as ``"\\ud800"``
  decodes to one) is written escaped (``"\\ud800"``), so the line is valid JSON
  and valid UTF-8 and no other row is lost;
* a value JSON has no type for is written as its ``str()`` (bytes as UTF-8 text).

The common case costs one ``encode`` per row and one UTF-8 encoding per batch;
the careful paths run only for the rows that need them.
"""

from __future__ import annotations

import errno
import json
import math
import os
import sys
from collections.abc import Iterable
from typing import IO, Any

import attrs

__all__ = ["JsonLinesWriter", "encode_lines", "encode_row"]


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=_default).encode
_encode_ascii = json.JSONEncoder(ensure_ascii=True, allow_nan=False, default=_default).encode


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (containers copied)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def encode_row(row: Any) -> str:
    """One row as strict JSON text (no newline).

    Example:
        >>> encode_row({"x": float("nan"), "y": [1.5, float("inf")], "s": "é"})
        '{"x": null, "y": [1.5, null], "s": "é"}'
    """
    try:
        return _encode(row)
    except ValueError:  # NaN or infinity somewhere in the row
        return _encode(_finite(row))


def _line_bytes(row: Any) -> bytes:
    text = encode_row(row) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escape it, as JSON allows
        return (_encode_ascii(_finite(row)) + "\n").encode("ascii")


def encode_lines(rows: Iterable[Any]) -> bytes:
    """Rows as JSON lines, UTF-8 encoded, ready to write.

    Example:
        >>> encode_lines([{"a": 1}, {"a": "\\ud800"}])
        b'{"a": 1}\\n{"a": "\\\\ud800"}\\n'
    """
    rows = rows if isinstance(rows, list) else list(rows)
    try:
        text = "".join([_encode(r) + "\n" for r in rows])
    except ValueError:
        text = "".join([encode_row(r) + "\n" for r in rows])
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return b"".join([_line_bytes(r) for r in rows])


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
