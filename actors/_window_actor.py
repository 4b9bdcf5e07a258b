"""The actor behind a Flow window: the SQL layer's window state, stepped by Python folds.

Its windows live in one :class:`sql.WindowState` (:func:`sql.new_window_state`:
aligned windows or sessions, the classes SQL's partition programs use), so closing,
``EMIT CHANGES``, late updates, retention, session merging and checkpoints behave
as in SQL.  The actor does what SQL's generated loop does: per record, in one
synchronous pass over the batch, it reads the event time and the key, assigns the
record to its windows (or hands it to the session state), and judges lateness
against the exact watermark as of the record (:mod:`actors._event_clock`: stamped
by the ``key_by`` before the lanes, or by this actor's own clock on one lane).
Windows close when the watermark passes their end, at batch boundaries; end of
input closes all.
"""

from __future__ import annotations

from typing import Any

import attrs

from partita.runtime import (
    Batch,
    CheckpointCorrupt,
    DeadLetter,
    Record,
    decode_state,
    encode_state,
    estimate_state_nbytes,
)
from partita.sql import Aggregation, RecordErrors, WindowRules, WindowState, new_window_state

from ._event_clock import EventClock, EventTime
from ._operators import STATE_TYPES, KeyFn, OperatorActor
from ._window_aggs import WindowFold
from ._windowers import SessionWindow, TumblingWindow, Windower

__all__ = ["WindowActor"]


