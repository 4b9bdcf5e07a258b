"""The ``partita`` command: run, explain and demo streaming SQL from the shell.

Exit codes: 0 success; 1 runtime failure (the message names the record offset
or input line); 2 usage or SQL error (SQL errors name line and column);
130 interrupted by Ctrl-C.  See ``docs/cli.md``.
"""

from __future__ import annotations

import datetime
import functools
import os
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, TypeAlias

import attrs
import click
import trio
from rich import box
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from partita import sql
from partita.actors import DeadLetterSink
from partita.actors._files import CsvSource, JsonLinesSource
from partita.actors._generator import TradeSource
from partita.actors._jsonl import JsonLinesWriter, encode_lines
from partita.actors._sources import ErrorPolicy, error_leaves
from partita.actors._sqlgraph import open_sql
from partita.runtime import (
    ActorFailed,
    BadRecord,
    GraphStats,
    PartitaError,
    Source,
    Supervisor,
    parse_duration_ms,
    parse_size,
)

from ._progress import ProgressDisplay, records_read, summary_table

__all__ = ["cli", "main", "parse_duration_ms", "parse_size"]


EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended

DEMO_SQL = (
    "SELECT symbol, window_start, window_end, COUNT(*) AS trades, SUM(qty) AS volume,\n"
    "       SUM(price * qty) / SUM(qty) AS vwap, MIN(price) AS low, MAX(price) AS high\n"
    "FROM trades\n"
    "GROUP BY symbol, TUMBLE(ts, INTERVAL {interval})"
)


class CliError(Exception):
    """A failure the command reports as one line on stderr, with an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# ------------------------------------------------------------------ parsing


_OptionCallback: TypeAlias = Callable[[click.Context, click.Parameter, str | None], int | None]


def _parsed_option(parse: Callable[[str], int]) -> _OptionCallback:
    """A click callback that parses the option with ``parse`` (``ValueError``: bad parameter)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None

    return callback


_duration_option = _parsed_option(parse_duration_ms)
_size_option = _parsed_option(parse_size)


def _on_error_option(
    ctx: click.Context, param: click.Parameter, value: str
) -> tuple[ErrorPolicy, str | None]:
    if value == "skip":
        return "skip", None
    if value == "fail":
        return "fail", None
    if value.startswith("dead-letter:") and len(value) > len("dead-letter:"):
        return "dead-letter", value[len("dead-letter:") :]
    raise click.BadParameter(
        f"{value!r} is not one of skip, fail, dead-letter:PATH", ctx, param
    ) from None


# ------------------------------------------------------------------ helpers
def _fail(message: str, code: int) -> NoReturn:
    raise CliError(message, code)


def _runtime_message(exc: BaseException) -> str:
    """One line naming what failed and where (record offset / input line)."""
    if isinstance(exc, ActorFailed):
        cause = exc.error
        if isinstance(cause, BadRecord):
            offset = cause.offset if cause.offset is not None else exc.offset
            where = f" at record offset {offset}" if offset is not None else ""
            return f"bad record{where} (in {exc.actor!r}): {cause.reason}"
        where = f" at record offset {exc.offset}" if exc.offset is not None else ""
        return f"{exc.actor!r} failed{where}: {type(cause).__name__}: {cause}"
    return f"{type(exc).__name__}: {exc}" if not isinstance(exc, PartitaError) else str(exc)


def _compile(query: str, **options: Any) -> Any:
    """Compile ``query``; a SQL error becomes exit 2 naming line and column."""
    try:
        return sql.compile_query(query, **options)
    except sql.SqlError as exc:
        line = getattr(exc, "line", None)
        col = getattr(exc, "col", None)
        message = getattr(exc, "message", None) or str(exc)
        if line is not None and col is not None:
            _fail(f"SQL error at line {line}, column {col}: {message}", EXIT_USAGE)
        _fail(f"SQL error: {message}", EXIT_USAGE)
    except (ValueError, TypeError) as exc:
        _fail(f"invalid query options: {exc}", EXIT_USAGE)


def _stderr_console() -> Console:
    return Console(file=sys.stderr, stderr=True)


