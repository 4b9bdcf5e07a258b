"""Router, partition and merge actors, driven by a small hand-written stage and program."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import trio
import trio.testing

from partita.actors import (
    AsyncIterableSource,
    CollectSink,
    DeadLetterSink,
    IterableSource,
    MergeActor,
    PartitionActor,
    RouterActor,
)
from partita.runtime import (
    Batch,
    BatchSizer,
    DeadLetter,
    Graph,
    Record,
)
from partita.runtime import run_graph as run_supervised
from partita.sql import ProgramCounts, Routed


@attrs.define
class ParityStage:
    """Routes records by ``k % partitions``; watermark = max ``ts``; ``k < 0`` is dead."""

    partitions: int
    max_ts: int | None = None
    idle_calls: list[int] = attrs.Factory(list)
    errored: int = 0

    def route(self, batch: Batch) -> Routed:
        buckets: list[list[Record]] = [[] for _ in range(self.partitions)]
        dead: list[DeadLetter] = []
        for offset, record in zip(batch.offsets, batch.records, strict=True):
            if record["k"] < 0:
                dead.append(DeadLetter(record, "negative key", offset, "fake-route"))
                continue
            buckets[record["k"] % self.partitions].append(record)
            ts = record["ts"]
            self.max_ts = ts if self.max_ts is None else max(self.max_ts, ts)
        self.errored += len(dead)
        parts = [Batch(b) if b else None for b in buckets]
        return Routed(parts, self.max_ts, (), dead)

    def on_idle(self, idle_ms: int) -> int | None:
        self.idle_calls.append(idle_ms)
        if self.max_ts is None:
            return None
        self.max_ts += idle_ms
        return self.max_ts

    def counts(self) -> ProgramCounts:
        return ProgramCounts(errored=self.errored)


@attrs.define
class SumProgram:
    """Sums ``v`` per ``k``; emits the sums at each watermark that passed 1000-ms buckets."""

    sums: dict[int, int] = attrs.Factory(dict)
    watermarks: list[int] = attrs.Factory(list)
    seen: int = 0
    dead: list[DeadLetter] = attrs.Factory(list)

    def process(self, batch: Batch) -> list[Record]:
        for record in batch.records:
            if record["v"] is None:
                self.dead.append(DeadLetter(record, "v is null", None, "fake-part"))
                continue
            self.sums[record["k"]] = self.sums.get(record["k"], 0) + record["v"]
        self.seen += len(batch.records)
        return []

    def advance(self, watermark: int) -> list[Record]:
        self.watermarks.append(watermark)
        return [{"wm": watermark, "n": self.seen}]

    def finish(self) -> list[Record]:
        return [{"k": k, "sum": s} for k, s in sorted(self.sums.items())]

    def take_dead_letters(self) -> list[DeadLetter]:
        dead, self.dead = self.dead, []
        return dead

    def counts(self) -> ProgramCounts:
        return ProgramCounts(rows_in=self.seen, errored=0)


def _graph(
    source: IterableSource | AsyncIterableSource, partitions: int, dead: bool
) -> tuple[Graph, ParityStage, list[SumProgram], CollectSink, DeadLetterSink | None]:
    graph = Graph()
    graph.add(source)
    stage = ParityStage(partitions)
    router = RouterActor("router", stage)
    graph.add(router, inputs=[source])
    programs = [SumProgram() for _ in range(partitions)]
    parts = [PartitionActor(f"partition-{i}", p) for i, p in enumerate(programs)]
    for part in parts:
        graph.add(part, inputs=[router])
    merge = graph.add(MergeActor("merge"), inputs=parts)
    sink = CollectSink("sink")
    graph.add(sink, inputs=[merge])
    dead_sink = None
    if dead:
        dead_sink = DeadLetterSink("dead-letter")
        router.dead_letter_output = partitions
        for part in parts:
            part.dead_letter_output = 1
        graph.add(dead_sink, inputs=[router, *parts])
    return graph, stage, programs, sink, dead_sink


async def test_router_partitions_and_watermarks() -> None:
    records = [{"k": i % 5, "v": i, "ts": i} for i in range(100)]
    source = IterableSource("source", records, sizer=BatchSizer.fixed(10))
    graph, _, programs, sink, _ = _graph(source, 2, dead=False)
    stats = await run_supervised(graph)
    finals = [r for r in sink.rows if "sum" in r]
    expected: dict[int, int] = {}
    for r in records:
        expected[r["k"]] = expected.get(r["k"], 0) + r["v"]
    assert {r["k"]: r["sum"] for r in finals} == expected
    # every partition saw every watermark, once each and increasing
    for program in programs:
        assert program.watermarks == [9, 19, 29, 39, 49, 59, 69, 79, 89, 99]
    assert stats["router"].rows_in == 100
    assert stats["partition-0"].rows_in + stats["partition-1"].rows_in == 100
    assert {r["k"] for r in finals if r["k"] % 2 == 0} == {0, 2, 4}


async def test_dead_letters_reach_the_dead_letter_sink() -> None:
    records: list[Record] = [
        {"k": 1, "v": 1, "ts": 0},
        {"k": -1, "v": 1, "ts": 1},
        {"k": 2, "v": None, "ts": 2},
    ]
    source = IterableSource("source", records)
    graph, _, _, _, dead = _graph(source, 2, dead=True)
    stats = await run_supervised(graph)
    assert dead is not None
    assert sorted(d.reason for d in dead.dead_letters) == ["negative key", "v is null"]
    assert [d.offset for d in dead.dead_letters if d.stage == "fake-route"] == [1]
    assert stats["router"].rows_errored == 1


async def test_idle_ticks_call_on_idle(autojump_clock: trio.testing.MockClock) -> None:
    async def quiet() -> AsyncIterator[Record]:
        yield {"k": 1, "v": 1, "ts": 1000}
        await trio.sleep(2.5)  # the input goes quiet (virtual time: autojump_clock)
        yield {"k": 1, "v": 1, "ts": 1001}

    source = AsyncIterableSource("source", quiet(), idle_timeout=1.0)
    graph, stage, programs, _, _ = _graph(source, 1, dead=False)
    await run_supervised(graph)
    assert stage.idle_calls == [1000, 1000]
    assert programs[0].watermarks == [1000, 2000, 3000]  # ts 1001 is behind 3000


async def test_empty_input_still_runs_one_batch() -> None:
    source = IterableSource("source", [])
    graph, _, programs, sink, _ = _graph(source, 2, dead=False)
    await run_supervised(graph)
    assert sink.rows == []
    assert all(p.seen == 0 for p in programs)
