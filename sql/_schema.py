"""Declared schemas: ``CREATE STREAM name (col TYPE, ...) WITH (...)`` and ``--schema``.

A schema names an input's columns and their types, and optionally its event-time
column and allowed lateness.  With one, the planner refuses a column the input does not
have (naming the nearest one it does), and the routing stage coerces every record to the
declared types before anything reads it, in one generated loop (see
:func:`gen_coerce`).  A schema belongs to one named input, so a query that reads several
inputs can have one each.
"""

from __future__ import annotations

import difflib
from typing import Literal

import attrs
from sqlglot import exp

from partita.runtime import parse_duration_ms

from ._dialect import node_position, parse
from ._errors import SqlError
from ._source import SourceLines

__all__ = [
    "COLUMN_TYPES",
    "ColumnType",
    "SchemaColumn",
    "StreamSchema",
    "gen_coerce",
    "parse_schema",
    "schema_of_create",
    "unknown_column",
]

ColumnType = Literal["BIGINT", "DOUBLE", "TEXT", "BOOLEAN", "TIMESTAMP"]

_TYPE_NAMES: dict[str, ColumnType] = {
    **dict.fromkeys(["BIGINT", "INT", "INTEGER", "SMALLINT", "TINYINT", "MEDIUMINT"], "BIGINT"),
    **dict.fromkeys(["DOUBLE", "FLOAT", "REAL", "DECIMAL", "NUMERIC"], "DOUBLE"),
    **dict.fromkeys(["TEXT", "VARCHAR", "CHAR", "STRING", "NVARCHAR", "NCHAR"], "TEXT"),
    **dict.fromkeys(["BOOLEAN", "BOOL"], "BOOLEAN"),
    **dict.fromkeys(["TIMESTAMP", "DATETIME", "TIMESTAMPTZ"], "TIMESTAMP"),
}
COLUMN_TYPES: tuple[ColumnType, ...] = ("BIGINT", "DOUBLE", "TEXT", "BOOLEAN", "TIMESTAMP")
"""The types a column may be declared with (``INT``, ``VARCHAR(n)``, ... are aliases)."""

# the Python class a value of each type already has: such a value needs no coercion
_PYTHON_CLASS: dict[ColumnType, str] = {
    "BIGINT": "int",
    "DOUBLE": "float",
    "TEXT": "str",
    "BOOLEAN": "bool",
    "TIMESTAMP": "int",
}
_COERCE_HELPER: dict[ColumnType, str] = {
    "BIGINT": "_as_bigint",
    "DOUBLE": "_as_double",
    "TEXT": "_as_text",
    "BOOLEAN": "_as_boolean",
    "TIMESTAMP": "_as_timestamp",
}


@attrs.frozen
class SchemaColumn:
    """One declared column."""

    name: str
    type: ColumnType


