"""A Parquet file sink (pyarrow, the ``parquet`` extra): rows in row groups, bounded memory."""

from __future__ import annotations

import os
from typing import Any, Literal

import attrs
import trio

from partita.runtime import BadRecord, Batch, CheckpointError, Record, Sink

__all__ = ["ParquetSink", "import_pyarrow"]

ParquetOnError = Literal["fail", "skip"]

_INSTALL = "pip install 'partita[parquet]'"


def import_pyarrow() -> tuple[Any, Any]:
    """``pyarrow`` and ``pyarrow.parquet``, imported on first use (an optional extra).

    Raises:
        ImportError: pyarrow is not installed; the message says how to get it.
    """
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise ImportError(f"writing Parquet needs pyarrow: {_INSTALL}") from exc
    return pyarrow, pyarrow.parquet


def _check_on_error(_inst: Any, _attr: Any, value: Any) -> None:
    if value not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {value!r}")


def _check_path(_inst: Any, _attr: Any, value: Any) -> None:
    if value == "-":
        raise ValueError("a Parquet file cannot go to standard output: give a file path")


@attrs.define(eq=False)
class ParquetSink(Sink):
    """Writes rows to a Parquet file, ``row_group_size`` rows to a row group.

    Rows are buffered until a row group is full (at most ``row_group_size`` rows
    held: memory does not grow with the output), then converted and written in a
    worker thread; the last, shorter group and the file's footer are written when
    the input ends.  Needs pyarrow (``pip install 'partita[parquet]'``), imported
    only when the first rows are written.

    The schema is ``schema`` (a ``pyarrow.Schema``) when given, else inferred from
    the first row group: its first row's keys, in order, are the columns, each of
    the type of its first non-NULL value there (a column NULL in every row of that
    group is a string column).
    As with :class:`CsvSink`, a row whose keys are not exactly the schema's is a
    bad record by ``on_error`` (``"fail"``, the default, or ``"skip"``, counted in
    ``rows_errored``), and so is a value the column's type cannot hold (say a
    string in an ``int64`` column).

    Checkpoints: a Parquet file is complete only once its footer is written at
    the end, so this sink **cannot resume**: a graph with checkpoints fails at
    its first checkpoint with a :class:`runtime.CheckpointError` saying so (write
    CSV or JSON lines there).  A run that fails or is cancelled leaves a file with
    no footer, which readers reject.

    Example:
        >>> sink = ParquetSink("sink", "out.parquet", row_group_size=100_000)

    Args:
        name: unique within its graph.
        path: the file to create or truncate (not ``"-"``).
        schema: the file's ``pyarrow.Schema`` (default: inferred).
        row_group_size: rows per row group (>= 1).
        compression: the codec of every column (``"snappy"``, ``"zstd"``, ``"none"``...).
        on_error: what a row that does not fit is: ``"fail"`` or ``"skip"``.

    Attributes:
        rows_written: rows accepted so far (in written row groups or the buffer).
        row_groups: row groups written so far.

    Raises:
        OSError: the file could not be written; its ``strerror`` names the file.
        ImportError: pyarrow is not installed (at the first write).
    """

    path: str | os.PathLike[str] = attrs.field(validator=_check_path)
    schema: Any = attrs.field(default=None, kw_only=True)
    row_group_size: int = attrs.field(
        default=65_536, kw_only=True, validator=attrs.validators.ge(1)
    )
    compression: str = attrs.field(default="snappy", kw_only=True)
    on_error: ParquetOnError = attrs.field(default="fail", validator=_check_on_error, kw_only=True)
    rows_written: int = attrs.field(init=False, default=0)
    row_groups: int = attrs.field(init=False, default=0)
    _buffer: list[Record] = attrs.field(init=False, factory=list)
    _writer: Any = attrs.field(init=False, default=None)

    def snapshot_state(self) -> object:
        """Refused: see the class's docstring."""
        raise CheckpointError(
            f"sink {self.name!r}",
            "a ParquetSink cannot resume from a checkpoint (a Parquet file is complete "
            "only when its footer is written at the end): write CSV or JSON lines, or "
            "run without checkpoints",
        )

    async def consume(self, batch: Batch) -> None:
        records = batch.records
        if not records:
            return
        size = self.row_group_size
        start = 0
        while start < len(records):
            take = size - len(self._buffer)
            self._buffer.extend(records[start : start + take])
            start += take
            if len(self._buffer) >= size:
                await self._write_group()
        del records

    async def _write_group(self) -> None:
        rows, self._buffer = self._buffer, []
        if not rows:
            return
        try:
            written = await trio.to_thread.run_sync(self._write_rows, rows)
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot write output {os.fspath(self.path)!r}: {exc.strerror}"
            ) from None
        skipped = len(rows) - written
        if skipped:
            self.count_error("row does not fit the Parquet schema", skipped)
        self.rows_written += written

    def _write_rows(self, rows: list[Record]) -> int:
        """Convert ``rows`` to one row group and write it (in a worker thread)."""
        pa, pq = import_pyarrow()
        if self._writer is None:
            schema = self.schema if self.schema is not None else _infer(pa, rows)
            self.schema = schema
        schema = self.schema
        names = schema.names
        keys = set(names)
        n = len(names)
        fit = [r for r in rows if len(r) == n and keys.issuperset(r)]
        if len(fit) < len(rows) and self.on_error == "fail":
            bad = next(r for r in rows if not (len(r) == n and keys.issuperset(r)))
            raise BadRecord(_differs(bad, names, keys), None, self.name)
        try:
            table = pa.Table.from_pylist(fit, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            if self.on_error == "fail":
                reason = f"a value does not fit the Parquet schema: {exc}"
                raise BadRecord(reason, None, self.name) from exc
            fit = [r for r in fit if _fits(pa, r, schema)]
            table = pa.Table.from_pylist(fit, schema=schema)
        if self._writer is None:
            self._writer = pq.ParquetWriter(
                os.fspath(self.path), schema, compression=self.compression
            )
        self._writer.write_table(table, row_group_size=self.row_group_size)
        self.row_groups += 1
        return len(fit)

    async def flush(self) -> None:
        await self._write_group()
        if self._writer is None:
            # no rows came: a file with the given schema (or no columns) all the same
            def empty() -> None:
                pa, pq = import_pyarrow()
                schema = self.schema if self.schema is not None else pa.schema([])
                pq.ParquetWriter(os.fspath(self.path), schema).close()

            await trio.to_thread.run_sync(empty)
            return
        writer, self._writer = self._writer, None
        await trio.to_thread.run_sync(writer.close)


def _infer(pa: Any, rows: list[Record]) -> Any:
    """The schema of ``rows``: the first row's keys are the columns, each typed as its
    first non-NULL value in ``rows`` is; a column NULL in every row a string column."""
    fields = []
    for name in rows[0]:
        value = next((r[name] for r in rows if r.get(name) is not None), None)
        kind = pa.string() if value is None else pa.array([value]).type
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def _fits(pa: Any, row: Record, schema: Any) -> bool:
    try:
        pa.Table.from_pylist([row], schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return False
    return True


def _differs(record: Record, names: list[str], keys: set[str]) -> str:
    missing = [c for c in names if c not in record]
    extra = [k for k in record if k not in keys]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(map(repr, missing))}")
    if extra:
        parts.append(f"not in the schema {', '.join(map(repr, extra))}")
    return f"the row's columns differ from the Parquet schema ({'; '.join(parts)})"
