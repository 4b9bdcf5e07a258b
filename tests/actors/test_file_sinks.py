"""CSV and Parquet file sinks: layout, bad rows by policy, bounded row groups, checkpoints."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import attrs
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import trio
import trio.testing

from partita.actors import CsvSink, IterableSource, ParquetSink
from partita.runtime import (
    ActorFailed,
    BadRecord,
    Batch,
    BatchSizer,
    Checkpointing,
    Graph,
    MemoryCheckpointStore,
    Sink,
    open_supervisor,
    run_graph,
)
from tests.actors.test_checkpoints import CrashOnce


@attrs.define(eq=False)
class TickingSource(IterableSource):
    """Lets a virtual millisecond pass after each batch it sent, so checkpoints (every
    1 ms) fall between batches."""

    async def send_records(self, records: list[dict[str, object]]) -> None:
        await super().send_records(records)
        await trio.sleep(0.001)


def graph_of(
    records: list[dict[str, object]],
    sink: Sink,
    crash_at: int | None = None,
    *,
    ticking: bool = False,
) -> Graph:
    graph = Graph()
    kind = TickingSource if ticking else IterableSource
    src = graph.add(kind("source", records, sizer=BatchSizer.fixed(100)))
    crash = graph.add(CrashOnce("crash", at=crash_at), inputs=[src])
    graph.add(sink, inputs=[crash])
    return graph


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


# ------------------------------------------------------------------------------ CSV


async def test_csv_header_from_the_first_row_and_values_as_text(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    rows = [
        {"k": "a,b", "n": 1, "f": 1.5, "ok": True, "tags": ["x", 1], "none": None},
        {"k": 'say "hi"', "n": 2, "f": -0.0, "ok": False, "tags": {"a": 1}, "none": None},
        {"k": "line\nbreak", "n": 3, "f": 1e20, "ok": True, "tags": [], "none": "é"},
    ]
    sink = CsvSink("sink", out)
    await run_graph(graph_of(rows, sink))
    assert read_csv(out) == [
        ["k", "n", "f", "ok", "tags", "none"],
        ["a,b", "1", "1.5", "true", '["x",1]', ""],
        ['say "hi"', "2", "-0.0", "false", '{"a":1}', ""],
        ["line\nbreak", "3", "1e+20", "true", "[]", "é"],
    ]
    assert sink.rows_written == 3
    assert sink.header == ("k", "n", "f", "ok", "tags", "none")


async def test_csv_given_columns_order_the_file_and_an_empty_output_has_its_header(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.csv"
    await run_graph(graph_of([{"a": 1, "b": 2}], CsvSink("sink", out, columns=["b", "a"])))
    assert read_csv(out) == [["b", "a"], ["2", "1"]]
    empty = tmp_path / "empty.csv"
    await run_graph(graph_of([], CsvSink("sink", empty, columns=("x", "y"))))
    assert empty.read_bytes() == b"x,y\r\n"
    nothing = tmp_path / "nothing.csv"
    await run_graph(graph_of([], CsvSink("sink", nothing)))
    assert nothing.read_bytes() == b""


async def test_csv_a_row_with_other_columns_fails_by_default_naming_its_offset(
    tmp_path: Path,
) -> None:
    rows = [{"a": i, "b": i} for i in range(150)]
    rows[120] = {"a": 1, "c": 2}
    with pytest.raises(ActorFailed) as info:
        await run_graph(graph_of(rows, CsvSink("sink", tmp_path / "out.csv")))
    cause = info.value.__cause__
    assert isinstance(cause, BadRecord)
    assert str(cause) == (
        "sink: bad record at record offset 120: the row's columns differ from the CSV "
        "header (missing 'b'; not in the header 'c')"
    )


async def test_csv_skip_drops_and_counts_rows_with_other_columns(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    rows = [{"a": 1}, {"a": 2, "b": 3}, {}, {"a": 4}]
    sink = CsvSink("sink", out, on_error="skip")
    stats = await run_graph(graph_of(rows, sink))
    assert read_csv(out) == [["a"], ["1"], ["4"]]
    assert (sink.rows_written, stats["sink"].rows_errored) == (2, 2)
    assert stats["sink"].errors_by_reason == (("columns differ from the CSV header", 2),)


async def test_csv_a_failed_batch_retried_writes_the_header_once(tmp_path: Path) -> None:
    # the header belongs to the first write that succeeded, not the first attempt
    out = tmp_path / "out.csv"
    sink = CsvSink("sink", out, on_error="fail")
    with pytest.raises(BadRecord):
        await sink.consume(Batch([{"a": 1}, {"b": 2}]))
    await sink.consume(Batch([{"a": 1}]))
    await sink.flush()
    assert read_csv(out) == [["a"], ["1"]]


def test_csv_sink_options_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^on_error must be 'fail' or 'skip', got 'dead'$"):
        CsvSink("sink", "x.csv", on_error="dead")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^columns must be a sequence of column names"):
        CsvSink("sink", "x.csv", columns="ab")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^columns must be distinct, got \['a', 'a'\]$"):
        CsvSink("sink", "x.csv", columns=["a", "a"])
    assert CsvSink("sink", "-").delivery == "at-least-once"
    assert CsvSink("sink", "x.csv").delivery == "exactly-once"


async def crash_then_resume(make_sink: Callable[[Path], Sink], tmp_path: Path) -> tuple[Path, Path]:
    rows = [{"i": i, "s": f"row {i}", "x": i * 0.5} for i in range(5_000)]
    expected, got = tmp_path / "expected", tmp_path / "got"
    await run_graph(graph_of(rows, make_sink(expected)))
    store = MemoryCheckpointStore()
    with pytest.raises(ActorFailed, match="crash"):
        async with open_supervisor(
            graph_of(rows, make_sink(got), crash_at=3_700, ticking=True),
            checkpoints=Checkpointing(store=store, interval="1ms"),
        ):
            pass
    assert await store.latest() is not None
    async with open_supervisor(
        graph_of(rows, make_sink(got), ticking=True),
        checkpoints=Checkpointing(store=store.crashed(), interval="1ms"),
    ) as sup:
        assert sup.stats().resumed_from is not None
    return expected, got


async def test_csv_resumes_exactly_once_from_a_checkpoint(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    expected, got = await crash_then_resume(lambda p: CsvSink("sink", p), tmp_path)
    assert got.read_bytes() == expected.read_bytes()
    assert read_csv(got)[0] == ["i", "s", "x"]
    assert len(read_csv(got)) == 5_001


# -------------------------------------------------------------------------- Parquet


async def test_parquet_rows_in_row_groups_of_the_given_size(tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    rows = [{"i": i, "s": str(i), "f": i / 4, "b": i % 2 == 0} for i in range(1_050)]
    sink = ParquetSink("sink", out, row_group_size=200)
    await run_graph(graph_of(rows, sink))
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [200] * 5 + [50]
    table = pq.read_table(out)
    assert table.to_pylist() == rows
    assert table.schema.names == ["i", "s", "f", "b"]
    assert (sink.rows_written, sink.row_groups) == (1_050, 6)


async def test_parquet_holds_at_most_a_row_group(tmp_path: Path) -> None:
    sink = ParquetSink("sink", tmp_path / "out.parquet", row_group_size=64)
    held = []
    for start in range(0, 1_000, 100):
        await sink.consume(Batch([{"i": i} for i in range(start, start + 100)]))
        held.append(len(sink._buffer))
    await sink.flush()
    assert max(held) < 64
    assert pq.read_table(tmp_path / "out.parquet").column("i").to_pylist() == list(range(1_000))


async def test_parquet_schema_given_or_inferred_with_null_columns_as_strings(
    tmp_path: Path,
) -> None:
    inferred = tmp_path / "inferred.parquet"
    rows: list[dict[str, object]] = [{"a": 1, "n": None}, {"a": 2, "n": None}]
    await run_graph(graph_of(rows, ParquetSink("sink", inferred, row_group_size=2)))
    schema = pq.read_schema(inferred)
    assert (schema.field("a").type, schema.field("n").type) == (pa.int64(), pa.string())
    given = tmp_path / "given.parquet"
    schema = pa.schema([("a", pa.int32()), ("n", pa.float64())])
    await run_graph(
        graph_of([*rows, {"a": 3, "n": 0.5}], ParquetSink("sink", given, schema=schema))
    )
    table = pq.read_table(given)
    assert table.schema == schema
    assert table.to_pylist()[-1] == {"a": 3, "n": 0.5}


async def test_parquet_rows_that_do_not_fit_fail_or_are_skipped(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [{"a": 1}, {"a": "text"}, {"b": 2}, {"a": 4}]
    with pytest.raises(ActorFailed) as info:
        await run_graph(graph_of(rows, ParquetSink("sink", tmp_path / "f.parquet")))
    assert str(info.value.__cause__) == (
        "sink: bad record: the row's columns differ from the Parquet schema "
        "(missing 'a'; not in the schema 'b')"
    )
    with pytest.raises(ActorFailed) as info:
        await run_graph(graph_of(rows[:2], ParquetSink("sink", tmp_path / "f.parquet")))
    assert str(info.value.__cause__) == (
        "sink: bad record: a value does not fit the Parquet schema: "
        "Could not convert 'text' with type str: tried to convert to int64"
    )
    out = tmp_path / "skip.parquet"
    sink = ParquetSink("sink", out, on_error="skip", row_group_size=2)
    stats = await run_graph(graph_of(rows, sink))
    assert pq.read_table(out).to_pylist() == [{"a": 1}, {"a": 4}]
    assert stats["sink"].rows_errored == 2


async def test_parquet_an_empty_output_is_a_valid_file(tmp_path: Path) -> None:
    out = tmp_path / "empty.parquet"
    schema = pa.schema([("a", pa.int64())])
    await run_graph(graph_of([], ParquetSink("sink", out, schema=schema)))
    assert pq.read_table(out).num_rows == 0
    assert pq.read_schema(out) == schema


async def test_parquet_cannot_resume_and_says_so(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    rows = [{"i": i} for i in range(5_000)]
    sink = ParquetSink("sink", tmp_path / "out.parquet")
    with pytest.raises(ActorFailed) as info:
        async with open_supervisor(
            graph_of(rows, sink, ticking=True),
            checkpoints=Checkpointing(store=MemoryCheckpointStore(), interval="1ms"),
        ):
            pass
    assert "a ParquetSink cannot resume from a checkpoint" in str(info.value.__cause__)
    with pytest.raises(ValueError, match=r"^a Parquet file cannot go to standard output"):
        ParquetSink("sink", "-")


def test_importing_partita_does_not_import_pyarrow() -> None:
    import subprocess
    import sys

    code = "import sys, partita; print(json.dumps('pyarrow' in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) is False
