"""The error the Postgres connectors raise when the server or the connection fails."""

from __future__ import annotations

from partita.runtime import PartitaError

__all__ = ["PostgresError", "one_line"]


def one_line(exc: BaseException) -> str:
    r"""The client library's message on one line (libpq's spans several, with tabs).

    Example:
        >>> one_line(OSError('connection failed: refused\n\tIs the server running?'))
        'connection failed: refused; Is the server running?'
    """
    lines = [line.strip() for line in str(exc).splitlines()]
    return "; ".join(line for line in lines if line) or type(exc).__name__


class PostgresError(PartitaError):
    """The Postgres server refused a statement, or the connection to it was lost.

    Raised by :class:`PostgresSource` (and chained to psycopg's own error as its
    ``__cause__``).  It names the server (``host:port/dbname``, never the
    password), what was being done, and how many rows had been read so far, so a
    failed run says how far it got.

    Attributes:
        server: ``host:port/dbname``.
        doing: what failed: ``"connect"``, ``"query"`` (starting it), ``"read"``,
            ``"resume"``, ``"write"``, ``"commit"``, ``"recover"``.
        rows: rows read from the server before the failure.
        message: the server's (or the client library's) message, on one line.
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
