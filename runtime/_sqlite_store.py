"""The embedded checkpoint store: one SQLite file per job, on local disk.

The file (stdlib ``sqlite3``, WAL journal) holds three tables::

    store        (key TEXT PRIMARY KEY, value TEXT)   -- format, schema_version, job
    checkpoints  (id INTEGER PRIMARY KEY, meta BLOB)  -- the committed checkpoints
    parts        (checkpoint_id, actor, blob)         -- every actor's state, staged or committed

and SQLite's ``application_id`` header field says it is partita's.  A part is
visible only when its id is in ``checkpoints``; :meth:`SqliteCheckpointStore.commit`
inserts that row, drops parts staged for older ids and prunes old checkpoints in
one transaction, so a crash (even ``kill -9`` or a power cut) leaves the previous
checkpoint or the new one, never a mix.

Durability: a commit runs with ``synchronous=FULL``, so a commit that returned
survives a power cut, not only a crash of the process: its transaction ends with an
``fsync`` of the write-ahead log.  Staging runs with ``synchronous=NORMAL`` (no
``fsync``): a staged part need not survive anything until its commit, and the log
is written in order, so the commit's ``fsync`` makes the parts staged before it
durable too.  That is one ``fsync`` per checkpoint, not one per actor (measured:
20 checkpoints of 100 parts, 80 ``fdatasync`` calls instead of 2,080).
``locking_mode=EXCLUSIVE``: while a store is open, no other process can open the
file, so two runs of one job cannot interleave their checkpoints.

Threads: the one connection is used from trio's worker threads
(``trio.to_thread.run_sync``), one call at a time (a :class:`trio.Lock`).  The
calls are not abandoned on cancel (``abandon_on_cancel=False``): a cancel that
arrives while a transaction runs waits for it (milliseconds) and takes effect
after, so a cancelled ``commit`` has either committed wholly or not started;
abandoning the thread would leave it running on the connection behind the next
call's back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Final, TypeVar

import attrs
import trio

from ._errors import CheckpointCorrupt, CheckpointError
from ._store import Checkpoint, check_keep, check_next_id, check_stage

__all__ = ["STORE_SCHEMA_VERSION", "SqliteCheckpointStore", "open_sqlite_store"]

T = TypeVar("T")

STORE_SCHEMA_VERSION: Final = 1
"""The schema version a new store file gets; the only one this partita opens."""

_APPLICATION_ID: Final = 0x50544341  # "PTCA" in SQLite's header: a partita checkpoint store
_FORMAT: Final = "partita checkpoint store"

_SCHEMA: Final = """
CREATE TABLE store (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE checkpoints (id INTEGER PRIMARY KEY, meta BLOB NOT NULL);
CREATE TABLE parts (
    checkpoint_id INTEGER NOT NULL,
    actor TEXT NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (checkpoint_id, actor)
);
"""
_TABLES: Final = {"store", "checkpoints", "parts"}


@attrs.define
class SqliteCheckpointStore:
    """A :class:`CheckpointStore` in one SQLite file; open it with :func:`open_sqlite_store`."""

    path: Path
    job: str
    keep: int
    _db: sqlite3.Connection
    _last: int | None
    _lock: trio.Lock = attrs.Factory(trio.Lock)
    _closed: bool = False

    async def stage(self, checkpoint_id: int, actor: str, blob: bytes) -> None:
        data = bytes(blob)

        def stage() -> None:
            check_stage(checkpoint_id, actor, self._last)  # under the lock: no commit between
            self._db.execute(
                "INSERT OR REPLACE INTO parts VALUES (?, ?, ?)", (checkpoint_id, actor, data)
            )

        await self._run(stage)

    async def commit(self, checkpoint_id: int, meta: bytes) -> None:
        data = bytes(meta)

        def commit() -> None:
            check_next_id(checkpoint_id, self._last)
            with _durable(self._db), _transaction(self._db):
                db = self._db
                db.execute("INSERT INTO checkpoints VALUES (?, ?)", (checkpoint_id, data))
                db.execute(
                    "DELETE FROM checkpoints WHERE id NOT IN "
                    "(SELECT id FROM checkpoints ORDER BY id DESC LIMIT ?)",
                    (self.keep,),
                )
                # Parts staged for older ids (abandoned) and parts of pruned checkpoints.
                db.execute(
                    "DELETE FROM parts WHERE checkpoint_id < ? "
                    "AND checkpoint_id NOT IN (SELECT id FROM checkpoints)",
                    (checkpoint_id,),
                )
            self._last = checkpoint_id

        await self._run(commit)

    async def latest(self) -> Checkpoint | None:
        def latest() -> Checkpoint | None:
            with _transaction(self._db, "BEGIN"):
                row = self._db.execute(
                    "SELECT id, meta FROM checkpoints ORDER BY id DESC LIMIT 1"
                ).fetchone()
                if row is None:
                    return None
                parts = self._db.execute(
                    "SELECT actor, blob FROM parts WHERE checkpoint_id = ? ORDER BY actor",
                    (row[0],),
                ).fetchall()
            return Checkpoint(row[0], row[1], dict(parts))

        return await self._run(latest)

    async def retained(self) -> Sequence[int]:
        def retained() -> list[int]:
            return [id_ for (id_,) in self._db.execute("SELECT id FROM checkpoints ORDER BY id")]

        return await self._run(retained)

    async def discard_all(self) -> None:
        def discard_all() -> None:
            with _durable(self._db), _transaction(self._db):
                self._db.execute("DELETE FROM parts")
                self._db.execute("DELETE FROM checkpoints")
            self._last = None

        await self._run(discard_all)

    async def aclose(self) -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            async with self._lock:
                await trio.to_thread.run_sync(self._db.close)

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise trio.ClosedResourceError("the checkpoint store is closed")
        async with self._lock:
            if self._closed:
                raise trio.ClosedResourceError("the checkpoint store is closed")
            try:
                return await trio.to_thread.run_sync(fn, abandon_on_cancel=False)
            except sqlite3.Error as exc:
                raise CheckpointError(str(self.path), f"{type(exc).__name__}: {exc}") from exc


@asynccontextmanager
async def open_sqlite_store(
    path: str | Path, *, job: str, keep: int = 3
) -> AsyncIterator[SqliteCheckpointStore]:
    """Open (or create) the checkpoint store of ``job`` in the file ``path``.

    Parts staged but never committed (a crash between a barrier and its commit)
    are discarded here, so the latest committed checkpoint is in force.

    Args:
        path: the store file; created if missing (its directory must exist).  SQLite
            keeps ``path-wal`` beside it while it is open (and after a crash): move or
            delete them together.
        job: the job's name, recorded in a new file and checked in an existing one.
        keep: how many committed checkpoints to retain, at least 1.

    Raises:
        CheckpointCorrupt: ``path`` is not a database, a database of another
            application, or damaged (truncated, failed integrity check).  Nothing
            is reset: delete the file, or pick another path, to start afresh.
        CheckpointError: ``path`` is the store of another job, has a schema version
            this partita does not open, is in use by another process, or cannot be
            opened at all.
        ValueError: ``keep`` is less than 1, or ``job`` is empty.

    Example:
        >>> import tempfile, trio
        >>> from pathlib import Path
        >>> from partita.runtime import open_sqlite_store
        >>> async def main(folder: Path) -> None:
        ...     async with open_sqlite_store(folder / "wc.db", job="wc") as store:
        ...         await store.stage(1, "counter", b"state")
        ...         await store.commit(1, b"manifest")
        ...     async with open_sqlite_store(folder / "wc.db", job="wc") as store:
        ...         print(await store.latest())
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     trio.run(main, Path(folder))
        Checkpoint(id=1, meta=b'manifest', parts={'counter': <5 bytes>})
    """
    check_keep(keep)
    if not job:
        raise ValueError("a job's name must not be empty")
    where = Path(path)
    db, last = await trio.to_thread.run_sync(_open, where, job)
    store = SqliteCheckpointStore(where, job, keep, db, last)
    try:
        yield store
    finally:
        await store.aclose()


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on an exception."""

    def __init__(self, db: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> None:
        self._db = db
        self._begin = begin

    def __enter__(self) -> None:
        self._db.execute(self._begin)

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self._db.execute("COMMIT")
        elif self._db.in_transaction:  # some errors (a full disk) have rolled it back already
            self._db.execute("ROLLBACK")


@contextmanager
def _durable(db: sqlite3.Connection) -> Iterator[None]:
    """The transactions inside end with an ``fsync`` (``synchronous=FULL``)."""
    db.execute("PRAGMA synchronous = FULL")
    try:
        yield
    finally:
        db.execute("PRAGMA synchronous = NORMAL")


def _open(path: Path, job: str) -> tuple[sqlite3.Connection, int | None]:
    """In a worker thread: connect, check (or create) the schema, drop staged parts."""
    where = str(path)
    try:
        db = sqlite3.connect(where, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise CheckpointError(where, f"cannot open the checkpoint store: {exc}") from exc
    try:
        db.execute("PRAGMA busy_timeout = 0")
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
        last = _prepare(db, where, job)
    except sqlite3.OperationalError as exc:
        db.close()
        if "locked" in str(exc) or "busy" in str(exc):
            raise CheckpointError(
                where, f"is in use by another process (another run of job {job!r}?)"
            ) from exc
        raise CheckpointCorrupt(where, f"not a readable checkpoint store ({exc})") from exc
    except sqlite3.DatabaseError as exc:
        db.close()
        raise CheckpointCorrupt(where, f"not a readable checkpoint store ({exc})") from exc
    except BaseException:
        db.close()
        raise
    return db, last


def _prepare(db: sqlite3.Connection, where: str, job: str) -> int | None:
    # Take the exclusive lock before reading, so a second opener fails here, at once.
    db.execute("BEGIN IMMEDIATE")
    try:
        _examine(db, where, job)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    # WAL; NORMAL but for commits (see the module's docstring).
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        raise CheckpointError(where, f"cannot use a write-ahead log (journal mode {mode!r})")
    db.execute("PRAGMA synchronous = NORMAL")
    (last,) = db.execute("SELECT max(id) FROM checkpoints").fetchone()
    return last if last is None else int(last)


def _examine(db: sqlite3.Connection, where: str, job: str) -> None:
    """Create the schema in a new file; check an existing one and drop its staged parts."""
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    if application_id == 0 and not tables:
        db.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.executemany(
            "INSERT INTO store VALUES (?, ?)",
            [("format", _FORMAT), ("schema_version", str(STORE_SCHEMA_VERSION)), ("job", job)],
        )
        return
    if application_id != _APPLICATION_ID:
        raise CheckpointCorrupt(
            where,
            "is a database of another application, not a partita checkpoint store "
            f"(application_id {application_id:#x}, expected {_APPLICATION_ID:#x})",
        )
    _check(db, where, job, tables)
    db.execute("DELETE FROM parts WHERE checkpoint_id NOT IN (SELECT id FROM checkpoints)")


def _check(db: sqlite3.Connection, where: str, job: str, tables: set[str]) -> None:
    """An existing file of ours: whole, of our schema version, and this job's."""
    if not tables >= _TABLES:
        missing = ", ".join(sorted(_TABLES - tables))
        raise CheckpointCorrupt(where, f"damaged checkpoint store (tables missing: {missing})")
    info = dict(db.execute("SELECT key, value FROM store").fetchall())
    version = info.get("schema_version")
    if info.get("format") != _FORMAT or version is None:
        raise CheckpointCorrupt(where, "damaged checkpoint store (no format or schema row)")
    if version != str(STORE_SCHEMA_VERSION):
        raise CheckpointError(
            where,
            f"checkpoint store schema version {version}; "
            f"this partita opens version {STORE_SCHEMA_VERSION}",
        )
    if info.get("job") != job:
        raise CheckpointError(
            where, f"holds the checkpoints of job {info.get('job')!r}, not {job!r}"
        )
    problems = [row for (row,) in db.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise CheckpointCorrupt(where, f"damaged checkpoint store ({'; '.join(problems[:3])})")
