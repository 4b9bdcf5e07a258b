"""``partita worker`` processes on a real redis-server: scale-out, kills, zombies, restarts.

Every test compares the output topic with an in-process run of the same query
over the same records (the multiset of rows), and waits on conditions it
polls in Redis or the processes, never on a fixed sleep.  The failure tests
produce the topic in two halves: the first left open, so the job is
certainly mid-run (committed state, windows open, no end) when the failure
comes; the second, with the end markers, after it.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from partita.actors._leases import LeaseTable, wall_clock_ms
from partita.actors._redis import open_redis

from .conftest import RedisServer, start_redis
from .workers import (
    WINDOWED,
    Workers,
    commits_made,
    expected,
    members,
    multiset,
    partita,
    produce,
    read_output,
    records,
    wait_until,
    write,
)

pytestmark = pytest.mark.slow

PARTITIONS = 4
HALF = 10_000


@pytest.fixture
def workers(redis_server: RedisServer, tmp_path: Path) -> Iterator[Workers]:
    job = Workers(redis_server.url, log_dir=tmp_path)
    yield job
    job.stop_all()


def _exact(url: str, rows: list[dict[str, int]], sql: str = WINDOWED) -> None:
    out = read_output(url, "t", "o", PARTITIONS)
    assert out.ended == PARTITIONS
    assert multiset(out.rows) == expected(sql, rows)


def _halves(url: str) -> tuple[list[dict[str, int]], list[dict[str, int]]]:
    """Produce the first half (left open); return all the records and the second half."""
    rows = records(2 * HALF)
    produce(url, rows[:HALF], keep_open=True)
    return rows, rows[HALF:]


def _all_committed(url: str) -> bool:
    return commits_made(url, "t", "default", PARTITIONS) == PARTITIONS


def _counted(what: str, log: str) -> int:
    """The ``N <what>`` counts of the workers' last lines, summed."""
    return sum(int(n) for n in re.findall(rf"(\d+) {what}", log))


def _owners(url: str) -> set[str]:
    async def owners() -> set[str]:
        async with open_redis(url) as client:
            table = LeaseTable(client, "t", "default", "probe", PARTITIONS)
            held = await table.owners(wall_clock_ms())
            return {worker for worker, _ in held.values()}

    return trio.run(owners)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_one_two_three_workers_give_the_same_output(
    workers: Workers, tmp_path: Path, count: int
) -> None:
    rows = records(2 * HALF)
    if count == 1:
        done = partita("produce", "--redis", workers.url, "--topic", "t", "--partitions",
                       str(PARTITIONS), "--key", "k", "--input",
                       str(write(tmp_path / "in.jsonl", rows)))  # fmt: skip
        assert done.returncode == 0, done.stderr
    else:
        produce(workers.url, rows)
    names = [f"w{i}" for i in range(count)]
    for name in names:
        workers.start(name)
    for name in names:
        assert workers.wait(name) == 0, workers.stderr(name)
    _exact(workers.url, rows)
    if count == 1:
        consumed = partita("consume", "--redis", workers.url, "--topic", "o", "--from-start",
                           "--until-end")  # fmt: skip
        assert consumed.returncode == 0, consumed.stderr
        got = [json.loads(line) for line in consumed.stdout.splitlines()]
        assert multiset(got) == expected(WINDOWED, rows)


def test_sigkill_mid_run_and_restart_loses_and_doubles_nothing(workers: Workers) -> None:
    url = workers.url
    rows, second = _halves(url)
    workers.start("a")
    workers.start("b")
    wait_until(lambda: _all_committed(url), 30, "a commit of every partition")
    workers.signal("a", signal.SIGKILL)
    workers.wait("a")
    produce(url, second)
    workers.start("a")  # the same name: it takes its leases back at once
    assert workers.wait("a") == 0, workers.stderr("a")
    assert workers.wait("b") == 0, workers.stderr("b")
    _exact(url, rows)


