"""One synchronous step of a query, shared by ``run_query`` and the actors.

A query runs as a :class:`RouteStep` at the source side and one
:class:`PartitionStep` per partition.  Each call takes one batch (or a watermark,
or the end of input) and returns a frozen result: what to send on and the
counters as they stand.  Whatever drives them only moves those results: the
actors put them in mailboxes, :func:`partita.sql.run_query` in lists.  The rules
of the pipeline live here once: a watermark goes on only when it advanced, and a
query that saw no input at all still shows its programs one empty batch (so a
global aggregate over nothing gives its one row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from partita.runtime import Batch, DeadLetter, Record

from ._interface import PartitionProgram, ProgramCounts, RoutingStage

__all__ = ["PartitionResult", "PartitionStep", "RouteResult", "RouteStep"]

_Reasons = Callable[[], tuple[tuple[str, int], ...]]
_NO_LETTERS: Sequence[DeadLetter] = ()


@attrs.frozen(slots=True)
class RouteResult:
    """What the source side made of one batch (or of the end of input).

    Attributes:
        parts: ``parts[i]`` is partition ``i``'s sub-batch (``None``: nothing for it).
        watermark: the watermark to send every partition after its part, or ``None``
            when it did not advance.
        dead_letters: late and failed records the routing stage decided.
        counts: the routing stage's counters after the batch.
        error_reasons: its errors by reason when it has any (else ``None``).
    """

    parts: Sequence[Batch | None]
    watermark: int | None
    dead_letters: Sequence[DeadLetter]
    counts: ProgramCounts
    error_reasons: tuple[tuple[str, int], ...] | None = None


@attrs.frozen(slots=True)
class PartitionResult:
    """What one partition's program made of a batch, a watermark or the end of input.

    Attributes:
        rows: the rows it emits now.
        dead_letters: records that failed or were late meanwhile.
        counts: the program's counters after the call.
        error_reasons: its errors by reason when it has any (else ``None``).
    """

    rows: list[Record]
    dead_letters: Sequence[DeadLetter]
    counts: ProgramCounts
    error_reasons: tuple[tuple[str, int], ...] | None = None


def _reasons_of(owner: object) -> _Reasons | None:
    reasons: _Reasons | None = getattr(owner, "error_reasons", None)
    return reasons


@attrs.define
class RouteStep:
    """Drives a :class:`partita.sql.RoutingStage`: one call per source batch.

    It remembers the watermark it handed on (a watermark goes on only when it
    advanced) and whether any batch was routed (see :meth:`finish`).

    Example:
        >>> from partita.runtime import Batch
        >>> from partita.sql import compile_query
        >>> q = compile_query("SELECT k, COUNT(*) AS n FROM t GROUP BY k")
        >>> step = RouteStep(q.routing_stage(2))
        >>> routed = step.route(Batch.from_records([{"k": 1}, {"k": 2}]))
        >>> sum(len(p.records) for p in routed.parts if p is not None)
        2
    """

    _stage: RoutingStage
    _watermark: int | None = None
    _routed_any: bool = False
    _on_idle: Callable[[int], int | None] | None = attrs.field(init=False)
    _reasons: _Reasons | None = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._on_idle = getattr(self._stage, "on_idle", None)
        self._reasons = _reasons_of(self._stage)

    @property
    def partitions(self) -> int:
        """How many partitions the batches are split across."""
        return self._stage.partitions

    def route(self, batch: Batch) -> RouteResult:
        """Split one source batch (with records) across the partitions."""
        self._routed_any = True
        stage = self._stage
        routed = stage.route(batch)
        watermark = None if routed.watermark is None else self.advance(routed.watermark)
        letters = [*routed.late, *routed.dead] if routed.late or routed.dead else _NO_LETTERS
        return self._result(routed.parts, watermark, letters)

    def advance(self, watermark: int) -> int | None:
        """A watermark from upstream: the one to send on, or ``None`` if it is not newer."""
        if self._watermark is not None and watermark <= self._watermark:
            return None
        self._watermark = watermark
        return watermark

    def upstream(self, watermark: int) -> int | None:
        """A watermark from the stage's input (not from its records): the one to send
        on, if newer.  A stage that follows its input's watermarks takes it as its own
        (``on_upstream_watermark``); any other passes it on as it is."""
        follow = getattr(self._stage, "on_upstream_watermark", None)
        mine = watermark if follow is None else follow(watermark)
        return None if mine is None else self.advance(mine)

    def idle(self, idle_ms: int) -> int | None:
        """The source was idle for ``idle_ms``: the watermark to send on, if any."""
        if self._on_idle is None:
            return None
        watermark = self._on_idle(idle_ms)
        return None if watermark is None else self.advance(watermark)

    def finish(self) -> RouteResult:
        """End of input: with no batch routed at all, route one empty batch (every
        program sees at least one); and the stage's dead letters not yet handed out."""
        if self._routed_any:
            parts: Sequence[Batch | None] = [None] * self._stage.partitions
            watermark = None
            letters: Sequence[DeadLetter] = _NO_LETTERS
        else:
            first = self.route(Batch([], ()))
            parts, watermark, letters = first.parts, first.watermark, first.dead_letters
        take = getattr(self._stage, "take_dead_letters", None)
        if take is not None:
            rest: list[DeadLetter] = take()
            if rest:
                letters = [*letters, *rest]
        return self._result(parts, watermark, letters)

    def snapshot(self) -> object:
        """The stage's state (event time, counters) and the watermark handed on so far."""
        return {
            "stage": self._stage.snapshot(),
            "watermark": self._watermark,
            "routed_any": self._routed_any,
        }

    def restore(self, state: Any) -> None:
        """Take back what :meth:`snapshot` returned (before the first batch)."""
        self._stage.restore(state["stage"])
        self._watermark = state["watermark"]
        self._routed_any = state["routed_any"]

    def _result(
        self,
        parts: Sequence[Batch | None],
        watermark: int | None,
        letters: Sequence[DeadLetter],
    ) -> RouteResult:
        counts = self._stage.counts()
        reasons = None
        if counts.errored and self._reasons is not None:  # costs nothing on a clean stream
            reasons = self._reasons()
        return RouteResult(parts, watermark, letters, counts, reasons)


