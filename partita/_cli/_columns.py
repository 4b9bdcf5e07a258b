"""A warning at once when the input has none of a column the query reads.

A misspelled column (``SELECT nosuch FROM t``) makes every record a bad record;
under ``--on-error skip`` the run would go on to its end, skipping all of them.
Looking at the first records read says so before that, naming the column and
the columns the records do have.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from partita.runtime import Record
from partita.sql import CompiledQuery

__all__ = ["missing_columns", "warn_missing_columns"]

_SHOWN = 20  # columns of the records named at most


def missing_columns(query: CompiledQuery, records: list[Record]) -> tuple[list[str], list[str]]:
    """The columns ``query`` reads that none of ``records`` has, and those they have.

    Example:
        >>> from partita import compile_query
        >>> missing_columns(compile_query("SELECT nosuch FROM t"), [{"a": 1}, {"b": 2}])
        (['nosuch'], ['a', 'b'])
    """
    have: dict[str, None] = {}
    for record in records:
        have.update(dict.fromkeys(record))
    return [c for c in query.plan.input_columns if c not in have], list(have)


def warn_missing_columns(query: CompiledQuery, console: Console) -> Callable[[list[Record]], None]:
    """A look at the first records (``RecordSource.on_first_records``) that warns on stderr."""

    def look(records: list[Record]) -> None:
        missing, have = missing_columns(query, records)
        if not missing:
            return
        names = ", ".join(repr(c) for c in missing)
        shown = ", ".join(repr(c) for c in have[:_SHOWN]) or "no columns"
        more = f" and {len(have) - _SHOWN} more" if len(have) > _SHOWN else ""
        console.print(
            f"partita: warning: the query reads {names}, which none of the first "
            f"{len(records):,} record(s) has; they have {shown}{more}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )

    return look
