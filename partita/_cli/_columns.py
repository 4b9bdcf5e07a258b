"""A warning at once when the input has none of a column the query reads.

A misspelled column (``SELECT nosuch FROM t``) makes every record a bad record;
under ``--on-error skip`` the run would go on to its end, skipping all of them.
Looking at the first records read says so before that, naming the column and
the columns the records do have.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from rich.console import Console

from partita.runtime import Record
from partita.sql import CompiledQuery

__all__ = ["missing_columns", "warn_missing_columns"]

_SHOWN = 20  # columns of the records named at most


def _read_columns(query: CompiledQuery, side: Literal["left", "right"] | None) -> list[str]:
    """The columns the query reads of its input (of one stream of an interval join)."""
    join = query.stream_join
    if join is None or side is None:
        return list(query.plan.input_columns)
    if side == "left":
        keys, time, fields = join.left_keys, join.left_time, join.left_fields
    else:
        keys, time, fields = join.right_keys, join.right_time, join.right_fields
    return list(dict.fromkeys([time, *keys, *(column for column, _ in fields)]))


def missing_columns(
    query: CompiledQuery,
    records: list[Record],
    side: Literal["left", "right"] | None = None,
) -> tuple[list[str], list[str]]:
    """The columns ``query`` reads that none of ``records`` has, and those they have
    (``side``: of which stream of an interval join the records are).

    Example:
        >>> from partita import compile_query
        >>> missing_columns(compile_query("SELECT nosuch FROM t"), [{"a": 1}, {"b": 2}])
        (['nosuch'], ['a', 'b'])
    """
    have: dict[str, None] = {}
    for record in records:
        have.update(dict.fromkeys(record))
    return [c for c in _read_columns(query, side) if c not in have], list(have)


def warn_missing_columns(
    query: CompiledQuery,
    console: Console,
    side: Literal["left", "right"] | None = None,
) -> Callable[[list[Record]], None]:
    """A look at the first records (``RecordSource.on_first_records``) that warns on
    stderr (``side``: the stream of an interval join the source reads)."""
    join = query.stream_join
    where = ""
    if join is not None and side is not None:
        where = f" of {join.left if side == 'left' else join.right!r}"

    def look(records: list[Record]) -> None:
        missing, have = missing_columns(query, records, side)
        if not missing:
            return
        names = ", ".join(repr(c) for c in missing)
        shown = ", ".join(repr(c) for c in have[:_SHOWN]) or "no columns"
        more = f" and {len(have) - _SHOWN} more" if len(have) > _SHOWN else ""
        console.print(
            f"partita: warning: the query reads {names}{where}, which none of the first "
            f"{len(records):,} record(s) has; they have {shown}{more}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )

    return look
