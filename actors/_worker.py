"""Workers: processes sharing the partitions of a Redis Streams topic.

A :class:`Worker` of consumer group ``G`` runs a query over topic ``T`` into
output topic ``O``.  Every ``lease_ms / 5`` it heartbeats (membership of the
group), renews its leases, and compares what it owns with its fair share of
the partitions among the live members (:func:`actors._leases.fair_share`):

- a partition in its share that it does not own: it acquires the lease (free,
  released, or expired), which bumps the partition's fencing token, and starts
  the partition's pipeline (:class:`PartitionPipeline`), which resumes from the
  partition's last commit;
- a partition it owns that is no longer in its share (a worker joined): it
  hands it over at a checkpoint boundary (drain to a barrier, commit, stop)
  and releases the lease, so the new owner acquires it at once;
- a lease it could not renew (taken over while this worker was stopped): the
  pipeline is dropped without another write; its commits were refused anyway.

With nothing to own it waits as a standby.  A bounded topic ends: each
partition's pipeline commits ``done`` (with the output partition's end
marker), and the worker returns once every partition is done.  A graceful
stop (:meth:`Worker.stop`, SIGTERM or Ctrl-C in ``partita worker``) hands
every partition over at once and leaves the group.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from typing import Any

import attrs
import trio
from sqlglot import exp

from partita.runtime import (
    ActorState,
    ActorStats,
    Duration,
    GraphStats,
    OnError,
    PartitaError,
    check_on_error,
    parse_duration_ms,
)
from partita.sql import CompiledQuery, compile_query

from ._leases import Lease, LeaseTable, fair_share, load_committed, wall_clock_ms
from ._redis import RedisError, _describe, meta_key, open_redis, topic_partitions
from ._sources import single_error
from ._worker_output import Delivery, _check_delivery
from ._worker_pipeline import PartitionPipeline, PipelineConfig
from ._worker_retry import RedisRetry

__all__ = [
    "PartitioningMismatch",
    "Worker",
    "WorkerStats",
    "check_partitioning",
    "default_worker_name",
]

_TICKS_PER_LEASE = 5


def default_worker_name() -> str:
    """``host-pid``: unique among the processes of a group."""
    return f"{socket.gethostname()}-{os.getpid()}"


class PartitioningMismatch(PartitaError, ValueError):
    """Raised when a query's groups would be split across partitions by the topic's key."""


def check_partitioning(query: CompiledQuery, topic: str, partitions: int, key: str | None) -> None:
    """Refuse a query whose groups a topic's partitioning would split across workers.

    A stateless query runs on any topic, and any query on a one-partition topic.
    A GROUP BY or window query needs the topic partitioned by one of its GROUP BY
    columns, so that every group lives in one partition.

    Example:
        >>> q = compile_query("SELECT k, COUNT(*) AS n FROM t GROUP BY k")
        >>> check_partitioning(q, "t", 4, "k")
        >>> check_partitioning(q, "t", 4, "user")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        partita.actors._worker.PartitioningMismatch: the query groups by k but topic 't' is ...

    Raises:
        PartitioningMismatch: the topic is partitioned by something else (or by nothing).
    """
    if not query.keyed or partitions == 1:
        return
    columns = [g.name for g in query.plan.group_keys if isinstance(g, exp.Column)]
    if key is not None and key in columns:
        return
    groups = ", ".join(g.sql() for g in query.plan.group_keys) or "nothing (one global group)"
    how = f"partitioned by {key!r}" if key is not None else "not partitioned by a key field"
    fix = (
        f"produce it again with --key {columns[0]}" if columns else "produce it with --partitions 1"
    )
    raise PartitioningMismatch(f"the query groups by {groups} but topic {topic!r} is {how}: {fix}")


def _ms(value: Duration, what: str) -> int:
    ms = parse_duration_ms(value, what)
    if ms <= 0:
        raise ValueError(f"{what} must be > 0, got {value!r}")
    return ms


@attrs.frozen
class WorkerStats:
    """A snapshot of a worker (:meth:`Worker.stats`).

    Attributes:
        name: the worker's name in its group.
        state: ``"starting"``, ``"standby"`` (owns nothing), ``"running"``,
            ``"stopping"``, ``"done"`` (every partition done) or ``"stopped"``.
        partitions: the topic's partition count.
        members: the live members of the group, at the last heartbeat.
        owned: the partitions this worker runs now.
        done: the partitions known to be done (input ended, last commit made).
        acquired, handed_over, lost: leases taken, given up on a rebalance or
            stop, and found taken over, since the start.
        commits: fenced commits made.
        records: input records the pipelines read since this worker started.
        rows_out: result rows the pipelines made since this worker started.
        redis_unavailable: whether a call is waiting for Redis now.
        redis_retries: calls to Redis retried since the start.
        last_redis_error: the last failure retried.
        graph: the pipelines' stats as one graph (``source`` sums their sources;
            ``partition-<p>`` is topic partition ``p``'s program).
    """

    name: str
    state: str
    partitions: int
    members: tuple[str, ...]
    owned: tuple[int, ...]
    done: tuple[int, ...]
    acquired: int
    handed_over: int
    lost: int
    commits: int
    records: int
    rows_out: int
    redis_unavailable: bool
    redis_retries: int
    last_redis_error: str | None
    graph: GraphStats


def _merged(pipelines: list[tuple[int, GraphStats]], state: ActorState) -> GraphStats:
    """Every pipeline's stats as one graph's: one ``source``, ``partition-<p>`` per partition."""
    actors: list[ActorStats] = []
    sources = [s["source"] for _, s in pipelines]
    if sources:
        actors.append(
            attrs.evolve(
                sources[0],
                rows_in=sum(s.rows_in for s in sources),
                rows_out=sum(s.rows_out for s in sources),
                rows_errored=sum(s.rows_errored for s in sources),
                batches_in=sum(s.batches_in for s in sources),
            )
        )
    for p, stats in pipelines:
        actors += [
            attrs.evolve(a, name=f"partition-{p}") for a in stats.actors if a.name == "partition-0"
        ]
    checkpoints = [s.checkpoint for _, s in pipelines if s.checkpoint is not None]
    return GraphStats(
        state=state,
        actors=tuple(actors),
        memory_in_use=sum(s.memory_in_use for _, s in pipelines),
        max_memory=None,
        restarts=sum(s.restarts for _, s in pipelines),
        checkpoint=max(checkpoints, key=lambda c: c.committed_at) if checkpoints else None,
    )


@attrs.define(eq=False)
class Worker:
    """One worker of a group running ``sql`` over a topic's partitions (see the module docstring).

    Example:
        >>> import trio
        >>> from partita import Worker
        >>> worker = Worker(
        ...     "redis://127.0.0.1:6379", "orders",
        ...     "SELECT k, SUM(v) AS total FROM t GROUP BY k", "totals", lease_ms=2000,
        ... )
        >>> worker.lease_ms, worker.delivery
        (2000, 'exactly-once')
        >>> # trio.run(worker.run)  -- until every partition of 'orders' is done

    Args:
        url: ``redis://host:port[/db]``.
        topic: the input topic (``partita produce``).
        sql: the query (text, or a :class:`sql.CompiledQuery`).
        output_topic: where the result rows go (read it with ``partita consume``).
        group: the consumer group: workers of one group share the partitions;
            its state (positions, windows) is the group's.
        name: this worker's name in the group (default ``host-pid``); a worker
            restarted under the same name takes its leases back at once.
        lease_ms: how long a lease lasts without renewal (a dead worker's
            partitions move after at most this long).
        checkpoint_interval: between commits of a partition (a duration).
        delivery: ``"exactly-once"`` (rows go out with the commits) or
            ``"at-least-once"`` (at once, each with ``_partition`` and ``_offset``).
        on_error: a bad input entry: ``"skip"``, ``"dead-letter"``, ``"fail"``.
        max_pending_rows: a partition commits early once this many rows wait.
        clock: wall-clock milliseconds, shared by the group's workers.
    """

    url: str
    topic: str
    sql: str | CompiledQuery
    output_topic: str
    group: str = attrs.field(default="default", kw_only=True)
    name: str = attrs.field(factory=default_worker_name, kw_only=True)
    lease_ms: int = attrs.field(default=10_000, kw_only=True, validator=attrs.validators.ge(100))
    checkpoint_interval: Duration = attrs.field(default="1s", kw_only=True)
    delivery: Delivery = attrs.field(
        default="exactly-once", kw_only=True, validator=_check_delivery
    )
    on_error: OnError = attrs.field(default="skip", kw_only=True)
    max_pending_rows: int = attrs.field(
        default=100_000, kw_only=True, validator=attrs.validators.ge(1)
    )
    clock: Callable[[], int] = attrs.field(default=wall_clock_ms, kw_only=True)
    retry: RedisRetry = attrs.field(factory=RedisRetry, kw_only=True)
    _query: CompiledQuery = attrs.field(init=False)
    _state: str = attrs.field(init=False, default="starting")
    _partitions: int = attrs.field(init=False, default=0)
    _members: tuple[str, ...] = attrs.field(init=False, default=())
    _pipelines: dict[int, PartitionPipeline] = attrs.field(init=False, factory=dict)
    _done: set[int] = attrs.field(init=False, factory=set)
    _acquired: int = attrs.field(init=False, default=0)
    _handed_over: int = attrs.field(init=False, default=0)
    _lost: int = attrs.field(init=False, default=0)
    _commits: int = attrs.field(init=False, default=0)
    _rows_out: int = attrs.field(init=False, default=0)
    _records: int = attrs.field(init=False, default=0)
    _stopping: bool = attrs.field(init=False, default=False)
    _paused: bool = attrs.field(init=False, default=False)
    _wake: trio.Event = attrs.field(init=False, factory=trio.Event)
    _loop: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)
    _interval_s: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        check_on_error(self.on_error)
        self._interval_s = _ms(self.checkpoint_interval, "checkpoint_interval") / 1000
        self._query = self.sql if isinstance(self.sql, CompiledQuery) else compile_query(self.sql)
        if not self.name:
            raise ValueError("a worker's name must not be empty")

    @property
    def query(self) -> CompiledQuery:
        return self._query

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Stop gracefully: hand every partition over (checkpoint, release), leave the group."""
        self._stopping = True
        self._state = "stopping"
        self._loop.cancel()  # even a call waiting for Redis to come back

    def pause(self) -> None:
        """Pause every pipeline, and those started later, at its next batch boundary (leases
        are still renewed)."""
        self._paused = True
        for pipeline in self._pipelines.values():
            pipeline.pause()

    def resume(self) -> None:
        self._paused = False
        for pipeline in self._pipelines.values():
            pipeline.resume()

    def stats(self) -> WorkerStats:
        live = [
            (p, s) for p, pl in sorted(self._pipelines.items()) if (s := pl.stats()) is not None
        ]
        running = ActorState.PAUSED if self._paused else ActorState.RUNNING
        graph_state = ActorState.COMPLETED if self._state in ("done", "stopped") else running
        return WorkerStats(
            name=self.name,
            state=self._state,
            partitions=self._partitions,
            members=self._members,
            owned=tuple(sorted(self._pipelines)),
            done=tuple(sorted(self._done)),
            acquired=self._acquired,
            handed_over=self._handed_over,
            lost=self._lost,
            commits=self._commits + sum(pl.store.commits for pl in self._pipelines.values()),
            records=self._records + sum(pl.counts()[0] for pl in self._pipelines.values()),
            rows_out=self._rows_out + sum(pl.counts()[1] for pl in self._pipelines.values()),
            redis_unavailable=self.retry.unavailable,
            redis_retries=self.retry.retries,
            last_redis_error=self.retry.last_error,
            graph=_merged(live, graph_state),
        )

    # ------------------------------------------------------------------ running
    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> WorkerStats:
        """Work until every partition is done or :meth:`stop`; return the final stats.

        Raises:
            RedisError: the topic does not exist, or the output topic is another's.
            PartitioningMismatch: the query's grouping does not fit the topic's partitioning.
            runtime.ActorFailed: a pipeline failed (``on_error="fail"`` and a bad entry).
        """
        try:
            async with open_redis(self.url) as client:
                table = await self._join(client)
                async with trio.open_nursery() as nursery:
                    task_status.started()
                    await self._coordinate(client, table, nursery)
                    nursery.cancel_scope.cancel()  # what a bounded stop left running
        except BaseExceptionGroup as group:
            error = single_error(group)
            if error is group:
                raise
            raise error from None
        finally:
            if self._state != "done":
                self._state = "stopped"
        return self.stats()

    async def _join(self, client: Any) -> LeaseTable:
        """Check the topics and the query; the worker's lease table."""
        server = _describe(self.url)
        meta = meta_key(self.topic)
        n = await self.retry.call(lambda: topic_partitions(client, self.topic), what=f"HGET {meta}")
        if n is None:
            raise RedisError(server, f"no topic {self.topic!r} (partita produce makes it)")
        key = await self.retry.call(lambda: client.hget(meta, "key"), what=f"HGET {meta}")
        check_partitioning(self._query, self.topic, n, None if key is None else key.decode())
        out = meta_key(self.output_topic)

        async def claim() -> tuple[Any, Any]:
            if await client.hget(out, "partitions") is None:  # a new topic: it is ours
                await client.hsetnx(out, "source", self.topic)
                await client.hsetnx(out, "partitions", str(n))
            return await client.hget(out, "partitions"), await client.hget(out, "source")

        have_n, source = await self.retry.call(claim, what=f"HSETNX {out}")
        if int(have_n) != n or source is None or source.decode() != self.topic:
            whose = "not made by workers" if source is None else f"written from {source.decode()!r}"
            raise RedisError(
                server,
                f"output topic {self.output_topic!r} is {whose} with {int(have_n)} partitions: "
                "choose another --output-topic",
            )
        self._partitions = n
        return LeaseTable(client, self.topic, self.group, self.name, n, self.lease_ms)

    def _config(self) -> PipelineConfig:
        return PipelineConfig(
            query=self._query,
            topic=self.topic,
            group=self.group,
            output_topic=self.output_topic,
            delivery=self.delivery,
            on_error=self.on_error,
            interval_s=self._interval_s,
            max_pending_rows=self.max_pending_rows,
            hand_over_timeout_s=max(2.0, self.lease_ms / 1000),
        )

    async def _coordinate(self, client: Any, table: LeaseTable, nursery: trio.Nursery) -> None:
        tick = self.lease_ms / _TICKS_PER_LEASE / 1000
        config = self._config()
        with self._loop:
            await self._work(client, table, nursery, config, tick)
        with trio.move_on_after(self._config().hand_over_timeout_s + 1):
            await self._leave(table)

    async def _work(
        self,
        client: Any,
        table: LeaseTable,
        nursery: trio.Nursery,
        config: PipelineConfig,
        tick: float,
    ) -> None:
        retry, n = self.retry, self._partitions
        while not self._stopping:
            self._wake = trio.Event()
            now = self.clock()
            self._members = await retry.call(
                functools.partial(table.heartbeat, now), what="heartbeat"
            )
            await self._renew(table, nursery)
            await self._reap(table)
            if self._stopping:
                break
            share = fair_share(self._members, n, self.name) - self._done
            for p, pipeline in list(self._pipelines.items()):
                if p not in share and not pipeline.handing_over:
                    nursery.start_soon(self._hand_over, table, pipeline)
            for p in sorted(share - set(self._pipelines)):
                await self._acquire(client, table, nursery, config, p)
            await self._learn_done(client)
            if len(self._done) == n:
                self._state = "done"
                break
            self._state = "running" if self._pipelines else "standby"
            with trio.move_on_after(tick):
                await self._wake.wait()

    async def _renew(self, table: LeaseTable, nursery: trio.Nursery) -> None:
        for p, pipeline in list(self._pipelines.items()):
            if pipeline.ended.is_set():
                continue
            now = self.clock()
            lease = pipeline.lease
            renewed = await self.retry.call(
                functools.partial(table.renew, lease, now), what=f"renew {p}"
            )
            if renewed is None:
                pipeline.lost = True
                nursery.start_soon(pipeline.drop)
            else:
                pipeline.lease = renewed

    async def _reap(self, table: LeaseTable) -> None:
        """Pipelines that ended: done ones are released and remembered, lost ones forgotten."""
        for p, pipeline in list(self._pipelines.items()):
            if not pipeline.ended.is_set() or pipeline.handing_over:
                continue
            del self._pipelines[p]
            self._retire(pipeline)
            if pipeline.done:
                self._done.add(p)
            if not pipeline.lost:
                lease = pipeline.lease
                await self.retry.call(functools.partial(table.release, lease), what=f"release {p}")

    async def _acquire(
        self, client: Any, table: LeaseTable, nursery: trio.Nursery, config: PipelineConfig, p: int
    ) -> None:
        now = self.clock()
        lease: Lease | None = await self.retry.call(
            functools.partial(table.acquire, p, now), what=f"acquire {p}"
        )
        if lease is None:
            return  # still held: its owner hands it over, or it expires
        committed = await self.retry.call(
            lambda: load_committed(client, self.topic, self.group, p), what=f"state of {p}"
        )
        if committed is not None and committed.done:
            self._done.add(p)
            await self.retry.call(functools.partial(table.release, lease), what=f"release {p}")
            return
        self._acquired += 1
        pipeline = PartitionPipeline.build(config, client, lease, self.retry)
        if self._paused:
            pipeline.pause()
        self._pipelines[p] = pipeline
        nursery.start_soon(self._run_pipeline, pipeline)

    async def _run_pipeline(self, pipeline: PartitionPipeline) -> None:
        await pipeline.run()
        self._wake.set()

    async def _hand_over(self, table: LeaseTable, pipeline: PartitionPipeline) -> None:
        await pipeline.hand_over()
        p = pipeline.partition
        self._pipelines.pop(p, None)
        self._retire(pipeline)
        if pipeline.done:
            self._done.add(p)
        if not pipeline.lost:
            lease = pipeline.lease
            await self.retry.call(functools.partial(table.release, lease), what=f"release {p}")
            self._handed_over += 1
        self._wake.set()

    def _retire(self, pipeline: PartitionPipeline) -> None:
        """A pipeline leaves the worker: keep what it counted."""
        self._commits += pipeline.store.commits
        self._lost += pipeline.lost
        records, rows = pipeline.counts()
        self._records += records
        self._rows_out += rows

    async def _learn_done(self, client: Any) -> None:
        """Which partitions others finished (so every worker knows when the job is done)."""
        if self._pipelines:
            return  # still working: look when idle
        for p in range(self._partitions):
            if p not in self._done and await self._is_done(client, p):
                self._done.add(p)

    async def _is_done(self, client: Any, p: int) -> bool:
        committed = await self.retry.call(
            lambda: load_committed(client, self.topic, self.group, p), what=f"state of {p}"
        )
        return committed is not None and committed.done

    async def _leave(self, table: LeaseTable) -> None:
        """Hand every partition over at once, then leave the group."""
        async with trio.open_nursery() as nursery:
            for pipeline in list(self._pipelines.values()):
                if not pipeline.handing_over:
                    nursery.start_soon(self._hand_over, table, pipeline)
        while self._pipelines:  # hand-overs started before the stop
            self._wake = trio.Event()
            await self._wake.wait()
        await self.retry.call(table.leave, what="leave")
