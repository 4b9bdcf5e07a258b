"""Write rows into a Postgres table: COPY to append, ``INSERT ... ON CONFLICT`` to upsert.

Each batch is written and committed in one transaction, from a worker thread
on the sink's own connection (see ``_postgres_conn``): a batch is in the table
whole or not at all.  The columns written are the keys of the batch's rows
(a row without one of them writes NULL there); the table must exist, with
column types that take the values (a JSON object goes to json/jsonb).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from partita.runtime import Batch, Record, Sink

from ._postgres_conn import ThreadedConnection, describe_server
from ._postgres_errors import PostgresError

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

__all__ = ["PostgresSink"]


def _key_columns(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    columns = (value,) if isinstance(value, str) else tuple(value)
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise ValueError(f"key must name one or more columns, got {value!r}")
    return columns


def _check_table(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value or any(not p for p in value.split(".")):
        raise ValueError(f"table must be a table name (or schema.table), got {value!r}")


def _no_setup(conn: psycopg.Connection[Any]) -> None:
    return None


@attrs.define(eq=False)
class PostgresSink(Sink):
    """Writes each batch into ``table``, in one transaction per batch.

    Without ``key``, rows are appended with ``COPY``.  With ``key`` (the columns
    of a unique index or primary key), rows are upserted: ``INSERT ... ON
    CONFLICT (key) DO UPDATE`` sets every other column, so the table holds the
    last row per key (what ``EMIT CHANGES`` queries want).

    Delivery is at-least-once: after a crash and a resume from a checkpoint the
    rows since that checkpoint are written again.  With ``key`` a row written
    again overwrites itself, so the table ends as if each row had been written
    once (for a deterministic query).

    Example:
        >>> sink = PostgresSink("out", "postgresql://app@db:5432/shop", "spent", key=["customer"])

    Args:
        name: unique within its graph.
        dsn: a libpq connection string or URL.
        table: the table, ``name`` or ``schema.name`` (quoted as identifiers).
        key: the conflict key for upserts; ``None`` appends.

    Raises:
        PostgresError: connecting or writing failed, naming the server and the
            rows written so far.

    .. versionadded:: 0.1
    """

    dsn: str
    table: str = attrs.field(validator=_check_table)
    key: tuple[str, ...] = attrs.field(default=None, kw_only=True, converter=_key_columns)
    connect_timeout: float = attrs.field(default=10.0, kw_only=True)
    rows_written: int = attrs.field(init=False, default=0)
    _conn: ThreadedConnection | None = attrs.field(init=False, default=None)

    @property
    def server(self) -> str:
        """``host:port/dbname`` (what errors name; never the password)."""
        return describe_server(self.dsn)

    async def consume(self, batch: Batch) -> None:
        records = batch.records
        if not records:
            return
        import psycopg

        if self._conn is None:
            self._conn = ThreadedConnection(self.dsn, _no_setup, self.connect_timeout)
        try:
            await self._conn.run(lambda conn: self._write(conn, records))
        except psycopg.Error as exc:
            await self._conn.abort()
            self._conn = None
            message = str(exc).strip() or type(exc).__name__
            raise PostgresError(
                self.server, "write", self.rows_written, message, getattr(exc, "sqlstate", None)
            ) from exc
        self.rows_written += len(records)

    async def flush(self) -> None:
        if self._conn is not None:
            await self._conn.aclose()
            self._conn = None

    def _write(self, conn: psycopg.Connection[Any], records: list[Record]) -> None:
        from psycopg import sql
        from psycopg.types.json import Jsonb

        columns = list(dict.fromkeys(name for record in records for name in record))
        rows = [
            [Jsonb(v) if type(v) is dict else v for v in (r.get(c) for c in columns)]
            for r in records
        ]
        table = sql.Identifier(*self.table.split("."))
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        with conn.cursor() as cursor:
            if not self.key:
                copy = sql.SQL("COPY {} ({}) FROM STDIN").format(table, names)
                with cursor.copy(copy) as writer:
                    for row in rows:
                        writer.write_row(row)
            else:
                cursor.executemany(self._upsert(table, names, columns), rows)
        conn.commit()

    def _upsert(
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
