"""Stream-table (enrichment) joins: ``FROM orders o [LEFT] JOIN rates r ON o.cur = r.cur``.

The table is loaded whole before the stream starts (its rows are given to
``compile_query(tables=...)``).  Planning resolves every column of the query to the
stream or to one table and rewrites it to a field of the *joined record*: a stream
column keeps its name, a table column becomes the field ``"r.rate"`` (alias, dot,
column).  From there on the query is a one-stream query over joined records: WHERE,
GROUP BY, windows and the schema checks see nothing else.

The join itself is generated code (``join0``, ``join1``, ...: one per joined table,
see :func:`gen_joins`): a dict lookup per record in a loop over the batch, against an
index built once per query (join key -> the matching rows' fields) and shared,
read-only, by every partition.  A record matching several table rows gives one joined
record each (as SQL does); an INNER join drops a record matching none, a LEFT join
keeps it with the table's fields NULL.  A NULL key matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
from sqlglot import exp

from partita.runtime import Record

from ._dialect import START, node_position, parse
from ._errors import SqlError
from ._schema import StreamSchema
from ._source import SourceLines

__all__ = [
    "QueryInputs",
    "TableJoin",
    "bounds_time",
    "conjuncts",
    "gen_joins",
    "query_inputs",
    "resolve_joins",
]

JoinKind = Literal["inner", "left"]


@attrs.frozen
class QueryInputs:
    """The inputs a query names: the stream it reads (FROM), the tables it joins and
    the stream it joins within an interval or as of its time (``joined``), if any.

    Example:
        >>> query_inputs("SELECT o.id, r.rate FROM orders o JOIN rates r ON o.cur = r.cur")
        QueryInputs(stream='orders', tables=('rates',), joined=None)
        >>> query_inputs(
        ...     "SELECT o.id FROM orders o JOIN payments p ON o.id = p.oid "
        ...     "AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '1' HOUR"
        ... )
        QueryInputs(stream='orders', tables=(), joined='payments')
    """

    stream: str
    tables: tuple[str, ...]
    joined: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Every input name, the stream first (then the joined stream, then tables)."""
        joined = () if self.joined is None else (self.joined,)
        return (self.stream, *joined, *self.tables)


def query_inputs(sql: str) -> QueryInputs:
    """The names of the stream and the tables ``sql`` reads (``CREATE STREAM``
    declarations first are skipped).

    Raises:
        SqlError: the text does not parse or has no ``FROM <stream>``.
    """
    statements = parse(sql)
    if not statements:
        raise SqlError("empty query")
    select = statements[-1]
    from_ = select.args.get("from_") if isinstance(select, exp.Select) else None
    if from_ is None or not isinstance(from_.this, exp.Table):
        raise SqlError("the query has no FROM <stream>")
    tables: list[str] = []
    joined: str | None = None
    for join in select.args.get("joins") or ():
        if not isinstance(join.this, exp.Table):
            continue
        if joined is None and (bounds_time(join) or join.this.args.get("version") is not None):
            joined = join.this.name
        else:
            tables.append(join.this.name)
    return QueryInputs(from_.this.name, tuple(dict.fromkeys(tables)), joined)


def bounds_time(join: exp.Expr) -> bool:
    """Whether a join's ON bounds one side's time by the other's both ways (a
    stream-stream interval join: see :mod:`sql._interval_join`): a ``BETWEEN``, or two
    or more of ``<``, ``<=``, ``>``, ``>=``.  One comparison alone (``o.amount >
    r.rate``) is a table join's condition (refused: ON takes equalities)."""
    return _range_terms(join) >= 2


def _range_terms(join: exp.Expr) -> int:
    """How many bounds a join's ON has (a ``BETWEEN`` is two)."""
    on = join.args.get("on")
    count = 0
    for term in [] if on is None else conjuncts(on):
        if isinstance(term, exp.Between):
            count += 2
        elif isinstance(term, exp.LT | exp.LTE | exp.GT | exp.GTE):
            count += 1
    return count


