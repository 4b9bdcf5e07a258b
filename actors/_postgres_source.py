"""Stream a Postgres query's rows, a chunk at a time, as fast as downstream takes them.

The query runs in a server-side (named) cursor on one connection of the
source's own, driven from a worker thread (see ``_postgres_conn``).  The source
fetches ``batch_size`` rows (the runtime's adaptive batch size), sends them as
one batch, and fetches the next only once that batch is in the mailbox: a slow
consumer holds the cursor, and so the server, back, and the client holds at
most one chunk.  A pause keeps the connection and the cursor open.

Cancellation (the graph cancelled, Ctrl-C, the consumer gone, a graceful stop)
sends the server a cancel request for a fetch under way and closes the
connection, so the query stops on the server at once.  A failed statement or
a lost connection is a :class:`PostgresError` naming the server and the rows
read so far.

With ``order_by=`` (a unique, non-NULL key the query's rows are read in), the
source is resumable: it remembers the key of the last row it handed over, and
a checkpoint's recovery (or a restart after a lost connection) reads on with
keyset pagination, ``WHERE (key) > (last) ORDER BY key`` around the query.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from partita.runtime import BadRecord, DeadLetter, Record

from ._postgres_conn import ThreadedConnection, check_timeout, describe_server
from ._postgres_errors import PostgresError, one_line
from ._postgres_types import (
    NumericAs,
    TimestampsAs,
    TypeMapping,
    Unmappable,
    UnmappableCount,
    install_loaders,
)
from ._sources import ErrorPolicy, RecordSource, _check_policy

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

__all__ = ["PostgresSource"]

_CURSOR = "partita_source"
_KEY_ALIAS = "__partita_key_{}"

Params = Sequence[Any] | Mapping[str, Any] | None


def _key_columns(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    columns = (value,) if isinstance(value, str) else tuple(value)
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise ValueError(f"order_by must name one or more columns, got {value!r}")
    return columns


def _unmappable_in(value: Any) -> Unmappable | None:
    if type(value) is Unmappable:
        return value
    if type(value) is list:
        for item in value:
            found = _unmappable_in(item)
            if found is not None:
                return found
    return None


def _plain(value: Any) -> Any:
    """``value`` with every :class:`Unmappable` replaced by its text (for a dead letter)."""
    if type(value) is Unmappable:
        return value.text
    if type(value) is list:
        return [_plain(v) for v in value]
    return value


@attrs.frozen
class _Chunk:
    """What one fetch made of the rows it read (built in the worker thread)."""

    records: list[Record]
    dead: list[DeadLetter]
    failure: BadRecord | None
    offsets: Sequence[int]
    fetched: int
    last_key: tuple[str, ...] | None


@attrs.define(eq=False)
class _Reader:
    """The cursor of one connection: made, used and closed in the worker thread only."""

    source: PostgresSource
    statement: sql.Composed | str
    width: int = 0
    names: list[str] = attrs.field(factory=list)
    cursor: psycopg.ServerCursor[Any] | None = None
    seen: UnmappableCount = attrs.field(factory=UnmappableCount)

    def setup(self, conn: psycopg.Connection[Any]) -> None:
        install_loaders(conn, self.source._mapping, self.seen)
        conn.autocommit = True
        conn.execute("SET TimeZone TO 'UTC'")
        conn.execute("SET DateStyle TO 'ISO, YMD'")
        conn.autocommit = False

    def open(self, conn: psycopg.Connection[Any]) -> None:
        cursor = conn.cursor(name=_CURSOR)
        cursor.execute(self.statement, self.source.params)
        names = [column.name for column in cursor.description or ()]
        self.width = len(names) - len(self.source.order_by)
        self.names = names[: self.width]
        self.cursor = cursor

    def fetch(self, n: int, done: int) -> _Chunk | None:
        """The next ``n`` rows at most (``done`` read before them); ``None`` at the end."""
        cursor = self.cursor
        assert cursor is not None
        before = self.seen.count
        rows = cursor.fetchmany(n)
        if not rows:
            return None
        width = self.width
        keyed = width < len(rows[0])
        last_key = tuple(rows[-1][width:]) if keyed else None
        if self.seen.count == before and not (keyed and any(None in r[width:] for r in rows)):
            names = self.names
            # zip stops at the names: the hidden key columns are left out
            records = [dict(zip(names, row, strict=False)) for row in rows]
            offsets = range(done + 1, done + 1 + len(rows))
            return _Chunk(records, [], None, offsets, len(rows), last_key)
        return self._careful(rows, done)

    def _careful(self, rows: list[Any], done: int) -> _Chunk:
        """Rows of which some are bad: each checked, the bad ones by the source's policy."""
        source, names, width = self.source, self.names, self.width
        records: list[Record] = []
        offsets: list[int] = []
        dead: list[DeadLetter] = []
        last_key: tuple[str, ...] | None = None
        for index, row in enumerate(rows):
            number = done + index + 1
            problem = None
            key = None
            if width < len(row):
                if None in row[width:]:
                    problem = f"order_by key {', '.join(source.order_by)} is NULL"
                else:
                    key = tuple(row[width:])
            if problem is None:
                for name, value in zip(names, row, strict=False):
                    bad = _unmappable_in(value)
                    if bad is not None:
                        problem = f"column {name!r}: {bad.reason} ({bad.text!r})"
                        break
            if problem is None:
                records.append(dict(zip(names, row, strict=False)))
                offsets.append(number)
            else:
                reason = f"row {number}: {problem}"
                if source.on_error == "fail":
                    # the failing row is not read: a restart reads it (and fails) again
                    failure = BadRecord(reason, None, source.name)
                    return _Chunk(records, dead, failure, offsets, index, last_key)
                record = {name: _plain(value) for name, value in zip(names, row, strict=False)}
                letter = DeadLetter(record=record, reason=reason, offset=None, stage=source.name)
                dead.append(letter)
            if key is not None:  # handed over, or dead-lettered (or skipped) by the policy
                last_key = key
        return _Chunk(records, dead, None, offsets, len(rows), last_key)


