"""``python -m benchmarks.batching``: source-to-sink latency and throughput by batch sizer.

A source whose records arrive at ``--rate`` records/s (each stamped with the time
it arrived; the source sends what has arrived, up to its batch size, as a reader
of a socket or a pipe does) runs W1 (filter + project, one partition) into a sink
that takes each row's age.  One JSON object per line, per sizer:

* ``adaptive``: partita's default (4,096..16,384, throughput under a 50 ms bound);
* ``adaptive-256``: the same controller from 256;
* ``fixed-256`` and ``fixed-16384``: the two ends, pinned.

``p50_ms`` / ``p99_ms`` are over every row, ``rec_per_s`` is what got through
(at most the rate), ``batches`` how many the source cut, ``final_batch_size`` the
sizer's last answer.  Then the same sizers with no rate limit (``--rate 0``:
throughput only) unless ``--no-unlimited``::

    python -m benchmarks.batching --rate 200000 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from typing import Any

import attrs
import trio

from partita import actors
from partita.actors._sources import default_sizer
from partita.runtime import BatchSizer, Record

__all__ = ["main"]

SQL = "SELECT symbol, price * qty AS notional, arrived FROM trades WHERE qty > 50"

SIZERS: dict[str, Callable[[], BatchSizer]] = {
    "adaptive": default_sizer,
    "adaptive-256": lambda: BatchSizer(minimum=256, maximum=16384),
    "fixed-256": lambda: BatchSizer.fixed(256),
    "fixed-16384": lambda: BatchSizer.fixed(16384),
}


@attrs.define(eq=False)
class ArrivingSource(actors.RecordSource):
    """``total`` trades arriving at ``rate`` per second (0: all at once), stamped."""

    total: int = attrs.field(kw_only=True)
    rate: float = attrs.field(kw_only=True)
    sent: int = attrs.field(init=False, default=0)
    sizes: list[int] = attrs.field(init=False, factory=list)

    async def produce(self) -> None:
        start = trio.current_time()
        rate = self.rate
        while self.sent < self.total:
            now = trio.current_time()
            arrived = self.total if rate <= 0 else min(self.total, int((now - start) * rate))
            n = min(self.batch_size, arrived - self.sent)
            if n <= 0:
                await trio.sleep_until(start + (self.sent + 1) / rate)
                continue
            first = self.sent
            records = [
                {
                    "symbol": f"S{(first + i) % 50:03d}",
                    "price": 10.0 + (first + i) % 97,
                    "qty": 1 + (first + i) * 7 % 100,
                    "arrived": start + (first + i) / rate if rate > 0 else start,
                }
                for i in range(n)
            ]
            self.sent += n
            self.sizes.append(n)
            await self.send_records(records)


def run(sizer: str, *, rate: float, total: int) -> dict[str, Any]:
    ages: list[float] = []

    def take(rows: list[Record]) -> None:
        now = trio.current_time()
        ages.extend(now - row["arrived"] for row in rows)

    source = ArrivingSource("trades", total=total, rate=rate, sizer=SIZERS[sizer]())

    async def main() -> float:
        start = trio.current_time()
        await actors.run_sql(SQL, source, actors.CallbackSink("sink", take), partitions=1)
        return trio.current_time() - start

    seconds = trio.run(main)
    sizes = source.sizes
    ages.sort()
    line: dict[str, Any] = {
        "bench": "batching",
        "sizer": sizer,
        "rate": rate,
        "records": total,
        "rows": len(ages),
        "rec_per_s": round(total / seconds),
        "batches": len(sizes),
        "median_batch": statistics.median(sizes) if sizes else 0,
        "final_batch_size": source.sizer.size,
    }
    if rate > 0 and ages:
        line["p50_ms"] = round(ages[len(ages) // 2] * 1000, 2)
        line["p99_ms"] = round(ages[min(len(ages) - 1, int(len(ages) * 0.99))] * 1000, 2)
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batching")
    parser.add_argument("--rate", type=float, default=200_000.0, help="records/s (default 200k)")
    parser.add_argument("--seconds", type=float, default=5.0, help="of input at --rate")
    parser.add_argument("--unlimited-records", type=int, default=2_000_000)
    parser.add_argument("--no-unlimited", action="store_true")
    parser.add_argument("--sizers", default=",".join(SIZERS))
    args = parser.parse_args(argv)
    names = [s for s in args.sizers.split(",") if s]
    for name in names:
        if name not in SIZERS:
            parser.error(f"unknown sizer {name!r}; choose from {','.join(SIZERS)}")
    for name in names:
        line = run(name, rate=args.rate, total=int(args.rate * args.seconds))
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    if not args.no_unlimited:
        for name in names:
            line = run(name, rate=0.0, total=args.unlimited_records)
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
