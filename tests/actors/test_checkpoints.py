"""Resumable sources and exactly-once file sinks: a crash, the same job again, the same output."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from partita.actors import (
    CsvSource,
    DeadLetterSink,
    IterableSource,
    JsonLinesSink,
    JsonLinesSource,
    TradeSource,
)
from partita.runtime import (
    Actor,
    ActorFailed,
    Batch,
    BatchSizer,
    CheckpointError,
    Checkpointing,
    Graph,
    MemoryCheckpointStore,
    Source,
    open_supervisor,
)


@attrs.define(eq=False)
class CrashOnce(Actor):
    """Forwards batches; raises once, at the record whose ``i`` is ``at``."""

    at: int | None = None

    def on_batch(self, batch: Batch) -> None:
        if self.at is not None and any(r.get("i") == self.at for r in batch.records):
            self.at = None
            raise RuntimeError("crash")
        self.emit_batch(batch)


@attrs.define(eq=False)
class TickingJsonLines(JsonLinesSource):
    """Parses one 64 KB read at a time and lets a virtual millisecond pass after each
    batch: checkpoints (every 1 ms) come every few thousand lines, whatever the
    worker threads do."""

    def drain_limit(self) -> int:
        return 1

    async def send_with_dead_letters(self, records: Any, dead: Any, offsets: Any = None) -> None:
        await super().send_with_dead_letters(records, dead, offsets)
        await trio.sleep(0.001)


@attrs.define(eq=False)
class TickingCsv(CsvSource):
    async def send_with_dead_letters(self, records: Any, dead: Any, offsets: Any = None) -> None:
        await super().send_with_dead_letters(records, dead, offsets)
        await trio.sleep(0.001)


def graph_of(source: Source, out: Path, crash_at: int | None, dead: Path | None = None) -> Graph:
    graph = Graph()
    graph.add(source)
    crash = graph.add(CrashOnce("crash", at=crash_at), inputs=[source])
    graph.add(JsonLinesSink("sink", out), inputs=[crash])
    if dead is not None:
        assert hasattr(source, "dead_letter_output")
        source.dead_letter_output = 1
        graph.add(DeadLetterSink("dead-letter", dead), inputs=[source])
    return graph


async def crash_then_resume(
    make_source: Any, tmp_path: Path, crash_at: int, *, dead: bool = False
) -> tuple[Path, Path]:
    """The output of an uninterrupted run, and of a run that crashed and resumed."""
    expected, got = tmp_path / "expected.jsonl", tmp_path / "got.jsonl"
    dead_expected = tmp_path / "dead-expected.jsonl" if dead else None
    dead_got = tmp_path / "dead-got.jsonl" if dead else None
    async with open_supervisor(graph_of(make_source(), expected, None, dead_expected)):
        pass
    store = MemoryCheckpointStore()
    options = Checkpointing(store=store, interval="1ms")
    with pytest.raises(ActorFailed, match="crash"):
        async with open_supervisor(
            graph_of(make_source(), got, crash_at, dead_got), checkpoints=options
        ):
            pass
    assert await store.latest() is not None  # the crash came after a checkpoint
    options = Checkpointing(store=store.crashed(), interval="1ms")
    async with open_supervisor(
        graph_of(make_source(), got, None, dead_got), checkpoints=options
    ) as sup:
        assert sup.stats().resumed_from is not None
    if dead:
        assert dead_got is not None and dead_expected is not None
        assert dead_got.read_bytes() == dead_expected.read_bytes()
    return expected, got


def lines(n: int, *, bad_every: int = 0) -> str:
    out = []
    for i in range(n):
        if bad_every and i % bad_every == bad_every - 1:
            out.append("{not json")
        out.append(json.dumps({"i": i, "pad": "x" * (i % 7)}))
    return "\n".join(out) + "\n"


async def test_json_lines_resume_at_the_checkpointed_offset(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(lines(20_000, bad_every=97), encoding="utf-8")

    def source() -> JsonLinesSource:
        return TickingJsonLines("source", path, on_error="dead-letter", sizer=BatchSizer.fixed(100))

    expected, got = await crash_then_resume(source, tmp_path, crash_at=15_000, dead=True)
    assert got.read_bytes() == expected.read_bytes()
    assert len(got.read_text().splitlines()) == 20_000


async def test_csv_resumes_with_its_header(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "in.csv"
    rows = "".join(f"{i},{'y' * (i % 5)}\n" for i in range(5_000))
    path.write_text("i,pad\n" + rows, encoding="utf-8")

    def source() -> CsvSource:
        return TickingCsv("source", path, sizer=BatchSizer.fixed(50))

    expected, got = await crash_then_resume(source, tmp_path, crash_at=4_000)
    assert got.read_bytes() == expected.read_bytes()


async def test_trades_resume_deterministically(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    counter = iter(range(10**9))

    @attrs.define(eq=False)
    class Numbered(TradeSource):
        def _generate(self, n: int) -> list[Any]:
            out = super()._generate(n)
            for record in out:  # i: the trade's index, for CrashOnce
                record["i"] = next(counter) % 3_000
            return out

    def source() -> TradeSource:
        return Numbered("source", records=3_000, seed=7, rate=1_000, disorder_ms=5)

    expected = tmp_path / "expected.jsonl"
    async with open_supervisor(graph_of(source(), expected, None)):
        pass
    expected_rows = [
        {k: v for k, v in json.loads(line).items() if k != "i"}
        for line in expected.read_text().splitlines()
    ]
    counter = iter(range(10**9))
    _, got = await crash_then_resume(source, tmp_path, crash_at=2_500)
    got_rows = [
        {k: v for k, v in json.loads(line).items() if k != "i"}
        for line in got.read_text().splitlines()
    ]
    assert got_rows == expected_rows


async def test_an_input_that_changed_is_refused(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(lines(20_000), encoding="utf-8")
    store = MemoryCheckpointStore()
    out = tmp_path / "out.jsonl"

    def source() -> JsonLinesSource:
        return TickingJsonLines("source", path, sizer=BatchSizer.fixed(100))

    with pytest.raises(ActorFailed):
        async with open_supervisor(
            graph_of(source(), out, 19_000), checkpoints=Checkpointing(store=store, interval="1ms")
        ):
            pass
    latest = await store.latest()
    assert latest is not None
    path.write_text(lines(20_000).replace('"i": 1,', '"i": 9,'), encoding="utf-8")
    with pytest.raises(ActorFailed) as failed:
        async with open_supervisor(
            graph_of(source(), out, None), checkpoints=Checkpointing(store=store.crashed())
        ):
            pass
    assert isinstance(failed.value.error, CheckpointError)
    assert "changed before byte" in str(failed.value.error)


async def test_a_generator_cannot_resume(tmp_path: Path) -> None:
    records = ({"i": i} for i in range(3))
    graph = graph_of(IterableSource("source", records), tmp_path / "out.jsonl", None)
    with pytest.raises(CheckpointError, match="a IterableSource cannot resume"):  # a generator
        async with open_supervisor(graph, checkpoints=Checkpointing(store=MemoryCheckpointStore())):
            pass


async def test_stdout_is_at_least_once_a_file_exactly_once(tmp_path: Path) -> None:
    assert JsonLinesSink("sink", "-").delivery == "at-least-once"
    assert JsonLinesSink("sink", tmp_path / "out.jsonl").delivery == "exactly-once"


async def test_a_checkpoint_before_the_first_write_of_a_resumed_run_keeps_the_file(
    tmp_path: Path,
) -> None:
    # found by test_recovery: a resumed sink reported length 0 to a checkpoint taken
    # before its first write, and the next resume cut the committed rows away
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"a": 1}\n{"a": 2}\n')
    sink = JsonLinesSink("sink", out)
    sink.restore_state({"bytes": 9, "rows": 1})  # committed: the first row only
    assert sink.snapshot_state() == {"bytes": 9, "rows": 1}  # before anything is written
    await sink.consume(Batch([{"a": 3}]))
    assert out.read_bytes() == b'{"a": 1}\n{"a":3}\n'  # the sink writes compact JSON
    assert sink.snapshot_state() == {"bytes": 17, "rows": 2}
    dead = DeadLetterSink("dead-letter", tmp_path / "dead.jsonl")
    dead.restore_state({"count": 4, "bytes": 120, "kept": []})
    assert dead.snapshot_state() == {"count": 4, "bytes": 120, "kept": []}


def test_the_fingerprint_examples_run() -> None:
    """The examples of what names a job (its fingerprint and a joined table's digest)."""
    from partita.actors import _checkpoints

    result = doctest.testmod(_checkpoints, raise_on_error=False, verbose=False)
    assert result.attempted >= 2 and result.failed == 0
