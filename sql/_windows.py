"""Window semantics in one place: each kind of window owns its state.

A partition program keeps its group state in one :class:`WindowState`, chosen once
per query by :func:`new_window_state`: :class:`PlainGroups` (no window: groups
until the end of input), :class:`AlignedWindows` (TUMBLE and HOP: groups per window
start), :class:`CumulateWindows` (CUMULATE: groups per window end, as its windows
share their start) or :class:`SessionWindows` (per key, merged as they touch).  Each owns its
dicts, closes what a watermark passed, applies late updates within the retention
and evicts what is older, and snapshots itself for a checkpoint.  The program only
counts and delegates; the generated code gets what it needs from
:meth:`WindowState.process_args`.

Nothing here is SQL-specific: a state is built from :class:`WindowRules` (the kind of window,
its size or gap, when rows are emitted, what a late record does, how long closed
windows are kept) and an :class:`Aggregation` (four plain callables: ``init``,
``step``, ``merge``, ``row``), so a Python operator can keep its windows in the
same classes.  The caller assigns records to windows and steps the accumulators
(the dicts of :meth:`WindowState.process_args`, keyed by window start, then by
group key); the state closes, re-emits and evicts:

    >>> from partita.sql import (
    ...     Aggregation, RecordErrors, WindowRules, WindowSpec, new_window_state
    ... )
    >>> rules = WindowRules(WindowSpec("tumble", "ts", 10, 10))
    >>> count = Aggregation(
    ...     init=lambda: 0,
    ...     step=lambda acc, record: (acc or 0) + 1,
    ...     merge=lambda a, b: a + b,
    ...     row=lambda key, acc, ws, we: {"key": key, "n": acc, "start": ws},
    ... )
    >>> state = new_window_state(rules, count, RecordErrors("skip", "counter"))
    >>> _, windows, _, _ = state.process_args()
    >>> for key, ts in [("a", 1), ("a", 4), ("b", 12)]:
    ...     groups = windows.setdefault(ts - ts % 10, {})
    ...     groups[key] = count.step(groups.get(key), None)
    >>> state.advance(10)
    [{'key': 'a', 'n': 2, 'start': 0}]
    >>> state.finish(saw_batch=True)
    [{'key': 'b', 'n': 1, 'start': 10}]
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any, Literal, Protocol

import attrs

from partita.runtime import DeadLetter, Record

from ._plan import LogicalPlan, WindowSpec
from ._policy import RecordErrors
from ._query_config import LatePolicy

__all__ = [
    "Aggregation",
    "AlignedWindows",
    "CumulateWindows",
    "PlainGroups",
    "SessionWindows",
    "WindowContext",
    "WindowRules",
    "WindowState",
    "new_window_state",
]

# End of input closes every window, however far in the future it ends: event times are
# Python ints, unbounded, and an int compares exactly with infinity.
_END_OF_INPUT = math.inf

Groups = dict[Any, list[Any]]


class WindowState(Protocol):
    """The group state of one partition, with the rules of its kind of window."""

    late: int
    """Records this state counted late (dropped, dead-lettered or late-updated)."""

    def process_args(self) -> tuple[Any, Any, Any, Any]:
        """``(groups, windows, on_session, on_late)`` for the generated ``process``."""
        ...

    def take_pending(self) -> list[Record]:
        """Rows of windows closed mid-batch (they come before the batch's own rows)."""
        ...

    def advance(self, watermark: int) -> list[Record]:
        """Close what ends at or before ``watermark``; evict what left the retention."""
        ...

    def finish(self, saw_batch: bool) -> list[Record]:
        """End of input: close everything and return the rows."""
        ...

    def open_window_ends(self) -> list[int]:
        """The ends of the windows (sessions) still open, for self-checks."""
        ...

    def scheduled_closes(self) -> int:
        """Close entries waiting (sessions); for tests and stats."""
        ...

    def late_record(self, record: Any, offset: int | None, why: str) -> None:
        """Count ``record`` late (every window it would join is closed) and, unless the
        late policy is ``"drop"``, dead-letter it with ``why`` (for a caller that decides
        lateness of aligned windows itself, as a Flow window does)."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """The state as plain data (for a checkpoint)."""
        ...

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`snapshot` returned."""
        ...


@attrs.frozen
class WindowRules:
    """The rules of one kind of window, whoever steps its accumulators.

    Attributes:
        window: the kind and size (or gap) of window; ``None`` for plain groups that
            live until the end of input.
        emit: ``"final"``, a row per group when its window closes; ``"changes"``, the
            caller emits on every update and closing emits nothing.
        late: what a record for a closed window does: ``"drop"`` (counted),
            ``"dead-letter"`` (counted and dead-lettered) or ``"update"`` (the closed
            window's group is updated and re-emitted while retained).
        retention_ms: how long (in event time past a window's end) a closed window is
            kept for late updates.
        aggregated: ``False`` for a projection, which keeps no groups.
        global_group: the groups have no key (SQL's aggregate without GROUP BY): end
            of input emits one row even when no group was stepped.
    """

    window: WindowSpec | None
    emit: Literal["changes", "final"] = "final"
    late: LatePolicy = "drop"
    retention_ms: int = 0
    aggregated: bool = True
    global_group: bool = False

    @classmethod
    def of_plan(cls, plan: LogicalPlan, late: LatePolicy, retention_ms: int) -> WindowRules:
        """The rules of a SQL query's plan."""
        return cls(
            window=plan.window,
            emit=plan.emit,
            late=late,
            retention_ms=retention_ms,
            aggregated=plan.aggregated,
            global_group=plan.aggregated and not plan.group_keys,
        )


@attrs.frozen
class Aggregation:
    """The accumulator of a group, as four plain callables.

    Attributes:
        init: a fresh accumulator (for the global group of an empty input).
        step: ``step(acc, args)`` returns the accumulator after one more input;
            ``acc`` is ``None`` for a group's first input.
        merge: ``merge(a, b)`` joins two accumulators (sessions that come to touch).
        row: ``row(key, acc, window_start, window_end)`` returns the output row of a
            group, or ``None`` for none (SQL's HAVING).
    """

    init: Callable[[], Any]
    step: Callable[[Any, Any], Any]
    merge: Callable[[Any, Any], Any]
    row: Callable[[Any, Any, int | None, int | None], Record | None]

    @classmethod
    def of_functions(cls, functions: dict[str, Callable[..., Any]]) -> Aggregation | None:
        """The generated ``init``, ``step``, ``merge`` and ``row`` of a SQL query
        (``None`` for a projection, which has none)."""
        if "step" not in functions:
            return None
        return cls(functions["init"], functions["step"], functions["merge"], functions["row"])


def _no_aggregation() -> Aggregation:
    def never(*args: Any) -> Any:  # pragma: no cover - a projection keeps no groups
        raise AssertionError("a projection has no accumulators")

    return Aggregation(never, never, never, never)


@attrs.frozen
class WindowContext:
    """What a window state works with: its rules, its accumulator and the error policy."""

    rules: WindowRules
    aggregation: Aggregation
    policy: RecordErrors

    @property
    def late_policy(self) -> LatePolicy:
        return self.rules.late

    @property
    def retention_ms(self) -> int:
        return self.rules.retention_ms

    def emit(self, groups: Groups, ws: int | None, we: int | None, rows: list[Record]) -> None:
        """Append the rows of ``groups`` (a row that cannot be built goes to the policy)."""
        make_row = self.aggregation.row
        for key, state in groups.items():
            try:
                row = make_row(key, state, ws, we)
            except Exception as exc:  # the row of a closed group cannot be built
                self.policy.row_failed(exc, {"key": key, "window_start": ws, "window_end": we})
                continue
            if row is not None:
                rows.append(row)


def _unused(*args: Any) -> list[Record]:  # pragma: no cover - never called
    raise AssertionError("this query's generated code has no such slow path")


@attrs.define
class _Base:
    _ctx: WindowContext
    late: int = 0
    _pending: list[Record] = attrs.Factory(list)

    def take_pending(self) -> list[Record]:
        pending = self._pending
        if pending:
            self._pending = []
        return pending

    def scheduled_closes(self) -> int:
        return 0

    def late_record(self, record: Any, offset: int | None, why: str) -> None:
        self.late += 1
        if self._ctx.late_policy != "drop":
            self._ctx.policy.dead.append(
                DeadLetter(record, f"late: {why}", offset, self._ctx.policy.stage)
            )


@attrs.define
class PlainGroups(_Base):
    """No window: groups live until the end of input (or a projection: no state)."""

    _groups: Groups = attrs.Factory(dict)

    def process_args(self) -> tuple[Any, Any, Any, Any]:
        return self._groups, {}, _unused, _unused

    def advance(self, watermark: int) -> list[Record]:
        return []

    def finish(self, saw_batch: bool) -> list[Record]:
        rules = self._ctx.rules
        rows: list[Record] = []
        if rules.aggregated:
            if rules.emit == "final":
                groups = self._groups
                if not groups and rules.global_group and saw_batch:
                    groups = {(): self._ctx.aggregation.init()}
                self._ctx.emit(groups, None, None, rows)
            self._groups = {}
        return rows

    def open_window_ends(self) -> list[int]:
        return []

    def snapshot(self) -> dict[str, Any]:
        return {"groups": self._groups, "late": self.late, "pending": self._pending}

    def restore(self, state: dict[str, Any]) -> None:
        self._groups = state["groups"]
        self.late = state["late"]
        self._pending = state["pending"]


@attrs.define
class AlignedWindows(_Base):
    """TUMBLE and HOP: groups per window start; closed windows retained for late updates."""

    _windows: dict[int, Groups] = attrs.Factory(dict)
    _closed: dict[int, Groups] = attrs.Factory(dict)

    def process_args(self) -> tuple[Any, Any, Any, Any]:
        return {}, self._windows, _unused, self._late_update

    def advance(self, watermark: int) -> list[Record]:
        rows = self._close_until(watermark)
        self._evict(watermark)
        return rows

    def finish(self, saw_batch: bool) -> list[Record]:
        rows = self._close_until(_END_OF_INPUT)
        self._closed.clear()
        return rows

    def open_window_ends(self) -> list[int]:
        return [self._bounds(w)[1] for w, groups in self._windows.items() if groups]

    def snapshot(self) -> dict[str, Any]:
        return {
            "windows": self._windows,
            "closed": self._closed,
            "late": self.late,
            "pending": self._pending,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._windows = state["windows"]
        self._closed = state["closed"]
        self.late = state["late"]
        self._pending = state["pending"]

    def _size(self) -> int:
        window = self._ctx.rules.window
        assert window is not None
        return window.size_ms

    def _bounds(self, w: int) -> tuple[int, int]:
        """``(start, end)`` of the window kept under ``w`` (here its start)."""
        return w, w + self._size()

    def _end(self, w: int) -> int:
        return w + self._size()

    def _close_until(self, watermark: float) -> list[Record]:
        ctx = self._ctx
        rows: list[Record] = []
        final = ctx.rules.emit == "final"
        keep = ctx.late_policy == "update"
        end = self._end
        # by end, then start (the keys of one kind sort so)
        for w in sorted(w for w in self._windows if end(w) <= watermark):
            groups = self._windows.pop(w)
            if final:
                ctx.emit(groups, *self._bounds(w), rows)
            if keep:
                self._closed[w] = groups
        return rows

    def _evict(self, watermark: int) -> None:
        if self._ctx.late_policy != "update":
            return
        horizon = watermark - self._ctx.retention_ms
        end = self._end
        for w in [w for w in self._closed if end(w) <= horizon]:
            del self._closed[w]

    def _late_update(
        self,
        record: Any,
        offset: int | None,
        key: Any,
        w: int,
        args: tuple[Any, ...],
        wm: int,
        count: bool,
    ) -> list[Record]:
        """A record for the closed window kept under ``w``: update its retained state,
        re-emit."""
        # closing first, into pending: those rows stand even if this record then fails
        self._pending += self.advance(wm)
        rows: list[Record] = []
        ws, we = self._bounds(w)
        # retention is decided by event time alone, so every partition agrees
        if we <= wm - self._ctx.retention_ms:
            if count:
                self.late_record(
                    record,
                    offset,
                    f"window [{ws}, {we}) is closed and no longer retained",
                )
            return rows
        retained = self._closed.setdefault(w, {})
        state = self._ctx.aggregation.step(retained.get(key), args)
        retained[key] = state
        if count:
            self.late += 1
        self._ctx.emit({key: state}, ws, we, rows)
        return rows


@attrs.define
class CumulateWindows(AlignedWindows):
    """CUMULATE: the windows ``[start, start + k * step)`` of one aligned start share it,
    so groups are kept per window end (the start is the end's multiple of the size)."""

    def _bounds(self, w: int) -> tuple[int, int]:
        size = self._size()
        return (w - 1) - (w - 1) % size, w

    def _end(self, w: int) -> int:
        return w


@attrs.define
class SessionWindows(_Base):
    """SESSION: per key a list of ``[start, end, state]``, merged as they touch; a heap
    says when each key with open sessions is next looked at."""

    _sessions: dict[Any, list[list[Any]]] = attrs.Factory(dict)
    _closed_sessions: dict[Any, list[list[Any]]] = attrs.Factory(dict)
    _heap: list[tuple[int, int, Any]] = attrs.Factory(list)
    # the time each key with open sessions is scheduled to be looked at (its heap entry)
    _due: dict[Any, int] = attrs.Factory(dict)
    _seq: int = 0

    def process_args(self) -> tuple[Any, Any, Any, Any]:
        return {}, {}, self._session, _unused

    def advance(self, watermark: int) -> list[Record]:
        rows = self._close_until(watermark)
        self._evict(watermark)
        return rows

    def finish(self, saw_batch: bool) -> list[Record]:
        rows = self._close_until(_END_OF_INPUT)
        self._closed_sessions.clear()
        return rows

    def open_window_ends(self) -> list[int]:
        return [s[1] for spans in self._sessions.values() for s in spans]

    def scheduled_closes(self) -> int:
        """How many session-close entries are waiting (bounded by the keys with open
        sessions, plus at most one superseded entry per key)."""
        return len(self._heap)

    def snapshot(self) -> dict[str, Any]:
        return {
            "sessions": self._sessions,
            "closed_sessions": self._closed_sessions,
            "heap": self._heap,
            "due": self._due,
            "seq": self._seq,
            "late": self.late,
            "pending": self._pending,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._sessions = state["sessions"]
        self._closed_sessions = state["closed_sessions"]
        self._heap = state["heap"]
        self._due = state["due"]
        self._seq = state["seq"]
        self.late = state["late"]
        self._pending = state["pending"]

    def _gap(self) -> int:
        window = self._ctx.rules.window
        assert window is not None
        return window.size_ms

    def _session(
        self, record: Any, offset: int | None, key: Any, t: int, args: tuple[Any, ...], wm: int
    ) -> list[Record]:
        """Add a record at event time ``t`` to the sessions of ``key``."""
        ctx = self._ctx
        gap = self._gap()
        step, merge = ctx.aggregation.step, ctx.aggregation.merge
        rows: list[Record] = []
        sessions = self._sessions.get(key)
        if sessions and any(s[1] <= wm for s in sessions):
            self._close_key(key, wm, self._pending)
            sessions = self._sessions.get(key)
        end = t + gap
        hits = [s for s in sessions or () if s[0] <= end and t <= s[1]]
        if not hits:
            if end <= wm:
                return self._late_session(record, offset, key, t, args, wm, rows)
            state = step(None, args)
            start = t
        else:
            merged = hits[0][2]
            for other in hits[1:]:
                merged = merge(merged, other[2])
            state = step(merged, args)
            start = min(t, hits[0][0])
            end = max(end, *(s[1] for s in hits))
        kept = [s for s in sessions or () if not any(s is h for h in hits)]
        kept.append([start, end, state])
        kept.sort(key=lambda s: s[0])
        self._sessions[key] = kept
        self._schedule(key, kept[0][1] if len(kept) == 1 else min(s[1] for s in kept))
        if ctx.rules.emit == "changes":
            ctx.emit({key: state}, start, end, rows)
        return rows

    def _schedule(self, key: Any, end: int) -> None:
        """Look at ``key`` when the watermark reaches ``end`` (its earliest session end).

        A key keeps one live entry: a session that grows does not add one per record;
        an entry for a later time than needed is superseded, not searched for.
        """
        due = self._due.get(key)
        if due is not None and due <= end:
            return  # already looked at no later than that; it reschedules itself then
        if due is not None and len(self._heap) > 2 * len(self._due) + 64:
            self._heap = [e for e in self._heap if self._due.get(e[2]) == e[0]]
            heapq.heapify(self._heap)
        self._due[key] = end
        self._seq += 1
        heapq.heappush(self._heap, (end, self._seq, key))

    def _late_session(
        self,
        record: Any,
        offset: int | None,
        key: Any,
        t: int,
        args: tuple[Any, ...],
        wm: int,
        rows: list[Record],
    ) -> list[Record]:
        ctx = self._ctx
        if ctx.late_policy == "update":
            horizon = wm - ctx.retention_ms
            gap = self._gap()
            for closed in self._closed_sessions.get(key, ()):
                if closed[0] <= t + gap and t <= closed[1] and closed[1] > horizon:
                    closed[2] = ctx.aggregation.step(closed[2], args)
                    self.late += 1
                    ctx.emit({key: closed[2]}, closed[0], closed[1], rows)
                    return rows
        self.late_record(record, offset, f"event time {t} joins no open session of its key")
        return rows

    def _close_until(self, watermark: float) -> list[Record]:
        rows: list[Record] = []
        heap, due = self._heap, self._due
        while heap and heap[0][0] <= watermark:
            at, _, key = heapq.heappop(heap)
            if due.get(key) != at:
                continue  # superseded by an earlier time for the key
            del due[key]
            self._close_key(key, watermark, rows)
            sessions = self._sessions.get(key)
            if sessions:
                self._schedule(key, min(s[1] for s in sessions))
                heap = self._heap  # _schedule may have compacted it
        return rows

    def _close_key(self, key: Any, watermark: float, rows: list[Record]) -> None:
        sessions = self._sessions.get(key)
        if not sessions:
            return
        ctx = self._ctx
        still_open = []
        for session in sessions:
            if session[1] <= watermark:
                if ctx.rules.emit == "final":
                    ctx.emit({key: session[2]}, session[0], session[1], rows)
                if ctx.late_policy == "update":
                    self._closed_sessions.setdefault(key, []).append(session)
            else:
                still_open.append(session)
        if still_open:
            self._sessions[key] = still_open
        else:
            del self._sessions[key]

    def _evict(self, watermark: int) -> None:
        if self._ctx.late_policy != "update":
            return
        horizon = watermark - self._ctx.retention_ms
        for key in list(self._closed_sessions):
            kept = [s for s in self._closed_sessions[key] if s[1] > horizon]
            if kept:
                self._closed_sessions[key] = kept
            else:
                del self._closed_sessions[key]


_KINDS: dict[str, type[AlignedWindows] | type[SessionWindows]] = {
    "tumble": AlignedWindows,
    "hop": AlignedWindows,
    "cumulate": CumulateWindows,
    "session": SessionWindows,
}


def new_window_state(
    rules: WindowRules, aggregation: Aggregation | None, policy: RecordErrors
) -> WindowState:
    """The window state of ``rules``' kind of window (chosen here, once per program).

    ``aggregation`` is ``None`` only for a projection (``rules.aggregated`` false);
    ``policy`` takes the rows that cannot be built and the late records' dead letters
    (named after its ``stage``).
    """
    if aggregation is None:
        if rules.aggregated:
            raise ValueError("an aggregating window state needs an Aggregation")
        aggregation = _no_aggregation()
    ctx = WindowContext(rules, aggregation, policy)
    if rules.window is None:
        return PlainGroups(ctx)
    return _KINDS[rules.window.kind](ctx)
