"""Live progress and the final statistics table of the ``partita`` command.

Everything here reads :class:`runtime.GraphStats` snapshots (taken with
``Supervisor.stats()``) and renders them with rich on stderr; nothing touches
the graph.  The actor names are those of a SQL graph: ``source``, ``router``,
``partition-0`` .. ``partition-{n-1}``, ``merge``, ``sink``, ``dead-letter``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

import attrs
import trio
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from partita.runtime import ActorStats, CheckpointInfo, GraphStats

__all__ = ["HasStats", "ProgressDisplay", "RateMeter", "records_read", "summary_table"]


class HasStats(Protocol):
    """What the display reads: a :class:`runtime.Supervisor`, or anything with its ``stats()``."""

    def stats(self) -> GraphStats: ...


def records_read(stats: GraphStats) -> int:
    """How many records the source has produced so far."""
    try:
        source = stats["source"]
    except KeyError:
        return 0
    return max(source.rows_in, source.rows_out)


def _partitions(stats: GraphStats) -> list[ActorStats]:
    parts = [a for a in stats.actors if a.name.startswith("partition-")]
    return sorted(parts, key=lambda a: int(a.name.rsplit("-", 1)[1]))


def _rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def _mib(nbytes: int) -> str:
    return f"{nbytes / (1024 * 1024):.1f} MiB"


@attrs.define
class RateMeter:
    """Records per second over a sliding window of recent samples."""

    window: float = 2.0
    _samples: deque[tuple[float, int]] = attrs.field(init=False, factory=deque)

    def update(self, now: float, count: int) -> float:
        """Record ``count`` at time ``now``; return the recent rate."""
        samples = self._samples
        samples.append((now, count))
        while len(samples) > 2 and samples[0][0] < now - self.window:
            samples.popleft()
        first_t, first_n = samples[0]
        if now <= first_t:
            return 0.0
        return (count - first_n) / (now - first_t)


@attrs.define
class ProgressDisplay:
    """A live panel on ``console``: rate, rows, late/errored, per-partition mailboxes.

    Args:
        console: where to draw (stderr).
        capacities: inbox capacity of each actor by name (for occupancy bars).
        total: records expected in all, when known (draws a progress bar).
        rows_out: returns how many result rows were written so far.
        interval: seconds between refreshes.
        log_interval: when ``console`` is not a terminal (``--progress`` into a
            log file or pipe), seconds between plain one-line status updates.
        status: more to say at the end of the headline (``partita worker``: the
            partitions owned, Redis retries).
    """

    console: Console
    capacities: dict[str, int]
    rows_out: Callable[[], int]
    total: int | None = None
    interval: float = 0.25
    log_interval: float = 1.0
    status: Callable[[], str] | None = None
    _meter: RateMeter = attrs.field(init=False, factory=RateMeter)
    _started: float = attrs.field(init=False, default=0.0)

    async def run(self, supervisor: HasStats) -> None:
        """Redraw every ``interval`` seconds until cancelled (then draw once more).

        On a console that is not a terminal a live panel cannot redraw, so a plain
        status line is printed every ``log_interval`` seconds instead.
        """
        self._started = trio.current_time()
        if not self.console.is_terminal:
            while True:
                await trio.sleep(self.log_interval)
                self.console.print(self._headline(supervisor.stats()), highlight=False)
        with Live(
            self.render(supervisor.stats()),
            console=self.console,
            auto_refresh=False,
            transient=True,
        ) as live:
            try:
                while True:
                    await trio.sleep(self.interval)
                    live.update(self.render(supervisor.stats()), refresh=True)
            finally:
                live.update(self.render(supervisor.stats()), refresh=True)

    def _headline(self, stats: GraphStats) -> Text:
        now = trio.current_time()
        read = records_read(stats)
        rate = self._meter.update(now, read)
        elapsed = now - self._started
        head = Text.assemble(
            ("partita ", "bold"),
            (f"{stats.state.name.lower():<9}", "cyan"),
            f" {elapsed:6.1f}s  ",
            (f"{read:,}", "bold"),
            " records  ",
            (f"{_rate(rate)}/s", "green"),
            f"  rows out {self.rows_out():,}",
            ("  late ", "yellow"),
            f"{stats.rows_late:,}",
            ("  errored ", "red"),
            f"{stats.rows_errored:,}",
        )
        if stats.memory_in_use or stats.max_memory:
            head.append(f"  mailboxes {_mib(stats.memory_in_use)}")
            if stats.max_memory:
                head.append(f" of {_mib(stats.max_memory)}")
        if stats.state_memory:
            head.append(f"  state {_mib(stats.state_memory)}")
        if stats.checkpoint is not None:
            head.append(f"  {checkpoint_text(stats.checkpoint, now)}")
        if self.status is not None:
            head.append(f"  {self.status()}")
        return head

    def render(self, stats: GraphStats) -> Group:
        parts: list[Text | Table] = [self._headline(stats)]
        read = records_read(stats)
        if self.total:
            grid = Table.grid(padding=(0, 1))
            grid.add_row(
                ProgressBar(total=self.total, completed=min(read, self.total), width=50),
                f"{min(read, self.total) / self.total:.0%} of {self.total:,}",
            )
            parts.append(grid)
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="dim")
        table.add_column("partition")
        table.add_column("mailbox", min_width=12)
        table.add_column("buffered", justify="right")
        table.add_column("p99", justify="right")
        table.add_column("rows in", justify="right")
        table.add_column("late", justify="right")
        table.add_column("errored", justify="right")
        for part in _partitions(stats):
            capacity = self.capacities.get(part.name, 0) or max(part.high_water, 1)
            table.add_row(
                part.name,
                ProgressBar(
                    total=capacity,
                    completed=min(part.items_buffered, capacity),
                    width=12,
                    complete_style="magenta",
                ),
                f"{part.items_buffered}/{capacity}",
                str(part.occupancy_p99),
                f"{part.rows_in:,}",
                f"{part.rows_late:,}",
                f"{part.rows_errored:,}",
            )
        parts.append(table)
        return Group(*parts)


def checkpoint_text(info: CheckpointInfo, now: float | None = None) -> str:
    """``checkpoint 7 (2.1s ago, took 80 ms, 12.0 KiB)`` (its age when ``now`` is given)."""
    age = "" if now is None else f"{max(0.0, now - info.committed_at):.1f}s ago, "
    return (
        f"checkpoint {info.id} ({age}took {info.duration * 1000:.0f} ms, "
        f"{info.size / 1024:.1f} KiB)"
    )


def summary_table(stats: GraphStats, *, elapsed: float, rows: int) -> Group:
    """The final statistics: a line of totals, then a table with one line per actor.

    Columns that are zero for every actor (filtered, late, errored, restarts)
    are left out, so the table fits an 80-column terminal.
    """
    read = records_read(stats)
    totals = Text(
        f"partita: {stats.state.name.lower()} - {read:,} records in {elapsed:.2f}s "
        f"({_rate(read / elapsed if elapsed > 0 else 0.0)} records/s), {rows:,} rows out, "
        f"{stats.rows_late:,} late, {stats.rows_errored:,} errored"
        + (f", last {checkpoint_text(stats.checkpoint)}" if stats.checkpoint else "")
        + (
            f", resumed from checkpoint {stats.resumed_from}"
            if stats.resumed_from is not None
            else ""
        )
    )
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), header_style="bold")
    actors = stats.actors
    optional: dict[str, Callable[[ActorStats], int]] = {
        "filtered": lambda a: a.rows_filtered,
        "late": lambda a: a.rows_late,
        "errored": lambda a: a.rows_errored,
        "restarts": lambda a: a.restarts,
    }
    shown = [name for name, get in optional.items() if any(get(a) for a in actors)]
    table.add_column("actor", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("rows in", justify="right", no_wrap=True)
    table.add_column("rows out", justify="right", no_wrap=True)
    for name in shown:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("mailbox\np50/p99/max", justify="right", no_wrap=True)
    for actor in actors:
        cells = [
            actor.name,
            actor.state.name.lower(),
            f"{actor.rows_in:,}",
            f"{actor.rows_out:,}",
            *(f"{optional[name](actor):,}" for name in shown),
            f"{actor.occupancy_p50}/{actor.occupancy_p99}/{actor.high_water}",
        ]
        table.add_row(*cells)
    return Group(totals, table)
