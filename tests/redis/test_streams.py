"""RedisStreamSource and RedisStreamSink against a real redis-server."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
import trio

from partita import ActorFailed, RedisError, RedisStreamSink, RedisStreamSource
from partita.actors import IterableSource
from partita.actors._redis import decode_entry, open_redis, partition_key, partition_of
from partita.runtime import (
    BatchSizer,
    Checkpointing,
    Graph,
    MemoryCheckpointStore,
    open_supervisor,
)
from partita.runtime import run_graph as run_supervised
from partita.sql import stable_hash
from tests.actors.helpers import HeldSink, collect

from .conftest import RedisServer

GUARD = 20


async def write(url: str, topic: str, records: list[dict[str, Any]], **options: Any) -> None:
    graph = Graph()
    source = IterableSource("src", records, sizer=BatchSizer.fixed(options.pop("batch", 100)))
    graph.add(source)
    graph.add(RedisStreamSink("sink", url, topic, **options), inputs=[source])
    with trio.fail_after(GUARD):
        await run_supervised(graph)


async def test_round_trip_by_key_ends_every_partition(redis_server: RedisServer) -> None:
    records = [{"k": i % 7, "n": i} for i in range(1000)]
    await write(redis_server.url, "t", records, partitions=3, key="k")
    with trio.fail_after(GUARD):
        rows, _ = await collect(RedisStreamSource("in", redis_server.url, "t"))
    assert sorted(rows, key=lambda r: r["n"]) == records
    async with open_redis(redis_server.url) as client:
        for p in range(3):
            entries = await client.xrange(partition_key("t", p))
            assert decode_entry(entries[-1].field_values) is None  # the end marker
            for e in entries[:-1]:
                assert all(partition_of(r["k"], 3) == p for r in decode_entry(e.field_values))


async def connections(url: str) -> int:
    async with open_redis(url) as client:
        info = await client.info("stats")
    return int(info["total_connections_received"])


async def test_the_sink_writes_every_batch_over_one_connection(redis_server: RedisServer) -> None:
    """50 batches, and unhashable or mixed key values routed as the in-process router does."""
    records = [{"k": [i % 3] if i % 10 == 0 else i % 7, "n": i} for i in range(1000)]
    records[1]["k"] = 1.0  # the partition of 1
    before = await connections(redis_server.url)
    await write(redis_server.url, "t", records, partitions=3, key="k", batch=20)
    assert await connections(redis_server.url) - before <= 2  # the sink's (and this count's)
    async with open_redis(redis_server.url) as client:
        for p in range(3):
            for e in (await client.xrange(partition_key("t", p)))[:-1]:
                assert all(partition_of(r["k"], 3) == p for r in decode_entry(e.field_values))
    with trio.fail_after(GUARD):
        rows, _ = await collect(RedisStreamSource("in", redis_server.url, "t"))
    assert sorted(rows, key=lambda r: r["n"]) == records


def test_partition_of_is_stable() -> None:
    # pinned: the in-process router's stable hash, the same in every process
    assert partition_of("user-42", 8) == stable_hash("user-42") % 8 == 5
    assert partition_of(1, 8) == partition_of(1.0, 8)  # as SQL groups them


async def test_other_partition_count_is_refused(redis_server: RedisServer) -> None:
    await write(redis_server.url, "t", [{"k": 1}], partitions=2, key="k")
    with pytest.raises(ActorFailed) as failed:
        await write(redis_server.url, "t", [{"k": 1}], partitions=3, key="k")
    assert "topic 't' has 2 partitions, not 3" in str(failed.value.error)


async def test_unreachable_names_the_url() -> None:
    with pytest.raises(ActorFailed) as failed, trio.fail_after(GUARD):
        await collect(RedisStreamSource("in", "redis://127.0.0.1:1", "t"))
    error = failed.value.error
    assert isinstance(error, RedisError)
    assert str(error).startswith("Redis at redis://127.0.0.1:1: cannot connect")


async def test_bad_entries_by_policy(redis_server: RedisServer) -> None:
    async with open_redis(redis_server.url) as client:
        await client.hset("partita:topic:{t}", {"partitions": "1"})
        key = partition_key("t", 0)
        await client.xadd(key, {b"r": msgpack.packb([{"a": 1}])})
        await client.xadd(key, {b"r": b"\xc1"})
        await client.xadd(key, {b"x": b"1"})
        await client.xadd(key, {b"r": msgpack.packb([{"a": 2}])})
        await client.xadd(key, {b"end": b""})
    with trio.fail_after(GUARD):
        rows, stats = await collect(RedisStreamSource("in", redis_server.url, "t"))
    assert rows == [{"a": 1}, {"a": 2}]
    assert stats.rows_errored == 2
    with pytest.raises(ActorFailed) as failed:
        await collect(RedisStreamSource("in", redis_server.url, "t", on_error="fail"))
    assert "partition 0 entry" in str(failed.value.error)


async def test_resume_from_a_checkpointed_entry_id(redis_server: RedisServer) -> None:
    records = [{"k": i % 5, "n": i} for i in range(2000)]
    await write(redis_server.url, "t", records, partitions=2, key="k", batch=50)
    store = MemoryCheckpointStore()
    checkpoints = Checkpointing(store=store, fingerprint="redis-test")

    def job(hold_at: int | None) -> tuple[Graph, HeldSink]:
        source = RedisStreamSource("in", redis_server.url, "t", sizer=BatchSizer.fixed(256))
        sink = HeldSink("sink", hold_at=hold_at)
        graph = Graph()
        graph.add(source)
        graph.add(sink, inputs=[source], capacity=2)
        return graph, sink

    graph, sink = job(hold_at=10)
    with trio.fail_after(GUARD):
        async with open_supervisor(graph, checkpoints=checkpoints) as sup:
            await sup.checkpoint()
            await sink.held.wait()
            await sup.cancel(graceful=False)
    assert 0 < len(sink.rows) < 2000
    graph, sink = job(hold_at=None)
    with trio.fail_after(GUARD):
        await run_supervised(graph, checkpoints=checkpoints)
    # the sink's rows are restored from the checkpoint too: every record once
    assert sorted(sink.rows, key=lambda r: r["n"]) == records