@attrs.frozen
class StreamSchema:
    """The declared columns of one input, and its event time and lateness if given.

    Attributes:
        name: the input's name (``CREATE STREAM orders``); ``None`` for ``--schema``,
            which declares the query's only input whatever its name.
        columns: in declaration order.
        event_time: the event-time column (``WITH (event_time = 'ts')``).
        lateness_ms: the allowed lateness (``WITH (lateness = '5s')``).

    Example:
        >>> s = parse_schema("id BIGINT, cur TEXT, ts TIMESTAMP")
        >>> s.names, s.type_of("ts")
        (('id', 'cur', 'ts'), 'TIMESTAMP')
    """

    name: str | None
    columns: tuple[SchemaColumn, ...]
    event_time: str | None = None
    lateness_ms: int | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in declaration order."""
        return tuple(c.name for c in self.columns)

    def type_of(self, name: str) -> ColumnType | None:
        """The declared type of ``name`` (``None``: no such column)."""
        for column in self.columns:
            if column.name == name:
                return column.type
        return None


def _err(sql: str, node: exp.Expr, message: str) -> SqlError:
    line, col = node_position(node, sql)
    return SqlError(message, line=line, col=col)


def _column_type(kind: exp.Expr | None, sql: str, at: exp.Expr) -> ColumnType:
    name = ""
    if isinstance(kind, exp.DataType):
        name = kind.sql().upper().split("(")[0].strip()
        name = {"DOUBLE PRECISION": "DOUBLE", "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}.get(
            name, name
        )
    found = _TYPE_NAMES.get(name)
    if found is None:
        raise _err(
            sql,
            at,
            f"unsupported column type {name or '(none)'}; use {', '.join(COLUMN_TYPES)}",
        )
    return found


_WITH_KEYS = ("event_time", "lateness")


def schema_of_create(node: exp.Create, sql: str) -> StreamSchema:
    """The schema a parsed ``CREATE STREAM`` declares.

    Raises:
        SqlError: a type, a property or the event-time column is not valid.
    """
    target = node.this
    if not node.meta.get("stream") or not isinstance(target, exp.Schema):
        raise _err(
            sql, node, "only CREATE STREAM name (column TYPE, ...) [WITH (...)] is supported"
        )
    table = target.this
    if not isinstance(table, exp.Table) or table.args.get("db"):
        raise _err(sql, node, "CREATE STREAM takes a plain stream name")
    columns: list[SchemaColumn] = []
    for item in target.expressions:
        if not isinstance(item, exp.ColumnDef):
            raise _err(sql, item, "CREATE STREAM lists columns only: name TYPE, ...")
        if item.args.get("constraints"):
            raise _err(sql, item, "column constraints are not supported in CREATE STREAM")
        name = item.name
        if any(c.name == name for c in columns):
            raise _err(sql, item, f"column {name!r} is declared twice")
        columns.append(SchemaColumn(name, _column_type(item.args.get("kind"), sql, item)))
    if not columns:
        raise _err(sql, node, "CREATE STREAM declares no columns")
    event_time: str | None = None
    lateness: int | None = None
    props = node.args.get("properties")
    for prop in props.expressions if props is not None else ():
        key = prop.name.lower() if isinstance(prop, exp.Property) else ""
        value = prop.args.get("value") if isinstance(prop, exp.Property) else None
        if key not in _WITH_KEYS or not (isinstance(value, exp.Literal) and value.is_string):
            raise _err(
                sql,
                prop,
                "CREATE STREAM ... WITH takes event_time = 'column' and lateness = '5s'",
            )
        if key == "event_time":
            event_time = str(value.this)
        else:
            try:
                lateness = parse_duration_ms(str(value.this), "lateness")
            except ValueError as exc:
                raise _err(sql, prop, str(exc)) from None
    schema = StreamSchema(table.name, tuple(columns), event_time, lateness)
    if event_time is not None and schema.type_of(event_time) is None:
        raise _err(sql, node, unknown_column(event_time, schema))
    return schema


def parse_schema(text: str) -> StreamSchema:
    """A ``--schema`` one-liner: ``'id BIGINT, cur TEXT, ts TIMESTAMP'``.

    Raises:
        SqlError: it is not a list of ``name TYPE``; positions are within ``text``.
    """
    prefix = "CREATE STREAM _ ("
    sql = f"{prefix}{text})"
    try:
        statements = parse(sql)
    except SqlError as exc:
        raise SqlError(exc.message, line=exc.line, col=max(1, exc.col - len(prefix))) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Create):
        raise SqlError("a schema is a list of columns: 'name TYPE, ...'")
    try:
        schema = schema_of_create(statements[0], sql)
    except SqlError as exc:
        col = exc.col - len(prefix) if exc.line == 1 else exc.col
        raise SqlError(exc.message, line=exc.line, col=max(1, col)) from None
    return attrs.evolve(schema, name=None)


def unknown_column(name: str, schema: StreamSchema) -> str:
    """The message for a column ``schema`` does not have, naming the nearest one."""
    stream = repr(schema.name) if schema.name else "the input"
    near = difflib.get_close_matches(name, schema.names, n=1, cutoff=0.6)
    if not near:
        lowered = [n for n in schema.names if n.lower() == name.lower()]
        near = lowered[:1]
    if near:
        return f"unknown column {name!r}; did you mean {near[0]!r}?"
    return f"unknown column {name!r}; {stream} has {', '.join(schema.names)}"


def gen_coerce(schema: StreamSchema, out: SourceLines, name: str = "coerce") -> None:
    """``coerce(records, offsets, on_bad)`` (or ``name``): each record with its
    declared types.

    A record whose values already have them (the common case) is passed on as it is,
    after one class check per column; otherwise it is copied and its values converted
    (a missing column is NULL).  A record that cannot be converted goes to ``on_bad``
    and is left out.  Returns ``(records, skipped indexes)``.
    """
    cols = schema.columns
    out.add(0, f"def {name}(records, offsets, on_bad):")
    out.add(1, "out = []", "append = out.append", "skip = []", "n = len(records)", "i = 0")
    out.add(1, "while i < n:", "    try:")
    out.add(3, "for i in range(i, n):")
    body = out.nested(4)
    body.add(0, "r = records[i]")
    checks: list[str] = []
    for j, column in enumerate(cols):
        body.add(0, f"v{j} = r.get({column.name!r})")
        cls = _PYTHON_CLASS[column.type]
        check = f"v{j}.__class__ is {cls}"
        if column.type == "TIMESTAMP":  # an int below 1e11 is epoch seconds
            check = f"({check} and not -_SECONDS_BELOW < v{j} < _SECONDS_BELOW)"
        checks.append(check)
    body.add(0, f"if not ({' and '.join(checks)}):")
    body.add(1, "r = dict(r)")
    for j, column in enumerate(cols):
        helper = _COERCE_HELPER[column.type]
        body.add(1, f"if not {checks[j]}: r[{column.name!r}] = {helper}(v{j}, {column.name!r})")
    body.add(0, "append(r)")
    out.add(3, "i = n")
    out.add(2, "except Exception as exc:")
    out.add(3, "skip.append(i)", "on_bad(exc, records[i], offsets, i)", "i += 1")
    out.add(1, "return out, skip", "")
