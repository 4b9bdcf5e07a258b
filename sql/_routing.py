"""The source-side routing stage of a compiled query.

It decides, per record and in source order, the event time, the exact watermark,
lateness (aligned windows) and the partition (hash of the GROUP BY key).  Stateless
queries are not routed per record: whole batches go to partitions round-robin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

import attrs

from partita.runtime import Batch, DeadLetter, share_estimate

from ._conventions import KeyedRoute, LateIndex, SingleRoute
from ._interface import ProgramCounts, Routed
from ._policy import OnError, RecordErrors
from ._query_config import LatePolicy

__all__ = ["RouteMode", "SqlRoutingStage"]

RouteMode = Literal["round-robin", "first", "per-record"]


class _PartitionIndex(Sequence[int]):
    """Batch indexes of partition ``p``'s records, worked out on first use.

    ``ks`` are the batch's keys in order and ``kp`` maps each to its partition.
    """

    __slots__ = ("_index", "_kp", "_ks", "_late", "_p")

    def __init__(self, ks: list[Any], kp: dict[Any, int], p: int, late: set[int]) -> None:
        self._ks, self._kp, self._p, self._late = ks, kp, p, late
        self._index: list[int] | None = None

    def _get(self) -> list[int]:
        if self._index is None:
            p, kp, late = self._p, self._kp, self._late
            self._index = [i for i, k in enumerate(self._ks) if kp[k] == p and i not in late]
        return self._index

    def __len__(self) -> int:
        return len(self._get())

    @overload
    def __getitem__(self, i: int) -> int: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[int]: ...

    def __getitem__(self, i: int | slice) -> int | Sequence[int]:
        return self._get()[i]


class _Remapped(Sequence[int]):
    """The source offsets of a routed sub-batch, looked up only when needed (errors)."""

    __slots__ = ("_base", "_index")

    def __init__(self, base: Sequence[int], index: Sequence[int]) -> None:
        self._base = base
        self._index = index

    def __len__(self) -> int:
        return len(self._index) if len(self._base) else 0

    @overload
    def __getitem__(self, i: int) -> int: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[int]: ...

    def __getitem__(self, i: int | slice) -> int | Sequence[int]:
        if isinstance(i, slice):
            return [self._base[j] for j in self._index[i]]
        return self._base[self._index[i]]


class _Skipping(Sequence[int]):
    """The source offsets of a batch with some records (ascending ``skip``) left out."""

    __slots__ = ("_base", "_skip")

    def __init__(self, base: Sequence[int], skip: list[int]) -> None:
        self._base = base
        self._skip = skip

    def __len__(self) -> int:
        return max(len(self._base) - len(self._skip), 0) if len(self._base) else 0

    @overload
    def __getitem__(self, i: int) -> int: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[int]: ...

    def __getitem__(self, i: int | slice) -> int | Sequence[int]:
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        j = i  # the i-th kept record: skip past every skipped index at or before it
        for s in self._skip:
            if s <= j:
                j += 1
            else:
                break
        return self._base[j]


# the lateness of a stage that follows its input's watermark: larger than any span of
# event times, so that only the input's watermark ever makes a record late
_FOLLOW = 2**62


@attrs.define
class SqlRoutingStage:
    """Splits source batches across partitions (the ``partita.sql.RoutingStage`` protocol).

    Create it with ``CompiledQuery.routing_stage(partitions)``.
    """

    _partitions: int = attrs.field(validator=attrs.validators.ge(1))
    _mode: RouteMode
    _route: Callable[..., Any] | None
    _keyed: bool
    _windowed: bool
    _lateness: int
    _late_policy: LatePolicy
    _policy: RecordErrors
    _coerce: Callable[..., Any] | None = None
    _joins: tuple[Callable[..., Any], ...] = ()
    _follows: bool = False
    _followed: int | None = None
    _max_ts: int | None = None
    _partition_cache: dict[Any, int] = attrs.Factory(dict)
    _next: int = 0
    _rows_in: int = 0
    _late: int = 0
    _filtered: int = 0

    @classmethod
    def create(
        cls,
        partitions: int,
        mode: RouteMode,
        route: Callable[..., Any] | None,
        *,
        keyed: bool,
        windowed: bool,
        lateness: int,
        on_error: OnError,
        late: LatePolicy,
        coerce: Callable[..., Any] | None = None,
        joins: tuple[Callable[..., Any], ...] = (),
        follows: bool = False,
    ) -> SqlRoutingStage:
        """A routing stage for ``partitions`` partitions; ``coerce`` (a declared schema's
        generated loop) converts each batch to the declared types first, then ``joins``
        (the generated table joins, see :mod:`sql._join`) join each record.

        ``follows``: the stage makes no watermark of its own but follows the one its
        input sends (:meth:`on_upstream_watermark`; behind an interval join, whose rows
        are not in event-time order): a record is late when it is behind that.
        """
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, not {partitions}")
        return cls(
            partitions,
            mode,
            route,
            keyed,
            windowed,
            _FOLLOW if follows else lateness,
            late,
            RecordErrors(on_error, "sql-route"),
            coerce,
            joins,
            follows,
        )

    @property
    def partitions(self) -> int:
        """How many partition programs the batches are split across."""
        return self._partitions

    def watermark(self) -> int | None:
        """The current source watermark, or ``None`` before any event time was seen."""
        if not self._windowed or self._max_ts is None:
            return None
        if self._follows:
            return self._followed
        return self._max_ts - self._lateness

    def on_upstream_watermark(self, watermark: int) -> int | None:
        """A watermark from the stage's input: the one to send the partitions.

        A following stage takes it as its own: its max event time becomes at least
        ``watermark`` plus its (huge) lateness, so the generated code, which decides
        lateness against max event time - lateness, decides it against ``watermark``
        exactly, and no record's event time moves it.
        """
        if not self._follows:
            return watermark
        if self._followed is None or watermark > self._followed:
            self._followed = watermark
            floor = watermark + self._lateness
            self._max_ts = floor if self._max_ts is None else max(self._max_ts, floor)
        return self.watermark() if self._windowed else None

    def route(self, batch: Batch) -> Routed:
        """Split ``batch``; records of one key always go to one partition."""
        parts: list[Batch | None] = [None] * self._partitions
        errored_before = self._policy.errored
        dead_before = len(self._policy.dead)
        if self._coerce is not None:
            batch = self._coerced(batch, self._coerce)
        for join in self._joins:
            batch = self._joined(batch, join)
        if self._mode != "per-record":
            if self._mode == "round-robin":
                parts[self._next] = batch
                self._next = (self._next + 1) % self._partitions
            else:
                parts[0] = batch
            if self._coerce is None and not self._joins:
                return Routed(parts)
            return Routed(parts, None, (), self._take_dead(errored_before, dead_before))
        assert self._route is not None
        records, offsets = batch.records, batch.offsets
        route = self._route
        args = (records, offsets, self._partitions, self._partition_cache, self._max_ts)
        late_found: Sequence[LateIndex]
        if self._keyed:
            keyed: KeyedRoute = route(*args, self._lateness, self._bad)
            recs, idx, wms, keys = keyed.records, keyed.indexes, keyed.watermarks, keyed.keys
            self._max_ts, late_found = keyed.max_ts, keyed.late
            late_now = {i for i, _, _ in late_found} if idx is None else set()
            for p, part in enumerate(recs):
                if part:
                    index: list[int] | _PartitionIndex
                    if idx is not None:
                        index = idx[p]
                    else:
                        assert keys is not None
                        index = _PartitionIndex(keys[0], keys[1], p, late_now)
                    parts[p] = Batch(part, _Remapped(offsets, index), wms[p] if wms else None)
            share_estimate(batch, parts)
        else:
            single: SingleRoute = route(*args, self._lateness, self._bad)
            skip, wl = single.skip, single.watermarks
            self._max_ts, late_found = single.max_ts, single.late
            if skip:
                kept: list[Any] = []
                start = 0
                for i in skip:  # ascending; copy the runs between skipped records
                    kept += records[start:i]
                    start = i + 1
                kept += records[start:]
                parts[0] = Batch(kept, _Skipping(offsets, skip), wl)
                share_estimate(batch, parts)
            else:
                parts[0] = Batch(records, offsets, wl)
        late = self._take_late(late_found, records, offsets)
        return Routed(parts, self.watermark(), late, self._take_dead(errored_before, dead_before))

    def _coerced(self, batch: Batch, coerce: Callable[..., Any]) -> Batch:
        """``batch`` with the declared types; records that cannot be coerced left out."""
        records, skip = coerce(batch.records, batch.offsets, self._bad)
        if not skip:
            return Batch(records, batch.offsets, batch.watermarks)
        return Batch(records, _Skipping(batch.offsets, skip), None)

    def _joined(self, batch: Batch, join: Callable[..., Any]) -> Batch:
        """``batch`` joined to one table: a record per match (an INNER join's record
        matching nothing is left out and counted as filtered)."""
        records, offsets = batch.records, batch.offsets
        joined, sources, unmatched = join(records, offsets, self._bad)
        self._filtered += unmatched
        self._rows_in += unmatched
        if len(sources) == len(records) and sources == list(range(len(sources))):
            return Batch(joined, offsets, batch.watermarks)  # one match each, none lost
        new_offsets = [offsets[i] for i in sources] if len(offsets) else offsets
        wms = batch.watermarks
        return Batch(joined, new_offsets, None if wms is None else [wms[i] for i in sources])

    def _take_dead(self, errored_before: int, dead_before: int) -> list[DeadLetter]:
        """Count the records this stage gave up on since, and take their dead letters."""
        self._rows_in += self._policy.errored - errored_before
        dead: list[DeadLetter] = self._policy.dead[dead_before:]
        del self._policy.dead[dead_before:]
        return dead

    def on_idle(self, idle_ms: int) -> int | None:
        """The source was idle for ``idle_ms``: advance event time by as much.

        Returns the new watermark, or ``None`` when the query has no event time or has
        seen none yet.  Windows still close on a quiet stream.
        """
        if idle_ms < 0:
            raise ValueError(f"idle_ms must be >= 0, not {idle_ms}")
        if not self._windowed or self._max_ts is None:
            return None
        self._max_ts += idle_ms
        return self.watermark()

    def snapshot(self) -> object:
        """Event time so far, the round-robin turn and the counters, for a checkpoint."""
        return {
            "max_ts": self._max_ts,
            "followed": self._followed,
            "next": self._next,
            "rows_in": self._rows_in,
            "late": self._late,
            "filtered": self._filtered,
            "errors": self._policy.snapshot(),
        }

    def restore(self, state: Any) -> None:
        """Take back what :meth:`snapshot` returned (before the first batch)."""
        self._max_ts = state["max_ts"]
        self._followed = state.get("followed")
        self._next = state["next"]
        self._rows_in = state["rows_in"]
        self._late = state["late"]
        self._filtered = state.get("filtered", 0)
        self._policy.restore(state["errors"])

    def error_reasons(self) -> tuple[tuple[str, int], ...]:
        """The records this stage gave up on, by reason (bounded), most frequent first."""
        return self._policy.reasons.snapshot()

    def counts(self) -> ProgramCounts:
        """Records this stage consumed itself (late or errored); the rest reach programs."""
        return ProgramCounts(
            rows_in=self._rows_in,
            filtered=self._filtered,
            late=self._late,
            errored=self._policy.errored,
        )

    def take_dead_letters(self) -> list[DeadLetter]:
        """Dead letters not yet handed out in a :class:`partita.sql.Routed` (none normally)."""
        return self._policy.take()

    # -- passed to the generated code (sql._conventions) -----------------------------

    def _bad(self, exc: Exception, record: Any, offsets: Sequence[int], index: int) -> None:
        self._policy.record_failed(exc, record, offsets, index)

    def _take_late(
        self, late: Sequence[LateIndex], records: list[Any], offsets: Sequence[int]
    ) -> list[DeadLetter]:
        if not late:
            return []
        self._late += len(late)
        self._rows_in += len(late)
        if self._late_policy == "drop":
            return []
        return [
            DeadLetter(
                records[i],
                f"late: event time {t} is behind watermark {wm}; its windows are closed",
                offsets[i] if i < len(offsets) else None,
                "sql-route",
            )
            for i, t, wm in late
        ]
