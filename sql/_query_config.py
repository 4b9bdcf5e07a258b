"""Options of a compiled query, validated at the boundary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs

from partita.runtime import OnError, check_on_error

__all__ = ["LatePolicy", "QueryOptions", "WatermarkStrategy"]

LatePolicy = Literal["drop", "dead-letter", "update"]
WatermarkStrategy = Literal["bounded", "ascending"]


def _check_choice(name: str, choices: tuple[str, ...]) -> Callable[[Any, Any, Any], None]:
    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value not in choices:
            wanted = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
            raise ValueError(f"{name} must be {wanted}, got {value!r}")

    return check


def _check_on_error(_inst: Any, _attr: Any, value: Any) -> None:
    check_on_error(value)


@attrs.frozen
class QueryOptions:
    """How a query treats time, lateness and bad records (see ``compile_query``)."""

    allowed_lateness_ms: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    watermark: WatermarkStrategy = attrs.field(
        default="bounded", validator=_check_choice("watermark", ("bounded", "ascending"))
    )
    event_time: str | None = None
    on_error: OnError = attrs.field(default="skip", validator=_check_on_error)
    late: LatePolicy = attrs.field(
        default="drop", validator=_check_choice("late", ("drop", "dead-letter", "update"))
    )
    retention_ms: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(0))
    )

    def __attrs_post_init__(self) -> None:
        if self.watermark == "ascending" and self.allowed_lateness_ms:
            raise ValueError("watermark='ascending' takes no allowed_lateness_ms")

    @property
    def lateness(self) -> int:
        """Milliseconds the watermark trails the largest event time seen."""
        return 0 if self.watermark == "ascending" else self.allowed_lateness_ms
