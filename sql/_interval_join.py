"""Interval stream-stream joins: ``FROM orders o JOIN payments p ON o.id = p.order_id
AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '1' HOUR``.

A join whose ``ON`` bounds one stream's event time by the other's (``BETWEEN``, or
``<``, ``<=``, ``>``, ``>=`` between the two time columns, each side plus or minus
an interval) joins two *streams*; an ``ON`` of equalities alone joins a table
(:mod:`sql._join`).  Planning turns the bounds into one range of
``d = right time - left time``, ``lower <= d <= upper`` in milliseconds (a strict
``<`` is ``<=`` one millisecond less: event times are integral), and rewrites the
query to one over *joined records* exactly as a table join does: a column of the
``FROM`` stream keeps its name, one of the joined stream becomes the field
``"p.amount"``.  The rest of the query (WHERE, GROUP BY, windows) is then a
one-stream query over joined records and compiles as any other.

At run time each input has its own :class:`JoinSideStage`: event time, the
input's own watermark (its max event time minus the allowed lateness) and its
late records, and the split of its records by the join key's hash, so both
inputs' records of one key meet in one partition.  There an
:class:`IntervalJoinState` keeps each side's records of the interval, probes the
other side's records of the same key on every arrival, and evicts by the
*combined* watermark (the minimum of the two inputs'): a left record at ``t`` can
match no future right record once ``t + upper`` is behind it, a right record once
``t - lower`` is; an unmatched record of an outer side is emitted then, with the
other side's fields NULL.  So state stays bounded by the interval and the
lateness on an endless stream, and what joins does not depend on how the two
inputs interleave (every decision depends on one input's own order, or on the
combined watermark only where no match is possible any more).

The rows a join emits are never behind the combined watermark less the *hold*
(``upper`` for the left time, ``-lower`` for the right, at least 0): the join's
output watermark is held back by that much, so a window over either time column
closes only when no joined row can still fall in it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import attrs
from sqlglot import exp

from partita.runtime import Batch, DeadLetter, Record

from ._dialect import node_position
from ._errors import SqlError
from ._functions import to_epoch_ms
from ._hashing import partition_of
from ._interface import ProgramCounts, Routed, StreamJoin
from ._join import bounds_time, conjuncts
from ._policy import OnError, RecordErrors
from ._query_config import LatePolicy
from ._schema import StreamSchema
from ._stream_join import equality_keys, rewrite_to_joined, stream_sides

__all__ = [
    "IntervalJoin",
    "IntervalJoinState",
    "JoinSideStage",
    "plan_interval_join",
]

IntervalKind = Literal["inner", "left", "full"]
_LEFT, _RIGHT = 0, 1


def _err(sql: str, node: exp.Expr, message: str) -> SqlError:
    line, col = node_position(node, sql)
    return SqlError(message, line=line, col=col)


_RANGE = (exp.Between, exp.LT, exp.LTE, exp.GT, exp.GTE)


@attrs.frozen(eq=False)
class IntervalJoin:
    """One interval join, planned.

    Attributes:
        left: the ``FROM`` stream's input name; ``left_alias`` how the query names it.
        right: the joined stream's input name; ``right_alias`` how the query names it.
        kind: ``"inner"``, ``"left"`` or ``"full"``.
        left_keys: the left columns of the ``ON`` equalities, in order.
        right_keys: the right columns they are equal to.
        left_time: the left input's event-time column; ``right_time`` the right's.
        lower: the least ``right time - left time`` that matches (ms).
        upper: the largest (ms).
        left_fields: ``(column, joined-record field)`` of every left column the
            query reads (the field is the column's own name).
        right_fields: the same for the right input (the field is ``"p.column"``).
        left_schema: the left input's declared schema (``CREATE STREAM``), if any:
            its records are coerced to it at their side stage; ``right_schema`` the
            right input's.

    Example:
        >>> from partita.sql import compile_query
        >>> q = compile_query(
        ...     "SELECT o.id, p.amount FROM orders o JOIN payments p ON o.id = p.order_id "
        ...     "AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '1' HOUR"
        ... )
        >>> j = q.plan.interval_join
        >>> (j.left, j.right, j.kind, j.lower, j.upper, j.hold_of(None))
        ('orders', 'payments', 'inner', 0, 3600000, 3600000)
    """

    left: str
    left_alias: str
    right: str
    right_alias: str
    kind: IntervalKind
    left_keys: tuple[str, ...]
    right_keys: tuple[str, ...]
    left_time: str
    right_time: str
    lower: int
    upper: int
    left_fields: tuple[tuple[str, str], ...]
    right_fields: tuple[tuple[str, str], ...]
    left_schema: StreamSchema | None = None
    right_schema: StreamSchema | None = None

    #: no record deletes anything (see :class:`sql.TemporalJoin`)
    deletes = False

    @property
    def right_time_field(self) -> str:
        """The joined-record field of the right input's event time."""
        return f"{self.right_alias}.{self.right_time}"

    def hold_of(self, time_field: str | None) -> int:
        """How far (ms) the join's output watermark trails the combined watermark so
        that no joined row is behind it, for a window over ``time_field`` (``None``:
        no window; the hold that covers both time columns)."""
        if time_field == self.left_time:
            return max(0, self.upper)
        if time_field == self.right_time_field:
            return max(0, -self.lower)
        return max(0, self.upper, -self.lower)

    def describe(self) -> str:
        """One line for ``partita describe``."""
        return (
            f"{self.kind.upper()} interval join of stream {self.left} (as {self.left_alias}) "
            f"with stream {self.right} (as {self.right_alias}) on "
            + ", ".join(
                f"{self.left_alias}.{a} = {self.right_alias}.{b}"
                for a, b in zip(self.left_keys, self.right_keys, strict=True)
            )
            + f", {self.right_alias}.{self.right_time} - {self.left_alias}.{self.left_time} "
            f"in [{self.lower}, {self.upper}] ms"
        )


# -- planning ----------------------------------------------------------------------------


def _time_side(
    node: exp.Expr, aliases: dict[str, int], sql: str, ms: Callable[..., int]
) -> tuple[int, str, int]:
    """``(side, column, offset ms)`` of ``alias.col [+|- INTERVAL ...]``."""
    sign, offset = 1, 0
    base = node
    while isinstance(base, exp.Paren):
        base = base.this
    if isinstance(base, exp.Add | exp.Sub):
        sign = 1 if isinstance(base, exp.Add) else -1
        interval = base.expression
        if isinstance(base.this, exp.Interval) and isinstance(base, exp.Add):
            interval, base_col = base.this, base.expression
        else:
            base_col = base.this
        offset = sign * ms(interval, sql, "a join interval")
        base = base_col
        while isinstance(base, exp.Paren):
            base = base.this
    if not isinstance(base, exp.Column) or not base.table or base.table not in aliases:
        raise _err(
            sql,
            node,
            "an interval join bounds one stream's time column by the other's: write "
            "p.ts BETWEEN o.ts - INTERVAL ... AND o.ts + INTERVAL ... (or p.ts >= o.ts ...)",
        )
    return aliases[base.table], base.name, offset


def plan_interval_join(
    select: exp.Select,
    sql: str,
    interval_ms: Callable[..., int],
) -> IntervalJoin | None:
    """Plan the interval join of ``select`` (if it has one) and rewrite its columns to
    joined-record fields, removing the join (``select`` changes in place).

    ``interval_ms(node, sql, what)`` reads an interval literal (:mod:`sql._plan`'s).

    Raises:
        SqlError: with the position: a second join, an unqualified column, bounds
            that do not relate the two time columns, an empty range, ...
    """
    joins = select.args.get("joins") or []
    if not any(isinstance(j, exp.Join) and bounds_time(j) for j in joins):
        return None
    join = joins[0]
    sides = stream_sides(select, join, sql, "an interval join")
    kind: IntervalKind = (
        "left" if sides.side == "LEFT" else "full" if sides.side == "FULL" else "inner"
    )
    aliases = sides.aliases
    on = join.args["on"]
    lower, upper = float("-inf"), float("inf")
    times: set[tuple[int, str]] = set()
    equalities: list[exp.Expr] = []
    for term in conjuncts(on):
        if isinstance(term, exp.EQ):
            equalities.append(term)
            continue
        if not isinstance(term, _RANGE):
            raise _err(
                sql,
                term,
                "an interval join's ON takes equalities of the two streams' columns and "
                "bounds on their time columns, joined by AND",
            )
        bounds: list[tuple[exp.Expr, str, exp.Expr]]
        if isinstance(term, exp.Between):
            bounds = [(term.this, ">=", term.args["low"]), (term.this, "<=", term.args["high"])]
        else:
            op = {exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}[type(term)]
            bounds = [(term.this, op, term.expression)]
        for a_node, op, b_node in bounds:
            a_side, a_col, a_off = _time_side(a_node, aliases, sql, interval_ms)
            b_side, b_col, b_off = _time_side(b_node, aliases, sql, interval_ms)
            if a_side == b_side:
                raise _err(sql, term, "a time bound must relate the two streams' time columns")
            times |= {(a_side, a_col), (b_side, b_col)}
            # a + a_off OP b + b_off, as d = right - left OP' c
            if a_side == _RIGHT:  # r OP l + (b_off - a_off)
                c, rel = b_off - a_off, op
            else:  # l + a_off OP r + b_off  <=>  r OP^-1 l + (a_off - b_off)
                c, rel = a_off - b_off, {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
            if rel == "<":
                upper = min(upper, c - 1)
            elif rel == "<=":
                upper = min(upper, c)
            elif rel == ">":
                lower = max(lower, c + 1)
            else:
                lower = max(lower, c)
    left_times = {col for s, col in times if s == _LEFT}
    right_times = {col for s, col in times if s == _RIGHT}
    if len(left_times) != 1 or len(right_times) != 1:
        raise _err(
            sql, on, "the time bounds of an interval join must use one time column per stream"
        )
    if lower == float("-inf") or upper == float("inf"):
        raise _err(
            sql,
            on,
            "an interval join needs a lower and an upper time bound (p.ts BETWEEN o.ts - "
            "INTERVAL ... AND o.ts + INTERVAL ...): without both its state cannot be evicted",
        )
    if lower > upper:
        raise _err(sql, on, f"the time bounds match nothing: {int(lower)} ms > {int(upper)} ms")
    if not equalities:
        raise _err(sql, on, "an interval join needs at least one equality o.col = p.col")
    left_keys, right_keys = equality_keys(equalities, sides, sql, "an interval join")
    (left_time,) = left_times
    (right_time,) = right_times
    left_fields, right_fields = rewrite_to_joined(select, join, equalities, sides, sql)
    return IntervalJoin(
        left=sides.left.name,
        left_alias=sides.left_alias,
        right=sides.right.name,
        right_alias=sides.right_alias,
        kind=kind,
        left_keys=left_keys,
        right_keys=right_keys,
        left_time=left_time,
        right_time=right_time,
        lower=int(lower),
        upper=int(upper),
        left_fields=left_fields,
        right_fields=right_fields,
    )


# -- the source side: one stage per input ------------------------------------------------


@attrs.define
class JoinSideStage:
    """One input of an interval join at its source side (a
    :class:`partita.sql.RoutingStage`): event time, the input's watermark and late
    records, and the split by the join key.

    Each record goes on as ``[key, event time, fields]`` (only the fields the query
    reads, under their joined-record names) to the partition owning its key.  A
    record is late when its event time is behind the input's watermark as of that
    record (its max event time before it, minus ``lateness``); late records are
    dropped and counted, or dead-lettered, by ``late``.  A record without a usable
    event time, or whose key cannot be hashed, is a bad record by ``on_error``.
    """

    _partitions: int = attrs.field(validator=attrs.validators.ge(1))
    _time: str
    _keys: tuple[str, ...]
    _fields: tuple[tuple[str, str], ...]
    _lateness: int
    _late_policy: LatePolicy
    _policy: RecordErrors
    #: the key and time columns of a changelog: a record with no other value deletes
    _deletes: frozenset[str] | None = None
    #: a declared schema's coercion (:func:`sql._schema.gen_coerce`), if any
    _coerce: Callable[..., Any] | None = None
    _max_ts: int | None = None
    _cache: dict[Any, int] = attrs.Factory(dict)
    _rows_in: int = 0
    _late: int = 0
    #: idle before any event time, its router says so (:class:`runtime.Idle`): the
    #: join leaves this input out of the least watermark until it has one
    announces_idle: ClassVar[bool] = True

    @classmethod
    def create(
        cls,
        join: StreamJoin,
        side: Literal["left", "right"],
        partitions: int,
        *,
        lateness: int,
        on_error: OnError,
        late: LatePolicy,
        coerce: Callable[..., Any] | None = None,
    ) -> JoinSideStage:
        """The stage of the ``side`` input of ``join`` (``coerce``: its declared
        schema's coercion)."""
        if side == "left":
            time, keys, fields = join.left_time, join.left_keys, join.left_fields
        else:
            time, keys, fields = join.right_time, join.right_keys, join.right_fields
        return cls(
            partitions,
            time,
            keys,
            fields,
            lateness,
            late,
            RecordErrors(on_error, f"join-{side}"),
            frozenset((*keys, time)) if join.deletes and side == "right" else None,
            coerce,
        )

    @property
    def partitions(self) -> int:
        """How many join partitions the records are split across."""
        return self._partitions

    def watermark(self) -> int | None:
        """This input's watermark, or ``None`` before any event time was seen."""
        return None if self._max_ts is None else self._max_ts - self._lateness

    def route(self, batch: Batch) -> Routed:
        """Split ``batch`` by the join key's hash."""
        nparts = self._partitions
        parts: list[list[Any]] = [[] for _ in range(nparts)]
        adds = [p.append for p in parts]
        records, offsets = batch.records, batch.offsets
        policy = self._policy
        errored_before, dead_before = policy.errored, len(policy.dead)
        if self._coerce is not None:
            records, skip = self._coerce(records, offsets, policy.record_failed)
            if skip and len(offsets):
                skipped = set(skip)
                offsets = [o for i, o in enumerate(offsets) if i not in skipped]
        time, keys, fields, lateness = self._time, self._keys, self._fields, self._lateness
        single = keys[0] if len(keys) == 1 else None
        cache = self._cache
        deletes = self._deletes
        mx = self._max_ts
        late: list[tuple[int, int, int]] = []
        for i, r in enumerate(records):
            try:
                t = r[time]
                if t.__class__ is not int:
                    t = to_epoch_ms(t)
                if single is not None:
                    k = r.get(single)
                else:
                    parts_ = tuple(r.get(c) for c in keys)
                    k = None if None in parts_ else parts_
                known = 0 if nparts == 1 else cache.get(k)
                p = partition_of(cache, k, nparts) if known is None else known
            except Exception as exc:
                policy.record_failed(exc, r, offsets, i)
                continue
            if mx is not None and t < mx - lateness:
                late.append((i, t, mx - lateness))
                continue
            if mx is None or t > mx:
                mx = t
            if deletes is not None and all(
                v is None for c, v in r.items() if c not in deletes
            ):  # a tombstone
                adds[p]([k, t, None])
                continue
            adds[p]([k, t, {f: r.get(c) for c, f in fields}])
        self._max_ts = mx
        self._rows_in += policy.errored - errored_before
        dead: list[DeadLetter] = policy.dead[dead_before:]
        del policy.dead[dead_before:]
        return Routed(
            [Batch(part) if part else None for part in parts],
            self.watermark(),
            self._take_late(late, records, offsets),
            dead,
        )

    def _take_late(
        self, late: list[tuple[int, int, int]], records: list[Record], offsets: Sequence[int]
    ) -> list[DeadLetter]:
        if not late:
            return []
        self._late += len(late)
        self._rows_in += len(late)
        if self._late_policy == "drop":
            return []
        return [
            DeadLetter(
                records[i],
                f"late: event time {t} is behind watermark {wm}; the join has evicted its interval",
                offsets[i] if i < len(offsets) else None,
                self._policy.stage,
            )
            for i, t, wm in late
        ]

    def on_idle(self, idle_ms: int) -> int | None:
        """The input was idle for ``idle_ms``: its event time advances by as much
        (``None`` while it has seen no event time)."""
        if idle_ms < 0:
            raise ValueError(f"idle_ms must be >= 0, not {idle_ms}")
        if self._max_ts is None:
            return None
        self._max_ts += idle_ms
        return self.watermark()

    def counts(self) -> ProgramCounts:
        """The records this stage consumed itself (late or errored)."""
        return ProgramCounts(rows_in=self._rows_in, late=self._late, errored=self._policy.errored)

    def error_reasons(self) -> tuple[tuple[str, int], ...]:
        """The records this stage gave up on, by reason (bounded)."""
        return self._policy.reasons.snapshot()

    def take_dead_letters(self) -> list[DeadLetter]:
        """Dead letters not yet handed out (none normally)."""
        return self._policy.take()

    def snapshot(self) -> object:
        """Event time so far and the counters, for a checkpoint."""
        return {
            "max_ts": self._max_ts,
            "rows_in": self._rows_in,
            "late": self._late,
            "errors": self._policy.snapshot(),
        }

    def restore(self, state: Any) -> None:
        """Take back what :meth:`snapshot` returned (before the first batch)."""
        self._max_ts = state["max_ts"]
        self._rows_in = state["rows_in"]
        self._late = state["late"]
        self._policy.restore(state["errors"])


# -- the partition side: the join's state ------------------------------------------------


@attrs.define
class IntervalJoinState:
    """One partition's interval join: each side's records still in reach, by key.

    ``left(entries)`` and ``right(entries)`` take a side's routed records
    (``[key, event time, fields]``) and return the joined rows they make;
    ``advance(watermark)`` evicts what the combined watermark put out of reach and
    returns the outer rows of the unmatched; ``finish()`` those of everything left.

    Example:
        >>> from partita.sql import compile_query
        >>> q = compile_query(
        ...     "SELECT o.id, p.amount FROM orders o LEFT JOIN payments p ON o.id = p.oid "
        ...     "AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '10' SECOND"
        ... )
        >>> state = IntervalJoinState.of(q.plan.interval_join)
        >>> state.left([[1, 0, {"id": 1}], [2, 0, {"id": 2}]])
        []
        >>> state.right([[1, 4000, {"p.amount": 9.5}]])
        [{'id': 1, 'p.amount': 9.5}]
        >>> state.advance(10_001)  # order 2 can match no payment any more
        [{'id': 2, 'p.amount': None}]
        >>> state.held()
        0
    """

    _lower: int
    _upper: int
    _left_outer: bool
    _right_outer: bool
    _left_nulls: dict[str, None]
    _right_nulls: dict[str, None]
    _multi_key: bool
    _sides: tuple[dict[Any, list[list[Any]]], dict[Any, list[list[Any]]]] = attrs.field(
        factory=lambda: ({}, {})
    )
    _heaps: tuple[list[tuple[int, int, Any, list[Any]]], list[tuple[int, int, Any, list[Any]]]] = (
        attrs.field(factory=lambda: ([], []))
    )
    _wm: int | None = None
    _seq: int = 0

    @classmethod
    def of(cls, join: IntervalJoin) -> IntervalJoinState:
        """An empty state for ``join``."""
        return cls(
            join.lower,
            join.upper,
            join.kind in ("left", "full"),
            join.kind == "full",
            dict.fromkeys(f for _, f in join.left_fields),
            dict.fromkeys(f for _, f in join.right_fields),
            len(join.left_keys) > 1,
        )

    def left(self, entries: Sequence[list[Any]]) -> list[Record]:
        """Left records arrived: their joined rows (and outer rows of the ones already
        out of reach)."""
        return self._arrive(_LEFT, entries)

    def right(self, entries: Sequence[list[Any]]) -> list[Record]:
        """Right records arrived: as :meth:`left`."""
        return self._arrive(_RIGHT, entries)

    def _arrive(self, side: int, entries: Sequence[list[Any]]) -> list[Record]:
        out: list[Record] = []
        append = out.append
        lo, hi = self._lower, self._upper
        mine, other = self._sides[side], self._sides[1 - side]
        heap = self._heaps[side]
        left = side == _LEFT
        outer = self._left_outer if left else self._right_outer
        nulls = self._right_nulls if left else self._left_nulls
        wm = self._wm
        # a record is out of reach once its bound is behind the combined watermark
        reach = -hi if left else lo
        # d = right time - left time in [lo, hi]: for a left record at t the right
        # times [t + lo, t + hi], for a right one the left times [t - hi, t - lo]
        d_lo, d_hi = (lo, hi) if left else (-hi, -lo)
        get = other.get
        push = heapq.heappush
        seq = self._seq
        for k, t, fields in entries:
            matched = False
            if k is not None:
                bucket = get(k)
                if bucket is not None:
                    low, high = t + d_lo, t + d_hi
                    for e in bucket:
                        if low <= e[0] <= high:
                            append({**fields, **e[1]} if left else {**e[1], **fields})
                            e[2] = matched = True
            if k is None or (wm is not None and t - reach < wm):
                if outer and not matched:  # no record to come can match it
                    append({**fields, **nulls} if left else {**nulls, **fields})
                continue
            entry = [t, fields, matched]
            bucket = mine.get(k)
            if bucket is None:
                mine[k] = [entry]
            else:
                bucket.append(entry)
            seq += 1
            push(heap, (t - reach, seq, k, entry))
        self._seq = seq
        return out

    def advance(self, watermark: int) -> list[Record]:
        """The combined watermark reached ``watermark``: evict what no record to come
        can match; the outer rows of the evicted unmatched."""
        if self._wm is not None and watermark <= self._wm:
            return []
        self._wm = watermark
        out: list[Record] = []
        pop = heapq.heappop
        for side in (_LEFT, _RIGHT):
            heap, records = self._heaps[side], self._sides[side]
            if not heap or heap[0][0] >= watermark:
                continue
            outer = self._left_outer if side == _LEFT else self._right_outer
            nulls = self._right_nulls if side == _LEFT else self._left_nulls
            shared: list[Any] = []  # keys holding more records than the evicted one
            while heap and heap[0][0] < watermark:
                _, _, k, entry = pop(heap)
                if outer and not entry[2]:
                    f = entry[1]
                    out.append({**f, **nulls} if side == _LEFT else {**nulls, **f})
                bucket = records.get(k)
                if bucket is not None and len(bucket) == 1:
                    del records[k]  # the common case: a key's only record
                else:
                    entry[1] = None  # evicted: dropped from its bucket below
                    shared.append(k)
            for k in shared:
                bucket = records.get(k)
                if bucket is None:
                    continue
                kept = [e for e in bucket if e[1] is not None]
                if kept:
                    records[k] = kept
                else:
                    del records[k]
        return out

    def finish(self) -> list[Record]:
        """End of both inputs: the outer rows of every unmatched record still held."""
        out: list[Record] = []
        for side in (_LEFT, _RIGHT):
            outer = self._left_outer if side == _LEFT else self._right_outer
            nulls = self._right_nulls if side == _LEFT else self._left_nulls
            if outer:
                for _, _, _, entry in sorted(self._heaps[side]):
                    if not entry[2]:
                        f = entry[1]
                        out.append({**f, **nulls} if side == _LEFT else {**nulls, **f})
            self._sides[side].clear()
            self._heaps[side].clear()
        return out

    def memory_view(self) -> object:
        """What the state holds, for a size estimate (no copy)."""
        return self._sides

    def held(self) -> int:
        """How many records the state holds (both sides)."""
        return len(self._heaps[_LEFT]) + len(self._heaps[_RIGHT])

    def snapshot(self) -> object:
        """Every record held (``[key, time, fields, matched]`` per side) and the
        watermark, as plain data."""
        return {
            "wm": self._wm,
            "sides": [
                [[k, e[0], e[1], e[2]] for _, _, k, e in sorted(heap)] for heap in self._heaps
            ],
        }

    def restore(self, state: Any) -> None:
        """Take back what :meth:`snapshot` returned."""
        self._wm = state["wm"]
        self._sides[_LEFT].clear()
        self._sides[_RIGHT].clear()
        for side, rows in enumerate(state["sides"]):
            heap = self._heaps[side]
            heap.clear()
            reach = -self._upper if side == _LEFT else self._lower
            for k, t, fields, matched in rows:
                key = tuple(k) if self._multi_key and isinstance(k, list) else k
                entry = [t, fields, matched]
                self._sides[side].setdefault(key, []).append(entry)
                self._seq += 1
                heap.append((t - reach, self._seq, key, entry))
            heapq.heapify(heap)