def _want_progress(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


@attrs.define
class _RowCounter:
    rows: int = 0

    def __call__(self) -> int:
        return self.rows


@attrs.define
class _Outcome:
    stats: GraphStats | None = None
    elapsed: float = 0.0
    interrupts: int = 0
    terminated: bool = False
    consumer_gone: bool = False


async def _watch_interrupts(
    supervisor: Supervisor, nursery: trio.Nursery, outcome: _Outcome, console: Console
) -> None:
    """First Ctrl-C or SIGTERM: graceful cancel (drain, flush).  Second: cancel now."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            outcome.interrupts += 1
            if outcome.interrupts == 1:
                outcome.terminated = signum == signal.SIGTERM
                what = "terminated" if outcome.terminated else "interrupted"
                console.print(
                    f"[yellow]partita: {what}, draining and flushing (Ctrl-C again to stop now)[/]",
                    highlight=False,
                )
                nursery.start_soon(functools.partial(supervisor.cancel, graceful=True))
            else:
                console.print("[red]partita: stopping now[/]", highlight=False)
                # cancel the graph and whatever the consumer waits in (a blocked write)
                nursery.cancel_scope.cancel()
                await supervisor.cancel(graceful=False)
                return


async def _stream(
    query: Any,
    source: Source,
    options: dict[str, Any],
    on_rows: Callable[[list[dict[str, Any]]], Awaitable[None] | None],
    *,
    progress: ProgressDisplay | None,
    outcome: _Outcome,
    console: Console,
    counter: _RowCounter,
) -> None:
    """Run ``query`` over ``source`` with ``open_sql``, handing each batch of rows to
    ``on_rows``."""
    started = trio.current_time()
    supervisor: Supervisor | None = None
    try:
        async with open_sql(query, source, **options) as stream:
            supervisor = stream.supervisor
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_interrupts, supervisor, nursery, outcome, console)
                if progress is not None:
                    progress.capacities = {
                        a.name: supervisor.graph.capacity_of(a)
                        for a in supervisor.graph
                        if supervisor.graph.inputs_of(a)
                    }
                    nursery.start_soon(progress.run, supervisor)
                try:
                    async for rows in stream.batches():
                        written = on_rows(rows)
                        if written is not None:
                            await written
                        counter.rows += len(rows)
                except BrokenPipeError:
                    outcome.consumer_gone = True
                nursery.cancel_scope.cancel()
    finally:
        outcome.elapsed = trio.current_time() - started
        if supervisor is not None:
            outcome.stats = supervisor.stats()


def _run_trio(
    query: Any,
    source: Source,
    options: dict[str, Any],
    on_rows: Callable[[list[dict[str, Any]]], Awaitable[None] | None],
    *,
    progress: ProgressDisplay | None,
    console: Console,
    counter: _RowCounter,
) -> _Outcome:
    """``trio.run`` the stream; map failures to :class:`CliError` (exit 1)."""
    outcome = _Outcome()
    try:
        trio.run(
            functools.partial(
                _stream,
                query,
                source,
                options,
                on_rows,
                progress=progress,
                outcome=outcome,
                console=console,
                counter=counter,
            )
        )
    except KeyboardInterrupt:
        outcome.interrupts = max(outcome.interrupts, 1)
    except BaseException as exc:
        known = [e for e in error_leaves(exc) if isinstance(e, PartitaError | OSError | ValueError)]
        if isinstance(exc, SystemExit | CliError) or not known:
            raise
        first = known[0]
        if isinstance(first, PartitaError):
            _fail(_runtime_message(first), EXIT_RUNTIME)
        _fail(f"{type(first).__name__}: {first}", EXIT_RUNTIME)
    return outcome


def _open_output(path: str) -> JsonLinesWriter:
    writer = JsonLinesWriter(path)
    try:
        writer.open()
    except OSError as exc:
        _fail(f"cannot write output {path!r}: {exc.strerror or exc}", EXIT_USAGE)
    return writer


def _same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name one file (symlinks and hard links resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist yet: compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def _check_paths(input_path: str, output_path: str, dead_letter_path: str | None) -> None:
    """Refuse, before anything is opened, any two of the run's files being one file."""
    named = [("--input", input_path), ("--output", output_path)]
    if dead_letter_path is not None:
        named.append(("--dead-letter", dead_letter_path))
    files = [(flag, path) for flag, path in named if path != "-"]
    for i, (flag_a, a) in enumerate(files):
        for flag_b, b in files[i + 1 :]:
            if _same_file(a, b):
                _fail(f"{flag_b} {b!r} is the same file as {flag_a} {a!r}", EXIT_USAGE)
    if dead_letter_path is not None:
        folder = os.path.dirname(os.path.abspath(dead_letter_path))
        if not os.path.isdir(folder):
            _fail(
                f"cannot write dead letters to {dead_letter_path!r}: no such directory {folder!r}",
                EXIT_USAGE,
            )


def _make_source(path: str, fmt: str, on_error: ErrorPolicy) -> Source:
    if path != "-" and not os.path.exists(path):
        _fail(f"cannot read input {path!r}: no such file", EXIT_USAGE)
    if path != "-" and os.path.isdir(path):
        _fail(f"cannot read input {path!r}: is a directory", EXIT_USAGE)
    if fmt == "auto":
        fmt = "csv" if path.lower().endswith(".csv") else "jsonl"
    if fmt == "csv":
        if path == "-":
            _fail("--format csv needs a file path, not '-'", EXIT_USAGE)
        return CsvSource("source", path, on_error=on_error)
    return JsonLinesSource("source", path, on_error=on_error)


# ----------------------------------------------------------------- commands
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="partita", prog_name="partita")
def cli() -> None:
    """partita: streaming SQL on an actor runtime (trio).

    \b
    partita demo                      a windowed aggregate over generated trades
    partita run --sql Q --input F     run a query over a JSON-lines (or CSV) file
    partita explain --sql Q           show the plan and the generated code
    """


