"""Frozen statistics snapshots, and the occupancy histogram behind them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from ._lifecycle import ActorState

__all__ = [
    "MAX_ERROR_REASONS",
    "MAX_REASON_LENGTH",
    "NO_REASON",
    "OTHER_REASONS",
    "ActorStats",
    "CheckpointInfo",
    "ErrorReasons",
    "GraphStats",
    "MailboxStats",
    "OccupancyHistogram",
    "merge_error_reasons",
]

MAX_ERROR_REASONS = 16
"""How many distinct error reasons an actor (and a graph's merged view) keeps."""

MAX_REASON_LENGTH = 200
"""Longer reasons are cut to this many characters (ending in an ellipsis)."""

OTHER_REASONS = "other reasons"
"""What errors past the first :data:`MAX_ERROR_REASONS` distinct reasons count under."""

NO_REASON = "no reason given"
"""What errors counted in ``rows_errored`` but under no reason show as in a snapshot."""


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


def _clip(reason: str) -> str:
    if len(reason) <= MAX_REASON_LENGTH:
        return reason
    return reason[: MAX_REASON_LENGTH - 1] + "\u2026"


def _ranked(counts: Mapping[str, int], other: int) -> tuple[tuple[str, int], ...]:
    """Most frequent first (ties by reason), :data:`OTHER_REASONS` last; zeros dropped."""
    ranked = sorted(((r, n) for r, n in counts.items() if n), key=lambda rn: (-rn[1], rn[0]))
    if other:
        ranked.append((OTHER_REASONS, other))
    return tuple(ranked)


class ErrorReasons:
    """A bounded count of errors by reason: at most :data:`MAX_ERROR_REASONS` distinct
    reasons, the rest under :data:`OTHER_REASONS`.

    An actor creates one at its first counted error (see :meth:`Actor.count_error`),
    so an actor that never errs pays nothing.

    Example:
        >>> reasons = ErrorReasons()
        >>> reasons.add("bad JSON", 2)
        >>> reasons.add("missing field 'ts'")
        >>> reasons.add("bad JSON")
        >>> reasons.snapshot()
        (('bad JSON', 3), ("missing field 'ts'", 1))
    """

    __slots__ = ("_counts", "_other")

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._other = 0

    def add(self, reason: str, n: int = 1) -> None:
        """Count ``n`` errors under ``reason``."""
        counts = self._counts
        if reason in counts:
            counts[reason] += n
            return
        reason = _clip(reason)
        if reason in counts:
            counts[reason] += n
        elif reason == OTHER_REASONS or len(counts) >= MAX_ERROR_REASONS:
            self._other += n
        else:
            counts[reason] = n

    def replace(self, counts: Mapping[str, int]) -> None:
        """Forget what was counted and count ``counts`` instead: the most frequent
        :data:`MAX_ERROR_REASONS` reasons are kept, the rest go under :data:`OTHER_REASONS`."""
        self._counts = {}
        self._other = 0
        for reason, n in sorted(counts.items(), key=lambda rn: (-rn[1], rn[0])):
            if n:
                self.add(reason, n)

    @property
    def total(self) -> int:
        """Every error counted, whatever its reason."""
        return sum(self._counts.values()) + self._other

    def snapshot(self, rows_errored: int | None = None) -> tuple[tuple[str, int], ...]:
        """``(reason, count)`` pairs, most frequent first, :data:`OTHER_REASONS` last.

        Args:
            rows_errored: the actor's error count; what it holds beyond :attr:`total`
                shows as :data:`NO_REASON`.
        """
        unexplained = 0 if rows_errored is None else rows_errored - self.total
        if unexplained <= 0:
            return _ranked(self._counts, self._other)
        counts = dict(self._counts)
        counts[NO_REASON] = counts.get(NO_REASON, 0) + unexplained
        return _ranked(counts, self._other)


def merge_error_reasons(
    groups: Iterable[tuple[tuple[str, int], ...]],
) -> tuple[tuple[str, int], ...]:
    """Sum several snapshots by reason, bounded as one :class:`ErrorReasons` is.

    Example:
        >>> merge_error_reasons([(("bad JSON", 2),), (("bad JSON", 1), ("late", 4))])
        (('late', 4), ('bad JSON', 3))
    """
    summed: dict[str, int] = {}
    for group in groups:
        for reason, n in group:
            summed[reason] = summed.get(reason, 0) + n
    other = summed.pop(OTHER_REASONS, 0)
    ranked = _ranked(summed, 0)
    kept = ranked[:MAX_ERROR_REASONS]
    other += sum(n for _, n in ranked[MAX_ERROR_REASONS:])
    return (*kept, (OTHER_REASONS, other)) if other else kept


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
    occupancy_counts: tuple[int, ...] = ()
    """How many sends found the mailbox holding 0, 1, ... ``capacity`` items."""


@attrs.frozen
class CheckpointInfo:
    """What :meth:`Supervisor.stats` says of the last committed checkpoint.

    Attributes:
        id: the checkpoint's id.
        committed_at: when it was committed (``trio.current_time()``).
        duration: seconds from its barriers to its commit.
        size: bytes of state it holds.
    """

    id: int
    committed_at: float
    duration: float
    size: int


@attrs.frozen
class ActorStats:
    """A snapshot of one actor.

    ``rows_in`` counts records handled; ``rows_out`` records emitted;
    ``rows_filtered``, ``rows_late`` and ``rows_errored`` what was dropped and
    why.  The mailbox figures describe the actor's inbox (zero for sources).

    ``errors_by_reason`` splits ``rows_errored`` by reason: ``(reason, count)``
    pairs, most frequent first, at most :data:`MAX_ERROR_REASONS` of them, then
    :data:`OTHER_REASONS`; errors counted with no reason (``rows_errored``
    assigned directly) show as :data:`NO_REASON`.  Empty when nothing erred.
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
    errors_by_reason: tuple[tuple[str, int], ...] = ()
    delivery: str | None = None
    """A sink's guarantee across a crash and a resume: ``"exactly-once"`` or
    ``"at-least-once"`` (``None``: not a sink)."""
    watermark: int | None = None
    """The watermark over all the actor's inputs (event time, epoch ms; ``None``: none
    has arrived yet, or the actor is a source)."""
    occupancy_counts: tuple[int, ...] = ()
    """The inbox's occupancy histogram: how many sends found it holding 0, 1, ...
    ``capacity`` items (empty for sources)."""
    state_memory: int = 0
    """Estimated bytes the actor's state holds (a partition's groups and windows, an
    operator's per-key states; sampled, see :func:`estimate_state_nbytes`); 0 for a
    stateless actor."""


@attrs.frozen
class GraphStats:
    """A snapshot of a supervised graph: its state and one entry per actor.

    ``checkpoint`` is the last committed checkpoint (``None``: none yet, or
    checkpoints are off); ``resumed_from`` the id of the checkpoint this run
    resumed from (``None``: it started from the beginning).  ``restarts`` counts the
    actors' restarts by the restart policy, ``backoff_time`` the seconds they waited
    before restarting, in all (:class:`Backoff`).  ``stopped_by`` says what stopped a
    bounded run (``run(count=, timeout=)``): ``"count"`` or ``"timeout"`` (``None``: it
    was not stopped by either).
    """

    state: ActorState
    actors: tuple[ActorStats, ...]
    memory_in_use: int
    max_memory: int | None
    restarts: int
    checkpoint: CheckpointInfo | None = None
    resumed_from: int | None = None
    backoff_time: float = 0.0
    stopped_by: str | None = None

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
        """Estimated bytes buffered in every mailbox (what ``max_memory`` bounds)."""
        return sum(a.estimated_memory for a in self.actors)

    @property
    def state_memory(self) -> int:
        """Estimated bytes every actor's state holds (groups, windows, per-key states)."""
        return sum(a.state_memory for a in self.actors)

    @property
    def rows_late(self) -> int:
        return sum(a.rows_late for a in self.actors)

    @property
    def rows_errored(self) -> int:
        return sum(a.rows_errored for a in self.actors)

    @property
    def rows_filtered(self) -> int:
        return sum(a.rows_filtered for a in self.actors)

    def errors_by_reason(self) -> tuple[tuple[str, int], ...]:
        """Every actor's errors summed by reason (see :attr:`ActorStats.errors_by_reason`):
        most frequent first, at most :data:`MAX_ERROR_REASONS`, then :data:`OTHER_REASONS`."""
        return merge_error_reasons(a.errors_by_reason for a in self.actors)
