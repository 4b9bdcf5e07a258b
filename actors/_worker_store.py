"""One partition's checkpoints in Redis: the store a worker's pipeline checkpoints into.

It is a :class:`runtime.CheckpointStore` for the usual aligned-barrier
checkpoints, so a worker's pipeline checkpoints as any graph does; what is
particular is the commit.  A checkpoint of partition ``p`` is ONE fenced
atomic step (:func:`actors._leases.commit`): if the partition's fencing token is
still the lease's, the output rows staged since the previous commit are
appended to the output stream, and the state hash ``{T:p}:state:G`` gets the
input position, the encoded state (every actor's part, with the checkpoint id
and manifest) and, at the end of the input, ``done``.  A worker whose lease
was taken over (a zombie) gets :class:`LeaseLost` and writes nothing.

Only the latest checkpoint is kept (``keep == 1``): it is what the next owner
of the partition resumes from (:meth:`PartitionStore.latest`).

Each commit carries an id of its own (the checkpoint's id and a random part:
another pipeline of the same lease may commit a checkpoint of the same number),
stored with the state.  A commit whose reply was lost (the connection dropped,
Redis restarted) is sent again as it was, by coredis's retry policy or by
:class:`RedisRetry`: the script finds its id stored with this lease's token and
writes nothing twice (a read-back before the retry would not do: a request still
on its way can reach Redis after the read).  After a commit that was
interrupted (cancelled while its script ran) the next one looks first: the
staged rows it carried are dropped if it went through, else they go with the next.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from partita.runtime import Checkpoint, CheckpointError, decode_state, encode_state

from ._leases import Lease, commit, load_committed
from ._worker_retry import RedisRetry

if TYPE_CHECKING:
    from ._worker_output import PartitionOutputSink
    from ._worker_source import PartitionStreamSource

__all__ = ["LeaseLost", "PartitionStore"]


class LeaseLost(Exception):
    """Raised when a commit is refused: another worker owns the partition now (fenced)."""

    def __init__(self, topic: str, partition: int, token: int) -> None:
        super().__init__(topic, partition, token)
        self.topic = topic
        self.partition = partition
        self.token = token

    def __str__(self) -> str:
        return (
            f"partition {self.partition} of topic {self.topic!r}: lease with token "
            f"{self.token} lost, the commit was refused"
        )


def encode_checkpoint(checkpoint_id: int, meta: bytes, parts: dict[str, bytes]) -> bytes:
    """The ``state`` field of a commit: the checkpoint as the runtime's state codec holds it."""
    return encode_state({"id": checkpoint_id, "meta": meta, "parts": parts})


def decode_checkpoint(blob: bytes, what: str) -> Checkpoint:
    """Back from :func:`encode_checkpoint` (``CheckpointCorrupt`` if it is not one)."""
    saved: Any = decode_state(blob, what=what)
    if not isinstance(saved, dict) or not {"id", "meta", "parts"} <= set(saved):
        raise CheckpointError(what, "is not a worker's checkpoint")
    return Checkpoint(int(saved["id"]), bytes(saved["meta"]), dict(saved["parts"]))