@cli.command()
@click.option("--sql", "query", required=True, metavar="QUERY", help="The SQL query to run.")
@click.option(
    "--input",
    "input_path",
    required=True,
    metavar="PATH|-",
    help="JSON-lines file (one object per line), a .csv file, or - for stdin.",
)
@click.option(
    "--output",
    "output_path",
    default="-",
    show_default=True,
    metavar="PATH|-",
    help="Where result rows go, one JSON object per line (- is stdout).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "jsonl", "csv"]),
    default="auto",
    show_default=True,
    help="Input format; auto picks csv for *.csv, else JSON lines.",
)
@click.option("--partitions", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Records per batch (default: adaptive).",
)
@click.option(
    "--event-time",
    metavar="FIELD",
    default=None,
    help="Event-time column when the query does not name one.",
)
@click.option(
    "--allowed-lateness",
    metavar="DURATION",
    default="0",
    show_default=True,
    callback=_duration_option,
    help="Watermark = max event time - lateness (250ms, 5s, 1m; bare number = ms).",
)
@click.option(
    "--on-error",
    metavar="skip|fail|dead-letter:PATH",
    default="skip",
    show_default=True,
    callback=_on_error_option,
    help="Bad records (malformed lines, missing fields, wrong types).",
)
@click.option(
    "--late",
    type=click.Choice(["drop", "dead-letter", "update"]),
    default="drop",
    show_default=True,
    help="Records behind the watermark.",
)
@click.option(
    "--dead-letter",
    "dead_letter_path",
    metavar="PATH",
    default=None,
    help="Dead-letter file (JSON lines) for --late dead-letter; --on-error dead-letter:PATH "
    "sets it too.",
)
@click.option(
    "--max-memory",
    metavar="SIZE",
    default=None,
    callback=_size_option,
    help="Cap on bytes buffered in mailboxes (64MB, 1GiB; K/M/G are 1024-based).",
)
@click.option(
    "--idle-timeout",
    metavar="DURATION",
    default=None,
    callback=_duration_option,
    help="After this long with no input (a live stdin), event time advances by the time "
    "idle, so the last windows close (250ms, 5s; bare number = ms).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Live progress on stderr (default: only when stderr is a terminal).",
)
def run(
    query: str,
    input_path: str,
    output_path: str,
    fmt: str,
    partitions: int,
    batch_size: int | None,
    event_time: str | None,
    allowed_lateness: int,
    on_error: tuple[ErrorPolicy, str | None],
    late: str,
    dead_letter_path: str | None,
    max_memory: int | None,
    idle_timeout: int | None,
    progress: bool | None,
) -> None:
    """Run QUERY over an input; write one JSON object per result row."""
    policy, error_path = on_error
    if error_path is not None:
        if dead_letter_path is not None and dead_letter_path != error_path:
            _fail(
                "--on-error dead-letter:PATH and --dead-letter PATH name different files",
                EXIT_USAGE,
            )
        dead_letter_path = error_path
    if late == "dead-letter" and dead_letter_path is None:
        _fail(
            "--late dead-letter needs a file: --dead-letter PATH (or dead-letter:PATH)", EXIT_USAGE
        )
    if max_memory is not None and max_memory <= 0:
        _fail(f"--max-memory must be more than 0 bytes, got {max_memory}", EXIT_USAGE)
    _check_paths(input_path, output_path, dead_letter_path)
    compiled = _compile(
        query,
        allowed_lateness=allowed_lateness,
        event_time=event_time,
        on_error=policy,
        late=late,
    )
    source = _make_source(input_path, fmt, policy)
    options: dict[str, Any] = {
        "partitions": partitions,
        "batch_size": batch_size,
        # with nowhere to write them (--late update's expired records), dead letters are
        # counted in the stats but never kept: memory must not grow with the stream
        "dead_letter": dead_letter_path or DeadLetterSink("dead-letter", keep=False),
        "max_memory": max_memory,
    }
    if idle_timeout is not None:
        if idle_timeout <= 0:
            _fail(f"--idle-timeout must be more than 0, got {idle_timeout} ms", EXIT_USAGE)
        options["idle_timeout"] = idle_timeout  # milliseconds, the one unit of bare numbers
    console = _stderr_console()
    show = _want_progress(progress)
    counter = _RowCounter()
    display = ProgressDisplay(console, {}, counter) if show else None
    out = _open_output(output_path)

    async def on_rows(rows: list[dict[str, Any]]) -> None:
        # in a worker thread: a reader that stops reading never blocks the event loop
        # (Ctrl-C still works); cancelling (a second Ctrl-C) abandons the write
        try:
            await trio.to_thread.run_sync(out.write, encode_lines(rows), abandon_on_cancel=True)
        except BrokenPipeError:
            raise
        except OSError as exc:  # a full disk, a lost mount: say where
            raise OSError(
                exc.errno, f"cannot write output {output_path!r}: {exc.strerror or exc}"
            ) from None

    try:
        outcome = _run_trio(
            compiled,
            source,
            options,
            on_rows,
            progress=display,
            console=console,
            counter=counter,
        )
    finally:
        out.close()
    if outcome.consumer_gone:
        # The reader of stdout went away (e.g. `| head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return
    stats = outcome.stats
    if show and stats is not None:
        console.print(summary_table(stats, elapsed=outcome.elapsed, rows=counter.rows))
    elif stats is not None:
        _warn_dropped(console, stats, policy, late)
    if outcome.terminated:
        _fail(f"terminated (SIGTERM); wrote {counter.rows} rows", EXIT_TERMINATED)
    if outcome.interrupts:
        _fail(f"interrupted; wrote {counter.rows} rows", EXIT_INTERRUPTED)


