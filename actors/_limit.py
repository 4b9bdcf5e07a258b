"""``LIMIT n`` (and the CLI's ``--limit n``): a run stops once its sink has written ``n`` rows.

The limit wraps whatever sink the run writes to.  It cuts the batch that reaches
the limit, flushes the sink, then raises :class:`partita.ConsumerGone`, which
cancels everything upstream quietly: the source stops being read and nothing is
left running.
"""

from __future__ import annotations

from typing import Any

import attrs

from partita.runtime import Batch, ConsumerGone, Sink

__all__ = ["LimitedSink", "run_limit"]


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
    written: int = attrs.field(init=False, default=0)

    @property
    def delivery(self) -> Any:  # type: ignore[override]
        return self.inner.delivery

    async def consume(self, batch: Batch) -> None:
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
        return {"inner": self.inner.snapshot_state(), "written": self.written}

    def restore_state(self, state: object) -> None:
        saved: Any = state
        self.inner.restore_state(saved["inner"])
        self.written = saved["written"]
