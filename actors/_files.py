"""File sources: JSON lines and CSV, read in chunks off the event loop.

Reading happens in a worker thread (``trio.to_thread``) a chunk at a time,
never a blocking call per record on the event loop; parsing happens per
chunk.  Each record's offset (:attr:`runtime.Batch.offsets`, and so
``BadRecord.offset`` and ``DeadLetter.offset`` downstream) is its 1-based line
number in the file (for a CSV row spanning lines, its last line), so an error
anywhere in the graph names the input line.  A malformed line is handled by
the ``on_error`` policy and named by its 1-based line number: skipped and
counted in ``rows_errored``, sent to the dead-letter output (reason
``"line 17: Expecting value: ..."``), or the source fails with
:class:`runtime.BadRecord` naming the line.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import stat
import sys
from collections.abc import Iterator
from typing import IO, Any, BinaryIO

import attrs
import msgspec
import trio

from partita.runtime import BadRecord, CheckpointError, DeadLetter, Record

from ._sources import ErrorPolicy, Parsed, PumpedSource, _check_policy

__all__ = ["CsvSource", "JsonLinesSource", "convert_csv_value"]

_MIN_CHUNK = 1 << 16
_MAX_CHUNK = 1 << 22

InputPath = str | os.PathLike[str] | BinaryIO


def _is_regular(file: IO[Any]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(file.fileno()).st_mode)
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


def _describe(path: InputPath) -> str:
    if isinstance(path, str | os.PathLike):
        return "<stdin>" if path == "-" else os.fspath(path)
    return str(getattr(path, "name", "<stream>"))


def _new_digest() -> Any:
    return hashlib.blake2b(digest_size=16)


def _digest_of_prefix(file: IO[bytes], end: int) -> Any:
    """The digest of the file's first ``end`` bytes (reads them; leaves the file there)."""
    digest = _new_digest()
    file.seek(0)
    left = end
    while left > 0:
        chunk = file.read(min(left, _MAX_CHUNK))
        if not chunk:
            break
        digest.update(chunk)
        left -= len(chunk)
    return digest


@attrs.define(eq=False)
class _FileSource(PumpedSource[Any]):
    path: InputPath
    on_error: ErrorPolicy = attrs.field(default="skip", kw_only=True, validator=_check_policy)
    _line: int = attrs.field(init=False, default=0)
    # the read position: bytes and lines turned into records (or bad records) so far
    _byte: int = attrs.field(init=False, default=0)
    _file: IO[Any] | None = attrs.field(init=False, default=None)
    _owned: bool = attrs.field(init=False, default=False)
    _abandon: bool = attrs.field(init=False, default=False)
    _resume: dict[str, Any] | None = attrs.field(init=False, default=None)
    # of every byte read so far: a resumed read checks the file is the one it read
    _digest: Any = attrs.field(init=False, factory=_new_digest)

    @property
    def resumable(self) -> bool:  # type: ignore[override]
        """A named file resumes at a checkpoint's byte offset; stdin and streams cannot."""
        return isinstance(self.path, str | os.PathLike) and self.path != "-"

    def snapshot_state(self) -> object:
        """The byte offset and line number reached, and a digest of every byte before it."""
        return {"byte": self._byte, "line": self._line, "digest": self._digest.hexdigest()}

    def restore_state(self, state: object) -> None:
        saved: Any = state
        self._resume = dict(saved)
        self._byte = saved["byte"]
        self._line = saved["line"]

    def _seek_to_checkpoint(self, file: IO[Any]) -> None:
        """Go to the checkpoint's offset, if resuming; the file must be the one it read."""
        resume = self._resume
        if resume is None:
            return
        self._resume = None
        where = f"input {_describe(self.path)!r}"
        size = os.fstat(file.fileno()).st_size
        offset = resume["byte"]
        if size < offset:
            raise CheckpointError(
                where,
                f"has {size:,} bytes, fewer than the {offset:,} the checkpoint read: it is "
                "not the file the checkpoint was taken of (start afresh: --fresh)",
            )
        digest = _digest_of_prefix(file, offset)
        if digest.hexdigest() != resume["digest"]:
            raise CheckpointError(
                where,
                f"changed before byte {offset:,}, where the checkpoint resumes: it is not "
                "the file the checkpoint was taken of (start afresh: --fresh)",
            )
        self._digest = digest  # and the file is at ``offset``

    async def _input(self, mode: str) -> IO[Any]:
        """The input, opened once (a restarted source reads on from where it was)."""
        if self._file is None:
            file, owned = await trio.to_thread.run_sync(self._open, mode)
            self._file, self._owned = file, owned
            # A pipe or a terminal can block forever: let cancellation abandon that read.
            self._abandon = not _is_regular(file)
            await trio.to_thread.run_sync(self._seek_to_checkpoint, file)
        return self._file

    def _close(self) -> None:
        if self._file is not None and self._owned:
            self._file.close()

    def _open(self, mode: str) -> tuple[IO[Any], bool]:
        """The file to read and whether this source owns (closes) it."""
        path = self.path
        if isinstance(path, str | os.PathLike):
            if path == "-":
                if "b" in mode:
                    # unbuffered, our own handle on fd 0: a read of a quiet pipe that a
                    # cancel abandons holds no lock of sys.stdin's buffer, which the
                    # interpreter needs to shut down (SIGTERM with a live stdin aborted)
                    return open(0, "rb", buffering=0, closefd=False), True
                return sys.stdin, False
            if "b" in mode:
                return open(path, mode), True
            return open(path, mode, encoding="utf-8", newline=""), True
        if "b" in mode:
            return path, False
        return io.TextIOWrapper(path, encoding="utf-8", newline=""), False

    def describe_offset(self, offset: int) -> str:
        """A file source's records carry their 1-based line number as their offset."""
        return f"at line {offset} of {_describe(self.path)!r}"

    def error_reason(self, letter: DeadLetter) -> str:
        """The kind of a bad line, from its message ("line 3: <message>")."""
        message = letter.reason.partition(": ")[2]
        for start, kind in _REASONS:
            if message.startswith(start):
                return kind
        return self._default_reason

    _default_reason = "bad record"

    def _bad_line(self, line: int, message: str, raw: object) -> DeadLetter:
        reason = f"line {line}: {message}"
        if self.on_error == "fail":
            raise BadRecord(reason, None, self.name)
        return DeadLetter(record=raw, reason=reason, offset=None, stage=self.name)


