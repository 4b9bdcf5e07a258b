"""One partita run of a workload: ``run_sql`` inside ``trio.run``, timed."""

from __future__ import annotations

import gc
import time
from typing import Any

import attrs
import trio

from ._workloads import Workload

__all__ = ["PartitaTiming", "run_partita"]


@attrs.frozen
class PartitaTiming:
    """How long one partita run took and what it produced."""

    records: int
    rows: int
    seconds: float
    cpu_seconds: float
    late: int
    errored: int

    @property
    def rec_per_s(self) -> float:
        """Records per second of wall-clock time."""
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_rec_per_s(self) -> float:
        """Records per second of this process's CPU time (robust on a busy machine)."""
        return self.records / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


def run_partita(
    workload: Workload,
    records: list[dict[str, Any]],
    *,
    partitions: int,
    batch_size: int | None = None,
) -> PartitaTiming:
    """Run ``workload`` over ``records`` with ``partitions`` partition actors.

    The clock covers compiling the query, building and running the graph, and
    collecting every result row (``trio.run`` start to end).
    """
    from partita import actors

    async def main() -> Any:
        return await actors.run_sql(
            workload.sql,
            actors.IterableSource("source", records),
            partitions=partitions,
            batch_size=batch_size,
            event_time=workload.event_time,
        )

    gc.collect()
    cpu_start = time.process_time()
    start = time.perf_counter()
    result = trio.run(main)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    stats = result.stats
    rows = len(result.rows)
    del result
    return PartitaTiming(
        records=len(records),
        rows=rows,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        late=stats.rows_late,
        errored=stats.rows_errored,
    )