def test_a_stopped_worker_is_fenced_when_it_comes_back(workers: Workers) -> None:
    url = workers.url
    rows, second = _halves(url)
    workers.start("zombie")
    wait_until(lambda: _all_committed(url), 30, "a commit of every partition")
    workers.signal("zombie", signal.SIGSTOP)
    produce(url, second)  # the zombie's pipelines will find it when they wake up
    workers.start("other")  # takes every partition once the zombie's leases expire
    assert workers.wait("other") == 0, workers.stderr("other")
    workers.signal("zombie", signal.SIGCONT)
    assert workers.wait("zombie") == 0, workers.stderr("zombie")
    assert _counted("lost", workers.stderr("zombie")) == PARTITIONS
    _exact(url, rows)


def test_redis_restarted_mid_run(tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = start_redis(folder, persistence=True)
    job = Workers(server.url, log_dir=tmp_path)
    try:
        rows, second = _halves(server.url)
        job.start("a")
        job.start("b")
        wait_until(lambda: _all_committed(server.url), 30, "a commit of every partition")
        server.process.terminate()  # SIGTERM: redis-server writes its AOF and exits
        server.process.wait(timeout=10)
        # An outage the workers must see: a restart alone can be shorter than every
        # worker's next command (coredis then reconnects unseen and nothing retries).
        # This is the outage's length, not a wait for a result.
        time.sleep(2.0)
        server = start_redis(folder, persistence=True, port=server.port)
        produce(server.url, second)
        assert job.wait("a") == 0, job.stderr("a")
        assert job.wait("b") == 0, job.stderr("b")
        assert _counted("Redis retries", job.stderr("a") + job.stderr("b")) >= 1
        _exact(server.url, rows)
    finally:
        job.stop_all()
        server.process.terminate()
        server.process.wait(timeout=10)


def test_a_joining_worker_takes_partitions_within_the_bound(workers: Workers) -> None:
    url = workers.url
    # a 3 s lease: a worker stalled a second by a loaded machine must not lose its
    # leases (then they expire instead of being handed over, and the count below fails)
    workers.lease_ms = 3000
    rows, second = _halves(url)
    workers.start("first")
    wait_until(lambda: _all_committed(url), 30, "a commit of every partition")
    assert _owners(url) == {"first"}
    workers.start("second")
    wait_until(lambda: "second" in members(url), 30, "the joiner's first heartbeat")
    joined = time.monotonic()
    # the bound of docs/operations.md: two heartbeat ticks (lease_ms / 5 each) and one
    # hand-over (at most max(2 s, lease_ms)); 4.2 s here, plus slack for a loaded machine
    wait_until(lambda: _owners(url) == {"first", "second"}, 10, "a lease of the joiner")
    took = time.monotonic() - joined
    produce(url, second)
    assert workers.wait("first") == 0, workers.stderr("first")
    assert workers.wait("second") == 0, workers.stderr("second")
    assert took < 4.2 + 2.0, took
    assert _counted("handed over", workers.stderr("first")) == PARTITIONS // 2
    _exact(url, rows)


def test_sigterm_hands_over_and_exits_promptly(workers: Workers) -> None:
    url = workers.url
    rows, second = _halves(url)
    workers.start("a")
    workers.start("b")
    wait_until(lambda: _owners(url) == {"a", "b"}, 30, "both workers owning partitions")
    wait_until(lambda: _all_committed(url), 30, "a commit of every partition")
    asked = time.monotonic()
    workers.signal("a", signal.SIGTERM)
    assert workers.wait("a", timeout=10) == 143
    assert time.monotonic() - asked < 5
    assert "handing the partitions over" in workers.stderr("a")
    assert _counted("handed over", workers.stderr("a")) >= 1  # what it owned at the stop
    produce(url, second)
    assert workers.wait("b") == 0, workers.stderr("b")
    _exact(url, rows)


def test_a_grouping_the_topic_does_not_keep_together_is_one_line(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    produce(redis_server.url, records(100))
    done = partita("worker", "--redis", redis_server.url, "--topic", "t", "--output-topic", "o",
                   "--sql", "SELECT v, COUNT(*) AS n FROM t GROUP BY v")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "partita: the query groups by v but topic 't' is partitioned by 'k': "
        "produce it again with --key v"
    )
