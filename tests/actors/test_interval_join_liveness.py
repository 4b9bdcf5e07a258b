"""Interval joins that must not hang and must not lose rows (issue 12): one stream
empty or ending long before the other, both idle, one far ahead with checkpoints on,
and a cancelled run.  Time is virtual (``autojump_clock``); a hang fails
``trio.fail_after``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio
import trio.testing

from partita.actors import open_sql, run_sql
from partita.runtime import MemoryCheckpointStore

LEFT = (
    "SELECT o.id, p.paid FROM orders o LEFT JOIN payments p ON o.id = p.oid "
    "AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '1' SECOND"
)
FULL = LEFT.replace("LEFT JOIN", "FULL JOIN").replace("o.id, p.paid", "o.id, p.oid, p.paid")


async def test_one_stream_empty(autojump_clock: trio.testing.MockClock) -> None:
    orders = [{"id": i, "ts": i * 100} for i in range(50)]
    payments = [{"oid": i, "paid": i, "ts": i * 100 + 50} for i in range(0, 50, 5)]
    with trio.fail_after(60):
        run = await run_sql(LEFT, sources={"orders": orders, "payments": []}, partitions=3)
        assert sorted(r["id"] for r in run.rows) == list(range(50))
        assert all(r["paid"] is None for r in run.rows)
        run = await run_sql(FULL, sources={"orders": [], "payments": payments}, partitions=3)
        assert sorted(r["oid"] for r in run.rows) == list(range(0, 50, 5))
        assert all(r["id"] is None for r in run.rows)
        run = await run_sql(FULL, sources={"orders": [], "payments": []}, partitions=3)
        assert run.rows == []


async def test_a_stream_ending_early_leaves_the_other_to_evict(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The orders end after ten records; their outer rows come as the payments' own
    watermark passes them, long before the payments end, and the join holds only the
    payments of the last second meanwhile."""
    done_orders = trio.Event()
    seen: list[dict[str, Any]] = []

    async def payments() -> AsyncIterator[dict[str, Any]]:
        await done_orders.wait()
        for i in range(20_000):
            yield {"oid": -1, "paid": i, "ts": i * 10}
            if i % 100 == 0:
                await trio.sleep(0.001)
        raise AssertionError("the outer rows did not come before the payments ended")

    async def orders() -> AsyncIterator[dict[str, Any]]:
        for i in range(10):
            yield {"id": i, "ts": i * 10}
        done_orders.set()

    with trio.fail_after(600):
        async with open_sql(
            LEFT, sources={"orders": orders(), "payments": payments()}, partitions=2
        ) as stream:
            async for row in stream:
                seen.append(row)
                if len(seen) == 10:
                    break
    assert sorted(r["id"] for r in seen) == list(range(10))
    assert all(r["paid"] is None for r in seen)


async def test_both_streams_idle_with_an_idle_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Neither stream ends nor sends; the idle timeout moves both watermarks on, so the
    unmatched rows of both sides come out."""

    async def stream(rows: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        for row in rows:
            yield row
        await trio.sleep_forever()

    sources = {
        "orders": stream([{"id": 1, "ts": 0}, {"id": 2, "ts": 500}]),
        "payments": stream([{"oid": 3, "paid": 8, "ts": 0}, {"oid": 2, "paid": 7, "ts": 900}]),
    }
    rows = []
    with trio.fail_after(120):
        async with open_sql(FULL, sources=sources, idle_timeout="1s", partitions=2) as out:
            async for row in out:
                rows.append(row)
                if len(rows) == 3:
                    break
    assert sorted(rows, key=repr) == sorted(
        [
            {"id": 1, "oid": None, "paid": None},
            {"id": 2, "oid": 2, "paid": 7},
            {"id": None, "oid": 3, "paid": 8},
        ],
        key=repr,
    )


async def test_a_stream_far_ahead_with_checkpoints_on(tmp_path: Path) -> None:
    """The payments cover fifty times the event time per record: their router waits
    for the orders (alignment) while barriers flow every millisecond; nothing hangs
    and nothing is lost.  (On the real clock: the files are read in threads, and a
    virtual clock would jump a checkpoint interval at each read.)"""
    n = 2_000
    orders = tmp_path / "orders.jsonl"
    orders.write_text("".join(json.dumps({"id": i, "ts": i}) + "\n" for i in range(n)))
    payments = tmp_path / "payments.jsonl"
    payments.write_text(
        "".join(json.dumps({"oid": i * 50, "paid": 1, "ts": i * 50}) + "\n" for i in range(n))
    )
    store = MemoryCheckpointStore()
    with trio.fail_after(120):
        run = await run_sql(
            LEFT,
            sources={"orders": orders, "payments": payments},
            batch_size=50,
            partitions=3,
            checkpoint=store,
            checkpoint_interval="1ms",
        )
    assert len(run.rows) == n
    assert sum(r["paid"] is not None for r in run.rows) == n // 50
    assert await store.latest() is not None


async def test_a_cancelled_join_cleans_up(autojump_clock: trio.testing.MockClock) -> None:
    """Cancelled while the stream ahead waits for the other (alignment) and the other
    waits for its source: the run ends (its nursery holds every task of the run)."""
    more = trio.Event()

    async def orders() -> AsyncIterator[dict[str, Any]]:
        for i in range(100_000):
            yield {"id": i, "ts": i * 1000}

    async def payments() -> AsyncIterator[dict[str, Any]]:
        yield {"oid": 0, "paid": 1, "ts": 0}
        await more.wait()  # never set

    with trio.fail_after(60):
        with trio.move_on_after(5) as scope:
            await run_sql(LEFT, sources={"orders": orders(), "payments": payments()}, partitions=2)
    assert scope.cancelled_caught  # run_sql returned: every task of the run has ended
