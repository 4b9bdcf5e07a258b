"""Scalar helpers the generated code calls (SQL semantics, sqlite-compatible where sensible).

Every helper receives non-NULL arguments unless it says otherwise: the generated code
checks for NULL (``None``) before calling, so these stay small.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["HELPERS", "to_epoch_ms"]


def sql_div(a: Any, b: Any) -> Any:
    """``a / b``: integer division truncates toward zero (as sqlite); ``x / 0`` is NULL."""
    if b == 0:
        return None
    if a.__class__ is int and b.__class__ is int:
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    return a / b


def sql_mod(a: Any, b: Any) -> Any:
    """``a % b`` with the sign of ``a`` (as C and sqlite); ``x % 0`` is NULL."""
    if a.__class__ is not int or b.__class__ is not int:
        a, b = int(a), int(b)
        if b == 0:
            return None
        return float(math.fmod(a, b))
    if b == 0:
        return None
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def sql_and(a: Any, b: Any) -> bool | None:
    """Three-valued ``AND`` (arguments may be NULL)."""
    if (a is not None and not a) or (b is not None and not b):
        return False
    if a is None or b is None:
        return None
    return True


def sql_or(a: Any, b: Any) -> bool | None:
    """Three-valued ``OR`` (arguments may be NULL)."""
    if (a is not None and a) or (b is not None and b):
        return True
    if a is None or b is None:
        return None
    return False


def sql_between(value: Any, low: Any, high: Any) -> bool | None:
    """``value BETWEEN low AND high`` as ``value >= low AND value <= high`` (any may be NULL)."""
    ge = None if value is None or low is None else value >= low
    le = None if value is None or high is None else value <= high
    return sql_and(ge, le)


def sql_in(value: Any, items: tuple[Any, ...]) -> bool | None:
    """``value IN (items)``: TRUE if found, NULL if not found but a NULL is listed."""
    found = False
    for item in items:
        if item is None:
            found = True
        elif item == value:
            return True
    return None if found else False


def sql_str(value: Any) -> str:
    """Text form of a value for ``||`` and CAST(... AS TEXT)."""
    if value.__class__ is str:
        return str(value)
    if value is True or value is False:
        return "1" if value else "0"
    return str(value)


def sql_concat(*values: Any) -> str:
    """``CONCAT(...)``: NULL arguments are skipped (as sqlite's concat)."""
    return "".join(sql_str(v) for v in values if v is not None)


LIKE_CACHE_SIZE = 1024
"""How many compiled LIKE patterns :func:`like_regex` keeps (least recently used go)."""


@functools.lru_cache(maxsize=LIKE_CACHE_SIZE)
def like_regex(
    pattern: str, escape: str | None = None, ignore_case: bool = False
) -> re.Pattern[str]:
    """Compile a LIKE pattern (``%`` any run, ``_`` one char).

    LIKE is case-sensitive, as in standard SQL, Flink and ksqlDB; ILIKE
    (``ignore_case``) is not.  A pattern known only at run time (``x LIKE col``)
    compiles once while it stays among the :data:`LIKE_CACHE_SIZE` most recent.
    """
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if escape is not None and ch == escape:
            out.append(re.escape(next(chars, "")))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(out), flags)


def sql_like(
    value: Any, pattern: Any, escape: str | None = None, ignore_case: bool = False
) -> bool:
    """``value LIKE pattern`` (or ILIKE) for a pattern known only at run time."""
    regex = like_regex(sql_str(pattern), escape, ignore_case)
    return regex.fullmatch(sql_str(value)) is not None


def cast_int(value: Any) -> int:
    """CAST(x AS INTEGER): floats truncate; numeric text converts; other text is an error."""
    if value.__class__ is str:
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            return int(float(text))
    return int(value)


def cast_float(value: Any) -> float:
    """CAST(x AS REAL)."""
    return float(value.strip() if value.__class__ is str else value)


def cast_bool(value: Any) -> bool:
    """CAST(x AS BOOLEAN): 'true'/'false'/'1'/'0' text, or a number's truth."""
    if value.__class__ is str:
        text = value.strip().lower()
        if text in ("true", "t", "1", "yes"):
            return True
        if text in ("false", "f", "0", "no"):
            return False
        raise ValueError(f"cannot cast {value!r} to BOOLEAN")
    return bool(value)