_REASONS = (
    ("JSON nested too deeply", "nesting too deep"),
    ("expected a JSON object", "not a JSON object"),
    ("'utf-8' codec", "invalid UTF-8"),
    ("invalid UTF-8", "invalid UTF-8"),
    ("line longer than", "line too long"),
    ("expected ", "CSV: wrong number of fields"),
)


@attrs.define(eq=False)
class JsonLinesSource(_FileSource):
    """Reads a file of JSON lines (one object per line), or stdin with ``"-"``.

    Blank lines are skipped.  A line that is not valid JSON, or not a JSON
    object, is handled by ``on_error`` and named by its 1-based line number.

    Example:
        >>> src = JsonLinesSource("source", "trades.jsonl", on_error="dead-letter")

    Args:
        name: unique within its graph.
        path: a file path, ``"-"`` for stdin, or an open binary file (a pipe).
        on_error: ``"skip"`` (count in ``rows_errored``), ``"dead-letter"``, or
            ``"fail"`` (raise :class:`runtime.BadRecord`).
        idle_timeout: seconds of silence (a pipe) before an idle tick.

    Raises:
        runtime.BadRecord: with ``on_error="fail"``, at the first malformed line.
    """

    _default_reason = "invalid JSON"

    # the start of a line whose end has not been read yet, in pieces: joined once,
    # when its newline arrives (joining on every chunk made long lines quadratic)
    _line_start: list[bytes] = attrs.field(init=False, factory=list)

    def drain_limit(self) -> int:
        return 4

    async def pump(self, send: trio.MemorySendChannel[Any]) -> None:
        file = await self._input("rb")
        read = getattr(file, "read1", file.read)
        while True:
            size = max(_MIN_CHUNK, min(_MAX_CHUNK, self.batch_size * 128))
            chunk = await trio.to_thread.run_sync(read, size, abandon_on_cancel=self._abandon)
            if not chunk:
                break
            await self.put(send, chunk)
            del chunk
        self._close()

    def parse(self, items: list[Any], end: bool) -> Parsed:
        pending = self._line_start
        if not end and not any(b"\n" in item for item in items):
            pending += items  # still inside one line: nothing to parse yet
            return [], [], None, None
        data = _join([*pending, *items])
        pending.clear()
        # the complete lines: up to the last newline (at the end, all of it)
        consumed = len(data) if end else data.rfind(b"\n") + 1
        if consumed < len(data):
            pending.append(data[consumed:])
        body = data if consumed == len(data) else data[:consumed]
        del data
        if self.checkpointing:  # checkpoints off: not a byte hashed
            self._digest.update(body)
        self._byte += consumed
        first_line = self._line + 1
        self._line += body.count(b"\n") + end
        records = _decode_objects(body)
        if records is not None:
            return records, [], None, range(first_line, first_line + len(records))
        lines = body.split(b"\n")
        if not end:
            lines.pop()  # the empty piece after the last newline
        return self._parse_lines(lines, first_line)

    def _parse_lines(self, lines: list[bytes], first_line: int) -> Parsed:
        """The careful path, a line at a time: says which line is bad and why (the
        messages are Python's ``json``'s, and so are the values of the lines only
        it reads, such as ``NaN``)."""
        decode = _MSGSPEC.decode
        records: list[Record] = []
        numbers: list[int] = []
        dead: list[DeadLetter] = []
        for index, line in enumerate(lines):
            if not line.strip():
                continue
            number = first_line + index
            try:
                value: Any = decode(line)
            except (msgspec.DecodeError, RecursionError):
                value = _loads(line)  # Python's json: its values, its messages
            if type(value) is dict:
                records.append(value)
                numbers.append(number)
                continue
            if isinstance(value, _Failed):
                message = value.message
            else:
                message = f"expected a JSON object, got {type(value).__name__}"
            raw = line.decode("utf-8", "replace").rstrip("\r")
            try:
                dead.append(self._bad_line(number, message, raw))
            except BadRecord as failure:
                return records, dead, failure, numbers
        return records, dead, None, numbers


