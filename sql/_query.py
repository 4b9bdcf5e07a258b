"""``compile_query`` and ``explain``: plan once, generate once, run many partitions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from partita.runtime import Record

from ._compiler import GeneratedCode, generate
from ._interface import StreamJoinState
from ._interval_join import IntervalJoin, IntervalJoinState, JoinSideStage
from ._plan import LogicalPlan, plan_query
from ._program import SqlProgram
from ._query_config import QueryOptions
from ._routing import RouteMode, SqlRoutingStage
from ._schema import StreamSchema
from ._temporal_join import TemporalJoin, TemporalJoinState

__all__ = ["CompiledQuery", "compile_query", "explain"]


@attrs.frozen(eq=False)
class CompiledQuery:
    """A query parsed, planned and compiled once; makes routing stages and programs.

    Attributes:
        sql: the query text.
        plan: the logical plan (printable).
        columns: output row keys in SELECT order (``"*"`` stands for the record's fields).
        keyed: whether partitions own group state (records are hash-routed by key).
        windowed: whether the query has a group window.
        emit: ``"changes"`` or ``"final"``.
        options: the options it was compiled with (:class:`QueryOptions`); whatever
            runs the query reads them here.

    Example:
        >>> q = compile_query("SELECT k, COUNT(*) AS n FROM t GROUP BY k")
        >>> q.columns, q.keyed, q.windowed, q.emit
        (('k', 'n'), True, False, 'final')
    """

    sql: str
    plan: LogicalPlan
    columns: tuple[str, ...]
    keyed: bool
    windowed: bool
    emit: Literal["changes", "final"]
    options: QueryOptions
    code: GeneratedCode
    #: ``allowed_lateness=`` was given (it wins over lateness declared in SQL)
    lateness_given: bool = False

    @property
    def schema(self) -> StreamSchema | None:
        """The input's declared schema (``CREATE STREAM`` or ``schema=``), if any."""
        return self.plan.schema

    @property
    def limit(self) -> int | None:
        """``LIMIT n``: whatever runs the query stops after ``n`` rows (``None``: no limit)."""
        return self.plan.limit

    def routing_stage(self, partitions: int) -> SqlRoutingStage:
        """A source-side stage splitting batches across ``partitions`` programs.

        Raises:
            ValueError: ``partitions`` is less than 1.
        """
        shape = self.code.shape
        mode: RouteMode
        route = None
        keyed = False
        if not shape.aggregated:
            mode = "round-robin"
        elif not shape.windowed and (partitions == 1 or not shape.keyed):
            mode = "first"
        else:
            mode = "per-record"
            keyed = shape.keyed and partitions > 1
            route = self.code.functions["route" if keyed else "route1"]
        opts = self.options
        return SqlRoutingStage.create(
            partitions,
            mode,
            route,
            keyed=keyed,
            windowed=self.windowed,
            coerce=self.code.functions.get("coerce"),
            joins=tuple(self.code.functions[f"join{i}"] for i in range(len(self.plan.joins))),
            lateness=opts.lateness,
            on_error=opts.on_error,
            late=opts.late,
            follows=self.plan.stream_join is not None,
        )

    @property
    def interval_join(self) -> IntervalJoin | None:
        """The stream joined within an interval (``None``: the query reads one stream).

        Such a query runs as two inputs, each split by the join key
        (:meth:`join_side_stage`), then one join state per partition
        (:meth:`new_join_state`) whose rows, and watermark held back by
        :attr:`join_hold`, feed this query's routing stage and programs.
        """
        return self.plan.interval_join

    @property
    def temporal_join(self) -> TemporalJoin | None:
        """The changelog joined as of the stream's event time (``None``: none).

        Such a query runs as an interval join's does, with a
        :class:`TemporalJoinState` per partition."""
        return self.plan.temporal_join

    @property
    def stream_join(self) -> IntervalJoin | TemporalJoin | None:
        """The second stream's join, interval or temporal (``None``: one stream)."""
        return self.plan.stream_join

    @property
    def join_hold(self) -> int:
        """How far (ms) the join's output watermark trails the inputs' (see
        :meth:`IntervalJoin.hold_of`); 0 without a join of two streams.

        One more for a SESSION after the join: a joined row can be exactly at
        the held watermark, and a session ending there (its last record + gap) is
        closed by that watermark though the row would still bridge it."""
        join = self.plan.stream_join
        if join is None:
            return 0
        window = self.plan.window
        if window is None:
            return join.hold_of(None)
        session = window.kind == "session"
        return join.hold_of(window.time_column) + session

    @property
    def join_max_drift(self) -> int:
        """How far (ms) one stream of the interval join may run ahead of the other in
        event time before its router waits (``actors.WatermarkAlignment``): the
        interval's span plus the lateness, at least a second.  What the join holds is
        bounded by the records of that much event time.  0 without an interval join
        (a temporal join: the lateness, at least a second)."""
        join = self.plan.stream_join
        if join is None:
            return 0
        span = join.upper - join.lower if isinstance(join, IntervalJoin) else 0
        lateness = max(self._side_lateness("left"), self._side_lateness("right"))
        return max(1000, span + lateness)

    def join_side_stage(self, side: Literal["left", "right"], partitions: int) -> JoinSideStage:
        """The source-side stage of one input of the join of two streams: its event time,
        watermark (its own max event time - the query's lateness) and late records,
        and the split of its records by the join key across ``partitions``.

        Raises:
            ValueError: the query joins no second stream, or ``partitions`` < 1.
        """
        join = self.plan.stream_join
        if join is None:
            raise ValueError("the query joins no second stream")
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, not {partitions}")
        opts = self.options
        return JoinSideStage.create(
            join,
            side,
            partitions,
            lateness=self._side_lateness(side),
            on_error=opts.on_error,
            late=opts.late,
            coerce=self.code.functions.get(f"coerce_{side}"),
        )

    def _side_lateness(self, side: Literal["left", "right"]) -> int:
        """The allowed lateness of one stream of a join: its ``CREATE STREAM ... WITH
        (lateness = ...)``, unless the query's is explicit (``allowed_lateness=``)."""
        join = self.plan.stream_join
        declared = None
        if join is not None and not self.lateness_given:
            schema = join.left_schema if side == "left" else join.right_schema
            declared = None if schema is None else schema.lateness_ms
        return self.options.lateness if declared is None else declared

    def new_join_state(self) -> StreamJoinState:
        """A fresh (empty) join state for one partition: an interval join's
        (:class:`IntervalJoinState`) or a temporal join's (:class:`TemporalJoinState`).

        Raises:
            ValueError: the query joins no second stream.
        """
        join = self.plan.stream_join
        if join is None:
            raise ValueError("the query joins no second stream")
        if isinstance(join, IntervalJoin):
            return IntervalJoinState.of(join)
        return TemporalJoinState.of(join)

    def new_program(self) -> SqlProgram:
        """A fresh partition program (empty state) for one partition."""
        opts = self.options
        window = self.plan.window
        retention = opts.retention_ms
        if retention is None:
            retention = window.size_ms if window is not None else 0
        return SqlProgram.create(
            self.plan,
            self.code.functions,
            on_error=opts.on_error,
            late=opts.late,
            retention_ms=retention,
        )

    def describe(self) -> str:
        """The query's input (its declared columns and types, or the columns it reads),
        event time and watermark, and its output columns: what ``partita describe``
        prints.

        Example:
            >>> q = compile_query("SELECT k, COUNT(*) AS n FROM t GROUP BY k", schema="k TEXT")
            >>> print(q.describe())
            input t
              k  TEXT
              event time: none
            output k, n (EMIT FINAL)
        """
        plan, lateness = self.plan, self.options.lateness
        schema = plan.schema
        interval = plan.stream_join
        if interval is not None:
            lines = []
            for name, fields, declared in (
                (interval.left, interval.left_fields, interval.left_schema),
                (interval.right, interval.right_fields, interval.right_schema),
            ):
                read = ", ".join(c for c, _ in fields) or "none"
                if declared is None:
                    lines.append(f"input {name} (stream; the query reads {read})")
                    continue
                width = max(len(c.name) for c in declared.columns)
                lines.append(f"input {name} (stream)")
                lines += [f"  {c.name.ljust(width)}  {c.type}" for c in declared.columns]
            lines.append(f"  {interval.describe()}")
            lines.append(
                f"  event time: {interval.left_alias}.{interval.left_time}, "
                f"{interval.right_alias}.{interval.right_time}"
            )
            left, right = self._side_lateness("left"), self._side_lateness("right")
            each = (
                f"max event time - {left} ms"
                if left == right
                else f"{interval.left}: max event time - {left} ms, "
                f"{interval.right}: max event time - {right} ms"
            )
            lines.append(
                f"  watermark: the least of the inputs' ({each}), "
                f"less {self.join_hold} ms after the join"
            )
            if plan.window is not None:
                lines.append(f"  window: {plan.window}")
            limit = f", LIMIT {plan.limit}" if plan.limit is not None else ""
            lines.append(f"output {', '.join(self.columns)} (EMIT {self.emit.upper()}{limit})")
            return "\n".join(lines)
        if schema is not None:
            width = max(len(c.name) for c in schema.columns)
            lines = [f"input {plan.source}"]
            lines += [f"  {c.name.ljust(width)}  {c.type}" for c in schema.columns]
        else:
            read = ", ".join(plan.input_columns) or "none"
            lines = [f"input {plan.source} (no declared schema; the query reads {read})"]
        for join in plan.joins:
            columns = ", ".join(column for column, _ in join.fields) or "none"
            lines.append(
                f"table {join.table} ({join.kind.upper()} JOIN as {join.alias}, "
                f"{len(join.rows)} rows; the query reads {columns})"
            )
        time = plan.window.time_column if plan.window is not None else None
        time = time or self.options.event_time or (schema.event_time if schema else None)
        if time is None:
            lines.append("  event time: none")
        else:
            lines.append(f"  event time: {time}")
            lines.append(f"  watermark: max({time}) - {lateness} ms ({self.options.watermark})")
        if plan.window is not None:
            lines.append(f"  window: {plan.window}")
        limit = f", LIMIT {plan.limit}" if plan.limit is not None else ""
        lines.append(f"output {', '.join(self.columns)} (EMIT {self.emit.upper()}{limit})")
        return "\n".join(lines)

    def explain(self) -> str:
        """The logical plan, the options and the generated Python source."""
        o = self.options
        return (
            f"-- query\n{self.sql.strip()}\n\n-- logical plan\n{self.plan}\n\n"
            f"-- options\nallowed_lateness_ms={o.allowed_lateness_ms} watermark={o.watermark} "
            f"on_error={o.on_error} late={o.late} keyed={self.keyed} emit={self.emit}\n\n"
            f"-- generated code ({self.code.filename})\n{self.code.source}"
        )


def compile_query(
    sql: str, *, tables: Mapping[str, Iterable[Record]] | None = None, **options: Any
) -> CompiledQuery:
    """Parse, plan and compile ``sql`` once; the query carries its options from then on.

    Whatever runs the query (``run_sql``, ``open_sql``, ``run_query``) reads the
    options from it and takes none of them again.

    Args:
        sql: one SELECT statement in the partita dialect (see docs/sql.md).
        tables: the rows of each table the query joins (``FROM s JOIN rates r ON
            ...``), by name; read whole now, indexed by the join key once, and shared
            by every partition.
        **options: the query's options, each validated once by :class:`QueryOptions`:

            - ``allowed_lateness``: a duration (``"5s"``, ``250`` = 250 ms, a
              ``timedelta``); the watermark trails the largest event time seen by this.
            - ``watermark``: ``"bounded"`` (max event time - lateness) or
              ``"ascending"`` (event time never goes back; lateness must be 0).
            - ``event_time``: the event-time column when the SQL does not name one
              (``WINDOW TUMBLING(INTERVAL '5' MINUTE)``).
            - ``on_error``: a record whose expressions fail is skipped and counted
              (``"skip"``, the default), dead-lettered with the reason
              (``"dead-letter"``), or fails the run with :class:`runtime.BadRecord`
              (``"fail"``).
            - ``late``: a late record is dropped and counted (``"drop"``, the
              default), dead-lettered (``"dead-letter"``), or updates its closed
              window, which re-emits its row (``"update"``, while the window is
              retained; later than that it is dead-lettered).
            - ``retention``: with ``late="update"``, a duration a closed window's
              state is kept past its end (default: the window size or session gap).
            - ``schema``: the input's columns, ``"id BIGINT, cur TEXT, ts TIMESTAMP"``
              (as ``CREATE STREAM`` in the text declares them; not both): unknown
              columns are refused and records coerced to the types (see docs/sql.md).

    Returns:
        The compiled query.

    Raises:
        SqlError: the query does not parse or uses something unsupported; names the
            line and column.
        ValueError: an option is out of range.
        TypeError: an option that does not exist.

    Example:
        >>> q = compile_query("SELECT x * 2 AS y FROM t WHERE x > 1", on_error="dead-letter")
        >>> q.columns, q.options.on_error
        (('y',), 'dead-letter')
    """
    opts = QueryOptions(**options)
    plan = plan_query(sql, event_time=opts.event_time, schema=opts.schema, tables=tables)
    # lateness written in SQL: GRACE PERIOD, else CREATE STREAM ... WITH (lateness = ...);
    # an explicit allowed_lateness= wins over both
    declared = plan.lateness_ms
    if declared is None and plan.schema is not None:
        declared = plan.schema.lateness_ms
    if declared is not None and "allowed_lateness" not in options:
        opts = attrs.evolve(opts, allowed_lateness=declared)
    if plan.stream_join is not None and opts.late == "update":
        raise ValueError(
            "late='update' is not supported over a join of two streams: a late record is "
            "dropped or dead-lettered at its stream's side of the join (use late='drop' or "
            "late='dead-letter')"
        )
    if plan.retract and opts.late == "update":
        raise ValueError(
            "EMIT CHANGES WITH RETRACTIONS does not take late='update' (a late update "
            "re-emits its window's row without retracting the old one)"
        )
    code = generate(plan, sql, late_update=opts.late == "update")
    columns = (("*",) if plan.star else ()) + tuple(o.name for o in plan.outputs)
    return CompiledQuery(
        sql=sql,
        plan=plan,
        columns=columns,
        keyed=plan.aggregated,
        windowed=plan.window is not None,
        emit=plan.emit,
        options=opts,
        code=code,
        lateness_given="allowed_lateness" in options,
    )


def explain(sql: str, **options: Any) -> str:
    """The logical plan and generated Python source of ``sql``.

    Args:
        sql: the query.
        **options: as for :func:`compile_query`.

    Raises:
        SqlError: as for :func:`compile_query`.

    Example:
        >>> print(explain("SELECT a + 1 AS b FROM t").splitlines()[3])
        -- logical plan
    """
    return compile_query(sql, **options).explain()
