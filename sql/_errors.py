"""The one exception type of the SQL layer."""

from __future__ import annotations

from partita.runtime import PartitaError

__all__ = ["SqlError", "position_of"]


class SqlError(PartitaError):
    """A query could not be parsed, planned or compiled; raised before anything runs.

    Attributes:
        line: 1-based line of the offending text.
        col: 1-based column of the offending text.
        message: what is wrong and what is supported instead.

    Example:
        >>> str(SqlError("ORDER BY is not supported", line=1, col=20))
        'line 1, column 20: ORDER BY is not supported'
    """

    def __init__(self, message: str, *, line: int = 1, col: int = 1) -> None:
        super().__init__(message, line, col)
        self.message = message
        self.line = line
        self.col = col

    def __str__(self) -> str:
        return f"line {self.line}, column {self.col}: {self.message}"


def position_of(sql: str, start: int) -> tuple[int, int]:
    """The 1-based ``(line, column)`` of character index ``start`` in ``sql``."""
    start = max(0, min(start, len(sql)))
    line = sql.count("\n", 0, start) + 1
    col = start - (sql.rfind("\n", 0, start) + 1) + 1
    return line, col