@attrs.define(eq=False)
class WindowActor(OperatorActor):
    """Keyed event-time windows over a lane of a Flow (see the module docstring).

    ``clock`` is ``None`` when the ``key_by`` before the lanes stamps each batch's
    watermarks and sends the lane's watermark; otherwise this actor sees the whole
    stream and keeps the clock itself.
    """

    windower: Windower
    time_of: EventTime
    key: KeyFn | None
    fold: WindowFold
    rules: WindowRules
    clock: EventClock | None = None
    key_field: str = "key"
    _aggregation: Aggregation = attrs.field(init=False)
    _state: WindowState = attrs.field(init=False)
    _window_errors: RecordErrors = attrs.field(init=False)
    _wm: int | None = attrs.field(init=False, default=None)
    _rows_failed: int = attrs.field(init=False, default=0)
    _late: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self._window_errors = RecordErrors(self.on_error, self.label or self.name)
        self._aggregation = self.fold.aggregation(self.key_field)
        self._state = new_window_state(self.rules, self._aggregation, self._window_errors)

    # -- handlers ---------------------------------------------------------------------

    def on_batch(self, batch: Batch) -> None:
        records = batch.records
        clock = self.clock
        if clock is not None:
            wms: Any = clock.stamp(records)
        elif batch.watermarks is not None:
            wms = batch.watermarks
        else:  # pragma: no cover - the key_by before the lanes stamps every batch
            raise AssertionError(f"{self.name}: a batch without its watermarks")
        letters: list[DeadLetter] = []
        if isinstance(self.windower, SessionWindow):
            rows = self._sessions(batch, wms, letters)
        elif isinstance(self.windower, TumblingWindow):
            rows = self._tumbling(batch, wms, letters)
        else:
            rows = self._aligned(batch, wms, letters)
        pending = self._state.take_pending()
        if pending:  # windows a late update or a session closed mid-batch come first
            rows = pending + rows
        if clock is not None:
            wm = clock.watermark()
            if wm is not None:
                rows += self._advance(wm)
        self._settle(letters)
        self.emit(rows)

    def on_watermark(self, ts: int) -> None:
        """The lane's watermark (from the ``key_by``): close what it passed.  Not
        forwarded: the rows out are windows, not the input stream."""
        if self.clock is not None:
            return  # this actor's own clock decides, upstream watermarks do not
        rows = self._advance(ts)
        letters: list[DeadLetter] = []
        self._settle(letters)
        self.emit(rows)

    def on_end(self) -> None:
        rows = self._state.finish(saw_batch=True)
        self._settle([])
        self.emit(rows)

    # -- the per-record loops ---------------------------------------------------------

    def _tumbling(self, batch: Batch, wms: Any, letters: list[DeadLetter]) -> list[Record]:
        """Tumbling windows: :meth:`_aligned` with one window per record (the last
        window's groups kept at hand, as SQL's generated loop does)."""
        state = self._state
        _, windows, _, on_late = state.process_args()
        time_of, key_of = self.time_of, self.key
        step = self.fold.step
        row = self._aggregation.row
        changes = self.rules.emit == "changes"
        update = self.rules.late == "update"
        windower = self.windower
        assert isinstance(windower, TumblingWindow)
        size = windower.size_ms
        out: list[Record] = []
        current: Any = None
        groups: dict[Any, Any] = {}
        for i, record in enumerate(batch.records):
            try:
                t = time_of(record)
                k = key_of(record) if key_of is not None else None
                ws = t - t % size
                wm = wms[i]
                if ws + size <= wm:  # its window is closed: late
                    if update:
                        out += on_late(record, batch.offset_of(i), k, ws, record, wm, True)
                    else:
                        state.late_record(
                            record,
                            batch.offset_of(i),
                            f"event time {t} is behind watermark {wm}; its windows are closed",
                        )
                    continue
                if ws != current:  # (an open window is never closed mid-batch)
                    found = windows.get(ws)
                    groups = windows[ws] = {} if found is None else found
                    current = ws
                acc = step(groups.get(k), record)
                if changes:
                    changed = row(k, acc, ws, ws + size)
                    if changed is not None:
                        out.append(changed)
                groups[k] = acc
            except Exception as exc:
                self.record_failed(exc, batch, i, letters)
        return out

    def _aligned(self, batch: Batch, wms: Any, letters: list[DeadLetter]) -> list[Record]:
        """Hopping windows: as SQL's generated loop, record by record."""
        state = self._state
        _, windows, _, on_late = state.process_args()
        records = batch.records
        time_of, key_of = self.time_of, self.key
        step = self.fold.step
        row = self._aggregation.row
        changes = self.rules.emit == "changes"
        update = self.rules.late == "update"
        windower = self.windower
        assert not isinstance(windower, SessionWindow)
        starts, size = windower.starts, windower.size_ms
        out: list[Record] = []
        for i, record in enumerate(records):
            try:
                t = time_of(record)
                k = key_of(record) if key_of is not None else None
                wm = wms[i]
                span = starts(t)
                last = span[-1]
                if last + size <= wm:  # every window it belongs to is closed: late
                    if update:
                        offset = batch.offset_of(i)
                        for ws in span:
                            out += on_late(record, offset, k, ws, record, wm, ws == last)
                    else:
                        state.late_record(
                            record,
                            batch.offset_of(i),
                            f"event time {t} is behind watermark {wm}; its windows are closed",
                        )
                    continue
                done: list[tuple[dict[Any, Any], Any]] = []
                made: list[Record] = []
                for ws in span:
                    if ws + size <= wm:  # closed: a HOP record joins the open ones only
                        if update:
                            made += on_late(record, batch.offset_of(i), k, ws, record, wm, False)
                        continue
                    groups = windows.get(ws)
                    if groups is None:
                        groups = windows[ws] = {}
                    acc = step(groups.get(k), record)
                    if changes:
                        changed = row(k, acc, ws, ws + size)
                        if changed is not None:
                            made.append(changed)
                    done.append((groups, acc))
                for groups, acc in done:  # stored once every window's step succeeded
                    groups[k] = acc
                out += made
            except Exception as exc:
                self.record_failed(exc, batch, i, letters)
        return out

    def _sessions(self, batch: Batch, wms: Any, letters: list[DeadLetter]) -> list[Record]:
        """Session windows: the session state assigns, merges and judges lateness."""
        _, _, on_session, _ = self._state.process_args()
        time_of, key_of = self.time_of, self.key
        out: list[Record] = []
        for i, record in enumerate(batch.records):
            try:
                t = time_of(record)
                k = key_of(record) if key_of is not None else None
                out += on_session(record, batch.offset_of(i), k, t, record, wms[i])
            except Exception as exc:
                self.record_failed(exc, batch, i, letters)
        return out

    # -- closing, counting ------------------------------------------------------------

    def _advance(self, wm: int) -> list[Record]:
        if self._wm is not None and wm <= self._wm:
            return []
        self._wm = wm
        return self._state.advance(wm)

    def _settle(self, letters: list[DeadLetter]) -> None:
        """Count what the window state counted (late records, rows that failed) and
        send its dead letters with the batch's own."""
        state, errors = self._state, self._window_errors
        if state.late != self._late:
            self.rows_late += state.late - self._late
            self._late = state.late
        if errors.rows_failed != self._rows_failed:
            self.count_error("output row failed", errors.rows_failed - self._rows_failed)
            self._rows_failed = errors.rows_failed
        letters += errors.take()
        self.send_dead_letters(letters)

    def state_nbytes(self) -> int:
        """The open and retained windows, sessions and their accumulators, estimated
        (sampled)."""
        return estimate_state_nbytes(self._state.snapshot())

    # -- checkpoints ------------------------------------------------------------------

    def snapshot_state(self) -> object:
        """The windows (accumulators, retained and pending ones, sessions and their
        schedule), the watermark and the clock, encoded at once.

        Raises:
            TypeError: an accumulator or a key holds a value a checkpoint cannot; one
                line naming this operator and its fold.
        """
        state = {
            "window": self._state.snapshot(),
            "wm": self._wm,
            "clock": None if self.clock is None else self.clock.max_ts,
            "errors": self._window_errors.snapshot(),
            "counted": [self._late, self._rows_failed],
        }
        try:
            return encode_state(state)
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"operator {self.name!r} ({self.fold.describe}): {exc}; a checkpointed "
                f"window holds only {STATE_TYPES}"
            ) from None

    def restore_state(self, state: object) -> None:
        """Take back what :meth:`snapshot_state` encoded."""
        saved = decode_state(state) if isinstance(state, bytes) else None
        if not isinstance(saved, dict) or set(saved) != {
            "window",
            "wm",
            "clock",
            "errors",
            "counted",
        }:
            raise CheckpointCorrupt(
                f"the windows of operator {self.name!r}", "not the window state it wrote"
            )
        self._state.restore(saved["window"])
        self._wm = saved["wm"]
        if self.clock is not None:
            self.clock.max_ts = saved["clock"]
        self._window_errors.restore(saved["errors"])
        self._late, self._rows_failed = saved["counted"]

    def open_window_ends(self) -> list[int]:
        """The ends of the windows (sessions) still open; for self-checks in tests."""
        return self._state.open_window_ends()
