"""W1's partition program alone against its floor, batch by batch; and W1 end to end
over records with NULL prices.

::

    python -m benchmarks.stateless_fast_path --records 1000000 --batch-size 8192 --repeat 7
    python -m benchmarks.stateless_fast_path --records 1000000 --null-fraction 0.01 --end-to-end

Without ``--end-to-end`` it cuts the seeded trades into batches, then alternates the
floor (the hand-written comprehension, per batch) and one partition program's
``process`` (per batch, no actors) ``--repeat`` times and prints the least CPU seconds
(``time.process_time()``) of each and their ratio.  With ``--null-fraction`` that share
of the records gets ``price: None`` (the floor cannot run then: only partita is timed).
With ``--end-to-end`` it times ``actors.run_sql`` (one partition) instead, as
``benchmarks._one`` does.  One JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from partita.runtime import Batch
from partita.sql import compile_query

from ._data import generate_trades
from ._run import run_partita
from ._workloads import WORKLOADS, floor_w1

__all__ = ["main", "with_null_prices"]


def with_null_prices(records: list[dict[str, Any]], fraction: float, seed: int = 1) -> None:
    """Set ``price`` to ``None`` in about ``fraction`` of ``records`` (seeded, in place)."""
    rng = random.Random(seed)
    for r in records:
        if rng.random() < fraction:
            r["price"] = None


def _cpu(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.process_time()
    fn()
    return time.process_time() - start


def _program_alone(records: list[dict[str, Any]], size: int, repeat: int) -> dict[str, Any]:
    chunks = [records[i : i + size] for i in range(0, len(records), size)]
    batches = [Batch.from_records(c, start=i * size) for i, c in enumerate(chunks)]
    program = compile_query(WORKLOADS["W1"].sql).new_program()
    floor_ok = all(r["price"] is not None for r in records)

    def floor() -> None:
        for chunk in chunks:
            floor_w1(chunk)

    def partita() -> None:
        for batch in batches:
            program.process(batch)

    floors: list[float] = []
    runs: list[float] = []
    for _ in range(repeat):
        if floor_ok:
            floors.append(_cpu(floor))
        runs.append(_cpu(partita))
    line: dict[str, Any] = {"process_cpu_s": round(min(runs), 4)}
    if floors:
        line["floor_cpu_s"] = round(min(floors), 4)
        line["ratio"] = round(min(floors) / min(runs), 3)
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stateless_fast_path")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--null-fraction", type=float, default=0.0)
    parser.add_argument("--end-to-end", action="store_true")
    args = parser.parse_args(argv)
    records = generate_trades(args.records)
    if args.null_fraction:
        with_null_prices(records, args.null_fraction)
    line: dict[str, Any] = {"records": args.records, "null_fraction": args.null_fraction}
    if args.end_to_end:
        runs = [run_partita(WORKLOADS["W1"], records, partitions=1) for _ in range(args.repeat)]
        line["run_sql_cpu_s"] = round(min(r.cpu_seconds for r in runs), 4)
        line["rows"] = runs[0].rows
    else:
        line["batch_size"] = args.batch_size
        line.update(_program_alone(records, args.batch_size, args.repeat))
    sys.stdout.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
