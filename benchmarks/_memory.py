"""The memory check: a generator source through W3 stays within a fixed RSS.

Five million trades come from ``actors.TradeSource`` (generated lazily, one
batch at a time, never a list), through the 1-second tumbling window by
symbol, into a sink that only counts rows.  Peak RSS must stay under
``limit_mb``: memory is bounded by mailbox capacity x batch size (plus open
windows), not by the input size.  Run in a fresh process::

    python -m benchmarks._memory --records 5000000 --partitions 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import trio

from ._rss import current_rss_mb, peak_rss_mb
from ._workloads import WORKLOADS

__all__ = ["LIMIT_MB", "main", "memory_check"]

LIMIT_MB = 150.0


def memory_check(records: int, *, partitions: int, seed: int = 0) -> dict[str, Any]:
    """Run W3 over a ``TradeSource`` of ``records`` trades; return the JSON line's fields."""
    from partita import actors

    rows = 0

    def count(batch: list[dict[str, Any]]) -> None:
        nonlocal rows
        rows += len(batch)

    async def main() -> Any:
        return await actors.run_sql(
            WORKLOADS["W3"].sql,
            actors.TradeSource("source", records=records, seed=seed),
            actors.CallbackSink("sink", count),
            partitions=partitions,
        )

    before = current_rss_mb()
    cpu_start = time.process_time()
    start = time.perf_counter()
    result = trio.run(main)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    peak = peak_rss_mb()
    return {
        "workload": "W3-5M-memory" if records == 5_000_000 else f"W3-{records}-memory",
        "partitions": partitions,
        "records": records,
        "rec_per_s": round(records / seconds),
        "cpu_rec_per_s": round(records / cpu_seconds) if cpu_seconds > 0 else None,
        "floor_rec_per_s": None,
        "ratio": None,
        "peak_rss_mb": round(peak, 1),
        "start_rss_mb": None if before is None else round(before, 1),
        "limit_mb": LIMIT_MB,
        "ok": peak < LIMIT_MB,
        "rows": rows,
        "late": result.stats.rows_late,
        "seconds": round(seconds, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._memory")
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    line = memory_check(args.records, partitions=args.partitions, seed=args.seed)
    sys.stdout.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
