"""Run a graph for the command: signals, live progress, and failures as one line.

The first Ctrl-C or SIGTERM cancels gracefully (the source stops, mailboxes
drain, windows close, the output is flushed); a second cancels at once.  The
rows go out through the graph's own sink (a :class:`partita.JsonLinesSink`
writes each batch from a worker thread), so a reader that stops reading never
blocks the event loop and the signals are always heard.
"""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import attrs
import trio
from rich.console import Console

from partita.actors._limit import StoppedBy, wait_bounded
from partita.actors._sources import error_leaves
from partita.runtime import (
    ActorFailed,
    BadRecord,
    Checkpointing,
    Graph,
    GraphStats,
    PartitaError,
    Supervisor,
    SupervisorOptions,
    open_supervisor,
)

from ._collector import collector_for_run
from ._exit import EXIT_RUNTIME, CliError, fail
from ._progress import ProgressDisplay

__all__ = ["Outcome", "drive", "failure_message"]


@attrs.define
class Outcome:
    """How a run ended: its last stats, how long it took, what stopped it."""

    stats: GraphStats | None = None
    elapsed: float = 0.0
    interrupts: int = 0
    terminated: bool = False


Where = Callable[[int], str]
"""Says where a record offset is in the input (``"at line 4 of 'in.jsonl'"``)."""

OpenCheckpoints = Callable[[], AbstractAsyncContextManager[Checkpointing | None]]
"""Opens the run's checkpoint store, inside ``trio.run`` (``None``: no checkpoints)."""


def at_record_offset(offset: int) -> str:
    """Where a record is when its source counts records from 0."""
    return f"at record offset {offset}"


def failure_message(exc: BaseException, where: Where = at_record_offset) -> str:
    """One line naming what failed and where (the input line, or the record offset)."""
    if isinstance(exc, ActorFailed):
        cause = exc.error
        if isinstance(cause, BadRecord):
            offset = cause.offset if cause.offset is not None else exc.offset
            place = f" {where(offset)}" if offset is not None else ""
            return f"bad record{place} (in {exc.actor!r}): {cause.reason}"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror  # the sinks' own message names the file and the reason
        place = f" {where(exc.offset)}" if exc.offset is not None else ""
        return f"{exc.actor!r} failed{place}: {type(cause).__name__}: {cause}"
    if isinstance(exc, PartitaError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror and exc.filename is None:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


async def _watch_signals(supervisor: Supervisor, outcome: Outcome, console: Console) -> None:
    """First Ctrl-C or SIGTERM: graceful cancel (drain, flush).  Second: cancel now."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            async for signum in signals:
                outcome.interrupts += 1
                if outcome.interrupts == 1:
                    outcome.terminated = signum == signal.SIGTERM
                    what = "terminated" if outcome.terminated else "interrupted"
                    console.print(
                        f"[yellow]partita: {what}, draining and flushing "
                        "(Ctrl-C again to stop now)[/]",
                        highlight=False,
                    )
                    nursery.start_soon(functools.partial(supervisor.cancel, graceful=True))
                else:
                    console.print("[red]partita: stopping now[/]", highlight=False)
                    # cancels every actor, a sink blocked in a write included
                    await supervisor.cancel(graceful=False)
                    return


async def _serve(
    supervisor: Supervisor,
    address: tuple[str, int],
    console: Console,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``--ui``: the web view until the run ends; its URL, token and all, on stderr."""
    from partita._ui import serve_ui  # the ui extra: imported only when asked for

    async with serve_ui(supervisor, address) as ui:
        console.print(f"partita: web view at {ui.url}", highlight=False, soft_wrap=True)
        task_status.started()
        await trio.sleep_forever()


async def _run(
    graph: Graph,
    options: SupervisorOptions,
    progress: ProgressDisplay | None,
    console: Console,
    outcome: Outcome,
    checkpoints: OpenCheckpoints | None,
    ui: tuple[str, int] | None = None,
    stop_after: float | None = None,
) -> None:
    started = trio.current_time()
    supervisor: Supervisor | None = None
    stopped: StoppedBy | None = None
    opening = checkpoints() if checkpoints is not None else contextlib.nullcontext(None)
    try:
        async with opening as checkpointing:
            if checkpointing is not None:
                options = attrs.evolve(options, checkpoints=checkpointing)
            async with open_supervisor(graph, options) as supervisor:
                stopped = await _supervise(
                    supervisor, graph, progress, console, outcome, ui, stop_after
                )
    finally:
        outcome.elapsed = trio.current_time() - started
        if supervisor is not None:
            outcome.stats = attrs.evolve(supervisor.stats(), stopped_by=stopped)


async def _supervise(
    supervisor: Supervisor,
    graph: Graph,
    progress: ProgressDisplay | None,
    console: Console,
    outcome: Outcome,
    ui: tuple[str, int] | None = None,
    stop_after: float | None = None,
) -> StoppedBy | None:
    resumed = supervisor.stats().resumed_from
    if resumed is not None:
        console.print(
            f"partita: resuming from checkpoint {resumed}", highlight=False, soft_wrap=True
        )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_signals, supervisor, outcome, console)
        if ui is not None:
            await nursery.start(_serve, supervisor, ui, console)
        if progress is not None:
            progress.capacities = {
                a.name: graph.capacity_of(a) for a in graph if graph.inputs_of(a)
            }
            nursery.start_soon(progress.run, supervisor)
        stopped = await wait_bounded(supervisor, None, stop_after)
        nursery.cancel_scope.cancel()
    return stopped


def drive(
    graph: Graph,
    options: SupervisorOptions,
    *,
    progress: ProgressDisplay | None,
    console: Console,
    where: Where = at_record_offset,
    checkpoints: OpenCheckpoints | None = None,
    ui: tuple[str, int] | None = None,
    timeout: float | None = None,
) -> Outcome:
    """``trio.run`` the graph to its end; a failure is :class:`CliError` (exit 1).

    With ``ui`` (host, port), the web view serves the run (see ``partita.serve_ui``).
    With ``timeout`` (seconds), the run stops gracefully then (``stats.stopped_by``).
    """
    outcome = Outcome()
    try:
        with collector_for_run():
            trio.run(_run, graph, options, progress, console, outcome, checkpoints, ui, timeout)
    except KeyboardInterrupt:  # Ctrl-C before the signal receiver was in place
        outcome.interrupts = max(outcome.interrupts, 1)
    except BaseException as exc:
        if isinstance(exc, SystemExit | CliError):
            raise
        known = [
            e
            for e in error_leaves(exc)
            if isinstance(e, PartitaError | OSError | ValueError | ImportError)
        ]
        if not known:
            raise
        fail(failure_message(known[0], where), EXIT_RUNTIME)
    return outcome
