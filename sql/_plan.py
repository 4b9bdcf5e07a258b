"""Logical planning: validate a parsed SELECT and reduce it to a small plan.

The plan is a handful of logical operators (scan, filter, project or aggregate with an
optional group window, having, emit).  Everything the streaming engine cannot run is
rejected here, before anything runs, with the line and column of the construct and what
is supported instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Literal, TypeVar

import attrs
from sqlglot import exp

from partita.runtime import Record

from ._dialect import (
    Cumulate,
    GracePeriod,
    Hop,
    Session,
    Tumble,
    WindowBound,
    WindowClause,
    node_position,
    parse,
)
from ._errors import SqlError
from ._interval_join import IntervalJoin, plan_interval_join
from ._join import TableJoin, resolve_joins
from ._schema import StreamSchema, schema_of_create, unknown_column
from ._temporal_join import TemporalJoin, plan_temporal_join

__all__ = ["AggregateCall", "LogicalPlan", "OutputColumn", "WindowSpec", "plan_query"]

AggFunc = Literal["count_star", "count", "count_distinct", "sum", "avg", "min", "max"]
WindowKind = Literal["tumble", "hop", "cumulate", "session"]

SUPPORTED_CLAUSES = (
    "SELECT <expressions> FROM <stream> [[LEFT] JOIN <table> ON ...] [WHERE ...] "
    "[GROUP BY ... [, TUMBLE|HOP|CUMULATE|SESSION(...)]] "
    "[HAVING ...] [WINDOW TUMBLING|SLIDING|CUMULATE|SESSION(...)] [EMIT CHANGES|FINAL]"
)

_UNSUPPORTED_MODIFIERS = {
    "joins": "this JOIN is not supported; join a table: FROM s JOIN t ON s.k = t.k",
    "laterals": "LATERAL is not supported",
    "order": "ORDER BY is not supported on an unbounded stream; rows come out in source order "
    "per key",
    "offset": "OFFSET is not supported on a stream",
    "qualify": "QUALIFY is not supported",
    "windows": "named WINDOW clauses are not supported; use GROUP BY ..., TUMBLE/HOP/SESSION(...) "
    "or WINDOW TUMBLING|SLIDING|SESSION(...)",
    "with_": "WITH (common table expressions) is not supported",
    "sample": "TABLESAMPLE is not supported",
    "locks": "locking clauses are not supported",
    "prewhere": "PREWHERE is not supported",
    "cluster": "CLUSTER BY is not supported",
    "distribute": "DISTRIBUTE BY is not supported",
    "sort": "SORT BY is not supported",
    "connect": "CONNECT BY is not supported",
    "match": "MATCH_RECOGNIZE is not supported",
    "into": "SELECT INTO is not supported",
    "kind": "this SELECT form is not supported",
    "hint": "query hints are not supported",
}

_UNITS_MS = {
    "MILLISECOND": 1,
    "MILLISECONDS": 1,
    "MS": 1,
    "SECOND": 1000,
    "SECONDS": 1000,
    "S": 1000,
    "MINUTE": 60_000,
    "MINUTES": 60_000,
    "M": 60_000,
    "HOUR": 3_600_000,
    "HOURS": 3_600_000,
    "H": 3_600_000,
    "DAY": 86_400_000,
    "DAYS": 86_400_000,
    "D": 86_400_000,
}


@attrs.frozen
class WindowSpec:
    """A group window on an event-time column (epoch ms or ISO-8601 strings).

    ``size_ms`` is the window size (TUMBLE, HOP, CUMULATE) or the session gap (SESSION);
    ``slide_ms`` is the HOP slide or the CUMULATE step (equal to ``size_ms`` for TUMBLE, 0
    for SESSION).  A CUMULATE window starts at a multiple of ``size_ms`` and is emitted
    every step: ``[start, start + k * slide_ms)`` for ``k = 1 .. size_ms / slide_ms``.
    """

    kind: WindowKind
    time_column: str
    size_ms: int
    slide_ms: int

    def __str__(self) -> str:
        if self.kind == "tumble":
            return f"TUMBLE({self.time_column}, {self.size_ms} ms)"
        if self.kind == "hop":
            return f"HOP({self.time_column}, slide {self.slide_ms} ms, size {self.size_ms} ms)"
        if self.kind == "cumulate":
            return f"CUMULATE({self.time_column}, step {self.slide_ms} ms, size {self.size_ms} ms)"
        return f"SESSION({self.time_column}, gap {self.size_ms} ms)"


@attrs.frozen(eq=False)
class AggregateCall:
    """One aggregate the query computes, deduplicated by its SQL text."""

    func: AggFunc
    arg: exp.Expr | None
    text: str


@attrs.frozen(eq=False)
class OutputColumn:
    """One output column: its name in the row and the expression computing it."""

    name: str
    expr: exp.Expr


@attrs.frozen(eq=False)
class LogicalPlan:
    """Scan -> Filter -> Project | Aggregate(window) -> Having -> Emit.

    ``star`` means ``SELECT *`` (the record's own fields come first in each row).
    ``distinct``: ``SELECT DISTINCT``, planned as a GROUP BY of every selected
    expression whose groups emit one row each, the first time they are seen (or, with
    a window and ``EMIT FINAL``, when it closes).  ``limit``: the run stops after this
    many rows (``LIMIT n``).  ``schema``: the declared schema of the input (``None``:
    undeclared, records are read as they come).  ``lateness_ms``: the query's own
    allowed lateness (``GRACE PERIOD``), if it gives one.  ``retract``: ``EMIT CHANGES
    WITH RETRACTIONS``: a changed group first emits its old row with ``"_retract": True``.
    ``joins``: the tables joined to the stream (:class:`sql._join.TableJoin`); the
    other expressions read the joined record (a table's column ``r.rate`` is its field
    ``"r.rate"``).  ``interval_join``: the stream joined to the ``FROM`` stream within
    an interval (:class:`sql._interval_join.IntervalJoin`), read the same way;
    ``temporal_join``: the changelog joined to it as of its event time
    (:class:`sql._temporal_join.TemporalJoin`), read the same way.
    """

    source: str
    star: bool
    outputs: tuple[OutputColumn, ...]
    where: exp.Expr | None
    group_keys: tuple[exp.Expr, ...]
    aggregates: tuple[AggregateCall, ...]
    having: exp.Expr | None
    window: WindowSpec | None
    emit: Literal["changes", "final"]
    source_alias: str = ""
    distinct: bool = False
    limit: int | None = None
    schema: StreamSchema | None = None
    lateness_ms: int | None = None
    retract: bool = False
    joins: tuple[TableJoin, ...] = ()
    interval_join: IntervalJoin | None = None
    temporal_join: TemporalJoin | None = None

    @property
    def stream_join(self) -> IntervalJoin | TemporalJoin | None:
        """The other stream joined to the ``FROM`` stream (interval or temporal), if any."""
        return self.interval_join if self.interval_join is not None else self.temporal_join

    @property
    def aggregated(self) -> bool:
        """Whether the query keeps group state (GROUP BY, aggregates or a window)."""
        return bool(self.group_keys or self.aggregates or self.window)

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The record fields the query reads, in order of first use.

        Those of the event time, WHERE, the group keys and the aggregates'
        arguments (of the projection too when the query does not aggregate).

        Example:
            >>> plan_query("SELECT k, SUM(v) AS s FROM t WHERE x > 0 GROUP BY k").input_columns
            ('x', 'k', 'v')
        """
        names = [] if self.window is None else [self.window.time_column]
        read: list[exp.Expr | None] = [k for j in self.joins for k in j.stream_keys]
        read += [self.where, *self.group_keys]
        read += [call.arg for call in self.aggregates]
        if not self.aggregated:
            read += [column.expr for column in self.outputs]
        for node in read:
            if node is not None:
                names += [column.name for column in node.find_all(exp.Column)]
        joined = {field for j in self.joins for _, field in j.fields}
        return tuple(n for n in dict.fromkeys(names) if n not in joined)

    def __str__(self) -> str:
        cols = ", ".join(["*"] * self.star + [f"{c.expr.sql()} AS {c.name}" for c in self.outputs])
        lines = [f"Emit({self.emit.upper()}{' WITH RETRACTIONS' * self.retract})"]
        if self.limit is not None:
            lines.insert(0, f"Limit({self.limit})")
        if self.distinct:
            lines.append("Distinct")
        if self.having is not None:
            lines.append(f"Having({self.having.sql()})")
        if self.aggregated:
            keys = ", ".join(k.sql() for k in self.group_keys) or "<global>"
            aggs = ", ".join(a.text for a in self.aggregates) or "-"
            window = f" window={self.window}" if self.window else ""
            lines.append(f"Aggregate(select=[{cols}] keys=[{keys}] aggs=[{aggs}]{window})")
        else:
            lines.append(f"Project({cols})")
        if self.where is not None:
            lines.append(f"Filter({self.where.sql()})")
        for join in reversed(self.joins):
            on = " AND ".join(
                f"{k.sql()} = {join.alias}.{c}"
                for k, c in zip(join.stream_keys, join.table_keys, strict=True)
            )
            lines.append(f"{join.kind.title()}Join({join.table} AS {join.alias} ON {on})")
        lines.append(f"Scan({self.source})")
        return "\n".join("  " * i + line for i, line in enumerate(lines))


def _err(sql: str, node: exp.Expr | None, message: str) -> SqlError:
    line, col = node_position(node, sql) if node is not None else (1, 1)
    return SqlError(message, line=line, col=col)


MAX_EXPRESSION_DEPTH = 64
"""How deeply expressions may nest (``((a))``, ``a + b + ...`` terms): deeper is a SqlError."""


def _check_depth(statement: exp.Expr, sql: str) -> None:
    """Refuse, with its position, an expression nested past :data:`MAX_EXPRESSION_DEPTH`."""
    stack: list[tuple[exp.Expr, int]] = [(statement, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPRESSION_DEPTH + 4:  # a SELECT item sits ~4 levels down
            raise _err(
                sql,
                node,
                f"expression nested too deeply (more than {MAX_EXPRESSION_DEPTH} levels of "
                "operators or parentheses); split it with a subexpression per column",
            )
        stack.extend((child, depth + 1) for child in node.iter_expressions())


def interval_ms(node: exp.Expr, sql: str, what: str = "a window size") -> int:
    """Milliseconds of ``INTERVAL '1' SECOND`` (or of a bare integer literal, in ms).

    ``what`` names the value in errors; a window size must be positive, other
    intervals (``ts + INTERVAL ...``) may be zero.
    """
    if isinstance(node, exp.Literal) and not node.is_string:
        if not str(node.this).isdigit():
            raise _err(sql, node, f"{what} in milliseconds must be an integer, got {node.this}")
        value = int(node.this)
    elif isinstance(node, exp.Interval):
        unit_node = node.args.get("unit")
        text = str(node.this.this if isinstance(node.this, exp.Literal) else node.this)
        parts = text.split()
        unit = unit_node.name.upper() if unit_node is not None else ""
        if len(parts) == 2 and not unit:
            text, unit = parts[0], parts[1].upper()
        if unit not in _UNITS_MS:
            raise _err(
                sql,
                node,
                f"unsupported interval unit {unit!r}; use MILLISECOND, SECOND, MINUTE, HOUR or DAY",
            )
        try:
            amount = float(text)
        except ValueError:
            raise _err(sql, node, f"interval amount {text!r} is not a number") from None
        if not math.isfinite(amount):
            raise _err(sql, node, f"interval amount {text!r} is not a finite number")
        value = round(amount * _UNITS_MS[unit])
    else:
        raise _err(
            sql,
            node,
            f"{what} must be an INTERVAL like INTERVAL '1' SECOND "
            "or an integer number of milliseconds",
        )
    if what == "a window size" and value <= 0:
        raise _err(sql, node, f"{what} must be positive")
    if value < 0:
        raise _err(sql, node, f"{what} must not be negative (subtract it instead)")
    return value


def _time_column(node: exp.Expr, sql: str) -> str:
    if not isinstance(node, exp.Column):
        raise _err(sql, node, "the window's time argument must be a column name")
    return node.name


def _group_window(node: exp.Expr, sql: str) -> WindowSpec:
    if isinstance(node, Tumble):
        size = interval_ms(node.expression, sql)
        return WindowSpec("tumble", _time_column(node.this, sql), size, size)
    if isinstance(node, Hop):
        slide = interval_ms(node.expression, sql)
        size = interval_ms(node.args["size"], sql)
        if size < slide:
            raise _err(
                sql, node, "HOP size must be at least its slide (else records fall between windows)"
            )
        return WindowSpec("hop", _time_column(node.this, sql), size, slide)
    if isinstance(node, Cumulate):
        step = interval_ms(node.expression, sql)
        size = interval_ms(node.args["size"], sql)
        _check_cumulate(node, sql, step, size)
        return WindowSpec("cumulate", _time_column(node.this, sql), size, step)
    assert isinstance(node, Session)
    return WindowSpec("session", _time_column(node.this, sql), interval_ms(node.expression, sql), 0)


def _check_cumulate(node: exp.Expr, sql: str, step: int, size: int) -> None:
    """A CUMULATE window's size is a whole number of its steps (as in Flink)."""
    if size % step:
        raise _err(
            sql,
            node,
            f"CUMULATE size must be a whole multiple of its step (got step {step} ms, "
            f"size {size} ms)",
        )


def _clause_window(
    clause: WindowClause, sql: str, event_time: str | None
) -> tuple[WindowSpec, int | None]:
    """The window of ``WINDOW TUMBLING|SLIDING|SESSION(...)`` and its grace period."""
    kind = str(clause.this)
    args = list(clause.expressions)
    grace: int | None = None
    for arg in [a for a in args if isinstance(a, GracePeriod)]:
        if grace is not None:
            raise _err(sql, arg, "GRACE PERIOD is given twice")
        grace = interval_ms(arg.this, sql, "a grace period")
        args.remove(arg)
    column = event_time
    if args and isinstance(args[-1], exp.Column):
        column = args.pop().name
    elif args and isinstance(args[0], exp.Column):  # TUMBLING(event_time, INTERVAL ...)
        column = args.pop(0).name
    if column is None:
        raise _err(
            sql,
            clause,
            f"WINDOW {kind} needs an event-time column: pass it as the first or last "
            "argument, declare it (CREATE STREAM ... WITH (event_time = ...)) or give "
            "compile_query(event_time=...)",
        )
    wanted = 2 if kind in ("SLIDING", "CUMULATE") else 1
    if len(args) != wanted:
        usage = {
            "TUMBLING": "TUMBLING([time_column,] size [, time_column] [, GRACE PERIOD d])",
            "SLIDING": "SLIDING([time_column,] size, advance [, time_column] [, GRACE PERIOD d])",
            "CUMULATE": "CUMULATE([time_column,] step, size [, time_column] [, GRACE PERIOD d])",
            "SESSION": "SESSION([time_column,] gap [, time_column] [, GRACE PERIOD d])",
        }[kind]
        raise _err(sql, clause, f"WINDOW {kind} takes {usage}")
    size = interval_ms(args[0], sql)
    if kind == "TUMBLING":
        return WindowSpec("tumble", column, size, size), grace
    if kind == "SESSION":
        return WindowSpec("session", column, size, 0), grace
    if kind == "CUMULATE":  # Flink's order: the step, then the size
        step, size = size, interval_ms(args[1], sql)
        _check_cumulate(clause, sql, step, size)
        return WindowSpec("cumulate", column, size, step), grace
    slide = interval_ms(args[1], sql)
    if size < slide:
        raise _err(sql, clause, "SLIDING size must be at least its advance")
    return WindowSpec("hop", column, size, slide), grace


_AGGS: dict[type[exp.Expr], AggFunc] = {
    exp.Sum: "sum",
    exp.Avg: "avg",
    exp.Min: "min",
    exp.Max: "max",
}


def _aggregate_call(node: exp.Expr, sql: str) -> AggregateCall:
    text = node.sql()
    if isinstance(node, exp.Count):
        arg = node.this
        if node.expressions:  # sqlglot reads COUNT(a, b) and would drop b
            raise _err(
                sql, node, "COUNT takes one argument: COUNT(*), COUNT(x) or COUNT(DISTINCT x)"
            )
        if isinstance(arg, exp.Star) or arg is None:
            return AggregateCall("count_star", None, text)
        if isinstance(arg, exp.Distinct):
            if len(arg.expressions) != 1:
                raise _err(sql, node, "COUNT(DISTINCT ...) takes exactly one expression")
            return AggregateCall("count_distinct", arg.expressions[0], text)
        return AggregateCall("count", arg, text)
    arg = node.this
    if isinstance(arg, exp.Distinct):
        raise _err(sql, node, "DISTINCT is supported in COUNT(DISTINCT x) only")
    if node.expressions:
        raise _err(sql, node, f"{type(node).__name__.upper()} takes exactly one argument")
    return AggregateCall(_AGGS[type(node)], arg, text)


def is_aggregate(node: exp.Expr) -> bool:
    """Whether ``node`` is one of the supported aggregate calls."""
    return isinstance(node, exp.Count | exp.Sum | exp.Avg | exp.Min | exp.Max)


def _check_no_aggregates(node: exp.Expr | None, sql: str, where: str) -> None:
    if node is None:
        return
    for sub in node.walk():
        if is_aggregate(sub):
            raise _err(sql, sub, f"aggregates are not allowed in {where}")


def _check_shape(select: exp.Expr, sql: str) -> exp.Select:
    if not isinstance(select, exp.Select):
        raise _err(
            sql,
            select,
            f"only SELECT queries are supported, not {type(select).__name__.upper()}; "
            f"write {SUPPORTED_CLAUSES}",
        )
    for key, message in _UNSUPPORTED_MODIFIERS.items():
        value = select.args.get(key)
        if value:
            node = value[0] if isinstance(value, list) else value
            target = node if isinstance(node, exp.Expr) else select
            raise _err(sql, target, message)
    for node in select.walk():
        if node is select:
            continue
        if isinstance(node, exp.Select | exp.Subquery | exp.Union | exp.Exists):
            raise _err(sql, node, "subqueries are not supported; a query reads one stream")
        if isinstance(node, exp.Window):
            raise _err(
                sql,
                node,
                "window functions (OVER) are not supported; use GROUP BY with "
                "TUMBLE/HOP/SESSION for windowed aggregates",
            )
    return select


def _source(select: exp.Select, sql: str) -> tuple[str, str]:
    from_ = select.args.get("from_")
    if from_ is None:
        raise _err(sql, select, "FROM <stream> is required")
    table = from_.this
    if not isinstance(table, exp.Table) or table.args.get("db") or table.args.get("joins"):
        raise _err(sql, table, "FROM must name one stream (no subqueries or table functions)")
    return table.name, table.alias


def _output_name(item: exp.Expr) -> str:
    if isinstance(item, exp.Alias):
        return item.alias
    if isinstance(item, exp.Column):
        return item.name
    return item.sql()


def _declarations(statements: list[exp.Expr], sql: str) -> tuple[dict[str, StreamSchema], exp.Expr]:
    """The ``CREATE STREAM`` schemas in front of the query, and the query."""
    *ddl, query = statements
    schemas: dict[str, StreamSchema] = {}
    for statement in ddl:
        if not isinstance(statement, exp.Create):
            raise _err(
                sql,
                statement,
                "only CREATE STREAM declarations may come before the query; run one SELECT",
            )
        schema = schema_of_create(statement, sql)
        assert schema.name is not None
        if schema.name in schemas:
            raise _err(sql, statement, f"stream {schema.name!r} is declared twice")
        schemas[schema.name] = schema
    if isinstance(query, exp.Create):
        raise _err(sql, query, "the script declares streams but has no query: end it with a SELECT")
    return schemas, query


def _input_schema(
    schemas: dict[str, StreamSchema],
    given: StreamSchema | None,
    source: str,
    table: exp.Expr,
    sql: str,
) -> StreamSchema | None:
    """The schema of the stream the query reads: declared in the script or given."""
    if given is not None:
        if schemas:
            raise _err(sql, table, "give the schema either in CREATE STREAM or as an option")
        return attrs.evolve(given, name=source)
    if not schemas:
        return None
    found = schemas.get(source)
    if found is None:
        raise _err(
            sql, table, f"unknown stream {source!r}; declared: {', '.join(map(repr, schemas))}"
        )
    return found


def _check_columns(
    select: exp.Select,
    schema: StreamSchema,
    window: WindowSpec | None,
    sql: str,
    joined: frozenset[str] = frozenset(),
) -> None:
    """Every column the query names exists in ``schema`` (aliases and window bounds
    aside)."""
    aliases = {item.alias for item in select.expressions if isinstance(item, exp.Alias)}
    bounds = ("window_start", "window_end") if window is not None else ()
    for node in select.walk():
        if not isinstance(node, exp.Column) or isinstance(node.this, exp.Star):
            continue
        name = node.name
        if schema.type_of(name) is not None or name in joined:
            continue
        # an output's alias excuses a column naming it elsewhere, not the column it
        # names itself (a join names ``o.amout`` ``amout AS amout``)
        own = isinstance(node.parent, exp.Alias) and node.parent.alias == name
        if not node.table and ((name in aliases and not own) or name in bounds):
            continue
        raise _err(sql, node, unknown_column(name, schema))
    if (
        window is not None
        and window.time_column not in joined
        and schema.type_of(window.time_column) is None
    ):
        # a WINDOW clause's (or the declared) event-time column: the walk above does not
        # reach the clause, kept aside in the SELECT's meta
        clause = select.meta.get("window_clause")
        named = [
            c
            for c in (clause.find_all(exp.Column) if isinstance(clause, exp.Expr) else ())
            if c.name == window.time_column
        ]
        raise _err(sql, named[0] if named else clause, unknown_column(window.time_column, schema))


def plan_query(
    sql: str,
    *,
    event_time: str | None = None,
    schema: StreamSchema | None = None,
    tables: Mapping[str, Iterable[Record]] | None = None,
) -> LogicalPlan:
    """Parse and plan ``sql`` (``CREATE STREAM`` declarations, then one SELECT).

    ``schema`` declares the query's input when the text does not.  ``tables``: the
    rows of the tables the query joins, by name.

    Raises:
        SqlError: the query does not parse or uses something unsupported.
    """
    statements = parse(sql)
    for statement in statements:
        _check_depth(statement, sql)
    if not statements:
        raise SqlError(f"empty query; write {SUPPORTED_CLAUSES}")
    schemas, query = _declarations(statements, sql)
    parsed = [*statements[:-1], query.copy()]
    temporal = plan_temporal_join(query, sql) if isinstance(query, exp.Select) else None
    interval = (
        plan_interval_join(query, sql, interval_ms)
        if isinstance(query, exp.Select) and temporal is None
        else None
    )
    if (interval is not None or temporal is not None) and (schemas or schema is not None):
        # each stream's schema is its side's: the rest of the query reads joined records
        if interval is not None:
            interval = _declare_sides(interval, schemas, schema, parsed, sql)
        if temporal is not None:
            temporal = _declare_sides(temporal, schemas, schema, parsed, sql)
        schemas, schema = {}, None
    joins = _joins(query, sql, schemas, schema, tables or {})
    select = _check_shape(query, sql)
    source, alias = _source(select, sql)
    input_schema = _input_schema(schemas, schema, source, select.args["from_"].this, sql)
    if event_time is None and input_schema is not None:
        event_time = input_schema.event_time
    where_node = select.args.get("where")
    where = where_node.this if where_node is not None else None
    _check_no_aggregates(where, sql, "WHERE; use HAVING")

    window: WindowSpec | None = None
    keys: list[exp.Expr] = []
    items = list(select.expressions)
    group = select.args.get("group")
    for node in group.expressions if group is not None else ():
        if isinstance(node, exp.Cube | exp.Rollup | exp.GroupingSets):
            raise _err(sql, node, "ROLLUP/CUBE/GROUPING SETS are not supported")
        if isinstance(node, Tumble | Hop | Cumulate | Session):
            if window is not None:
                raise _err(sql, node, "only one group window per query is supported")
            window = _group_window(node, sql)
            continue
        if isinstance(node, exp.Literal) and not node.is_string:
            if not str(node.this).isdigit():
                raise _err(sql, node, f"GROUP BY position must be an integer, got {node.this}")
            index = int(node.this)
            if not 1 <= index <= len(items):
                raise _err(sql, node, f"GROUP BY position {index} is out of range")
            item = items[index - 1]
            node = item.this if isinstance(item, exp.Alias) else item
        elif isinstance(node, exp.Column) and not node.table:
            for item in items:
                if isinstance(item, exp.Alias) and item.alias == node.name:
                    node = item.this
                    break
        _check_no_aggregates(node, sql, "GROUP BY")
        keys.append(node)
    if group is not None and (group.args.get("rollup") or group.args.get("cube")):
        raise _err(sql, group, "ROLLUP/CUBE/GROUPING SETS are not supported")
    clause = select.meta.get("window_clause")
    grace: int | None = None
    if isinstance(clause, WindowClause):
        if window is not None:
            raise _err(sql, clause, "give the window either in GROUP BY or in WINDOW, not both")
        window, grace = _clause_window(clause, sql, event_time)

    star = False
    outputs: list[OutputColumn] = []
    names: set[str] = set()
    for item in items:
        if isinstance(item, exp.Star) or (
            isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
        ):
            star = True
            continue
        name = _output_name(item)
        if name in names:
            raise _err(sql, item, f"duplicate output column {name!r}; give it an alias")
        names.add(name)
        expr = item.this if isinstance(item, exp.Alias) else item
        outputs.append(OutputColumn(name, expr))

    having_node = select.args.get("having")
    having = having_node.this if having_node is not None else None
    distinct_node = select.args.get("distinct")
    if distinct_node is not None:
        keys = _distinct_keys(sql, distinct_node, star, keys, outputs, having, window)
    aggregates: dict[str, AggregateCall] = {}
    for node in [o.expr for o in outputs] + ([having] if having is not None else []):
        for sub in node.walk():
            if is_aggregate(sub):
                for inner in sub.walk():
                    if inner is not sub and is_aggregate(inner):
                        raise _err(sql, inner, "nested aggregates are not supported")
                call = _aggregate_call(sub, sql)
                aggregates.setdefault(call.text, call)
    aggregated = bool(keys or aggregates or window)
    if star and aggregated:
        raise _err(sql, select, "SELECT * cannot be used with GROUP BY or aggregates")
    if having is not None and not aggregated:
        raise _err(sql, having_node, "HAVING needs GROUP BY or aggregates")
    for node in [o.expr for o in outputs] + [where] + keys + [having]:
        if node is None:
            continue
        for sub in node.walk():
            if isinstance(sub, WindowBound) and window is None:
                raise _err(sql, sub, f"{sub.this.name} needs a windowed GROUP BY")
            if isinstance(sub, Tumble | Hop | Cumulate | Session):
                raise _err(sql, sub, "TUMBLE/HOP/CUMULATE/SESSION belong in GROUP BY")
    if input_schema is not None:
        joined = frozenset(field for j in joins for _, field in j.fields)
        _check_columns(select, input_schema, window, sql, joined)
    if interval is not None:
        _check_interval_window(interval, window, sql, group if group is not None else select)
    if temporal is not None and window is not None and window.time_column != temporal.left_time:
        raise _err(
            sql,
            group if group is not None else select,
            f"a window after a temporal join runs over {temporal.left_alias}."
            f"{temporal.left_time}, the stream's time column",
        )
    retract = bool(select.meta.get("retract"))
    if retract and not aggregated:
        raise _err(sql, select, "EMIT CHANGES WITH RETRACTIONS needs GROUP BY or aggregates")
    if retract and window is not None and window.kind == "session":
        raise _err(sql, select, "EMIT CHANGES WITH RETRACTIONS is not supported over SESSION")
    emit = select.meta.get("emit", "final")
    if distinct_node is not None:
        if aggregates:
            raise _err(sql, distinct_node, "SELECT DISTINCT with aggregates is not supported")
        if window is not None and window.kind == "session" and emit == "changes":
            raise _err(
                sql, distinct_node, "SELECT DISTINCT ... EMIT CHANGES over SESSION is not supported"
            )
        if window is None and "emit" not in select.meta:
            emit = "changes"  # a new distinct row goes out at once
    return LogicalPlan(
        source=source,
        star=star,
        outputs=tuple(outputs),
        where=where,
        group_keys=tuple(keys),
        aggregates=tuple(aggregates.values()),
        having=having,
        window=window,
        emit="changes" if emit == "changes" else "final",
        source_alias=alias,
        distinct=distinct_node is not None,
        limit=_limit(select, sql),
        schema=input_schema,
        lateness_ms=grace,
        retract=retract and distinct_node is None,  # a DISTINCT row never changes
        joins=joins,
        interval_join=interval,
        temporal_join=temporal,
    )


_Joined = TypeVar("_Joined", IntervalJoin, TemporalJoin)


def _declare_sides(
    join: _Joined,
    schemas: dict[str, StreamSchema],
    given: StreamSchema | None,
    statements: list[exp.Expr],
    sql: str,
) -> _Joined:
    """``join`` with the declared schemas of its two streams: every column the query
    names of a declared stream exists, and its declared event time is the one the
    join reads (a changelog's declared event time is its version time).  The query is
    the last of ``statements``, as parsed (before planning rewrote it)."""
    original = statements[-1]
    names = (join.left, join.right)
    for name in schemas:
        if name not in names:
            create = next(
                s
                for s in statements
                if isinstance(s, exp.Create) and (t := s.find(exp.Table)) and t.name == name
            )
            raise _err(
                sql,
                create,
                f"stream {name!r} is declared but the query reads {join.left!r} and {join.right!r}",
            )
    if given is not None and schemas:
        raise SqlError("give the schema either in CREATE STREAM or as an option")
    left = attrs.evolve(given, name=join.left) if given is not None else schemas.get(join.left)
    right = schemas.get(join.right)
    if isinstance(join, TemporalJoin) and right is not None and right.event_time is not None:
        join = attrs.evolve(join, right_time=right.event_time)
    for alias, declared, time in (
        (join.left_alias, left, join.left_time),
        (join.right_alias, right, join.right_time),
    ):
        if declared is None:
            continue
        for column in original.find_all(exp.Column):
            if column.table == alias and declared.type_of(column.name) is None:
                raise _err(sql, column, unknown_column(column.name, declared))
        named = [c for c in original.find_all(exp.Column) if c.name == time]
        at: exp.Expr = next((c for c in named if c.table == alias), None) or (
            named[0] if named else original
        )
        if declared.type_of(time) is None:
            raise _err(
                sql,
                at,
                f"stream {declared.name!r} has no column {time!r}, its time in the join; "
                f"declared: {', '.join(declared.names)}",
            )
        if declared.event_time is not None and declared.event_time != time:
            raise _err(
                sql,
                at,
                f"stream {declared.name!r} declares event_time {declared.event_time!r}, "
                f"but the join reads its time from {alias}.{time}",
            )
    return attrs.evolve(join, left_schema=left, right_schema=right)


def _check_interval_window(
    interval: IntervalJoin, window: WindowSpec | None, sql: str, node: exp.Expr
) -> None:
    """A window after an interval join runs over one of the two time columns (the
    join holds its output watermark back for them), and over one never NULL."""
    if window is None:
        return
    left = f"{interval.left_alias}.{interval.left_time}"
    right = interval.right_time_field
    if interval.kind == "full":
        raise _err(
            sql,
            node,
            "a window after a FULL interval join is not supported (either time can be NULL)",
        )
    if window.time_column == interval.left_time:
        return
    if window.time_column == right and interval.kind == "inner":
        return
    allowed = left if interval.kind == "left" else f"{left} or {right}"
    raise _err(
        sql,
        node,
        f"a window after an interval join runs over {allowed}, the join's time "
        f"column{'s' if interval.kind == 'inner' else ''}",
    )


def _joins(
    query: exp.Expr,
    sql: str,
    schemas: dict[str, StreamSchema],
    given: StreamSchema | None,
    tables: Mapping[str, Iterable[Record]],
) -> tuple[TableJoin, ...]:
    """Plan the query's joins (rewriting its columns to the joined record's fields);
    every table given must be one it joins."""
    joins: tuple[TableJoin, ...] = ()
    if isinstance(query, exp.Select) and query.args.get("joins"):
        from_ = query.args.get("from_")
        stream_schema = None
        if from_ is not None and isinstance(from_.this, exp.Table):
            stream_schema = _input_schema(schemas, given, from_.this.name, from_.this, sql)
        joins = resolve_joins(query, sql, tables, stream_schema)
    unused = [name for name in tables if name not in {j.table for j in joins}]
    if unused:
        joined = ", ".join(repr(j.table) for j in joins) or "no table"
        raise SqlError(
            f"table {unused[0]!r} was given but the query does not join it (it joins {joined})"
        )
    return joins


def _distinct_keys(
    sql: str,
    node: exp.Expr,
    star: bool,
    keys: list[exp.Expr],
    outputs: list[OutputColumn],
    having: exp.Expr | None,
    window: WindowSpec | None,
) -> list[exp.Expr]:
    """The group keys of ``SELECT DISTINCT``: every selected expression (but the
    window's bounds, which the window itself groups by)."""
    if node.args.get("on") is not None:
        raise _err(sql, node, "SELECT DISTINCT ON is not supported; use GROUP BY")
    if star:
        raise _err(sql, node, "SELECT DISTINCT * is not supported; name the columns")
    if keys or having is not None:
        raise _err(sql, node, "SELECT DISTINCT with GROUP BY or HAVING is not supported")

    def is_bound(expr: exp.Expr) -> bool:
        if isinstance(expr, WindowBound):
            return True
        return (
            isinstance(expr, exp.Column)
            and not expr.table
            and expr.name in ("window_start", "window_end")
        )

    return [o.expr for o in outputs if window is None or not is_bound(o.expr)]


def _limit(select: exp.Select, sql: str) -> int | None:
    node = select.args.get("limit")
    if node is None:
        return None
    value = node.expression
    if not (isinstance(value, exp.Literal) and not value.is_string and str(value.this).isdigit()):
        raise _err(sql, node, "LIMIT takes a positive integer: the run stops after that many rows")
    if int(value.this) < 1:
        raise _err(sql, node, "LIMIT takes a positive integer: the run stops after that many rows")
    return int(value.this)