def conjuncts(on: exp.Expr) -> list[exp.Expr]:
    """The terms of ``a AND (b AND c)``, in order, parentheses taken off.

    Example:
        >>> [t.sql() for t in conjuncts(parse("SELECT 1 FROM t WHERE a = 1 AND (b OR c)")[0]
        ...     .args["where"].this)]
        ['a = 1', 'b OR c']
    """
    terms: list[exp.Expr] = []
    stack = [on]
    while stack:
        node = stack.pop()
        if isinstance(node, exp.Paren) and isinstance(node.this, exp.And | exp.Paren):
            stack.append(node.this)
        elif isinstance(node, exp.And):
            stack += [node.expression, node.this]
        else:
            terms.append(node.this if isinstance(node, exp.Paren) else node)
    return terms


@attrs.frozen(eq=False)
class TableJoin:
    """One joined table, planned.

    Attributes:
        table: the table's input name.
        alias: how the query names it (its alias, else its name).
        kind: ``"inner"`` or ``"left"``.
        stream_keys: the expressions of the stream side of ``ON`` (over the joined
            record so far), one per equality.
        table_keys: the table's columns they are equal to.
        fields: ``(table column, field of the joined record)`` of every column the
            query reads from the table.
        rows: the table's rows.
    """

    table: str
    alias: str
    kind: JoinKind
    stream_keys: tuple[exp.Expr, ...]
    table_keys: tuple[str, ...]
    fields: tuple[tuple[str, str], ...]
    rows: tuple[Record, ...]

    def index(self) -> dict[Any, list[dict[str, Any]]]:
        """Join key -> the joined fields of every table row with that key (rows with a
        NULL key part left out: NULL matches nothing).

        Raises:
            SqlError: a row's key cannot be a dict key (a list, an object).
        """
        index: dict[Any, list[dict[str, Any]]] = {}
        single = len(self.table_keys) == 1
        for number, row in enumerate(self.rows, 1):
            parts = [row.get(column) for column in self.table_keys]
            if any(part is None for part in parts):
                continue
            key = parts[0] if single else tuple(parts)
            fields = {field: row.get(column) for column, field in self.fields}
            try:
                index.setdefault(key, []).append(fields)
            except TypeError:
                raise SqlError(
                    f"table {self.table!r} row {number}: join key {key!r} is not a "
                    "single value (a list or an object cannot be joined on)"
                ) from None
        return index

    def nulls(self) -> dict[str, None]:
        """The table's fields of a LEFT join's unmatched record."""
        return dict.fromkeys(field for _, field in self.fields)


def _err(sql: str, node: exp.Expr, message: str) -> SqlError:
    line, col = node_position(node, sql)
    return SqlError(message, line=line, col=col)


def _table_columns(rows: Sequence[Record]) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return tuple(names)


def _load(name: str, rows: Iterable[Record], node: exp.Expr, sql: str) -> tuple[Record, ...]:
    loaded = tuple(rows)
    for number, row in enumerate(loaded, 1):
        if not isinstance(row, dict):
            raise _err(
                sql, node, f"table {name!r} row {number} is a {type(row).__name__}, not a record"
            )
    return loaded


