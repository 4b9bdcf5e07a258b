"""Fault injection: an operator that crashes after n records or batches, a slow sink."""

from __future__ import annotations

import attrs
import trio

from partita.actors import CollectSink
from partita.runtime import Actor, Batch, PartitaError

__all__ = ["CrashAfter", "InjectedFault", "SlowSink"]


class InjectedFault(PartitaError):
    """The crash a :class:`CrashAfter` or a :class:`SlowSink` was told to make.

    Its ``str`` names the actor and where: ``injected crash in 'crash' at record 7
    (crash 1 of 1)``.
    """

    def __init__(self, actor: str, where: str, crash: int, times: int) -> None:
        super().__init__(actor, where, crash, times)
        self.actor = actor
        self.where = where
        self.crash = crash
        self.times = times

    def __str__(self) -> str:
        where = f"{self.where} (crash {self.crash} of {self.times})"
        return f"injected crash in {self.actor!r} at {where}"


def _positive(_inst: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value}")


@attrs.define(eq=False)
class CrashAfter(Actor):
    """Passes batches on unchanged, and raises :class:`InjectedFault` at a chosen point:
    to test what a restart policy (or a checkpoint resume) makes of a crash.

    With ``records=n`` it crashes on the batch that holds its ``n``-th record (from 1,
    counting every record that reached it), before forwarding any of that batch;
    with ``batches=n`` on its ``n``-th batch.  It crashes ``times`` times: each
    crash handled again (a restarted actor gets the same batch), the next one
    comes ``n`` records or batches later.  Its counts live on the actor, so a
    restart does not reset them.  Put it in a Flow with ``.via(CrashAfter(...))``.

    Example:
        >>> crash = CrashAfter("crash", records=1_000)
        >>> crash.crashes
        0

    Args:
        name: unique within its graph.
        records: crash at every ``records``-th record (exclusive with ``batches``).
        batches: crash at every ``batches``-th batch.
        times: how many crashes in all (>= 1).

    Attributes:
        crashes: the crashes so far.
        seen: records (and ``batches_seen`` batches) handled, crashed ones included.

    Raises:
        ValueError: neither or both of ``records`` and ``batches``; a count < 1.
    """

    records: int | None = attrs.field(default=None, kw_only=True, validator=_positive)
    batches: int | None = attrs.field(default=None, kw_only=True, validator=_positive)
    times: int = attrs.field(default=1, kw_only=True, validator=attrs.validators.ge(1))
    crashes: int = attrs.field(init=False, default=0)
    seen: int = attrs.field(init=False, default=0)
    batches_seen: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        if (self.records is None) == (self.batches is None):
            raise ValueError("give one of records= or batches=")

    def _next_crash(self) -> int:
        every = self.records if self.records is not None else self.batches
        assert every is not None
        return every * (self.crashes + 1)

    def on_batch(self, batch: Batch) -> None:
        records = batch.records
        due = self.crashes < self.times
        if self.records is not None:
            self.seen += len(records)
            if due and self.seen >= self._next_crash():
                at = self._next_crash()
                offset = batch.offset_of(len(records) - (self.seen - at) - 1)
                self.seen -= len(records)  # handled again after the restart
                self._crash(f"record {at}" + ("" if offset is None else f", offset {offset}"))
        else:
            self.batches_seen += 1
            if due and self.batches_seen >= self._next_crash():
                at = self._next_crash()
                self.batches_seen -= 1
                self._crash(f"batch {at}")
        if records:
            self.emit_batch(batch)

    def _crash(self, where: str) -> None:
        self.crashes += 1
        raise InjectedFault(self.name, where, self.crashes, self.times)


@attrs.define(eq=False)
class SlowSink(CollectSink):
    """Keeps the rows, as :class:`partita.CollectSink`, taking ``delay`` seconds a batch
    (``trio.sleep``: virtual time under a ``MockClock``), so backpressure builds up
    behind it; and crashes on command (:meth:`crash_next`) before keeping a batch.

    Example:
        >>> sink = SlowSink("out", delay=0.5)
        >>> sink.crash_next()

    Args:
        name: unique within its graph.
        delay: seconds each batch takes (>= 0).

    Attributes:
        rows: every row kept, in arrival order (a crashed batch is kept once, when it
            is handled again).
        batches: the batches kept.
    """

    delay: float = attrs.field(default=0.0, kw_only=True, validator=attrs.validators.ge(0))
    batches: int = attrs.field(init=False, default=0)
    _crash_pending: int = attrs.field(init=False, default=0)
    _crashes: int = attrs.field(init=False, default=0)

    def crash_next(self, n: int = 1) -> None:
        """Crash on each of the next ``n`` batches (each crash handled again on restart)."""
        self._crash_pending += n

    async def consume(self, batch: Batch) -> None:
        if not batch.records:
            return
        if self.delay:
            await trio.sleep(self.delay)
        if self._crash_pending:
            self._crash_pending -= 1
            self._crashes += 1
            crashes = self._crashes
            raise InjectedFault(self.name, f"batch {self.batches + 1}", crashes, crashes)
        self.batches += 1
        await super().consume(batch)
