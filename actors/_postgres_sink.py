"""Write rows into a Postgres table: COPY to append, ``INSERT ... ON CONFLICT`` to upsert.

The sink writes from a worker thread on its own connection (see
``_postgres_conn``).  The columns written are the keys of the batch's rows (a
row without one of them writes NULL there); the table must exist.  Its column
types are looked up once, from the catalog: into a json or jsonb column every
value goes as JSON (a list too), elsewhere a list goes as an array.

Without checkpoints each batch is one transaction.  With checkpoints the rows
between two barriers are one transaction, committed when barrier ``n`` reaches
the sink (:meth:`PostgresSink.commit_checkpoint`), before checkpoint ``n`` can
commit, together with the sink's row in ``partita_sink_progress``::

    sink_id     text PRIMARY KEY  -- the sink (default: its table)
    checkpoint  bigint            -- the last checkpoint whose rows are committed
    complete    boolean           -- the run's end was committed after it
    rows        bigint            -- rows written in all
    first_seal  boolean           -- no checkpoint of its run was known to be in the store
    pending     jsonb             -- [[checkpoint or "end", txid], ...] not yet known
                                  -- to be in the checkpoint store
    updated_at  timestamptz

A run resumed from checkpoint ``m`` finds ``checkpoint`` at ``m`` (a crash
before the sink committed ``m + 1``: its transaction was rolled back, nothing to
undo) or at ``m + 1`` (a crash between the sink's commit and the checkpoint
store's): then, in append mode, the rows of the transactions the store does not
know of are deleted (by their ``xmin``, the id of the transaction that wrote
them) before anything is written.  A start afresh (nothing in the store) takes back
the transactions of a run none of whose checkpoints reached the store.  An
upsert needs no undo: writing the same
rows again ends in the same table.  So the table ends as if each row had been
written once.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

from partita.runtime import Batch, Record, Sink

from ._postgres_conn import ThreadedConnection, check_timeout, describe_server
from ._postgres_errors import PostgresError, one_line

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

__all__ = ["PROGRESS_TABLE", "RETRACT", "PostgresSink", "Progress", "undo_after"]

RETRACT = "_retract"
"""The reserved boolean field of a retraction: ``{"_retract": true, key...}`` deletes the key."""

PROGRESS_TABLE = "partita_sink_progress"
"""Where an exactly-once sink commits its checkpoint id with its rows (created if missing)."""

_CREATE_PROGRESS = f"""
CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (
    sink_id text PRIMARY KEY,
    checkpoint bigint,
    complete boolean NOT NULL DEFAULT false,
    rows bigint NOT NULL DEFAULT 0,
    first_seal boolean NOT NULL DEFAULT false,
    pending jsonb NOT NULL DEFAULT '[]',
    updated_at timestamptz NOT NULL DEFAULT now()
)"""

_SAVE_PROGRESS = f"""
INSERT INTO {PROGRESS_TABLE} AS p
    (sink_id, checkpoint, complete, rows, first_seal, pending, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, now())
ON CONFLICT (sink_id) DO UPDATE SET
    checkpoint = EXCLUDED.checkpoint, complete = EXCLUDED.complete, rows = EXCLUDED.rows,
    first_seal = EXCLUDED.first_seal, pending = EXCLUDED.pending, updated_at = now()"""

_JSON_TYPES = ("json", "jsonb")
_END = "end"


def _key_columns(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    columns = (value,) if isinstance(value, str) else tuple(value)
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise ValueError(f"key must name one or more columns, got {value!r}")
    if RETRACT in columns:
        raise ValueError(f"key cannot be {RETRACT!r}: that field marks a retraction")
    return columns


def _check_table(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value or any(not p for p in value.split(".")):
        raise ValueError(f"table must be a table name (or schema.table), got {value!r}")


def _no_setup(conn: psycopg.Connection[Any]) -> None:
    return None


@attrs.frozen
class Progress:
    """A sink's row in ``partita_sink_progress`` (see the module)."""

    checkpoint: int | None
    complete: bool
    first_seal: bool  # no checkpoint of its run was known to be in the store
    pending: list[list[Any]]