def _warn_dropped(console: Console, stats: GraphStats, policy: str, late: str) -> None:
    """Without progress: one line each when records were skipped or dropped as late."""
    if stats.rows_errored and policy == "skip":
        console.print(
            f"partita: skipped {stats.rows_errored:,} bad record(s) "
            "(--on-error fail or dead-letter:PATH to see them):",
            highlight=False,
            soft_wrap=True,
        )
        for reason, count in stats.errors_by_reason():
            console.print(f"  {count:,}: {reason}", highlight=False, soft_wrap=True, markup=False)
    if stats.rows_late and late == "drop":
        console.print(
            f"partita: dropped {stats.rows_late:,} late record(s) "
            "(--allowed-lateness, or --late dead-letter / update)",
            highlight=False,
            soft_wrap=True,
        )


@cli.command()
@click.option("--sql", "query", required=True, metavar="QUERY", help="The SQL query to explain.")
@click.option("--event-time", metavar="FIELD", default=None)
@click.option("--allowed-lateness", metavar="DURATION", default="0", callback=_duration_option)
def explain(query: str, event_time: str | None, allowed_lateness: int) -> None:
    """Print QUERY's logical plan and the Python code it compiles to."""
    _compile(query, event_time=event_time, allowed_lateness=allowed_lateness)
    text = sql.explain(query, event_time=event_time, allowed_lateness=allowed_lateness)
    if not sys.stdout.isatty():
        click.echo(text.rstrip("\n"))
        return
    # In a terminal: the generated Python highlighted.
    out = Console()
    head, marker, code = text.partition("-- generated code")
    out.print(head.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    if marker:
        title, _, body = code.partition("\n")
        out.print(marker + title, style="bold", markup=False, highlight=False)
        code_view = Syntax(
            body.rstrip("\n"), "python", theme="ansi_dark", background_color="default"
        )
        out.print(code_view, soft_wrap=True)


def _interval(ms: int) -> str:
    if ms % 1000 == 0:
        return f"'{ms // 1000}' SECOND"
    return f"'{ms}' MILLISECOND"


def demo_sql(window_ms: int) -> str:
    """The demo's query: per-symbol tumbling-window trades, volume, VWAP, low/high."""
    return DEMO_SQL.format(interval=_interval(window_ms))


def _clock(ms: Any) -> str:
    """Epoch milliseconds as a UTC time of day, ``HH:MM:SS.mmm``."""
    if not isinstance(ms, int):
        return str(ms)
    stamp = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return stamp.strftime("%H:%M:%S.") + f"{ms % 1000:03d}"


def _demo_table(rows: Sequence[dict[str, Any]], limit: int) -> Table:
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
        min_width=72,
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


@cli.command()
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
    callback=_duration_option,
    help="Tumbling window size.",
)
@click.option("--symbols", type=click.IntRange(min=1), default=50, show_default=True)
@click.option(
    "--disorder",
    metavar="DURATION",
    default="100ms",
    show_default=True,
    callback=_duration_option,
    help="Bounded out-of-orderness of the generated event times.",
)
@click.option(
    "--allowed-lateness",
    metavar="DURATION",
    default="50ms",
    show_default=True,
    callback=_duration_option,
    help="Watermark lag; trades more out of order than this (at a window's end) are late.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--progress/--no-progress", default=None)
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
) -> None:
    """Generated trades through a per-symbol tumbling-window aggregate, live."""
    if window <= 0:
        _fail("--window must be positive", EXIT_USAGE)
    query = demo_sql(window)
    compiled = _compile(query, allowed_lateness=allowed_lateness)
    source = TradeSource(
        "source", records=records, rate=rate, seed=seed, symbols=symbols, disorder_ms=disorder
    )
    console = _stderr_console()
    out = Console()
    show = _want_progress(progress)
    counter = _RowCounter()
    display = ProgressDisplay(console, {}, counter, total=records) if show else None
    kept: deque[dict[str, Any]] = deque(maxlen=max(4 * symbols, 200))
    out.print(f"[bold]partita demo[/]: {records:,} generated trades, {partitions} partitions")
    out.print(query, style="cyan", highlight=False)
    outcome = _run_trio(
        compiled,
        source,
        {"partitions": partitions},
        kept.extend,
        progress=display,
        console=console,
        counter=counter,
    )
    stats = outcome.stats
    if stats is not None:
        if show:
            console.print(summary_table(stats, elapsed=outcome.elapsed, rows=counter.rows))
        read = records_read(stats)
        per_s = read / outcome.elapsed if outcome.elapsed > 0 else 0.0
        out.print(
            f"[bold]{read:,}[/] records in {outcome.elapsed:.2f}s "
            f"([bold green]{per_s:,.0f} records/s[/]), {counter.rows:,} window rows, "
            f"{stats.rows_late:,} late, {stats.rows_errored:,} errored",
            highlight=False,
        )
    if kept:
        out.print(_demo_table(list(kept), 10))
    if outcome.interrupts:
        _fail(f"interrupted; {counter.rows} rows", EXIT_INTERRUPTED)


def main(argv: Sequence[str] | None = None) -> None:
    """The console script ``partita``."""
    try:
        code = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="partita",
            standalone_mode=False,
        )
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("partita: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except CliError as exc:
        sys.stdout.flush()
        click.echo(f"partita: {exc.message}", err=True)
        sys.exit(exc.code)
    except KeyboardInterrupt:
        click.echo("partita: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    main()
