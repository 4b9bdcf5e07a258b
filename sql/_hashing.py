"""Stable key -> partition assignment (the same in every process, unlike ``hash()``)."""

from __future__ import annotations

import zlib
from typing import Any

__all__ = ["partition_of", "stable_hash"]

_CACHE_LIMIT = 1 << 16


def _canonical(value: Any) -> Any:
    """Equal group keys get equal forms: ``1 == 1.0 == True`` share a partition."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, tuple):
        return tuple(_canonical(v) for v in value)
    return value


def stable_hash(key: Any) -> int:
    """A hash of a group key that does not depend on the process (CRC-32 of its repr).

    Example:
        >>> stable_hash("ACME") == stable_hash("ACME") and stable_hash(1) == stable_hash(1.0)
        True
    """
    return zlib.crc32(repr(_canonical(key)).encode("utf-8", "surrogatepass"))


def partition_of(cache: dict[Any, int], key: Any, partitions: int) -> int:
    """The partition owning ``key``, remembered in ``cache`` (bounded: cleared when full).

    The same in every process (:func:`stable_hash`), so state checkpointed per
    partition (or per lane) finds its keys again after a restart.

    Example:
        >>> partition_of({}, "ACME", 4) == stable_hash("ACME") % 4
        True
    """
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    part = cache[key] = stable_hash(key) % partitions
    return part
