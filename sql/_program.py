"""The partition program: runs one partition's generated fused loop on each batch.

Its group and window state lives in one :class:`sql._windows.WindowState`, chosen
once per query (plain groups, aligned windows or sessions): the program counts,
dedupes watermarks and delegates closing, late updates and eviction to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from partita.runtime import Batch, CheckpointError, DeadLetter, Record

from ._conventions import Processed
from ._interface import ProgramCounts
from ._plan import LogicalPlan
from ._policy import OnError, RecordErrors
from ._query_config import LatePolicy
from ._windows import Aggregation, WindowRules, WindowState, new_window_state

__all__ = ["GROUP_LAYOUT", "SqlProgram"]

GROUP_LAYOUT = 2
"""The layout of a group's slots in a snapshot (:class:`sql._scopes.AggregateLayout`).

1: each COUNT, SUM and AVG counted its non-NULL values; 2: a group counts its rows once,
and they count their NULLs."""

_GROUP_KEYS = ("groups", "windows", "closed", "sessions", "closed_sessions")
"""The keys of a window state's snapshot that can hold groups."""

_MAX_SKIP = 64
"""At most this many batches skip the unchecked tier after it failed."""


@attrs.define
class SqlProgram:
    """One partition's compiled program (the ``partita.sql.PartitionProgram`` protocol).

    Create it with ``CompiledQuery.new_program()``.
    """

    _functions: dict[str, Callable[..., Any]]
    _policy: RecordErrors
    _window: WindowState
    _unchecked: Callable[..., Processed | None] | None = None
    _skip: int = 0  # batches left before the unchecked tier is tried again
    _backoff: int = 0  # how many it skipped after its last failure
    _wm: int | None = None
    _saw_batch: bool = False
    _rows_in: int = 0
    _rows_out: int = 0
    _filtered: int = 0

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
        policy = RecordErrors(on_error, "sql-partition")
        window = new_window_state(
            WindowRules.of_plan(plan, late, retention_ms),
            Aggregation.of_functions(functions),
            policy,
        )
        return cls(functions, policy, window, functions.get("process_unchecked"))

    # -- partita.sql.PartitionProgram -----------------------------------------------------

    def process(self, batch: Batch) -> list[Record]:
        """Run one batch; return the rows it emits now."""
        self._saw_batch = True
        self._rows_in += len(batch.records)
        window = self._window
        result = self._try_unchecked(batch.records)
        if result is None:
            groups, windows, on_session, on_late = window.process_args()
            result = self._functions["process"](
                batch.records,
                batch.offsets,
                batch.watermarks,
                groups,
                windows,
                self._bad,
                on_session,
                on_late,
            )
        rows = result.rows
        self._filtered += result.filtered
        pending = window.take_pending()
        if pending:  # rows of windows the slow paths closed mid-batch come first
            rows = pending + rows
        self._rows_out += len(rows)
        return rows

    def _try_unchecked(self, records: list[Record]) -> Processed | None:
        """The unchecked tier's result, or ``None`` (it failed, is skipped, or is none).

        After a failure it skips the next 1, 2, 4 ... up to ``_MAX_SKIP`` batches (reset
        by a success), so a stream with a NULL in every batch pays for about one
        partial pass in ``_MAX_SKIP``.
        """
        unchecked = self._unchecked
        if unchecked is None:
            return None
        if self._skip:
            self._skip -= 1
            return None
        result = unchecked(records)
        if result is None:
            self._backoff = self._skip = min(2 * self._backoff or 1, _MAX_SKIP)
        else:
            self._backoff = 0
        return result

    def advance(self, watermark: int) -> list[Record]:
        """The watermark reached ``watermark``: close windows, return their rows."""
        if self._wm is not None and watermark <= self._wm:
            return []
        self._wm = watermark
        rows = self._window.advance(watermark)
        self._rows_out += len(rows)
        return rows

    def finish(self) -> list[Record]:
        """End of stream: close everything, return the final rows."""
        rows = self._window.finish(self._saw_batch)
        self._rows_out += len(rows)
        return rows

    def take_dead_letters(self) -> list[DeadLetter]:
        """Records that failed or were late since the last call."""
        return self._policy.take()

    def error_reasons(self) -> tuple[tuple[str, int], ...]:
        """This partition's errors by reason (bounded), most frequent first."""
        return self._policy.reasons.snapshot()

    def snapshot(self) -> object:
        """Everything this partition holds, as plain data, for a checkpoint.

        Its window state (groups and their accumulators, open and retained windows,
        sessions and their schedule, rows not yet emitted), the watermark, the
        counters.  Encoded at once by the checkpoint (the program may change it after).
        One flat dict: the window state's keys (``groups``; ``windows``, ``closed``;
        ``sessions``, ``closed_sessions``, ``heap``, ``due``, ``seq``; ``late``,
        ``pending``) beside the program's, as before window states had their own
        module, so a checkpoint written then still restores.
        """
        return {
            **self._window.snapshot(),
            "wm": self._wm,
            "saw_batch": self._saw_batch,
            "rows_in": self._rows_in,
            "rows_out": self._rows_out,
            "filtered": self._filtered,
            "errors": self._policy.snapshot(),
            "group_layout": GROUP_LAYOUT,
        }

    def restore(self, state: Any) -> None:
        """Take back what :meth:`snapshot` returned (before the first batch).

        Raises:
            CheckpointError: the state holds groups kept in another layout of their
                slots (a checkpoint of an earlier partita): they would be misread.
        """
        layout = state.get("group_layout", 1)
        if layout != GROUP_LAYOUT and any(state.get(key) for key in _GROUP_KEYS):
            raise CheckpointError(
                "the state of a partition",
                f"holds groups in layout {layout} (an earlier partita's); this partita keeps "
                f"layout {GROUP_LAYOUT}: start afresh (fresh=True, --fresh)",
            )
        self._window.restore(state)
        self._wm = state["wm"]
        self._saw_batch = state["saw_batch"]
        self._rows_in = state["rows_in"]
        self._rows_out = state["rows_out"]
        self._filtered = state["filtered"]
        self._policy.restore(state["errors"])

    def counts(self) -> ProgramCounts:
        """This partition's counters."""
        return ProgramCounts(
            rows_in=self._rows_in,
            rows_out=self._rows_out,
            filtered=self._filtered,
            late=self._window.late,
            errored=self._policy.errored + self._policy.rows_failed,
        )

    def scheduled_closes(self) -> int:
        """How many session-close entries are waiting (bounded by the keys with open
        sessions, plus at most one superseded entry per key); for tests and stats."""
        return self._window.scheduled_closes()

    def open_window_ends(self) -> list[int]:
        """The ends of the windows (or sessions) still open; for self-checks in tests."""
        return self._window.open_window_ends()

    # -- passed to the generated code (sql._conventions) -----------------------------

    def _bad(self, exc: Exception, record: Any, offsets: Sequence[int], index: int) -> None:
        self._policy.record_failed(exc, record, offsets, index)
