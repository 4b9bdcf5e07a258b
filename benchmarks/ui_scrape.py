"""The web view's ``/metrics``, timed: what one Prometheus scrape costs a running job.

    python -m benchmarks.ui_scrape [--partitions P ...] [--scrapes N] [--rate R]

For each partition count, a SQL job (source → router → P partitions → merge → sink)
runs at ``--rate`` generated trades a second under ``partita.serve_ui``; prints one
JSON object per line: ``actors``, ``collect_format_ms`` (the collector and the
exposition format in the loop's thread, mean of N), ``http_scrape_ms`` (``GET
/metrics`` over HTTP with the formatting in a worker thread, mean of N),
``max_stall_ms`` and ``max_stall_idle_ms`` (the event loop's longest stall while
scraping, and without), ``bytes`` and ``samples`` of one scrape.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from typing import Any

import trio

__all__ = ["main", "measure"]

QUERY = "SELECT symbol, COUNT(*) AS n FROM t GROUP BY symbol, TUMBLE(ts, INTERVAL '1' SECOND)"


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read())


async def measure(partitions: int, scrapes: int, rate: float) -> dict[str, Any]:
    import partita
    from partita._ui._metrics import GraphCollector, metrics_text
    from partita.actors import CallbackSink, TradeSource, build_sql_graph
    from partita.runtime import open_supervisor

    source = TradeSource("source", records=10**12, rate=rate)
    sink = CallbackSink("sink", lambda rows: None)
    graph, _ = build_sql_graph(partita.compile_query(QUERY), source, sink, partitions=partitions)
    stalls: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await trio.sleep(0.001)
            now = time.perf_counter()
            stalls.append(now - last)
            last = now

    async with open_supervisor(graph) as supervisor:
        async with partita.serve_ui(supervisor, 0) as ui, trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            await trio.sleep(0.5)
            idle = max(stalls)
            collector = GraphCollector(supervisor, "bench")
            started = time.perf_counter()
            for _ in range(scrapes):
                text = metrics_text(collector)
            in_loop = (time.perf_counter() - started) / scrapes
            await trio.sleep(0.2)
            stalls.clear()
            started = time.perf_counter()
            for _ in range(scrapes):
                body = await trio.to_thread.run_sync(_fetch, ui.base_url + "/metrics")
            http = (time.perf_counter() - started) / scrapes
            stall = max(stalls)
            nursery.cancel_scope.cancel()
        await supervisor.cancel(graceful=False)
    return {
        "actors": len(graph),
        "collect_format_ms": round(in_loop * 1000, 2),
        "http_scrape_ms": round(http * 1000, 2),
        "max_stall_ms": round(stall * 1000, 1),
        "max_stall_idle_ms": round(idle * 1000, 1),
        "bytes": len(body),
        "samples": sum(1 for line in text.splitlines() if not line.startswith(b"#")),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ui_scrape")
    parser.add_argument("--partitions", type=int, nargs="+", default=[4, 64, 256])
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--rate", type=float, default=50_000)
    args = parser.parse_args(argv)
    for partitions in args.partitions:
        result = trio.run(measure, partitions, args.scrapes, args.rate)
        print(json.dumps({"benchmark": "ui_scrape", **result}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
