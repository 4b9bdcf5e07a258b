"""A partition's fenced commit when Redis drops the connection mid-call: never twice.

The worker's retry of a commit must not append its output rows again, whatever
Redis did with the first attempt: applied and its reply lost, or still on its
way and applied after the worker's next call (a read-back overtaking it).
A client stands between the store and a real redis-server and plays each case.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import attrs
import coredis.exceptions
import pytest
import trio

from partita.actors._lease_scripts import COMMIT
from partita.actors._leases import Lease, LeaseTable, load_committed, output_key
from partita.actors._redis import decode_entry, open_redis
from partita.actors._worker_output import PartitionOutputSink
from partita.actors._worker_retry import RedisRetry
from partita.actors._worker_store import LeaseLost, PartitionStore
from partita.runtime import Batch, encode_state

from .conftest import RedisServer

GUARD = 20
T0 = 1_700_000_000_000


@attrs.define
class DroppingClient:
    """A coredis client whose first commit script meets a dropped connection.

    ``lost="reply"``: Redis ran the script, its reply never came back.
    ``lost="late"``: the script was still on its way; Redis runs it just after
    answering the worker's next call (whatever that is).  Either way the caller
    sees a reset connection.
    """

    client: Any
    lost: str
    _held: tuple[Any, Any] | None = attrs.field(init=False, default=None)
    _dropped: bool = attrs.field(init=False, default=False)

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.client, name)
        if not callable(real):
            return real

        async def call(*args: Any, **kwargs: Any) -> Any:
            if name == "evalsha" and not self._dropped and "commit" in _script_of(args, kwargs):
                self._dropped = True
                if self.lost == "reply":
                    await real(*args, **kwargs)
                else:
                    self._held = (args, kwargs)
                raise coredis.exceptions.ConnectionError("Connection reset by peer")
            result = await real(*args, **kwargs)
            if self._held is not None:
                held, self._held = self._held, None
                await self.client.evalsha(*held[0], **held[1])
            return result

        return call


def _script_of(args: Any, kwargs: Any) -> str:
    import hashlib

    sha = args[0] if args else kwargs["sha1"]
    return "commit" if sha == hashlib.sha1(COMMIT.encode()).hexdigest() else ""


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Any]:
    async with open_redis(redis_server.url) as client:
        await client.script_load(COMMIT)  # so the commit is one EVALSHA from the first
        yield client


async def owned(client: Any, worker: str = "w") -> Lease:
    table = LeaseTable(client, "t", "g", worker, partitions=1, lease_ms=1000)
    lease = await table.acquire(0, T0)
    assert lease is not None
    return lease


def store_of(client: Any, lease: Lease) -> tuple[PartitionStore, PartitionOutputSink]:
    retry = RedisRetry(first_delay=0.001, max_delay=0.001, seed=0)
    sink = PartitionOutputSink("sink", client, output_key("t", 0, "o"), 0, retry)
    source = SimpleNamespace(position="7-0", checkpoint_position="7-0")
    store = PartitionStore(client, "t", "g", "o", lease, retry, source=source, sink=sink)  # type: ignore[arg-type]
    return store, sink


async def checkpoint(store: PartitionStore, sink: PartitionOutputSink, n: int) -> None:
    sink.snapshot_state()
    await store.stage(n, "sink", b"part")
    await store.commit(n, encode_state({"complete": False}))


async def output_rows(client: Any) -> list[Any]:
    rows: list[Any] = []
    for entry in await client.xrange(output_key("t", 0, "o")):
        rows.extend(decode_entry(entry.field_values) or [])
    return rows


@attrs.define
class Proxy:
    """A TCP proxy to Redis that loses the reply to the first request holding ``marker``.

    It forwards that request, waits for Redis's reply and, instead of passing it
    on, closes both connections: the client sees the connection reset after
    Redis applied the request (and coredis, by its own retry policy, sends it
    again on a new connection).
    """

    upstream: int
    marker: bytes
    port: int = 0
    lost: int = 0

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._relay, listeners)

    async def _relay(self, down: trio.SocketStream) -> None:
        up = await trio.open_tcp_stream("127.0.0.1", self.upstream)
        armed = False
        async with down, up, trio.open_nursery() as nursery:

            async def requests() -> None:
                nonlocal armed
                async for data in down:
                    armed = armed or (self.lost == 0 and self.marker in data)
                    await up.send_all(data)
                nursery.cancel_scope.cancel()

            async def replies() -> None:
                async for data in up:
                    if armed:
                        self.lost += 1
                        break  # the reply is lost with the connection
                    await down.send_all(data)
                nursery.cancel_scope.cancel()

            nursery.start_soon(requests)
            nursery.start_soon(replies)


async def test_a_commit_whose_reply_is_lost_with_the_connection_writes_its_rows_once(
    client: Any, redis_server: RedisServer
) -> None:
    """A real dropped connection: whoever retries (coredis's policy, the worker), once."""
    import hashlib

    sha = hashlib.sha1(COMMIT.encode()).hexdigest().encode()
    proxy = Proxy(redis_server.port, sha)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        async with open_redis(f"redis://127.0.0.1:{proxy.port}") as proxied:
            lease = await owned(proxied)
            store, sink = store_of(proxied, lease)
            await sink.consume(Batch([{"n": 1}, {"n": 2}]))
            with trio.fail_after(GUARD):
                await checkpoint(store, sink, 1)
            assert proxy.lost == 1
            assert await output_rows(client) == [{"n": 1}, {"n": 2}]
            await sink.consume(Batch([{"n": 3}]))
            with trio.fail_after(GUARD):
                await checkpoint(store, sink, 2)
            assert await output_rows(client) == [{"n": 1}, {"n": 2}, {"n": 3}]
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("lost", ["reply", "late"])
async def test_a_commit_retried_after_a_dropped_connection_writes_its_rows_once(
    client: Any, lost: str
) -> None:
    lease = await owned(client)
    store, sink = store_of(DroppingClient(client, lost), lease)
    await sink.consume(Batch([{"n": 1}, {"n": 2}]))
    with trio.fail_after(GUARD):
        await checkpoint(store, sink, 1)
    assert await output_rows(client) == [{"n": 1}, {"n": 2}]
    assert store.retry.retries >= 1 and sink.staged_rows == 0
    committed = await load_committed(client, "t", "g", 0)
    assert committed is not None and committed.token == lease.token
    # the next checkpoint goes out once, after the first
    await sink.consume(Batch([{"n": 3}]))
    with trio.fail_after(GUARD):
        await checkpoint(store, sink, 2)
    assert await output_rows(client) == [{"n": 1}, {"n": 2}, {"n": 3}]


async def test_a_retry_after_a_lost_reply_succeeds_though_the_partition_moved_since(
    client: Any,
) -> None:
    """The commit went through while the lease held: its retry is that success, not fenced."""
    lease = await owned(client, "a")
    dropping = DroppingClient(client, "reply")
    store, sink = store_of(dropping, lease)
    await sink.consume(Batch([{"n": 1}]))

    real = dropping.client.evalsha
    taken: list[Lease] = []

    async def evalsha_then_take_over(*args: Any, **kwargs: Any) -> Any:
        result = await real(*args, **kwargs)
        if not taken:  # b acquires between the lost reply and the retry
            b = LeaseTable(client, "t", "g", "b", partitions=1, lease_ms=1000)
            got = await b.acquire(0, T0 + 5000)
            assert got is not None
            taken.append(got)
        return result

    dropping.client = SimpleNamespace(
        evalsha=evalsha_then_take_over,
        hmget=client.hmget,
        script_load=client.script_load,
        connection_pool=client.connection_pool,
    )
    with trio.fail_after(GUARD):
        await checkpoint(store, sink, 1)
    assert taken and taken[0].token == lease.token + 1
    assert await output_rows(client) == [{"n": 1}]
    # and the zombie's next commit is refused
    await sink.consume(Batch([{"n": 2}]))
    with trio.fail_after(GUARD), pytest.raises(LeaseLost, match="token 1 lost"):
        await checkpoint(store, sink, 2)
    assert await output_rows(client) == [{"n": 1}]
