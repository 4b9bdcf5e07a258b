"""``python -m benchmarks.temporal_join``: a temporal join's memory and speed.

Orders enriched from a changelog of rates, both generated lazily (never a list):
order ``i`` at event time ``2 i`` ms in one of 1,000 currencies; each currency's
rate changes every 10 s of event time (staggered, so 100 versions a second), and
one change in 50 deletes the currency until its next one.  The job::

    SELECT o.id, o.cur, o.amount * r.rate AS usd FROM orders o
      LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.cur = r.cur

into a sink that only counts rows.  The join keeps one version per currency plus
what the watermark has not passed, so peak RSS must not grow with the stream: run
it at two sizes, each in a fresh process, and compare (``--records`` is orders plus
versions)::

    python -m benchmarks.temporal_join --records 500000
    python -m benchmarks.temporal_join --records 5000000

The floor is the plain-CPython loop doing the same join over the two streams merged
in event-time order (a dict of each currency's current rate), in the same process;
``ratio`` is partita's records/s over the floor's.  One JSON line.
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
    "SELECT o.id, o.cur, o.amount * r.rate AS usd FROM orders o "
    "LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.cur = r.cur"
)
KEYS = 1_000
_EVERY_MS = 10_000  # each key's rate changes this often
_STEP_MS = _EVERY_MS // KEYS  # one change every 10 ms


def _span_ms(records: int) -> int:
    """The event time covered by ``records`` orders plus versions (one order per 2 ms,
    one version per 10 ms: 6 records per 10 ms)."""
    return records * 10 // 6


def orders(span: int) -> Iterator[dict[str, Any]]:
    """An order every 2 ms over ``span`` ms, in event-time order."""
    for i in range(span // 2):
        yield {"id": i, "cur": f"c{(i * 7) % KEYS}", "amount": float(i % 100), "ts": 2 * i}


def rates(span: int) -> Iterator[dict[str, Any]]:
    """A version every 10 ms over ``span`` ms (key ``j % KEYS``), one in 50 a deletion."""
    for j in range(span // _STEP_MS):
        if j % 50 == 49:
            yield {"cur": f"c{j % KEYS}", "ts": j * _STEP_MS}
        else:
            yield {"cur": f"c{j % KEYS}", "rate": 1.0 + (j % 13) / 10, "ts": j * _STEP_MS}


def floor(span: int) -> tuple[int, float]:
    """The hand-written loop: rows and seconds."""
    start = time.perf_counter()
    streams = heapq.merge(
        ((r["ts"], 0, r) for r in rates(span)),  # a version before an order at its time
        ((o["ts"], 1, o) for o in orders(span)),
    )
    current: dict[str, float | None] = {}
    rows = 0
    for _, side, r in streams:
        if side == 0:
            current[r["cur"]] = r.get("rate")
        else:
            rate = current.get(r["cur"])
            _ = {
                "id": r["id"],
                "cur": r["cur"],
                "usd": None if rate is None else r["amount"] * rate,
            }
            rows += 1
    return rows, time.perf_counter() - start


def run_partita(span: int, partitions: int) -> tuple[int, float, float, int]:
    """partita's run: rows, seconds, CPU seconds, the join state's last estimate."""
    from partita import actors

    rows = 0

    def count(batch: list[dict[str, Any]]) -> None:
        nonlocal rows
        rows += len(batch)

    async def main() -> Any:
        return await actors.run_sql(
            QUERY,
            sources={"orders": orders(span), "rates": rates(span)},
            sink=actors.CallbackSink("sink", count),
            partitions=partitions,
        )

    cpu = time.process_time()
    start = time.perf_counter()
    result = trio.run(main)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    assert result.stats.rows_late == 0, result.stats.rows_late
    return rows, seconds, cpu_seconds, result.stats.state_memory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.temporal_join")
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--no-floor", action="store_true", help="skip the hand-written loop")
    args = parser.parse_args(argv)
    span = _span_ms(args.records)
    records = span // 2 + span // _STEP_MS
    before = current_rss_mb()
    rows, seconds, cpu_seconds, state = run_partita(span, args.partitions)
    peak = peak_rss_mb()  # before the floor runs: partita's own peak
    line: dict[str, Any] = {
        "workload": "temporal-join",
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
        floor_rows, floor_seconds = floor(span)
        assert floor_rows == rows, (floor_rows, rows)
        line["floor_rec_per_s"] = round(records / floor_seconds)
        line["ratio"] = round(floor_seconds / seconds, 3)
    sys.stdout.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
