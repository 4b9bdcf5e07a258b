"""Streaming SQL inside the caller's ``trio.run``: ``run_sql`` and ``open_sql``.

Both build the same graph and run it under one supervisor::

    source ─> router ─┬─> partition-0 ─┐
                      ├─> ...          ├─> merge ─> sink
                      └─> partition-N ─┘
    (source, router, partitions) ─> dead-letter      (when dead letters are kept)

With one partition there is nothing to merge: ``partition-0`` feeds the sink.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal, TypeAlias

import attrs

from partita.runtime import (
    BatchSizer,
    DeadLetter,
    Duration,
    Graph,
    GraphStats,
    OnError,
    Record,
    Sink,
    Source,
    Supervisor,
    SupervisorOptions,
    parse_duration_ms,
)
from partita.sql import (
    CompiledQuery,
    LatePolicy,
    SqlError,
    WatermarkStrategy,
    compile_query,
    query_inputs,
)

from ._checkpoints import CheckpointTarget, fingerprint, supervised
from ._dead_letter import DeadLetterSink
from ._files import CsvSource, JsonLinesSource
from ._interval_join import IntervalJoinActor, JoinSideRouter, WatermarkAlignment
from ._limit import LimitedSink, RowCount, check_count, check_timeout, wait_bounded
from ._merge import MergeActor
from ._partition import PartitionActor
from ._router import RouterActor
from ._row_stream import RowStream, row_channel, streaming
from ._sinks import CollectSink
from ._sources import AsyncIterableSource, IterableSource, RecordSource, default_sizer
from ._tables import read_table

__all__ = ["QueryRun", "QueryStream", "build_sql_graph", "open_sql", "run_sql"]

SourceLike: TypeAlias = Source | Iterable[Record] | AsyncIterable[Record] | str | os.PathLike[str]
DeadLetterTarget: TypeAlias = Sink | str | os.PathLike[str] | None

_CAPACITY = 4  # batches per mailbox: enough to pipeline, and batches are large


@attrs.frozen
class QueryRun:
    """What :func:`run_sql` returns.

    Attributes:
        rows: the result rows, when the sink was the default (else ``[]``, or
            the rows of a :class:`actors.CollectSink` you passed).
        stats: the final stats of the graph (per actor by name: ``"source"``,
            ``"router"``, ``"partition-<i>"``, ``"merge"`` (with more than one
            partition), ``"sink"``, ``"dead-letter"``).
        dead_letters: the dead letters, when kept in memory (no ``dead_letter``
            destination given); else ``[]``.
    """

    rows: list[Record]
    stats: GraphStats
    dead_letters: list[DeadLetter]


@attrs.define(eq=False)
class QueryStream(RowStream):
    """The result rows of :func:`open_sql`, as they come: ``async for row in stream``.

    A :class:`RowStream` (rows in batches through a small channel, :meth:`batches`,
    :meth:`pause` / :meth:`resume` / :meth:`cancel` / :meth:`stats`, and
    :attr:`supervisor`) that also holds the compiled :attr:`query`.  Leaving the
    ``open_sql`` block, or the iterator going away, cancels everything still running.
    """

    query: CompiledQuery = attrs.field(kw_only=True)


def _compile(
    sql: str | CompiledQuery,
    compile_options: dict[str, Any],
    tables: dict[str, list[Record]] | None = None,
) -> CompiledQuery:
    """The query: ``sql`` compiled once with the options given, or the compiled query.

    The compile options are ``None`` when not given; a compiled query takes none
    (it carries its own).
    """
    given = {name: value for name, value in compile_options.items() if value is not None}
    if isinstance(sql, CompiledQuery):
        if given:
            raise TypeError(
                f"{', '.join(sorted(given))}: an option of the compiled query: pass it to "
                "compile_query(), not again with the query it compiled"
            )
        return sql
    if not isinstance(sql, str):
        raise TypeError(f"sql must be SQL text or a CompiledQuery, got {type(sql).__name__}")
    return compile_query(sql, tables=tables or None, **given)


def _named_inputs(
    sql: str | CompiledQuery,
    source: SourceLike | None,
    sources: Mapping[str, SourceLike] | None,
) -> tuple[SourceLike, SourceLike | None, dict[str, list[Record]]]:
    """The stream, the stream joined within an interval (if any) and the tables of
    the query's inputs, from ``source`` or ``sources``.

    ``sources`` names every input the query reads: the stream of ``FROM``, the
    stream it joins within an interval, and each table it joins (read whole now: a
    file path, or an iterable of records).

    Raises:
        SqlError: an input the query does not read, or one it reads not given.
        TypeError: both ``source`` and ``sources``, or neither; a table that is not
            a file path or an iterable of records.
    """
    if sources is None:
        if source is None:
            raise TypeError("give the query's input: source=..., or sources={name: ...}")
        return source, None, {}
    if source is not None:
        raise TypeError("give either source or sources={name: ...}, not both")
    joined: str | None
    if isinstance(sql, CompiledQuery):
        interval = sql.stream_join
        joined = None if interval is None else interval.right
        names: tuple[str, ...] = (sql.plan.source, *(() if joined is None else (joined,)))
    elif isinstance(sql, str):
        inputs = query_inputs(sql)
        names, joined = inputs.names, inputs.joined
    else:
        raise TypeError(f"sql must be SQL text or a CompiledQuery, got {type(sql).__name__}")
    reads = ", ".join(map(repr, names))
    for name in sources:
        if name not in names:
            hint = (
                " (a compiled query has its tables already)"
                if isinstance(sql, CompiledQuery)
                else ""
            )
            raise SqlError(f"input {name!r} is not read by the query: it reads {reads}{hint}")
    for name in names:
        if name not in sources:
            given = ", ".join(map(repr, sources)) or "none"
            raise SqlError(
                f"the query reads {name!r} but no input of that name was given ({given})"
            )
    tables: dict[str, list[Record]] = {}
    for name in names[1:]:
        if name == joined:
            continue
        table = sources[name]
        if isinstance(table, str | os.PathLike):
            tables[name] = read_table(table)
        elif isinstance(table, Iterable) and not isinstance(table, Source | bytes | dict):
            tables[name] = list(table)
        else:
            raise TypeError(
                f"table {name!r} must be a file path or an iterable of records (it is read "
                f"whole before the stream starts), got {type(table).__name__}"
            )
    return sources[names[0]], None if joined is None else sources[joined], tables


def _source(
    source: SourceLike,
    batch_size: int | None,
    idle_timeout: Duration | None,
    name: str = "source",
) -> Source:
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise ValueError(f"cannot read input {path!r}: no such file")
        reader = CsvSource if path.lower().endswith(".csv") else JsonLinesSource
        source = reader(name, path)
    if isinstance(source, Source):
        actor = source
        if batch_size is not None:
            actor.sizer = BatchSizer.fixed(batch_size)
    else:
        sizer = default_sizer() if batch_size is None else BatchSizer.fixed(batch_size)
        if isinstance(source, AsyncIterable):
            actor = AsyncIterableSource(name, source, sizer=sizer)
        elif isinstance(source, Iterable) and not isinstance(source, str | bytes | dict):
            actor = IterableSource(name, source, sizer=sizer)
        else:
            raise TypeError(
                "source must be a runtime.Source, an iterable or an async iterable of "
                f"records, got {type(source).__name__}"
            )
    if idle_timeout is not None:
        ms = parse_duration_ms(idle_timeout, "idle_timeout")
        if ms <= 0:
            raise ValueError(f"idle_timeout must be > 0, got {idle_timeout!r}")
        if not isinstance(actor, RecordSource):
            raise ValueError("idle_timeout needs a source from actors (a RecordSource)")
        actor.idle_timeout = ms / 1000
    return actor


def _check_options(partitions: int, batch_size: int | None) -> None:
    if not isinstance(partitions, int) or partitions < 1:
        raise ValueError(f"partitions must be an int >= 1, got {partitions!r}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None, got {batch_size!r}")


def _prepare(
    sql: str | CompiledQuery,
    source: SourceLike | None,
    sources: Mapping[str, SourceLike] | None,
    partitions: int,
    batch_size: int | None,
    idle_timeout: Duration | None,
    compile_options: dict[str, Any],
    options: SupervisorOptions,
) -> tuple[CompiledQuery, Source, Source | None, SupervisorOptions]:
    """What run_sql and open_sql both start from: checked options, the query, the
    source and the source of the stream it joins within an interval (if any)."""
    _check_options(partitions, batch_size)
    stream, joined, tables = _named_inputs(sql, source, sources)
    query = _compile(sql, compile_options, tables)
    interval = query.stream_join
    if interval is not None and joined is None:
        raise SqlError(
            f"the query joins stream {interval.right!r} with {interval.left!r}: give both, "
            f"sources={{{interval.left!r}: ..., {interval.right!r}: ...}}"
        )
    second = None
    if joined is not None:
        assert interval is not None
        second = _source(joined, batch_size, idle_timeout, f"source-{interval.right}")
    return query, _source(stream, batch_size, idle_timeout), second, options


def build_sql_graph(
    query: CompiledQuery,
    source: Source,
    sink: Sink,
    *,
    partitions: int = 1,
    dead_letter: DeadLetterTarget = None,
    joined_source: Source | None = None,
) -> tuple[Graph, DeadLetterSink | None]:
    """The SQL graph: source → router → partitions → merge → sink (+ dead-letter).

    With one partition there is no merge: ``partition-0`` feeds the sink (a hop
    that only forwarded batches).

    A query with an interval join (``query.interval_join``) reads two streams,
    ``source`` (its ``FROM``) and ``joined_source``; each is split by the join key
    to ``partitions`` join actors, whose joined rows feed the router::

        source ─> router-<left> ──┬─> join-0 ─┐
        joined_source ─> router-<right> ─┴─> ...    ├─> router ─> partitions ─> merge ─> sink

    The query's own options decide everything about records (``query.options``).
    The dead-letter output exists whenever dead letters can be produced: the
    query's options (:attr:`sql.QueryOptions.dead_letters`), a source with
    ``on_error="dead-letter"``, or a ``dead_letter`` destination given.

    Returns the graph and the in-memory or file dead-letter sink it made, if any.

    Raises:
        ValueError: ``joined_source`` given without an interval join, or missing
            with one.
    """
    interval = query.stream_join
    if (interval is None) != (joined_source is None):
        raise ValueError(
            "joined_source is the second stream of an interval join: give it exactly "
            "when the query has one"
        )
    graph = Graph()
    graph.add(source)
    sides: list[JoinSideRouter] = []
    feed: list[Any] = [source]
    if interval is not None and joined_source is not None:
        graph.add(joined_source)
        ends: tuple[tuple[Literal["left", "right"], str, Source], ...] = (
            ("left", interval.left, source),
            ("right", interval.right, joined_source),
        )
        alignment = WatermarkAlignment(query.join_max_drift, 2)
        for stream, (side, name, src) in enumerate(ends):
            side_router = JoinSideRouter(
                f"router-{name}",
                query.join_side_stage(side, partitions),
                alignment=alignment,
                stream=stream,
            )
            graph.add(side_router, inputs=[src], capacity=_CAPACITY)
            sides.append(side_router)
        joins = [
            IntervalJoinActor(f"join-{i}", query.new_join_state(), query.join_hold)
            for i in range(partitions)
        ]
        for join in joins:
            graph.add(join, inputs=sides, capacity=2 * _CAPACITY)
        feed = list(joins)
    router = RouterActor("router", query.routing_stage(partitions))
    graph.add(router, inputs=feed, capacity=_CAPACITY)
    parts = [PartitionActor(f"partition-{i}", query.new_program()) for i in range(partitions)]
    for part in parts:
        graph.add(part, inputs=[router], capacity=2 * _CAPACITY)
    if partitions == 1:
        graph.add(sink, inputs=parts, capacity=_CAPACITY)
    else:
        merge = graph.add(MergeActor("merge"), inputs=parts, capacity=2 * _CAPACITY)
        graph.add(sink, inputs=[merge], capacity=_CAPACITY)
    inputs = [source] if joined_source is None else [source, joined_source]
    wants_dead = (
        dead_letter is not None
        or query.options.dead_letters
        or any(getattr(s, "on_error", None) == "dead-letter" for s in inputs)
    )
    if not wants_dead:
        return graph, None
    made: DeadLetterSink | None = None
    if isinstance(dead_letter, Sink):
        target: Sink = dead_letter
    else:
        made = DeadLetterSink("dead-letter", dead_letter)
        target = made
    senders: list[Any] = [*sides, router, *parts]
    for src in reversed(inputs):
        if isinstance(src, RecordSource):
            senders.insert(0, src)
            src.dead_letter_output = 1
    for side_router in sides:
        side_router.dead_letter_output = partitions
    router.dead_letter_output = partitions
    for part in parts:
        part.dead_letter_output = 1
    graph.add(target, inputs=senders)
    return graph, made


async def run_sql(
    sql: str | CompiledQuery,
    source: SourceLike | None = None,
    sink: Sink | None = None,
    *,
    sources: Mapping[str, SourceLike] | None = None,
    partitions: int = 1,
    batch_size: int | None = None,
    dead_letter: DeadLetterTarget = None,
    idle_timeout: Duration | None = None,
    allowed_lateness: Duration | None = None,
    event_time: str | None = None,
    on_error: OnError | None = None,
    late: LatePolicy | None = None,
    watermark: WatermarkStrategy | None = None,
    retention: Duration | None = None,
    checkpoint: CheckpointTarget = None,
    checkpoint_interval: Duration | None = None,
    fresh: bool = False,
    count: int | None = None,
    # a graceful stop (drain, flush), which a caller's cancel scope cannot give
    timeout: Duration | None = None,  # noqa: ASYNC109
    supervision: SupervisorOptions | None = None,
    **supervisor_fields: Any,
) -> QueryRun:
    """Run a streaming SQL query over ``source`` to its end, inside your ``trio.run``.

    Args:
        sql: SQL text, or a query from :func:`sql.compile_query`, which carries
            its options: then passing any compile option here is a ``TypeError``.
        source: a :class:`runtime.Source`, an iterable / async iterable of
            ``dict`` records, or a file path (``*.csv``, else JSON lines).
        sources: instead of ``source``, every input by the name the query gives it:
            the stream of ``FROM`` (as ``source``) and each table it joins, read whole
            before the stream starts (a file path or an iterable of records), e.g.
            ``sources={"orders": "orders.jsonl", "rates": "rates.csv"}``.  A name the
            query does not read, or one it reads not given, is a :class:`sql.SqlError`.
        sink: where rows go (default: kept in memory, on the result's ``rows``).
        partitions: partition actors; a keyed query hashes its GROUP BY key
            across them, a stateless one hands whole batches round-robin.
        batch_size: records per source batch (``None``: adaptive).
        dead_letter: a sink or a JSON-lines file path for dead letters
            (default: kept in memory, on the result's ``dead_letters``).
        idle_timeout: a duration (``"1s"``; a bare number is milliseconds)
            without input after which the watermark advances by the time idle,
            so windows close on a quiet stream.
        allowed_lateness, event_time, on_error, late, watermark, retention: the
            compile options of :func:`sql.compile_query`, with SQL text only
            (``None``: not given, the query's default).
        checkpoint: a directory (the job's checkpoints go to ``checkpoints.db`` in
            it) or a :class:`runtime.CheckpointStore`: aligned-barrier checkpoints
            every ``checkpoint_interval`` (default ``"5s"``), and a run of the
            same job resumes from the latest (exactly-once into a file sink;
            see docs/operations.md).  ``fresh=True`` discards what it holds.
        count: stop after this many result rows (a bounded run, as Quix's
            ``app.run(count=)``): the sink gets exactly ``count`` rows (fewer if the
            input ends first), then the graph stops gracefully (the source stops,
            the mailboxes drain, the sink flushes) and ``stats.stopped_by`` is
            ``"count"``.  With a ``LIMIT``, the smaller stops it.
        timeout: a duration (``"30s"``; a bare number is milliseconds) on trio's
            clock after which the graph stops gracefully as for ``count``
            (``stats.stopped_by == "timeout"``).
        supervision: how to run the graph (:class:`runtime.SupervisorOptions`).
        **supervisor_fields: its fields as keywords: ``restart``, ``max_memory``
            (bytes or ``"256MB"``), ``memory_policy`` (``"wait"``, the default,
            waits for room and so holds the source back; ``"fail"`` raises
            :class:`runtime.MemoryLimitExceeded` inside :class:`runtime.ActorFailed`),
            ``on_stats`` (called with :class:`runtime.GraphStats` every ``stats_interval``, default
            ``"500ms"``, and once at the end).

    Returns:
        A :class:`QueryRun` with the rows, the final stats and the dead letters.

    Raises:
        sql.SqlError: the SQL is bad (before anything runs).
        runtime.ActorFailed: an actor failed (e.g. ``on_error="fail"``: its
            cause is a :class:`runtime.BadRecord` naming the record offset or
            input line).
        ValueError: an option is out of range (``count must be an int >= 1 or
            None, got 0``).
        TypeError: a compile option with a :class:`sql.CompiledQuery`, or an
            option that does not exist.

    Example:
        >>> import trio
        >>> async def main() -> None:
        ...     trades = [{"symbol": "A", "qty": 5}, {"symbol": "B", "qty": 7}]
        ...     run = await run_sql("SELECT symbol FROM t WHERE qty > 6", trades)
        ...     print(run.rows)
        >>> trio.run(main)
        [{'symbol': 'B'}]
    """
    query, actor, joined, options = _prepare(
        sql,
        source,
        sources,
        partitions,
        batch_size,
        idle_timeout,
        {
            "allowed_lateness": allowed_lateness,
            "event_time": event_time,
            "on_error": on_error,
            "late": late,
            "watermark": watermark,
            "retention": retention,
        },
        SupervisorOptions.of(supervision, **supervisor_fields),
    )
    limit, seconds = check_count(count), check_timeout(timeout)
    out = CollectSink("sink") if sink is None else sink
    rows_count = None if limit is None else RowCount(limit)
    target = _limited(out, query)
    if rows_count is not None:
        target = LimitedSink.counting(target, rows_count)
    graph, dead = build_sql_graph(
        query, actor, target, partitions=partitions, dead_letter=dead_letter, joined_source=joined
    )
    async with _supervised(
        graph,
        options,
        query,
        partitions,
        actor,
        checkpoint,
        checkpoint_interval,
        fresh,
        joined=joined,
    ) as running:
        stopped = await wait_bounded(running, rows_count, seconds)
    rows = out.rows if isinstance(out, CollectSink) else []
    letters = dead.dead_letters if dead is not None and dead.path is None else []
    return QueryRun(rows, attrs.evolve(running.stats(), stopped_by=stopped), letters)


def _supervised(
    graph: Graph,
    options: SupervisorOptions,
    query: CompiledQuery,
    partitions: int,
    source: Source,
    checkpoint: CheckpointTarget,
    interval: Duration | None,
    fresh: bool,
    on_end: Callable[[], None] | None = None,
    joined: Source | None = None,
) -> AbstractAsyncContextManager[Supervisor]:
    """The SQL graph running under its supervisor, checkpointed as the job asks."""
    return supervised(
        graph,
        options,
        checkpoint,
        interval=interval,
        fresh=fresh,
        job=lambda: fingerprint(query, partitions, source, joined),
        on_end=on_end,
    )


def _limited(sink: Sink, query: CompiledQuery) -> Sink:
    """``sink``, or ``sink`` stopping the run after the query's ``LIMIT n`` rows."""
    return sink if query.limit is None else LimitedSink(sink.name, sink, query.limit)


@asynccontextmanager
async def open_sql(
    sql: str | CompiledQuery,
    source: SourceLike | None = None,
    *,
    sources: Mapping[str, SourceLike] | None = None,
    partitions: int = 1,
    batch_size: int | None = None,
    dead_letter: DeadLetterTarget = None,
    idle_timeout: Duration | None = None,
    allowed_lateness: Duration | None = None,
    event_time: str | None = None,
    on_error: OnError | None = None,
    late: LatePolicy | None = None,
    watermark: WatermarkStrategy | None = None,
    retention: Duration | None = None,
    checkpoint: CheckpointTarget = None,
    checkpoint_interval: Duration | None = None,
    fresh: bool = False,
    supervision: SupervisorOptions | None = None,
    **supervisor_fields: Any,
) -> AsyncIterator[QueryStream]:
    """Run a streaming SQL query and iterate its rows as they come.

    Same options as :func:`run_sql` (no ``sink``: the rows are the stream):
    compile options with SQL text only, supervisor options as a
    :class:`runtime.SupervisorOptions` or its fields as keywords.
    Leaving the block (``break``, ``return``, an exception) cancels whatever
    still runs, promptly: nothing is left behind.  While in the block,
    ``stream.supervisor`` pauses, resumes, cancels (``graceful=True`` drains
    what was read, then the stream ends) and reports stats.

    Raises:
        sql.SqlError: the SQL is bad (before anything runs).
        runtime.ActorFailed: an actor failed; raised out of the block.

    Example:
        >>> import trio
        >>> async def main() -> None:
        ...     records = ({"x": i} for i in range(1_000_000))
        ...     async with open_sql("SELECT x FROM t WHERE x % 2 = 0", records) as stream:
        ...         async for row in stream:
        ...             if row["x"] >= 4:
        ...                 break  # cancels the rest of the graph
        ...     print(row, stream.supervisor.state.name)
        >>> trio.run(main)
        {'x': 4} CANCELLED
    """
    query, actor, joined, options = _prepare(
        sql,
        source,
        sources,
        partitions,
        batch_size,
        idle_timeout,
        {
            "allowed_lateness": allowed_lateness,
            "event_time": event_time,
            "on_error": on_error,
            "late": late,
            "watermark": watermark,
            "retention": retention,
        },
        SupervisorOptions.of(supervision, **supervisor_fields),
    )
    sink, receive = row_channel("sink")
    graph, dead = build_sql_graph(
        query,
        actor,
        _limited(sink, query),
        partitions=partitions,
        dead_letter=dead_letter,
        joined_source=joined,
    )
    async with streaming(
        lambda on_end: _supervised(
            graph,
            options,
            query,
            partitions,
            actor,
            checkpoint,
            checkpoint_interval,
            fresh,
            on_end,
            joined,
        ),
        lambda running: QueryStream(running, receive=receive, dead_letter_sink=dead, query=query),
        sink,
    ) as stream:
        yield stream
