"""Two workers share a Redis topic's partitions, in one process (docs/operations.md).

In production each worker is its own process (``partita worker ...``), on one
machine or many; here two :class:`partita.Worker` run side by side in one
``trio.run`` so the example is self-contained.  Run it against a Redis server::

    python docs/examples/redis_workers.py redis://127.0.0.1:6379
"""

from __future__ import annotations

import sys

import trio

from partita import (
    CollectSink,
    Graph,
    IterableSource,
    RedisStreamSink,
    RedisStreamSource,
    Worker,
    run_graph,
    run_sql,
)

QUERY = "SELECT k, SUM(v) AS total, window_start FROM t GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"


async def produce(url: str, records: list[dict[str, int]]) -> None:
    """What ``partita produce --topic events --partitions 4 --key k`` does."""
    graph = Graph()
    source = graph.add(IterableSource("source", records))
    graph.add(RedisStreamSink("sink", url, "events", partitions=4, key="k"), inputs=[source])
    await run_graph(graph)


async def consume(url: str) -> list[dict[str, int]]:
    """What ``partita consume --topic totals --from-start --until-end`` does."""
    graph = Graph()
    source = graph.add(RedisStreamSource("source", url, "totals"))
    sink = graph.add(CollectSink("sink"), inputs=[source])
    await run_graph(graph)
    return sink.rows


async def main(url: str) -> None:
    records = [{"k": i % 5, "ts": i * 10, "v": i} for i in range(10_000)]
    await produce(url, records)
    workers = [
        Worker(url, "events", QUERY, "totals", name=f"worker-{i}", lease_ms=1000) for i in range(2)
    ]
    async with trio.open_nursery() as nursery:
        for worker in workers:
            nursery.start_soon(worker.run)  # each returns once every partition is done
    for worker in workers:
        print(worker.name, worker.stats().state, "owned at the end:", worker.stats().owned)
    rows = await consume(url)
    alone = await run_sql(QUERY, records)  # one process, no Redis: the same rows
    same = sorted(rows, key=_order) == sorted(alone.rows, key=_order)
    print("rows:", len(rows), "same as in-process:", same)


def _order(row: dict[str, int]) -> tuple[int, int]:
    return row["k"], row["window_start"]


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379")