def resolve_joins(
    select: exp.Select,
    sql: str,
    tables: Mapping[str, Iterable[Record]],
    stream_schema: StreamSchema | None,
) -> tuple[TableJoin, ...]:
    """Plan the joins of ``select`` and rewrite its columns to joined-record fields.

    ``select`` is changed in place: its joins are removed, every output gets its name
    as an alias (as written: ``r.rate`` is named ``rate``), and every column refers to
    a field of the joined record.  Without joins it is left alone.

    Raises:
        SqlError: with the position: an unsupported join, a table not given, an
            unknown table alias or table column, an ambiguous column.
    """
    joins = select.args.get("joins") or []
    if not joins:
        return ()
    from_ = select.args.get("from_")
    if from_ is None or not isinstance(from_.this, exp.Table):
        raise _err(sql, select, "FROM <stream> is required")
    stream = from_.this.name
    stream_alias = from_.this.alias or stream
    scopes: dict[str, int] = {stream_alias: -1}  # alias -> join index (-1: the stream)
    if stream_alias != stream:
        scopes.setdefault(stream, -1)
    planned: list[dict[str, Any]] = []
    for join in joins:
        table = join.this
        if not isinstance(table, exp.Table) or table.args.get("db"):
            raise _err(sql, join, "JOIN must name a table (no subqueries or table functions)")
        side = (join.side or "").upper()
        kind = (join.kind or "").upper()
        if side in ("RIGHT", "FULL") or (kind in ("CROSS", "SEMI", "ANTI", "OUTER") and not side):
            raise _err(
                sql,
                join,
                f"{side or kind} JOIN is not supported with a table; write JOIN or LEFT JOIN",
            )
        if join.args.get("using"):
            raise _err(sql, join, "JOIN ... USING is not supported; write ON s.col = t.col")
        on = join.args.get("on")
        if on is None:
            raise _err(sql, join, "JOIN needs ON <stream expression> = <table column>")
        name, alias = table.name, table.alias or table.name
        if name == stream:
            raise _err(sql, table, f"{name!r} is the stream the query reads; join another table")
        if name not in tables:
            given = ", ".join(repr(t) for t in tables) or "none"
            hint = (
                "; a join of two streams bounds time both ways (p.ts BETWEEN o.ts AND "
                "o.ts + INTERVAL ...)"
                if _range_terms(join)
                else ""
            )
            raise _err(
                sql,
                table,
                f"no table {name!r} to join: give it as an input (sources={{{name!r}: ...}} "
                f"or --input {name}=FILE); tables given: {given}{hint}",
            )
        if alias in scopes:
            raise _err(sql, table, f"{alias!r} names two inputs; give each its own alias")
        scopes[alias] = len(planned)
        rows = _load(name, tables[name], table, sql)
        planned.append(
            {
                "name": name,
                "alias": alias,
                "kind": "left" if side == "LEFT" else "inner",
                "on": on,
                "rows": rows,
                "columns": _table_columns(rows),
                "fields": {},
            }
        )
    if any(isinstance(i, exp.Star) for i in select.expressions) or any(
        isinstance(i, exp.Column) and isinstance(i.this, exp.Star) for i in select.expressions
    ):
        raise _err(sql, select, "SELECT * over a join is not supported; name the columns")
    # outputs keep the names they have as written
    for item in list(select.expressions):
        if not isinstance(item, exp.Alias):
            name = item.name if isinstance(item, exp.Column) else item.sql()
            item.replace(exp.alias_(item.copy(), name, quoted=True))
    stream_named = {
        c.name
        for c in select.find_all(exp.Column)
        if c.table and scopes.get(c.table) == -1 and not isinstance(c.this, exp.Star)
    }
    known_stream = set(stream_schema.names) if stream_schema is not None else set()
    for column in list(select.find_all(exp.Column)):
        if isinstance(column.this, exp.Star):
            raise _err(sql, column, "t.* is not supported over a join; name the columns")
        name, qualifier = column.name, column.table
        if qualifier:
            if qualifier not in scopes:
                raise _err(
                    sql,
                    column,
                    f"unknown table {qualifier!r}; the query reads "
                    + ", ".join(repr(a) for a in scopes),
                )
            target = scopes[qualifier]
        else:
            owners = [i for i, p in enumerate(planned) if name in p["columns"]]
            on_stream = name in known_stream or name in stream_named
            if len(owners) + on_stream > 1:
                sides = ([stream_alias] if on_stream else []) + [
                    planned[i]["alias"] for i in owners
                ]
                raise _err(
                    sql,
                    column,
                    f"column {name!r} is ambiguous: both {' and '.join(map(repr, sides))} "
                    f"have it; write {sides[0]}.{name} or {sides[1]}.{name}",
                )
            target = owners[0] if owners else -1
        if target == -1:
            column.replace(_moved(column, exp.column(name, quoted=True)))
            continue
        join_plan = planned[target]
        if join_plan["columns"] and name not in join_plan["columns"]:
            raise _err(
                sql,
                column,
                f"table {join_plan['name']!r} has no column {name!r}; it has "
                + ", ".join(join_plan["columns"]),
            )
        field = f"{join_plan['alias']}.{name}"
        join_plan["fields"][name] = field
        column.replace(_moved(column, exp.column(field, quoted=True)))
    result = []
    for join_plan in planned:
        stream_keys, table_keys = _keys(join_plan["on"], join_plan["alias"], sql)
        result.append(
            TableJoin(
                table=join_plan["name"],
                alias=join_plan["alias"],
                kind=join_plan["kind"],
                stream_keys=stream_keys,
                table_keys=table_keys,
                fields=tuple(join_plan["fields"].items()),
                rows=join_plan["rows"],
            )
        )
    select.set("joins", None)
    return tuple(result)


