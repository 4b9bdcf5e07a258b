"""Exact recovery of SQL jobs: crash anywhere, run the same job again, get the same output.

In process (Hypothesis picks the streams, out of order and late records
included, the query's shape, the partitions and the crash points), and for
real: ``partita run --checkpoint`` killed with SIGKILL at random moments over a
1,000,000-line file, then run again, against an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import event, given, settings
from hypothesis import strategies as st

from partita.actors import JsonLinesSink, JsonLinesSource, run_sql
from partita.runtime import (
    ActorFailed,
    Batch,
    BatchSizer,
    CheckpointError,
    MemoryCheckpointStore,
    Record,
)
from partita.sql import compile_query

ROOT = Path(__file__).resolve().parents[2]

QUERIES = {
    "tumble": "SELECT k, window_start, COUNT(*) AS n, SUM(v) AS s FROM t "
    "GROUP BY k, TUMBLE(ts, INTERVAL '10' MILLISECOND)",
    "hop": "SELECT k, window_start, COUNT(*) AS n FROM t "
    "GROUP BY k, HOP(ts, INTERVAL '5' MILLISECOND, INTERVAL '15' MILLISECOND)",
    "cumulate": "SELECT k, window_start, window_end, COUNT(*) AS n, SUM(v) AS s FROM t "
    "GROUP BY k, CUMULATE(ts, INTERVAL '4' MILLISECOND, INTERVAL '12' MILLISECOND)",
    "session": "SELECT k, window_start, window_end, COUNT(*) AS n, MAX(v) AS hi FROM t "
    "GROUP BY k, SESSION(ts, INTERVAL '7' MILLISECOND)",
    "changes": "SELECT k, COUNT(DISTINCT v) AS d, SUM(v) AS s FROM t GROUP BY k EMIT CHANGES",
}


class Crash(Exception):
    """The injected crash."""


@attrs.define(eq=False)
class CrashingSink(JsonLinesSink):
    """Writes half of its ``crash_at``-th batch, then dies (a crash during a sink write)."""

    crash_at: int | None = None
    batches: int = 0

    async def consume(self, batch: Batch) -> None:
        self.batches += 1
        if self.crash_at is not None and self.batches == self.crash_at:
            half = Batch(batch.records[: len(batch.records) // 2])
            await super().consume(half)
            raise Crash(f"crash in batch {self.batches}")
        await super().consume(batch)


@attrs.define(eq=False)
class TickingSource(JsonLinesSource):
    """Reads 97 bytes at a time (lines split across reads, a read position after
    every few records) and lets a virtual millisecond pass after each batch, so
    checkpoints (every 1 ms) fall anywhere in the stream."""

    async def pump(self, send: trio.MemorySendChannel[Any]) -> None:
        file = await self._input("rb")
        while chunk := await trio.to_thread.run_sync(file.read, 97):
            await self.put(send, chunk)
        self._close()

    def drain_limit(self) -> int:
        return 1

    async def send_with_dead_letters(self, records: Any, dead: Any, offsets: Any = None) -> None:
        await super().send_with_dead_letters(records, dead, offsets)
        await trio.sleep(0.001)


records_strategy = st.lists(
    st.tuples(st.integers(0, 4), st.integers(-3, 9), st.integers(-12, 3)),
    min_size=1,
    max_size=400,
)


def to_records(raw: list[tuple[int, int, int]]) -> list[Record]:
    """Keys, values and event times that mostly advance, some out of order, some late."""
    return [{"k": k, "v": v, "ts": max(0, ts + jitter)} for ts, (k, v, jitter) in enumerate(raw, 1)]


async def run_job(
    query: str,
    path: Path,
    out: Path,
    *,
    partitions: int,
    crash_at: int | None,
    store: MemoryCheckpointStore | None,
) -> Any:
    return await run_sql(
        compile_query(query, allowed_lateness=2, late="dead-letter"),
        TickingSource("source", path, sizer=BatchSizer.fixed(7)),
        CrashingSink("sink", out, crash_at=crash_at),
        partitions=partitions,
        checkpoint=store,
        checkpoint_interval=None if store is None else "1ms",
    )


def rows_of(path: Path) -> list[str]:
    return sorted(path.read_text().splitlines())


@settings(deadline=None)
@given(
    raw=records_strategy,
    shape=st.sampled_from(sorted(QUERIES)),
    partitions=st.sampled_from((1, 3)),
    crashes=st.lists(st.integers(1, 8), min_size=1, max_size=3),
)
def test_a_crashed_job_resumed_gives_the_uninterrupted_output(
    tmp_path_factory: pytest.TempPathFactory,
    raw: list[tuple[int, int, int]],
    shape: str,
    partitions: int,
    crashes: list[int],
) -> None:
    folder = tmp_path_factory.mktemp("job")
    path = folder / "in.jsonl"
    records = to_records(raw)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    query = QUERIES[shape]
    expected, got = folder / "expected.jsonl", folder / "got.jsonl"

    history: list[tuple[int, int | None]] = []  # (crash point, checkpoint in force)

    async def main() -> tuple[Any, Any]:
        reference = await run_job(
            query, path, expected, partitions=partitions, crash_at=None, store=None
        )
        store = MemoryCheckpointStore()
        for crash_at in crashes:
            try:
                await run_job(
                    query, path, got, partitions=partitions, crash_at=crash_at, store=store
                )
            except ActorFailed as failed:
                assert isinstance(failed.error, Crash)
                latest = await store.latest()
                history.append((crash_at, None if latest is None else latest.id))
                store = store.crashed()  # what the process leaves behind
            else:
                break
        else:
            resumed = await run_job(
                query, path, got, partitions=partitions, crash_at=None, store=store
            )
            return reference, resumed
        return reference, None

    reference, resumed = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert rows_of(got) == rows_of(expected), history
    if resumed is not None:
        ref, res = reference.stats, resumed.stats
        event("resumed from a checkpoint" if res.resumed_from is not None else "started afresh")
        # every input record counted once across the runs: emitted, late or errored
        assert res["source"].rows_in == ref["source"].rows_in == len(records)
        assert res.rows_late == ref.rows_late
        assert sorted(map(repr, resumed.dead_letters)) == sorted(map(repr, reference.dead_letters))


# ------------------------------------------------------------------- for real
WINDOWED = (
    "SELECT k, window_start, COUNT(*) AS n, SUM(v) AS s FROM t "
    "GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"
)


def write_big(path: Path, n: int) -> None:
    rng = random.Random(1)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            record = {"k": f"s{rng.randrange(50)}", "v": rng.randrange(1000), "ts": i}
            record["ts"] += rng.randrange(100)  # out of order, some late
            f.write(json.dumps(record) + "\n")


def partita_run(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "partita", "run", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.mark.slow
def test_sigkill_at_random_moments_then_the_same_command(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    write_big(big, 1_000_000)
    expected, got = tmp_path / "expected.jsonl", tmp_path / "out.jsonl"
    started = time.monotonic()
    reference = partita_run("--sql", WINDOWED, "--input", str(big), "--output", str(expected))
    assert reference.wait(timeout=300) == 0
    # kill moments scale with this machine's speed (start-up included): a fixed 1-1.8 s
    # killed every run before its first checkpoint on a loaded machine
    whole = time.monotonic() - started
    command = ("--sql", WINDOWED, "--input", str(big), "--output", str(got))
    command += ("--checkpoint", str(tmp_path / "ck"), "--checkpoint-interval", "100ms")
    rng = random.Random(0)
    kills = resumed = 0
    for _ in range(8):
        proc = partita_run(*command)
        assert proc.stderr is not None
        # SIGKILL at a random moment, up to six times; then let it finish.  Once two
        # kills came before any checkpoint (a loaded machine: the child's start-up is
        # slower than the reference's), the next kills come later in the run
        lo, hi = (0.25, 0.5) if resumed or kills < 2 else (0.55, 0.9)
        try:
            code = proc.wait(timeout=rng.uniform(lo, hi) * whole if kills < 6 else 300)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        err = proc.stderr.read()
        resumed += b"resuming from checkpoint" in err
        if code == 0:
            break
        assert code == -signal.SIGKILL, err
        kills += 1
    else:
        pytest.fail("the job never finished")
    assert kills >= 2
    assert resumed >= 1  # some kill came after a checkpoint (most do)
    assert got.read_bytes() == expected.read_bytes()


async def test_resuming_with_another_partition_count_is_refused(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "in.jsonl"
    records = to_records([(i % 5, i, 0) for i in range(300)])
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    store = MemoryCheckpointStore()
    out = tmp_path / "out.jsonl"
    query = QUERIES["tumble"]
    with pytest.raises(ActorFailed):
        await run_job(query, path, out, partitions=2, crash_at=3, store=store)
    assert await store.latest() is not None
    with pytest.raises(CheckpointError, match="it has 'partitions=2', this one 'partitions=3'"):
        await run_job(query, path, out, partitions=3, crash_at=None, store=store.crashed())


async def test_resuming_with_another_joined_table_is_refused(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A table joined to the stream is part of the job: resuming after its rows changed
    would mix results of the two tables (the fingerprint held only the query's text)."""
    path = tmp_path / "in.jsonl"
    records = to_records([(i % 5, i, 0) for i in range(300)])
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    query = (
        "SELECT t.k, window_start, COUNT(*) AS n, SUM(t.v * r.rate) AS s FROM t "
        "JOIN rates r ON t.k = r.k GROUP BY t.k, TUMBLE(t.ts, INTERVAL '10' MILLISECOND)"
    )
    rates = [{"k": k, "rate": k + 1} for k in range(5)]
    out = tmp_path / "out.jsonl"

    async def run(table: list[Record], store: MemoryCheckpointStore, crash_at: int | None) -> Any:
        return await run_sql(
            compile_query(query, tables={"rates": table}),
            TickingSource("source", path, sizer=BatchSizer.fixed(7)),
            CrashingSink("sink", out, crash_at=crash_at),
            partitions=2,
            checkpoint=store,
            checkpoint_interval="1ms",
        )

    store = MemoryCheckpointStore()
    with pytest.raises(ActorFailed):
        await run(rates, store, crash_at=3)
    assert await store.latest() is not None
    changed = [*rates[:-1], {"k": 4, "rate": 50}]
    with pytest.raises(CheckpointError, match="table rates: 5 rows sha256:"):
        await run(changed, store.crashed(), crash_at=None)
    reordered = [*rates[1:], rates[0]]  # order counts: it orders a key's matches
    with pytest.raises(CheckpointError, match="table rates"):
        await run(reordered, store.crashed(), crash_at=None)
    resumed = await run([dict(r) for r in rates], store.crashed(), crash_at=None)
    assert resumed.stats.resumed_from is not None  # the same rows: the same job
