"""Per-record error handling shared by the router and the partition programs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from partita.runtime import BadRecord, DeadLetter, ErrorReasons, OnError

__all__ = ["OnError", "RecordErrors", "describe_error"]


def describe_error(exc: BaseException) -> str:
    """A short reason for a record that failed: names the missing field or the error."""
    if isinstance(exc, KeyError) and exc.args:
        return f"missing field {exc.args[0]!r}"
    return f"{type(exc).__name__}: {exc}"


@attrs.define
class RecordErrors:
    """Applies ``on_error`` to failed records and keeps the dead letters of one owner."""

    on_error: OnError
    stage: str
    dead: list[DeadLetter] = attrs.Factory(list)
    errored: int = 0
    # output rows (not input records) that could not be built
    rows_failed: int = 0
    reasons: ErrorReasons = attrs.Factory(ErrorReasons)  # bounded, for stats

    def snapshot(self) -> object:
        """The counts, for a checkpoint (the dead letters were taken at every batch)."""
        return [self.errored, self.rows_failed, dict(self.reasons.snapshot())]

    def restore(self, state: Any) -> None:
        """Take back what :meth:`snapshot` returned."""
        self.errored, self.rows_failed, reasons = state
        self.reasons.replace(reasons)

    def record_failed(
        self, exc: Exception, record: Any, offsets: Sequence[int], index: int
    ) -> None:
        """Count a failed record; dead-letter it or raise :class:`runtime.BadRecord`."""
        offset = offsets[index] if index < len(offsets) else None
        reason = describe_error(exc)
        if self.on_error == "fail":
            raise BadRecord(reason, offset, self.stage) from exc
        self.errored += 1
        self.reasons.add(reason)
        if self.on_error == "dead-letter":
            self.dead.append(DeadLetter(record, reason, offset, self.stage))

    def row_failed(self, exc: Exception, what: dict[str, Any]) -> None:
        """An output row could not be built when a window closed (no input offset).

        ``what`` holds the group's ``key`` and its window's bounds; the reason names them.
        """
        start, end = what.get("window_start"), what.get("window_end")
        where = f"group {what.get('key')!r}"
        if start is not None:
            where += f" window [{start}, {end})"
        reason = f"output row of {where} failed: {describe_error(exc)}"
        if self.on_error == "fail":
            raise BadRecord(reason, None, self.stage) from exc
        self.rows_failed += 1
        self.reasons.add(f"output row failed: {describe_error(exc)}")
        if self.on_error == "dead-letter":
            self.dead.append(DeadLetter(what, reason, None, self.stage))

    def take(self) -> list[DeadLetter]:
        """The dead letters since the last call."""
        dead, self.dead = self.dead, []
        return dead
