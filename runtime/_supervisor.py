"""The supervisor: runs a graph of actors in one nursery and looks after them."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import attrs
import trio

from ._actor import Actor, cell_of
from ._cell import ActorCell
from ._errors import ActorFailed, ConsumerGone, RestartIntensityExceeded
from ._graph import Graph
from ._lifecycle import ActorState, Lifecycle
from ._mailbox import Mailbox
from ._memory import MemoryBudget
from ._source import SourceCell
from ._stats import GraphStats

__all__ = ["RestartPolicy", "Strategy", "Supervisor", "open_supervisor", "run_graph"]

_S = ActorState


class Strategy(enum.Enum):
    """Which actors restart when one crashes (as in Erlang/OTP)."""

    ONE_FOR_ONE = "one_for_one"
    """Only the actor that crashed."""
    ONE_FOR_ALL = "one_for_all"
    """Every actor still running."""


@attrs.frozen
class RestartPolicy:
    """Restart crashed actors, at most ``max_restarts`` times within ``within`` seconds.

    One crash more than that escalates: the graph fails with the original error
    (:class:`RestartIntensityExceeded`, whose ``__cause__`` it is).  A restarted
    actor runs :meth:`Actor.on_start` again and handles the message it crashed
    on again; its mailbox and what it already sent are kept.

    Example:
        >>> from partita import Strategy
        >>> RestartPolicy(Strategy.ONE_FOR_ONE, max_restarts=3, within=5.0)
        RestartPolicy(strategy=<Strategy.ONE_FOR_ONE: 'one_for_one'>, max_restarts=3, within=5.0)
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    max_restarts: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    within: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))


class _StartedOnce(trio.TaskStatus[None]):
    """Passes the first ``started()`` on: an actor that crashes after it started, or
    starts again after a restart, must not tell its nursery twice."""

    __slots__ = ("_status",)

    def __init__(self, status: trio.TaskStatus[None]) -> None:
        self._status: trio.TaskStatus[None] | None = status

    def started(self, value: None = None) -> None:
        if self._status is not None:
            status, self._status = self._status, None
            status.started()


@attrs.define(eq=False)
class _Run:
    """Per-actor bookkeeping of the supervisor."""

    actor: Actor
    cell: ActorCell
    scope: trio.CancelScope | None = None
    restart_requested: bool = False


