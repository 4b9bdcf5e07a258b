"""What a state machine feeds its sources: records appended by the machine, read by the graph."""

from __future__ import annotations

import attrs
import trio

from partita.runtime import Record

__all__ = ["Feed"]


@attrs.define(eq=False)
class Feed:
    """What the machine has sent; the source reads it."""

    records: list[Record] = attrs.Factory(list)
    closed: bool = False
    _changed: trio.Event = attrs.Factory(trio.Event)

    def push(self, records: list[Record]) -> None:
        self.records.extend(records)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_beyond(self, position: int) -> None:
        while position >= len(self.records) and not self.closed:
            await self._changed.wait()
