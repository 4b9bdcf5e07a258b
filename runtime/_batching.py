"""Adaptive batch sizing for sources: throughput up, latency under a bound."""

from __future__ import annotations

import math

__all__ = ["BatchSizer"]


class BatchSizer:
    """Grows a source's batches while throughput improves and latency stays bounded.

    The source reports every batch it delivered (:meth:`observe`: how many
    records, the trio time, how many batches now wait in the mailbox it went
    into).  Every ``window`` batches the sizer compares the records per second of
    that window with the window before, at the size before:

    * the estimated latency of a record (the time to cut its batch plus the
      batches queued ahead of it, at the measured rate: Little's law) is above
      ``target_latency``: shrink by ``factor``;
    * else, throughput rose by more than ``tolerance``: take another step the
      same way (grow, at first); it fell by more than that: step back the other
      way; within ``tolerance``: stay, and probe upwards again after a few flat
      windows (the load may have changed).

    Memory pressure (:meth:`shrink`) halves the size.  The size stays within
    ``[minimum, maximum]``; with ``minimum == maximum`` it is fixed
    (:meth:`fixed`).  The rule before this one grew only below a quarter-full
    mailbox, so behind a busy source (a mailbox of 4 with one batch queued is
    already a quarter full) batches stayed at the minimum.

    Example:
        >>> sizer = BatchSizer(
        ...     minimum=100, maximum=1000, initial=200, window=1, target_latency=1.0
        ... )
        >>> sizer.observe(200, now=1.0, queued=1)  # the clock starts
        >>> sizer.observe(200, now=1.1, queued=1); sizer.size  # 2,000 rec/s: try more
        300
        >>> sizer.observe(300, now=1.2, queued=1); sizer.size  # 3,000 rec/s: better
        450
        >>> sizer.observe(450, now=1.4, queued=5); sizer.size  # 450 x 6 / 2,250/s > 1 s
        300
    """

    __slots__ = (
        "_direction",
        "_flat",
        "_last_rate",
        "_last_time",
        "_records",
        "_sends",
        "factor",
        "maximum",
        "minimum",
        "size",
        "target_latency",
        "tolerance",
        "window",
    )

    def __init__(
        self,
        *,
        minimum: int = 256,
        maximum: int = 16384,
        initial: int | None = None,
        factor: float = 1.5,
        target_latency: float = 0.05,
        window: int = 4,
        tolerance: float = 0.05,
    ) -> None:
        if minimum < 1:
            raise ValueError(f"minimum batch size must be >= 1, got {minimum}")
        if maximum < minimum:
            raise ValueError(f"maximum batch size {maximum} is below minimum {minimum}")
        if factor <= 1.0:
            raise ValueError(f"factor must be > 1, got {factor}")
        if not target_latency > 0:
            raise ValueError(f"target_latency must be positive seconds, got {target_latency}")
        if window < 1:
            raise ValueError(f"window must be >= 1 batch, got {window}")
        if not 0.0 <= tolerance < 1.0:
            raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
        self.minimum = minimum
        self.maximum = maximum
        self.factor = factor
        self.target_latency = target_latency
        self.window = window
        self.tolerance = tolerance
        start = minimum if initial is None else initial
        self.size = min(maximum, max(minimum, start))
        self._direction = 1
        self._flat = 0
        self._last_rate: float | None = None
        self._last_time: float | None = None
        self._records = 0
        self._sends = 0

    @classmethod
    def fixed(cls, size: int) -> BatchSizer:
        """A sizer that always answers ``size``."""
        return cls(minimum=size, maximum=size)

    def observe(self, records: int, now: float, queued: int) -> None:
        """A batch of ``records`` was delivered at trio time ``now``; ``queued``
        batches (it included) now wait in the mailbox it went into."""
        if self._last_time is None:
            self._last_time = now
            return
        self._records += records
        self._sends += 1
        if self._sends < self.window:
            return
        elapsed = now - self._last_time
        rate = self._records / elapsed if elapsed > 0 else math.inf
        self._last_time = now
        self._records = 0
        self._sends = 0
        if self.minimum == self.maximum:
            return
        latency = (self.size * (max(queued, 1) + 1)) / rate if rate > 0 else math.inf
        last, self._last_rate = self._last_rate, rate
        if latency > self.target_latency:
            self._direction = -1
            self._step()
            return
        if last is None or rate > last * (1 + self.tolerance):
            self._flat = 0
            self._step()
        elif rate < last * (1 - self.tolerance):
            self._flat = 0
            self._direction = -self._direction
            self._step()
        else:
            self._flat += 1
            if self._flat >= 4:  # steady: probe upwards again
                self._flat = 0
                self._direction = 1
                self._step()

    def _step(self) -> None:
        if self._direction > 0:
            grown = int(self.size * self.factor)
            self.size = min(self.maximum, grown if grown > self.size else self.size + 1)
        else:
            self.size = max(self.minimum, int(self.size / self.factor))

    def shrink(self) -> None:
        """Memory pressure: halve the size (not below the minimum)."""
        self.size = max(self.minimum, self.size // 2)

    def cap(self, maximum: int) -> None:
        """Lower the maximum to ``maximum`` (at least 1); the minimum and size follow."""
        self.maximum = max(1, min(self.maximum, maximum))
        self.minimum = min(self.minimum, self.maximum)
        self.size = min(self.size, self.maximum)