@attrs.define(eq=False)
class Supervisor:
    """Owns a running graph.  Get one from :func:`open_supervisor`.

    Control (:meth:`pause`, :meth:`resume`) is a flag on the actors, not a
    message, so it never queues behind data: it takes effect at each actor's
    next batch boundary even when every mailbox is full.
    """

    graph: Graph
    restart: RestartPolicy | None = None
    budget: MemoryBudget | None = None
    _life: Lifecycle = attrs.field(init=False, factory=lambda: Lifecycle("graph"))
    _runs: dict[str, _Run] = attrs.field(init=False, factory=dict)
    _restart_times: deque[float] = attrs.field(init=False, factory=deque)
    _restarts: int = attrs.field(init=False, default=0)
    _failure: ActorFailed | None = attrs.field(init=False, default=None)
    _actors_scope: trio.CancelScope | None = attrs.field(init=False, default=None)
    _service: trio.Nursery | None = attrs.field(init=False, default=None)
    _done: trio.Event = attrs.field(init=False, factory=trio.Event)
    _cancelled: bool = attrs.field(init=False, default=False)
    _pause_generation: dict[str | None, int] = attrs.field(init=False, factory=dict)

    # ---------------------------------------------------------------- wiring
    def _wire(self) -> None:
        self.graph.validate()
        for actor in self.graph:
            cell = cell_of(actor)
            if cell.state is not _S.CREATED or cell.outputs:
                raise ValueError(f"actor {actor.name!r} already ran; a graph runs once")
        for actor in self.graph:
            cell = cell_of(actor)
            inputs = self.graph.inputs_of(actor)
            if isinstance(cell, SourceCell):
                cell.budget = self.budget
            if not inputs:
                continue
            box = Mailbox(actor.name, self.graph.capacity_of(actor), budget=self.budget)
            cell.wire_input(box, len(inputs))
            for port, upstream in enumerate(inputs):
                cell_of(upstream).wire_output(box, port)
        self._runs = {a.name: _Run(a, cell_of(a)) for a in self.graph}

    # --------------------------------------------------------------- running
    async def _run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._life.transition(_S.RUNNING)
        try:
            async with trio.open_nursery() as service:
                self._service = service
                async with trio.open_nursery() as actors:
                    self._actors_scope = actors.cancel_scope
                    # Downstream first, so that everything a sender sends to is running.
                    for actor in reversed(self.graph.topological()):
                        await actors.start(self._supervise, self._runs[actor.name])
                    task_status.started()
                service.cancel_scope.cancel()
        finally:
            self._finish()
        if self._failure is not None:
            raise self._failure

    def _finish(self) -> None:
        self._service = None  # closed: a pause timeout after the end has nothing to resume
        life = self._life
        if self._failure is not None:
            final = _S.FAILED
        elif self._cancelled or any(r.cell.state is not _S.COMPLETED for r in self._runs.values()):
            final = _S.CANCELLED
        else:
            final = _S.COMPLETED
        if final is _S.COMPLETED and life.state is not _S.DRAINING:
            if life.state is _S.PAUSED:
                life.transition(_S.RUNNING)
            life.transition(_S.DRAINING)
        if life.state not in (_S.COMPLETED, _S.FAILED, _S.CANCELLED):
            life.transition(final)
        self._done.set()

    async def _supervise(self, run: _Run, task_status: trio.TaskStatus[None]) -> None:
        actor = run.actor
        cell = run.cell
        status = _StartedOnce(task_status)
        try:
            while True:
                run.restart_requested = False
                with trio.CancelScope() as scope:
                    run.scope = scope
                    try:
                        await cell.run(task_status=status)
                        return
                    except ConsumerGone:
                        self._cancelled = True
                        cell.cancelled()
                        self._cancel_actors()
                        return
                    except Exception as exc:
                        cell.fail()
                        status.started()
                        if not self._may_restart(actor, exc):
                            return
                if cell.state is _S.FAILED:
                    cell.restart()
                    if self.restart is not None and self.restart.strategy is Strategy.ONE_FOR_ALL:
                        self._restart_others(run)
                elif scope.cancelled_caught and run.restart_requested:
                    cell.cancelled()
                    cell.restart()
                else:
                    return
        finally:
            cell.cancelled()

    def _may_restart(self, actor: Actor, exc: Exception) -> bool:
        policy = self.restart
        if self._cancelled:
            # The graph is being cancelled on purpose: a crash racing that ends
            # with it, CANCELLED, instead of turning the cancel into a failure.
            return False
        if policy is None or self._failure is not None:
            self._fail_graph(ActorFailed(actor.name, exc, getattr(exc, "offset", None)), exc)
            return False
        now = trio.current_time()
        times = self._restart_times
        while times and times[0] <= now - policy.within:
            times.popleft()
        if len(times) >= policy.max_restarts:
            err = RestartIntensityExceeded(actor.name, exc, len(times), policy.within)
            self._fail_graph(err, exc)
            return False
        times.append(now)
        self._restarts += 1
        return True

    def _restart_others(self, crashed: _Run) -> None:
        for run in self._runs.values():
            if run is crashed or run.scope is None:
                continue
            if run.cell.state in (_S.RUNNING, _S.PAUSED, _S.DRAINING):
                run.restart_requested = True
                run.scope.cancel()

    def _fail_graph(self, error: ActorFailed, cause: BaseException) -> None:
        if self._failure is None:
            error.__cause__ = cause
            self._failure = error
        self._cancel_actors()

    def _cancel_actors(self) -> None:
        if self._actors_scope is not None:
            self._actors_scope.cancel()

    # --------------------------------------------------------------- control
    @property
    def state(self) -> ActorState:
        """The graph's state: RUNNING, PAUSED, DRAINING (graceful cancel), then
        COMPLETED, FAILED or CANCELLED."""
        return self._life.state

    def _targets(self, actor: str | None) -> list[ActorCell]:
        if actor is None:
            return [cell_of(a) for a in self.graph]
        return [cell_of(self.graph[actor])]

    def pause(self, actor: str | None = None, *, timeout: float | None = None) -> None:
        """Pause the whole graph, or one actor by name, at the next batch boundary.

        Idempotent.  With ``timeout`` (seconds), it resumes by itself unless
        paused or resumed again before then.

        Raises:
            KeyError: no actor has that name.
        """
        targets = self._targets(actor)
        for target in targets:
            if target.state in (_S.CREATED, _S.RUNNING, _S.PAUSED, _S.DRAINING):
                target.pause()
        if actor is None and self._life.state is _S.RUNNING:
            self._life.transition(_S.PAUSED)
        generation = self._pause_generation.get(actor, 0) + 1
        self._pause_generation[actor] = generation
        if timeout is not None and self._service is not None:
            self._service.start_soon(self._resume_after, actor, generation, timeout)

    def resume(self, actor: str | None = None) -> None:
        """Resume the whole graph, or one actor.  Idempotent.

        Raises:
            KeyError: no actor has that name.
        """
        self._pause_generation[actor] = self._pause_generation.get(actor, 0) + 1
        for target in self._targets(actor):
            if target.state in (_S.CREATED, _S.RUNNING, _S.PAUSED, _S.DRAINING):
                target.resume()
        if actor is None and self._life.state is _S.PAUSED:
            self._life.transition(_S.RUNNING)

    async def _resume_after(self, actor: str | None, generation: int, delay: float) -> None:
        await trio.sleep(delay)
        if self._pause_generation.get(actor) == generation:
            self.resume(actor)

    async def cancel(self, *, graceful: bool = True, deadline: float | None = None) -> None:
        """Stop the graph and wait until it has stopped.

        Graceful: resume what is paused, stop the sources, let every actor drain
        its mailbox and the sinks flush, then complete; past ``deadline``
        seconds, cancel immediately.  Not graceful: cancel every actor now.
        """
        if not graceful:
            self._cancelled = True
            self._cancel_actors()
            await self._done.wait()
            return
        if self._life.state is _S.PAUSED:
            self._life.transition(_S.RUNNING)
        if self._life.state is _S.RUNNING:
            self._life.transition(_S.DRAINING)
        self.resume()
        for actor in self.graph:
            cell = cell_of(actor)
            if isinstance(cell, SourceCell):
                cell.stop()
        if deadline is None:
            await self._done.wait()
            return
        with trio.move_on_after(deadline):
            await self._done.wait()
            return
        self._cancelled = True
        self._cancel_actors()
        await self._done.wait()

    async def wait(self) -> GraphStats:
        """Wait until the graph has ended; return its final stats."""
        await self._done.wait()
        return self.stats()

    # ----------------------------------------------------------------- stats
    def stats(self) -> GraphStats:
        """A frozen snapshot of the graph and every actor in it."""
        actors = tuple(a.stats() for a in self.graph)
        return GraphStats(
            state=self._life.state,
            actors=actors,
            memory_in_use=sum(a.estimated_memory for a in actors),
            max_memory=None if self.budget is None else self.budget.max_bytes,
            restarts=self._restarts,
        )