@attrs.frozen
class _Failed:
    message: str


def _loads(line: bytes) -> Any:
    """``json.loads(line)``, or why it fails."""
    try:
        return json.loads(line)
    except ValueError as exc:
        return _Failed(str(exc))
    except RecursionError:
        return _Failed("JSON nested too deeply to decode")


_MSGSPEC = msgspec.json.Decoder()


def _decode_objects(body: bytes) -> list[Any] | None:
    r"""Every line of ``body`` decoded, one object per line, in one call; ``None`` when
    a line is not one plain JSON object (then the careful path reads line by line).

    ``decode_lines`` reads whitespace-separated values, not lines: it would take
    ``{"a":\n1}`` as one value and ``{}{}`` as two.  So it is used only when
    every line starts with ``{`` and ends with ``}`` (or ``}\r``): a ``}`` ending a
    line either ends the line's value or must be followed by ``,``, ``}`` or
    ``]`` (no string spans lines), never by the next line's ``{`` -- so no value
    spans lines, every line holds at least one, and as many values as lines
    means exactly one object per line.  The check is two ``bytes.count`` calls
    (every newline between lines is part of a ``}\n{``), a few ms per 4 MB.

    Example:
        >>> _decode_objects(b'{"a": 1}\n{"a": 2.5}\n')
        [{'a': 1}, {'a': 2.5}]
        >>> _decode_objects(b'{"a":\n1}\n{}{}\n') is None
        True
    """
    if not body.startswith(b"{") or not body.endswith((b"}\n", b"}", b"}\r\n", b"}\r")):
        return None
    lines = body.count(b"\n") + (not body.endswith(b"\n"))
    joints = body.count(b"}\n{")  # occurrences cannot overlap
    if b"\r" in body:
        joints += body.count(b"}\r\n{")
    if joints != lines - 1:  # some line does not start with { or end with }
        return None
    try:
        records: list[Any] = _MSGSPEC.decode_lines(body)
    except (msgspec.DecodeError, RecursionError):
        return None  # NaN, 1e400, a lone surrogate, bad JSON: the careful path
    return records if len(records) == lines else None


def _join(pieces: list[bytes]) -> bytes:
    """The one place the reader copies input bytes (a test counts them)."""
    return b"".join(pieces)


def convert_csv_value(text: str) -> Any:
    """A CSV field as a value: ``""`` → ``None``, an int or float when it parses, else the text.

    Example:
        >>> [convert_csv_value(s) for s in ["", "7", "-1.5", "1e3", "inf", "abc"]]
        [None, 7, -1.5, 1000.0, 'inf', 'abc']
    """
    if not text:
        return None
    if text[0] in "+-.0123456789":
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text
    return text


_Row = tuple[int, list[str] | str]  # (line number, fields or an error message)


@attrs.frozen
class _Rows:
    """Rows the reader thread read, and where in the file it stopped (bytes, lines)."""

    rows: list[_Row]
    byte: int
    line: int
    digest: Any