@attrs.define
class PartitionStep:
    """Drives one :class:`partita.sql.PartitionProgram`: one call per batch or watermark.

    Example:
        >>> from partita.runtime import Batch
        >>> from partita.sql import compile_query
        >>> step = PartitionStep(compile_query("SELECT x + 1 AS y FROM t").new_program())
        >>> step.process(Batch.from_records([{"x": 1}])).rows
        [{'y': 2}]
    """

    _program: PartitionProgram
    _reasons: _Reasons | None = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._reasons = _reasons_of(self._program)

    def process(self, batch: Batch) -> PartitionResult:
        """Run one batch."""
        return self._result(self._program.process(batch))

    def advance(self, watermark: int) -> PartitionResult:
        """The watermark reached ``watermark``: close what it closes."""
        return self._result(self._program.advance(watermark))

    def finish(self) -> PartitionResult:
        """End of input: close everything."""
        return self._result(self._program.finish())

    def counts(self) -> ProgramCounts:
        """The program's counters as they stand."""
        return self._program.counts()

    def snapshot(self) -> object:
        """The program's state (see :meth:`partita.sql.PartitionProgram.snapshot`)."""
        return self._program.snapshot()

    def restore(self, state: Any) -> None:
        """Take back what :meth:`snapshot` returned (before the first batch)."""
        self._program.restore(state)

    def state(self) -> object | None:
        """The program's state for the stats' estimate: its snapshot, or ``None`` for
        a program that has none (one that cannot checkpoint still runs and reports)."""
        snapshot = getattr(self._program, "snapshot", None)
        return None if snapshot is None else snapshot()

    def _result(self, rows: list[Record]) -> PartitionResult:
        program = self._program
        letters = program.take_dead_letters()
        counts = program.counts()
        reasons = None
        if counts.errored and self._reasons is not None:  # costs nothing on a clean stream
            reasons = self._reasons()
        return PartitionResult(rows, letters, counts, reasons)
