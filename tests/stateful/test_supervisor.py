"""A running supervised graph under random pause / resume / crash / cancel, against a model.

The graph: a source fed by the machine → a router that sends each record to
partition ``key % 3`` → three partition actors → a merge → a slow sink (it
sleeps a quarter of a virtual second per batch, so mailboxes fill and
backpressure reaches the source).  The machine sends records, pauses and
resumes the graph or one actor (with and without timeouts), injects an
exception into an actor's next batch, lets virtual time pass, and cancels
gracefully or hard.  Checked at every step: per partition, the sink holds a
prefix of what was sent (nothing lost in the middle, nothing duplicated, in
order); pause flags and the graph state follow the model, timers included; a
paused graph makes no progress, even when new input arrives.  Checked at the
end: a completed run delivered every record handed over exactly once and every
counter agrees; restarts
follow the policy's intensity (replayed on the log of real crashes), and
exceeding it failed the graph with ``RestartIntensityExceeded`` caused by the
injected error; every actor ended; no task outlived the supervisor.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar, Protocol

import attrs
import pytest
import trio
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from partita.runtime import (
    Actor,
    ActorFailed,
    ActorState,
    Batch,
    BatchSizer,
    Graph,
    Record,
    RestartIntensityExceeded,
    RestartPolicy,
    Sink,
    Source,
    Strategy,
    Supervisor,
    open_supervisor,
)
from partita.runtime._actor import cell_of

from ._feed import Feed
from ._trio_machine import TrioPortal, live_tasks, machine_settings, run_machine

S = ActorState
PARTITIONS = 3
CAPACITY = 2
SINK_DELAY = 0.25
MAX_RESTARTS = 3
WITHIN = 5.0
NAMES = ("source", "router", "p0", "p1", "p2", "merge", "sink")
ENDED = (S.COMPLETED, S.FAILED, S.CANCELLED)


class Crash(Exception):
    """The injected error."""


@attrs.define(eq=False)
class CrashLog:
    """Every injected crash that really happened: (virtual time, actor, error)."""

    entries: list[tuple[float, str, Crash]] = attrs.Factory(list)


class Crashable(Protocol):
    name: str
    crash_next: Crash | None
    crash_log: CrashLog


def crash_point(actor: Crashable) -> None:
    """Raise the injected error, if any, once."""
    error = actor.crash_next
    if error is not None:
        actor.crash_next = None
        actor.crash_log.entries.append((trio.current_time(), actor.name, error))
        raise error


@attrs.define(eq=False)
class FeedSource(Source):
    feed: Feed = attrs.field(kw_only=True)
    crash_log: CrashLog = attrs.field(kw_only=True)
    crash_next: Crash | None = attrs.field(init=False, default=None)
    position: int = attrs.field(init=False, default=0)

    async def produce(self) -> None:
        while True:
            await self.feed.wait_beyond(self.position)
            if self.position >= len(self.feed.records):
                return
            crash_point(self)
            chunk = self.feed.records[self.position : self.position + self.batch_size]
            self.position += len(chunk)
            await self.send_records(chunk)


@attrs.define(eq=False)
class Router(Actor):
    crash_log: CrashLog = attrs.field(kw_only=True)
    crash_next: Crash | None = attrs.field(init=False, default=None)

    def on_batch(self, batch: Batch) -> None:
        parts: list[list[Record]] = [[] for _ in range(self.outputs)]
        for record in batch.records:
            parts[record["k"] % self.outputs].append(record)
        for i, part in enumerate(parts):
            self.emit(part, output=i)
        crash_point(self)  # after emitting: a restart must discard the outbox


@attrs.define(eq=False)
class Forward(Actor):
    crash_log: CrashLog = attrs.field(kw_only=True)
    crash_next: Crash | None = attrs.field(init=False, default=None)

    def on_batch(self, batch: Batch) -> None:
        self.emit_batch(batch)
        crash_point(self)


@attrs.define(eq=False)
class Collect(Sink):
    crash_log: CrashLog = attrs.field(kw_only=True)
    crash_next: Crash | None = attrs.field(init=False, default=None)
    rows: list[Record] = attrs.field(init=False, factory=list)

    async def consume(self, batch: Batch) -> None:
        crash_point(self)
        await trio.sleep(SINK_DELAY)
        self.rows.extend(batch.records)


def partition_prefixes_hold(sent: list[Record], got: list[Record]) -> bool:
    """Per partition, ``got`` is a prefix of ``sent``: nothing lost before, nothing twice."""
    for p in range(PARTITIONS):
        expected = [r["seq"] for r in sent if r["k"] % PARTITIONS == p]
        seen = [r["seq"] for r in got if r["k"] % PARTITIONS == p]
        if seen != expected[: len(seen)]:
            return False
    return True


def escalation(entries: list[tuple[float, str, Crash]]) -> int | None:
    """The reference intensity rule: the index of the crash that must fail the graph."""
    window: deque[float] = deque()
    for index, (when, _, _) in enumerate(entries):
        while window and window[0] <= when - WITHIN:
            window.popleft()
        if len(window) >= MAX_RESTARTS:
            return index
        window.append(when)
    return None


class SupervisorMachine(RuleBasedStateMachine):
    strategy: ClassVar[Strategy] = Strategy.ONE_FOR_ONE
    partition: ClassVar[type[Forward]] = Forward

    def __init__(self, portal: TrioPortal) -> None:
        super().__init__()
        self.portal = portal
        self.baseline = portal.call(live_tasks)
        self.feed = Feed()
        self.log = CrashLog()
        graph = Graph()
        log = self.log
        sizer = BatchSizer(minimum=1, maximum=4, initial=2)
        self.source = FeedSource("source", feed=self.feed, crash_log=log, sizer=sizer)
        graph.add(self.source)
        self.router = Router("router", crash_log=log)
        graph.add(self.router, inputs=[self.source], capacity=CAPACITY)
        parts = [self.partition(f"p{i}", crash_log=log) for i in range(PARTITIONS)]
        for part in parts:
            graph.add(part, inputs=[self.router], capacity=CAPACITY)
        self.merge = Forward("merge", crash_log=log)
        graph.add(self.merge, inputs=parts, capacity=CAPACITY)
        self.sink = Collect("sink", crash_log=log)
        graph.add(self.sink, inputs=[self.merge], capacity=CAPACITY)
        self.graph = graph
        self.actors: dict[str, Any] = {a.name: a for a in graph}
        self.error: BaseException | None = None
        self.host_done = False
        self.supervisor: Supervisor = portal.start(self._host)
        # The model.
        self.seq = 0
        self.ended = False
        self.graph_paused = False
        self.paused = dict.fromkeys(NAMES, False)
        self.timers: dict[str | None, float] = {}
        self.stopped_by_cancel = False
        self.steps = 0

    async def _host(self, task_status: trio.TaskStatus[Supervisor]) -> None:
        policy = RestartPolicy(self.strategy, max_restarts=MAX_RESTARTS, within=WITHIN)
        try:
            async with open_supervisor(self.graph, restart=policy) as supervisor:
                task_status.started(supervisor)
        except ActorFailed as exc:
            self.error = exc
        finally:
            self.host_done = True

    # ---------------------------------------------------------------- model
    def _resume_model(self, key: str | None) -> None:
        self.timers.pop(key, None)
        if key is None:
            self.graph_paused = False
            self.paused = dict.fromkeys(NAMES, False)
        else:
            self.paused[key] = False

    def _fire_timers(self, until: float) -> None:
        for key, when in sorted(self.timers.items(), key=lambda kv: kv[1]):
            if when <= until:
                self._resume_model(key)

    def _sync(self) -> None:
        """After a rule that may have ended the graph: notice it, run the end checks."""
        if not self.ended and self.portal.call(lambda: self.host_done):
            self.ended = True
            self._final_checks()

    @property
    def running(self) -> bool:
        return not self.ended

    @property
    def may_end(self) -> bool:
        """Ending rules wait a while, so that most runs get somewhere first."""
        return self.running and self.steps >= 25

    def _snapshot(self) -> tuple[Any, ...]:
        def take() -> tuple[Any, ...]:
            stats = self.supervisor.stats()
            # Not the source's own counters: a paused source may cut one batch from new
            # input (and hold it); nothing may leave it.
            counters = tuple(
                (a.name, a.rows_in, a.rows_out, a.batches_in, a.items_buffered)
                for a in stats.actors
                if a.name != "source"
            )
            inboxes = tuple(
                (box.sent, box.received)
                for box in (cell_of(a).inbox for a in self.graph)
                if box is not None
            )
            return (counters, inboxes, len(self.sink.rows))

        return self.portal.call(take)

    # ---------------------------------------------------------------- rules
    @precondition(lambda self: self.running and not self.feed.closed)
    @rule(keys=st.lists(st.integers(0, 8), min_size=1, max_size=12))
    def send(self, keys: list[int]) -> None:
        self._send(keys)

    def _send(self, keys: list[int]) -> None:
        records = [{"k": k, "seq": self.seq + i} for i, k in enumerate(keys)]
        self.seq += len(keys)
        self.portal.call(lambda: self.feed.push(records))
        self._sync()

    @precondition(lambda self: self.running)
    @rule(
        target_name=st.sampled_from((None, *NAMES)),
        timeout=st.sampled_from((None, 0.5, 2.0, 7.5)),
    )
    def pause(self, target_name: str | None, timeout: float | None) -> None:
        now = self.portal.now
        self.portal.call(lambda: self.supervisor.pause(target_name, timeout=timeout))
        if target_name is None:
            self.graph_paused = True
            self.paused = dict.fromkeys(NAMES, True)
        else:
            self.paused[target_name] = True
        if timeout is None:
            self.timers.pop(target_name, None)
        else:
            self.timers[target_name] = now + timeout
        self._sync()

    @precondition(lambda self: self.running)
    @rule(target_name=st.sampled_from((None, *NAMES)))
    def resume(self, target_name: str | None) -> None:
        self.portal.call(lambda: self.supervisor.resume(target_name))
        self._resume_model(target_name)
        self._sync()

    @precondition(lambda self: self.running)
    @rule(
        target_name=st.sampled_from(NAMES),
        keys=st.lists(st.integers(0, 8), max_size=6),
    )
    def crash(self, target_name: str, keys: list[int]) -> None:
        """Inject an error into the actor's next batch (and maybe send some records)."""
        actor = self.actors[target_name]
        error = Crash(f"injected into {target_name}")
        self.portal.call(lambda: setattr(actor, "crash_next", error))
        self._sync()
        if keys and self.running and not self.feed.closed:
            self._send(keys)

    @precondition(lambda self: self.running)
    @rule(
        seconds=st.sampled_from((0.25, 1.0, 3.0, 12.0)),
        keys=st.lists(st.integers(0, 8), max_size=4),
    )
    def let_time_pass(self, seconds: float, keys: list[int]) -> None:
        """Let virtual time pass; if the whole graph stays paused, nothing may move,
        not even when new input arrives (``keys``) while it is paused."""
        now = self.portal.now
        horizon = now + SINK_DELAY + seconds
        still = all(self.paused.values()) and all(t > horizon for t in self.timers.values())
        if still:
            # Let the batch the sink is in the middle of finish, then nothing may move.
            self.portal.sleep(SINK_DELAY)
            before = self._snapshot()
            if keys and not self.feed.closed:
                self._send(keys)
            self.portal.sleep(seconds)
            assert self.portal.call(lambda: self.host_done) is False
            assert self._snapshot() == before, "a paused graph made progress"
        else:
            self.portal.sleep(seconds)
        self._fire_timers(self.portal.now)
        self._sync()

    @precondition(lambda self: self.may_end and not self.feed.closed)
    @rule()
    def close_feed(self) -> None:
        self.portal.call(self.feed.close)
        self._sync()

    @precondition(lambda self: self.may_end)
    @rule(deadline=st.sampled_from((None, 0.5, 5.0, 1000.0, "hard")))
    def cancel(self, deadline: float | str | None) -> None:
        """Cancel gracefully (with or without a deadline), or hard."""
        if deadline is not None:
            self._disarm()  # a crash racing a hard cancel is another story
        self.stopped_by_cancel = True
        if deadline == "hard":
            self.portal.run(lambda: self.supervisor.cancel(graceful=False))
            self._sync()
            assert self.ended
            assert self.supervisor.state in (S.CANCELLED, S.FAILED)
            if self.supervisor.state is S.CANCELLED:
                assert all(a.state in (S.CANCELLED, S.COMPLETED) for a in self.graph)
            return
        assert not isinstance(deadline, str)
        self.portal.run(lambda: self.supervisor.cancel(graceful=True, deadline=deadline))
        self._resume_model(None)
        self._sync()
        assert self.ended
        if deadline is None or deadline == 1000.0:
            assert self.supervisor.state in (S.COMPLETED, S.FAILED)

    @precondition(lambda self: self.ended)
    @rule(target_name=st.sampled_from((None, *NAMES)), graceful=st.booleans())
    def control_after_the_end(self, target_name: str | None, graceful: bool) -> None:
        """Pause, resume and cancel on an ended graph change nothing and do not raise."""
        before = self.portal.call(self.supervisor.stats)

        async def poke() -> None:
            self.supervisor.pause(target_name, timeout=1.0)
            self.supervisor.pause(target_name)
            self.supervisor.resume(target_name)
            await self.supervisor.cancel(graceful=graceful, deadline=1.0)

        self.portal.run(poke)
        assert self.portal.call(self.supervisor.stats) == before

    def _disarm(self) -> None:
        def disarm() -> None:
            for actor in self.actors.values():
                actor.crash_next = None

        self.portal.call(disarm)

    # ----------------------------------------------------------- invariants
    @invariant()
    def count_steps(self) -> None:
        self.steps += 1

    @invariant()
    def sink_holds_prefixes(self) -> None:
        rows = self.portal.call(lambda: list(self.sink.rows))
        assert partition_prefixes_hold(self.feed.records, rows)

    @invariant()
    def pause_follows_model(self) -> None:
        if self.ended:
            return

        def look() -> tuple[ActorState, dict[str, bool]]:
            # An actor that ended ignores pause and resume; only live ones are compared.
            live = {n: a.paused for n, a in self.actors.items() if a.state not in ENDED}
            return self.supervisor.state, live

        state, paused = self.portal.call(look)
        assert paused == {n: self.paused[n] for n in paused}
        assert state is (S.PAUSED if self.graph_paused else S.RUNNING)

    @invariant()
    def stats_agree(self) -> None:
        def look() -> None:
            stats = self.supervisor.stats()
            assert stats.state is self.supervisor.state
            for actor in stats.actors:
                assert actor.state is self.actors[actor.name].state
                assert 0 <= actor.items_buffered <= CAPACITY
                assert actor.rows_in >= 0 and actor.rows_out >= 0
            assert 1 <= stats["source"].batch_size <= 4  # type: ignore[operator]
            if not self.ended:
                crashes = len(self.log.entries)
                assert stats.restarts == crashes
                assert escalation(self.log.entries) is None

        self.portal.call(look)

    # ------------------------------------------------------------------ end
    def teardown(self) -> None:
        try:
            if not self.ended:

                async def finish() -> None:
                    self.supervisor.resume()
                    for name in NAMES:
                        self.supervisor.resume(name)
                    self.feed.close()
                    await self.supervisor.wait()

                self.portal.run(finish)
                self._sync()
        finally:
            if not self.portal.call(lambda: self.host_done):
                self.portal.run(lambda: self.supervisor.cancel(graceful=False))

    def _final_checks(self) -> None:
        def look() -> dict[str, Any]:
            return {
                "state": self.supervisor.state,
                "stats": self.supervisor.stats(),
                "states": {a.name: a.state for a in self.graph},
                "leftover": live_tasks() - self.baseline,
                "rows": list(self.sink.rows),
                "position": self.source.position,
            }

        seen = self.portal.call(look)
        state = seen["state"]
        stats = seen["stats"]
        assert seen["leftover"] == set(), "tasks outlived the supervisor"
        assert all(s in ENDED for s in seen["states"].values())
        assert state in ENDED
        assert (state is S.FAILED) == (self.error is not None)
        rows: list[Record] = seen["rows"]
        assert partition_prefixes_hold(self.feed.records, rows)

        entries = self.log.entries
        escalated = escalation(entries)
        if escalated is None:
            assert self.error is None
            assert stats.restarts == len(entries)
        else:
            assert isinstance(self.error, RestartIntensityExceeded)
            _, name, error = entries[escalated]
            assert self.error.actor == name
            assert self.error.__cause__ is error
            assert self.error.error is error
            assert stats.restarts == escalated
        if self.strategy is Strategy.ONE_FOR_ONE:
            limit = len(entries) if escalated is None else escalated
            for actor in self.graph:
                crashes = sum(1 for _, n, _ in entries[:limit] if n == actor.name)
                assert stats[actor.name].restarts == crashes

        if state is S.COMPLETED:
            handed_over = self.feed.records[: seen["position"]]
            if not self.stopped_by_cancel:
                assert len(handed_over) == len(self.feed.records)
            assert sorted(r["seq"] for r in rows) == [r["seq"] for r in handed_over]
            n = len(handed_over)
            assert stats["source"].rows_out == n
            assert stats["router"].rows_in == stats["router"].rows_out == n
            assert sum(stats[f"p{i}"].rows_in for i in range(PARTITIONS)) == n
            assert sum(stats[f"p{i}"].rows_out for i in range(PARTITIONS)) == n
            assert stats["merge"].rows_in == stats["merge"].rows_out == n
            assert stats["sink"].rows_in == stats["sink"].rows_out == n
            assert stats.items_buffered == 0
            assert stats.memory_in_use == 0


class OneForAllMachine(SupervisorMachine):
    strategy = Strategy.ONE_FOR_ALL


@attrs.define(eq=False)
class StutteringPartition(Forward):
    """Broken on purpose: after a restart it forwards its first batch twice."""

    stuttered: bool = attrs.field(init=False, default=False)

    def on_batch(self, batch: Batch) -> None:
        super().on_batch(batch)
        if self.restarts and not self.stuttered:
            self.stuttered = True
            self.emit_batch(batch)


class StutteringMachine(SupervisorMachine):
    partition = StutteringPartition


def test_supervisor_machine_one_for_one() -> None:
    run_machine(SupervisorMachine, settings=machine_settings(steps=40))


def test_supervisor_machine_one_for_all() -> None:
    run_machine(OneForAllMachine, settings=machine_settings(steps=40))


def test_supervisor_machine_catches_a_stuttering_restart() -> None:
    settings = machine_settings(share=1.0, steps=30, phases=[Phase.generate], database=None)
    with pytest.raises(AssertionError):
        run_machine(StutteringMachine, settings=settings)
