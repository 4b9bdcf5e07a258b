"""The messages that cross mailboxes.

Records are plain ``dict[str, Any]`` so users bring their data as it is; what
crosses a mailbox is always one of the small frozen classes below, never a
record on its own.  ``Message`` is their union, dispatched with ``match``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import attrs

__all__ = [
    "Barrier",
    "Batch",
    "DeadLetter",
    "EndOfStream",
    "Message",
    "Record",
    "Watermark",
]

Record: TypeAlias = dict[str, Any]


@attrs.frozen(slots=True, eq=False)
class Batch:
    """A batch of records and the source offsets they came from.

    Args:
        records: the records, in source order.
        offsets: ``offsets[i]`` is the source offset of ``records[i]``; a
            ``range`` for a batch straight from a source (cheap), a list after
            routing.  Empty when offsets are not tracked.
        watermarks: for session-window queries only, ``watermarks[i]`` is the
            exact source watermark as of ``records[i]``; ``None`` otherwise.

    Example:
        >>> b = Batch.from_records([{"x": 1}, {"x": 2}], start=10)
        >>> len(b), b.offset_of(1)
        (2, 11)
    """

    records: list[Record]
    offsets: Sequence[int] = ()
    watermarks: Sequence[int] | None = None
    # the memory estimate of this batch, taken at its first mailbox and kept for the
    # next ones (a batch forwarded as it is crosses several): see estimate_nbytes
    _nbytes: int | None = attrs.field(init=False, default=None, eq=False, repr=False)

    @classmethod
    def from_records(cls, records: list[Record], start: int = 0) -> Batch:
        """A batch whose records sit at consecutive source offsets from ``start``."""
        return cls(records, range(start, start + len(records)))

    def __len__(self) -> int:
        return len(self.records)

    def offset_of(self, index: int) -> int | None:
        """The source offset of ``records[index]``, or ``None`` if untracked."""
        if index < len(self.offsets):
            return self.offsets[index]
        return None

    def __repr__(self) -> str:
        first = self.offsets[0] if len(self.offsets) else None
        return f"Batch(<{len(self.records)} records, first offset {first}>)"


@attrs.frozen(slots=True)
class Watermark:
    """Event time (epoch milliseconds) up to which the stream is complete.

    Sent in-band to every partition, so idle partitions advance too.
    """

    ts: int


@attrs.frozen(slots=True)
class Barrier:
    """A checkpoint barrier, forwarded in-band behind the data before it."""

    checkpoint_id: int = attrs.field(validator=attrs.validators.ge(0))


@attrs.frozen(slots=True)
class EndOfStream:
    """The sender will send nothing more; the receiver drains and completes."""


@attrs.frozen(slots=True)
class Idle:
    """The sender has no event time to hold its receiver back with, until its next
    :class:`Watermark` (a stream idle before any record: Flink's idle watermark status).

    A receiver with several inputs leaves an idle input out of the least watermark
    it combines, so the others are not held back forever; the input's next
    watermark puts it back (the combined watermark never goes back).

    Example:
        >>> Idle()
        Idle()
    """


Message: TypeAlias = Batch | Watermark | Barrier | EndOfStream | Idle


@attrs.frozen(slots=True)
class DeadLetter:
    """A record that could not be processed, with why and where it came from.

    Any actor may send one to a dead-letter output: ``record`` is the record as it
    was (or a description of the row that failed), ``reason`` says why, ``offset``
    is its source offset or input line when known, and ``stage`` names the actor
    or stage that gave up on it.
    """

    record: object
    reason: str
    offset: int | None = None
    stage: str = ""
