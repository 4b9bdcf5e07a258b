"""``run_query``: a synchronous reference driver (no trio) for a compiled query.

It drives the same :class:`RouteStep` and :class:`PartitionStep` calls the actors do,
with every program in one loop: route each batch, process its parts, advance every
program to the watermark when it advanced, finish.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import attrs

from partita.runtime import Batch, DeadLetter, Record

from ._interface import ProgramCounts
from ._query import CompiledQuery, compile_query
from ._step import PartitionStep, RouteResult, RouteStep

__all__ = ["QueryResult", "run_query"]


@attrs.frozen
class QueryResult:
    """Everything a run produced.

    Attributes:
        rows: output rows (per partition in emission order, partitions concatenated per
            step).
        dead_letters: late records (reason starts with ``"late"``) and failed records.
        counts: counters summed over the routing stage and every program.
    """

    rows: list[Record]
    dead_letters: list[DeadLetter]
    counts: ProgramCounts


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    it = iter(records)
    while chunk := list(islice(it, size)):
        yield chunk


def _sum(counts: Iterable[ProgramCounts]) -> ProgramCounts:
    total = ProgramCounts()
    for c in counts:
        total = ProgramCounts(
            rows_in=total.rows_in + c.rows_in,
            rows_out=total.rows_out + c.rows_out,
            filtered=total.filtered + c.filtered,
            late=total.late + c.late,
            errored=total.errored + c.errored,
        )
    return total


def run_query(
    query: CompiledQuery | str,
    records: Iterable[Record],
    *,
    partitions: int = 1,
    batch_size: int = 1000,
    **compile_options: Any,
) -> QueryResult:
    """Run ``query`` over ``records`` synchronously and collect the result.

    Args:
        query: a :class:`CompiledQuery` or SQL text (compiled with ``compile_options``).
        records: the input, in source order (offsets count from 0).
        partitions: how many partition programs to run.  With ``LIMIT n`` the run
            stops reading after the batch that made the ``n``-th row (the rows are cut
            to ``n``).
        batch_size: records per source batch.
        **compile_options: as for :func:`compile_query` (only with SQL text).

    Returns:
        The rows, dead letters and counts.

    Raises:
        SqlError: the SQL is bad (before any record is read).
        runtime.BadRecord: a record failed and ``on_error="fail"``.
        ValueError: ``partitions`` or ``batch_size`` is less than 1.
        TypeError: compile options were given with an already compiled query.

    Example:
        >>> rows = [{"k": "a", "x": 1}, {"k": "b", "x": 2}, {"k": "a", "x": 3}]
        >>> run_query("SELECT k, SUM(x) AS s FROM t GROUP BY k", rows).rows
        [{'k': 'a', 's': 4}, {'k': 'b', 's': 2}]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    if isinstance(query, str):
        query = compile_query(query, **compile_options)
    elif compile_options:
        raise TypeError("compile options can only be given with SQL text, not a CompiledQuery")
    router = RouteStep(query.routing_stage(partitions))
    steps = [PartitionStep(query.new_program()) for _ in range(partitions)]
    rows: list[Record] = []
    dead: list[DeadLetter] = []
    offset = 0
    limit = query.limit
    for chunk in _chunks(records, batch_size):
        _deliver(router.route(Batch.from_records(chunk, start=offset)), steps, rows, dead)
        offset += len(chunk)
        if limit is not None and len(rows) >= limit:  # LIMIT n: stop reading
            return QueryResult(rows[:limit], dead, _sum([router.finish().counts, *_counts(steps)]))
    routed = router.finish()
    _deliver(routed, steps, rows, dead)
    counts = [routed.counts]
    for step in steps:
        done = step.finish()
        rows += done.rows
        dead += done.dead_letters
        counts.append(done.counts)
    return QueryResult(rows if limit is None else rows[:limit], dead, _sum(counts))


def _counts(steps: list[PartitionStep]) -> list[ProgramCounts]:
    return [step.counts() for step in steps]


def _deliver(
    routed: RouteResult, steps: list[PartitionStep], rows: list[Record], dead: list[DeadLetter]
) -> None:
    """What the actors do with a routed batch: each part to its partition, then the
    watermark (when it advanced) to every partition."""
    dead += routed.dead_letters
    for step, part in zip(steps, routed.parts, strict=True):
        if part is not None:
            done = step.process(part)
            rows += done.rows
            dead += done.dead_letters
    if routed.watermark is not None:
        for step in steps:
            done = step.advance(routed.watermark)
            rows += done.rows
            dead += done.dead_letters
