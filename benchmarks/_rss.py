"""Resident-set-size readings of the current process."""

from __future__ import annotations

import resource
import sys

__all__ = ["current_rss_mb", "peak_rss_mb"]


def peak_rss_mb() -> float:
    """The peak resident set size of this process so far, in MiB.

    ``VmHWM`` from ``/proc/self/status`` where there is one, else
    ``getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm / 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def current_rss_mb() -> float | None:
    """The resident set size of this process now, in MiB (``None`` if unknown)."""
    rss = _status_kib("VmRSS")
    return None if rss is None else rss / 1024


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