@attrs.define(eq=False)
class PartitionStore:
    """The :class:`runtime.CheckpointStore` of one owned partition (see the module docstring).

    Example:
        >>> store = PartitionStore(client, "orders", "g", "totals", lease, retry)  # doctest: +SKIP

    Args:
        client: the worker's coredis client.
        topic: the input topic.
        group: the consumer group.
        output_topic: the output topic.
        lease: the partition's lease (its token fences every commit).
        retry: the worker's retries of calls to Redis.
        source: the pipeline's source (the input position at the barrier).
        sink: the pipeline's sink (the rows staged since the last commit).
    """

    client: Any
    topic: str
    group: str
    output_topic: str
    lease: Lease
    retry: RedisRetry
    source: PartitionStreamSource | None = attrs.field(default=None, kw_only=True)
    sink: PartitionOutputSink | None = attrs.field(default=None, kw_only=True)
    keep: int = attrs.field(init=False, default=1)
    commits: int = attrs.field(init=False, default=0)
    done: bool = attrs.field(init=False, default=False)
    _staged: dict[int, dict[str, bytes]] = attrs.field(init=False, factory=dict)
    _last: int | None = attrs.field(init=False, default=None)
    _uncertain: tuple[str, int] | None = attrs.field(init=False, default=None)

    @property
    def partition(self) -> int:
        return self.lease.partition

    async def stage(self, checkpoint_id: int, actor: str, blob: bytes) -> None:
        if not actor:
            raise ValueError("an actor's name must not be empty")
        self._staged.setdefault(checkpoint_id, {})[actor] = bytes(blob)

    async def commit(self, checkpoint_id: int, meta: bytes) -> None:
        """The fenced commit of checkpoint ``checkpoint_id`` (see the module docstring).

        Raises:
            LeaseLost: the partition has another owner; nothing was written.
        """
        assert self.source is not None and self.sink is not None
        parts = self._staged.pop(checkpoint_id, {})
        self._staged = {n: p for n, p in self._staged.items() if n > checkpoint_id}
        manifest: Any = decode_state(meta, what="a checkpoint manifest")
        complete = bool(manifest.get("complete"))
        sink = self.sink
        if self._uncertain is not None:
            # the last commit was interrupted (cancelled, failed) after it was sent: if it
            # went through, its rows are out, and must not go out again with this one
            earlier, rows = self._uncertain
            if await self._applied(earlier):
                sink.committed(rows)
            self._uncertain = None
        rows = sink.staged_rows
        entries = sink.staged_entries(end=complete)
        state = encode_checkpoint(checkpoint_id, meta, parts)
        position = self.source.position if complete else self.source.checkpoint_position
        commit_id = f"{checkpoint_id}-{secrets.token_hex(8)}"
        self._uncertain = (commit_id, rows)
        await self._commit(commit_id, entries, position, state, complete)
        self._uncertain = None
        sink.committed(rows)
        self._last = checkpoint_id
        self.commits += 1
        self.done = complete

    async def _commit(
        self,
        commit_id: str,
        entries: Sequence[dict[bytes, bytes]],
        position: str,
        state: bytes,
        done: bool,
    ) -> None:
        """The commit, sent again as it was while Redis is unavailable (idempotent)."""
        lease = self.lease
        ok = await self.retry.call(
            lambda: commit(
                self.client,
                self.topic,
                self.group,
                lease,
                commit_id=commit_id,
                output_topic=self.output_topic,
                entries=entries,
                position=position,
                state=state,
                done=done,
            ),
            what=f"commit of partition {self.partition}",
        )
        if not ok:
            raise LeaseLost(self.topic, self.partition, lease.token)

    async def _applied(self, commit_id: str) -> bool:
        """Whether the committed state is this lease's commit ``commit_id``."""
        committed = await self.retry.call(
            lambda: load_committed(self.client, self.topic, self.group, self.partition),
            what=f"reading the state of partition {self.partition}",
        )
        return (
            committed is not None
            and committed.token == self.lease.token
            and committed.commit_id == commit_id
        )

    async def latest(self) -> Checkpoint | None:
        """The partition's committed checkpoint (``None``: none yet; read from the start)."""
        committed = await self.retry.call(
            lambda: load_committed(self.client, self.topic, self.group, self.partition),
            what=f"reading the state of partition {self.partition}",
        )
        if committed is None or committed.state is None:
            return None
        checkpoint = decode_checkpoint(
            committed.state, f"the committed state of partition {self.partition}"
        )
        self._last = checkpoint.id
        return checkpoint

    async def retained(self) -> Sequence[int]:
        return [] if self._last is None else [self._last]

    async def discard_all(self) -> None:
        raise CheckpointError(
            f"partition {self.partition} of topic {self.topic!r}",
            "a group's state is shared by its workers: start afresh with another --group",
        )

    async def aclose(self) -> None:
        return None
