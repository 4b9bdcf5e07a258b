"""``python -m benchmarks.memory_estimate``: the batch estimate against tracemalloc.

For each typical record shape (``benchmarks._record_kinds``): the bytes
``tracemalloc`` sees the records take, ``estimate_nbytes`` of a batch of them, the
ratio (the target is within ±30%), and the estimate's cost per batch (best of
``--repeat`` x 200 calls; it runs at every mailbox send).  One JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc

from partita.runtime import Batch, estimate_nbytes

from ._record_kinds import RECORD_KINDS

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_estimate")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    for kind, make in RECORD_KINDS.items():
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        records = make()
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        batch = Batch.from_records(records)
        estimate = estimate_nbytes(batch)
        best = float("inf")
        offsets = batch.offsets
        for _ in range(max(1, args.repeat)):
            # a new batch each time: a batch keeps its estimate, so measuring the same
            # object again would time the cached figure
            fresh = [Batch(records, offsets) for _ in range(200)]
            start = time.perf_counter()
            for one in fresh:
                estimate_nbytes(one)
            best = min(best, (time.perf_counter() - start) / 200)
        line = {
            "kind": kind,
            "records": len(records),
            "tracemalloc_bytes": held,
            "estimate_bytes": estimate,
            "ratio": round(estimate / held, 3),
            "us_per_batch": round(best * 1e6, 1),
        }
        sys.stdout.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
