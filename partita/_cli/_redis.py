"""Redis Streams topics on the command line: ``produce``, ``consume``, and ``redis://`` URLs.

``--input redis://HOST:PORT[/DB]?topic=T`` reads a bounded topic (to its end
markers) as the run's input; ``--output redis://HOST:PORT?topic=O[&partitions=N&key=K]``
writes the result rows to a topic and closes it at the end.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import click

from partita.actors import JsonLinesSink, JsonLinesSource
from partita.runtime import BatchSizer, Graph, OnError, SupervisorOptions

from ._console import console_for
from ._driver import drive
from ._exit import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, fail

if TYPE_CHECKING:  # imported where they are made: a file run needs neither (nor coredis)
    from partita.actors import RedisStreamSink, RedisStreamSource

__all__ = ["consume", "is_redis_url", "produce", "redis_sink", "redis_source"]

_PRODUCE_BATCH = 8192


def is_redis_url(text: str) -> bool:
    """Whether ``--input``/``--output`` names a Redis topic (``redis://``, ``rediss://``)."""
    return text.startswith(("redis://", "rediss://"))


def _split(url: str, flag: str, allowed: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        fail(f"{flag} {parts.scheme}://...: unknown parameter {unknown[0]!r}", EXIT_USAGE)
    if not params.get("topic"):
        fail(f"{flag} {parts.scheme}://... needs the topic: ?topic=NAME", EXIT_USAGE)
    return urlunsplit(parts._replace(query="")), params


def redis_source(url: str, on_error: OnError) -> RedisStreamSource:
    """The source ``--input redis://...?topic=T`` asks for: the bounded topic, from its start."""
    server, params = _split(url, "--input", ("topic",))
    from partita.actors import RedisStreamSource

    return RedisStreamSource("source", server, params["topic"], on_error=on_error)


def redis_sink(url: str) -> RedisStreamSink:
    """The sink ``--output redis://...?topic=O[&partitions=N&key=K]`` asks for."""
    server, params = _split(url, "--output", ("topic", "partitions", "key"))
    text = params.get("partitions", "1")
    if not text.isdigit() or int(text) < 1:
        fail(f"--output redis://...: partitions must be 1 or more, got {text!r}", EXIT_USAGE)
    from partita.actors import RedisStreamSink

    return RedisStreamSink(
        "sink", server, params["topic"], partitions=int(text), key=params.get("key") or None
    )


def _finish(outcome_terminated: bool, interrupts: int, rows: int) -> None:
    if outcome_terminated:
        fail(f"terminated (SIGTERM); wrote {rows} rows", EXIT_TERMINATED)
    if interrupts:
        fail(f"interrupted; wrote {rows} rows", EXIT_INTERRUPTED)


@click.command()
@click.option("--redis", "url", required=True, metavar="URL", help="redis://HOST:PORT[/DB]")
@click.option("--topic", required=True, metavar="T", help="The topic to write.")
@click.option("--partitions", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--key",
    metavar="FIELD",
    default=None,
    help="Route records by this field (the in-process router's stable hash); "
    "without it, partition 0 only.",
)
@click.option("--input", "input_path", default="-", show_default=True, metavar="PATH|-")
@click.option(
    "--keep-open", is_flag=True, help="Do not mark the partitions' ends (more may follow)."
)
def produce(
    url: str, topic: str, partitions: int, key: str | None, input_path: str, keep_open: bool
) -> None:
    """Load JSON lines into a Redis Streams topic, one entry per batch."""
    if key is None and partitions > 1:
        fail("--partitions more than 1 needs --key FIELD to route records by", EXIT_USAGE)
    from partita.actors import RedisStreamSink

    # big batches: each is one entry per partition and one round of XADDs
    source = JsonLinesSource(
        "source", input_path, on_error="fail", sizer=BatchSizer.fixed(_PRODUCE_BATCH)
    )
    sink = RedisStreamSink("sink", url, topic, partitions=partitions, key=key, close=not keep_open)
    graph = Graph()
    graph.add(source)
    graph.add(sink, inputs=[source])
    console = console_for(sys.stderr)
    outcome = drive(
        graph, SupervisorOptions(), progress=None, console=console, where=source.describe_offset
    )
    _finish(outcome.terminated, outcome.interrupts, sink.rows_written)


@click.command()
@click.option("--redis", "url", required=True, metavar="URL", help="redis://HOST:PORT[/DB]")
@click.option("--topic", required=True, metavar="T", help="The topic to read.")
@click.option(
    "--from-start", is_flag=True, help="Read from the first entry (default: new entries only)."
)
@click.option(
    "--until-end", is_flag=True, help="Stop at the end markers (default: follow until Ctrl-C)."
)
def consume(url: str, topic: str, from_start: bool, until_end: bool) -> None:
    """Print a Redis Streams topic as JSON lines."""
    from partita.actors import RedisStreamSource

    source = RedisStreamSource(
        "source", url, topic, start="0-0" if from_start else "$", until_end=until_end
    )
    sink = JsonLinesSink("sink", "-")
    graph = Graph()
    graph.add(source)
    graph.add(sink, inputs=[source])
    console = console_for(sys.stderr)
    outcome = drive(graph, SupervisorOptions(), progress=None, console=console)
    _finish(outcome.terminated, outcome.interrupts, sink.rows_written)
