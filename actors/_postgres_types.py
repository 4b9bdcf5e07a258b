"""How Postgres values become record values: plain, JSON-encodable Python.

A :class:`PostgresSource` reads in psycopg's text format and installs these
loaders on its connection, so a row arrives already in its final form (no
second pass over the values):

=========================  ===============================================
Postgres type              record value
=========================  ===============================================
json, jsonb                the decoded value (dict, list, str, number, ...)
numeric                    ``float`` (``numeric="decimal"``: ``Decimal``;
                           ``numeric="str"``: the exact text)
timestamp, timestamptz     epoch milliseconds, ``int`` (floored; a plain
                           timestamp is read as UTC) — SQL event time;
                           ``timestamps="iso"``: the ISO text in UTC;
                           ``timestamps="datetime"``: ``datetime``
date, time, timetz,        the text as Postgres writes it in ISO style
interval                   (``'2024-01-31'``, ``'12:30:00'``, ``'1 day 02:00:00'``)
uuid                       ``str``
bytea                      the hex text Postgres writes (``'\\x0102'``)
arrays                     lists of the element type's values
int, float, bool, text     ``int``, ``float``, ``bool``, ``str``
NULL                       ``None``
=========================  ===============================================

A value that has no such form (``'infinity'`` or a year past 9999 as epoch
milliseconds) is loaded as an :class:`Unmappable` and the source treats its row
as a bad record, by its ``on_error`` policy.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import attrs

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "NumericAs",
    "TimestampsAs",
    "TypeMapping",
    "Unmappable",
    "install_loaders",
]

NumericAs: TypeAlias = Literal["float", "decimal", "str"]
TimestampsAs: TypeAlias = Literal["epoch_ms", "iso", "datetime"]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_EPOCH_NAIVE = datetime.datetime(1970, 1, 1)
_MS = datetime.timedelta(milliseconds=1)
_AS_TEXT = ("date", "time", "timetz", "interval", "uuid", "bytea")


def _check_numeric(instance: object, attribute: object, value: object) -> None:
    if value not in ("float", "decimal", "str"):
        raise ValueError(f"numeric must be 'float', 'decimal' or 'str', got {value!r}")


def _check_timestamps(instance: object, attribute: object, value: object) -> None:
    if value not in ("epoch_ms", "iso", "datetime"):
        raise ValueError(f"timestamps must be 'epoch_ms', 'iso' or 'datetime', got {value!r}")


@attrs.frozen
class TypeMapping:
    """What numeric and timestamp columns become (see the module's table)."""

    numeric: NumericAs = attrs.field(default="float", validator=_check_numeric)
    timestamps: TimestampsAs = attrs.field(default="epoch_ms", validator=_check_timestamps)


@attrs.frozen
class Unmappable:
    """A value with no record form under the mapping in force: its row is a bad record."""

    type_name: str
    text: str
    reason: str


@attrs.define(eq=False)
class UnmappableCount:
    """How many :class:`Unmappable` values the loaders made: rows are searched only then."""

    count: int = 0


def install_loaders(
    conn: psycopg.Connection[Any], mapping: TypeMapping, seen: UnmappableCount
) -> None:
    """Register the mapping's loaders on ``conn`` (text format; arrays follow)."""
    from psycopg.adapt import Loader
    from psycopg.types.numeric import FloatLoader
    from psycopg.types.string import TextLoader

    adapters = conn.adapters
    for name in _AS_TEXT:
        adapters.register_loader(name, TextLoader)
    if mapping.numeric == "float":
        adapters.register_loader("numeric", FloatLoader)
    elif mapping.numeric == "str":
        adapters.register_loader("numeric", TextLoader)
    if mapping.timestamps == "iso":
        adapters.register_loader("timestamp", TextLoader)
        adapters.register_loader("timestamptz", TextLoader)
    elif mapping.timestamps == "epoch_ms":
        fromisoformat = datetime.datetime.fromisoformat

        class _EpochMs(Loader):
            """Postgres's ISO text (TimeZone UTC) to epoch milliseconds, floored."""

            def load(self, data: Any) -> Any:
                text = bytes(data).decode()
                try:
                    value = fromisoformat(text)
                except ValueError:
                    seen.count += 1
                    return Unmappable("timestamp", text, "no epoch milliseconds for this timestamp")
                if value.tzinfo is None:
                    return (value - _EPOCH_NAIVE) // _MS
                return (value - _EPOCH) // _MS

        adapters.register_loader("timestamp", _EpochMs)
        adapters.register_loader("timestamptz", _EpochMs)
