"""Memory accounting: estimating what a message holds and a graph-wide budget."""

from __future__ import annotations

import sys
from typing import Literal, TypeAlias

import trio

from ._errors import MemoryLimitExceeded
from ._messages import Batch, Message

__all__ = ["MemoryBudget", "MemoryPolicy", "estimate_nbytes"]

MemoryPolicy: TypeAlias = Literal["wait", "fail"]
"""Past ``max_memory``: ``"wait"`` for room (backpressure; the default), or ``"fail"``."""

_SAMPLES = 8
_getsizeof = sys.getsizeof


_DEPTH = 6  # containers nested deeper than this count by their own size only
_WIDTH = 16  # of a larger container, this many items are measured and scaled


_CONTAINERS = (dict, list, tuple, set, frozenset)


def _deep_nbytes(value: object, depth: int) -> int:
    """``value``'s size with what it holds: lists, tuples, sets and dicts measured down
    to :data:`_DEPTH` levels, at most :data:`_WIDTH` items each (scaled to the whole).

    Scalars (the usual field values) are measured inline, without a call each.
    """
    size = _getsizeof(value)
    if depth >= _DEPTH:
        return size
    if isinstance(value, dict):
        n = len(value)
        if n:
            items = value.items() if n <= _WIDTH else list(value.items())[:_WIDTH]
            inner = 0
            for k, v in items:
                inner += _getsizeof(k)
                inner += _deep_nbytes(v, depth + 1) if isinstance(v, _CONTAINERS) else _getsizeof(v)
            size += inner * n // min(n, _WIDTH)
    elif isinstance(value, list | tuple | set | frozenset):
        n = len(value)
        if n:
            values = value if n <= _WIDTH else list(value)[:_WIDTH]
            inner = 0
            for v in values:
                inner += _deep_nbytes(v, depth + 1) if isinstance(v, _CONTAINERS) else _getsizeof(v)
            size += inner * n // min(n, _WIDTH)
    return size


_CONTAINER_TYPES = frozenset(_CONTAINERS)


def _record_nbytes(record: object) -> int:
    if record.__class__ is not dict:
        return _deep_nbytes(record, 0)
    assert isinstance(record, dict)
    # the hot case, a flat record: as cheap as a shallow size
    containers = _CONTAINER_TYPES
    size = _getsizeof(record)
    for key, value in record.items():
        size += _getsizeof(key)
        size += _deep_nbytes(value, 1) if value.__class__ in containers else _getsizeof(value)
    return size


def estimate_nbytes(message: Message) -> int:
    """Estimate the bytes a message keeps alive, from the real size of a sample.

    Up to eight records, spread over the batch, are measured (the dict, its keys
    and values with ``sys.getsizeof``, down through nested lists and dicts); the
    mean is scaled to the batch length.

    Example:
        >>> estimate_nbytes(Batch.from_records([{"a": 1}] * 100)) > 100 * 64
        True
    """
    if not isinstance(message, Batch):
        return 64
    records = message.records
    n = len(records)
    if n == 0:
        return 64
    step = max(1, n // _SAMPLES)
    sampled = records[::step][:_SAMPLES]
    per_record = sum(_record_nbytes(r) for r in sampled) / len(sampled)
    return int(per_record * n) + _getsizeof(records) + 8 * n + 64


class MemoryBudget:
    """A graph-wide ``max_memory`` budget, split evenly across the mailboxes.

    Each mailbox may hold at most its share.  Past ``soft_fraction`` of its
    share the mailbox is *under pressure*: sources shrink their batches and
    hold back until no mailbox is.  A send that would take a mailbox past its
    share waits for room (``policy="wait"``, the default: backpressure, so a
    slow sink holds the source back) or raises :class:`MemoryLimitExceeded`
    (``policy="fail"``); a message larger than a whole share always raises,
    since it could never fit.
    """

    def __init__(
        self,
        max_bytes: int,
        *,
        soft_fraction: float = 0.8,
        policy: MemoryPolicy = "wait",
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_memory must be positive, got {max_bytes}")
        if not 0.0 < soft_fraction <= 1.0:
            raise ValueError(f"soft_fraction must be in (0, 1], got {soft_fraction}")
        if policy not in ("fail", "wait"):
            raise ValueError(f"memory policy must be 'fail' or 'wait', got {policy!r}")
        self.max_bytes = max_bytes
        self.soft_fraction = soft_fraction
        self.policy = policy
        self.in_use = 0
        self._members = 0
        self._pressured: set[str] = set()
        self._relieved = trio.Event()
        self._relieved.set()

    def join(self) -> None:
        """Count one more mailbox in the split."""
        self._members += 1

    @property
    def share(self) -> int:
        """Bytes each mailbox may hold."""
        return self.max_bytes // max(1, self._members)

    @property
    def under_pressure(self) -> bool:
        """True while some mailbox holds more than the soft fraction of its share."""
        return bool(self._pressured)

    def check(self, owner: str, held: int, nbytes: int) -> bool:
        """Whether ``owner`` (holding ``held``) may take ``nbytes`` more now.

        Raises:
            MemoryLimitExceeded: when it may not and the policy is ``fail``, or
                when ``nbytes`` alone exceeds a share.
        """
        share = self.share
        if held + nbytes <= share:
            return True
        if nbytes > share or self.policy == "fail":
            raise MemoryLimitExceeded(owner, nbytes, held, share)
        return False

    def update(self, owner: str, held: int, delta: int) -> None:
        """Record that ``owner`` now holds ``held`` bytes (changed by ``delta``)."""
        self.in_use += delta
        if held > self.share * self.soft_fraction:
            if owner not in self._pressured:
                self._pressured.add(owner)
                if self._relieved.is_set():
                    self._relieved = trio.Event()
        elif owner in self._pressured:
            self._pressured.discard(owner)
            if not self._pressured:
                self._relieved.set()

    async def wait_relieved(self) -> None:
        """Wait until no mailbox is under pressure."""
        await self._relieved.wait()
