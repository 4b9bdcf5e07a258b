"""Aligned-barrier checkpoints: a consistent cut of every actor's state, committed atomically.

The coordinator asks every source for barrier ``n`` (:meth:`CheckpointCoordinator.checkpoint`,
or every ``interval``).  A source emits it at its next batch boundary, behind
the data it sent, with a snapshot of its read position; each other actor
snapshots its own state when barrier ``n`` has come on every input (an input
that delivered it is held back until the others have: alignment), then
forwards it.  So every snapshot reflects exactly the records before the
barrier, and the set of them is a consistent cut.  Snapshots are taken
synchronously in the actor (:meth:`Actor.snapshot_state`, encoded at once by
:func:`encode_state`), the others keep running, and once every actor has
reported the coordinator stages the parts and commits them with the manifest
in one atomic step of the store.  A crash before that leaves checkpoint
``n - 1`` in force.

Recovery (:meth:`CheckpointCoordinator.recover`, before the graph starts): the
latest checkpoint's manifest must name the same job (its fingerprint) and the
same actors; each actor gets its state back (:meth:`Actor.restore_state`) and
the sources resume from the position they recorded.  A run that completed
commits a last, empty checkpoint marked complete, so the same job run again
starts afresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import trio

from ._errors import CheckpointError
from ._state_codec import decode_state, encode_state
from ._stats import CheckpointInfo
from ._store import Checkpoint, CheckpointStore
from ._units import positive_duration_ms

__all__ = [
    "FORMAT_VERSION",
    "CheckpointCoordinator",
    "Checkpointing",
]

FORMAT_VERSION = 1
"""The manifest's format; a checkpoint of another format is refused, never misread."""


def _interval(value: Any) -> int | None:
    return None if value is None else positive_duration_ms(value, "checkpoint_interval")


def _difference(theirs: str, ours: str) -> str:
    """What differs between two fingerprints (their ``" | "``-separated parts, when
    the graph builder writes them so), else both whole.

    Example:
        >>> _difference("q | partitions=2 | in.jsonl", "q | partitions=4 | in.jsonl")
        "it has 'partitions=2', this one 'partitions=4'"
    """
    a, b = theirs.split(" | "), ours.split(" | ")
    if len(a) == len(b):
        parts = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
        return ", ".join(f"it has {x!r}, this one {y!r}" for x, y in parts)
    return f"it is {theirs!r}, this one is {ours!r}"


@attrs.frozen(kw_only=True)
class Checkpointing:
    """Checkpoint a graph into ``store``: periodically, on demand, and at its end.

    Attributes:
        store: where checkpoints go (:func:`open_sqlite_store`, :class:`MemoryCheckpointStore`).
        interval_ms: between the end of one checkpoint and the start of the next;
            construct it with ``interval=`` and a duration (``"5s"``, a bare number
            of milliseconds).  ``None``: only on demand (``supervisor.checkpoint()``).
        fingerprint: what the job is (the graph builder's summary of its query
            and options).  Resuming from a checkpoint of another fingerprint is a
            :class:`CheckpointError` naming both.
        fresh: discard what the store holds and start from the beginning.

    Example:
        >>> from partita.runtime import MemoryCheckpointStore
        >>> Checkpointing(store=MemoryCheckpointStore(), interval="5s").interval_ms
        5000
    """

    store: CheckpointStore
    interval_ms: int | None = attrs.field(default=None, alias="interval", converter=_interval)
    fingerprint: str = ""
    fresh: bool = False


@attrs.define(eq=False)
class _InFlight:
    id: int
    started: float
    waiting: set[str]
    parts: dict[str, bytes] = attrs.Factory(dict)
    aligned: trio.Event = attrs.Factory(trio.Event)
    given_up: bool = False


class _Sources:
    """What the coordinator needs of the sources' cells (see ``SourceCell``)."""

    def __init__(self, cells: Iterable[Any]) -> None:
        self.cells = list(cells)

    def live(self) -> bool:
        return all(not cell.input_done for cell in self.cells)

    def exhausted(self) -> bool:
        """Every source read its input to the end (not stopped by a cancel)."""
        return all(cell.input_done and not cell.stop_requested for cell in self.cells)

    def request(self, checkpoint_id: int) -> None:
        for cell in self.cells:
            cell.request_barrier(checkpoint_id)


