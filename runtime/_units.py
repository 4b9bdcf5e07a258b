"""Durations and sizes: one grammar for every option, from the API and the CLI alike.

A duration is a :class:`datetime.timedelta`, a bare number of **milliseconds**
(``250``), or a string: a non-negative decimal and a unit, ``ms``, ``s``, ``m``,
``h`` or ``d`` (``"250ms"``, ``"1.5s"``, ``"2m"``; no unit: milliseconds).
A size is a bare number of bytes or a string with ``K``/``M``/``G``/``T``
(binary multiples: ``"64MB"`` = ``"64MiB"`` = 64 x 2**20 bytes).
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import TypeAlias

__all__ = ["Duration", "Size", "parse_duration_ms", "parse_size", "positive_duration_ms"]

Duration: TypeAlias = "int | float | str | datetime.timedelta"
Size: TypeAlias = "int | float | str"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_DURATION_MS = {None: 1, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_SIZE_FACTOR = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DURATION_HINT = "expected e.g. 250ms, 1.5s, 2m; units ms, s, m, h, d; a bare number is ms"
_SIZE_HINT = "expected e.g. 64KB, 256MB, 1GiB; a bare number is bytes"


def _named(option: str | None) -> str:
    return "" if option is None else f"{option}: "


def _number(value: object) -> Decimal | None:
    """``value`` as an exact finite non-negative Decimal, or None if it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    number = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    return None if number < 0 else number


def parse_duration_ms(value: object, option: str | None = None) -> int:
    """Whole milliseconds from a duration (see the module docstring).

    Example:
        >>> import datetime
        >>> [parse_duration_ms(v) for v in ("1.5s", "250ms", "2m", 40)]
        [1500, 250, 120000, 40]
        >>> parse_duration_ms(datetime.timedelta(seconds=3))
        3000
        >>> parse_duration_ms("-1s", "allowed_lateness")
        Traceback (most recent call last):
        ...
        ValueError: allowed_lateness: '-1s' is not a duration (expected e.g. 250ms, ...

    Raises:
        ValueError: not a duration, negative, nan or infinite, or not a whole
            number of milliseconds; the message names ``option`` when given.
    """
    if isinstance(value, datetime.timedelta):
        number: Decimal | None = (
            Decimal(value.days) * 86_400_000
            + Decimal(value.seconds) * 1000
            + Decimal(value.microseconds) / 1000
        )
        if number is not None and number < 0:
            number = None
    elif isinstance(value, str):
        match = _DURATION.match(value)
        number = None if match is None else Decimal(match.group(1)) * _DURATION_MS[match.group(2)]
    else:
        number = _number(value)
    if number is None:
        raise ValueError(f"{_named(option)}{value!r} is not a duration ({_DURATION_HINT})")
    if number != number.to_integral_value():
        raise ValueError(f"{_named(option)}{value!r} is not a whole number of milliseconds")
    return int(number)


def parse_size(value: object, option: str | None = None) -> int:
    """Whole bytes from a size (see the module docstring).

    Example:
        >>> parse_size("64KB"), parse_size("1.5GiB"), parse_size(512)
        (65536, 1610612736, 512)

    Raises:
        ValueError: not a size, negative, nan or infinite; names ``option`` when given.
    """
    if isinstance(value, str):
        match = _SIZE.match(value)
        number = (
            None
            if match is None
            else Decimal(match.group(1)) * _SIZE_FACTOR[match.group(2).lower()]
        )
    else:
        number = _number(value)
    if number is None:
        raise ValueError(f"{_named(option)}{value!r} is not a size ({_SIZE_HINT})")
    return int(number)


def positive_duration_ms(value: object, option: str) -> int:
    """A duration option that must be more than 0, in milliseconds.

    Example:
        >>> positive_duration_ms("1.5s", "stats_interval")
        1500

    Raises:
        ValueError: not a duration, or not more than 0 (naming ``option``).
    """
    ms = parse_duration_ms(value, option)
    if ms <= 0:
        raise ValueError(f"{option} must be > 0, got {value!r}")
    return ms
