"""What the worker tests share: a topic to work on, worker processes, the output read back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from partita.actors import IterableSource, RedisStreamSink, run_sql
from partita.actors._leases import load_committed, output_key
from partita.actors._redis import open_redis
from partita.actors._redis_entries import END, decode_entry
from partita.runtime import BatchSizer, Graph, run_graph

WINDOWED = (
    "SELECT k, COUNT(*) AS n, SUM(v) AS total, window_start FROM t "
    "GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"
)


def records(n: int, keys: int = 13) -> list[dict[str, int]]:
    """``n`` records in event-time order: ``k`` cycles through ``keys`` keys."""
    return [{"k": i % keys, "ts": i * 10, "v": i} for i in range(n)]


def write(path: Path, rows: list[dict[str, int]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def partita(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partita", *args], capture_output=True, text=True, timeout=timeout
    )


def produce(
    url: str, rows: list[dict[str, int]], *, partitions: int = 4, keep_open: bool = False
) -> None:
    """``rows`` into topic ``t`` by ``k``, in this process, as ``partita produce`` does
    (no records and no ``keep_open``: the end markers only)."""

    async def main() -> None:
        graph = Graph()
        source = graph.add(IterableSource("source", rows, sizer=BatchSizer.fixed(8192)))
        sink = RedisStreamSink("sink", url, "t", partitions=partitions, key="k",
                               close=not keep_open)  # fmt: skip
        graph.add(sink, inputs=[source])
        await run_graph(graph)

    trio.run(main)


def members(url: str, topic: str = "t", group: str = "default") -> list[str]:
    """The group's members (their heartbeats, expired or not)."""
    from partita.actors._leases import members_key

    async def read() -> list[str]:
        async with open_redis(url) as client:
            return sorted(m.decode() for m in await client.hkeys(members_key(topic, group)))

    return trio.run(read)


def expected(sql: str, rows: list[dict[str, int]]) -> Counter[str]:
    """The multiset of rows an in-process run of ``sql`` over ``rows`` gives."""
    run = trio.run(run_sql, sql, rows)
    return multiset(run.rows)


def multiset(rows: list[dict[str, Any]]) -> Counter[str]:
    return Counter(json.dumps(r, sort_keys=True) for r in rows)


@attrs.define
class Output:
    rows: list[dict[str, Any]]
    ended: int  # output partitions with their end marker


def read_output(url: str, topic: str, output: str, partitions: int) -> Output:
    """Every row the workers committed to ``output``, partition after partition."""

    async def read() -> Output:
        rows: list[dict[str, Any]] = []
        ended = 0
        async with open_redis(url) as client:
            for p in range(partitions):
                for entry in await client.xrange(output_key(topic, p, output)):
                    got = decode_entry(entry.field_values)
                    if got is None:
                        assert END in entry.field_values
                        ended += 1
                    else:
                        rows.extend(got)
        return Output(rows, ended)

    return trio.run(read)


def partitions_done(url: str, topic: str, group: str, partitions: int) -> list[int]:
    """The partitions whose last commit says ``done``."""

    async def read() -> list[int]:
        async with open_redis(url) as client:
            found = []
            for p in range(partitions):
                committed = await load_committed(client, topic, group, p)
                if committed is not None and committed.done:
                    found.append(p)
            return found

    return trio.run(read)


def commits_made(url: str, topic: str, group: str, partitions: int) -> int:
    """Partitions with at least one commit."""

    async def read() -> int:
        async with open_redis(url) as client:
            n = 0
            for p in range(partitions):
                n += await load_committed(client, topic, group, p) is not None
            return n

    return trio.run(read)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@attrs.define
class Workers:
    """Worker processes of one job, stopped (killed) at the end of the test."""

    url: str
    sql: str = WINDOWED
    topic: str = "t"
    output: str = "o"
    lease_ms: int = 1000
    extra: tuple[str, ...] = ()
    log_dir: Path | None = None
    procs: dict[str, subprocess.Popen[str]] = attrs.Factory(dict)

    def start(self, name: str, *extra: str) -> subprocess.Popen[str]:
        args = [
            sys.executable, "-m", "partita", "worker", "--redis", self.url,
            "--topic", self.topic, "--output-topic", self.output, "--sql", self.sql,
            "--name", name, "--lease-ms", str(self.lease_ms),
            "--checkpoint-interval", "100ms", "--no-progress", *self.extra, *extra,
        ]  # fmt: skip
        assert self.log_dir is not None
        log = open(self.log_dir / f"{name}-{len(self.procs)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, text=True)
        self.procs[name] = proc
        return proc

    def wait(self, name: str, timeout: float = 30) -> int:
        return self.procs[name].wait(timeout=timeout)

    def stderr(self, name: str) -> str:
        assert self.log_dir is not None
        logs = sorted(self.log_dir.glob(f"{name}-*.log"))
        return logs[-1].read_text() if logs else ""

    def signal(self, name: str, signum: int) -> None:
        self.procs[name].send_signal(signum)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait(timeout=10)


def owners(url: str, partitions: int, topic: str = "t", group: str = "default") -> dict[int, str]:
    """Partition -> the worker holding a live lease on it."""
    from partita.actors._leases import LeaseTable, wall_clock_ms

    async def read() -> dict[int, str]:
        async with open_redis(url) as client:
            table = LeaseTable(client, topic, group, "probe", partitions)
            return {p: w for p, (w, _) in (await table.owners(wall_clock_ms())).items()}

    return trio.run(read)
