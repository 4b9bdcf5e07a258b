"""One partition of a Redis Streams topic as a worker's source.

A worker runs one pipeline per partition it owns; this is its first actor.  It
reads the partition's stream ``{T:p}`` from an entry id on, a few entries per
XREAD, on the worker's shared client, through the worker's :class:`RedisRetry`
(Redis unavailable: it waits and reads on from the same position, nothing
lost).  The position (last entry id read) is its checkpoint state, so a new
owner reads on from the last commit.  An XREAD that finds nothing is still a
batch boundary, so a checkpoint's barrier (a hand-over) never waits for input.
"""

from __future__ import annotations

from typing import Any

import attrs

from partita.runtime import BadRecord, DeadLetter, Record

from ._redis import START, decode_entry
from ._sources import ErrorPolicy, RecordSource, _check_policy
from ._worker_retry import RedisRetry

__all__ = ["PartitionStreamSource"]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@attrs.define(eq=False)
class PartitionStreamSource(RecordSource):
    """Reads partition ``partition`` of ``topic`` (stream ``key``) to its end marker.

    Example:
        >>> src = PartitionStreamSource("source", None, "orders", 3, "{orders:3}", RedisRetry())
        >>> src.position, src.describe_input()
        ('0-0', "topic 'orders' partition 3")

    Args:
        name: ``"source"`` in a worker's pipeline.
        client: the worker's coredis client.
        topic: the input topic.
        partition: the partition read.
        key: its stream key (:func:`actors.partition_key`).
        retry: the worker's retries of calls to Redis.
        on_error: a bad entry (not msgpack, not an array of maps): ``"skip"``,
            ``"dead-letter"`` or ``"fail"``.
        block_ms: how long one XREAD waits for new entries: also the longest a
            checkpoint (a hand-over) waits for this source's next boundary.
        entries_per_read: entries per XREAD (each is a batch of records).
    """

    client: Any
    topic: str
    partition: int
    key: str
    retry: RedisRetry
    on_error: ErrorPolicy = attrs.field(default="skip", kw_only=True, validator=_check_policy)
    block_ms: int = attrs.field(default=100, kw_only=True, validator=attrs.validators.ge(1))
    entries_per_read: int = attrs.field(default=8, kw_only=True, validator=attrs.validators.ge(1))
    resumable = True
    position: str = attrs.field(init=False, default=START)
    ended: bool = attrs.field(init=False, default=False)
    entries_read: int = attrs.field(init=False, default=0)
    checkpoint_position: str = attrs.field(init=False, default=START)
    restored_rows: int = attrs.field(init=False, default=0)
    """``rows_in`` as restored from the last commit: what earlier owners read."""

    def describe_input(self) -> str:
        return f"topic {self.topic!r} partition {self.partition}"

    def error_reason(self, letter: DeadLetter) -> str:
        return "bad entry"

    def describe_offset(self, offset: int) -> str:
        return f"at record {offset} of {self.describe_input()}"

    def snapshot_state(self) -> object:
        """The last entry id read, and whether it was the end marker."""
        self.checkpoint_position = self.position
        return {"position": self.position, "ended": self.ended}

    def restore_state(self, state: object) -> None:
        saved: Any = state
        self.position = str(saved["position"])
        self.ended = bool(saved["ended"])
        self.checkpoint_position = self.position
        self.restored_rows = self.rows_in  # the cell restored the counters just before

    async def produce(self) -> None:
        key = self.key
        while not self.ended:
            position = self.position

            async def read(position: str = position) -> Any:
                return await self.client.xread(
                    {key: position}, count=self.entries_per_read, block=self.block_ms
                )

            reply = await self.retry.call(read, what=f"XREAD {key}")
            if not reply:
                await self.deliver()  # a boundary: a barrier due goes out now
                continue
            records: list[Record] = []
            dead: list[DeadLetter] = []
            failure: BadRecord | None = None
            for entries in reply.values():
                for entry in entries:
                    ident = _text(entry.identifier)
                    self.position = ident
                    self.entries_read += 1
                    try:
                        got = decode_entry(entry.field_values)
                    except ValueError as exc:
                        reason = f"partition {self.partition} entry {ident}: {exc}"
                        if self.on_error == "fail":
                            failure = BadRecord(reason, None, self.name)
                            break
                        if self.on_error == "skip":
                            self.count_error("bad entry")
                            continue
                        dead.append(
                            DeadLetter(record={}, reason=reason, offset=None, stage=self.name)
                        )
                        continue
                    if got is None:
                        self.ended = True
                        break
                    records.extend(got)
            if records or dead:
                await self.send_with_dead_letters(records, dead)
            else:
                await self.deliver()
            if failure is not None:
                raise failure
