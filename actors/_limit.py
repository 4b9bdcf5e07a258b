"""Bounded runs: stop after ``n`` output rows, or after a time.

``LIMIT n`` (and the CLI's ``--limit n``): the limit wraps whatever sink the run
writes to.  It cuts the batch that reaches the limit, flushes the sink, then
raises :class:`partita.ConsumerGone`, which cancels everything upstream quietly:
the source stops being read and nothing is left running.

``run(count=n, timeout=...)`` (``Flow.run``, ``run_sql``, the CLI's ``--timeout``):
a :class:`RowCount` shared by the run's sinks cuts the batch that reaches ``n``
rows and drops what comes after; :func:`wait_bounded` then stops the graph
gracefully (the sources stop, the mailboxes drain, every sink flushes: files are
complete), as it does when the timeout passes on trio's clock.
"""

from __future__ import annotations

import math
from typing import Any, Literal, TypeAlias

import attrs
import trio

from partita.runtime import (
    ActorState,
    Batch,
    ConsumerGone,
    Duration,
    Sink,
    Supervisor,
    parse_duration_ms,
)

__all__ = [
    "LimitedSink",
    "RowCount",
    "StoppedBy",
    "check_count",
    "check_timeout",
    "run_limit",
    "wait_bounded",
]

StoppedBy: TypeAlias = Literal["count", "timeout"]
"""What stopped a bounded run (``GraphStats.stopped_by``)."""

_ENDED = (ActorState.COMPLETED, ActorState.FAILED, ActorState.CANCELLED)


def check_count(count: object) -> int | None:
    """``count`` checked: ``None`` or an int >= 1.

    Raises:
        ValueError: anything else (``count must be an int >= 1 or None, got 0``).
    """
    if count is None:
        return None
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be an int >= 1 or None, got {count!r}")
    return count


def check_timeout(timeout: Duration | None) -> float | None:
    """``timeout`` as seconds (a duration: ``"30s"``, a ``timedelta``, or bare
    milliseconds), ``None`` for none.

    Raises:
        ValueError: not a duration, or not more than 0.
    """
    if timeout is None:
        return None
    ms = parse_duration_ms(timeout, "timeout")
    if ms <= 0:
        raise ValueError(f"timeout must be more than 0, got {timeout!r}")
    return ms / 1000


@attrs.define(eq=False)
class RowCount:
    """``limit`` rows across the sinks that share it; :attr:`reached` is set at the limit."""

    limit: int = attrs.field(validator=attrs.validators.ge(1))
    written: int = 0
    reached: trio.Event = attrs.field(factory=trio.Event)

    def room(self, n: int) -> int:
        """How many of ``n`` rows may still be written."""
        return max(0, min(n, self.limit - self.written))

    def wrote(self, n: int) -> None:
        """``n`` more rows are written."""
        self.written += n
        if self.written >= self.limit:
            self.reached.set()


async def wait_bounded(
    running: Supervisor, count: RowCount | None, seconds: float | None
) -> StoppedBy | None:
    """Wait for the graph to end, or stop it gracefully once ``count`` is reached or
    ``seconds`` passed (drain, flush, complete); say which stopped it."""
    stopped: StoppedBy | None = None
    with trio.move_on_after(math.inf if seconds is None else seconds) as deadline:
        if count is None:
            await running.wait()
        else:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_at_end, running, nursery.cancel_scope)
                await count.reached.wait()
                stopped = "count"
                nursery.cancel_scope.cancel()
    if deadline.cancelled_caught:
        stopped = "timeout"
    if stopped is not None and running.state not in _ENDED:
        await running.cancel(graceful=True)
        return stopped
    return None


async def _cancel_at_end(running: Supervisor, scope: trio.CancelScope) -> None:
    await running.wait()
    scope.cancel()


def run_limit(option: int | None, query_limit: int | None) -> int | None:
    """The run's limit: the smaller of ``--limit`` and the query's ``LIMIT``."""
    given = [n for n in (option, query_limit) if n is not None]
    return min(given) if given else None


@attrs.define(eq=False)
class LimitedSink(Sink):
    """Writes through ``inner`` until ``limit`` rows are written, then stops the run.

    Example:
        >>> from partita.actors import JsonLinesSink
        >>> from partita.actors._limit import LimitedSink
        >>> sink = LimitedSink("sink", JsonLinesSink("sink", "out.jsonl"), 10)
    """

    inner: Sink
    limit: int = attrs.field(validator=attrs.validators.ge(1))
    #: with a shared count (``run(count=)``): count against it, drop the rows past
    #: it and let the run stop the graph gracefully, instead of ConsumerGone
    shared: RowCount | None = attrs.field(default=None, kw_only=True)
    written: int = attrs.field(init=False, default=0)

    @classmethod
    def counting(cls, inner: Sink, count: RowCount) -> LimitedSink:
        """``inner`` writing its share of ``count`` (named as ``inner``)."""
        return cls(inner.name, inner, count.limit, shared=count)

    @property
    def delivery(self) -> Any:  # type: ignore[override]
        return self.inner.delivery

    async def consume(self, batch: Batch) -> None:
        shared = self.shared
        if shared is not None:
            records = batch.records
            room = shared.room(len(records))
            if room:
                cut = batch if room == len(records) else Batch(records[:room], batch.offsets[:room])
                await self.inner.consume(cut)
                self.written += room
                shared.wrote(room)
            return
        room = self.limit - self.written
        records = batch.records
        if len(records) >= room:
            await self.inner.consume(Batch(records[:room], batch.offsets[:room]))
            self.written = self.limit
            await self.inner.flush()
            raise ConsumerGone(self.name)
        await self.inner.consume(batch)
        self.written += len(records)

    async def flush(self) -> None:
        await self.inner.flush()

    def snapshot_state(self) -> object:
        total = None if self.shared is None else self.shared.written
        return {"inner": self.inner.snapshot_state(), "written": self.written, "total": total}

    def restore_state(self, state: object) -> None:
        saved: Any = state
        self.inner.restore_state(saved["inner"])
        self.written = saved["written"]
        if self.shared is not None and saved.get("total") is not None:
            self.shared.written = saved["total"]
            if self.shared.written >= self.shared.limit:
                self.shared.reached.set()
