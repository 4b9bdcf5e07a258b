"""Options of a compiled query, validated at the boundary: the one place they are defined."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import attrs

from partita.runtime import OnError, check_on_error, parse_duration_ms

from ._schema import StreamSchema, parse_schema

__all__ = ["LATE_POLICIES", "LatePolicy", "QueryOptions", "WatermarkStrategy", "check_late"]

LatePolicy: TypeAlias = Literal["drop", "dead-letter", "update"]
"""A late record is dropped and counted, dead-lettered, or updates its closed window."""
WatermarkStrategy: TypeAlias = Literal["bounded", "ascending"]
LATE_POLICIES: tuple[LatePolicy, ...] = ("drop", "dead-letter", "update")


def check_late(value: Any) -> LatePolicy:
    """``value`` if it is a :data:`LatePolicy`.

    Raises:
        ValueError: it is not one.
    """
    if value not in LATE_POLICIES:
        raise ValueError(f"late must be 'drop', 'dead-letter' or 'update', got {value!r}")
    result: LatePolicy = value
    return result


def _check_watermark(_inst: Any, _attr: Any, value: Any) -> None:
    if value not in ("bounded", "ascending"):
        raise ValueError(f"watermark must be 'bounded' or 'ascending', got {value!r}")


def _lateness(value: Any) -> int:
    return parse_duration_ms(value, "allowed_lateness")


def _retention(value: Any) -> int | None:
    return None if value is None else parse_duration_ms(value, "retention")


def _event_time(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"event_time must be a column name or None, got {value!r}")
    return value


def _schema(value: Any) -> StreamSchema | None:
    if value is None or isinstance(value, StreamSchema):
        return value
    if isinstance(value, str):
        return parse_schema(value)
    raise TypeError(f"schema must be 'name TYPE, ...' text or None, got {value!r}")


@attrs.frozen(kw_only=True)
class QueryOptions:
    """How a query treats time, lateness and bad records (see ``compile_query``).

    Durations (``allowed_lateness``, ``retention``) take what
    :func:`runtime.parse_duration_ms` takes and are kept in milliseconds.
    """

    allowed_lateness_ms: int = attrs.field(default=0, alias="allowed_lateness", converter=_lateness)
    watermark: WatermarkStrategy = attrs.field(default="bounded", validator=_check_watermark)
    event_time: str | None = attrs.field(default=None, converter=_event_time)
    on_error: OnError = attrs.field(default="skip", converter=check_on_error)
    late: LatePolicy = attrs.field(default="drop", converter=check_late)
    retention_ms: int | None = attrs.field(default=None, alias="retention", converter=_retention)
    schema: StreamSchema | None = attrs.field(default=None, converter=_schema)

    def __attrs_post_init__(self) -> None:
        if self.watermark == "ascending" and self.allowed_lateness_ms:
            raise ValueError("watermark='ascending' takes no allowed_lateness")

    @property
    def lateness(self) -> int:
        """Milliseconds the watermark trails the largest event time seen."""
        return 0 if self.watermark == "ascending" else self.allowed_lateness_ms

    @property
    def dead_letters(self) -> bool:
        """Whether the query's programs can produce dead letters (so the graph needs
        a dead-letter output): ``on_error="dead-letter"``, ``late="dead-letter"``,
        or ``late="update"`` (records too late even for the retained windows)."""
        return self.on_error == "dead-letter" or self.late in ("dead-letter", "update")
