"""A deliberately naive reference for windowed (and plain grouped) streaming SQL.

It is the test oracle for ``sql``'s windows, written from DESIGN.md's "Precise time
semantics" alone and meant to be obviously right rather than fast:

* records are processed one at a time, in source order;
* the watermark is exact per record: ``max(event time seen so far) - allowed lateness``;
  every record with a valid event time advances it (filtered ones too: the source sees
  them); a record without a valid event time is errored and advances nothing;
* lateness is decided per record against that watermark (TUMBLE/HOP/CUMULATE: late when
  every window it belongs to has ``window_end <= watermark``; a HOP or CUMULATE record
  joins the open ones only; SESSION: late when it neither joins nor bridges an open
  session of its key and ``ts + gap <= watermark``);
* after each record, every window with ``window_end <= watermark`` closes and emits its
  final row; end of input closes the rest;
* windows live in plain dicts; aggregates keep plain lists of the values they saw.

A query is described by a :class:`WindowQuery` (Python callables stand for the SQL
expressions), not parsed from SQL: the test catalogue pairs each SQL text with one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import hypothesis.strategies as st

Record: TypeAlias = dict[str, Any]
Expr: TypeAlias = Callable[[Record], Any]

__all__ = [
    "KEYS",
    "STRINGS",
    "Agg",
    "Cumulate",
    "Hop",
    "ReferenceResult",
    "Session",
    "Tumble",
    "Window",
    "WindowQuery",
    "compiled",
    "cumulate_windows",
    "duckdb_rows",
    "hop_windows",
    "normalize",
    "normalize_row",
    "on_time",
    "record_strategy",
    "row_key",
    "run_reference",
    "run_sql",
    "streams",
]


@dataclass(frozen=True)
class Tumble:
    """``TUMBLE(ts, size)``: aligned, non-overlapping windows ``[k*size, (k+1)*size)``."""

    size_ms: int


@dataclass(frozen=True)
class Hop:
    """``HOP(ts, slide, size)``: aligned windows of ``size`` starting every ``slide``."""

    size_ms: int
    slide_ms: int


@dataclass(frozen=True)
class Cumulate:
    """``CUMULATE(ts, step, size)``: ``[s, s + k * step)`` for every multiple ``s`` of
    ``size`` and ``k = 1 .. size / step``."""

    size_ms: int
    step_ms: int


@dataclass(frozen=True)
class Session:
    """``SESSION(ts, gap)``: ``[first ts, last ts + gap]``; touching sessions merge."""

    gap_ms: int


Window: TypeAlias = Tumble | Hop | Cumulate | Session

AggKind: TypeAlias = Literal["count_star", "count", "count_distinct", "sum", "avg", "min", "max"]


@dataclass(frozen=True)
class Agg:
    """One aggregate of the SELECT list: ``kind`` over ``arg`` (``None`` for COUNT(*))."""

    alias: str
    kind: AggKind
    arg: Expr | None = None


@dataclass(frozen=True)
class WindowQuery:
    """A grouped query: ``SELECT keys, [window bounds], aggs ... GROUP BY keys, window``.

    ``window=None`` is a plain (non-windowed) GROUP BY: one group per key, closed only at
    end of input; ``ts`` is then unused.  ``where`` and ``having`` follow SQL's
    three-valued logic: only ``True`` keeps a record/row.  ``having`` sees the output row.
    """

    keys: tuple[tuple[str, Expr], ...]
    aggs: tuple[Agg, ...]
    window: Window | None = None
    ts: str = "ts"
    where: Expr | None = None
    having: Callable[[Record], bool | None] | None = None
    bounds: bool = True  # the SELECT list has window_start / window_end


@dataclass
class ReferenceResult:
    """What the reference makes of a stream.

    ``final_rows`` are the rows of ``EMIT FINAL`` in closing order; ``change_rows`` the
    rows of ``EMIT CHANGES`` (one per (record, group it joined), source order).  Every
    record lands in exactly one of aggregated / filtered / late / errored, except that a
    record that is both filtered by WHERE and late is counted in ``filtered_and_late``
    (DESIGN.md does not say which check comes first).
    """

    final_rows: list[Record] = field(default_factory=list)
    change_rows: list[Record] = field(default_factory=list)
    rows_in: int = 0
    aggregated: int = 0
    filtered: int = 0
    late: int = 0
    filtered_and_late: int = 0
    errored: int = 0
    late_offsets: list[int] = field(default_factory=list)
    watermark: int | None = None


def hop_windows(ts: int, size_ms: int, slide_ms: int) -> list[tuple[int, int]]:
    """Every aligned HOP window ``[start, start + size)`` containing ``ts``, oldest first."""
    out: list[tuple[int, int]] = []
    start = ts - ts % slide_ms
    while start > ts - size_ms:
        out.append((start, start + size_ms))
        start -= slide_ms
    out.reverse()
    return out


def cumulate_windows(ts: int, size_ms: int, step_ms: int) -> list[tuple[int, int]]:
    """Every CUMULATE window containing ``ts``, searched naively: each window of every
    start near ``ts`` (a multiple of the size), kept when ``start <= ts < end``."""
    out: list[tuple[int, int]] = []
    base = (ts // size_ms) * size_ms
    for start in range(base - 2 * size_ms, base + 3 * size_ms, size_ms):
        for k in range(1, size_ms // step_ms + 1):
            if start <= ts < start + k * step_ms:
                out.append((start, start + k * step_ms))
    return out


@dataclass
class _Group:
    """The naive state of one (key, window): every record value, kept as a list."""

    start: int
    end: int
    count_star: int = 0
    values: dict[str, list[Any]] = field(default_factory=dict)


def _truthy(value: Any) -> bool:
    return value is True or (value is not None and value is not False and bool(value))


def _aggregate(agg: Agg, group: _Group) -> Any:
    if agg.kind == "count_star":
        return group.count_star
    values = [v for v in group.values.get(agg.alias, []) if v is not None]
    if agg.kind == "count":
        return len(values)
    if agg.kind == "count_distinct":
        return len(set(values))
    if not values:
        return None
    if agg.kind == "sum":
        return sum(values)
    if agg.kind == "avg":
        return sum(values) / len(values)
    if agg.kind == "min":
        return min(values)
    if agg.kind == "max":
        return max(values)
    raise AssertionError(agg.kind)


def _row(query: WindowQuery, key: tuple[Any, ...], group: _Group) -> Record:
    row: Record = {}
    for (alias, _), value in zip(query.keys, key, strict=True):
        row[alias] = value
    if query.window is not None and query.bounds:
        row["window_start"] = group.start
        row["window_end"] = group.end
    for agg in query.aggs:
        row[agg.alias] = _aggregate(agg, group)
    return row


def _add(query: WindowQuery, group: _Group, record: Record) -> None:
    group.count_star += 1
    for agg in query.aggs:
        if agg.arg is not None:
            group.values.setdefault(agg.alias, []).append(agg.arg(record))


def _valid_ts(record: Record, name: str) -> int | None:
    ts = record.get(name)
    if isinstance(ts, int) and not isinstance(ts, bool):
        return ts
    return None


def run_reference(
    query: WindowQuery,
    records: Sequence[Record],
    *,
    allowed_lateness: int = 0,
    session_close_first: bool = False,
) -> ReferenceResult:
    """Run ``query`` over ``records`` one record at a time; see the module docstring.

    ``session_close_first=True`` is a variant reading of the session rules: before a record
    is assigned, sessions whose end its own watermark has reached are closed, so with
    lateness 0 an in-order record exactly ``gap`` after a session's last record starts a
    new session instead of joining (the current implementation's reading; DESIGN.md says
    records exactly ``gap`` apart join, which is the default here).
    """
    result = ReferenceResult()
    # open windows: (key, start, end) -> group; plain dict, scanned naively
    open_groups: dict[tuple[tuple[Any, ...], int, int], _Group] = {}
    max_seen: int | None = None
    window = query.window

    def emit_final(key: tuple[Any, ...], group: _Group) -> None:
        row = _row(query, key, group)
        if query.having is None or _truthy(query.having(row)):
            result.final_rows.append(row)

    def close_upto(watermark: int) -> None:
        for gk in sorted(open_groups, key=lambda g: (g[2], g[1], repr(g[0]))):
            if gk[2] <= watermark:
                emit_final(gk[0], open_groups.pop(gk))

    for offset, record in enumerate(records):
        result.rows_in += 1
        ts = watermark = 0
        if window is not None:
            valid_ts = _valid_ts(record, query.ts)
            if valid_ts is None:
                result.errored += 1
                continue
            ts = valid_ts
            max_seen = ts if max_seen is None else max(max_seen, ts)
            watermark = max_seen - allowed_lateness
            result.watermark = watermark
        filtered = query.where is not None and not _truthy(query.where(record))
        key = tuple(expr(record) for _, expr in query.keys)

        targets: list[tuple[tuple[Any, ...], int, int]] = []
        late = False
        if window is None:
            targets = [(key, 0, 0)]
        elif isinstance(window, Tumble):
            start = ts - ts % window.size_ms
            end = start + window.size_ms
            late = end <= watermark
            targets = [(key, start, end)]
        elif isinstance(window, Hop):
            spans = hop_windows(ts, window.size_ms, window.slide_ms)
            targets = [(key, s, e) for s, e in spans if e > watermark]
            late = not targets
        elif isinstance(window, Cumulate):
            spans = cumulate_windows(ts, window.size_ms, window.step_ms)
            targets = [(key, s, e) for s, e in spans if e > watermark]
            late = not targets
        else:
            if session_close_first:
                close_upto(watermark)
            lo, hi = ts, ts + window.gap_ms
            touching = [g for g in open_groups if g[0] == key and g[1] <= hi and lo <= g[2]]
            late = not touching and hi <= watermark
            targets = touching

        if filtered and late:
            result.filtered_and_late += 1
        elif filtered:
            result.filtered += 1
        elif late:
            result.late += 1
            result.late_offsets.append(offset)
        else:
            result.aggregated += 1
            if isinstance(window, Session):
                # merge the record's interval with every open session it touches
                lo, hi = ts, ts + window.gap_ms
                merged = _Group(lo, hi)
                for gk in targets:
                    old = open_groups.pop(gk)
                    merged.start = min(merged.start, old.start)
                    merged.end = max(merged.end, old.end)
                    merged.count_star += old.count_star
                    for alias, values in old.values.items():
                        merged.values.setdefault(alias, []).extend(values)
                _add(query, merged, record)
                open_groups[(key, merged.start, merged.end)] = merged
                result.change_rows.append(_row(query, key, merged))
            else:
                for gk in targets:
                    group = open_groups.get(gk)
                    if group is None:
                        group = open_groups[gk] = _Group(gk[1], gk[2])
                    _add(query, group, record)
                    result.change_rows.append(_row(query, key, group))
        if window is not None:
            close_upto(watermark)

    for gk in sorted(open_groups, key=lambda g: (g[2], g[1], repr(g[0]))):
        emit_final(gk[0], open_groups.pop(gk))
    return result


def _norm_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            return repr(number)
        rounded = float(f"{number:.6g}")
        return 0.0 if rounded == 0 else rounded
    return repr(value)


def normalize_row(row: Record) -> tuple[tuple[str, Any], ...]:
    """A hashable, float-tolerant form of a row: numbers rounded to 6 significant digits."""
    return tuple(sorted((k, _norm_value(v)) for k, v in row.items()))


def normalize(rows: Iterable[Record]) -> Counter[tuple[tuple[str, Any], ...]]:
    """Rows as a multiset of :func:`normalize_row` forms (order ignored)."""
    return Counter(normalize_row(r) for r in rows)


def row_key(row: Record, names: Sequence[str]) -> tuple[Any, ...]:
    """The values of ``names`` in ``row`` (a group identity)."""
    return tuple(row[n] for n in names)


# --------------------------------------------------------------------------------------
# Hypothesis strategies shared by the oracle and property tests.
# Every generated record has every field; any field but ``ts`` may be None.  Event times
# are multiples of 250 ms so that window boundaries, ties and "exactly gap apart" are
# common; ``y`` values are quarter-integers so that float sums are exact in any order.
# --------------------------------------------------------------------------------------

KEYS: tuple[str | None, ...] = ("a", "b", "c", None)
STRINGS: tuple[str, ...] = ("apple", "Apple", "banana", "cherry", "", "a_b", "x%y", "bab")

record_strategy: st.SearchStrategy[Record] = st.fixed_dictionaries(
    {
        "ts": st.integers(0, 40).map(lambda i: i * 250),
        "k": st.sampled_from(("a", *KEYS)),  # "a" twice: runs of one key are common
        "g": st.none() | st.integers(-2, 2),
        "x": st.none() | st.integers(-50, 50),
        "y": st.none() | st.integers(-400, 400).map(lambda i: i / 4),
        "s": st.none() | st.sampled_from(STRINGS),
    }
)

_STEPS = (-1000, -500, -250, 0, 0, 250, 250, 250, 500, 1000)


@st.composite
def streams(draw: st.DrawFn, min_size: int = 0, max_size: int = 40) -> list[Record]:
    """Records in one of three orders: as drawn, sorted by ts, or a random walk in time
    (mostly ascending, with some records behind the front: late or not by lateness)."""
    records = draw(st.lists(record_strategy, min_size=min_size, max_size=max_size))
    mode = draw(st.sampled_from(["walk", "random", "sorted", "walk"]))
    if mode == "sorted":
        records.sort(key=lambda r: r["ts"])
    elif mode == "walk":
        t = draw(st.integers(0, 8)) * 250
        for r in records:
            t = max(0, t + draw(st.sampled_from(_STEPS)))
            r["ts"] = t
    return records


# --------------------------------------------------------------------------------------
# Running the implementation: one compile per (SQL, options), cached across examples.
# --------------------------------------------------------------------------------------

_COMPILED: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}


def compiled(sql_text: str, **options: Any) -> Any:
    """``sql.compile_query(sql_text, **options)``, compiled once per distinct argument set."""
    from partita import sql

    key = (sql_text, tuple(sorted(options.items())))
    query = _COMPILED.get(key)
    if query is None:
        query = _COMPILED[key] = sql.compile_query(sql_text, **options)
    return query


def run_sql(
    sql_text: str,
    records: Sequence[Record],
    *,
    partitions: int = 1,
    batch_size: int = 1000,
    **options: Any,
) -> Any:
    """``sql.run_query`` on a cached :func:`compiled` query (records are copied first)."""
    from partita import sql

    return sql.run_query(
        compiled(sql_text, **options),
        [dict(r) for r in records],
        partitions=partitions,
        batch_size=batch_size,
    )


def on_time(records: list[Record], lateness: int) -> list[Record]:
    """The records of one stream (with ``ts``) that are not late in that stream's own
    order: behind its max event time before them by more than ``lateness``."""
    kept: list[Record] = []
    high = None
    for record in records:
        if high is not None and record["ts"] < high - lateness:
            continue
        kept.append(record)
        high = record["ts"] if high is None else max(high, record["ts"])
    return kept


def duckdb_rows(
    query: str, tables: dict[str, tuple[dict[str, str], Sequence[Record]]]
) -> list[Record]:
    """``query`` run by DuckDB over ``tables`` (name -> (column types, rows)), as dicts."""
    import duckdb

    con = duckdb.connect()
    try:
        for name, (columns, rows) in tables.items():
            con.execute(
                f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in columns.items())})"
            )
            if rows:
                con.executemany(
                    f"INSERT INTO {name} VALUES ({', '.join('?' for _ in columns)})",
                    [[row.get(c) for c in columns] for row in rows],
                )
        cursor = con.execute(query)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
