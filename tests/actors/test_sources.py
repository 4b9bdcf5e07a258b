"""Sources: iterables, async iterables, JSON lines (files, stdin, pipes), CSV, trades."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from partita.actors import (
    AsyncIterableSource,
    CollectSink,
    CsvSource,
    DeadLetterSink,
    IterableSource,
    JsonLinesSource,
    TradeSource,
)
from partita.actors._files import convert_csv_value
from partita.runtime import (
    Actor,
    ActorFailed,
    ActorState,
    BadRecord,
    Batch,
    BatchSizer,
    Graph,
    Record,
    RestartIntensityExceeded,
    RestartPolicy,
    Sink,
    Strategy,
)
from partita.runtime import run_graph as run_supervised

from .helpers import collect, write_jsonl, write_lines

ROOT = Path(__file__).resolve().parents[2]


async def test_iterable_source_batches_and_offsets() -> None:
    source = IterableSource("src", [{"x": i} for i in range(1000)], sizer=BatchSizer.fixed(300))
    rows, stats = await collect(source)
    assert rows == [{"x": i} for i in range(1000)]
    assert stats["src"].rows_out == 1000
    assert stats["src"].batches_in == 4
    assert stats.state is ActorState.COMPLETED


async def test_iterable_source_reads_lazily() -> None:
    pulled = 0

    def numbers() -> Iterator[Record]:
        nonlocal pulled
        for i in range(100_000):
            pulled += 1
            yield {"x": i}

    gate = trio.Event()

    class Slow(Sink):
        async def consume(self, batch: Batch) -> None:
            await gate.wait()

    graph = Graph()
    src = graph.add(IterableSource("src", numbers(), sizer=BatchSizer.fixed(100)))
    graph.add(Slow("sink"), inputs=[src], capacity=2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_supervised, graph)
        await trio.testing.wait_all_tasks_blocked()
        # sink holds one batch, its mailbox two, the source one in hand
        assert pulled <= 5 * 100
        gate.set()
    assert pulled == 100_000


async def test_async_iterable_source(autojump_clock: trio.testing.MockClock) -> None:
    async def ticks() -> AsyncIterator[Record]:
        for i in range(10):
            yield {"i": i}
            if i == 4:
                await trio.sleep(1)

    rows, stats = await collect(AsyncIterableSource("src", ticks()))
    assert rows == [{"i": i} for i in range(10)]
    assert stats["src"].batches_in >= 2  # what had come before the pause went as one batch


async def test_async_iterable_source_idle_ticks(autojump_clock: trio.testing.MockClock) -> None:
    async def slow() -> AsyncIterator[Record]:
        yield {"i": 0}
        await trio.sleep(3.5)
        yield {"i": 1}

    seen: list[int] = []

    class Recorder(Sink):
        async def consume(self, batch: Batch) -> None:
            seen.append(len(batch.records))

    graph = Graph()
    src = graph.add(AsyncIterableSource("src", slow(), idle_timeout=1.0))
    graph.add(Recorder("sink"), inputs=[src])
    await run_supervised(graph)
    assert seen == [1, 0, 0, 0, 1]  # three idle ticks (empty batches) during 3.5 s


def test_idle_timeout_validated() -> None:
    with pytest.raises(ValueError, match="idle_timeout must be a positive number"):
        IterableSource("src", [], idle_timeout=0)


# ------------------------------------------------------------------ JSON lines

GOOD = [{"n": i, "s": f"v{i}"} for i in range(5)]
MIXED = [
    json.dumps(GOOD[0]),
    json.dumps(GOOD[1]),
    "{not json",  # line 3
    "",  # blank lines are skipped
    json.dumps(GOOD[2]),
    "[1, 2]",  # line 6: not an object
    json.dumps(GOOD[3]),
]


async def test_jsonl_reads_file(tmp_path: Path) -> None:
    records = [{"n": i, "s": "x" * (i % 50)} for i in range(20_000)]
    path = write_jsonl(tmp_path / "in.jsonl", records)
    rows, stats = await collect(JsonLinesSource("src", path))
    assert rows == records
    assert stats["src"].rows_errored == 0


async def test_jsonl_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}', encoding="utf-8")
    rows, _ = await collect(JsonLinesSource("src", path))
    assert rows == [{"a": 1}, {"a": 2}]


async def test_jsonl_malformed_skip(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", MIXED)
    source = JsonLinesSource("src", path, on_error="skip")
    rows, stats = await collect(source)
    assert rows == GOOD[:4]
    assert stats["src"].rows_errored == 2
    assert [d.reason.split(":")[0] for d in source.dead_letters] == ["line 3", "line 6"]


async def test_jsonl_malformed_dead_letter(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", MIXED)
    source = JsonLinesSource("src", path, on_error="dead-letter", dead_letter_output=1)
    graph = Graph()
    graph.add(source)
    sink = graph.add(CollectSink("sink"), inputs=[source])
    dead = DeadLetterSink("dead-letter", tmp_path / "dead.jsonl")
    graph.add(dead, inputs=[source])
    stats = await run_supervised(graph)
    assert isinstance(sink, CollectSink)
    assert sink.rows == GOOD[:4]
    assert stats["src"].rows_errored == 2
    letters = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert [d["reason"][:7] for d in letters] == ["line 3:", "line 6:"]
    assert letters[0]["record"] == "{not json"
    assert "Expecting" in letters[0]["reason"]
    assert letters[1]["reason"] == "line 6: expected a JSON object, got list"
    assert letters[0]["stage"] == "src"


async def test_jsonl_malformed_fail_names_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", MIXED)
    with pytest.raises(ActorFailed) as info:
        await collect(JsonLinesSource("src", path, on_error="fail"))
    assert info.value.actor == "src"
    assert isinstance(info.value.error, BadRecord)
    assert "line 3: Expecting" in str(info.value)


async def test_jsonl_line_numbers_across_chunks(tmp_path: Path) -> None:
    lines = [json.dumps({"n": i, "pad": "p" * 200}) for i in range(3000)]
    lines[2500] = "oops"
    path = write_lines(tmp_path / "in.jsonl", lines)
    source = JsonLinesSource("src", path, sizer=BatchSizer.fixed(256))
    rows, _ = await collect(source)
    assert len(rows) == 2999
    assert [d.reason.split(":")[0] for d in source.dead_letters] == ["line 2501"]


def test_jsonl_bad_policy() -> None:
    with pytest.raises(ValueError, match="on_error must be 'skip', 'dead-letter' or 'fail'"):
        JsonLinesSource("src", "x.jsonl", on_error="ignore")  # type: ignore[arg-type]


async def test_jsonl_from_a_pipe() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "wb") as writer:
        writer.write(b'{"a": 1}\n{"a": 2}\nbad\n{"a": 3}\n')
        writer.close()
        source = JsonLinesSource("src", reader)
        rows, stats = await collect(source)
    assert rows == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert stats["src"].rows_errored == 1


async def test_jsonl_from_stdin_subprocess() -> None:
    code = (
        "import trio, json, actors\n"
        "async def main():\n"
        "    run = await actors.run_sql('SELECT a * 10 AS b FROM t',"
        " actors.JsonLinesSource('source', '-'))\n"
        "    print(json.dumps(run.rows), run.stats['source'].rows_errored)\n"
        "trio.run(main)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = await trio.run_process(
        [sys.executable, "-c", code],
        stdin=b'{"a": 1}\n{"a": 2}\n{broken\n',
        capture_stdout=True,
        cwd=str(ROOT),
        env=env,
    )
    rows, errored = result.stdout.decode().rsplit(" ", 1)
    assert json.loads(rows) == [{"b": 10}, {"b": 20}]
    assert int(errored) == 1


# ------------------------------------------------------------------------- CSV


def test_csv_value_conversion() -> None:
    values = ["", "7", "-3", "1.5", "1e3", "inf", "nan", "abc", "007", "+2", "-", "."]
    assert [convert_csv_value(v) for v in values] == [
        None,
        7,
        -3,
        1.5,
        1000.0,
        "inf",
        "nan",
        "abc",
        7,
        2,
        "-",
        ".",
    ]


async def test_csv_source_types_values(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "in.csv",
        ["symbol,price,qty,note", "A,10.5,3,", 'B,20,4,"hello, world"', "C,x,5,n"],
    )
    rows, _ = await collect(CsvSource("src", path))
    assert rows == [
        {"symbol": "A", "price": 10.5, "qty": 3, "note": None},
        {"symbol": "B", "price": 20, "qty": 4, "note": "hello, world"},
        {"symbol": "C", "price": "x", "qty": 5, "note": "n"},
    ]


async def test_csv_bad_rows_by_policy(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.csv", ["a,b", "1,2", "3", "4,5,6", "7,8"])
    source = CsvSource("src", path)
    rows, stats = await collect(source)
    assert rows == [{"a": 1, "b": 2}, {"a": 7, "b": 8}]
    assert stats["src"].rows_errored == 2
    assert [d.reason for d in source.dead_letters] == [
        "line 3: expected 2 fields, got 1",
        "line 4: expected 2 fields, got 3",
    ]
    with pytest.raises(ActorFailed, match="line 3: expected 2 fields, got 1"):
        await collect(CsvSource("src", path, on_error="fail"))


async def test_csv_many_rows(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.csv", ["i,sq", *(f"{i},{i * i}" for i in range(5000))])
    rows, _ = await collect(CsvSource("src", path, sizer=BatchSizer.fixed(700)))
    assert rows == [{"i": i, "sq": i * i} for i in range(5000)]


# ---------------------------------------------------------------------- trades


async def test_trade_source_is_reproducible() -> None:
    first, _ = await collect(TradeSource("src", records=2000, seed=7, symbols=5))
    second, _ = await collect(TradeSource("src", records=2000, seed=7, symbols=5))
    assert first == second
    assert len(first) == 2000
    assert set(first[0]) == {"symbol", "price", "qty", "side", "ts"}
    assert len({r["symbol"] for r in first}) == 5
    ts = [r["ts"] for r in first]
    assert ts == sorted(ts)


async def test_trade_source_disorder_is_bounded() -> None:
    rows, _ = await collect(TradeSource("src", records=3000, disorder_ms=20))
    ts: list[Any] = [r["ts"] for r in rows]
    assert ts != sorted(ts)
    high = ts[0]
    for t in ts:
        assert t >= high - 20
        high = max(high, t)


async def test_trade_source_rate(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    rows, _ = await collect(
        TradeSource("src", records=5000, rate=1000, sizer=BatchSizer.fixed(500))
    )
    assert len(rows) == 5000
    assert trio.current_time() - start == pytest.approx(5.0)


def test_trade_source_bad_rate() -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        TradeSource("src", records=1, rate=0)


@attrs.define(eq=False)
class FailsOnce(Actor):
    """Forwards batches; raises once, at the batch holding record ``x == at``."""

    at: int = 0
    failed: bool = False

    def on_batch(self, batch: Batch) -> None:
        if not self.failed and any(r["n"] == self.at for r in batch.records):
            self.failed = True
            raise RuntimeError("flaky")
        self.emit_batch(batch)


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ONE, Strategy.ONE_FOR_ALL])
async def test_jsonl_source_restart_loses_and_repeats_nothing(
    tmp_path: Path, strategy: Strategy
) -> None:
    records = [{"n": i, "pad": "p" * 100} for i in range(20_000)]
    path = write_jsonl(tmp_path / "in.jsonl", records)
    graph = Graph()
    source = graph.add(JsonLinesSource("src", path, sizer=BatchSizer.fixed(500)))
    flaky = graph.add(FailsOnce("flaky", 7_777), inputs=[source], capacity=2)
    sink = CollectSink("sink")
    graph.add(sink, inputs=[flaky], capacity=2)
    stats = await run_supervised(graph, restart=RestartPolicy(strategy, max_restarts=1))
    assert [r["n"] for r in sink.rows] == list(range(20_000))
    assert stats.restarts == 1
    if strategy is Strategy.ONE_FOR_ALL:
        assert stats["src"].restarts == 1


async def test_jsonl_fail_policy_fails_again_after_restart(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", MIXED)
    with pytest.raises(RestartIntensityExceeded) as info:
        await collect(JsonLinesSource("src", path, on_error="fail"), restart=RestartPolicy())
    assert "line 3" in str(info.value)


# ------------------------------------------------------- hostile input (issue 8)

DEEP = "[" * 5000 + "]" * 5000  # valid JSON nested far past the recursion limit


@pytest.mark.parametrize("policy", ["skip", "dead-letter", "fail"])
async def test_jsonl_deeply_nested_line_is_a_bad_record(tmp_path: Path, policy: str) -> None:
    deep_object = '{"a": ' + DEEP + "}"
    path = write_lines(tmp_path / "in.jsonl", ['{"n": 1}', deep_object, '{"n": 2}'])
    source = JsonLinesSource("src", path, on_error=policy)  # type: ignore[arg-type]
    if policy == "fail":
        with pytest.raises(ActorFailed, match=r"line 2: .*nest"):
            await collect(source)
        return
    rows, stats = await collect(source)
    assert rows == [{"n": 1}, {"n": 2}]
    assert stats["src"].rows_errored == 1
    assert [d.reason.split(":")[0] for d in source.dead_letters] == ["line 2"]


async def test_jsonl_one_huge_line_is_read_in_linear_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reader must not re-join what it already holds for every new chunk of a
    # long line (that was quadratic: 200 MB took 48 s): count the bytes it copies.
    import partita.actors._files as files

    copied: list[int] = []
    join = files._join

    def counting_join(pieces: list[bytes]) -> bytes:
        data = join(pieces)
        copied.append(len(data))
        return data

    monkeypatch.setattr(files, "_join", counting_join)
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"n": 1}\n{"s": "' + b"x" * (8 << 20) + b'"}\n{"n": 2}\n')
    source = JsonLinesSource("src", path, sizer=BatchSizer.fixed(16))  # 64 KiB chunks
    rows, _ = await collect(source)
    assert [r.get("n") for r in rows] == [1, None, 2]
    assert len(rows[1]["s"]) == 8 << 20
    assert sum(copied) <= 2 * path.stat().st_size


async def test_csv_utf8_bom_is_not_part_of_the_first_header(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes("a,b\n1,2\n".encode("utf-8-sig"))
    rows, stats = await collect(CsvSource("src", path))
    assert rows == [{"a": 1, "b": 2}]
    assert stats["src"].rows_errored == 0


@pytest.mark.parametrize("policy", ["skip", "dead-letter", "fail"])
async def test_csv_invalid_utf8_is_a_bad_record(tmp_path: Path, policy: str) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"a,b\n1,2\n3,\xff\xfe\n5,6\n")
    source = CsvSource("src", path, on_error=policy)  # type: ignore[arg-type]
    if policy == "fail":
        with pytest.raises(ActorFailed, match="line 3: invalid UTF-8"):
            await collect(source)
        return
    rows, stats = await collect(source)
    assert rows == [{"a": 1, "b": 2}, {"a": 5, "b": 6}]
    assert stats["src"].rows_errored == 1
    assert [d.reason for d in source.dead_letters] == ["line 3: invalid UTF-8"]


async def test_file_sources_count_bad_lines_by_reason(tmp_path: Path) -> None:
    deep = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    lines = [*MIXED, deep, "{also not json", "7"]
    path = write_lines(tmp_path / "in.jsonl", lines)
    _, stats = await collect(JsonLinesSource("src", path))
    assert dict(stats["src"].errors_by_reason) == {
        "invalid JSON": 2,
        "not a JSON object": 2,
        "nesting too deep": 1,
    }
    csv_path = write_lines(tmp_path / "in.csv", ["a,b", "1,2", "3", "4,5,6", "7,8"])
    _, stats = await collect(CsvSource("src", csv_path))
    assert stats["src"].errors_by_reason == (("CSV: wrong number of fields", 2),)
