"""Exact recovery of an interval join and of a temporal join: crash anywhere, run the
same job again, get the output of the run that never crashed.

Both streams are read a few bytes at a time with a virtual millisecond after each
batch and a checkpoint every millisecond, so checkpoints fall anywhere in both
streams and in the join's state (records held on either side, matched or not); the
sink dies half-way through a write at random batches.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import event, given, settings
from hypothesis import strategies as st

from partita.actors import run_sql
from partita.runtime import ActorFailed, BatchSizer, MemoryCheckpointStore
from partita.sql import compile_query
from tests.actors.test_recovery import Crash, CrashingSink, TickingSource, rows_of

QUERIES = {
    "left": "SELECT o.id, o.ts, p.paid FROM orders o LEFT JOIN payments p ON o.k = p.k "
    "AND p.ts BETWEEN o.ts - 3 AND o.ts + 5",
    "full-windowless": "SELECT o.id, p.pid FROM orders o FULL JOIN payments p ON o.k = p.k "
    "AND p.ts BETWEEN o.ts AND o.ts + 4",
    "windowed": "SELECT o.k, window_start, COUNT(*) AS n, SUM(p.paid) AS paid FROM orders o "
    "JOIN payments p ON o.k = p.k AND p.ts BETWEEN o.ts - 2 AND o.ts + 6 "
    "GROUP BY o.k, TUMBLE(o.ts, INTERVAL '10' MILLISECOND)",
    # payments as a changelog: the latest payment of the key as of the order's time
    "temporal": "SELECT o.id, p.pid, p.paid FROM orders o LEFT JOIN payments "
    "FOR SYSTEM_TIME AS OF o.ts AS p ON o.k = p.k",
    "temporal-windowed": "SELECT o.k, window_start, COUNT(*) AS n, SUM(p.paid) AS paid "
    "FROM orders o JOIN payments FOR SYSTEM_TIME AS OF o.ts AS p ON o.k = p.k "
    "GROUP BY o.k, TUMBLE(o.ts, INTERVAL '10' MILLISECOND)",
}


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


async def _run(
    query: str, orders: Path, payments: Path, out: Path, *, crash_at: int | None, store: Any
) -> Any:
    return await run_sql(
        compile_query(query, allowed_lateness=3, late="dead-letter"),
        sources={
            "orders": TickingSource("source", orders, sizer=BatchSizer.fixed(5)),
            "payments": TickingSource("source-payments", payments, sizer=BatchSizer.fixed(4)),
        },
        sink=CrashingSink("sink", out, crash_at=crash_at),
        partitions=2,
        checkpoint=store,
        checkpoint_interval=None if store is None else "1ms",
    )


@pytest.mark.parametrize("shape", sorted(QUERIES))
@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 10_000), crashes=st.lists(st.integers(1, 10), min_size=1, max_size=3))
def test_a_crashed_join_resumed_gives_the_uninterrupted_output(
    tmp_path_factory: pytest.TempPathFactory, shape: str, seed: int, crashes: list[int]
) -> None:
    rng = random.Random(seed)
    folder = tmp_path_factory.mktemp("join")
    orders = _write(
        folder / "orders.jsonl",
        [{"id": i, "k": rng.randrange(4), "ts": i + rng.randrange(-4, 2)} for i in range(120)],
    )
    payments = _write(
        folder / "payments.jsonl",
        [
            {
                "pid": i,
                "k": rng.randrange(4),
                "paid": rng.randrange(50),
                "ts": i + rng.randrange(-4, 2),
            }
            for i in range(100)
        ],
    )
    query = QUERIES[shape]
    expected, got = folder / "expected.jsonl", folder / "got.jsonl"

    async def main() -> tuple[Any, Any]:
        reference = await _run(query, orders, payments, expected, crash_at=None, store=None)
        store = MemoryCheckpointStore()
        for crash_at in crashes:
            try:
                await _run(query, orders, payments, got, crash_at=crash_at, store=store)
            except ActorFailed as failed:
                assert isinstance(failed.error, Crash)
                store = store.crashed()
            else:
                return reference, None
        resumed = await _run(query, orders, payments, got, crash_at=None, store=store)
        return reference, resumed

    reference, resumed = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert rows_of(got) == rows_of(expected)
    if resumed is not None:
        event("resumed from a checkpoint" if resumed.stats.resumed_from is not None else "afresh")
        assert resumed.stats.rows_late == reference.stats.rows_late
        assert sorted(map(repr, resumed.dead_letters)) == sorted(map(repr, reference.dead_letters))


async def test_a_checkpoint_is_of_both_streams(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Resuming with another joined stream is another job: refused, naming it."""
    from partita.runtime import CheckpointError

    orders = _write(tmp_path / "orders.jsonl", [{"id": i, "k": 0, "ts": i} for i in range(50)])
    one = _write(
        tmp_path / "one.jsonl", [{"pid": i, "k": 0, "paid": 1, "ts": i} for i in range(50)]
    )
    other = _write(tmp_path / "other.jsonl", [{"pid": 0, "k": 0, "paid": 1, "ts": 0}])
    query = QUERIES["left"]
    for crash_at in range(2, 60):  # a crash after the first checkpoint (file reads are
        store = MemoryCheckpointStore()  # threads: how far one gets is not virtual time)
        with pytest.raises(ActorFailed):
            await _run(query, orders, one, tmp_path / "out.jsonl", crash_at=crash_at, store=store)
        if await store.latest() is not None:
            break
    assert await store.latest() is not None
    with pytest.raises(CheckpointError, match=r"other\.jsonl"):
        await _run(
            query, orders, other, tmp_path / "out.jsonl", crash_at=None, store=store.crashed()
        )
