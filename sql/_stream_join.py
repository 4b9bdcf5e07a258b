"""What the planners of the two joins of two streams share: an interval join
(:mod:`sql._interval_join`) and a temporal join of a changelog
(:mod:`sql._temporal_join`).

Both join the ``FROM`` stream (the *left* side, index 0) with one other stream (the
*right*, index 1), by equalities of one column of each; every column is qualified
with its stream's alias; and once planned, the query is rewritten to one over
*joined records* exactly as a table join's (:func:`sql._join.resolve_joins`): a left
column keeps its name, a right one becomes the field ``"r.rate"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from sqlglot import exp

from ._dialect import node_position
from ._errors import SqlError
from ._join import resolve_joins

__all__ = ["LEFT", "RIGHT", "StreamSides", "rewrite_to_joined", "stream_sides"]

LEFT, RIGHT = 0, 1


def _err(sql: str, node: exp.Expr, message: str) -> SqlError:
    line, col = node_position(node, sql)
    return SqlError(message, line=line, col=col)


@attrs.frozen(eq=False)
class StreamSides:
    """The two streams of a join, checked: their tables and aliases, the join's side
    (``""``, ``"LEFT"`` or ``"FULL"``), and ``aliases`` (alias -> LEFT or RIGHT)."""

    left: exp.Table
    right: exp.Table
    left_alias: str
    right_alias: str
    side: str

    @property
    def aliases(self) -> dict[str, int]:
        return {self.left_alias: LEFT, self.right_alias: RIGHT}


def stream_sides(select: exp.Select, join: exp.Join, sql: str, what: str) -> StreamSides:
    """Check the join of two streams ``join`` of ``select`` (``what``: "an interval
    join", ...): one join, two distinct named streams, INNER/LEFT/FULL, no USING,
    every column qualified.

    Raises:
        SqlError: with the position.
    """
    joins = select.args.get("joins") or []
    if len(joins) != 1:
        raise _err(
            sql, joins[1], f"{what} joins two streams; other joins are not supported with it"
        )
    from_ = select.args.get("from_")
    if from_ is None or not isinstance(from_.this, exp.Table):
        raise _err(sql, select, "FROM <stream> is required")
    left, right = from_.this, join.this
    if not isinstance(right, exp.Table) or right.args.get("db"):
        raise _err(sql, join, "JOIN must name a stream (no subqueries or table functions)")
    left_alias, right_alias = left.alias or left.name, right.alias or right.name
    if right.name == left.name:
        raise _err(
            sql, right, f"{right.name!r} is joined with itself; a self-join is not supported"
        )
    if left_alias == right_alias:
        raise _err(sql, right, f"{left_alias!r} names two inputs; give each its own alias")
    side = (join.side or "").upper()
    kind_word = (join.kind or "").upper()
    if side == "RIGHT":
        raise _err(sql, join, "RIGHT JOIN is not supported; swap the streams and write LEFT JOIN")
    if kind_word in ("CROSS", "SEMI", "ANTI"):
        raise _err(
            sql, join, f"{kind_word} JOIN is not supported; write JOIN, LEFT JOIN or FULL JOIN"
        )
    if join.args.get("using"):
        raise _err(sql, join, "JOIN ... USING is not supported; write ON o.col = p.col")
    aliases = {left_alias: LEFT, right_alias: RIGHT}
    # unqualified names that are not columns: the outputs' aliases, the window bounds
    named = {i.alias for i in select.expressions if isinstance(i, exp.Alias)}
    named |= {"window_start", "window_end"}
    for column in select.find_all(exp.Column):
        if isinstance(column.this, exp.Star):
            raise _err(sql, column, "t.* is not supported over a join; name the columns")
        if not column.table and column.name in named:
            continue
        if not column.table:
            raise _err(
                sql,
                column,
                f"column {column.name!r}: qualify every column of a stream-stream join "
                f"({left_alias}.{column.name} or {right_alias}.{column.name})",
            )
        if column.table not in aliases:
            raise _err(
                sql,
                column,
                f"unknown stream {column.table!r}; "
                f"the query reads {left_alias!r} and {right_alias!r}",
            )
    if any(isinstance(i, exp.Star) for i in select.expressions):
        raise _err(sql, select, "SELECT * over a join is not supported; name the columns")
    return StreamSides(left, right, left_alias, right_alias, side)


def equality_keys(
    equalities: Sequence[exp.Expr], sides: StreamSides, sql: str, what: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The left and right key columns of ``ON``'s equalities ``o.col = p.col``.

    Raises:
        SqlError: an equality that is not of a column of each stream, or none at all.
    """
    if not equalities:
        raise SqlError(f"{what} needs at least one equality o.col = p.col")
    aliases = sides.aliases
    left_keys: list[str] = []
    right_keys: list[str] = []
    for term in equalities:
        a, b = term.this, term.expression
        if not (isinstance(a, exp.Column) and isinstance(b, exp.Column) and a.table != b.table):
            raise _err(
                sql, term, f"{what}'s equalities are o.col = p.col (a column of each stream)"
            )
        if aliases[a.table] == RIGHT:
            a, b = b, a
        left_keys.append(a.name)
        right_keys.append(b.name)
    return tuple(left_keys), tuple(right_keys)


def rewrite_to_joined(
    select: exp.Select,
    join: exp.Join,
    equalities: Sequence[exp.Expr],
    sides: StreamSides,
    sql: str,
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """Rewrite ``select`` to read joined records (removing the join, in place); the
    ``(column, joined-record field)`` of every column the query reads of each side."""
    aliases = sides.aliases
    read: dict[int, dict[str, None]] = {LEFT: {}, RIGHT: {}}
    for column in select.find_all(exp.Column):
        if column.table and column.find_ancestor(exp.Join) is None:
            read[aliases[column.table]][column.name] = None
    join.set("on", exp.and_(*equalities) if len(equalities) > 1 else equalities[0])
    join.set("side", None)
    join.set("kind", None)
    sides.right.set("version", None)
    (table_join,) = resolve_joins(select, sql, {sides.right.name: ()}, None)
    return (
        tuple((c, c) for c in read[LEFT]),
        tuple((c, f"{table_join.alias}.{c}") for c in read[RIGHT]),
    )
