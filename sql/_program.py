"""The partition program: owns one partition's group and window state.

It runs the generated fused loop on each batch, closes windows when the watermark
passes their end, and implements the slower paths in plain Python: session windows
(merging, per-record lateness) and re-emitting updated rows for late records.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from partita.runtime import Batch, DeadLetter, Record

from ._conventions import Processed
from ._interface import ProgramCounts
from ._plan import LogicalPlan
from ._policy import OnError, RecordErrors
from ._query_config import LatePolicy

__all__ = ["SqlProgram"]

# End of input closes every window, however far in the future it ends: event times are
# Python ints, unbounded, and an int compares exactly with infinity.
_END_OF_INPUT = math.inf


@attrs.define
class SqlProgram:
    """One partition's compiled program (the ``partita.sql.PartitionProgram`` protocol).

    Create it with ``CompiledQuery.new_program()``.
    """

    _plan: LogicalPlan
    _functions: dict[str, Callable[..., Any]]
    _late_policy: LatePolicy
    _retention_ms: int
    _policy: RecordErrors
    _groups: dict[Any, list[Any]] = attrs.Factory(dict)
    _windows: dict[int, dict[Any, list[Any]]] = attrs.Factory(dict)
    _closed: dict[int, dict[Any, list[Any]]] = attrs.Factory(dict)
    _sessions: dict[Any, list[list[Any]]] = attrs.Factory(dict)
    _closed_sessions: dict[Any, list[list[Any]]] = attrs.Factory(dict)
    _heap: list[tuple[int, int, Any]] = attrs.Factory(list)
    # the time each key with open sessions is scheduled to be looked at (its heap entry)
    _due: dict[Any, int] = attrs.Factory(dict)
    _seq: int = 0
    _wm: int | None = None
    _saw_batch: bool = False
    _pending: list[Record] = attrs.Factory(list)
    _rows_in: int = 0
    _rows_out: int = 0
    _filtered: int = 0
    _late: int = 0

    @classmethod
    def create(
        cls,
        plan: LogicalPlan,
        functions: dict[str, Callable[..., Any]],
        *,
        on_error: OnError,
        late: LatePolicy,
        retention_ms: int,
    ) -> SqlProgram:
        """A fresh program with empty state."""
        return cls(plan, functions, late, retention_ms, RecordErrors(on_error, "sql-partition"))

    # -- partita.sql.PartitionProgram -----------------------------------------------------

    def process(self, batch: Batch) -> list[Record]:
        """Run one batch; return the rows it emits now."""
        self._saw_batch = True
        self._rows_in += len(batch.records)
        result: Processed = self._functions["process"](
            batch.records,
            batch.offsets,
            batch.watermarks,
            self._groups,
            self._windows,
            self._bad,
            self._session,
            self._late_update,
        )
        rows = result.rows
        self._filtered += result.filtered
        if self._pending:  # rows of windows the slow paths closed mid-batch come first
            rows = self._pending + rows
            self._pending = []
        self._rows_out += len(rows)
        return rows

    def advance(self, watermark: int) -> list[Record]:
        """The watermark reached ``watermark``: close windows, return their rows."""
        if self._wm is not None and watermark <= self._wm:
            return []
        self._wm = watermark
        rows = self._close_until(watermark)
        self._evict(watermark)
        self._rows_out += len(rows)
        return rows

    def finish(self) -> list[Record]:
        """End of stream: close everything, return the final rows."""
        plan = self._plan
        rows: list[Record] = []
        if plan.aggregated and plan.window is None:
            if plan.emit == "final":
                groups = self._groups
                if not groups and not plan.group_keys and self._saw_batch:
                    groups = {(): self._functions["init"]()}
                self._emit_groups(groups, None, None, rows)
            self._groups = {}
        elif plan.window is not None:
            rows = self._close_until(_END_OF_INPUT)
            self._closed.clear()
            self._closed_sessions.clear()
        self._rows_out += len(rows)
        return rows

    def take_dead_letters(self) -> list[DeadLetter]:
        """Records that failed or were late since the last call."""
        return self._policy.take()

    def error_reasons(self) -> tuple[tuple[str, int], ...]:
        """This partition's errors by reason (bounded), most frequent first."""
        return self._policy.reasons.snapshot()

    _STATE = (
        "_groups",
        "_windows",
        "_closed",
        "_sessions",
        "_closed_sessions",
        "_heap",
        "_due",
        "_seq",
        "_wm",
        "_saw_batch",
        "_pending",
        "_rows_in",
        "_rows_out",
        "_filtered",
        "_late",
    )

    def snapshot(self) -> object:
        """Everything this partition holds, as plain data, for a checkpoint.

        Groups and their accumulators, open and retained windows, sessions and
        their schedule, the watermark, rows not yet emitted, the counters.
        Encoded at once by the checkpoint (the program may change it after).
        """
        state = {name[1:]: getattr(self, name) for name in self._STATE}
        state["errors"] = self._policy.snapshot()
        return state

    def restore(self, state: Any) -> None:
        """Take back what :meth:`snapshot` returned (before the first batch)."""
        for name in self._STATE:
            setattr(self, name, state[name[1:]])
        self._policy.restore(state["errors"])

    def counts(self) -> ProgramCounts:
        """This partition's counters."""
        return ProgramCounts(
            rows_in=self._rows_in,
            rows_out=self._rows_out,
            filtered=self._filtered,
            late=self._late,
            errored=self._policy.errored + self._policy.rows_failed,
        )

    # -- passed to the generated code (sql._conventions) -----------------------------

    def _bad(self, exc: Exception, record: Any, offsets: Sequence[int], index: int) -> None:
        self._policy.record_failed(exc, record, offsets, index)

    def _late_record(self, record: Any, offset: int | None, why: str) -> None:
        self._late += 1
        if self._late_policy != "drop":
            self._policy.dead.append(DeadLetter(record, f"late: {why}", offset, "sql-partition"))

    def _late_update(
        self,
        record: Any,
        offset: int | None,
        key: Any,
        ws: int,
        args: tuple[Any, ...],
        wm: int,
        count: bool,
    ) -> list[Record]:
        """A record for the closed window at ``ws``: update its retained state, re-emit."""
        # closing first, into _pending: those rows stand even if this record then fails
        self._pending += self._close_until(wm)
        self._evict(wm)
        rows: list[Record] = []
        window = self._plan.window
        assert window is not None
        # retention is decided by event time alone, so every partition agrees
        if ws + window.size_ms <= wm - self._retention_ms:
            if count:
                self._late_record(
                    record,
                    offset,
                    f"window [{ws}, {ws + window.size_ms}) is closed and no longer retained",
                )
            return rows
        retained = self._closed.setdefault(ws, {})
        state = self._functions["step"](retained.get(key), args)
        retained[key] = state
        if count:
            self._late += 1
        self._emit_groups({key: state}, ws, ws + window.size_ms, rows)
        return rows

    def _session(
        self, record: Any, offset: int | None, key: Any, t: int, args: tuple[Any, ...], wm: int
    ) -> list[Record]:
        """Add a record at event time ``t`` to the sessions of ``key``."""
        window = self._plan.window
        assert window is not None
        gap = window.size_ms
        step, merge = self._functions["step"], self._functions["merge"]
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
        if self._plan.emit == "changes":
            self._emit_groups({key: state}, start, end, rows)
        return rows

    def scheduled_closes(self) -> int:
        """How many session-close entries are waiting (bounded by the keys with open
        sessions, plus at most one superseded entry per key); for tests and stats."""
        return len(self._heap)

    # -- internals --------------------------------------------------------------------

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
        window = self._plan.window
        assert window is not None
        if self._late_policy == "update":
            horizon = wm - self._retention_ms
            for closed in self._closed_sessions.get(key, ()):
                if closed[0] <= t + window.size_ms and t <= closed[1] and closed[1] > horizon:
                    closed[2] = self._functions["step"](closed[2], args)
                    self._late += 1
                    self._emit_groups({key: closed[2]}, closed[0], closed[1], rows)
                    return rows
        self._late_record(
            record,
            offset,
            f"event time {t} joins no open session of its key",
        )
        return rows

    def _emit_groups(
        self, groups: dict[Any, list[Any]], ws: int | None, we: int | None, rows: list[Record]
    ) -> None:
        make_row = self._functions["row"]
        for key, state in groups.items():
            try:
                row = make_row(key, state, ws, we)
            except Exception as exc:  # the row of a closed group cannot be built
                self._policy.row_failed(exc, {"key": key, "window_start": ws, "window_end": we})
                continue
            if row is not None:
                rows.append(row)

    def _close_until(self, watermark: float) -> list[Record]:
        """Close every window (or session) whose end is at or before ``watermark``."""
        window = self._plan.window
        rows: list[Record] = []
        if window is None:
            return rows
        final = self._plan.emit == "final"
        if window.kind == "session":
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
            return rows
        size = window.size_ms
        for ws in sorted(w for w in self._windows if w + size <= watermark):
            groups = self._windows.pop(ws)
            if final:
                self._emit_groups(groups, ws, ws + size, rows)
            if self._late_policy == "update":
                self._closed[ws] = groups
        return rows

    def _close_key(self, key: Any, watermark: float, rows: list[Record]) -> None:
        sessions = self._sessions.get(key)
        if not sessions:
            return
        still_open = []
        for session in sessions:
            if session[1] <= watermark:
                if self._plan.emit == "final":
                    self._emit_groups({key: session[2]}, session[0], session[1], rows)
                if self._late_policy == "update":
                    self._closed_sessions.setdefault(key, []).append(session)
            else:
                still_open.append(session)
        if still_open:
            self._sessions[key] = still_open
        else:
            del self._sessions[key]

    def _evict(self, watermark: int) -> None:
        """Forget closed state older than the retention (late updates only)."""
        window = self._plan.window
        if window is None or self._late_policy != "update":
            return
        horizon = watermark - self._retention_ms
        for ws in [w for w in self._closed if w + window.size_ms <= horizon]:
            del self._closed[ws]
        for key in list(self._closed_sessions):
            kept = [s for s in self._closed_sessions[key] if s[1] > horizon]
            if kept:
                self._closed_sessions[key] = kept
            else:
                del self._closed_sessions[key]
