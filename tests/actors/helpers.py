"""Small helpers shared by the actors tests."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import trio

from partita.actors import CollectSink
from partita.runtime import Graph, GraphStats, Record, Source
from partita.runtime import run_graph as run_supervised


async def collect(source: Source, **options: Any) -> tuple[list[Record], GraphStats]:
    """Run ``source -> CollectSink`` and return the rows and the final stats."""
    graph = Graph()
    graph.add(source)
    sink = CollectSink("sink")
    graph.add(sink, inputs=[source], capacity=options.pop("capacity", 16))
    stats = await run_supervised(graph, **options)
    return sink.rows, stats


@attrs.define(eq=False)
class HeldSink(CollectSink):
    """Collects rows; holds (does not return) at batch ``hold_at`` until released."""

    hold_at: int | None = None
    held: trio.Event = attrs.field(factory=trio.Event)
    release: trio.Event = attrs.field(factory=trio.Event)
    batches: int = 0

    async def consume(self, batch: Any) -> None:
        self.batches += 1
        if self.hold_at is not None and self.batches >= self.hold_at and not self.release.is_set():
            self.held.set()
            await self.release.wait()
        await super().consume(batch)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a test server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: Iterable[Record]) -> Path:
    return write_lines(path, (json.dumps(r) for r in records))


def canonical(rows: Iterable[Record]) -> list[str]:
    """Rows as sorted JSON strings: compare results whose order may differ."""
    return sorted(json.dumps(r, sort_keys=True) for r in rows)
