"""Workers in this process against a real redis-server: the example, delivery modes, errors."""

from __future__ import annotations

import runpy
from pathlib import Path

import attrs
import pytest
import trio

from partita import Worker, WorkerStats, compile_query
from partita.actors import RedisError
from partita.actors._leases import LeaseTable, load_committed, output_key, wall_clock_ms
from partita.actors._redis import encode_entry, open_redis, partition_key
from partita.actors._worker import PartitioningMismatch, check_partitioning
from partita.actors._worker_output import dead_letter_key
from partita.actors._worker_pipeline import PartitionPipeline, PipelineConfig
from partita.actors._worker_retry import RedisRetry
from partita.runtime import ActorState, PartitaError

from .conftest import RedisServer
from .workers import WINDOWED, expected, multiset, owners, produce, read_output, records

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_the_docs_example_two_workers_in_one_process(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = runpy.run_path(str(EXAMPLES / "redis_workers.py"), run_name="example")
    trio.run(namespace["main"], redis_server.url)  # real time: leases are wall-clock
    out = capsys.readouterr().out
    assert "worker-0 done owned at the end: ()" in out
    assert "same as in-process: True" in out


def test_at_least_once_rows_carry_partition_and_offset(redis_server: RedisServer) -> None:
    rows = records(3000)
    produce(redis_server.url, rows)
    worker = Worker(redis_server.url, "t", WINDOWED, "o", lease_ms=500, delivery="at-least-once")
    trio.run(worker.run)
    out = read_output(redis_server.url, "t", "o", 4)
    assert out.ended == 4
    seen = {(r.pop("_partition"), r.pop("_offset")) for r in out.rows}
    assert len(seen) == len(out.rows)  # (partition, offset) names each row once
    assert multiset(out.rows) == expected(WINDOWED, rows)
    assert worker.stats().state == "done"


def test_bad_entries_go_to_the_dead_letter_stream(redis_server: RedisServer) -> None:
    produce(redis_server.url, records(100), keep_open=True)

    async def spoil() -> None:
        async with open_redis(redis_server.url) as client:
            await client.xadd(partition_key("t", 1), {b"r": b"\xc1 not msgpack"})
            await client.xadd(partition_key("t", 1), encode_entry([{"k": 1, "ts": 5000, "v": 9}]))

    trio.run(spoil)
    produce(redis_server.url, [])  # the end markers
    sql = "SELECT k, v FROM t"
    worker = Worker(redis_server.url, "t", sql, "o", lease_ms=500, on_error="dead-letter")
    trio.run(worker.run)
    out = read_output(redis_server.url, "t", "o", 4)
    assert len(out.rows) == 101

    async def letters() -> list[object]:
        async with open_redis(redis_server.url) as client:
            return list(await client.xrange(dead_letter_key("t", 1, "default")))

    (entry,) = trio.run(letters)
    assert b"entry is not msgpack" in entry.field_values[b"r"]


def test_a_missing_topic_and_a_foreign_output_topic_are_errors(redis_server: RedisServer) -> None:
    worker = Worker(redis_server.url, "nope", "SELECT a FROM t", "o", lease_ms=500)
    with pytest.raises(RedisError, match="no topic 'nope'") as raised:
        trio.run(worker.run)
    assert isinstance(raised.value, PartitaError)  # partita's own: one line in every CLI
    produce(redis_server.url, records(10))
    produce_other = Worker(redis_server.url, "t", "SELECT k FROM t", "t", lease_ms=500)
    with pytest.raises(RedisError, match="output topic 't' is not made by workers"):
        trio.run(produce_other.run)


def test_partitioning_rules() -> None:
    keyed = compile_query("SELECT k, COUNT(*) AS n FROM t GROUP BY k")
    check_partitioning(keyed, "t", 4, "k")
    check_partitioning(keyed, "t", 1, None)  # one partition holds every group
    check_partitioning(compile_query("SELECT k FROM t"), "t", 4, None)  # stateless
    with pytest.raises(PartitioningMismatch, match="is not partitioned by a key field"):
        check_partitioning(keyed, "t", 4, None)
    total = compile_query("SELECT COUNT(*) AS n FROM t")
    with pytest.raises(PartitioningMismatch, match=r"groups by nothing.*--partitions 1"):
        check_partitioning(total, "t", 4, "k")


async def test_redis_retry_backs_off_then_succeeds(autojump_clock: trio.abc.Clock) -> None:
    retry = RedisRetry(first_delay=0.1, max_delay=0.4, seed=7)
    failures = [ConnectionError("refused")] * 4

    async def flaky() -> str:
        if failures:
            raise failures.pop()
        return "ok"

    started = trio.current_time()
    assert await retry.call(flaky, what="PING") == "ok"
    assert retry.retries == 4 and not retry.unavailable
    waited = trio.current_time() - started
    assert 0 < waited <= 0.1 + 0.2 + 0.4 + 0.4  # full jitter under 0.1 doubling, capped at 0.4
    assert retry.last_error is not None and "retrying PING" in retry.last_error

    async def broken() -> str:
        raise KeyError("not a connection problem")

    with pytest.raises(KeyError):
        await retry.call(broken, what="GET")


def test_output_keys_share_the_input_partition_hash_tag() -> None:
    assert output_key("t", 3, "o").startswith("{t:3}")
    assert dead_letter_key("t", 3, "g") == "{t:3}:dead:g"


@attrs.define(eq=False)
class _StopWhenAPipelineStarts(trio.abc.Instrument):
    """Stops ``worker`` the moment it spawns a pipeline's task, before that task runs:
    a stop (SIGTERM) just after a lease was taken."""

    worker: Worker
    spawned: int = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("_run_pipeline"):
            self.spawned += 1
            self.worker.stop()


def test_a_stop_just_after_taking_a_lease_hands_it_over_at_once(
    redis_server: RedisServer,
) -> None:
    produce(redis_server.url, records(100), partitions=1, keep_open=True)
    worker = Worker(redis_server.url, "t", WINDOWED, "o", lease_ms=500)
    instrument = _StopWhenAPipelineStarts(worker)

    async def main() -> tuple[WorkerStats, float]:
        trio.lowlevel.add_instrument(instrument)
        started = trio.current_time()
        stats = await worker.run()
        return stats, trio.current_time() - started

    stats, took = trio.run(main)
    assert instrument.spawned == 1
    assert (stats.state, stats.acquired, stats.handed_over) == ("stopped", 1, 1)
    assert owners(redis_server.url, 1) == {}  # released: the next owner need not wait
    assert took < 2.0  # not hand_over_timeout_s (2 s) and more


async def _committed_to_the_end(url: str, partition: int) -> bool:
    """Whether partition ``partition``'s last commit holds its stream's last entry."""
    async with open_redis(url) as client:
        last = await client.xrevrange(partition_key("t", partition), count=1)
        committed = await load_committed(client, "t", "default", partition)
    return committed is not None and committed.position == last[0].identifier.decode()


def test_a_new_owner_counts_only_the_records_it_read(redis_server: RedisServer) -> None:
    rows = records(3000)
    produce(redis_server.url, rows[:1000], partitions=1, keep_open=True)
    first = Worker(redis_server.url, "t", WINDOWED, "o", lease_ms=500, checkpoint_interval="50ms")

    async def run_first() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(first.run)
            with trio.fail_after(30):  # polls the real server, as the process tests do
                while not await _committed_to_the_end(redis_server.url, 0):  # noqa: ASYNC110
                    await trio.sleep(0.05)
            first.stop()

    trio.run(run_first)
    assert first.stats().records == 1000
    produce(redis_server.url, rows[1000:], partitions=1)
    second = Worker(redis_server.url, "t", WINDOWED, "o", lease_ms=500)
    stats = trio.run(second.run)
    assert stats.records == 2000  # read from the first's commit on, not the restored 1000 too
    assert first.stats().rows_out + stats.rows_out == len(
        read_output(redis_server.url, "t", "o", 1).rows
    )
    assert multiset(read_output(redis_server.url, "t", "o", 1).rows) == expected(WINDOWED, rows)


def test_a_paused_pipeline_starts_paused(redis_server: RedisServer) -> None:
    rows = records(100)
    produce(redis_server.url, rows, partitions=1)
    config = PipelineConfig(query=compile_query(WINDOWED), topic="t", group="g", output_topic="o")

    async def main() -> tuple[int, int]:
        async with open_redis(redis_server.url) as client:
            lease = await LeaseTable(client, "t", "g", "w", 1).acquire(0, wall_clock_ms())
            assert lease is not None
            pipeline = PartitionPipeline.build(config, client, lease, RedisRetry())
            pipeline.pause()
            async with trio.open_nursery() as nursery:
                await nursery.start(pipeline.run)
                assert pipeline.supervisor is not None
                assert pipeline.supervisor.state is ActorState.PAUSED
                pipeline.resume()
            assert pipeline.done
            return pipeline.counts()

    assert trio.run(main) == (100, sum(expected(WINDOWED, rows).values()))
