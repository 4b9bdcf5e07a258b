"""The records of a Redis Streams entry: a batch, in rows or in columns.

An entry of a topic holds a batch of records in one of two fields:

- ``t`` (a table, what :func:`encode_entry` writes when records share their
  fields): a msgpack array of runs ``[fields, columns]``, one run per stretch
  of records with the same fields in the same order: ``fields`` the names,
  ``columns`` one array of values per field, all as long as the run.  The
  names are sent once per run, not once per record, and reading builds each
  record in one compiled comprehension (:func:`_builder`) instead of msgpack
  making every key of every record: about half the cost of ``r``.
- ``r`` (rows): a msgpack array of maps, for records whose fields differ from
  one to the next (and for dead letters, which people read).

A partition's end is an entry with field ``end`` (:data:`END`).  Either field
is read by :func:`decode_entry`, so older topics stay readable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import msgpack

from partita.runtime import Record

__all__ = ["END", "RECORDS", "TABLE", "decode_entry", "encode_entry"]

RECORDS = b"r"
TABLE = b"t"
END = b"end"

_MAX_BUILDERS = 256
"""Compiled record builders kept (one per field list); past it the cache starts again."""

_Builder = Callable[[list[Any]], list[Record]]
_builders: dict[tuple[str, ...], _Builder] = {}


def _builder(fields: tuple[str, ...]) -> _Builder:
    """A function making the records of one run from its columns (compiled once per ``fields``).

    The field names are the factory's arguments, never part of the source text.

    Example:
        >>> _builder(("a", "b"))([[1, 2], ["x", "y"]])
        [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'y'}]
    """
    build = _builders.get(fields)
    if build is not None:
        return build
    n = len(fields)
    names = ", ".join(f"f{i}" for i in range(n))
    values = ", ".join(f"v{i}" for i in range(n))
    pairs = ", ".join(f"f{i}: v{i}" for i in range(n))
    source = (
        f"def make({names}):\n"
        f"    def build(columns):\n"
        f"        return [{{{pairs}}} for {values}, in zip(*columns)]\n"
        f"    return build\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<partita-entry:{n} fields>", "exec"), namespace)
    build = cast(_Builder, namespace["make"](*fields))
    if len(_builders) >= _MAX_BUILDERS:
        _builders.clear()
    _builders[fields] = build
    return build


def _runs(records: Sequence[Record]) -> list[tuple[tuple[str, ...], list[Record]]] | None:
    """``records`` as runs of the same fields, ``None`` if a table does not fit them."""
    runs: list[tuple[tuple[str, ...], list[Record]]] = []
    fields: tuple[str, ...] | None = None
    rows: list[Record] = []
    for record in records:
        if type(record) is not dict:
            return None
        these = tuple(record)
        if these != fields:
            if not these or not all(type(f) is str for f in these):
                return None
            fields, rows = these, []
            runs.append((these, rows))
        rows.append(record)
    if len(runs) > 1 + len(records) // 16:  # fields vary from record to record
        return None
    return runs


def encode_entry(records: Sequence[Record], *, table: bool = True) -> dict[bytes, bytes]:
    """One stream entry's fields for a batch of records (see the module docstring).

    Example:
        >>> rows = [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}]
        >>> list(encode_entry(rows)), list(encode_entry(rows, table=False))
        ([b't'], [b'r'])
        >>> decode_entry(encode_entry(rows)) == rows
        True

    Args:
        records: JSON-able maps.
        table: write a table (``t``) if the records share their fields;
            ``False``: always rows (``r``).
    """
    runs = _runs(records) if table and records else None
    if runs is None:
        return {RECORDS: msgpack.packb(list(records), use_bin_type=True)}
    body = [[list(f), [[r[name] for r in rows] for name in f]] for f, rows in runs]
    return {TABLE: msgpack.packb(body, use_bin_type=True)}


def _unpack(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ValueError(f"entry is not msgpack ({type(exc).__name__})") from exc


def _table(data: bytes) -> list[Record]:
    runs = _unpack(data)
    if type(runs) is not list:
        raise ValueError("entry is not a table of records")
    records: list[Record] = []
    for run in runs:
        if type(run) is not list or len(run) != 2:
            raise ValueError("entry is not a table of records")
        fields, columns = run
        if (
            type(fields) is not list
            or not fields
            or type(columns) is not list
            or len(columns) != len(fields)
            or not all(type(f) is str for f in fields)
            or len(set(fields)) != len(fields)
            or not all(type(c) is list and len(c) == len(columns[0]) for c in columns)
        ):
            raise ValueError("entry is not a table of records")
        records += _builder(tuple(fields))(columns)
    return records


def decode_entry(fields: Any) -> list[Record] | None:
    """The records of an entry, ``None`` for an end marker; ``ValueError`` if malformed.

    Example:
        >>> decode_entry({b"end": b""}) is None
        True
        >>> decode_entry({b"r": msgpack.packb([1, 2])})
        Traceback (most recent call last):
        ...
        ValueError: entry is not an array of maps
    """
    if END in fields:
        return None
    data = fields.get(TABLE)
    if data is not None:
        return _table(data)
    data = fields.get(RECORDS)
    if data is None:
        raise ValueError("entry has no 't' or 'r' field")
    records = _unpack(data)
    if type(records) is not list or not all(type(r) is dict for r in records):
        raise ValueError("entry is not an array of maps")
    return records
