"""What the user typed, as values: durations, sizes, the error policy, the query.

Every failure here is a usage error (exit 2) that names the option, or the line
and column of the SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeAlias

import click

from partita import sql
from partita._ui import parse_address
from partita.runtime import OnError, parse_duration_ms, parse_size

from ._exit import EXIT_USAGE, fail

__all__ = [
    "compile_or_exit",
    "duration_option",
    "on_error_option",
    "query_text",
    "schema_or_exit",
    "size_option",
    "sql_error_exit",
    "ui_option",
]

_OptionCallback: TypeAlias = Callable[[click.Context, click.Parameter, str | None], int | None]


def _parsed_option(parse: Callable[[str], int]) -> _OptionCallback:
    """A click callback that parses the option with ``parse`` (``ValueError``: bad parameter)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None

    return callback


duration_option = _parsed_option(parse_duration_ms)
"""``--x DURATION`` in milliseconds: ``250ms``, ``1.5s``, ``2m``; a bare number is ms."""

size_option = _parsed_option(parse_size)
"""``--x SIZE`` in bytes: ``64MB``, ``1GiB``; K/M/G are 1024-based."""


def ui_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, int] | None:
    """``--ui [HOST:]PORT`` as ``(host, port)``; the host defaults to 127.0.0.1."""
    if value is None:
        return None
    try:
        return parse_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def on_error_option(
    ctx: click.Context, param: click.Parameter, value: str
) -> tuple[OnError, str | None]:
    """``--on-error skip|fail|dead-letter:PATH`` as the policy and the dead-letter path."""
    if value == "skip":
        return "skip", None
    if value == "fail":
        return "fail", None
    if value.startswith("dead-letter:") and len(value) > len("dead-letter:"):
        return "dead-letter", value[len("dead-letter:") :]
    raise click.BadParameter(
        f"{value!r} is not one of skip, fail, dead-letter:PATH", ctx, param
    ) from None


def query_text(query: str | None, sql_file: str | None) -> str:
    """The query of ``--sql QUERY`` or ``--sql-file PATH`` (exactly one is given)."""
    if (query is None) == (sql_file is None):
        fail("give the query as --sql QUERY or --sql-file PATH (one of them)", EXIT_USAGE)
    if sql_file is None:
        assert query is not None
        return query
    try:
        with open(sql_file, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        fail(f"cannot read --sql-file {sql_file!r}: {exc.strerror or exc}", EXIT_USAGE)
    except UnicodeDecodeError:
        fail(f"cannot read --sql-file {sql_file!r}: it is not UTF-8 text", EXIT_USAGE)


def schema_or_exit(text: str | None) -> sql.StreamSchema | None:
    """``--schema 'id BIGINT, ...'`` parsed; a bad one is exit 2 naming its column."""
    if text is None:
        return None
    try:
        return sql.parse_schema(text)
    except sql.SqlError as exc:
        fail(f"--schema: column {exc.col}: {exc.message}", EXIT_USAGE)


def sql_error_exit(exc: sql.SqlError) -> NoReturn:
    """A SQL error as one line naming its line and column; exit 2."""
    line = getattr(exc, "line", None)
    col = getattr(exc, "col", None)
    message = getattr(exc, "message", None) or str(exc)
    if line is not None and col is not None:
        fail(f"SQL error at line {line}, column {col}: {message}", EXIT_USAGE)
    fail(f"SQL error: {message}", EXIT_USAGE)


def compile_or_exit(query: str, **options: Any) -> sql.CompiledQuery:
    """Compile ``query`` once; a SQL error is exit 2 naming line and column.

    Options given as ``None`` are left out (the query's own ``CREATE STREAM ... WITH``
    or the defaults apply).
    """
    options = {k: v for k, v in options.items() if v is not None}
    try:
        return sql.compile_query(query, **options)
    except sql.SqlError as exc:
        sql_error_exit(exc)
    except (ValueError, TypeError) as exc:
        fail(f"invalid query options: {exc}", EXIT_USAGE)
