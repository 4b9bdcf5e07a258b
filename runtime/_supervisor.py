"""The supervisor: runs a graph of actors in one nursery and looks after them."""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ._actor import Actor, cell_of
from ._cell import ActorCell
from ._checkpoint import CheckpointCoordinator, Checkpointing
from ._errors import ActorFailed, CheckpointError, ConsumerGone, RestartIntensityExceeded
from ._graph import Graph
from ._lifecycle import ActorState, Lifecycle
from ._mailbox import Mailbox
from ._memory import MemoryBudget, MemoryPolicy
from ._source import Source, SourceCell
from ._stats import GraphStats
from ._units import parse_size, positive_duration_ms

__all__ = [
    "Backoff",
    "RestartPolicy",
    "Strategy",
    "Supervisor",
    "SupervisorOptions",
    "open_supervisor",
    "run_graph",
]

_S = ActorState


class Strategy(enum.Enum):
    """Which actors restart when one crashes (as in Erlang/OTP)."""

    ONE_FOR_ONE = "one_for_one"
    """Only the actor that crashed."""
    ONE_FOR_ALL = "one_for_all"
    """Every actor still running."""


def _check_backoff_max(instance: Backoff, _attr: Any, value: float) -> None:
    if value < instance.min:
        raise ValueError(f"backoff max ({value}) must be >= min ({instance.min})")


@attrs.frozen
class Backoff:
    """How long a crashed actor waits before it restarts: capped exponential with
    jitter, as Akka's ``withBackoff(minBackoff, maxBackoff, randomFactor)``.

    The ``n``-th restart within the policy's intensity window (``n`` counting from 0:
    the restarts still inside ``within`` seconds before this one) waits
    ``min(max, min * 2**n) * (1 + random_factor * u)`` seconds, ``u`` uniform in
    ``[0, 1)``: so with jitter a wait may exceed ``max`` by the random factor, as in
    Akka.  Crashes spread further apart than ``within`` start again from ``min``.
    The wait is a ``trio.sleep`` (a ``MockClock`` controls it in tests); the graph
    stays live meanwhile, and cancelling it ends the wait.

    Args:
        min: seconds before the first restart (> 0).
        max: the cap before jitter (>= ``min``).
        random_factor: the jitter's relative size (>= 0; 0: no jitter).
        seed: seeds the jitter's random numbers (reproducible waits in tests);
            ``None``: seeded from the system.

    Example:
        >>> import random
        >>> b = Backoff(min=0.5, max=3.0, random_factor=0.0)
        >>> [b.delay(n, random.Random()) for n in range(5)]
        [0.5, 1.0, 2.0, 3.0, 3.0]
    """

    min: float = attrs.field(default=0.1, validator=attrs.validators.gt(0))
    max: float = attrs.field(default=10.0, validator=_check_backoff_max)
    random_factor: float = attrs.field(default=0.2, validator=attrs.validators.ge(0))
    seed: int | None = None

    def delay(self, n: int, rng: random.Random) -> float:
        """Seconds the ``n``-th restart (from 0) of a window waits, jitter drawn from ``rng``."""
        base = self.max if n >= 64 else min(self.max, self.min * 2.0**n)
        if self.random_factor == 0:
            return base
        return base * (1.0 + self.random_factor * rng.random())


