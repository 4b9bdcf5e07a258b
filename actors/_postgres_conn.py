"""A psycopg connection driven from trio: blocking calls in a worker thread, one at a time.

psycopg's sync API blocks and its async API is asyncio's, so each call runs in
a worker thread (``trio.to_thread.run_sync``) through a limiter of one: the
connection is never used by two threads at once, even after a cancelled call's
thread was abandoned (trio releases the limiter only when that thread ends).

Cancellation reaches the server: a call cancelled on the trio side is
abandoned at once, then, shielded and within :data:`ABORT_SECONDS`, the server
is sent a cancel request for the statement that thread runs (from a second
thread; libpq's cancel uses its own socket), and the connection is closed, which
ends the transaction and any cursor.  An abort is final: the abandoned thread
checks a closing flag before it runs the call (a cancel that came while it was
connecting never runs the statement) and closes the connection itself when it
returns, so the connection is closed even when the call outlives the abort's
deadline (Python code the server's cancel cannot stop).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

if TYPE_CHECKING:
    import psycopg

__all__ = ["ABORT_SECONDS", "ThreadedConnection", "check_timeout", "describe_server"]

ABORT_SECONDS = 5.0
"""How long a cancelled call may take to cancel the statement and close the connection."""

_T = TypeVar("_T")


def describe_server(dsn: str) -> str:
    """``host:port/dbname`` of a connection string or URL: what errors name, no password.

    Example:
        >>> describe_server("postgresql://app:secret@db.internal:6543/orders")
        'db.internal:6543/orders'
        >>> describe_server("dbname=orders host=/run/postgresql")
        '/run/postgresql:5432/orders'
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:  # malformed: connecting will say what is wrong
        return "<unparseable connection string>"
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST", "localhost")
    port = str(params.get("port") or os.environ.get("PGPORT", "5432"))
    user = str(params.get("user") or os.environ.get("PGUSER", ""))
    dbname = str(params.get("dbname") or os.environ.get("PGDATABASE", "") or user)
    return f"{host!s}:{port}/{dbname}"


def check_timeout(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    """The ``connect_timeout=`` of the connectors: a positive number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"connect_timeout must be a positive number of seconds, got {value!r}")


@attrs.define(eq=False)
class ThreadedConnection:
    """One connection to ``dsn``, opened on the first :meth:`run` and set up by ``setup``.

    Args:
        dsn: a libpq connection string or ``postgresql://`` URL.
        setup: called (in the worker thread) on each new connection.
        connect_timeout: seconds to wait for the server when connecting.
    """

    dsn: str
    setup: Callable[[psycopg.Connection[Any]], None]
    connect_timeout: float = 10.0
    _conn: psycopg.Connection[Any] | None = attrs.field(init=False, default=None)
    _limiter: trio.CapacityLimiter = attrs.field(
        init=False, factory=lambda: trio.CapacityLimiter(1)
    )
    _in_call: bool = attrs.field(init=False, default=False)  # set and cleared in the thread
    _closing: bool = attrs.field(init=False, default=False)  # set by abort, read in the thread

    @property
    def connected(self) -> bool:
        """Whether a connection is open (or being opened by a running call)."""
        return self._conn is not None

    async def run(self, fn: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """``fn(connection)`` in a worker thread, after every earlier call has ended.

        Cancelled, the call is abandoned, the server told to cancel it, and the
        connection closed for good (see the module).

        Raises:
            trio.ClosedResourceError: after :meth:`abort`.
        """
        if self._closing:
            raise trio.ClosedResourceError("the connection was aborted")
        try:
            return await trio.to_thread.run_sync(
                self._call, fn, abandon_on_cancel=True, limiter=self._limiter
            )
        except trio.Cancelled:
            await self.abort()
            raise

    def _call(self, fn: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        self._in_call = True
        try:
            conn = self._conn
            if conn is None or conn.closed:
                conn = self._connect()
            if self._closing:  # aborted while connecting: the call must not run
                raise trio.ClosedResourceError("the connection was aborted")
            return fn(conn)
        finally:
            self._in_call = False
            if self._closing:  # an abort gave up waiting for this thread: close here
                self._close()

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        timeout = max(1, round(self.connect_timeout))
        conn = self._conn = psycopg.connect(self.dsn, connect_timeout=timeout)
        self.setup(conn)
        return conn

    async def abort(self) -> None:
        """Cancel the running statement, if any, and close the connection (shielded).

        Final: a later :meth:`run` raises.  If the call under way outlives
        :data:`ABORT_SECONDS`, its thread closes the connection when it returns.
        """
        self._closing = True
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + ABORT_SECONDS
            conn = self._conn
            if conn is not None and self._in_call:
                await trio.to_thread.run_sync(_send_cancel, conn, abandon_on_cancel=True)
            await trio.to_thread.run_sync(
                self._close, abandon_on_cancel=True, limiter=self._limiter
            )

    async def aclose(self) -> None:
        """Close the connection once the running call, if any, has ended."""
        await trio.to_thread.run_sync(self._close, limiter=self._limiter)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _send_cancel(conn: psycopg.Connection[Any]) -> None:
    """Ask the server to cancel what ``conn`` runs (a lost server: nothing to cancel)."""
    import psycopg

    try:
        conn.cancel_safe(timeout=ABORT_SECONDS)
    except (psycopg.Error, OSError):
        # The cancel is best effort on the way out of a cancellation that goes on
        # regardless; closing the connection next ends the session in any case.
        return
