"""The error the Postgres connectors raise when the server or the connection fails."""

from __future__ import annotations

from partita.runtime import PartitaError

__all__ = ["PostgresError"]


class PostgresError(PartitaError):
    """The Postgres server refused a statement, or the connection to it was lost.

    Raised by :class:`PostgresSource` (and chained to psycopg's own error as its
    ``__cause__``).  It names the server (``host:port/dbname``, never the
    password), what was being done, and how many rows had been read so far, so a
    failed run says how far it got.

    Attributes:
        server: ``host:port/dbname``.
        doing: what failed (``"connect"``, ``"read"``, ...).
        rows: rows read from the server before the failure.
        message: the server's (or the client library's) message.
        sqlstate: the SQLSTATE code when the server sent one (``"57P01"``: the
            backend was terminated), else ``None``.
    """

    def __init__(
        self, server: str, doing: str, rows: int, message: str, sqlstate: str | None = None
    ) -> None:
        super().__init__(server, doing, rows, message, sqlstate)
        self.server = server
        self.doing = doing
        self.rows = rows
        self.message = message
        self.sqlstate = sqlstate

    def __str__(self) -> str:
        state = f" [{self.sqlstate}]" if self.sqlstate else ""
        return (
            f"postgres {self.server}: {self.doing} failed after {self.rows:,} rows"
            f"{state}: {self.message}"
        )