def sql_length(value: Any) -> int:
    """LENGTH(x): characters of the text form."""
    return len(value if value.__class__ is str else sql_str(value))


def sql_substr(value: Any, start: Any, length: Any = None) -> str:
    """SUBSTR(s, start [, length]) with 1-based ``start`` (sqlite rules for start <= 0)."""
    text = sql_str(value)
    start = int(start)
    if start < 0:
        start = max(len(text) + start, 0)
    elif start > 0:
        start -= 1
    elif length is not None:
        length = int(length) - 1
    if length is None:
        return text[start:]
    length = int(length)
    if length < 0:
        return text[max(start + length, 0) : start]
    return text[start : start + length]


def sql_trim(value: Any, chars: Any = None, where: str = "BOTH") -> str:
    """TRIM / LTRIM / RTRIM."""
    text = sql_str(value)
    strip = None if chars is None else sql_str(chars)
    if where == "LEADING":
        return text.lstrip(strip)
    if where == "TRAILING":
        return text.rstrip(strip)
    return text.strip(strip)


def sql_replace(value: Any, old: Any, new: Any) -> str:
    """REPLACE(s, old, new)."""
    old = sql_str(old)
    return sql_str(value) if not old else sql_str(value).replace(old, sql_str(new))


def sql_round(value: Any, digits: Any = 0) -> float:
    """ROUND(x [, n]): halves away from zero, a float (as sqlite)."""
    digits = int(digits)
    scale = 10.0**digits
    rounded = math.floor(abs(value) * scale + 0.5) / scale
    return float(math.copysign(rounded, value))


def sql_floor(value: Any) -> Any:
    """FLOOR(x): integers stay integers, floats stay floats."""
    return value if value.__class__ is int else float(math.floor(value))


def sql_ceil(value: Any) -> Any:
    """CEIL(x): integers stay integers, floats stay floats."""
    return value if value.__class__ is int else float(math.ceil(value))


def sql_sqrt(value: Any) -> float | None:
    """SQRT(x); NULL for negative x."""
    return None if value < 0 else math.sqrt(value)


def sql_power(a: Any, b: Any) -> float | None:
    """POWER(a, b) as a float; NULL when undefined."""
    try:
        return math.pow(a, b)
    except (ValueError, OverflowError):
        return None


def sql_ln(value: Any) -> float | None:
    """LN(x); NULL for x <= 0."""
    return math.log(value) if value > 0 else None


def sql_log(a: Any, b: Any = None) -> float | None:
    """LOG(x) (base 10) or LOG(base, x); NULL when undefined."""
    if b is None:
        return math.log10(a) if a > 0 else None
    if a <= 0 or a == 1 or b <= 0:
        return None
    return math.log(b) / math.log(a)


