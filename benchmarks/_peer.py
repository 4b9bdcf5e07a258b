"""One peer system on one workload, in this (fresh) process; print one JSON object.

``python -m benchmarks --peers`` starts one such process per (workload, system)::

    python -m benchmarks._peer --system duckdb --workload W3 --records 1000000

As ``benchmarks._one`` does for partita: it generates the seeded records, runs
the peer once (its peak RSS is that run's own, with the input list), then
alternates the workload's hand-written floor and the peer ``--repeat`` times on
the same list.  ``ratio`` is the best peer rate over the best floor rate,
``ratio_median`` the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from ._data import generate_trades
from ._peers import PEERS
from ._rss import peak_rss_mb
from ._timing import timed
from ._workloads import WORKLOADS

__all__ = ["main"]


def measure(
    system: str, workload: str, records: list[dict[str, Any]], repeat: int
) -> dict[str, Any]:
    """The peer and the floor on ``records``, interleaved; the JSON line's fields."""
    peer = PEERS[system](workload)
    floor = WORKLOADS[workload].floor
    runs = [timed(peer, records)]
    peak = peak_rss_mb()
    floors = []
    for round_ in range(max(1, repeat)):
        floors.append(timed(floor, records))
        if round_ > 0:
            runs.append(timed(peer, records))
    n = len(records)
    best = min(run.seconds for run in runs)
    best_floor = min(f.seconds for f in floors)
    best_cpu = min(run.cpu_seconds for run in runs)
    best_floor_cpu = min(f.cpu_seconds for f in floors)
    pairs = [f.seconds / run.seconds for f, run in zip(floors, runs, strict=True)]
    return {
        "rec_per_s": round(n / best),
        "floor_rec_per_s": round(n / best_floor),
        "ratio": round(best_floor / best, 3),
        "ratio_median": round(statistics.median(pairs), 3),
        "cpu_ratio": round(best_floor_cpu / max(best_cpu, 1e-9), 3),
        "peak_rss_mb": round(peak, 1),
        "rows": runs[0].rows,
        "floor_rows": floors[0].rows,
        "seconds": round(best, 4),
        "floor_seconds": round(best_floor, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._peer")
    parser.add_argument("--system", required=True, choices=sorted(PEERS))
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    records = generate_trades(args.records, seed=args.seed)
    line = measure(args.system, args.workload, records, args.repeat)
    sys.stdout.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
