"""Checkpoints of a running graph under random input, pause / resume, crashes and cancels.

The graph: two sources the machine feeds (``a`` and ``b``) → a merge with two
inputs (the actor whose barriers must align) → a sink, all with state: each
source its read position, the merge the set of records it has seen, the sink
how many rows it holds.  The machine sends records to either source, asks for
checkpoints (each in a task of its own, so several may wait), pauses and
resumes any actor, crashes the merge or the sink on their next batch (the
restart policy restarts them), lets virtual time pass and cancels, gracefully
or at once.

Invariant, at every step, over every committed checkpoint: it is a consistent
cut.  With source positions ``pa`` and ``pb``, the merge has seen exactly the
first ``pa`` records of ``a`` and the first ``pb`` of ``b``, and the sink holds
``pa + pb`` rows; committed ids increase; a checkpoint asked for completes
unless the graph ended first.  ``NonAligningMerge`` is broken on purpose (it
handles what an input sends behind a barrier before the barrier aligned): the
machine must catch it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import pytest
import trio
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from partita.runtime import (
    Actor,
    ActorFailed,
    Barrier,
    Batch,
    BatchSizer,
    CheckpointError,
    Checkpointing,
    Graph,
    MemoryCheckpointStore,
    RestartPolicy,
    Sink,
    Source,
    Supervisor,
    decode_state,
    open_supervisor,
)
from partita.runtime._cell import ActorCell

from ._feed import Feed
from ._trio_machine import TrioPortal, machine_settings, run_machine

NAMES = ("a", "b", "merge", "sink")
CAPACITY = 2


class Crash(Exception):
    """The injected error."""


@attrs.define(eq=False)
class FeedSource(Source):
    feed: Feed = attrs.field(kw_only=True)
    position: int = attrs.field(init=False, default=0)
    resumable: ClassVar[bool] = True

    async def produce(self) -> None:
        while True:
            await self.feed.wait_beyond(self.position)
            if self.position >= len(self.feed.records):
                return
            chunk = self.feed.records[self.position : self.position + self.batch_size]
            self.position += len(chunk)
            await self.send_records(chunk)

    def snapshot_state(self) -> object:
        return self.position


@attrs.define(eq=False)
class Merge(Actor):
    seen: set[tuple[str, int]] = attrs.field(init=False, factory=set)
    crash_next: bool = attrs.field(init=False, default=False)

    def on_batch(self, batch: Batch) -> None:
        if self.crash_next:
            self.crash_next = False
            raise Crash(self.name)
        self.seen |= {(r["src"], r["seq"]) for r in batch.records}
        self.emit_batch(batch)

    def snapshot_state(self) -> object:
        return frozenset(self.seen)


@attrs.define(eq=False)
class _NonAligningCell(ActorCell):
    """Broken on purpose: an input that delivered a barrier is not held back."""

    def _input_barrier(self, port: int, barrier: Barrier) -> None:
        super()._input_barrier(port, barrier)
        self.blocked.clear()


@attrs.define(eq=False)
class NonAligningMerge(Merge):
    _cell_type: ClassVar[type[ActorCell]] = _NonAligningCell


@attrs.define(eq=False)
class Count(Sink):
    rows: int = attrs.field(init=False, default=0)
    crash_next: bool = attrs.field(init=False, default=False)

    async def consume(self, batch: Batch) -> None:
        if self.crash_next:
            self.crash_next = False
            raise Crash(self.name)
        await trio.sleep(0.25)  # virtual time (MockClock): mailboxes fill, barriers queue
        self.rows += len(batch.records)

    def snapshot_state(self) -> object:
        return self.rows


class CheckpointMachine(RuleBasedStateMachine):
    merge_type: ClassVar[type[Merge]] = Merge

    def __init__(self, portal: TrioPortal) -> None:
        super().__init__()
        self.portal = portal
        self.feeds = {"a": Feed(), "b": Feed()}
        sizer = {"minimum": 1, "maximum": 3, "initial": 2}
        graph = Graph()
        sources = [
            graph.add(FeedSource(name, feed=self.feeds[name], sizer=BatchSizer(**sizer)))
            for name in ("a", "b")
        ]
        self.merge = graph.add(self.merge_type("merge"), inputs=sources, capacity=CAPACITY)
        self.sink = graph.add(Count("sink"), inputs=[self.merge], capacity=CAPACITY)
        self.graph = graph
        self.store = MemoryCheckpointStore(keep=1000)
        self.asked = 0
        self.committed: list[int] = []
        self.refused = 0
        self.host_done = False
        self.error: BaseException | None = None
        self.sent = {"a": 0, "b": 0}
        self.checked: set[int] = set()
        self.supervisor: Supervisor = portal.start(self._host)
        self.ended = False

    async def _host(self, task_status: trio.TaskStatus[Supervisor]) -> None:
        options = Checkpointing(store=self.store)
        policy = RestartPolicy(max_restarts=1000, within=1.0)
        try:
            async with open_supervisor(
                self.graph, checkpoints=options, restart=policy
            ) as supervisor:
                task_status.started(supervisor)
        except ActorFailed as exc:  # never expected: the policy restarts everything
            self.error = exc
        finally:
            self.host_done = True

    async def _take(self) -> None:
        try:
            self.committed.append(await self.supervisor.checkpoint())
        except CheckpointError:
            self.refused += 1

    def _sync(self) -> None:
        if self.portal.call(lambda: self.host_done):
            self.ended = True

    # ---------------------------------------------------------------- rules
    @precondition(lambda self: not self.ended)
    @rule(source=st.sampled_from(("a", "b")), n=st.integers(1, 5))
    def send(self, source: str, n: int) -> None:
        start = self.sent[source]
        records = [{"src": source, "seq": start + i} for i in range(n)]
        self.sent[source] += n
        self.portal.call(lambda: self.feeds[source].push(records))
        self._sync()

    @precondition(lambda self: not self.ended)
    @rule()
    def checkpoint(self) -> None:
        self.asked += 1
        self.portal.call(lambda: self.portal.nursery.start_soon(self._take))
        self._sync()

    @precondition(lambda self: not self.ended)
    @rule(name=st.sampled_from((None, *NAMES)))
    def pause(self, name: str | None) -> None:
        self.portal.call(lambda: self.supervisor.pause(name))

    @precondition(lambda self: not self.ended)
    @rule(name=st.sampled_from((None, *NAMES)))
    def resume(self, name: str | None) -> None:
        self.portal.call(lambda: self.supervisor.resume(name))
        self._sync()

    @precondition(lambda self: not self.ended)
    @rule(victim=st.sampled_from(("merge", "sink")))
    def crash(self, victim: str) -> None:
        actor: Any = self.merge if victim == "merge" else self.sink
        self.portal.call(lambda: setattr(actor, "crash_next", True))

    @rule(seconds=st.sampled_from((0.1, 0.5, 2.0)))
    def wait(self, seconds: float) -> None:
        self.portal.sleep(seconds)
        self._sync()

    @precondition(lambda self: not self.ended)
    @rule(graceful=st.booleans())
    def cancel(self, graceful: bool) -> None:
        for feed in self.feeds.values():
            self.portal.call(feed.close)
        self.portal.call(lambda: self.supervisor.resume())
        self.portal.run(lambda: self.supervisor.cancel(graceful=graceful))
        self._sync()
        assert self.ended

    # ----------------------------------------------------------- invariants
    @invariant()
    def every_committed_checkpoint_is_a_consistent_cut(self) -> None:
        async def check() -> None:
            ids = list(await self.store.retained())
            assert ids == sorted(set(ids))
            latest = await self.store.latest()
            if latest is None or latest.id in self.checked:
                return
            self.checked.add(latest.id)
            parts = {name: decode_state(blob) for name, blob in latest.parts.items()}
            if not parts:  # the end's "complete" marker
                return
            assert sorted(parts) == sorted(NAMES)
            pa: Any = parts["a"]
            pb: Any = parts["b"]
            positions = {"a": pa["state"], "b": pb["state"]}
            expected = {(src, i) for src, n in positions.items() for i in range(n)}
            merge: Any = parts["merge"]
            sink: Any = parts["sink"]
            assert merge["state"] == expected, (positions, sorted(merge["state"]))
            assert sink["state"] == len(expected)
            assert merge["counts"][0] == len(expected)  # rows_in, at the cut

        self.portal.run(check)

    @invariant()
    def nothing_failed(self) -> None:
        assert self.error is None, self.error

    @invariant()
    def ids_are_handed_out_once(self) -> None:
        assert len(self.committed) == len(set(self.committed))
        assert self.committed == sorted(self.committed)

    def teardown(self) -> None:
        if not self.ended:
            for feed in self.feeds.values():
                self.portal.call(feed.close)
            self.portal.call(lambda: self.supervisor.resume())
            self.portal.run(self.supervisor.wait)
        self.portal.sleep(1)  # the checkpoint tasks still waiting end
        assert len(self.committed) + self.refused == self.asked


class NonAligningMachine(CheckpointMachine):
    merge_type = NonAligningMerge


def test_checkpoint_machine() -> None:
    run_machine(CheckpointMachine, settings=machine_settings(steps=40))


def test_checkpoint_machine_catches_a_merge_that_does_not_align() -> None:
    settings = machine_settings(share=1.0, steps=40, phases=[Phase.generate], database=None)
    with pytest.raises(AssertionError):
        run_machine(NonAligningMachine, settings=settings)
