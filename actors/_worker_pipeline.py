"""One owned partition's pipeline in a worker: partition stream → the query's program → output.

The pipeline is the SQL graph of ``run_sql`` with one partition
(:func:`actors.build_sql_graph`): source (:class:`PartitionStreamSource`), router
(the query's routing stage: event time and watermark of this partition alone),
``partition-0`` (the query's partition program), merge, and the output sink
(:class:`PartitionOutputSink`), with the dead-letter stream when the query or
the source keep dead letters.  It runs under the usual supervisor, with
aligned-barrier checkpoints into the partition's :class:`PartitionStore`:
recovery reads the last commit (state restored, the source reads on from its
position), a checkpoint is the fenced commit.

Checkpoints are taken every ``interval`` and whenever the rows waiting for a
commit reach ``max_pending_rows`` (so nothing waits without bound); at the end
of the input the runtime commits the last one, with ``done`` and the output's
end marker.  :meth:`PartitionPipeline.hand_over` is a hand-over at a checkpoint
boundary: stop checkpointing, take one more checkpoint (drain to the barrier,
commit), then cancel what came after it (its rows were never committed; the
next owner makes them again from the committed position).
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from partita.runtime import (
    ActorState,
    CheckpointError,
    Checkpointing,
    GraphStats,
    OnError,
    Supervisor,
    SupervisorOptions,
    open_supervisor,
)
from partita.sql import CompiledQuery

from ._checkpoints import fingerprint
from ._leases import Lease, output_key
from ._redis import partition_key
from ._sqlgraph import build_sql_graph
from ._worker_output import (
    Delivery,
    PartitionOutputSink,
    RedisDeadLetterSink,
    dead_letter_key,
)
from ._worker_retry import RedisRetry
from ._worker_source import PartitionStreamSource
from ._worker_store import LeaseLost, PartitionStore

__all__ = ["PartitionPipeline", "PipelineConfig"]


@attrs.frozen(kw_only=True)
class PipelineConfig:
    """What every pipeline of one worker shares (the worker's options)."""

    query: CompiledQuery
    topic: str
    group: str
    output_topic: str
    delivery: Delivery = "exactly-once"
    on_error: OnError = "skip"
    interval_s: float = 1.0
    max_pending_rows: int = 100_000
    block_ms: int = 100
    hand_over_timeout_s: float = 10.0


@attrs.define(eq=False)
class PartitionPipeline:
    """The pipeline of one partition the worker owns (see the module docstring).

    Example:
        >>> pipeline = PartitionPipeline.build(config, client, lease, retry)  # doctest: +SKIP
        >>> await nursery.start(pipeline.run)  # doctest: +SKIP
    """

    lease: Lease
    store: PartitionStore
    source: PartitionStreamSource
    sink: PartitionOutputSink
    config: PipelineConfig
    _options: SupervisorOptions
    _graph: Any
    supervisor: Supervisor | None = attrs.field(init=False, default=None)
    lost: bool = attrs.field(init=False, default=False)
    handing_over: bool = attrs.field(init=False, default=False)
    ended: trio.Event = attrs.field(init=False, factory=trio.Event)
    _periodic: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)
    _scope: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)
    _final: GraphStats | None = attrs.field(init=False, default=None)
    _graph_ended: bool = attrs.field(init=False, default=False)
    _paused: bool = attrs.field(init=False, default=False)

    @classmethod
    def build(
        cls, config: PipelineConfig, client: Any, lease: Lease, retry: RedisRetry
    ) -> PartitionPipeline:
        """The graph of partition ``lease.partition`` and its store, ready to run."""
        p, topic = lease.partition, config.topic
        source = PartitionStreamSource(
            "source",
            client,
            topic,
            p,
            partition_key(topic, p),
            retry,
            on_error=config.on_error,
            block_ms=config.block_ms,
        )
        sink = PartitionOutputSink(
            "sink",
            client,
            output_key(topic, p, config.output_topic),
            p,
            retry,
            mode=config.delivery,
        )
        query = config.query
        dead = None
        if query.options.dead_letters or config.on_error == "dead-letter":
            dead = RedisDeadLetterSink(
                "dead-letter", client, dead_letter_key(topic, p, config.group), retry
            )
        graph, _ = build_sql_graph(query, source, sink, partitions=1, dead_letter=dead)
        store = PartitionStore(
            client, topic, config.group, config.output_topic, lease, retry, source=source, sink=sink
        )
        checkpoints = Checkpointing(
            store=store,
            interval=None,
            fingerprint=f"{fingerprint(query, 1, source)} | group={config.group} "
            f"output={config.output_topic} delivery={config.delivery}",
        )
        options = SupervisorOptions(checkpoints=checkpoints)
        return cls(lease, store, source, sink, config, options, graph)

    @property
    def partition(self) -> int:
        return self.lease.partition

    @property
    def done(self) -> bool:
        """Whether the partition's input ended and its last commit (``done``) went through."""
        return self.store.done

    def stats(self) -> GraphStats | None:
        """The pipeline's graph stats (``None`` before it started)."""
        if self._final is not None:
            return self._final
        return None if self.supervisor is None else self.supervisor.stats()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Recover, run to the end of the input (or a hand-over, or a lost lease).

        Raises:
            runtime.ActorFailed: an actor of the pipeline failed (``on_error="fail"``).
        """
        started = False
        try:
            with self._scope:  # cancelled by drop() before the supervisor exists
                async with open_supervisor(self._graph, self._options) as supervisor:
                    self.supervisor = supervisor
                    if self._paused:  # paused before it started
                        supervisor.pause()
                    task_status.started()
                    started = True
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._checkpoint_periodically)
                        await supervisor.wait()
                        # not cancelled: a checkpoint in flight finishes its commit first
                        self._graph_ended = True
        except* LeaseLost:
            self.lost = True
        finally:
            if self.supervisor is not None:
                self._final = self.supervisor.stats()
            self.ended.set()
        if not started:
            task_status.started()

    async def _checkpoint_periodically(self) -> None:
        supervisor = self.supervisor
        assert supervisor is not None
        interval, limit = self.config.interval_s, self.config.max_pending_rows
        poll = min(interval, 0.05)
        with self._periodic:
            deadline = trio.current_time() + interval
            while not (self.handing_over or self._graph_ended):
                await trio.sleep(poll)
                if trio.current_time() < deadline and self.sink.pending_rows < limit:
                    continue
                if self.handing_over or self._graph_ended:
                    return  # never cancelled mid-commit: the hand-over checkpoints next
                if self._changed() and supervisor.state is ActorState.RUNNING:
                    try:
                        await supervisor.checkpoint()
                    except CheckpointError:
                        return  # the input ended: the end of the run commits the last one
                deadline = trio.current_time() + interval

    def _changed(self) -> bool:
        """Whether a commit now would hold anything new (input read or rows made)."""
        return self.source.position != self.source.checkpoint_position or self.sink.pending_rows > 0

    def counts(self) -> tuple[int, int]:
        """Input records read and result rows made by this pipeline (not by earlier owners:
        the counters restored from the last commit are not counted again)."""
        source, sink = self.source, self.sink
        return source.rows_in - source.restored_rows, sink.rows_in - sink.restored_rows

    def pause(self) -> None:
        """Pause at the next batch boundary (or as soon as it starts)."""
        self._paused = True
        if self.supervisor is not None:
            self.supervisor.pause()

    def resume(self) -> None:
        self._paused = False
        if self.supervisor is not None:
            self.supervisor.resume()

    async def hand_over(self) -> None:
        """Checkpoint and stop (the caller then releases the lease); see the module docstring.

        Past ``hand_over_timeout_s`` (Redis unreachable, say) it stops without
        that checkpoint: the next owner starts from the previous commit instead.
        A pipeline still recovering (no supervisor yet) has read nothing since
        that commit: it stops at once.
        """
        self.handing_over = True  # the periodic checkpoints stop (after one in flight)
        supervisor = self.supervisor
        if supervisor is None:
            await self.drop()
            return
        with trio.move_on_after(self.config.hand_over_timeout_s):
            supervisor.resume()
            try:
                if self._changed():
                    await supervisor.checkpoint()
            except CheckpointError:
                await self.ended.wait()  # the input ended: its own last commit is under way
            except LeaseLost:
                self.lost = True
        await self.drop()

    async def drop(self) -> None:
        """Stop now, committing nothing more (a lost lease, or after :meth:`hand_over`)."""
        self._periodic.cancel()
        if self.supervisor is not None:
            await self.supervisor.cancel(graceful=False)
        else:
            self._scope.cancel()  # still recovering, or not started yet
        await self.ended.wait()
