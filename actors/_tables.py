"""Read a table whole from a file, before the stream starts: what a query joins.

A table is small enough to hold in memory (it is indexed by its join key once and
shared by every partition).  CSV files (``*.csv``, with a header row; values typed as
:class:`CsvSource` types them) and JSON lines (anything else) are read; a line that
is not a record fails the read, naming the file and the line: a table is not a
stream, and a join against half a table would be silently wrong.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable

from partita.runtime import Record

from ._files import convert_csv_value

__all__ = ["TableFileError", "read_table"]


class TableFileError(ValueError):
    """A table file cannot be read: missing, or a line that is not a record."""


def read_table(path: str | os.PathLike[str]) -> list[Record]:
    """The rows of the table file ``path`` (CSV by its ``.csv`` suffix, else JSON lines).

    Raises:
        TableFileError: the file cannot be read, or a line is not a record.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "rates.csv").write_text("cur,rate\\nEUR,1.1\\nGBP,1.3\\n")
        >>> read_table(folder / "rates.csv")
        [{'cur': 'EUR', 'rate': 1.1}, {'cur': 'GBP', 'rate': 1.3}]
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise TableFileError(f"cannot read table {name!r}: no such file")
    if os.path.isdir(name):
        raise TableFileError(f"cannot read table {name!r}: is a directory")
    try:
        with open(name, encoding="utf-8", newline="") as file:
            if name.lower().endswith(".csv"):
                return _csv_rows(name, file.read().splitlines())
            return _json_rows(name, file)
    except UnicodeDecodeError:
        raise TableFileError(f"cannot read table {name!r}: not UTF-8 text") from None
    except OSError as exc:
        raise TableFileError(f"cannot read table {name!r}: {exc.strerror or exc}") from None


def _csv_rows(name: str, lines: list[str]) -> list[Record]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return []
    rows: list[Record] = []
    for fields in reader:
        if not fields:
            continue
        if len(fields) != len(header):
            raise TableFileError(
                f"table {name!r} line {reader.line_num}: expected {len(header)} fields, "
                f"got {len(fields)}"
            )
        rows.append({k: convert_csv_value(v) for k, v in zip(header, fields, strict=True)})
    return rows


def _json_rows(name: str, file: Iterable[str]) -> list[Record]:
    rows: list[Record] = []
    for number, line in enumerate(file, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise TableFileError(f"table {name!r} line {number}: not valid JSON ({exc})") from None
        if not isinstance(value, dict):
            raise TableFileError(
                f"table {name!r} line {number}: expected a JSON object, got {type(value).__name__}"
            )
        rows.append(value)
    return rows