def _connected(conn: psycopg.Connection[Any]) -> None:
    """Nothing: the call that opens the connection (so a failure there says ``connect``)."""


def _fetch(reader: _Reader, n: int, done: int, conn: psycopg.Connection[Any]) -> _Chunk | None:
    return reader.fetch(n, done)


@attrs.define(eq=False)
class PostgresSource(RecordSource):
    """Streams the rows of a Postgres query as records (dicts), with backpressure.

    Rows are read through a server-side cursor, ``batch_size`` rows per fetch
    (adaptive, see :class:`BatchSizer`), and the next fetch waits until the
    previous batch is in the downstream mailbox, so a slow consumer holds the
    server back and memory stays one chunk.  Values are mapped to plain,
    JSON-encodable Python (``docs/operations.md`` "Postgres" has the table):
    json/jsonb decoded, numeric as ``float``, timestamps as epoch milliseconds,
    uuid as ``str``, arrays as lists.  A row with a value that has no such form
    (a timestamp ``'infinity'``) or a NULL ``order_by`` key is a bad record, by
    ``on_error``.

    Cancelling the graph (or a graceful stop, Ctrl-C, the consumer going away)
    cancels the query on the server and closes the connection.

    Example:
        >>> src = PostgresSource(
        ...     "orders",
        ...     "postgresql://app@db.internal:5432/shop",
        ...     "SELECT id, customer, total, created_at FROM orders WHERE total > %s",
        ...     params=[100],
        ...     order_by="id",
        ... )
        >>> src.resumable
        True

    Args:
        name: unique within its graph.
        dsn: a libpq connection string or URL (``postgresql://user@host:port/db``);
            passwords are best kept out of it (``PGPASSWORD``, ``~/.pgpass``).
        query: one SELECT (or VALUES) statement; ``%s`` / ``%(name)s`` placeholders
            take ``params``.
        params: the query's parameters, a sequence or a mapping.
        order_by: the column (or columns) of a unique, non-NULL key: rows are read
            in that order and a checkpoint (or a restart) resumes after the last
            key handed over.  Without it the source cannot resume.
        on_error: bad rows: ``"skip"`` (count), ``"dead-letter"`` or ``"fail"``.
        numeric: numeric columns as ``"float"``, ``"decimal"`` (``Decimal``, not
            JSON) or ``"str"`` (the exact text).
        timestamps: timestamp and timestamptz columns as ``"epoch_ms"`` (int, UTC;
            SQL event time), ``"iso"`` (text, UTC) or ``"datetime"`` (not JSON).
        connect_timeout: seconds to wait for the server when connecting (libpq's
            ``connect_timeout``, whole seconds, at least 1).

    Raises:
        PostgresError: connecting, the query, or reading failed (a lost
            connection), or a restart without ``order_by`` could not go on.
        runtime.BadRecord: with ``on_error="fail"``, at the first bad row.

    .. versionadded:: 0.1
    """

    dsn: str
    query: str
    params: Params = attrs.field(default=None, kw_only=True)
    order_by: tuple[str, ...] = attrs.field(default=None, kw_only=True, converter=_key_columns)
    on_error: ErrorPolicy = attrs.field(default="skip", kw_only=True, validator=_check_policy)
    numeric: NumericAs = attrs.field(default="float", kw_only=True)
    timestamps: TimestampsAs = attrs.field(default="epoch_ms", kw_only=True)
    connect_timeout: float = attrs.field(default=10.0, kw_only=True, validator=check_timeout)
    rows_fetched: int = attrs.field(init=False, default=0)
    _mapping: TypeMapping = attrs.field(init=False)
    _last_key: tuple[str, ...] | None = attrs.field(init=False, default=None)
    _conn: ThreadedConnection | None = attrs.field(init=False, default=None)
    _reader: _Reader | None = attrs.field(init=False, default=None)
    _ended: bool = attrs.field(init=False, default=False)

    @_mapping.default
    def _make_mapping(self) -> TypeMapping:
        return TypeMapping(numeric=self.numeric, timestamps=self.timestamps)

    @property
    def resumable(self) -> bool:  # type: ignore[override]
        """With ``order_by``: a checkpoint resumes after the last key handed over."""
        return bool(self.order_by)

    resume_hint: ClassVar[str] = (
        "give it a unique key to read in and resume after: order_by= (the query's "
        "ORDER BY key; ?order_by= in a postgres:// URL), or run without checkpoints"
    )

    @property
    def server(self) -> str:
        """``host:port/dbname`` (what errors name; never the password)."""
        return describe_server(self.dsn)

    def describe_input(self) -> str:
        """The server, the query and the key: what a checkpoint of this source is of."""
        key = f" order_by={','.join(self.order_by)}" if self.order_by else ""
        return f"{self.server} {' '.join(self.query.split())!r}{key}"

    def describe_offset(self, offset: int) -> str:
        """A Postgres source's records carry their 1-based row number as their offset."""
        return f"at row {offset} of the query on {self.server}"

    def error_reason(self, letter: DeadLetter) -> str:
        message = letter.reason.partition(": ")[2]
        return "NULL order_by key" if message.startswith("order_by key") else "unmappable value"

    def snapshot_state(self) -> object:
        """The last key handed over (as Postgres writes it) and the rows read."""
        key = None if self._last_key is None else list(self._last_key)
        return {"key": key, "rows": self.rows_fetched}

    def restore_state(self, state: object) -> None:
        saved: Any = state
        self._last_key = None if saved["key"] is None else tuple(saved["key"])
        self.rows_fetched = saved["rows"]

    # ------------------------------------------------------------- reading
    async def produce(self) -> None:
        if self._ended:
            return
        try:
            await self._read()
        except BaseException:
            await self._abort()
            raise

    async def _read(self) -> None:
        reader = self._reader
        if reader is None:
            reader = await self._open()
        conn = self._conn
        assert conn is not None
        while True:
            fetch = functools.partial(_fetch, reader, self.batch_size, self.rows_fetched)
            chunk = await self._call("read", fetch)
            if chunk is None:
                break
            self.rows_fetched += chunk.fetched
            if chunk.last_key is not None:
                self._last_key = chunk.last_key
            await self.send_with_dead_letters(chunk.records, chunk.dead, chunk.offsets)
            if chunk.failure is not None:
                raise chunk.failure
            del chunk
        self._reader = None
        self._ended = True
        await conn.aclose()

    async def _open(self) -> _Reader:
        if self.rows_fetched and not self.order_by:
            raise PostgresError(
                self.server,
                "resume",
                self.rows_fetched,
                "the query cannot be read on from where it stopped without order_by= "
                "(a unique key to resume after)",
            )
        reader = _Reader(self, self._statement())
        self._conn = ThreadedConnection(self.dsn, reader.setup, self.connect_timeout)
        await self._call("connect", _connected)
        await self._call("query", reader.open)
        self._reader = reader
        return reader

    async def _call(self, doing: str, fn: Any) -> Any:
        import psycopg

        conn = self._conn
        assert conn is not None
        try:
            return await conn.run(fn)
        except psycopg.Error as exc:
            raise PostgresError(
                self.server, doing, self.rows_fetched, one_line(exc), getattr(exc, "sqlstate", None)
            ) from exc

    async def _abort(self) -> None:
        """Cancel what the server runs for this source and close the connection."""
        self._reader = None
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.abort()

    def _statement(self) -> sql.Composed | str:
        """The user's query, or around it the keyset read in key order after the last key."""
        from psycopg import sql

        query = self.query.strip().rstrip(";").rstrip()
        keys = self.order_by
        if not keys:
            return query
        column = [sql.SQL("partita_q.{}").format(sql.Identifier(k)) for k in keys]
        hidden = [
            sql.SQL("({})::text AS {}").format(c, sql.Identifier(_KEY_ALIAS.format(i)))
            for i, c in enumerate(column)
        ]
        parts: list[sql.Composable] = [
            sql.SQL("SELECT partita_q.*, "),
            sql.SQL(", ").join(hidden),
            sql.SQL(" FROM ("),
            sql.SQL(query),
            sql.SQL("\n) AS partita_q"),  # on its own line: the query may end in a -- comment
        ]
        last = self._last_key
        if last is not None:
            parts += [
                sql.SQL(" WHERE ({}) > ({})").format(
                    sql.SQL(", ").join(column), sql.SQL(", ").join(map(sql.Literal, last))
                )
            ]
        parts += [sql.SQL(" ORDER BY "), sql.SQL(", ").join(column)]
        return sql.Composed(parts)
