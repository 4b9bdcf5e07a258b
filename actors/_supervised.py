"""Running a graph for the SQL and Flow front ends: one supervisor, plain errors, stats."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Literal

import trio

from partita.runtime import Graph, GraphStats, RestartPolicy, Supervisor, open_supervisor

from ._sources import single_error

__all__ = ["run_supervised", "supervised"]


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
            async with open_supervisor(
                graph, restart=restart, max_memory=max_memory, memory_policy=memory_policy
            ) as sup:
                yield sup
        else:
            async with trio.open_nursery() as nursery:
                async with open_supervisor(
                    graph, restart=restart, max_memory=max_memory, memory_policy=memory_policy
                ) as sup:
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
