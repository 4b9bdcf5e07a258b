"""W3 over Redis: ``partita worker`` processes sharing a topic, against W3 in one process.

    python -m benchmarks.redis_workers [--records N] [--partitions P] [--workers 1,2] [--repeat R]
                                       [--entries table|rows]

Starts its own ``redis-server`` (no persistence, a temporary directory, a free
port).  For each worker count: a fresh topic of ``P`` partitions keyed by
``symbol``, that many ``partita worker`` processes started and settled (every
worker a member and owning exactly its fair share) *before* any input exists,
then the seeded trades written in one burst (pre-encoded entries of 8,192
records, as tables or with ``--entries rows`` as arrays of maps, and the end
markers), timed until every partition's commit says ``done``.  So the
interpreter's start is not counted, and the burst is a fraction of a second.

The machine may be shared, so wall-clock rates are noisy; each run also reads
the CPU seconds every process spent between the burst and the last ``done``
(``/proc/<pid>/stat``): what the workers would take with a core each.

Prints one JSON object per line:

- ``in_process``: W3 with ``run_sql`` over the records in memory (1 partition),
  best records per second and CPU µs per record;
- ``decode``: CPU µs per record to decode the entries, as tables (``t``) and
  as arrays of maps (``r``), in this process;
- ``workers``: for each worker count, the best of ``--repeat`` runs, records
  per second, and ``speedup`` over one worker; ``worker_cpu_s`` (per run, per
  worker), ``redis_cpu_s``, ``bench_cpu_s`` (this process: burst and polling);
  ``cpu_speedup``: one worker's CPU seconds over the busiest worker's (medians
  over the runs), the speedup with a core per worker; ``balance_bound``: the
  speedup whole partitions allow at most (records over the biggest share);
- ``redis_hop``: the per-record cost of going through Redis, in microseconds:
  ``1 / rate(1 worker) - 1 / rate(in process)``, and ``cpu_us_per_record``, the
  same from CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import attrs
import trio

from partita.actors import run_sql
from partita.actors._leases import (
    LeaseTable,
    assignment,
    load_committed,
    members_key,
    wall_clock_ms,
)
from partita.actors._redis import ensure_topic, open_redis, partition_key
from partita.actors._redis import partition_of as topic_partition_of
from partita.actors._redis_entries import END, decode_entry, encode_entry

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


def _entries(
    records: list[dict[str, Any]], partitions: int, *, table: bool = True
) -> tuple[dict[int, list[dict[bytes, bytes]]], dict[int, int]]:
    """Each partition's entries (as ``partita produce`` routes them), and its record count."""
    by: dict[int, list[dict[str, Any]]] = {p: [] for p in range(partitions)}
    for r in records:
        by[topic_partition_of(r["symbol"], partitions)].append(r)
    entries = {
        p: [encode_entry(rows[i : i + _ENTRY], table=table) for i in range(0, len(rows), _ENTRY)]
        for p, rows in by.items()
    }
    return entries, {p: len(rows) for p, rows in by.items()}


def _in_process(records: list[dict[str, Any]]) -> tuple[float, float]:
    """W3 with ``run_sql`` in this process: records per second, CPU µs per record."""
    workload = WORKLOADS["W3"]
    start, cpu = time.perf_counter(), time.process_time()
    trio.run(run_sql, workload.sql, records)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return len(records) / seconds, cpu / len(records) * 1e6


def _decoding(records: list[dict[str, Any]], repeat: int) -> dict[str, float]:
    """CPU µs per record to read the records back from their entries, as tables and as rows."""
    out: dict[str, float] = {}
    for kind, table in (("table", True), ("rows", False)):
        entries = [
            encode_entry(records[i : i + _ENTRY], table=table)
            for i in range(0, len(records), _ENTRY)
        ]
        best = float("inf")
        for _ in range(repeat):
            cpu = time.process_time()
            for fields in entries:
                decode_entry(fields)
            best = min(best, time.process_time() - cpu)
        out[f"{kind}_us_per_record"] = best / len(records) * 1e6
    return out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _balance_bound(
    entries: dict[int, list[dict[bytes, bytes]]], sizes: dict[int, int], workers: int
) -> float:
    """The speedup ``workers`` can reach at most: records over the biggest worker's share.

    Each worker owns whole partitions (:func:`assignment`), so the one with the
    most records sets the end.
    """
    owners = assignment([f"w{i}" for i in range(workers)], len(entries))
    shares: dict[str, int] = {}
    for p, owner in owners.items():
        shares[owner] = shares.get(owner, 0) + sizes[p]
    return sum(sizes.values()) / max(shares.values())


async def _settled(url: str, topic: str, names: list[str], partitions: int) -> bool:
    """Every worker a member, and the leases exactly the fair shares."""
    async with open_redis(url) as client:
        members = {m.decode() for m in await client.hkeys(members_key(topic, "default"))}
        table = LeaseTable(client, topic, "default", "probe", partitions)
        owners = await table.owners(wall_clock_ms())
    fair = assignment(names, partitions)
    return members == set(names) and {p: w for p, (w, _) in owners.items()} == fair


