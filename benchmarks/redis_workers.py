"""W3 over Redis: ``partita worker`` processes sharing a topic, against W3 in one process.

    python -m benchmarks.redis_workers [--records N] [--partitions P] [--workers 1,2] [--repeat R]

Starts its own ``redis-server`` (no persistence, a temporary directory, a free
port).  For each worker count: a fresh topic of ``P`` partitions keyed by
``symbol``, that many ``partita worker`` processes started and settled (every
worker a member and owning its share) *before* any input exists, then the
seeded trades written in one burst (pre-encoded entries of 8,192 records, and
the end markers), timed until every partition's commit says ``done``.  So the
interpreter's start is not counted, and the burst is a fraction of a second.

Prints one JSON object per line:

- ``in_process``: W3 with ``run_sql`` over the records in memory (1 partition);
- ``workers``: for each worker count, the best of ``--repeat`` runs, records
  per second, and ``speedup`` over one worker;
- ``redis_hop``: the per-record cost of going through Redis, in microseconds:
  ``1 / rate(1 worker) - 1 / rate(in process)``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import trio

from partita.actors import run_sql
from partita.actors._leases import LeaseTable, load_committed, members_key, wall_clock_ms
from partita.actors._redis import END, encode_entry, ensure_topic, open_redis, partition_key
from partita.actors._redis import partition_of as topic_partition_of

from ._data import generate_trades
from ._workloads import WORKLOADS

__all__ = ["main"]

_ENTRY = 8192


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(folder: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder]
    process = subprocess.Popen(
        [*args, "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
    )
    url = f"redis://127.0.0.1:{port}"
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return process, url
        except OSError:
            time.sleep(0.01)
    process.kill()
    raise SystemExit("redis-server did not answer PING")


def _entries(records: list[dict[str, Any]], partitions: int) -> dict[int, list[dict[bytes, bytes]]]:
    by: dict[int, list[dict[str, Any]]] = {p: [] for p in range(partitions)}
    for r in records:
        by[topic_partition_of(r["symbol"], partitions)].append(r)
    return {
        p: [encode_entry(rows[i : i + _ENTRY]) for i in range(0, len(rows), _ENTRY)]
        for p, rows in by.items()
    }


def _in_process(records: list[dict[str, Any]]) -> float:
    workload = WORKLOADS["W3"]
    start = time.perf_counter()
    trio.run(run_sql, workload.sql, records)
    return len(records) / (time.perf_counter() - start)


async def _settled(url: str, topic: str, names: list[str], partitions: int) -> bool:
    async with open_redis(url) as client:
        members = {m.decode() for m in await client.hkeys(members_key(topic, "default"))}
        table = LeaseTable(client, topic, "default", "probe", partitions)
        owners = {w for w, _ in (await table.owners(wall_clock_ms())).values()}
    return members == set(names) and owners == set(names)


async def _burst(url: str, topic: str, entries: dict[int, list[dict[bytes, bytes]]]) -> None:
    async with open_redis(url) as client:
        for p, batch in entries.items():
            for fields in batch:
                await client.xadd(partition_key(topic, p), fields)
            await client.xadd(partition_key(topic, p), {END: b""})


async def _all_done(url: str, topic: str, partitions: int) -> bool:
    async with open_redis(url) as client:
        for p in range(partitions):
            committed = await load_committed(client, topic, "default", p)
            if committed is None or not committed.done:
                return False
    return True


async def _make_topic(url: str, topic: str, partitions: int) -> None:
    async with open_redis(url) as client:
        await ensure_topic(client, url, topic, partitions, "symbol")


def _run(
    url: str, run: str, workers: int, partitions: int, entries: dict[int, list[dict[bytes, bytes]]]
) -> float:
    topic = f"trades-{run}"
    trio.run(_make_topic, url, topic, partitions)
    names = [f"w{i}" for i in range(workers)]
    command = [sys.executable, "-m", "partita", "worker", "--redis", url, "--topic", topic,
               "--output-topic", f"out-{run}", "--sql", WORKLOADS["W3"].sql,
               "--lease-ms", "2000", "--no-progress"]  # fmt: skip
    procs = [
        subprocess.Popen(
            [*command, "--name", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for name in names
    ]
    try:
        deadline = time.monotonic() + 120
        while not trio.run(_settled, url, topic, names, partitions):
            if time.monotonic() > deadline:
                raise SystemExit("the workers did not settle")
            time.sleep(0.05)
        start = time.perf_counter()
        trio.run(_burst, url, topic, entries)
        while not trio.run(_all_done, url, topic, partitions):
            time.sleep(0.01)
        seconds = time.perf_counter() - start
        for proc in procs:
            proc.wait(timeout=60)
        return seconds
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_workers")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.workers.split(",")]
    info = {"python": sys.version.split()[0], "records": args.records}
    records = generate_trades(args.records)
    entries = _entries(records, args.partitions)
    inproc = max(_in_process(records) for _ in range(args.repeat))
    print(json.dumps({"benchmark": "in_process", "rec_per_s": inproc, **info}), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        process, url = _start_redis(folder)
        try:
            rates: dict[int, list[float]] = {c: [] for c in counts}
            for r in range(args.repeat):
                for c in counts:  # interleaved, so a busy spell hits each count alike
                    seconds = _run(url, f"{c}-{r}", c, args.partitions, entries)
                    rates[c].append(args.records / seconds)
        finally:
            process.terminate()
            process.wait(timeout=10)
    one = max(rates[counts[0]])
    for c in counts:
        best = max(rates[c])
        line = {
            "benchmark": "workers",
            "workers": c,
            "partitions": args.partitions,
            "rec_per_s": best,
            "runs_rec_per_s": sorted(rates[c]),
            "speedup": best / one,
            **info,
        }
        print(json.dumps(line), flush=True)
    hop = (1 / one - 1 / inproc) * 1e6
    print(json.dumps({"benchmark": "redis_hop", "us_per_record": hop, **info}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
