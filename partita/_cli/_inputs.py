"""``--input [NAME=]PATH``, given once per input: the stream and the tables a query reads.

``--input orders.jsonl`` alone is the query's stream (whatever ``FROM`` names it);
``--input orders=orders.jsonl --input rates=rates.csv`` names each input as the query
does.  Tables (what the query joins) are read whole, now, before the stream starts.
"""

from __future__ import annotations

import os
import re

import attrs

from partita import sql
from partita.actors import TableFileError, read_table
from partita.runtime import Record

from ._exit import EXIT_USAGE, fail
from ._parse import sql_error_exit

__all__ = ["QueryFiles", "query_files"]

_NAMED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.+)", re.DOTALL)


@attrs.frozen
class QueryFiles:
    """The stream's path (``None``: not given), the tables' rows by name, and the
    path of the stream an interval join joins (``None``: none)."""

    stream: str | None
    tables: dict[str, list[Record]]
    joined: str | None = None


def _split(value: str) -> tuple[str | None, str]:
    """``NAME=PATH`` as ``(NAME, PATH)``; a bare path (or an existing file, a URL) as
    ``(None, PATH)``."""
    match = _NAMED.fullmatch(value)
    if match is None or os.path.exists(value):
        return None, value
    return match.group(1), match.group(2)


def query_files(text: str, inputs: tuple[str, ...], *, stream_needed: bool) -> QueryFiles:
    """The inputs of ``--input`` for the query ``text`` (exit 2 with one line when an
    input is unknown, missing, given twice, or a table cannot be read)."""
    try:
        names = sql.query_inputs(text)
    except sql.SqlError as exc:
        sql_error_exit(exc)
    reads = ", ".join(names.names)
    given: dict[str, str] = {}
    for value in inputs:
        name, path = _split(value)
        if name is None:
            name = names.stream
            if name in given:
                fail(
                    f"--input {value}: give each input as NAME=PATH (the query reads {reads})",
                    EXIT_USAGE,
                )
        elif name not in names.names:
            fail(
                f"--input {value}: the query reads no input named {name!r} (it reads {reads})",
                EXIT_USAGE,
            )
        elif name in given:
            fail(f"--input {name}=...: given twice", EXIT_USAGE)
        given[name] = path
    if stream_needed and names.stream not in given:
        fail(f"--input: give the stream the query reads: --input {names.stream}=PATH", EXIT_USAGE)
    tables: dict[str, list[Record]] = {}
    for table in names.tables:
        if table not in given:
            fail(f"the query joins {table!r}: give it as --input {table}=FILE", EXIT_USAGE)
        try:
            tables[table] = read_table(given[table])
        except TableFileError as exc:
            fail(f"--input {table}=...: {exc}", EXIT_USAGE)
    joined = None
    if names.joined is not None:
        if stream_needed and names.joined not in given:
            fail(
                f"the query joins the stream {names.joined!r}: give it as "
                f"--input {names.joined}=FILE",
                EXIT_USAGE,
            )
        joined = given.get(names.joined)
    return QueryFiles(given.get(names.stream), tables, joined)
