"""Where a worker's pipeline writes: its output partition, and its dead letters.

Output partition ``p`` of output topic ``O`` is the stream ``{T:p}:out:O``
(under the input partition's hash tag, so one atomic commit can write it with
the partition's state).  With ``delivery="exactly-once"`` (the default) the
rows wait in :class:`PartitionOutputSink` until the next checkpoint and go to
Redis inside that checkpoint's fenced commit; with ``"at-least-once"`` they are
written at once, each with ``_partition`` and ``_offset`` (its sequence number
in the partition's output, the same when a new owner replays it) so a reader
can drop the repeats.  Dead letters go at once (at-least-once) to the stream
``{T:p}:dead:G``.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import attrs

from partita.runtime import Batch, Record, Sink

from ._redis_entries import END, encode_entry
from ._worker_retry import RedisRetry

__all__ = [
    "ENTRY_ROWS",
    "Delivery",
    "PartitionOutputSink",
    "RedisDeadLetterSink",
    "dead_letter_key",
]

Delivery: TypeAlias = Literal["exactly-once", "at-least-once"]

ENTRY_ROWS = 4096
"""Rows per output entry at most (an entry is one msgpack array)."""


def dead_letter_key(topic: str, partition: int, group: str) -> str:
    """The dead-letter stream of group ``group``'s pipeline of ``topic``'s ``partition``.

    Example:
        >>> dead_letter_key("orders", 3, "g")
        '{orders:3}:dead:g'
    """
    return f"{{{topic}:{partition}}}:dead:{group}"


def _check_delivery(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if value not in ("exactly-once", "at-least-once"):
        raise ValueError(f"delivery must be 'exactly-once' or 'at-least-once', got {value!r}")


def entries_of(rows: list[Record]) -> list[dict[bytes, bytes]]:
    """``rows`` as stream entries of at most :data:`ENTRY_ROWS` rows each."""
    return [encode_entry(rows[i : i + ENTRY_ROWS]) for i in range(0, len(rows), ENTRY_ROWS)]


@attrs.define(eq=False)
class PartitionOutputSink(Sink):
    """The end of a worker's pipeline: the rows of one partition, towards its output stream.

    Exactly-once: rows wait here; a checkpoint's snapshot stages those before its
    barrier (:meth:`staged_entries`), which the partition's store commits with
    the state in one fenced step (then :meth:`committed`); those after the last
    barrier are dropped if the partition moves (its next owner makes them again).
    The end of the input stages the rest, and the final commit adds the end marker.

    Example:
        >>> sink = PartitionOutputSink("sink", None, "{t:0}:out:o", 0, RedisRetry())
        >>> sink.mode, sink.pending_rows
        ('exactly-once', 0)

    Args:
        name: ``"sink"`` in a worker's pipeline.
        client: the worker's coredis client.
        key: the output stream (:func:`output_key`).
        partition: the input partition (``_partition`` of at-least-once rows).
        retry: the worker's retries of calls to Redis.
        mode: ``"exactly-once"`` or ``"at-least-once"``.
    """

    delivery = "exactly-once"  # with mode="at-least-once", at least once (see mode)
    client: Any
    key: str
    partition: int
    retry: RedisRetry
    mode: Delivery = attrs.field(default="exactly-once", kw_only=True, validator=_check_delivery)
    rows_emitted: int = attrs.field(init=False, default=0)
    restored_rows: int = attrs.field(init=False, default=0)
    """``rows_in`` as restored from the last commit: what earlier owners made."""
    _pending: list[Record] = attrs.field(init=False, factory=list)
    _staged: list[Record] = attrs.field(init=False, factory=list)

    @property
    def pending_rows(self) -> int:
        """Rows waiting for a commit (exactly-once): the worker checkpoints when many."""
        return len(self._pending) + len(self._staged)

    async def consume(self, batch: Batch) -> None:
        rows = batch.records
        if not rows:
            return
        if self.mode == "exactly-once":
            self._pending.extend(rows)
            self.rows_emitted += len(rows)
            return
        start, p = self.rows_emitted, self.partition
        tagged = [{**r, "_partition": p, "_offset": start + i} for i, r in enumerate(rows)]
        entries = entries_of(tagged)
        await self.retry.call(lambda: self._xadd(entries), what=f"XADD {self.key}")
        self.rows_emitted += len(rows)

    async def _xadd(self, entries: list[dict[bytes, bytes]]) -> None:
        for fields in entries:
            await self.client.xadd(self.key, fields)

    def snapshot_state(self) -> object:
        """How many rows the partition emitted; the rows before the barrier are staged."""
        self._staged.extend(self._pending)
        self._pending = []
        return {"emitted": self.rows_emitted}

    def restore_state(self, state: object) -> None:
        saved: Any = state
        self.rows_emitted = int(saved["emitted"])
        self.restored_rows = self.rows_in  # the cell restored the counters just before

    async def flush(self) -> None:
        """The input ended: every row is for the final commit."""
        self._staged.extend(self._pending)
        self._pending = []

    def staged_entries(self, *, end: bool = False) -> list[dict[bytes, bytes]]:
        """The entries of the rows staged (exactly-once), and the end marker with ``end``.

        The rows stay staged until :meth:`committed`: a commit that does not go
        through (cancelled, refused) leaves them for the next one.
        """
        entries = entries_of(self._staged)
        if end:
            entries.append({END: b""})
        return entries

    @property
    def staged_rows(self) -> int:
        return len(self._staged)

    def committed(self, rows: int) -> None:
        """The first ``rows`` staged rows went out with a commit."""
        del self._staged[:rows]


@attrs.define(eq=False)
class RedisDeadLetterSink(Sink):
    """Writes a pipeline's dead letters to the stream ``key``, one entry per batch, at once.

    Each entry is an ``r`` field like a topic's: a msgpack array of
    ``{"offset", "stage", "reason", "record"}`` maps.  At-least-once: a new owner
    replaying from the last commit writes the letters after it again.

    Example:
        >>> RedisDeadLetterSink("dead-letter", None, "{t:0}:dead:g", RedisRetry()).key
        '{t:0}:dead:g'
    """

    client: Any
    key: str
    retry: RedisRetry
    letters_written: int = attrs.field(init=False, default=0)

    async def consume(self, batch: Batch) -> None:
        rows = batch.records
        if not rows:
            return
        fields = encode_entry(rows, table=False)
        await self.retry.call(lambda: self.client.xadd(self.key, fields), what=f"XADD {self.key}")
        self.letters_written += len(rows)
