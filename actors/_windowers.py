"""Which windows a Flow window operator keeps: tumbling, hopping, session (frozen specs).

The same windows as SQL's ``TUMBLE``, ``HOP`` and ``SESSION``: half-open
``[start, end)``, aligned to epoch multiples of the size (tumbling) or slide
(hopping); a session starts at its first record's time, ends at its last one's
plus the gap, and sessions that touch merge.  Durations take what
:func:`runtime.parse_duration_ms` takes (``"10s"``, ``"250ms"``, a bare number of
milliseconds, a ``timedelta``).

Example:
    >>> list(HoppingWindow("10ms", slide="5ms").starts(12))
    [5, 10]
    >>> list(TumblingWindow(10).starts(-3))
    [-10]
"""

from __future__ import annotations

from typing import Any, TypeAlias

import attrs

from partita.runtime import parse_duration_ms
from partita.sql import WindowSpec

__all__ = ["HoppingWindow", "SessionWindow", "TumblingWindow", "Windower"]


def _duration(value: Any, option: str) -> int:
    """A positive duration in milliseconds."""
    if isinstance(value, bool) or (
        not isinstance(value, int | float | str) and not hasattr(value, "total_seconds")
    ):
        raise TypeError(
            f"{option} must be a duration (like '10s', '250ms' or a number of "
            f"milliseconds), got {value!r}"
        )
    ms = parse_duration_ms(value, option)
    if ms <= 0:
        raise ValueError(f"{option} must be positive, got {value!r}")
    return ms


def _size(value: Any) -> int:
    return _duration(value, "size")


def _slide(value: Any) -> int:
    return _duration(value, "slide")


def _gap(value: Any) -> int:
    return _duration(value, "gap")


@attrs.frozen
class TumblingWindow:
    """Back-to-back windows of ``size``: ``[0, size)``, ``[size, 2 * size)``, ...

    Args:
        size: the window length (positive).

    Example:
        >>> TumblingWindow("1s")
        TumblingWindow(size_ms=1000)
        >>> list(TumblingWindow("1s").starts(2_500))
        [2000]
    """

    size_ms: int = attrs.field(alias="size", converter=_size)

    def spec(self, time_column: str) -> WindowSpec:
        """The SQL window spec of these windows (what the shared window state takes)."""
        return WindowSpec("tumble", time_column, self.size_ms, self.size_ms)

    def starts(self, t: int) -> range:
        """The starts of the windows event time ``t`` belongs to."""
        ws = t - t % self.size_ms
        return range(ws, ws + self.size_ms, self.size_ms)

    def __str__(self) -> str:
        return f"tumbling size={self.size_ms}ms"


@attrs.frozen
class HoppingWindow:
    """Windows of ``size`` starting every ``slide`` (SQL's ``HOP``), overlapping when
    ``slide < size``; a record belongs to every window that covers its time.

    Args:
        size: the window length (positive).
        slide: how far apart windows start (positive, at most ``size``).

    Example:
        >>> list(HoppingWindow("1m", slide="20s").starts(65_000))
        [20000, 40000, 60000]

    Raises:
        ValueError: ``slide`` is larger than ``size`` (records would fall between
            windows), or either is not positive.
        TypeError: ``size`` or ``slide`` is not a duration.
    """

    size_ms: int = attrs.field(alias="size", converter=_size)
    slide_ms: int = attrs.field(kw_only=True, alias="slide", converter=_slide)

    def __attrs_post_init__(self) -> None:
        if self.slide_ms > self.size_ms:
            raise ValueError(
                f"slide ({self.slide_ms}ms) must be at most size ({self.size_ms}ms): "
                "records would fall between windows"
            )

    def spec(self, time_column: str) -> WindowSpec:
        """The SQL window spec of these windows (what the shared window state takes)."""
        return WindowSpec("hop", time_column, self.size_ms, self.slide_ms)

    def starts(self, t: int) -> range:
        """The starts of the windows event time ``t`` belongs to, oldest first (as SQL's
        HOP assigns them)."""
        size, slide = self.size_ms, self.slide_ms
        last = t - t % slide
        if size % slide == 0:
            return range(last - (size - slide), last + 1, slide)
        first = t - size
        first += slide - first % slide
        return range(first, last + 1, slide)

    def __str__(self) -> str:
        return f"hopping size={self.size_ms}ms slide={self.slide_ms}ms"


@attrs.frozen
class SessionWindow:
    """Per key, a window from a record's time to the last record's time plus ``gap``;
    records ``gap`` apart or closer join one session, and sessions that come to touch
    merge (their accumulators with the operator's ``merge``).

    Args:
        gap: the silence that ends a session (positive).

    Example:
        >>> SessionWindow("30s")
        SessionWindow(gap_ms=30000)
    """

    gap_ms: int = attrs.field(alias="gap", converter=_gap)

    def spec(self, time_column: str) -> WindowSpec:
        """The SQL window spec of these windows (what the shared window state takes)."""
        return WindowSpec("session", time_column, self.gap_ms, 0)

    def __str__(self) -> str:
        return f"session gap={self.gap_ms}ms"


Windower: TypeAlias = TumblingWindow | HoppingWindow | SessionWindow
"""The kinds of window a Flow window operator keeps."""