def _moved(old: exp.Expr, new: exp.Column) -> exp.Column:
    """``new`` where ``old`` was in the text (for the positions of errors)."""
    metas: list[dict[str, Any]] = [
        n.meta for n in old.walk() if n._meta and (START in n.meta or "start" in n.meta)
    ]
    if metas:
        first = min(metas, key=_start_of)
        new.meta.update(first)
    return new


def _start_of(meta: dict[str, Any]) -> int:
    return int(meta.get(START, meta.get("start", 0)))


def _keys(on: exp.Expr, alias: str, sql: str) -> tuple[tuple[exp.Expr, ...], tuple[str, ...]]:
    """The stream sides and table columns of ``ON a = t.x [AND b = t.y ...]``."""
    prefix = f"{alias}."
    terms = conjuncts(on)

    def own(node: exp.Expr) -> str | None:
        if isinstance(node, exp.Column) and node.name.startswith(prefix):
            return node.name[len(prefix) :]
        return None

    def uses_table(node: exp.Expr) -> bool:
        return any(c.name.startswith(prefix) for c in node.find_all(exp.Column))

    stream_keys: list[exp.Expr] = []
    table_keys: list[str] = []
    for term in terms:
        if not isinstance(term, exp.EQ):
            raise _err(
                sql,
                term,
                f"JOIN {alias} ON takes equalities <stream expression> = {alias}.<column> "
                "(joined by AND)",
            )
        left, right = term.this, term.expression
        if own(right) is not None and not uses_table(left):
            stream_side, column = left, own(right)
        elif own(left) is not None and not uses_table(right):
            stream_side, column = right, own(left)
        else:
            raise _err(
                sql,
                term,
                f"JOIN {alias} ON takes <stream expression> = {alias}.<column>: one side a "
                f"column of {alias}, the other not using {alias}",
            )
        assert column is not None
        stream_keys.append(stream_side)
        table_keys.append(column)
    return tuple(stream_keys), tuple(table_keys)


def gen_joins(joins: Sequence[TableJoin], record_value: Any, out: SourceLines) -> list[str]:
    """``join0(records, offsets, on_bad)``, ...: one table's join over a batch.

    Each returns ``(joined, sources, unmatched)``: the joined records, for each the
    index of the record it came from, and how many records an INNER join dropped
    as matching no row.  ``record_value(expr)`` compiles an expression over ``r``.
    The index of join ``i`` is the namespace constant ``_J{i}`` (its NULL fields,
    ``_N{i}``).  Returns the functions' names, in order.
    """
    names = []
    for i, join in enumerate(joins):
        name = f"join{i}"
        names.append(name)
        keys = [record_value(k) for k in join.stream_keys]
        key = keys[0] if len(keys) == 1 else f"({', '.join(keys)})"
        nulls = " or ".join(f"{k} is None" for k in keys)
        out.add(0, f"def {name}(records, offsets, on_bad):")
        out.add(1, "out = []", "append = out.append", "src = []", "keep = src.append")
        out.add(1, f"get = _J{i}.get", "i = 0", "nu = 0")
        out.add(1, "for r in records:")
        out.add(2, "try:")
        if len(keys) > 1:
            out.add(3, f"k = {key}", f"m = None if {nulls} else get(k)")
        else:
            out.add(3, f"k = {key}", "m = None if k is None else get(k)")
        out.add(2, "except Exception as exc:")
        out.add(3, "on_bad(exc, r, offsets, i)", "i += 1", "continue")
        out.add(2, "if m is None:")
        if join.kind == "left":
            out.add(3, f"append({{**r, **_N{i}}})", "keep(i)")
        else:
            out.add(3, "nu += 1")
        out.add(3, "i += 1", "continue")
        out.add(2, "for t in m:")
        out.add(3, "append({**r, **t})", "keep(i)")
        out.add(2, "i += 1")
        out.add(1, "return out, src, nu", "")
    return names
