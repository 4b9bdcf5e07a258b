"""Where checkpoints live: the store interface, its value type, and a store in memory.

A checkpoint is committed in two steps.  While barrier ``n`` passes through the
graph, each actor's snapshot is *staged* (``stage(n, actor, blob)``): written, but
invisible.  When every actor has reported, the coordinator *commits* ``n`` with its
manifest (``commit(n, meta)``): in one atomic step, the parts staged for ``n`` and
the manifest become the latest checkpoint, parts staged for older ids are dropped,
and only the newest ``keep`` checkpoints are retained.  A crash anywhere before
that leaves checkpoint ``n - 1`` in force; parts staged but never committed are
discarded when the store is opened again.

The interface is small so that other stores (Redis, for scale-out) plug in:
:class:`CheckpointStore`.  This module also has :class:`MemoryCheckpointStore`
(for tests, and runs that need no durability); ``open_sqlite_store`` is the
embedded default on local disk.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs
import trio

__all__ = ["Checkpoint", "CheckpointStore", "MemoryCheckpointStore"]


def _frozen_parts(parts: Mapping[str, bytes]) -> Mapping[str, bytes]:
    return types.MappingProxyType(dict(parts))


def _sizes(parts: Mapping[str, bytes]) -> str:
    return "{" + ", ".join(f"{name!r}: <{len(blob)} bytes>" for name, blob in parts.items()) + "}"


@attrs.frozen
class Checkpoint:
    """A committed checkpoint: its id, the coordinator's manifest, and every actor's state.

    Attributes:
        id: the checkpoint id (the barrier's); ids of successive commits increase.
        meta: the manifest (format version, query fingerprint, source positions...),
            opaque to the store.
        parts: actor name -> that actor's encoded state, as staged; read-only.
    """

    id: int = attrs.field(validator=attrs.validators.ge(0))
    meta: bytes
    parts: Mapping[str, bytes] = attrs.field(converter=_frozen_parts, repr=_sizes)


class CheckpointStore(Protocol):
    """What the checkpoint coordinator needs from a store.

    Every method may block (on disk or network) and checkpoints.  A cancel during
    :meth:`commit` leaves the checkpoint either wholly committed or not committed
    at all; read :meth:`latest` to know which.  After :meth:`aclose`, every method
    raises :class:`trio.ClosedResourceError`.
    """

    @property
    def keep(self) -> int:
        """How many committed checkpoints are retained (the newest ones)."""
        ...

    async def stage(self, checkpoint_id: int, actor: str, blob: bytes) -> None:
        """Write one actor's state for checkpoint ``checkpoint_id``, invisible until commit.

        Staging the same actor again for the same id replaces its part.

        Raises:
            ValueError: ``checkpoint_id`` is negative or not after the latest
                committed checkpoint, or ``actor`` is empty.
        """
        ...

    async def commit(self, checkpoint_id: int, meta: bytes) -> None:
        """Atomically make the parts staged for ``checkpoint_id``, with ``meta``, the latest.

        Parts staged for older ids are dropped; parts staged for newer ids stay
        staged; committed checkpoints beyond the newest :attr:`keep` are pruned.

        Raises:
            ValueError: ``checkpoint_id`` is negative or not after the latest
                committed checkpoint.
        """
        ...

    async def latest(self) -> Checkpoint | None:
        """The newest committed checkpoint, or ``None`` if there is none."""
        ...

    async def retained(self) -> Sequence[int]:
        """The ids of the committed checkpoints held, oldest first (at most :attr:`keep`)."""
        ...

    async def discard_all(self) -> None:
        """Forget every checkpoint, committed or staged (``--fresh``)."""
        ...

    async def aclose(self) -> None:
        """Release the store; idempotent."""
        ...


def check_stage(checkpoint_id: int, actor: str, last: int | None) -> None:
    """The rule for :meth:`CheckpointStore.stage`, shared by every store."""
    check_next_id(checkpoint_id, last)
    if not actor:
        raise ValueError("an actor's name must not be empty")


def check_next_id(checkpoint_id: int, last: int | None) -> None:
    """The rule for ids: not negative, and after the latest committed one."""
    if checkpoint_id < 0:
        raise ValueError(f"checkpoint ids are >= 0, not {checkpoint_id}")
    if last is not None and checkpoint_id <= last:
        raise ValueError(
            f"checkpoint {checkpoint_id} is not after the latest committed checkpoint {last}"
        )


def check_keep(keep: int) -> None:
    """The rule for ``keep``: at least the latest checkpoint is retained."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")


@attrs.define
class MemoryCheckpointStore:
    """A :class:`CheckpointStore` in memory: nothing survives the process.

    :meth:`crashed` returns what a crash would leave behind (the committed
    checkpoints, nothing staged), which is what tests of recovery need.

    Example:
        >>> import trio
        >>> from partita.runtime import MemoryCheckpointStore
        >>> async def main() -> None:
        ...     store = MemoryCheckpointStore(keep=2)
        ...     await store.stage(1, "counter", b"state-1")
        ...     await store.commit(1, b"manifest-1")
        ...     await store.stage(2, "counter", b"state-2")  # the crash comes first
        ...     after = store.crashed()
        ...     print(await after.latest())
        >>> trio.run(main)
        Checkpoint(id=1, meta=b'manifest-1', parts={'counter': <7 bytes>})
    """

    keep: int = 3
    _committed: list[Checkpoint] = attrs.Factory(list)
    _staged: dict[int, dict[str, bytes]] = attrs.Factory(dict)
    _closed: bool = False

    def __attrs_post_init__(self) -> None:
        check_keep(self.keep)

    def crashed(self) -> MemoryCheckpointStore:
        """A new store holding what a crash of this one would leave: its committed checkpoints."""
        return MemoryCheckpointStore(self.keep, list(self._committed))

    async def stage(self, checkpoint_id: int, actor: str, blob: bytes) -> None:
        await self._checkpoint()
        check_stage(checkpoint_id, actor, self._last())
        self._staged.setdefault(checkpoint_id, {})[actor] = bytes(blob)

    async def commit(self, checkpoint_id: int, meta: bytes) -> None:
        await self._checkpoint()
        check_next_id(checkpoint_id, self._last())
        parts = self._staged.pop(checkpoint_id, {})
        self._committed.append(Checkpoint(checkpoint_id, bytes(meta), parts))
        del self._committed[: -self.keep]
        self._staged = {n: p for n, p in self._staged.items() if n > checkpoint_id}

    async def latest(self) -> Checkpoint | None:
        await self._checkpoint()
        return self._committed[-1] if self._committed else None

    async def retained(self) -> Sequence[int]:
        await self._checkpoint()
        return [checkpoint.id for checkpoint in self._committed]

    async def discard_all(self) -> None:
        await self._checkpoint()
        self._committed.clear()
        self._staged.clear()

    async def aclose(self) -> None:
        self._closed = True
        await trio.lowlevel.checkpoint()

    def _last(self) -> int | None:
        return self._committed[-1].id if self._committed else None

    async def _checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError("the checkpoint store is closed")
