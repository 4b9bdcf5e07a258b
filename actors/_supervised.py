"""Running a graph for the SQL and Flow front ends: one supervisor, plain errors, stats.

Kernel workaround: ``runtime.Supervisor._supervise`` calls ``task_status.started()``
again when an actor fails after it had started (``RuntimeError: called 'started'
twice``), so a failing actor surfaces as that ``RuntimeError`` inside an exception
group instead of :class:`runtime.ActorFailed`.  :class:`_Supervisor` hands the
kernel a task status whose ``started()`` is idempotent; the kernel logic is
otherwise unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import trio

from runtime import (
    Graph,
    GraphStats,
    MemoryBudget,
    RestartPolicy,
    Supervisor,
)

from ._sources import single_error

__all__ = ["run_supervised", "supervised"]


class _StartedOnce:
    """A ``trio.TaskStatus`` whose ``started()`` may be called more than once."""

    def __init__(self, status: trio.TaskStatus[None]) -> None:
        self._status = status
        self._started = False

    def started(self, value: Any = None) -> None:
        if not self._started:
            self._started = True
            self._status.started(value)


class _Supervisor(Supervisor):
    async def _supervise(self, run: Any, task_status: Any) -> None:
        await super()._supervise(run, _StartedOnce(task_status))


async def _watch(supervisor: Supervisor, on_end: Callable[[], None]) -> None:
    await supervisor.wait()
    on_end()


async def _report(
    supervisor: Supervisor, on_stats: Callable[[GraphStats], None], interval: float
) -> None:
    while True:
        await trio.sleep(interval)
        on_stats(supervisor.stats())


@asynccontextmanager
async def _open(
    graph: Graph,
    restart: RestartPolicy | None,
    max_memory: int | None,
    memory_policy: Literal["fail", "wait"],
) -> AsyncIterator[Supervisor]:
    # runtime.open_supervisor, with the _Supervisor above.
    budget = None if max_memory is None else MemoryBudget(max_memory, policy=memory_policy)
    supervisor = _Supervisor(graph, restart=restart, budget=budget)
    supervisor._wire()
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor._run)
        yield supervisor


@asynccontextmanager
async def supervised(
    graph: Graph,
    *,
    restart: RestartPolicy | None = None,
    max_memory: int | None = None,
    memory_policy: Literal["fail", "wait"] = "fail",
    on_stats: Callable[[GraphStats], None] | None = None,
    stats_interval: float = 0.5,
    on_end: Callable[[], None] | None = None,
) -> AsyncIterator[Supervisor]:
    """Like ``runtime.open_supervisor``, plus callbacks; single errors come bare.

    A failure comes out as the one :class:`runtime.ActorFailed` (or the caller's
    own exception), not wrapped in an exception group; ``on_stats`` is called
    every ``stats_interval`` seconds and once more with the final stats;
    ``on_end`` is called as soon as the graph has ended, however it ended.

    Raises:
        runtime.ActorFailed: an actor failed and the restart policy gave up.
        ValueError: ``stats_interval <= 0``.
    """
    if stats_interval <= 0:
        raise ValueError(f"stats_interval must be > 0, got {stats_interval}")
    try:
        if on_stats is None and on_end is None:
            async with _open(graph, restart, max_memory, memory_policy) as sup:
                yield sup
        else:
            async with trio.open_nursery() as nursery:
                async with _open(graph, restart, max_memory, memory_policy) as sup:
                    if on_stats is not None:
                        nursery.start_soon(_report, sup, on_stats, stats_interval)
                    if on_end is not None:
                        nursery.start_soon(_watch, sup, on_end)
                    yield sup
                nursery.cancel_scope.cancel()
            if on_stats is not None:
                on_stats(sup.stats())
    except BaseExceptionGroup as group:
        error = single_error(group)
        if error is group:
            raise
        raise error from error.__cause__


async def run_supervised(
    graph: Graph,
    *,
    restart: RestartPolicy | None = None,
    max_memory: int | None = None,
    memory_policy: Literal["fail", "wait"] = "fail",
) -> GraphStats:
    """Run ``graph`` to its end (``runtime.run_graph`` with the fixes above)."""
    async with supervised(
        graph, restart=restart, max_memory=max_memory, memory_policy=memory_policy
    ) as supervisor:
        pass
    return supervisor.stats()