@asynccontextmanager
async def open_supervisor(
    graph: Graph,
    *,
    restart: RestartPolicy | None = None,
    max_memory: int | None = None,
    memory_policy: Literal["fail", "wait"] = "fail",
) -> AsyncIterator[Supervisor]:
    """Run ``graph`` under a supervisor for the duration of the ``async with`` block.

    The block may pause, resume, cancel and read stats; leaving it waits for
    the graph to end (like a nursery).  If an actor fails (and its restart
    policy gives up) the block is cancelled and :class:`ActorFailed` is raised.

    Args:
        graph: the actors and their connections; it runs once.
        restart: restart crashed actors by this policy (default: never; the
            first crash fails the graph).
        max_memory: bytes the graph's mailboxes may hold in all, split evenly
            across them; see :class:`MemoryBudget`.
        memory_policy: past the hard limit, ``"fail"`` raises
            :class:`MemoryLimitExceeded`; ``"wait"`` waits for room.

    Example:
        >>> async def main() -> None:
        ...     async with open_supervisor(graph) as sup:
        ...         sup.pause(timeout=1.0)
        ...     print(sup.stats().state)
    """
    budget = None if max_memory is None else MemoryBudget(max_memory, policy=memory_policy)
    supervisor = Supervisor(graph, restart=restart, budget=budget)
    supervisor._wire()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor._run)
            yield supervisor
    except BaseExceptionGroup as group:
        failure = supervisor._failure
        if failure is not None and _only(group, failure):
            raise failure from failure.__cause__
        raise


def _only(group: BaseExceptionGroup[BaseException], failure: BaseException) -> bool:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            if not _only(exc, failure):
                return False
        elif exc is not failure and not isinstance(exc, trio.Cancelled):
            return False
    return True


async def run_graph(
    graph: Graph,
    *,
    restart: RestartPolicy | None = None,
    max_memory: int | None = None,
    memory_policy: Literal["fail", "wait"] = "fail",
) -> GraphStats:
    """Run ``graph`` to its end under a supervisor; return the final stats.

    Raises:
        ActorFailed: an actor failed and its restart policy gave up.
    """
    async with open_supervisor(
        graph, restart=restart, max_memory=max_memory, memory_policy=memory_policy
    ) as supervisor:
        pass
    return supervisor.stats()