async def _all_done(client: Any, topic: str, partitions: int) -> bool:
    for p in range(partitions):
        committed = await load_committed(client, topic, "default", p)
        if committed is None or not committed.done:
            return False
    return True


async def _burst_until_done(
    url: str, topic: str, entries: dict[int, list[dict[bytes, bytes]]]
) -> float:
    """Write every entry and the end markers, wait for every partition's ``done``: seconds.

    One connection, polled every 20 ms, so the benchmark's own CPU stays small.
    """
    async with open_redis(url) as client:
        start = time.perf_counter()
        for p, batch in entries.items():
            for fields in batch:
                await client.xadd(partition_key(topic, p), fields)
            await client.xadd(partition_key(topic, p), {END: b""})
        while not await _all_done(client, topic, len(entries)):  # noqa: ASYNC110 (polling Redis)
            await trio.sleep(0.02)
        return time.perf_counter() - start


async def _make_topic(url: str, topic: str, partitions: int) -> None:
    async with open_redis(url) as client:
        await ensure_topic(client, url, topic, partitions, "symbol")


@attrs.frozen
class _Run:
    seconds: float
    worker_cpu_s: tuple[float, ...]
    """Each worker's CPU seconds from the burst to the last ``done``."""
    redis_cpu_s: float
    bench_cpu_s: float
    """This process's (the burst and the polling)."""


def _run(
    server: subprocess.Popen[bytes],
    url: str,
    run: str,
    workers: int,
    entries: dict[int, list[dict[bytes, bytes]]],
) -> _Run:
    topic, partitions = f"trades-{run}", len(entries)
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
        cpu = [_cpu_seconds(p.pid) for p in procs]
        redis_cpu, bench_cpu = _cpu_seconds(server.pid), time.process_time()
        seconds = trio.run(_burst_until_done, url, topic, entries)
        cpu = [_cpu_seconds(p.pid) - c for p, c in zip(procs, cpu, strict=True)]
        redis_cpu = _cpu_seconds(server.pid) - redis_cpu
        bench_cpu = time.process_time() - bench_cpu
        for proc in procs:
            proc.wait(timeout=60)
        return _Run(seconds, tuple(cpu), redis_cpu, bench_cpu)
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
    parser.add_argument(
        "--entries", choices=["table", "rows"], default="table", help="the entries' field: t or r"
    )
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.workers.split(",")]
    info = {"python": sys.version.split()[0], "records": args.records, "entries": args.entries}
    records = generate_trades(args.records)
    entries, sizes = _entries(records, args.partitions, table=args.entries == "table")
    inproc = [_in_process(records) for _ in range(args.repeat)]
    rate, cpu_us = max(r for r, _ in inproc), min(c for _, c in inproc)
    line = {"benchmark": "in_process", "rec_per_s": rate, "cpu_us_per_record": cpu_us, **info}
    print(json.dumps(line), flush=True)
    line = {"benchmark": "decode", **_decoding(records, args.repeat), **info}
    print(json.dumps(line), flush=True)
    del records
    runs: dict[int, list[_Run]] = {c: [] for c in counts}
    with tempfile.TemporaryDirectory() as folder:
        server, url = _start_redis(folder)
        try:
            for r in range(args.repeat):
                for c in counts:  # interleaved, so a busy spell hits each count alike
                    runs[c].append(_run(server, url, f"{c}-{r}", c, entries))
        finally:
            server.terminate()
            server.wait(timeout=10)
    n = args.records
    one = max(n / run.seconds for run in runs[counts[0]])
    one_cpu = statistics.median(sum(run.worker_cpu_s) for run in runs[counts[0]])
    for c in counts:
        rates = sorted(n / run.seconds for run in runs[c])
        busiest = statistics.median(max(run.worker_cpu_s) for run in runs[c])
        line = {
            "benchmark": "workers",
            "workers": c,
            "partitions": args.partitions,
            "rec_per_s": rates[-1],
            "runs_rec_per_s": rates,
            "speedup": rates[-1] / one,
            "worker_cpu_s": [list(run.worker_cpu_s) for run in runs[c]],
            "redis_cpu_s": [run.redis_cpu_s for run in runs[c]],
            "bench_cpu_s": [run.bench_cpu_s for run in runs[c]],
            "cpu_speedup": one_cpu / busiest,
            "balance_bound": _balance_bound(entries, sizes, c),
            **info,
        }
        print(json.dumps(line), flush=True)
    hop = (1 / one - 1 / rate) * 1e6
    cpu_hop = one_cpu / n * 1e6 - cpu_us
    line = {"benchmark": "redis_hop", "us_per_record": hop, "cpu_us_per_record": cpu_hop, **info}
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