def undo_after(checkpoint: int | None, progress: Progress | None) -> list[int]:
    """The transactions to take back before a run resumes from ``checkpoint`` (``None``:
    a start afresh), given the sink's progress row: the ones the store does not hold.

    Raises:
        ValueError: the row is not one this checkpoint's run can have left.

    Example:
        >>> undo_after(4, Progress(5, False, False, [[5, 900]]))  # crashed before the store
        [900]
        >>> undo_after(5, Progress(5, True, False, [[5, 900], ["end", 901]]))
        [901]
        >>> undo_after(None, Progress(0, False, True, [[0, 700]]))  # before any checkpoint
        [700]
    """
    if checkpoint is not None:
        if progress is None:
            raise ValueError(
                f"no row, but the run resumes from checkpoint {checkpoint}, which committed "
                "rows there: start afresh (--fresh) after emptying the table"
            )
        if progress.checkpoint not in (checkpoint, checkpoint + 1):
            raise ValueError(
                f"committed checkpoint {progress.checkpoint}, but the run resumes from "
                f"checkpoint {checkpoint}: another job writes with this sink_id (give each "
                "its own), or the checkpoint is not this table's"
            )
        return [xid for label, xid in progress.pending if label == _END or int(label) > checkpoint]
    if progress is not None and progress.first_seal:
        # no checkpoint of that run reached the store: none of its rows count
        return [xid for _, xid in progress.pending]
    return []


@attrs.frozen
class _Recovery:
    """What to check in ``partita_sink_progress`` before the first write of a run."""

    checkpoint: int | None  # the checkpoint the run resumed from; None: a start afresh


