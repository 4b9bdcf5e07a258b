"""Temporal joins of a stream with a changelog: ``FROM orders o JOIN rates FOR
SYSTEM_TIME AS OF o.ts AS r ON o.cur = r.cur``.

The joined input is a *changelog*: a stream of versions of a table's rows, each
record the row of its key (the ``ON`` columns) from its event time on, until the
next record of that key; a record whose every other column (not the key, not the
event time) is NULL or absent is a *tombstone*: the key has no row from then on.
Each record of the ``FROM`` stream joins the version of its key as of its own
event time, as Flink's event-time temporal join does (and DuckDB's ``ASOF JOIN ...
ON o.cur = r.cur AND o.ts >= r.ts`` computes over finished inputs).  ``LEFT JOIN``
keeps a record with no version (or a deleted key) with the changelog's columns NULL.

The changelog's event time is its column of the same name as the ``AS OF`` column.

Planning rewrites the query to one over joined records exactly as an interval join
does (:mod:`sql._stream_join`); at run time both inputs go through the interval
join's :class:`sql.JoinSideStage` (each has its own watermark and late records; the
changelog's tombstones are marked there) and meet, by key, in one
:class:`TemporalJoinState` per partition.  A stream record waits there until the
combined watermark (the least of the two inputs') passes its time: then every
version at or before it has arrived (a later one would be late), and it is joined.
Versions older than the last one at or before the watermark can match nothing any
more and are dropped, so state holds one version per key plus what the watermark has
not reached, and the stream's records within the lateness.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any, Literal

import attrs
from sqlglot import exp

from partita.runtime import Record

from ._dialect import node_position
from ._errors import SqlError
from ._join import conjuncts
from ._schema import StreamSchema
from ._stream_join import equality_keys, rewrite_to_joined, stream_sides

__all__ = ["TemporalJoin", "TemporalJoinState", "is_temporal", "plan_temporal_join"]

TemporalKind = Literal["inner", "left"]


def _time_of(version: list[Any]) -> int:
    return version[0]  # type: ignore[no-any-return]


def _err(sql: str, node: exp.Expr, message: str) -> SqlError:
    line, col = node_position(node, sql)
    return SqlError(message, line=line, col=col)


def is_temporal(join: exp.Expr) -> bool:
    """Whether ``join`` joins ``FOR SYSTEM_TIME AS OF`` (a temporal join)."""
    table = join.this if isinstance(join, exp.Join) else None
    return isinstance(table, exp.Table) and table.args.get("version") is not None


@attrs.frozen(eq=False)
class TemporalJoin:
    """One temporal join of a stream with a changelog, planned.

    Attributes:
        left: the ``FROM`` stream's input name; ``left_alias`` how the query names it.
        right: the changelog's input name; ``right_alias`` how the query names it.
        kind: ``"inner"`` or ``"left"``.
        left_keys: the stream's columns of the ``ON`` equalities, in order.
        right_keys: the changelog's columns they are equal to (its key).
        left_time: the stream's event-time column (``AS OF``); ``right_time`` the
            changelog's (the column of the same name).
        left_fields: ``(column, joined-record field)`` of every stream column the query
            reads (the field is the column's own name).
        right_fields: the same for the changelog (the field is ``"r.column"``).
        left_schema: the stream's declared schema (``CREATE STREAM``), if any: its
            records are coerced to it at their side stage; ``right_schema`` the
            changelog's (whose ``event_time`` names the changelog's time column).

    Example:
        >>> from partita.sql import compile_query
        >>> q = compile_query(
        ...     "SELECT o.id, r.rate FROM orders o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r "
        ...     "ON o.cur = r.cur"
        ... )
        >>> j = q.plan.temporal_join
        >>> (j.left, j.right, j.kind, j.left_keys, j.right_time, j.hold_of(None))
        ('orders', 'rates', 'inner', ('cur',), 'ts', 0)
    """

    left: str
    left_alias: str
    right: str
    right_alias: str
    kind: TemporalKind
    left_keys: tuple[str, ...]
    right_keys: tuple[str, ...]
    left_time: str
    right_time: str
    left_fields: tuple[tuple[str, str], ...]
    right_fields: tuple[tuple[str, str], ...]
    left_schema: StreamSchema | None = None
    right_schema: StreamSchema | None = None

    #: the changelog's records with only a key and a time are tombstones
    deletes = True

    def hold_of(self, time_field: str | None) -> int:
        """How far (ms) the join's output watermark trails the combined watermark:
        0 (a stream record is joined once the watermark passes its time, before that
        watermark goes on)."""
        return 0

    def describe(self) -> str:
        """One line for ``partita describe``."""
        return (
            f"{self.kind.upper()} temporal join of stream {self.left} (as {self.left_alias}) "
            f"with changelog {self.right} (as {self.right_alias}) as of "
            f"{self.left_alias}.{self.left_time} on "
            + ", ".join(
                f"{self.left_alias}.{a} = {self.right_alias}.{b}"
                for a, b in zip(self.left_keys, self.right_keys, strict=True)
            )
            + f"; versions by {self.right_alias}.{self.right_time}"
        )


def plan_temporal_join(select: exp.Select, sql: str) -> TemporalJoin | None:
    """Plan the temporal join of ``select`` (if it has one) and rewrite its columns to
    joined-record fields, removing the join (``select`` changes in place).

    Raises:
        SqlError: with the position: a second join, a FULL join, an unqualified
            column, ``AS OF`` something other than the stream's column, an ``ON``
            other than equalities.
    """
    joins = select.args.get("joins") or []
    if not any(is_temporal(j) for j in joins):
        return None
    join = next(j for j in joins if is_temporal(j))
    if join is not joins[0]:
        raise _err(sql, join, "a temporal join joins two streams; other joins are not supported")
    sides = stream_sides(select, join, sql, "a temporal join")
    if sides.side == "FULL":
        raise _err(sql, join, "a temporal join is INNER or LEFT; FULL is not supported")
    kind: TemporalKind = "left" if sides.side == "LEFT" else "inner"
    version = sides.right.args["version"]
    what = str(version.this).upper()
    if str(version.args.get("kind") or "").upper() != "AS OF" or what not in (
        "SYSTEM_TIME",
        "TIMESTAMP",
    ):
        raise _err(sql, version, "a temporal join is written FOR SYSTEM_TIME AS OF o.ts")
    at = version.expression
    if not (isinstance(at, exp.Column) and at.table == sides.left_alias):
        raise _err(
            sql,
            at if isinstance(at, exp.Expr) else version,
            f"FOR SYSTEM_TIME AS OF takes the time column of the FROM stream "
            f"({sides.left_alias}.<column>)",
        )
    on = join.args.get("on")
    if on is None:
        raise _err(sql, join, "a temporal join needs ON o.col = r.col")
    equalities = conjuncts(on)
    for term in equalities:
        if not isinstance(term, exp.EQ):
            raise _err(
                sql, term, "a temporal join's ON takes equalities o.col = r.col joined by AND"
            )
    left_keys, right_keys = equality_keys(equalities, sides, sql, "a temporal join")
    at_column = at.name
    left_fields, right_fields = rewrite_to_joined(select, join, equalities, sides, sql)
    return TemporalJoin(
        left=sides.left.name,
        left_alias=sides.left_alias,
        right=sides.right.name,
        right_alias=sides.right_alias,
        kind=kind,
        left_keys=left_keys,
        right_keys=right_keys,
        left_time=at_column,
        right_time=at_column,
        left_fields=left_fields,
        right_fields=right_fields,
    )


# -- the partition side: versions and waiting stream records -----------------------------


@attrs.define
class TemporalJoinState:
    """One partition's temporal join: the changelog's versions by key, and the
    stream's records waiting for the watermark to pass their time.

    ``left(entries)`` and ``right(entries)`` take a side's routed records (``[key,
    event time, fields]``, the fields ``None`` for a tombstone); ``advance(watermark)``
    joins the stream records behind the combined watermark and drops the versions
    nothing can match any more; ``finish()`` joins every record still waiting.

    Example:
        >>> from partita.sql import compile_query
        >>> q = compile_query(
        ...     "SELECT o.id, r.rate FROM orders o LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts "
        ...     "AS r ON o.cur = r.cur"
        ... )
        >>> state = TemporalJoinState.of(q.plan.temporal_join)
        >>> state.right([["EUR", 0, {"r.rate": 1.1}], ["EUR", 5_000, {"r.rate": 1.2}]])
        []
        >>> state.left([["EUR", 4_000, {"id": 1}], ["EUR", 6_000, {"id": 2}]])
        []
        >>> state.advance(5_000)  # every rate of times <= 4000 is known now
        [{'id': 1, 'r.rate': 1.1}]
        >>> state.right([["EUR", 5_500, None]])  # deleted at 5.5 s
        []
        >>> state.finish()
        [{'id': 2, 'r.rate': None}]
    """

    _outer: bool
    _nulls: dict[str, None]
    _multi_key: bool
    # key -> its versions [time, fields or None (deleted)], by time (arrival among equals)
    _versions: dict[Any, list[list[Any]]] = attrs.field(factory=dict)
    # the stream's records waiting for the watermark: (time, seq, key, fields)
    _waiting: list[tuple[int, int, Any, dict[str, Any]]] = attrs.field(factory=list)
    # deleted keys to forget once the watermark passes the deletion: (time, seq, key)
    _deleted: list[tuple[int, int, Any]] = attrs.field(factory=list)
    _wm: int | None = None
    _seq: int = 0

    @classmethod
    def of(cls, join: TemporalJoin) -> TemporalJoinState:
        """An empty state for ``join``."""
        return cls(
            join.kind == "left",
            dict.fromkeys(f for _, f in join.right_fields),
            len(join.left_keys) > 1,
        )

    def left(self, entries: Sequence[list[Any]]) -> list[Record]:
        """Stream records arrived: they wait for the watermark (a NULL key matches
        nothing: a LEFT join's row at once)."""
        out: list[Record] = []
        wm, waiting, push = self._wm, self._waiting, heapq.heappush
        seq = self._seq
        for k, t, fields in entries:
            if k is None:
                if self._outer:
                    out.append({**fields, **self._nulls})
            elif wm is not None and t < wm:  # (only after a restore)
                row = self._join(k, t, fields)
                if row is not None:
                    out.append(row)
            else:
                seq += 1
                push(waiting, (t, seq, k, fields))
        self._seq = seq
        return out

    def right(self, entries: Sequence[list[Any]]) -> list[Record]:
        """Changelog records arrived: new versions (or deletions) of their keys."""
        versions, wm = self._versions, self._wm
        for k, t, fields in entries:
            if k is None:
                continue  # a NULL key is no row anyone can join
            chain = versions.get(k)
            if chain is None:
                versions[k] = [[t, fields]]
            elif chain[-1][0] <= t:
                chain.append([t, fields])
            else:
                chain.insert(bisect_right(chain, t, key=_time_of), [t, fields])
            if fields is None:
                self._seq += 1
                heapq.heappush(self._deleted, (t, self._seq, k))
            elif wm is not None:
                self._prune(k, wm)
        return []

    def _join(self, k: Any, t: int, fields: dict[str, Any]) -> Record | None:
        chain = self._versions.get(k)
        found = None
        if chain is not None:
            last = chain[-1]
            if last[0] <= t:  # the common case: the latest version is current
                found = last[1]
            else:
                i = bisect_right(chain, t, key=_time_of)
                if i:
                    found = chain[i - 1][1]
        if found is not None:
            return {**fields, **found}
        return {**fields, **self._nulls} if self._outer else None

    def _prune(self, k: Any, wm: int) -> None:
        """Drop the versions of ``k`` before its last one at or before ``wm`` (the
        records to come are at or after ``wm``), and ``k`` once that one deletes it."""
        chain = self._versions[k]
        if len(chain) == 1 and chain[0][1] is not None:
            return  # the common case: one version, nothing to drop
        i = bisect_right(chain, wm, key=_time_of)
        if i > 1:
            del chain[: i - 1]
        if chain[0][1] is None and chain[0][0] <= wm:
            if len(chain) == 1:
                del self._versions[k]
            else:
                del chain[0]

    def advance(self, watermark: int) -> list[Record]:
        """The combined watermark reached ``watermark``: join every stream record
        behind it, and drop the versions nothing can match any more."""
        if self._wm is not None and watermark <= self._wm:
            return []
        self._wm = watermark
        out: list[Record] = []
        waiting, pop = self._waiting, heapq.heappop
        touched: dict[Any, None] = {}
        join, append = self._join, out.append
        versions = self._versions
        while waiting and waiting[0][0] < watermark:
            t, _, k, fields = pop(waiting)
            row = join(k, t, fields)
            if row is not None:
                append(row)
            chain = versions.get(k)
            if chain is not None and (len(chain) > 1 or chain[0][1] is None):
                touched[k] = None
        deleted = self._deleted
        while deleted and deleted[0][0] <= watermark:
            touched[pop(deleted)[2]] = None
        for k in touched:
            if k in self._versions:
                self._prune(k, watermark)
        return out

    def finish(self) -> list[Record]:
        """End of both inputs: join every stream record still waiting."""
        out: list[Record] = []
        for t, _, k, fields in sorted(self._waiting):
            row = self._join(k, t, fields)
            if row is not None:
                out.append(row)
        self._waiting.clear()
        self._versions.clear()
        self._deleted.clear()
        return out

    def memory_view(self) -> object:
        """What the state holds, for a size estimate (no copy)."""
        return (self._versions, self._waiting)

    def held(self) -> int:
        """How many records the state holds (versions and waiting stream records)."""
        return len(self._waiting) + sum(len(c) for c in self._versions.values())

    def snapshot(self) -> object:
        """The versions and the waiting records, and the watermark, as plain data."""
        return {
            "wm": self._wm,
            "versions": [[k, chain] for k, chain in self._versions.items()],
            "waiting": [[k, t, fields] for t, _, k, fields in sorted(self._waiting)],
        }

    def restore(self, state: Any) -> None:
        """Take back what :meth:`snapshot` returned."""

        def key(k: Any) -> Any:
            return tuple(k) if self._multi_key and isinstance(k, list) else k

        self._wm = state["wm"]
        self._versions = {key(k): [list(v) for v in chain] for k, chain in state["versions"]}
        self._waiting = []
        self._deleted = []
        for k, t, fields in state["waiting"]:
            self._seq += 1
            self._waiting.append((t, self._seq, key(k), fields))
        heapq.heapify(self._waiting)
        for k, chain in self._versions.items():
            for t, fields in chain:
                if fields is None:
                    self._seq += 1
                    self._deleted.append((t, self._seq, k))
        heapq.heapify(self._deleted)
