"""``python -m benchmarks.interval_join``: an interval join's memory and speed.

Orders and their payments, generated lazily (never a list): order ``i`` at event
time ``2 i`` ms, three in five of them paid ``(i % 7)`` seconds later (so the payment
stream is out of order by up to 6 s: the allowed lateness), joined with::

    SELECT o.id, o.cur, p.amount FROM orders o LEFT JOIN payments p
      ON o.id = p.order_id AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '10' SECOND

into a sink that only counts rows.  The join's state is evicted by the watermark,
so peak RSS must not grow with the stream: run it at two sizes, each in a fresh
process, and compare (``--records`` is orders plus payments)::

    python -m benchmarks.interval_join --records 500000
    python -m benchmarks.interval_join --records 5000000

The floor is the plain-CPython loop doing the same join over the two streams merged
in event-time order (a dict of open orders, evicted as time passes), in the same
process; ``ratio`` is partita's records/s over the floor's.  One JSON line.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import trio

from ._rss import current_rss_mb, peak_rss_mb

__all__ = ["main"]

QUERY = (
    "SELECT o.id, o.cur, p.amount FROM orders o LEFT JOIN payments p "
    "ON o.id = p.order_id AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '10' SECOND"
)
_CURRENCIES = ("EUR", "GBP", "USD", "JPY", "CHF")


def _orders_for(records: int) -> int:
    return records * 5 // 8  # 5 orders : 3 payments


def orders(n: int) -> Iterator[dict[str, Any]]:
    """``n`` orders in event-time order."""
    for i in range(n):
        yield {"id": i, "cur": _CURRENCIES[i % 5], "ts": 2 * i}


def payments(n: int) -> Iterator[dict[str, Any]]:
    """The payments of three in five of ``n`` orders, in the order they are made
    (up to 6 s of event time out of order)."""
    for i in range(n):
        if i % 5 < 3:  # sent at the order, stamped (event time) up to 6 s later
            yield {"order_id": i, "amount": float(i % 100), "ts": 2 * i + (i % 7) * 1000}


def floor(n_orders: int) -> tuple[int, float]:
    """The hand-written loop: rows and seconds."""
    start = time.perf_counter()
    streams = heapq.merge(
        ((o["ts"], 0, o) for o in orders(n_orders)),
        ((p["ts"] - 6000, 1, p) for p in payments(n_orders)),  # in watermark order
    )
    open_orders: dict[int, dict[str, Any]] = {}
    by_time: list[tuple[int, int]] = []
    matched: set[int] = set()
    rows = 0
    for wm, side, r in streams:
        while by_time and by_time[0][0] + 10_000 < wm:
            _, oid = heapq.heappop(by_time)
            if oid not in matched:
                rows += 1  # the outer row
            matched.discard(oid)
            open_orders.pop(oid, None)
        if side == 0:
            open_orders[r["id"]] = r
            heapq.heappush(by_time, (r["ts"], r["id"]))
        else:
            o = open_orders.get(r["order_id"])
            if o is not None and o["ts"] <= r["ts"] <= o["ts"] + 10_000:
                _ = {"id": o["id"], "cur": o["cur"], "amount": r["amount"]}
                rows += 1
                matched.add(o["id"])
    rows += sum(1 for _, oid in by_time if oid not in matched)
    return rows, time.perf_counter() - start


def run_partita(n_orders: int, partitions: int) -> tuple[int, float, float, int]:
    """partita's run: rows, seconds, CPU seconds, the join state's largest estimate."""
    from partita import actors

    rows = 0

    def count(batch: list[dict[str, Any]]) -> None:
        nonlocal rows
        rows += len(batch)

    async def main() -> Any:
        return await actors.run_sql(
            QUERY,
            sources={"orders": orders(n_orders), "payments": payments(n_orders)},
            sink=actors.CallbackSink("sink", count),
            partitions=partitions,
            allowed_lateness="6s",
        )

    cpu = time.process_time()
    start = time.perf_counter()
    result = trio.run(main)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    assert result.stats.rows_late == 0, result.stats.rows_late
    return rows, seconds, cpu_seconds, result.stats.state_memory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.interval_join")
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--no-floor", action="store_true", help="skip the hand-written loop")
    args = parser.parse_args(argv)
    n_orders = _orders_for(args.records)
    records = n_orders + sum(1 for i in range(n_orders) if i % 5 < 3)
    before = current_rss_mb()
    rows, seconds, cpu_seconds, state = run_partita(n_orders, args.partitions)
    peak = peak_rss_mb()  # before the floor runs: partita's own peak
    line: dict[str, Any] = {
        "workload": "interval-join",
        "records": records,
        "partitions": args.partitions,
        "rows": rows,
        "rec_per_s": round(records / seconds),
        "cpu_rec_per_s": round(records / cpu_seconds) if cpu_seconds > 0 else None,
        "peak_rss_mb": round(peak, 1),
        "start_rss_mb": None if before is None else round(before, 1),
        "final_state_bytes": state,
        "seconds": round(seconds, 3),
    }
    if not args.no_floor:
        floor_rows, floor_seconds = floor(n_orders)
        assert floor_rows == rows, (floor_rows, rows)
        line["floor_rec_per_s"] = round(records / floor_seconds)
        line["ratio"] = round(floor_seconds / seconds, 3)
    sys.stdout.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
