"""Options of a compiled query, validated at the boundary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs

__all__ = ["LatePolicy", "QueryOptions", "WatermarkStrategy"]

LatePolicy = Literal["drop", "dead-letter", "update"]
WatermarkStrategy = Literal["bounded", "ascending"]


def _check_choice(name: str, choices: tuple[str, ...]) -> Callable[[Any, Any, Any], None]:
    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value not in choices:
            wanted = ", ".join(repr(c) for c in choices)
            raise ValueError(f"{name} must be one of {wanted}, not {value!r}")

    return check


@attrs.frozen
class QueryOptions:
    """How a query treats time, lateness and bad records (see ``compile_query``)."""

    allowed_lateness_ms: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    watermark: WatermarkStrategy = attrs.field(
        default="bounded", validator=_check_choice("watermark", ("bounded", "ascending"))
    )
    event_time: str | None = None
    on_error: Literal["skip", "dead-letter", "fail"] = attrs.field(
        default="skip", validator=_check_choice("on_error", ("skip", "dead-letter", "fail"))
    )
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
