"""Adaptive batch sizing for sources."""

from __future__ import annotations

__all__ = ["BatchSizer"]


class BatchSizer:
    """Grows the batch while downstream keeps up, shrinks it when mailboxes fill.

    A source asks :attr:`size` before it cuts a batch and reports how full the
    mailbox it sent into was (:meth:`observe`).  Below ``low`` occupancy the
    size grows by ``factor``; above ``high`` it shrinks by it; memory pressure
    (:meth:`shrink`) halves it.  The size always stays within
    ``[minimum, maximum]``.  With ``minimum == maximum`` the size is fixed.

    Example:
        >>> sizer = BatchSizer(minimum=100, maximum=1000, initial=200)
        >>> sizer.observe(0.0); sizer.size
        300
        >>> sizer.observe(1.0); sizer.size
        200
    """

    __slots__ = ("factor", "high", "low", "maximum", "minimum", "size")

    def __init__(
        self,
        *,
        minimum: int = 256,
        maximum: int = 16384,
        initial: int | None = None,
        low: float = 0.25,
        high: float = 0.75,
        factor: float = 1.5,
    ) -> None:
        if minimum < 1:
            raise ValueError(f"minimum batch size must be >= 1, got {minimum}")
        if maximum < minimum:
            raise ValueError(f"maximum batch size {maximum} is below minimum {minimum}")
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"need 0 <= low < high <= 1, got low={low} high={high}")
        if factor <= 1.0:
            raise ValueError(f"factor must be > 1, got {factor}")
        self.minimum = minimum
        self.maximum = maximum
        self.low = low
        self.high = high
        self.factor = factor
        start = minimum if initial is None else initial
        self.size = min(maximum, max(minimum, start))

    @classmethod
    def fixed(cls, size: int) -> BatchSizer:
        """A sizer that always answers ``size``."""
        return cls(minimum=size, maximum=size)

    def observe(self, occupancy: float) -> None:
        """Report the fill fraction (0..1) of the mailbox the last batch went into."""
        if occupancy < self.low:
            self.size = min(self.maximum, int(self.size * self.factor) or 1)
        elif occupancy > self.high:
            self.size = max(self.minimum, int(self.size / self.factor))

    def shrink(self) -> None:
        """Memory pressure: halve the size (not below the minimum)."""
        self.size = max(self.minimum, self.size // 2)

    def cap(self, maximum: int) -> None:
        """Lower the maximum to ``maximum`` (at least 1); the minimum and size follow."""
        self.maximum = max(1, min(self.maximum, maximum))
        self.minimum = min(self.minimum, self.maximum)
        self.size = min(self.size, self.maximum)
