"""Timing one call on the record list: wall-clock and CPU seconds, and its rows."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["Timing", "timed"]


@attrs.frozen
class Timing:
    """How long one call took and how many rows it returned."""

    seconds: float
    cpu_seconds: float
    rows: int


def timed(fn: Callable[[list[dict[str, Any]]], list[Any]], records: list[dict[str, Any]]) -> Timing:
    """Call ``fn(records)`` after a collection; the output list is dropped untimed."""
    gc.collect()
    cpu_start = time.process_time()
    start = time.perf_counter()
    out = fn(records)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    rows = len(out)
    del out
    return Timing(seconds, cpu_seconds, rows)