@attrs.define(eq=False)
class CheckpointCoordinator:
    """Takes checkpoints of one running graph; see the module docstring.

    The supervisor makes one when its options ask for checkpoints; actors report
    to it (:meth:`report`) from their handlers, synchronously.
    """

    options: Checkpointing
    actors: tuple[str, ...]
    next_id: int = 0
    last: CheckpointInfo | None = None
    restored: int | None = None
    _sources: _Sources = attrs.field(init=False, factory=lambda: _Sources(()))
    _in_flight: _InFlight | None = attrs.field(init=False, default=None)
    _ended: bool = attrs.field(init=False, default=False)
    _lock: trio.Lock = attrs.field(init=False, factory=trio.Lock)

    @property
    def store(self) -> CheckpointStore:
        return self.options.store

    def attach(self, source_cells: Iterable[Any]) -> None:
        """The cells of the graph's sources, which emit the barriers."""
        self._sources = _Sources(source_cells)

    # ----------------------------------------------------------- recovery
    async def recover(self) -> dict[str, object] | None:
        """The state of every actor in the latest checkpoint (``None``: start afresh).

        Raises:
            CheckpointError: the checkpoint is of another job (fingerprint), another
                format, or another graph (its actors differ).
        """
        store = self.store
        if self.options.fresh:
            await store.discard_all()
            return None
        latest = await store.latest()
        if latest is None:
            return None
        meta = self._manifest(latest)
        self.next_id = latest.id + 1
        if meta.get("complete"):
            return None  # that run ended: this one starts from the beginning
        saved = sorted(latest.parts)
        if saved != sorted(self.actors):
            raise CheckpointError(
                f"checkpoint {latest.id}",
                f"holds the state of actors {saved}, but this graph has "
                f"{sorted(self.actors)}: resume with the graph it was taken of, or start "
                "afresh (fresh=True, --fresh)",
            )
        states = {
            name: decode_state(blob, what=f"the state of actor {name!r} in checkpoint {latest.id}")
            for name, blob in latest.parts.items()
        }
        self.restored = latest.id
        return states

    def _manifest(self, checkpoint: Checkpoint) -> dict[str, Any]:
        meta = decode_state(checkpoint.meta, what=f"the manifest of checkpoint {checkpoint.id}")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise CheckpointError(
                f"checkpoint {checkpoint.id}",
                f"is of format {found!r}, this partita reads format {FORMAT_VERSION}",
            )
        theirs = meta.get("fingerprint")
        ours = self.options.fingerprint
        if theirs != ours:
            raise CheckpointError(
                f"checkpoint {checkpoint.id}",
                f"was taken of another job: {_difference(str(theirs), ours)}; resume with the "
                "same job, or start afresh (fresh=True, --fresh)",
            )
        return meta

    # ---------------------------------------------------------- reporting
    def report(self, checkpoint_id: int, actor: str, state: object) -> None:
        """Actor ``actor`` took its snapshot for barrier ``checkpoint_id``.

        Called from the actor's handler, synchronously: the state is encoded
        here and now, so the actor may change it as soon as this returns.
        """
        flight = self._in_flight
        if flight is None or flight.id != checkpoint_id:
            return  # a checkpoint given up (the graph is ending)
        flight.parts[actor] = encode_state(state)
        flight.waiting.discard(actor)
        if not flight.waiting:
            flight.aligned.set()

    # --------------------------------------------------------- checkpoints
    async def checkpoint(self) -> int:
        """Take a checkpoint now; return its id once it is committed.

        Raises:
            CheckpointError: the input has ended (the end commits its own checkpoint).
        """
        async with self._lock:
            if self._ended:
                raise CheckpointError("checkpoint", "the graph has ended")
            if not self._sources.live():
                raise CheckpointError(
                    "checkpoint", "the input has ended: the end of the run commits its own"
                )
            flight = _InFlight(self.next_id, trio.current_time(), set(self.actors))
            self._in_flight = flight
            self.next_id += 1
            try:
                self._sources.request(flight.id)
                await flight.aligned.wait()
                if flight.given_up:
                    raise CheckpointError(
                        f"checkpoint {flight.id}", "the graph ended before every actor took it"
                    )
                await self._commit(flight)
            finally:
                self._in_flight = None
            return flight.id

    async def _commit(self, flight: _InFlight) -> None:
        store = self.store
        for name, blob in flight.parts.items():
            await store.stage(flight.id, name, blob)
        meta = {"format": FORMAT_VERSION, "fingerprint": self.options.fingerprint}
        await store.commit(flight.id, encode_state(meta))
        now = trio.current_time()
        size = sum(len(blob) for blob in flight.parts.values())
        self.last = CheckpointInfo(flight.id, now, now - flight.started, size)

    def abort(self) -> None:
        """The graph ended: the checkpoint in flight, if any, will never be aligned."""
        self._ended = True
        flight = self._in_flight
        if flight is not None and flight.waiting:
            flight.given_up = True
            flight.aligned.set()

    def input_exhausted(self) -> bool:
        """Whether every source read its input to its end (a cancel stops them short)."""
        return self._sources.exhausted()

    async def complete(self) -> None:
        """The graph completed its input: commit the empty checkpoint that says so."""
        async with self._lock:
            meta = {
                "format": FORMAT_VERSION,
                "fingerprint": self.options.fingerprint,
                "complete": True,
            }
            checkpoint_id = self.next_id
            self.next_id += 1
            await self.store.commit(checkpoint_id, encode_state(meta))

    async def run_periodic(self) -> None:
        """Checkpoint every ``interval`` until the input ends (then return)."""
        interval = self.options.interval_ms
        if interval is None:
            return
        while True:
            await trio.sleep(interval / 1000)
            if not self._sources.live():
                return
            try:
                await self.checkpoint()
            except CheckpointError:
                if self._sources.live():
                    raise
                return
