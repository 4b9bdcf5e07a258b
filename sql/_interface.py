"""The partition-program interface: what the SQL layer compiles and actors run.

A query layer compiles a query
into two pieces that actors run: a :class:`RoutingStage` at the source side,
which decides event time, watermark, lateness and partition for each record of
a batch, and one :class:`PartitionProgram` per partition, which owns that
partition's state.  Both are synchronous: they run a whole batch without an
``await``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from partita.runtime import Batch, DeadLetter, Record

__all__ = [
    "PartitionProgram",
    "ProgramCounts",
    "Routed",
    "RoutingStage",
    "StreamJoin",
    "StreamJoinState",
]


@attrs.frozen(slots=True)
class ProgramCounts:
    """Counters of a program: every input record is counted exactly once as
    emitted-into-a-group (``rows_in - filtered - late - errored``), filtered,
    late, or errored."""

    rows_in: int = 0
    rows_out: int = 0
    filtered: int = 0
    late: int = 0
    errored: int = 0


@attrs.frozen(slots=True)
class Routed:
    """What a :class:`RoutingStage` makes of one source batch.

    ``parts[i]`` is the sub-batch for partition ``i`` (``None`` when it gets
    nothing); ``watermark`` is the source watermark after the batch (``None``
    if the query has no event time); ``late`` and ``dead`` are the side
    outputs the routing stage itself decided.
    """

    parts: Sequence[Batch | None]
    watermark: int | None = None
    late: Sequence[DeadLetter] = ()
    dead: Sequence[DeadLetter] = ()


class RoutingStage(Protocol):
    """Source-side stage: splits a batch across ``partitions`` programs."""

    @property
    def partitions(self) -> int: ...

    def route(self, batch: Batch) -> Routed:
        """Split ``batch``; records of one key always go to one partition."""
        ...

    def on_idle(self, idle_ms: int) -> int | None:
        """The source was idle for ``idle_ms`` of wall-clock time: advance the
        watermark by it and return the new one (``None``: nothing to advance), so
        windows still close on an idle stream."""
        ...

    def counts(self) -> ProgramCounts: ...

    def snapshot(self) -> object:
        """Its state as plain data, for a checkpoint (see ``Actor.snapshot_state``)."""
        ...

    def restore(self, state: Any) -> None:
        """Take back what :meth:`snapshot` returned."""
        ...


class PartitionProgram(Protocol):
    """One partition's program: owns its state, runs batches synchronously."""

    def process(self, batch: Batch) -> list[Record]:
        """Run one batch; return the rows it emits now (``EMIT CHANGES``, projections)."""
        ...

    def advance(self, watermark: int) -> list[Record]:
        """The watermark reached ``watermark``: close windows, return their rows."""
        ...

    def finish(self) -> list[Record]:
        """End of stream: close everything, return the final rows."""
        ...

    def take_dead_letters(self) -> list[DeadLetter]:
        """Records that failed or were late since the last call (a side output)."""
        ...

    def counts(self) -> ProgramCounts: ...

    def snapshot(self) -> object:
        """Its state as plain data, for a checkpoint (see ``Actor.snapshot_state``)."""
        ...

    def restore(self, state: Any) -> None:
        """Take back what :meth:`snapshot` returned."""
        ...


class StreamJoin(Protocol):
    """A planned join of two streams (an interval join or a temporal join): what
    the graph, the source-side stages and the CLI need of it."""

    @property
    def left(self) -> str: ...
    @property
    def left_alias(self) -> str: ...
    @property
    def right(self) -> str: ...
    @property
    def right_alias(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def left_keys(self) -> tuple[str, ...]: ...
    @property
    def right_keys(self) -> tuple[str, ...]: ...
    @property
    def left_time(self) -> str: ...
    @property
    def right_time(self) -> str: ...
    @property
    def left_fields(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def right_fields(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def left_schema(self) -> Any: ...
    @property
    def right_schema(self) -> Any: ...
    @property
    def deletes(self) -> bool:
        """Whether a right record with only its key and time deletes its key."""
        ...

    def hold_of(self, time_field: str | None) -> int:
        """How far (ms) the join's output watermark trails the inputs'."""
        ...

    def describe(self) -> str:
        """One line for ``partita describe``."""
        ...


class StreamJoinState(Protocol):
    """One partition's state of a join of two streams: routed records ``[key, event
    time, fields]`` of each side in, joined rows out."""

    def left(self, entries: Sequence[list[Any]]) -> list[Record]: ...
    def right(self, entries: Sequence[list[Any]]) -> list[Record]: ...
    def advance(self, watermark: int) -> list[Record]: ...
    def finish(self) -> list[Record]: ...
    def memory_view(self) -> object: ...
    def held(self) -> int: ...
    def snapshot(self) -> object: ...
    def restore(self, state: Any) -> None: ...
