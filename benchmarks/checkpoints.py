"""Checkpoints, timed: their cost to a running query, and a checkpoint of 100,000 groups.

    python -m benchmarks.checkpoints [--records N] [--repeat R] [--partitions P]

Prints one JSON object per line:

- ``w3``: W3 (a one-second TUMBLE) over the seeded trades, alternately without
  checkpoints and with a checkpoint every second into a SQLite store (a fresh
  one per run), best of ``--repeat`` each; ``ratio`` is the rate with
  checkpoints over the rate without (the target is >= 0.9);
- ``groups``: a GROUP BY with 100,000 open groups in one partition program:
  the snapshot (``program.snapshot()`` encoded, what the partition does
  synchronously at the barrier), its size, and the store's stage + commit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from partita.runtime import Batch, encode_state, open_sqlite_store
from partita.sql import compile_query

from ._data import generate_trades
from ._workloads import WORKLOADS

__all__ = ["main", "measure_groups", "measure_w3"]


def _run_w3(
    records: list[dict[str, Any]], partitions: int, folder: str | None
) -> tuple[float, int]:
    from partita import actors

    workload = WORKLOADS["W3"]

    async def main() -> Any:
        return await actors.run_sql(
            workload.sql,
            actors.IterableSource("source", records),
            partitions=partitions,
            event_time=workload.event_time,
            checkpoint=folder,
            checkpoint_interval=None if folder is None else "1s",
        )

    start = time.perf_counter()
    result = trio.run(main)
    seconds = time.perf_counter() - start
    checkpoint = result.stats.checkpoint
    return seconds, (checkpoint.id + 1) if checkpoint is not None else 0


def measure_w3(records: int, repeat: int, partitions: int) -> dict[str, Any]:
    """W3 without and with a checkpoint a second, alternating; best of ``repeat`` each."""
    data = generate_trades(records)
    plain: list[float] = []
    checkpointed: list[float] = []
    taken = 0
    for _ in range(repeat):
        plain.append(_run_w3(data, partitions, None)[0])
        with tempfile.TemporaryDirectory() as folder:
            seconds, taken = _run_w3(data, partitions, folder)
        checkpointed.append(seconds)
    best_plain, best_checkpointed = min(plain), min(checkpointed)
    return {
        "benchmark": "w3",
        "records": records,
        "partitions": partitions,
        "rec_per_s": records / best_plain,
        "checkpointed_rec_per_s": records / best_checkpointed,
        "checkpoints": taken,
        "ratio": best_plain / best_checkpointed,
    }


def measure_groups(groups: int = 100_000) -> dict[str, Any]:
    """Snapshot one partition program holding ``groups`` open groups; stage and commit it."""
    query = compile_query("SELECT k, COUNT(*) AS n, SUM(v) AS s, AVG(v) AS a FROM t GROUP BY k")
    program = query.new_program()
    for start in range(0, groups, 10_000):
        program.process(Batch([{"k": f"key-{i}", "v": i} for i in range(start, start + 10_000)]))
    started = time.perf_counter()
    blob = encode_state(program.snapshot())
    snapshot = time.perf_counter() - started

    async def store(folder: Path) -> float:
        async with open_sqlite_store(folder / "checkpoints.db", job="bench") as s:
            began = time.perf_counter()
            await s.stage(0, "partition-0", blob)
            await s.commit(0, b"meta")
            return time.perf_counter() - began

    with tempfile.TemporaryDirectory() as folder:
        commit = trio.run(store, Path(folder))
    return {
        "benchmark": "groups",
        "groups": groups,
        "bytes": len(blob),
        "snapshot_ms": snapshot * 1000,
        "stage_and_commit_ms": commit * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checkpoints")
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=1)
    args = parser.parse_args(argv)
    info = {"python": sys.version.split()[0]}
    for line in (
        measure_w3(args.records, args.repeat, args.partitions),
        measure_groups(),
    ):
        print(json.dumps({**line, **info}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
