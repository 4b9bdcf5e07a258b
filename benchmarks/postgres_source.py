"""PostgresSource, timed and weighed: W1 and W3 over a Postgres table, against plain reads.

    python -m benchmarks.postgres_source --dsn postgresql://user@host:port/db [--rows N]

Makes (or reuses) the table ``partita_bench_trades`` of ``--rows`` seeded trades
(``symbol, price, qty, side, ts``: ts epoch milliseconds, 10,000 a second of
event time, 50 symbols), then measures each of these in a fresh process (so each
peak RSS is its own) and prints one JSON object per line:

- ``w1`` / ``w3``: the W1 (filter and project) and W3 (a one-second TUMBLE)
  queries of ``benchmarks._workloads`` over ``PostgresSource`` (a server-side
  cursor, adaptive batches), the rows counted by a callback sink;
- ``copy_loop``: ``COPY (SELECT ...) TO STDOUT`` read with psycopg's
  ``Copy.rows()`` by a plain Python loop doing W1's work: the floor;
- ``fetch_all``: the same client's ``cursor.fetchall()`` of the whole query, then
  the same loop: what a client that holds everything pays in memory.

Each line has ``seconds``, ``rows_per_s`` (input rows a second), ``peak_rss_mb``
of its process, and for ``w1`` / ``w3`` the rate over ``copy_loop``'s.  The best
of ``--repeat`` runs is kept (the peak RSS is the largest seen).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

__all__ = ["TABLE", "main", "measure", "prepare"]

TABLE = "partita_bench_trades"
QUERY = f"SELECT symbol, price, qty, side, ts FROM {TABLE}"
MODES = ("copy_loop", "fetch_all", "w1", "w3")


def prepare(dsn: str, rows: int) -> None:
    """Make ``partita_bench_trades`` with ``rows`` trades, unless it holds them already."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        found = conn.execute("SELECT to_regclass(%s)", [TABLE]).fetchone()
        if found is not None and found[0] is not None:
            count = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
            if count is not None and count[0] == rows:
                return
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"CREATE TABLE {TABLE} AS SELECT "
            "'S' || lpad(((i * 2654435761) % 50)::text, 3, '0') AS symbol, "
            "round((10 + (i * 7919 % 49000) / 100.0)::numeric, 2)::float8 AS price, "
            "1 + (i * 31 % 100) AS qty, "
            "CASE WHEN i % 2 = 0 THEN 'buy' ELSE 'sell' END AS side, "
            "1700000000000 + i / 10 AS ts "
            f"FROM generate_series(0::bigint, {rows - 1}) i"
        )
        conn.execute(f"VACUUM ANALYZE {TABLE}")


def _w1_loop(rows: Any) -> int:
    """W1 by hand: ``SELECT symbol, price * qty AS notional ... WHERE qty > 50``."""
    out = 0
    for symbol, price, qty, _side, _ts in rows:
        if qty > 50:
            row = {"symbol": symbol, "notional": price * qty}
            out += 1
            del row
    return out


def _copy_loop(dsn: str) -> int:
    import psycopg

    copy_out = f"COPY ({QUERY}) TO STDOUT"
    with psycopg.connect(dsn) as conn, conn.cursor() as cursor, cursor.copy(copy_out) as copy:
        copy.set_types(["text", "float8", "int4", "text", "int8"])
        return _w1_loop(copy.rows())


def _fetch_all(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
        cursor.execute(QUERY)
        rows = cursor.fetchall()
        return _w1_loop(rows)


def _partita(dsn: str, workload: str) -> int:
    import trio

    from partita import actors

    from ._workloads import WORKLOADS

    chosen = WORKLOADS[workload]
    out = 0

    def count(rows: list[dict[str, Any]]) -> None:
        nonlocal out
        out += len(rows)

    async def run() -> None:
        await actors.run_sql(
            chosen.sql,
            actors.PostgresSource("source", dsn, QUERY),
            sink=actors.CallbackSink("sink", count),
            event_time=chosen.event_time,
        )

    trio.run(run)
    return out


def measure(dsn: str, mode: str) -> dict[str, Any]:
    """One run of ``mode`` in this process: seconds, rows out, and this process's peak RSS."""
    from ._rss import peak_rss_mb

    start = time.perf_counter()
    if mode == "copy_loop":
        out = _copy_loop(dsn)
    elif mode == "fetch_all":
        out = _fetch_all(dsn)
    else:
        out = _partita(dsn, mode.upper())
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows_out": out, "peak_rss_mb": round(peak_rss_mb(), 1)}


def _fresh(dsn: str, mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.postgres_source", "--dsn", dsn, "--one", mode],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.postgres_source")
    parser.add_argument("--dsn", required=True, help="a Postgres server to write a table into")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.dsn, args.one)))
        return 0
    prepare(args.dsn, args.rows)
    floor: float | None = None
    for mode in MODES:
        runs = [_fresh(args.dsn, mode) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["seconds"])
        line: dict[str, Any] = {
            "benchmark": f"postgres_{mode}",
            "rows": args.rows,
            "seconds": round(best["seconds"], 3),
            "rows_per_s": round(args.rows / best["seconds"]),
            "rows_out": best["rows_out"],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        }
        if mode == "copy_loop":
            floor = line["rows_per_s"]
        elif mode != "fetch_all" and floor:
            line["vs_copy_loop"] = round(line["rows_per_s"] / floor, 3)
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
