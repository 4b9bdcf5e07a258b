"""Frozen statistics snapshots, and the occupancy histogram behind them."""

from __future__ import annotations

import attrs

from ._lifecycle import ActorState

__all__ = ["ActorStats", "GraphStats", "MailboxStats", "OccupancyHistogram"]


class OccupancyHistogram:
    """Counts of how many items a mailbox held, sampled at every send.

    One plain ``list[int]`` indexed by occupancy: recording is one increment.
    """

    __slots__ = ("counts",)

    def __init__(self, capacity: int) -> None:
        self.counts = [0] * (capacity + 1)

    def record(self, occupancy: int) -> None:
        self.counts[occupancy] += 1

    def percentile(self, q: float) -> int:
        """The smallest occupancy at or below which a fraction ``q`` of samples fall."""
        total = sum(self.counts)
        if total == 0:
            return 0
        threshold = q * total
        seen = 0
        for occupancy, count in enumerate(self.counts):
            seen += count
            if seen >= threshold:
                return occupancy
        return len(self.counts) - 1


@attrs.frozen
class MailboxStats:
    """A snapshot of one mailbox."""

    capacity: int
    items_buffered: int
    estimated_memory: int
    high_water: int
    occupancy_p50: int
    occupancy_p99: int
    sent: int
    received: int


@attrs.frozen
class ActorStats:
    """A snapshot of one actor.

    ``rows_in`` counts records handled; ``rows_out`` records emitted;
    ``rows_filtered``, ``rows_late`` and ``rows_errored`` what was dropped and
    why.  The mailbox figures describe the actor's inbox (zero for sources).
    """

    name: str
    state: ActorState
    rows_in: int
    rows_out: int
    rows_filtered: int
    rows_late: int
    rows_errored: int
    batches_in: int
    items_buffered: int
    estimated_memory: int
    high_water: int
    occupancy_p50: int
    occupancy_p99: int
    restarts: int
    batch_size: int | None


@attrs.frozen
class GraphStats:
    """A snapshot of a supervised graph: its state and one entry per actor."""

    state: ActorState
    actors: tuple[ActorStats, ...]
    memory_in_use: int
    max_memory: int | None
    restarts: int

    def __getitem__(self, name: str) -> ActorStats:
        for actor in self.actors:
            if actor.name == name:
                return actor
        raise KeyError(name)

    @property
    def items_buffered(self) -> int:
        return sum(a.items_buffered for a in self.actors)

    @property
    def estimated_memory(self) -> int:
        return sum(a.estimated_memory for a in self.actors)

    @property
    def rows_late(self) -> int:
        return sum(a.rows_late for a in self.actors)

    @property
    def rows_errored(self) -> int:
        return sum(a.rows_errored for a in self.actors)

    @property
    def rows_filtered(self) -> int:
        return sum(a.rows_filtered for a in self.actors)
