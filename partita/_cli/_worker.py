"""``partita worker``: one worker of a group sharing a Redis topic's partitions.

The first Ctrl-C or SIGTERM stops gracefully: every partition is handed over
at once (checkpoint, commit, release) and the worker leaves its group; a
second stops at once (its leases then expire).  Exit 0 once every partition of
a bounded topic is done; 143 after SIGTERM, 130 after Ctrl-C; 1 on a failure
(one line); 2 on a usage or SQL error.
"""

from __future__ import annotations

import signal
import sys

import attrs
import click
import trio
from rich.console import Console

from partita.actors import RedisError, Worker, WorkerStats
from partita.actors._sources import error_leaves
from partita.actors._worker import PartitioningMismatch, default_worker_name
from partita.runtime import GraphStats, PartitaError

from ._collector import collector_for_run
from ._console import console_for
from ._driver import failure_message
from ._exit import EXIT_INTERRUPTED, EXIT_RUNTIME, EXIT_TERMINATED, EXIT_USAGE, CliError, fail
from ._parse import compile_or_exit, duration_option
from ._progress import ProgressDisplay

__all__ = ["worker"]


@attrs.define
class _Outcome:
    stats: WorkerStats | None = None
    signals: int = 0
    terminated: bool = False


@attrs.define
class _GraphView:
    """The worker's pipelines as one graph, for the progress display."""

    worker: Worker

    def stats(self) -> GraphStats:
        return self.worker.stats().graph


def status_text(stats: WorkerStats) -> str:
    """``owns 0,3 of 8 (2 workers), done 1`` and, while retrying, ``Redis unavailable``."""
    owned = ",".join(map(str, stats.owned)) or "nothing (standby)"
    text = f"{stats.state} owns {owned} of {stats.partitions} ({len(stats.members)} workers)"
    if stats.done:
        text += f", done {len(stats.done)}"
    if stats.redis_unavailable:
        text += f", Redis unavailable, retrying ({stats.redis_retries} retries)"
    return text


async def _watch_signals(
    worker: Worker, scope: trio.CancelScope, outcome: _Outcome, console: Console
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            outcome.signals += 1
            if outcome.signals == 1:
                outcome.terminated = signum == signal.SIGTERM
                what = "terminated" if outcome.terminated else "interrupted"
                console.print(
                    f"[yellow]partita: {what}, handing the partitions over "
                    "(Ctrl-C again to stop now)[/]",
                    highlight=False,
                )
                worker.stop()
            else:
                console.print("[red]partita: stopping now[/]", highlight=False)
                scope.cancel()
                return


async def _main(
    worker: Worker, console: Console, progress: ProgressDisplay | None, outcome: _Outcome
) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_signals, worker, nursery.cancel_scope, outcome, console)
        if progress is not None:
            nursery.start_soon(progress.run, _GraphView(worker))
        outcome.stats = await worker.run()
        nursery.cancel_scope.cancel()


@click.command()
@click.option("--redis", "url", required=True, metavar="URL", help="redis://HOST:PORT[/DB]")
@click.option("--topic", required=True, metavar="T", help="The input topic.")
@click.option("--sql", "query", required=True, metavar="QUERY", help="The SQL query to run.")
@click.option("--output-topic", required=True, metavar="O", help="The topic result rows go to.")
@click.option("--group", default="default", show_default=True, help="The consumer group.")
@click.option("--name", default=None, help="This worker's name in the group (default host-pid).")
@click.option(
    "--lease-ms",
    type=click.IntRange(min=100),
    default=10_000,
    show_default=True,
    help="How long a lease lasts unrenewed: a dead worker's partitions move after this.",
)
@click.option(
    "--checkpoint-interval",
    metavar="DURATION",
    default="1s",
    show_default=True,
    callback=duration_option,
    help="Time between a partition's commits (250ms, 5s; bare number = ms).",
)
@click.option(
    "--delivery",
    type=click.Choice(["exactly-once", "at-least-once"]),
    default="exactly-once",
    show_default=True,
    help="exactly-once: rows go out with the commits; at-least-once: at once, each with "
    "_partition and _offset.",
)
@click.option(
    "--on-error",
    type=click.Choice(["skip", "fail", "dead-letter"]),
    default="skip",
    show_default=True,
    help="Bad entries and records; dead letters go to the stream {T:p}:dead:GROUP.",
)
@click.option(
    "--late",
    type=click.Choice(["drop", "dead-letter", "update"]),
    default="drop",
    show_default=True,
)
@click.option("--allowed-lateness", metavar="DURATION", default="0", callback=duration_option)
@click.option("--event-time", metavar="FIELD", default=None)
@click.option("--progress/--no-progress", default=None, help="Live progress on stderr.")
def worker(
    url: str,
    topic: str,
    query: str,
    output_topic: str,
    group: str,
    name: str | None,
    lease_ms: int,
    checkpoint_interval: int,
    delivery: str,
    on_error: str,
    late: str,
    allowed_lateness: int,
    event_time: str | None,
    progress: bool | None,
) -> None:
    """Run QUERY over the partitions of topic T this worker owns, into topic O."""
    compiled = compile_or_exit(
        query,
        allowed_lateness=allowed_lateness,
        event_time=event_time,
        on_error=on_error,
        late=late,
    )
    try:
        job = Worker(
            url,
            topic,
            compiled,
            output_topic,
            group=group,
            name=name or default_worker_name(),
            lease_ms=lease_ms,
            checkpoint_interval=checkpoint_interval,
            delivery=delivery,  # type: ignore[arg-type]
            on_error=on_error,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    console = console_for(sys.stderr)
    show = sys.stderr.isatty() if progress is None else progress
    display = None
    if show:
        display = ProgressDisplay(
            console, {}, lambda: job.stats().rows_out, status=lambda: status_text(job.stats())
        )
    outcome = _Outcome()
    try:
        with collector_for_run():
            trio.run(_main, job, console, display, outcome)
    except KeyboardInterrupt:
        outcome.signals = max(outcome.signals, 1)
    except BaseException as exc:
        if isinstance(exc, SystemExit | CliError):
            raise
        kinds = PartitaError | OSError | ValueError
        known = [e for e in error_leaves(exc) if isinstance(e, kinds)]
        if not known:
            raise
        first = known[0]
        if isinstance(first, RedisError):
            fail(str(first), EXIT_RUNTIME)
        code = EXIT_USAGE if isinstance(first, PartitioningMismatch) else EXIT_RUNTIME
        fail(failure_message(first), code)
    _finish(job, outcome, console)


def _finish(job: Worker, outcome: _Outcome, console: Console) -> None:
    stats = job.stats()
    console.print(
        f"partita: worker {stats.name} {stats.state} - {stats.records:,} records, "
        f"{stats.rows_out:,} rows out, {stats.commits:,} commits, {stats.acquired} leases "
        f"taken, {stats.handed_over} handed over, {stats.lost} lost, "
        f"{stats.redis_retries} Redis retries",
        highlight=False,
        soft_wrap=True,
    )
    if outcome.terminated:
        fail("terminated (SIGTERM)", EXIT_TERMINATED)
    if outcome.signals:
        fail("interrupted", EXIT_INTERRUPTED)