@attrs.define(eq=False)
class CsvSource(_FileSource):
    """Reads a CSV file with a header row; values typed sensibly.

    Values become ``int`` or ``float`` when they parse, ``None`` when empty,
    else stay ``str``.  A row whose field count differs from the header's, or
    that the CSV parser rejects, is handled by ``on_error`` with its line number.

    Example:
        >>> src = CsvSource("source", "trades.csv")

    Args:
        name: unique within its graph.
        path: a file path, ``"-"`` for stdin, or an open binary file.
        on_error: ``"skip"``, ``"dead-letter"`` or ``"fail"``.
        delimiter: the field separator.
    """

    _default_reason = "CSV: unparseable row"

    delimiter: str = attrs.field(default=",", kw_only=True)
    _reader: Any = attrs.field(init=False, default=None)
    _header: list[str] | None = attrs.field(init=False, default=None)
    # physical lines read but not yet part of a parsed row that were not UTF-8
    _undecodable: set[int] = attrs.field(init=False, factory=set)
    _row_end: int = attrs.field(init=False, default=0)
    # what the reader thread has taken from the file: bytes, and the line it resumed at
    _read_bytes: int = attrs.field(init=False, default=0)
    _read_digest: Any = attrs.field(init=False, factory=_new_digest)
    _line_base: int = attrs.field(init=False, default=0)

    def drain_limit(self) -> int:
        return 2

    def snapshot_state(self) -> object:
        """The read position (see :class:`JsonLinesSource`) and the header read."""
        saved: Any = super().snapshot_state()
        return {**saved, "header": self._header}

    def restore_state(self, state: object) -> None:
        super().restore_state(state)
        saved: Any = state
        header = saved["header"]
        self._header = None if header is None else list(header)
        self._read_bytes = self._byte
        self._line_base = self._row_end = self._line

    def _seek_to_checkpoint(self, file: IO[Any]) -> None:
        super()._seek_to_checkpoint(file)
        self._read_digest = self._digest.copy()

    async def pump(self, send: trio.MemorySendChannel[Any]) -> None:
        file = await self._input("rb")
        if self._reader is None:
            self._reader = csv.reader(self._decoded_lines(file), delimiter=self.delimiter)
        while True:
            rows = await trio.to_thread.run_sync(
                self._read_rows, self.batch_size, abandon_on_cancel=self._abandon
            )
            if not rows.rows:
                break
            await self.put(send, rows)
            del rows
        self._close()

    def _decoded_lines(self, file: IO[bytes]) -> Iterator[str]:
        """The input's lines as text: a UTF-8 BOM dropped, undecodable lines noted."""
        undecodable = self._undecodable
        digest = self._read_digest if self.checkpointing else None
        for number, raw in enumerate(file, self._line_base + 1):
            self._read_bytes += len(raw)
            if digest is not None:  # checkpoints off: not a byte hashed
                digest.update(raw)
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                undecodable.add(number)
                yield raw.decode("utf-8", "replace")

    def _read_rows(self, n: int) -> _Rows:
        reader = self._reader
        undecodable = self._undecodable
        rows: list[_Row] = []
        for _ in range(n):
            start = self._row_end
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                fields = str(exc)
            line = self._row_end = self._line_base + reader.line_num
            if undecodable:
                hit = {n for n in undecodable if start < n <= line}
                if hit:
                    undecodable -= hit
                    fields = "invalid UTF-8"
            rows.append((line, fields))
        return _Rows(rows, self._read_bytes, self._row_end, self._read_digest.copy())

    def parse(self, items: list[Any], end: bool) -> Parsed:
        convert = convert_csv_value
        records: list[Record] = []
        numbers: list[int] = []
        dead: list[DeadLetter] = []
        failure: BadRecord | None = None
        for chunk in items:
            # the read position after this chunk: a checkpoint taken once it is sent
            self._byte, self._line, self._digest = chunk.byte, chunk.line, chunk.digest
            for line, fields in chunk.rows:
                if isinstance(fields, str):
                    message = fields
                elif self._header is None:
                    self._header = fields
                    continue
                elif len(fields) == len(self._header):
                    records.append(dict(zip(self._header, map(convert, fields), strict=True)))
                    numbers.append(line)
                    continue
                elif not fields:
                    continue
                else:
                    message = f"expected {len(self._header)} fields, got {len(fields)}"
                try:
                    dead.append(self._bad_line(line, message, fields))
                except BadRecord as exc:
                    failure = exc
                    break
            if failure is not None:
                break
        return records, dead, failure, numbers
