"""A CSV file sink: stdlib ``csv``, one header, rows written off the event loop."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from partita.runtime import BadRecord, Batch, Record, Sink

from ._jsonl import JsonLinesWriter, encode_row
from ._sinks import finish_output, write_output

__all__ = ["CsvSink"]

CsvOnError = Literal["fail", "skip"]


def _check_on_error(_inst: Any, _attr: Any, value: Any) -> None:
    if value not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {value!r}")


def _columns(value: Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError("columns must be a sequence of column names, not one str")
    columns = tuple(value)
    if not columns:
        raise ValueError("columns must name at least one column")
    if len(set(columns)) != len(columns):
        raise ValueError(f"columns must be distinct, got {list(columns)!r}")
    return columns


def _cell(value: Any) -> Any:
    """A value as a CSV field: ``None`` empty, booleans ``true``/``false`` (as JSON),
    lists and dicts as JSON text, the rest as ``str()``."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict | list | tuple):
        return encode_row(value)
    return value


@attrs.define(eq=False)
class CsvSink(Sink):
    """Writes rows to a CSV file (or stdout with ``"-"``): a header line, then one line a row.

    The header is ``columns`` when given, else the first row's keys in their order.
    A CSV file has one header, so the columns cannot widen once it is written: a
    row whose keys are not exactly the header's (a key missing, or one more) is a
    bad record, by ``on_error``: ``"fail"`` (the default) fails the graph with a
    :class:`runtime.BadRecord` naming the keys; ``"skip"`` drops it and counts it
    in ``rows_errored`` (reason ``"columns differ from the CSV header"``).  Give
    ``columns`` to pin the file's layout whatever the first row holds.

    Values: ``None`` is an empty field, booleans ``true`` / ``false``, lists and
    dicts their JSON text, everything else its ``str()``; quoting is the ``csv``
    module's (minimal, ``\\r\\n`` line ends as RFC 4180).  Each batch is encoded
    once and written with one call in a worker thread.

    Checkpoints: into a file, exactly-once, as :class:`JsonLinesSink`: the
    checkpoint holds the file's length and the header, and a resumed run cuts the
    file back to that length before writing on.  Into stdout, at-least-once.

    Example:
        >>> sink = CsvSink("sink", "out.csv", columns=["symbol", "n"])

    Args:
        name: unique within its graph.
        path: the file to create or truncate, or ``"-"`` for stdout.
        columns: the header (default: the first row's keys).
        on_error: what a row with other keys is: ``"fail"`` or ``"skip"``.

    Attributes:
        rows_written: rows in the file so far (the header not counted).
        reader_gone: whether the reader of stdout went away.

    Raises:
        OSError: a write failed; its ``strerror`` names the file.
    """

    path: str | os.PathLike[str] = "-"
    columns: tuple[str, ...] | None = attrs.field(default=None, converter=_columns, kw_only=True)
    on_error: CsvOnError = attrs.field(default="fail", validator=_check_on_error, kw_only=True)
    rows_written: int = attrs.field(init=False, default=0)
    reader_gone: bool = attrs.field(init=False, default=False)
    _header: tuple[str, ...] | None = attrs.field(init=False, default=None)
    _writer: JsonLinesWriter = attrs.field(init=False)

    @_writer.default
    def _make_writer(self) -> JsonLinesWriter:
        return JsonLinesWriter(self.path)  # a byte writer; nothing JSON about it

    @property
    def delivery(self) -> Literal["exactly-once", "at-least-once"]:  # type: ignore[override]
        """Exactly-once into a file, at-least-once into stdout."""
        return "at-least-once" if self.path == "-" else "exactly-once"

    @property
    def header(self) -> tuple[str, ...] | None:
        """The columns the file has (``None``: no row came yet, and none were given)."""
        return self._header if self._header is not None else self.columns

    def snapshot_state(self) -> object:
        """The file's length at the barrier, the rows in it and its header."""
        header = None if self._header is None else list(self._header)
        return {"bytes": self._writer.length, "rows": self.rows_written, "header": header}

    def restore_state(self, state: object) -> None:
        saved: Any = state
        self.rows_written = saved["rows"]
        header = saved["header"]
        self._header = None if header is None else tuple(header)
        if self.path != "-":
            self._writer.resume(saved["bytes"])

    def encode(self, batch: Batch) -> tuple[bytes, tuple[str, ...], int]:
        """The CSV text of ``batch`` (after the header, if none was written yet), UTF-8
        encoded; the header; and how many rows it skipped.  Changes nothing on ``self``.

        Raises:
            BadRecord: a row's keys are not the header's and ``on_error`` is ``"fail"``
                (naming the row's source offset when the batch has it).
        """
        records = batch.records
        out = io.StringIO()
        writer = csv.writer(out)
        header = self._header
        if header is None:
            header = self.columns if self.columns is not None else tuple(records[0])
            writer.writerow(header)
        keys = set(header)
        n = len(header)
        rows = []
        for index, record in enumerate(records):
            if len(record) != n or not keys.issuperset(record):
                if self.on_error == "fail":
                    reason = _differs(record, header, keys)
                    raise BadRecord(reason, batch.offset_of(index), self.name)
                continue
            rows.append([_cell(record[c]) for c in header])
        writer.writerows(rows)
        data = out.getvalue().encode("utf-8", "surrogateescape")
        return data, header, len(records) - len(rows)

    async def consume(self, batch: Batch) -> None:
        if not batch.records:
            return
        data, header, skipped = self.encode(batch)
        await self._write(data)
        self._header = header
        if skipped:
            self.count_error("columns differ from the CSV header", skipped)
        self.rows_written += len(batch.records) - skipped

    async def _write(self, data: bytes) -> None:
        await write_output(self, self._writer, data)

    async def flush(self) -> None:
        if self._header is None and self.columns is not None:
            # no rows came: the file still has its header
            out = io.StringIO()
            csv.writer(out).writerow(self.columns)
            await self._write(out.getvalue().encode("utf-8", "surrogateescape"))
            self._header = self.columns
        await finish_output(self, self._writer)


def _differs(record: Record, header: tuple[str, ...], keys: set[str]) -> str:
    missing = [c for c in header if c not in record]
    extra = [k for k in record if k not in keys]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(map(repr, missing))}")
    if extra:
        parts.append(f"not in the header {', '.join(map(repr, extra))}")
    return f"the row's columns differ from the CSV header ({'; '.join(parts)})"
