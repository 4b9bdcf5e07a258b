"""Checkpoints for the graph builders: a store from a path, and what names the job.

``run_sql``, ``open_sql`` and the ``partita run`` command take ``checkpoint=`` as
a directory (the job's store is the SQLite file ``checkpoints.db`` in it,
created with the directory if missing) or as a :class:`runtime.CheckpointStore`
of the caller's.  The job's *fingerprint* (the query, its options, the
partitions, the source, a digest of the rows of every table it joins) is written
with every checkpoint: the same command resumes, a different one is refused with
both named.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeAlias

import attrs
import trio

from partita.runtime import (
    CheckpointError,
    Checkpointing,
    CheckpointStore,
    Duration,
    Graph,
    Record,
    Source,
    Supervisor,
    SupervisorOptions,
    open_sqlite_store,
    open_supervisor,
)
from partita.sql import CompiledQuery

__all__ = [
    "STORE_FILE",
    "CheckpointTarget",
    "checkpointed",
    "fingerprint",
    "open_checkpointing",
    "supervised",
]

CheckpointTarget: TypeAlias = str | os.PathLike[str] | CheckpointStore | None

STORE_FILE = "checkpoints.db"
"""The job's store file inside a checkpoint directory."""

_JOB = "partita"
_DEFAULT_INTERVAL = "5s"


def fingerprint(
    query: CompiledQuery, partitions: int, source: Source, joined_source: Source | None = None
) -> str:
    r"""What a checkpoint of this job is of: a different one must not resume from it.

    ``joined_source``: the stream an interval join joins, if any.

    Example:
        >>> from partita import JsonLinesSource, compile_query
        >>> job = fingerprint(compile_query("SELECT a FROM t"), 2, JsonLinesSource("s", "in.jsonl"))
        >>> print(job.replace(" | ", "\n"))
        SELECT a FROM t
        allowed_lateness_ms=0 watermark=bounded on_error=skip late=drop retention_ms=None
        partitions=2
        JsonLinesSource 'in.jsonl'
    """
    o = query.options
    options = (
        f"allowed_lateness_ms={o.allowed_lateness_ms} watermark={o.watermark} "
        f"on_error={o.on_error} late={o.late} retention_ms={o.retention_ms}"
    )
    parts = [" ".join(query.sql.split()), options, f"partitions={partitions}", _where(source)]
    if joined_source is not None:
        parts.append(f"joined {_where(joined_source)}")
    parts += [_table_digest(join.table, join.rows) for join in query.plan.joins]
    return " | ".join(parts)


def _where(source: Source) -> str:
    """What a source reads, for a fingerprint: its type, and its file or query."""
    path = getattr(source, "path", None)
    where = type(source).__name__
    if isinstance(path, str | os.PathLike):
        where += f" {os.fspath(path)!r}"
    describe_input = getattr(source, "describe_input", None)
    if callable(describe_input):  # a source that names its input itself (a database query)
        where += f" {describe_input()}"
    return where


def _table_digest(name: str, rows: tuple[Record, ...]) -> str:
    """``table NAME: N rows sha256:...`` of a joined table's rows, in order (a key's
    matches come out in table order): a table that changed between runs is another job.

    Example:
        >>> _table_digest("rates", ({"cur": "EUR", "rate": 1.1},))[:34]
        'table rates: 1 rows sha256:00a05ef'
    """
    digest = hashlib.sha256()
    for row in rows:
        # types count (1 and "1" join differently); a value JSON lacks is named by repr
        text = json.dumps(row, sort_keys=True, default=lambda v: f"{type(v).__name__}:{v!r}")
        digest.update(text.encode())
        digest.update(b"\n")
    return f"table {name}: {len(rows)} rows sha256:{digest.hexdigest()[:32]}"


@asynccontextmanager
async def open_checkpointing(
    target: CheckpointTarget,
    *,
    interval: Duration | None,
    fresh: bool,
    job: str,
) -> AsyncIterator[Checkpointing | None]:
    """The checkpoint options of a run (``None``: no checkpoints), its store open meanwhile.

    Raises:
        ValueError: ``interval`` or ``fresh`` without a ``target``.
        CheckpointError: the store cannot be opened (another job's, damaged, in use).
    """
    if target is None:
        if interval is not None or fresh:
            raise ValueError("checkpoint_interval and fresh need checkpoint= (a directory)")
        yield None
        return
    every = _DEFAULT_INTERVAL if interval is None else interval
    if isinstance(target, str | os.PathLike):
        folder = trio.Path(target)
        try:
            await folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointError(
                os.fspath(folder), f"cannot be a checkpoint directory: {exc.strerror or exc}"
            ) from None
        async with open_sqlite_store(os.fspath(folder / STORE_FILE), job=_JOB) as store:
            yield Checkpointing(store=store, interval=every, fingerprint=job, fresh=fresh)
        return
    yield Checkpointing(store=target, interval=every, fingerprint=job, fresh=fresh)


@asynccontextmanager
async def checkpointed(
    options: SupervisorOptions,
    target: CheckpointTarget,
    *,
    interval: Duration | None,
    fresh: bool,
    job: Callable[[], str],
) -> AsyncIterator[SupervisorOptions]:
    """``options`` with the checkpoints ``target`` asks for (unchanged for ``None``).

    ``job`` makes the fingerprint, only when there are checkpoints.
    """
    name = job() if target is not None else ""
    async with open_checkpointing(target, interval=interval, fresh=fresh, job=name) as checkpoints:
        yield options if checkpoints is None else attrs.evolve(options, checkpoints=checkpoints)


@asynccontextmanager
async def supervised(
    graph: Graph,
    options: SupervisorOptions,
    target: CheckpointTarget,
    *,
    interval: Duration | None,
    fresh: bool,
    job: Callable[[], str],
    on_end: Callable[[], None] | None = None,
) -> AsyncIterator[Supervisor]:
    """Run ``graph`` under a supervisor for the block, with the checkpoints ``target``
    asks for (as :func:`checkpointed`); ``on_end`` as for :func:`runtime.open_supervisor`."""
    async with (
        checkpointed(options, target, interval=interval, fresh=fresh, job=job) as with_checkpoints,
        open_supervisor(graph, with_checkpoints, on_end=on_end) as running,
    ):
        yield running
