"""``partita demo``: generated trades through a per-symbol tumbling-window aggregate."""

from __future__ import annotations

import datetime
import sys
from collections import deque
from collections.abc import Sequence
from typing import Any

import attrs
import click
from rich import box
from rich.table import Table

from partita.actors import CallbackSink, TradeSource, build_sql_graph
from partita.runtime import Record, SupervisorOptions

from ._console import console_for, show
from ._driver import drive
from ._exit import EXIT_INTERRUPTED, EXIT_USAGE, fail
from ._parse import compile_or_exit, duration_option, ui_option
from ._progress import ProgressDisplay, records_read, summary_table

__all__ = ["DEMO_SQL", "demo", "demo_sql"]

DEMO_SQL = (
    "SELECT symbol, window_start, window_end, COUNT(*) AS trades, SUM(qty) AS volume,\n"
    "       SUM(price * qty) / SUM(qty) AS vwap, MIN(price) AS low, MAX(price) AS high\n"
    "FROM trades\n"
    "GROUP BY symbol, TUMBLE(ts, INTERVAL {interval})"
)


def _interval(ms: int) -> str:
    if ms % 1000 == 0:
        return f"'{ms // 1000}' SECOND"
    return f"'{ms}' MILLISECOND"


def demo_sql(window_ms: int) -> str:
    """The demo's query: per-symbol tumbling-window trades, volume, VWAP, low/high.

    Example:
        >>> print(demo_sql(1500).splitlines()[-1])
        GROUP BY symbol, TUMBLE(ts, INTERVAL '1500' MILLISECOND)
    """
    return DEMO_SQL.format(interval=_interval(window_ms))


def _clock(ms: Any) -> str:
    """Epoch milliseconds as a UTC time of day, ``HH:MM:SS.mmm``."""
    if not isinstance(ms, int):
        return str(ms)
    stamp = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return stamp.strftime("%H:%M:%S.") + f"{ms % 1000:03d}"


def _demo_table(rows: Sequence[Record], limit: int) -> Table:
    last = max((r["window_start"] for r in rows), default=None)
    latest = [r for r in rows if r["window_start"] == last]
    latest.sort(key=lambda r: -(r.get("volume") or 0))
    first = latest[0] if latest else {}
    table = Table(
        title=(
            f"last window {_clock(first.get('window_start'))}-{_clock(first.get('window_end'))}"
            f" UTC, top {min(limit, len(latest))} of {len(latest)} symbols by volume"
        ),
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    columns = ("symbol", "trades", "volume", "vwap", "low", "high")
    for column in columns:
        table.add_column(column, justify="left" if column == "symbol" else "right")
    for row in latest[:limit]:
        cells = []
        for column in columns:
            value = row.get(column)
            if isinstance(value, float):
                cells.append(f"{value:,.2f}")
            elif isinstance(value, int):
                cells.append(f"{value:,}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    return table


@attrs.define
class _LastRows:
    """Keeps the last rows (bounded) and counts all of them."""

    kept: deque[Record]
    count: int = 0

    def __call__(self, rows: list[Record]) -> None:
        self.kept.extend(rows)
        self.count += len(rows)


@click.command()
@click.option("--records", type=click.IntRange(min=1), default=2_000_000, show_default=True)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Records per second (default: as fast as possible).",
)
@click.option("--partitions", type=click.IntRange(min=1), default=4, show_default=True)
@click.option(
    "--window",
    metavar="DURATION",
    default="1s",
    show_default=True,
    callback=duration_option,
    help="Tumbling window size.",
)
@click.option("--symbols", type=click.IntRange(min=1), default=50, show_default=True)
@click.option(
    "--disorder",
    metavar="DURATION",
    default="100ms",
    show_default=True,
    callback=duration_option,
    help="Bounded out-of-orderness of the generated event times.",
)
@click.option(
    "--allowed-lateness",
    metavar="DURATION",
    default="50ms",
    show_default=True,
    callback=duration_option,
    help="Watermark lag; trades more out of order than this (at a window's end) are late.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--progress/--no-progress", default=None)
@click.option(
    "--ui",
    metavar="[HOST:]PORT",
    default=None,
    callback=ui_option,
    help="Serve the web view and Prometheus /metrics (the URL with its token goes to stderr).",
)
def demo(
    records: int,
    rate: float | None,
    partitions: int,
    window: int,
    symbols: int,
    disorder: int,
    allowed_lateness: int,
    seed: int,
    progress: bool | None,
    ui: tuple[str, int] | None,
) -> None:
    """Generated trades through a per-symbol tumbling-window aggregate, live."""
    if window <= 0:
        fail("--window must be positive", EXIT_USAGE)
    query = demo_sql(window)
    compiled = compile_or_exit(query, allowed_lateness=allowed_lateness)
    source = TradeSource(
        "source", records=records, rate=rate, seed=seed, symbols=symbols, disorder_ms=disorder
    )
    console = console_for(sys.stderr)
    out = console_for(sys.stdout)
    show_progress = sys.stderr.isatty() if progress is None else progress
    last = _LastRows(deque(maxlen=max(4 * symbols, 200)))
    display = (
        ProgressDisplay(console, {}, lambda: last.count, total=records) if show_progress else None
    )
    out.print(f"[bold]partita demo[/]: {records:,} generated trades, {partitions} partitions")
    out.print(query, style="cyan", highlight=False)
    graph, _ = build_sql_graph(compiled, source, CallbackSink("sink", last), partitions=partitions)
    outcome = drive(graph, SupervisorOptions(), progress=display, console=console, ui=ui)
    stats = outcome.stats
    if stats is not None:
        if show_progress:
            show(console, summary_table(stats, elapsed=outcome.elapsed, rows=last.count))
        read = records_read(stats)
        per_s = read / outcome.elapsed if outcome.elapsed > 0 else 0.0
        out.print(
            f"[bold]{read:,}[/] records in {outcome.elapsed:.2f}s "
            f"([bold green]{per_s:,.0f} records/s[/]), {last.count:,} window rows, "
            f"{stats.rows_late:,} late, {stats.rows_errored:,} errored",
            highlight=False,
        )
    if last.kept:
        show(out, _demo_table(list(last.kept), 10))
    if outcome.interrupts:
        fail(f"interrupted; {last.count} rows", EXIT_INTERRUPTED)
