"""The ``partita`` command group and its ``run`` and ``explain`` commands.

Exit codes: 0 success; 1 runtime failure (the message names the input line or
record offset); 2 usage or SQL error (SQL errors name line and column); 130
interrupted by Ctrl-C; 141 the reader of stdout went away; 143 terminated by
SIGTERM.  See ``docs/cli.md``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from partita.actors import CsvSink, DeadLetterSink, JsonLinesSink, RecordSource, build_sql_graph
from partita.actors._checkpoints import fingerprint, open_checkpointing
from partita.actors._limit import LimitedSink, run_limit
from partita.runtime import BatchSizer, GraphStats, OnError, Sink, SupervisorOptions

from ._columns import warn_missing_columns
from ._console import console_for, show
from ._driver import drive
from ._exit import EXIT_INTERRUPTED, EXIT_READER_GONE, EXIT_TERMINATED, EXIT_USAGE, fail
from ._group import cli
from ._inputs import query_files
from ._parse import (
    compile_or_exit,
    duration_option,
    on_error_option,
    query_text,
    schema_or_exit,
    size_option,
    ui_option,
)
from ._paths import OUTPUT_FORMATS, check_paths, make_sink, make_source, output_format
from ._postgres import is_postgres_url, postgres_sink, postgres_source
from ._progress import ProgressDisplay, summary_table
from ._redis import consume, is_redis_url, produce, redis_sink, redis_source

if TYPE_CHECKING:  # a file run imports none of these (nor pyarrow, psycopg, coredis)
    from partita.actors import ParquetSink, PostgresSink, RedisStreamSink

__all__ = ["cli", "want_progress"]


def want_progress(flag: bool | None) -> bool:
    """``--progress/--no-progress``; by default only when stderr is a terminal."""
    return sys.stderr.isatty() if flag is None else flag


def _sql_options(verb: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--sql``, ``--sql-file`` and ``--schema``: the query and its input's schema."""

    def add(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option(
            "--schema",
            metavar="COLUMNS",
            default=None,
            help="The input's columns and types, 'id BIGINT, cur TEXT, ts TIMESTAMP' (or "
            "CREATE STREAM in the query): unknown columns are refused, values coerced.",
        )(f)
        f = click.option(
            "--sql-file",
            metavar="PATH",
            default=None,
            help="A file with the query, optionally after CREATE STREAM declarations.",
        )(f)
        return click.option("--sql", "query", metavar="QUERY", help=f"The SQL query to {verb}.")(f)

    return add


@cli.command()
@_sql_options("run")
@click.option(
    "--input",
    "inputs",
    required=True,
    multiple=True,
    metavar="[NAME=]PATH|-",
    help="JSON-lines file (one object per line), a .csv file, - for stdin, or a "
    "postgres://user@host:port/db URL (with --query).  Once per input the query reads, "
    "as NAME=PATH: --input orders=orders.jsonl --input rates=rates.csv (a table it joins "
    "is read whole first).",
)
@click.option(
    "--query",
    "pg_query",
    metavar="SELECT",
    default=None,
    help="With --input postgres://...: the query whose rows are the input (or ?query= in "
    "the URL; ?order_by=KEY makes it resumable for --checkpoint).",
)
@click.option(
    "--output",
    "output_path",
    default="-",
    show_default=True,
    metavar="PATH|-",
    help="Where result rows go: a file (by --output-format; - is stdout, JSON lines), or "
    "a Postgres table: postgres://user@host:port/db?table=T[&key=K1,K2] (key: upsert).",
)
@click.option(
    "--output-format",
    "output_fmt",
    type=click.Choice(OUTPUT_FORMATS),
    default="auto",
    show_default=True,
    help="Output format; auto picks csv for *.csv, parquet for *.parquet / *.pq, else "
    "JSON lines (parquet needs the parquet extra).",
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
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Stop after N result rows (as the query's LIMIT N / EMIT CHANGES LIMIT N).",
)
@click.option(
    "--timeout",
    metavar="DURATION",
    default=None,
    callback=duration_option,
    help="Stop after this long (30s, 5m; bare number = ms): the input stops being read, "
    "what was read is finished and the output flushed; exit 0.",
)
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
    default=None,
    callback=duration_option,
    help="Watermark = max event time - lateness (250ms, 5s, 1m; bare number = ms; default "
    "the CREATE STREAM ... WITH (lateness = ...) of the query, else 0).",
)
@click.option(
    "--on-error",
    metavar="skip|fail|dead-letter:PATH",
    default="skip",
    show_default=True,
    callback=on_error_option,
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
    callback=size_option,
    help="Cap on bytes buffered in mailboxes (64MB, 1GiB; K/M/G are 1024-based).",
)
@click.option(
    "--idle-timeout",
    metavar="DURATION",
    default=None,
    callback=duration_option,
    help="After this long with no input (a live stdin), event time advances by the time "
    "idle, so the last windows close (250ms, 5s; bare number = ms).",
)
@click.option(
    "--checkpoint",
    "checkpoint_dir",
    metavar="DIR",
    default=None,
    help="Checkpoint the run's state into DIR; the same command after a crash resumes "
    "from the last checkpoint (exactly-once into --output FILE).",
)
@click.option(
    "--checkpoint-interval",
    metavar="DURATION",
    default=None,
    callback=duration_option,
    help="Time between checkpoints (default 5s).",
)
@click.option(
    "--fresh",
    is_flag=True,
    default=False,
    help="With --checkpoint: discard what DIR holds and start from the beginning.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Live progress on stderr (default: only when stderr is a terminal).",
)
@click.option(
    "--ui",
    metavar="[HOST:]PORT",
    default=None,
    callback=ui_option,
    help="Serve the web view and Prometheus /metrics while the run lasts (host "
    "127.0.0.1 unless given; the URL with its control token goes to stderr).",
)
def run(
    query: str | None,
    sql_file: str | None,
    schema: str | None,
    inputs: tuple[str, ...],
    pg_query: str | None,
    output_path: str,
    output_fmt: str,
    fmt: str,
    partitions: int,
    limit: int | None,
    timeout: int | None,
    batch_size: int | None,
    event_time: str | None,
    allowed_lateness: int | None,
    on_error: tuple[OnError, str | None],
    late: str,
    dead_letter_path: str | None,
    max_memory: int | None,
    idle_timeout: int | None,
    checkpoint_dir: str | None,
    checkpoint_interval: int | None,
    fresh: bool,
    progress: bool | None,
    ui: tuple[str, int] | None,
) -> None:
    """Run QUERY over an input; write the result rows (JSON lines, CSV or Parquet)."""
    text = query_text(query, sql_file)
    files = query_files(text, inputs, stream_needed=True)
    assert files.stream is not None
    input_path = files.stream
    policy, error_path = on_error
    if error_path is not None:
        if dead_letter_path is not None and dead_letter_path != error_path:
            fail(
                "--on-error dead-letter:PATH and --dead-letter PATH name different files",
                EXIT_USAGE,
            )
        dead_letter_path = error_path
    if late == "dead-letter" and dead_letter_path is None:
        fail(
            "--late dead-letter needs a file: --dead-letter PATH (or dead-letter:PATH)", EXIT_USAGE
        )
    if max_memory is not None and max_memory <= 0:
        fail(f"--max-memory must be more than 0 bytes, got {max_memory}", EXIT_USAGE)
    if idle_timeout is not None and idle_timeout <= 0:
        fail(f"--idle-timeout must be more than 0, got {idle_timeout} ms", EXIT_USAGE)
    if timeout is not None and timeout <= 0:
        fail(f"--timeout must be more than 0, got {timeout} ms", EXIT_USAGE)
    if checkpoint_dir is None and (checkpoint_interval is not None or fresh):
        fail("--checkpoint-interval and --fresh need --checkpoint DIR", EXIT_USAGE)
    if checkpoint_interval is not None and checkpoint_interval <= 0:
        fail(f"--checkpoint-interval must be more than 0, got {checkpoint_interval} ms", EXIT_USAGE)
    if checkpoint_dir is not None and input_path == "-":
        fail("--checkpoint needs an --input file: standard input cannot be read again", EXIT_USAGE)
    check_paths(input_path, output_path, dead_letter_path)
    to_server = is_postgres_url(output_path) or is_redis_url(output_path)
    if to_server and output_fmt != "auto":
        fail(f"--output-format {output_fmt} is for an --output file, not a server", EXIT_USAGE)
    if (
        not to_server
        and checkpoint_dir is not None
        and output_format(output_path, output_fmt) == "parquet"
    ):
        fail(
            "--checkpoint cannot resume a Parquet output (the file is complete only at "
            "the end): write CSV or JSON lines, or run without --checkpoint",
            EXIT_USAGE,
        )
    compiled = compile_or_exit(
        text,
        allowed_lateness=allowed_lateness,
        event_time=event_time,
        on_error=policy,
        late=late,
        schema=schema_or_exit(schema),
        tables=files.tables or None,
    )
    console = console_for(sys.stderr)
    if is_postgres_url(input_path):
        source: RecordSource = postgres_source(input_path, pg_query, policy)
    elif pg_query is not None:
        fail("--query is for a postgres:// --input; the streaming query is --sql", EXIT_USAGE)
    elif is_redis_url(input_path):
        source = redis_source(input_path, policy)
    else:
        source = make_source(input_path, fmt, policy)
    joined_source = None
    if compiled.stream_join is not None:
        source.on_first_records = warn_missing_columns(compiled, console, "left")
        right = compiled.stream_join.right
        joined_path = files.joined
        assert joined_path is not None
        if is_postgres_url(joined_path) or is_redis_url(joined_path):
            fail(f"--input {right}=...: the joined stream is read from a file", EXIT_USAGE)
        if joined_path == "-" and input_path == "-":
            fail(f"--input {right}=-: only one input can be standard input", EXIT_USAGE)
        if checkpoint_dir is not None and joined_path == "-":
            fail(
                "--checkpoint needs --input files: standard input cannot be read again", EXIT_USAGE
            )
        check_paths(joined_path, output_path, dead_letter_path)
        joined_source = make_source(joined_path, fmt, policy, f"source-{right}")
        joined_source.on_first_records = warn_missing_columns(compiled, console, "right")
    else:
        source.on_first_records = warn_missing_columns(compiled, console)
    for each in (source, joined_source):
        if each is None:
            continue
        if batch_size is not None:
            each.sizer = BatchSizer.fixed(batch_size)
        if idle_timeout is not None:
            each.idle_timeout = idle_timeout / 1000
    sink: JsonLinesSink | CsvSink | ParquetSink | PostgresSink | RedisStreamSink = (
        postgres_sink(output_path)
        if is_postgres_url(output_path)
        else redis_sink(output_path)
        if is_redis_url(output_path)
        else make_sink(output_path, output_fmt)
    )
    # with nowhere to write them (--late update's expired records), dead letters are
    # counted in the stats but never kept: memory must not grow with the stream
    dead = dead_letter_path or DeadLetterSink("dead-letter", keep=False)
    rows_limit = run_limit(limit, compiled.limit)
    target: Sink = sink if rows_limit is None else LimitedSink(sink.name, sink, rows_limit)
    graph, _ = build_sql_graph(
        compiled,
        source,
        target,
        partitions=partitions,
        dead_letter=dead,
        joined_source=joined_source,
    )
    show_progress = want_progress(progress)
    display = ProgressDisplay(console, {}, lambda: sink.rows_written) if show_progress else None
    options = SupervisorOptions(max_memory=max_memory)
    checkpoints = None
    if checkpoint_dir is not None:
        checkpoints = functools.partial(
            open_checkpointing,
            checkpoint_dir,
            interval=checkpoint_interval,
            fresh=fresh,
            job=fingerprint(compiled, partitions, source, joined_source),
        )
    outcome = drive(
        graph,
        options,
        progress=display,
        console=console,
        where=source.describe_offset,
        checkpoints=checkpoints,
        ui=ui,
        timeout=None if timeout is None else timeout / 1000,
    )
    if (
        isinstance(sink, JsonLinesSink | CsvSink)
        and sink.reader_gone
        and not _limit_reached(target)
    ):
        # The reader of stdout went away (`| head`): stop quietly, as SIGPIPE would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_READER_GONE)
    stats = outcome.stats
    if show_progress and stats is not None:
        show(console, summary_table(stats, elapsed=outcome.elapsed, rows=sink.rows_written))
    elif stats is not None:
        _warn_dropped(console, stats, policy, late)
    if outcome.terminated:
        fail(f"terminated (SIGTERM); wrote {sink.rows_written} rows", EXIT_TERMINATED)
    if outcome.interrupts:
        fail(f"interrupted; wrote {sink.rows_written} rows", EXIT_INTERRUPTED)
    if stats is not None and stats.stopped_by == "timeout":
        console.print(
            f"partita: stopped by --timeout after {_duration_text(timeout)}; "
            f"wrote {sink.rows_written} rows",
            highlight=False,
            soft_wrap=True,
        )


def _duration_text(ms: int | None) -> str:
    """``5s`` for 5000, ``250ms`` for 250."""
    return f"{ms // 1000}s" if ms is not None and ms % 1000 == 0 else f"{ms}ms"


def _limit_reached(target: Sink) -> bool:
    return isinstance(target, LimitedSink) and target.written == target.limit


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


def _tables_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--input NAME=FILE`` for the tables a query joins (explain, describe)."""
    return click.option(
        "--input",
        "inputs",
        multiple=True,
        metavar="NAME=FILE",
        help="A table the query joins (CSV or JSON lines), once per table.",
    )(f)


def _tables(text: str, inputs: tuple[str, ...]) -> dict[str, Any] | None:
    """The tables the query joins, read from ``--input NAME=FILE`` (``None``: no join)."""
    if not inputs:
        return None  # a query that joins a table says it needs one
    return query_files(text, inputs, stream_needed=False).tables or None


@cli.command()
@_sql_options("explain")
@_tables_option
@click.option("--event-time", metavar="FIELD", default=None)
@click.option("--allowed-lateness", metavar="DURATION", default=None, callback=duration_option)
def explain(
    query: str | None,
    sql_file: str | None,
    schema: str | None,
    inputs: tuple[str, ...],
    event_time: str | None,
    allowed_lateness: int | None,
) -> None:
    """Print QUERY's logical plan and the Python code it compiles to."""
    sql_text = query_text(query, sql_file)
    text = compile_or_exit(
        sql_text,
        event_time=event_time,
        allowed_lateness=allowed_lateness,
        schema=schema_or_exit(schema),
        tables=_tables(sql_text, inputs),
    ).explain()
    if not sys.stdout.isatty():
        click.echo(text.rstrip("\n"))
        return
    # In a terminal: the generated Python highlighted.
    out = console_for(sys.stdout)
    head, marker, code = text.partition("-- generated code")
    out.print(head.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    if marker:
        title, _, body = code.partition("\n")
        out.print(marker + title, style="bold", markup=False, highlight=False)
        from rich.syntax import Syntax  # pygments: only to show code in a terminal

        code_view = Syntax(
            body.rstrip("\n"), "python", theme="ansi_dark", background_color="default"
        )
        out.print(code_view, soft_wrap=True)


@cli.command()
@_sql_options("describe")
@_tables_option
@click.option("--event-time", metavar="FIELD", default=None)
@click.option("--allowed-lateness", metavar="DURATION", default=None, callback=duration_option)
def describe(
    query: str | None,
    sql_file: str | None,
    schema: str | None,
    inputs: tuple[str, ...],
    event_time: str | None,
    allowed_lateness: int | None,
) -> None:
    """Print the query's inputs: columns, types, event time and watermark; and its output."""
    sql_text = query_text(query, sql_file)
    compiled = compile_or_exit(
        sql_text,
        event_time=event_time,
        allowed_lateness=allowed_lateness,
        schema=schema_or_exit(schema),
        tables=_tables(sql_text, inputs),
    )
    click.echo(compiled.describe())


cli.add_command(produce)
cli.add_command(consume)