@attrs.define(eq=False)
class PostgresSink(Sink):
    """Writes each batch into ``table``: appended with COPY, or upserted on ``key``.

    Without ``key``, rows are appended with ``COPY``.  With ``key`` (the columns
    of a unique index or primary key), rows are upserted: ``INSERT ... ON
    CONFLICT (key) DO UPDATE`` sets every other column, so the table holds the
    last row per key (what ``EMIT CHANGES`` queries want).  A row with the
    reserved field ``"_retract": true`` is a retraction: with ``key`` it deletes
    its key's row; in append mode it is a :class:`PostgresError` (a COPY cannot
    take a row back).  The field itself is never written.

    Delivery is exactly-once with checkpoints: the rows between two checkpoints
    are written in one transaction, committed with the checkpoint's id in
    ``partita_sink_progress`` (created if missing) before the checkpoint itself
    commits, and a resumed run first takes back what a crash left after the
    checkpoint it resumes from (see ``docs/operations.md``, "Postgres").
    Without checkpoints each batch is its own transaction.

    Example:
        >>> sink = PostgresSink("out", "postgresql://app@db:5432/shop", "spent", key=["customer"])
        >>> sink.sink_id
        'spent'

    Args:
        name: unique within its graph.
        dsn: a libpq connection string or URL.
        table: the table, ``name`` or ``schema.name`` (quoted as identifiers).
        key: the conflict key for upserts; ``None`` appends.
        sink_id: names this sink's row in ``partita_sink_progress`` (default: the
            table); two jobs writing one table with checkpoints need one each.
        connect_timeout: seconds to wait for the server when connecting.

    Raises:
        PostgresError: connecting or writing failed, or a resumed run's progress
            row does not match its checkpoint, naming the server and the rows
            written so far.

    .. versionadded:: 0.1
    """

    dsn: str
    table: str = attrs.field(validator=_check_table)
    key: tuple[str, ...] = attrs.field(default=None, kw_only=True, converter=_key_columns)
    sink_id: str = attrs.field(
        kw_only=True,
        default=attrs.Factory(lambda self: self.table, takes_self=True),
        validator=attrs.validators.min_len(1),
    )
    connect_timeout: float = attrs.field(default=10.0, kw_only=True, validator=check_timeout)
    rows_written: int = attrs.field(init=False, default=0)
    _conn: ThreadedConnection | None = attrs.field(init=False, default=None)
    _types: dict[str, str] | None = attrs.field(init=False, default=None)
    _recovery: _Recovery | None = attrs.field(init=False, default=_Recovery(None))
    _sealed: int | None = attrs.field(init=False, default=None)  # the last checkpoint committed
    _sealed_here: bool = attrs.field(init=False, default=False)  # by this run
    _in_store: bool = attrs.field(init=False, default=False)  # a checkpoint of this run
    _pending: list[list[Any]] = attrs.field(init=False, factory=list)
    _epoch_rows: int = attrs.field(init=False, default=0)  # in the open transaction
    _lost: str | None = attrs.field(init=False, default=None)

    delivery: ClassVar[Literal["exactly-once", "at-least-once"]] = "exactly-once"

    @property
    def server(self) -> str:
        """``host:port/dbname`` (what errors name; never the password)."""
        return describe_server(self.dsn)

    # --------------------------------------------------------- checkpoints
    def snapshot_state(self) -> object:
        """The checkpoint just committed into the table, and the rows written."""
        return {"checkpoint": self._sealed, "rows": self.rows_written}

    def restore_state(self, state: object) -> None:
        saved: Any = state
        self.rows_written = saved["rows"]
        self._sealed = saved["checkpoint"]
        self._in_store = True
        self._recovery = _Recovery(saved["checkpoint"])

    async def commit_checkpoint(self, checkpoint_id: int) -> None:
        """Commit the rows since the last checkpoint with ``checkpoint_id``, in one transaction."""
        pending = [[checkpoint_id, None]]  # the checkpoint before it is in the store
        await self._seal("commit", checkpoint_id, pending, complete=False)

    async def flush(self) -> None:
        if self.checkpointing:
            pending = [*self._pending, [_END, None]]
            await self._seal("commit", self._sealed, pending, complete=True)
        await self.aclose()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.abort()  # rolls back a transaction left open (a failed run)
        if self._epoch_rows and self._lost is None:
            # the open transaction took rows the upstream counts as delivered
            self._lost = (
                f"the {self._epoch_rows:,} rows written since checkpoint {self._sealed} were "
                "rolled back with the transaction: resume the run from its checkpoint"
            )

    # ------------------------------------------------------------- writing
    async def consume(self, batch: Batch) -> None:
        records = batch.records
        if not records:
            return
        checkpointing = self.checkpointing

        def write(conn: psycopg.Connection[Any]) -> None:
            self._write(conn, records)
            if not checkpointing:
                conn.commit()

        await self._run("write", write)
        if checkpointing:
            self._epoch_rows += len(records)
        self.rows_written += len(records)

    async def _seal(
        self, doing: str, checkpoint: int | None, pending: list[list[Any]], *, complete: bool
    ) -> None:
        if not complete and self._sealed_here:
            self._in_store = True  # barrier n comes only once checkpoint n - 1 is in the store
        first = not self._in_store
        rows = self.rows_written

        def seal(conn: psycopg.Connection[Any]) -> None:
            [(txid,)] = conn.execute("SELECT txid_current()").fetchall()
            marked = [[label, txid if xid is None else xid] for label, xid in pending]
            conn.execute(
                _SAVE_PROGRESS,
                [self.sink_id, checkpoint, complete, rows, first, json.dumps(marked)],
            )
            conn.commit()
            self._pending = marked

        await self._run(doing, seal)
        self._epoch_rows = 0
        if not complete:
            self._sealed = checkpoint
            self._sealed_here = True

    async def _run(self, doing: str, fn: Any) -> None:
        import psycopg

        if self._lost is not None:
            raise PostgresError(self.server, doing, self.rows_written, self._lost)
        conn = self._conn
        if conn is None:
            conn = self._conn = ThreadedConnection(self.dsn, _no_setup, self.connect_timeout)
        step = doing
        try:
            if not conn.connected:
                step = "connect"
                await conn.run(_no_setup)
            if self._types is None:
                step = doing
                self._types = await conn.run(self._column_types)
            recovery = self._recovery
            if recovery is not None:
                if self.checkpointing:
                    step = "recover"
                    await conn.run(functools.partial(self._recover, recovery.checkpoint))
                self._recovery = None
            step = doing
            await conn.run(fn)
        except (psycopg.Error, _Refused) as exc:
            await self.aclose()
            raise PostgresError(
                self.server, step, self.rows_written, one_line(exc), getattr(exc, "sqlstate", None)
            ) from exc

    def _column_types(self, conn: psycopg.Connection[Any]) -> dict[str, str]:
        from psycopg import sql

        table = sql.Identifier(*self.table.split(".")).as_string(conn)
        rows = conn.execute(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [table],
        ).fetchall()
        conn.rollback()  # nothing of it stays open
        return {name: kind for name, kind in rows}

    def _recover(self, checkpoint: int | None, conn: psycopg.Connection[Any]) -> None:
        """Take back what a crash left in the table after ``checkpoint`` (see the module)."""
        conn.execute(_CREATE_PROGRESS)
        found = conn.execute(
            f"SELECT checkpoint, complete, first_seal, pending FROM {PROGRESS_TABLE} "
            "WHERE sink_id = %s FOR UPDATE",
            [self.sink_id],
        ).fetchall()
        progress = Progress(*found[0]) if found else None
        try:
            undo = undo_after(checkpoint, progress)
        except ValueError as exc:
            raise _Refused(f"{PROGRESS_TABLE}, sink_id {self.sink_id!r}: {exc}") from None
        if undo and not self.key:
            from psycopg import sql

            table = sql.Identifier(*self.table.split("."))
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE xmin::text::bigint = ANY(%s)").format(table),
                [[xid % 2**32 for xid in undo]],
            )
        conn.execute(
            _SAVE_PROGRESS,
            [self.sink_id, checkpoint, False, self.rows_written, checkpoint is None, "[]"],
        )
        conn.commit()

    def _write(self, conn: psycopg.Connection[Any], records: list[Record]) -> None:
        from psycopg import sql

        if self.key:
            self._upsert(conn, records)
            return
        if any(r.get(RETRACT) is True for r in records):
            raise _Refused(
                f'a retraction (a row with "{RETRACT}": true) into {self.table!r}, which is '
                "appended to: give the sink key= (the table's unique key) to upsert and delete"
            )
        columns = [c for c in dict.fromkeys(n for r in records for n in r) if c != RETRACT]
        table = sql.Identifier(*self.table.split("."))
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        copy = sql.SQL("COPY {} ({}) FROM STDIN").format(table, names)
        with conn.cursor() as cursor, cursor.copy(copy) as writer:
            for row in self._rows(records, columns):
                writer.write_row(row)

    def _rows(self, records: list[Record], columns: list[str]) -> list[list[Any]]:
        from psycopg.types.json import Json, Jsonb

        types = self._types or {}
        wrap: list[Any] = []
        for column in columns:
            kind = types.get(column)
            wrap.append(Jsonb if kind == "jsonb" else Json if kind == "json" else None)
        out = []
        for record in records:
            row = []
            for column, as_json in zip(columns, wrap, strict=True):
                value = record.get(column)
                if value is not None and as_json is not None:
                    value = as_json(value)
                elif type(value) is dict:
                    value = Jsonb(value)
                row.append(value)
            out.append(row)
        return out

    def _upsert(self, conn: psycopg.Connection[Any], records: list[Record]) -> None:
        from psycopg import sql

        key = self.key
        last: dict[tuple[Any, ...], Record] = {}  # the last row per key decides it
        for record in records:
            last[tuple(record.get(k) for k in key)] = record
        deletes = [k for k, r in last.items() if r.get(RETRACT) is True]
        upserts = [r for r in last.values() if r.get(RETRACT) is not True]
        table = sql.Identifier(*self.table.split("."))
        with conn.cursor() as cursor:
            if deletes:
                where = sql.SQL(" AND ").join(
                    sql.SQL("{} = %s").format(sql.Identifier(k)) for k in key
                )
                cursor.executemany(sql.SQL("DELETE FROM {} WHERE {}").format(table, where), deletes)
            if upserts:
                columns = [c for c in dict.fromkeys(n for r in upserts for n in r) if c != RETRACT]
                names = sql.SQL(", ").join(map(sql.Identifier, columns))
                statement = self._upsert_statement(table, names, columns)
                cursor.executemany(statement, self._rows(upserts, columns))

    def _upsert_statement(
        self, table: sql.Identifier, names: sql.Composed, columns: list[str]
    ) -> sql.Composed:
        from psycopg import sql

        others = [c for c in columns if c not in self.key]
        on_conflict = (
            sql.SQL("DO UPDATE SET ")
            + sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in others
            )
            if others
            else sql.SQL("DO NOTHING")
        )
        return sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) {}").format(
            table,
            names,
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
            sql.SQL(", ").join(map(sql.Identifier, self.key)),
            on_conflict,
        )


class _Refused(Exception):
    """Raised in the worker thread: what the sink refuses to do (one line, no SQLSTATE)."""