def sql_sign(value: Any) -> int:
    """SIGN(x): -1, 0 or 1."""
    return int(value > 0) - int(value < 0)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_epoch_ms(value: Any) -> int:
    """Event time of a record: integral epoch ms or an ISO-8601 string (UTC if naive)."""
    if value.__class__ is int:
        return int(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            hint = (
                " (digits: send epoch milliseconds as a JSON number, not a string)"
                if value.strip().lstrip("-").isdigit()
                else ""
            )
            raise ValueError(
                f"event time {value!r} is text but not an ISO-8601 timestamp{hint}"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or value is None:
        raise TypeError(f"event time must be epoch ms or ISO-8601 text, got {value!r}")
    raise TypeError(f"event time must be epoch ms or ISO-8601 text, got {type(value).__name__}")


def sql_not_distinct(a: Any, b: Any) -> bool:
    """``a IS NOT DISTINCT FROM b``: equality where NULL equals NULL (arguments may be NULL)."""
    if a is None or b is None:
        return a is b
    return bool(a == b)


def sql_greatest(*values: Any) -> Any:
    """``GREATEST(...)``: the largest non-NULL argument, NULL when all are NULL."""
    present = [v for v in values if v is not None]
    return max(present) if present else None


def sql_least(*values: Any) -> Any:
    """``LEAST(...)``: the smallest non-NULL argument, NULL when all are NULL."""
    present = [v for v in values if v is not None]
    return min(present) if present else None


def sql_strpos(value: Any, sub: Any) -> int:
    """``STRPOS(s, sub)`` / ``POSITION(sub IN s)``: 1-based index of ``sub``, 0 if absent."""
    return sql_str(value).find(sql_str(sub)) + 1


def sql_split_part(value: Any, delimiter: Any, index: Any) -> str:
    """``SPLIT_PART(s, delimiter, n)``: the ``n``-th field (1-based; negative counts from
    the end); out of range is ``''``; an empty delimiter splits into characters."""
    text, sep, n = sql_str(value), sql_str(delimiter), int(index)
    parts = text.split(sep) if sep else list(text) or [""]
    if n > 0:
        return parts[n - 1] if n <= len(parts) else ""
    if n < 0:
        return parts[n] if -n <= len(parts) else ""
    return ""


REGEX_CACHE_SIZE = 256
"""How many run-time regular expressions (a pattern that is not a literal) stay compiled."""


@functools.lru_cache(maxsize=REGEX_CACHE_SIZE)
def compile_regex(pattern: str) -> re.Pattern[str]:
    """A regular expression known only at run time, compiled once while it stays recent.

    Raises:
        ValueError: it is not a valid pattern (the record is a bad record).
    """
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def sql_regexp_like(value: Any, pattern: Any) -> bool:
    """``REGEXP_LIKE(s, pattern)`` for a pattern known only at run time."""
    return compile_regex(sql_str(pattern)).search(sql_str(value)) is not None


def regexp_extract(regex: re.Pattern[str], value: Any, group: int) -> str | None:
    """``REGEXP_EXTRACT``: group ``group`` of the first match (0: all of it); NULL if no
    match, and ``''`` for a group that took no part in it."""
    match = regex.search(sql_str(value))
    if match is None:
        return None
    found: str | None = match.group(group)
    return "" if found is None else found


def sql_regexp_extract(value: Any, pattern: Any, group: Any = 0) -> str | None:
    """``REGEXP_EXTRACT(s, pattern [, group])`` for a pattern known only at run time."""
    regex = compile_regex(sql_str(pattern))
    group = int(group)
    if not 0 <= group <= regex.groups:
        raise ValueError(f"REGEXP_EXTRACT group {group} is out of range for {regex.pattern!r}")
    return regexp_extract(regex, value, group)


def replacement_of(replacement: str) -> str | Callable[[re.Match[str]], str]:
    """A SQL replacement as ``re.sub`` takes it: ``\\0`` .. ``\\9`` name groups (as in
    DuckDB and RE2), ``\\`` before any other character stands for that character, and
    everything else for itself."""
    if "\\" not in replacement:
        return replacement
    parts: list[str | int] = []
    chars = iter(replacement)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "\\")
            parts.append(int(nxt) if nxt.isdigit() else nxt)
        else:
            parts.append(ch)

    def expand(match: re.Match[str]) -> str:
        return "".join(p if isinstance(p, str) else match.group(p) or "" for p in parts)

    return expand


def sql_regexp_replace(value: Any, pattern: Any, replacement: Any) -> str:
    """``REGEXP_REPLACE(s, pattern, replacement)``: every match replaced."""
    regex = compile_regex(sql_str(pattern))
    return regex.sub(replacement_of(sql_str(replacement)), sql_str(value))


_DAY_MS = 86_400_000
_FIXED_UNITS_MS = {
    "MILLISECOND": 1,
    "SECOND": 1000,
    "MINUTE": 60_000,
    "HOUR": 3_600_000,
    "DAY": _DAY_MS,
}
DATE_TRUNC_UNITS = (*_FIXED_UNITS_MS, "WEEK", "MONTH", "QUARTER", "YEAR")
"""The units of ``DATE_TRUNC``; WEEK starts on Monday (ISO 8601)."""
EXTRACT_FIELDS = (
    "YEAR",
    "QUARTER",
    "MONTH",
    "WEEK",
    "DAY",
    "DOY",
    "DOW",
    "ISODOW",
    "HOUR",
    "MINUTE",
    "SECOND",
    "MILLISECOND",
    "EPOCH",
)
"""The fields of ``EXTRACT(field FROM ts)``."""


def _moment(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _ms_of(moment: datetime) -> int:
    delta = moment - _EPOCH
    return delta.days * _DAY_MS + delta.seconds * 1000 + delta.microseconds // 1000


def ts_ms(value: Any) -> int:
    """A timestamp argument as epoch ms: an ``int`` as it is, else as event time is read."""
    return value if value.__class__ is int else to_epoch_ms(value)


def sql_date_trunc(unit: str, value: Any) -> int:
    """``DATE_TRUNC(unit, ts)``: the epoch ms of the start of ``ts``'s ``unit`` (UTC)."""
    ms = ts_ms(value)
    fixed = _FIXED_UNITS_MS.get(unit)
    if fixed is not None:
        return ms - ms % fixed
    if unit == "WEEK":  # day 0 (1970-01-01) was a Thursday
        day = ms // _DAY_MS
        return (day - (day + 3) % 7) * _DAY_MS
    moment = _moment(ms)
    month = moment.month
    if unit == "YEAR":
        month = 1
    elif unit == "QUARTER":
        month -= (month - 1) % 3
    return _ms_of(datetime(moment.year, month, 1, tzinfo=UTC))


def sql_extract(field: str, value: Any) -> int | float:
    """``EXTRACT(field FROM ts)`` in UTC (DOW: Sunday is 0; SECOND: whole seconds;
    MILLISECOND: seconds * 1000 + milliseconds; EPOCH: seconds as a float)."""
    ms = ts_ms(value)
    if field == "EPOCH":
        return ms / 1000
    if field == "MILLISECOND":
        return ms % 60_000
    if field == "SECOND":
        return ms % 60_000 // 1000
    if field == "MINUTE":
        return ms % 3_600_000 // 60_000
    if field == "HOUR":
        return ms % _DAY_MS // 3_600_000
    moment = _moment(ms)
    if field == "YEAR":
        return moment.year
    if field == "QUARTER":
        return (moment.month - 1) // 3 + 1
    if field == "MONTH":
        return moment.month
    if field == "WEEK":
        return moment.isocalendar()[1]
    if field == "DAY":
        return moment.day
    if field == "DOY":
        return moment.timetuple().tm_yday
    if field == "ISODOW":
        return moment.isoweekday()
    return moment.isoweekday() % 7  # DOW


def sql_to_timestamp(value: Any) -> int:
    """``TO_TIMESTAMP(x)``: epoch ms of ``x`` seconds since the epoch (a number) or of an
    ISO-8601 text; ``FROM_UNIXTIME(x)`` takes the number form only."""
    if value.__class__ is str:
        return to_epoch_ms(value)
    return from_unixtime(value)


def from_unixtime(value: Any) -> int:
    """``FROM_UNIXTIME(seconds)``: epoch ms (to the millisecond, rounded down)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"epoch seconds must be a number, got {value!r}")
    if value.__class__ is int:
        return int(value) * 1000
    return round(float(value) * 1_000_000) // 1000


def ts_add(value: Any, ms: int) -> int:
    """``ts + INTERVAL ...``: epoch ms plus ``ms`` (a timestamp argument as :func:`ts_ms`)."""
    return ts_ms(value) + ms


SECONDS_BELOW = 100_000_000_000
"""A TIMESTAMP number whose magnitude is below this is epoch seconds, else epoch ms.

``10**11`` ms is 1973-03-03 and ``10**11`` s is the year 5138, so a timestamp of this
century reads right either way; milliseconds before March 1973 would read as seconds.
"""


def _not_a(value: Any, kind: str, column: str) -> ValueError:
    return ValueError(f"column {column!r}: cannot coerce {value!r} to {kind}")


def as_bigint(value: Any, column: str = "?") -> int | None:
    """A value for a BIGINT column: integers, integral floats and integer text."""
    if value is None or value.__class__ is int:
        return value
    if value.__class__ is float and value.is_integer():
        return int(value)
    if value.__class__ is str:
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise _not_a(value, "BIGINT", column) from None
            if number.is_integer():
                return int(number)
    raise _not_a(value, "BIGINT", column)


def as_double(value: Any, column: str = "?") -> float | None:
    """A value for a DOUBLE column: numbers and numeric text."""
    if value is None or value.__class__ is float:
        return value
    if value.__class__ is int:
        return float(value)
    if value.__class__ is str:
        try:
            return float(value.strip())
        except ValueError:
            raise _not_a(value, "DOUBLE", column) from None
    raise _not_a(value, "DOUBLE", column)


def as_text(value: Any, column: str = "?") -> str | None:
    """A value for a TEXT column: text, or a number or boolean as text."""
    if value is None or value.__class__ is str:
        return value
    if value is True or value is False:
        return "true" if value else "false"
    if value.__class__ in (int, float):
        return str(value)
    raise _not_a(value, "TEXT", column)


def as_boolean(value: Any, column: str = "?") -> bool | None:
    """A value for a BOOLEAN column: booleans, 0 and 1, 'true'/'false' text."""
    if value is None or value is True or value is False:
        return value
    if value.__class__ is int and value in (0, 1):
        return bool(value)
    if value.__class__ is str:
        try:
            return cast_bool(value)
        except ValueError:
            raise _not_a(value, "BOOLEAN", column) from None
    raise _not_a(value, "BOOLEAN", column)


def as_timestamp(value: Any, column: str = "?") -> int | None:
    """A value for a TIMESTAMP column, as epoch ms: epoch seconds or ms (numbers or
    numeric text; see :data:`SECONDS_BELOW`), or ISO-8601 text."""
    if value is None:
        return None
    number: int | float
    if value.__class__ is int or value.__class__ is float:
        number = value
    elif value.__class__ is str:
        text = value.strip()
        try:
            number = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            return to_epoch_ms(text)
    else:
        raise _not_a(value, "TIMESTAMP", column)
    if not math.isfinite(number):
        raise _not_a(value, "TIMESTAMP", column)
    if -SECONDS_BELOW < number < SECONDS_BELOW:
        return from_unixtime(number)
    return int(number) if number.__class__ is int else math.floor(number)


HELPERS: dict[str, Any] = {
    "_div": sql_div,
    "_mod": sql_mod,
    "_and3": sql_and,
    "_or3": sql_or,
    "_in3": sql_in,
    "_between3": sql_between,
    "_str": sql_str,
    "_concat": sql_concat,
    "_like_regex": like_regex,
    "_like": sql_like,
    "_cast_int": cast_int,
    "_cast_float": cast_float,
    "_cast_bool": cast_bool,
    "_length": sql_length,
    "_substr": sql_substr,
    "_trim": sql_trim,
    "_replace": sql_replace,
    "_round": sql_round,
    "_floor": sql_floor,
    "_ceil": sql_ceil,
    "_sqrt": sql_sqrt,
    "_power": sql_power,
    "_exp": math.exp,
    "_ln": sql_ln,
    "_log": sql_log,
    "_sign": sql_sign,
    "_to_ms": to_epoch_ms,
    "_not_distinct": sql_not_distinct,
    "_greatest": sql_greatest,
    "_least": sql_least,
    "_strpos": sql_strpos,
    "_split_part": sql_split_part,
    "_regexp_like": sql_regexp_like,
    "_regexp_extract_with": regexp_extract,
    "_regexp_extract": sql_regexp_extract,
    "_regexp_replace": sql_regexp_replace,
    "_replacement_of": replacement_of,
    "_date_trunc": sql_date_trunc,
    "_extract": sql_extract,
    "_to_timestamp": sql_to_timestamp,
    "_from_unixtime": from_unixtime,
    "_ts_add": ts_add,
    "_as_bigint": as_bigint,
    "_as_double": as_double,
    "_as_text": as_text,
    "_as_boolean": as_boolean,
    "_as_timestamp": as_timestamp,
    "_SECONDS_BELOW": SECONDS_BELOW,
}