def _check_backoff(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and not isinstance(value, Backoff):
        raise TypeError(f"backoff must be a Backoff or None, got {value!r}")


@attrs.frozen
class RestartPolicy:
    """Restart crashed actors, at most ``max_restarts`` times within ``within`` seconds.

    One crash more than that escalates: the graph fails with the original error
    (:class:`RestartIntensityExceeded`, whose ``__cause__`` it is).  A restarted
    actor runs :meth:`Actor.on_start` again and handles the message it crashed
    on again; its mailbox and what it already sent are kept.  With ``backoff``
    (a :class:`Backoff`), a crashed actor waits before it restarts (the graph's
    stats count the time waited in ``backoff_time``); without, it restarts at once.

    Example:
        >>> from partita import Strategy
        >>> policy = RestartPolicy(Strategy.ONE_FOR_ONE, max_restarts=3, within=5.0)
        >>> policy.strategy.value, policy.max_restarts, policy.backoff
        ('one_for_one', 3, None)
        >>> RestartPolicy(backoff=Backoff(min=0.1, max=5.0, seed=1)).backoff.max
        5.0
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    max_restarts: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    within: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    backoff: Backoff | None = attrs.field(default=None, validator=_check_backoff)


def _max_memory(value: Any) -> int | None:
    if value is None:
        return None
    nbytes = parse_size(value, "max_memory")
    if nbytes <= 0:
        raise ValueError(f"max_memory must be positive, got {value!r}")
    return nbytes


def _stats_interval(value: Any) -> int:
    return positive_duration_ms(value, "stats_interval")


def _check_memory_policy(_inst: Any, _attr: Any, value: Any) -> None:
    if value not in ("fail", "wait"):
        raise ValueError(f"memory_policy must be 'fail' or 'wait', got {value!r}")


def _check_checkpointing(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and not isinstance(value, Checkpointing):
        raise TypeError(f"checkpoints must be a Checkpointing or None, got {value!r}")


def _check_restart(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and not isinstance(value, RestartPolicy):
        raise TypeError(f"restart must be a RestartPolicy or None, got {value!r}")


@attrs.frozen(kw_only=True)
class SupervisorOptions:
    """How a supervisor runs a graph: the one place these options are defined,
    defaulted and validated.  Every entry point that runs a graph (``open_supervisor``,
    ``run_graph`` and the graph builders of the layers above) takes one, or its
    fields as keywords.

    Attributes:
        restart: restart crashed actors by this policy (default: never; the first
            crash fails the graph).
        max_memory: bytes the graph's mailboxes may hold in all, split evenly
            across them (an int, or a size such as ``"256MB"``); see
            :class:`MemoryBudget`.  ``None``: no limit.
        memory_policy: past the hard limit, ``"wait"`` (the default) waits for
            room: backpressure, so a slow sink holds the source back; ``"fail"``
            raises :class:`MemoryLimitExceeded`.
        on_stats: called with :class:`GraphStats` every ``stats_interval`` and once
            more with the final stats when the graph has ended.
        stats_interval_ms: the interval of ``on_stats``; construct it with
            ``stats_interval=`` and a duration (``"500ms"``, ``"2s"``, a bare number
            of milliseconds, a ``timedelta``).
        checkpoints: take aligned-barrier checkpoints into a store and resume
            from the latest one (:class:`Checkpointing`); ``None`` (the default):
            no checkpoints, and nothing on the hot path.

    Example:
        >>> SupervisorOptions(max_memory="64MB", stats_interval="2s").max_memory
        67108864
        >>> SupervisorOptions(stats_interval="1.5s").stats_interval_ms
        1500
    """

    restart: RestartPolicy | None = attrs.field(default=None, validator=_check_restart)
    max_memory: int | None = attrs.field(default=None, converter=_max_memory)
    memory_policy: MemoryPolicy = attrs.field(default="wait", validator=_check_memory_policy)
    on_stats: Callable[[GraphStats], None] | None = None
    stats_interval_ms: int = attrs.field(
        default=500, alias="stats_interval", converter=_stats_interval
    )
    checkpoints: Checkpointing | None = attrs.field(default=None, validator=_check_checkpointing)

    @classmethod
    def of(cls, options: SupervisorOptions | None = None, **fields: Any) -> SupervisorOptions:
        """``options`` (default: the defaults) with ``fields`` replaced.

        Raises:
            TypeError: a field that does not exist.
            ValueError: a value out of range.
        """
        if options is None:
            return cls(**fields)
        if not isinstance(options, SupervisorOptions):
            raise TypeError(f"options must be SupervisorOptions, got {type(options).__name__}")
        return attrs.evolve(options, **fields) if fields else options


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
    _backoff_time: float = attrs.field(init=False, default=0.0)
    _rng: random.Random | None = attrs.field(init=False, default=None)
    _failure: ActorFailed | None = attrs.field(init=False, default=None)
    _actors_scope: trio.CancelScope | None = attrs.field(init=False, default=None)
    _service: trio.Nursery | None = attrs.field(init=False, default=None)
    _done: trio.Event = attrs.field(init=False, factory=trio.Event)
    _cancelled: bool = attrs.field(init=False, default=False)
    _pause_generation: dict[str | None, int] = attrs.field(init=False, factory=dict)
    _checkpoints: CheckpointCoordinator | None = attrs.field(init=False, default=None)

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
                delay: float | None = 0.0
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
                        delay = self._may_restart(actor, exc)
                        if delay is None:
                            return
                if cell.state is _S.FAILED:
                    if delay:
                        await self._back_off(delay)
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

    def _may_restart(self, actor: Actor, exc: Exception) -> float | None:
        """Whether ``actor`` restarts after ``exc``: the seconds to wait first, or
        ``None`` (it does not: the graph fails, or is being cancelled)."""
        policy = self.restart
        if self._cancelled:
            # The graph is being cancelled on purpose: a crash racing that ends
            # with it, CANCELLED, instead of turning the cancel into a failure.
            return None
        if policy is None or self._failure is not None:
            self._fail_graph(ActorFailed(actor.name, exc, getattr(exc, "offset", None)), exc)
            return None
        now = trio.current_time()
        times = self._restart_times
        while times and times[0] <= now - policy.within:
            times.popleft()
        if len(times) >= policy.max_restarts:
            err = RestartIntensityExceeded(actor.name, exc, len(times), policy.within)
            self._fail_graph(err, exc)
            return None
        backoff = policy.backoff
        delay = 0.0
        if backoff is not None:
            if self._rng is None:
                self._rng = random.Random(backoff.seed)
            delay = backoff.delay(len(times), self._rng)
        times.append(now)
        self._restarts += 1
        return delay

    async def _back_off(self, delay: float) -> None:
        """Wait ``delay`` seconds before a restart; count the time waited (even if the
        graph is cancelled meanwhile)."""
        start = trio.current_time()
        try:
            await trio.sleep(delay)
        finally:
            self._backoff_time += trio.current_time() - start

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

    @property
    def failure(self) -> ActorFailed | None:
        """The error the graph failed with (``None``: it has not failed)."""
        return self._failure

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

    async def checkpoint(self) -> int:
        """Take a checkpoint now; return its id once it is committed.

        Raises:
            CheckpointError: checkpoints are off (no ``checkpoints=`` option), the
                input has ended, or the graph ended before the checkpoint completed.
        """
        if self._checkpoints is None:
            raise CheckpointError("checkpoint", "checkpoints are off: run with checkpoints=")
        return await self._checkpoints.checkpoint()

    async def _start_checkpoints(self, options: Checkpointing) -> CheckpointCoordinator:
        """Make the coordinator; restore every actor from the latest checkpoint, if any."""
        actors = list(self.graph)
        for actor in actors:
            if isinstance(actor, Source) and not actor.resumable:
                raise CheckpointError(
                    f"source {actor.name!r}",
                    f"a {type(actor).__name__} cannot resume from a checkpoint: "
                    f"{actor.resume_hint}",
                )
        coordinator = CheckpointCoordinator(options, tuple(a.name for a in actors))
        states = await coordinator.recover()
        if states is not None:
            for actor in actors:
                cell_of(actor).restore(states[actor.name])
        coordinator.attach(cell_of(a) for a in actors if isinstance(cell_of(a), SourceCell))
        for actor in actors:
            cell_of(actor).checkpoints = coordinator
        self._checkpoints = coordinator
        return coordinator

    async def wait(self) -> GraphStats:
        """Wait until the graph has ended; return its final stats."""
        await self._done.wait()
        return self.stats()

    # ----------------------------------------------------------------- stats
    def stats(self) -> GraphStats:
        """A frozen snapshot of the graph and every actor in it."""
        actors = tuple(a.stats() for a in self.graph)
        checkpoints = self._checkpoints
        return GraphStats(
            state=self._life.state,
            actors=actors,
            memory_in_use=sum(a.estimated_memory for a in actors),
            max_memory=None if self.budget is None else self.budget.max_bytes,
            restarts=self._restarts,
            backoff_time=self._backoff_time,
            checkpoint=None if checkpoints is None else checkpoints.last,
            resumed_from=None if checkpoints is None else checkpoints.restored,
        )


@asynccontextmanager
async def open_supervisor(
    graph: Graph,
    options: SupervisorOptions | None = None,
    /,
    *,
    on_end: Callable[[], None] | None = None,
    **fields: Any,
) -> AsyncIterator[Supervisor]:
    """Run ``graph`` under a supervisor for the duration of the ``async with`` block.

    The block may pause, resume, cancel and read stats; leaving it waits for
    the graph to end (like a nursery).  If an actor fails (and its restart
    policy gives up) the block is cancelled and that :class:`ActorFailed` is
    raised, bare; several unrelated errors at once come as an exception group.

    Args:
        graph: the actors and their connections; it runs once.
        options: how to run it (:class:`SupervisorOptions`; default: the defaults).
        on_end: called as soon as the graph has ended, however it ended.
        **fields: :class:`SupervisorOptions` fields replacing those of ``options``
            (``restart=``, ``max_memory=``, ``memory_policy=``, ``on_stats=``,
            ``stats_interval=``).

    Raises:
        ActorFailed: an actor failed and its restart policy gave up.
        TypeError, ValueError: a bad option.

    Example:
        >>> async def main() -> None:
        ...     async with open_supervisor(graph, max_memory="64MB") as sup:
        ...         sup.pause(timeout=1.0)
        ...     print(sup.stats().state)
    """
    opts = SupervisorOptions.of(options, **fields)
    budget = (
        None
        if opts.max_memory is None
        else MemoryBudget(opts.max_memory, policy=opts.memory_policy)
    )
    supervisor = Supervisor(graph, restart=opts.restart, budget=budget)
    supervisor._wire()
    coordinator = None
    if opts.checkpoints is not None:
        coordinator = await supervisor._start_checkpoints(opts.checkpoints)
    on_stats = opts.on_stats
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor._run)
            if on_stats is not None:
                nursery.start_soon(_report, supervisor, on_stats, opts.stats_interval_ms / 1000)
            if on_end is not None:
                nursery.start_soon(_watch, supervisor, on_end)
            if coordinator is not None:
                nursery.start_soon(_checkpoint_until_end, supervisor, coordinator)
            yield supervisor
    except BaseExceptionGroup as group:
        error = _single(group, supervisor._failure)
        if error is None:
            raise
        raise error from error.__cause__
    if on_stats is not None:
        on_stats(supervisor.stats())


async def _report(
    supervisor: Supervisor, on_stats: Callable[[GraphStats], None], interval: float
) -> None:
    """``on_stats`` every ``interval`` seconds (drift-free) until the graph ends."""
    deadline = trio.current_time() + interval
    while True:
        with trio.move_on_at(deadline):
            await supervisor.wait()
            return
        on_stats(supervisor.stats())
        deadline += interval


async def _checkpoint_until_end(supervisor: Supervisor, coordinator: CheckpointCoordinator) -> None:
    """Periodic checkpoints while the graph runs; at its end, give up the one in
    flight, and if it read all its input, commit the checkpoint that says so."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(coordinator.run_periodic)
        await supervisor.wait()
        nursery.cancel_scope.cancel()
    coordinator.abort()
    if supervisor.state is _S.COMPLETED and coordinator.input_exhausted():
        # a run cancelled short of its input's end keeps its last checkpoint: the same
        # job run again resumes there
        await coordinator.complete()


async def _watch(supervisor: Supervisor, on_end: Callable[[], None]) -> None:
    await supervisor.wait()
    on_end()


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [] if isinstance(exc, trio.Cancelled) else [exc]


def _single(
    group: BaseExceptionGroup[BaseException], failure: ActorFailed | None
) -> BaseException | None:
    """The one error in ``group`` (``trio.Cancelled`` aside), else None.

    The graph's failure may show up more than once (raised by the run and seen by
    the block's caller); it counts once.
    """
    leaves = _leaves(group)
    distinct = [leaf for i, leaf in enumerate(leaves) if all(leaf is not x for x in leaves[:i])]
    if len(distinct) == 1:
        return distinct[0]
    if failure is not None and distinct == [failure]:
        return failure
    return None


async def run_graph(
    graph: Graph, options: SupervisorOptions | None = None, /, **fields: Any
) -> GraphStats:
    """Run ``graph`` to its end under a supervisor; return the final stats.

    Args:
        graph: the actors and their connections.
        options, **fields: as for :func:`open_supervisor`.

    Raises:
        ActorFailed: an actor failed and its restart policy gave up.
    """
    async with open_supervisor(graph, options, **fields) as supervisor:
        pass
    return supervisor.stats()
