"""One workload at one partition count, in this (fresh) process; print one JSON object.

``python -m benchmarks`` starts one such process per (workload, partitions)::

    python -m benchmarks._one --workload W3 --partitions 4 --records 1000000

It generates the seeded records, runs partita once and reads the peak RSS
(input list + that run; nothing else has run in this process yet), then
alternates the floor and partita ``--repeat`` times on the same list, so the
two see the same machine load (a shared 2-core box is noisy).  The figures are
the best of each; ``ratio_median`` is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from ._data import generate_trades
from ._rss import current_rss_mb, peak_rss_mb
from ._run import PartitaTiming, run_partita
from ._timing import timed
from ._workloads import WORKLOADS, Workload

__all__ = ["main", "measure"]


def _time_floor(workload: Workload, records: list[dict[str, Any]]) -> tuple[float, float, int]:
    """Wall-clock seconds, CPU seconds and rows of one floor run."""
    run = timed(workload.floor, records)
    return run.seconds, run.cpu_seconds, run.rows


def measure(
    workload: Workload,
    records: list[dict[str, Any]],
    *,
    partitions: int,
    repeat: int,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Partita and the floor on ``records``, interleaved; the JSON line's fields."""
    runs: list[PartitaTiming] = [
        run_partita(workload, records, partitions=partitions, batch_size=batch_size)
    ]
    peak = peak_rss_mb()
    floors: list[float] = []
    floor_cpus: list[float] = []
    floor_rows = 0
    for round_ in range(max(1, repeat)):
        seconds, cpu_seconds, floor_rows = _time_floor(workload, records)
        floors.append(seconds)
        floor_cpus.append(cpu_seconds)
        if round_ > 0:
            runs.append(
                run_partita(workload, records, partitions=partitions, batch_size=batch_size)
            )
    best = min(runs, key=lambda run: run.seconds)
    best_cpu = max(run.cpu_rec_per_s for run in runs)
    n = len(records)
    floor_rate = n / min(floors)
    floor_cpu_rate = n / max(min(floor_cpus), 1e-9)
    pairs = [f / run.seconds for f, run in zip(floors, runs, strict=True)]
    return {
        "rec_per_s": round(best.rec_per_s),
        "floor_rec_per_s": round(floor_rate),
        "ratio": round(best.rec_per_s / floor_rate, 3),
        "ratio_median": round(statistics.median(pairs), 3),
        "cpu_rec_per_s": round(best_cpu),
        "floor_cpu_rec_per_s": round(floor_cpu_rate),
        "cpu_ratio": round(best_cpu / floor_cpu_rate, 3),
        "peak_rss_mb": round(peak, 1),
        "rows": best.rows,
        "floor_rows": floor_rows,
        "late": best.late,
        "errored": best.errored,
        "seconds": round(best.seconds, 4),
        "floor_seconds": round(min(floors), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._one")
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    records = generate_trades(args.records, seed=args.seed)
    input_rss = current_rss_mb()
    line = measure(
        WORKLOADS[args.workload],
        records,
        partitions=args.partitions,
        repeat=args.repeat,
        batch_size=args.batch_size,
    )
    line["input_rss_mb"] = None if input_rss is None else round(input_rss, 1)
    sys.stdout.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
