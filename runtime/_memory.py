"""Memory accounting: estimating what a message holds and a graph-wide budget."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, TypeAlias

import trio

from ._errors import MemoryLimitExceeded
from ._messages import Batch, Message

__all__ = [
    "MemoryBudget",
    "MemoryPolicy",
    "estimate_nbytes",
    "estimate_state_nbytes",
    "keep_estimate",
    "share_estimate",
]

MemoryPolicy: TypeAlias = Literal["wait", "fail"]
"""Past ``max_memory``: ``"wait"`` for room (backpressure; the default), or ``"fail"``."""

_SAMPLES = 8
_getsizeof = sys.getsizeof
_refs = sys.getrefcount


def _plain_sizeof() -> dict[type, Callable[[object], int]]:
    """Each plain type's own ``__sizeof__``, where it is what ``sys.getsizeof`` says.

    ``sys.getsizeof`` parses its arguments as keywords: about 200 ns a call on these
    machines, six times the type's ``__sizeof__`` called directly.  For a type the
    collector does not track (no header is added) the two agree, so the hot loops
    call the method and keep ``sys.getsizeof`` for everything else (containers,
    subclasses, user types).  Checked once here rather than assumed.
    """
    samples: tuple[object, ...] = ("", "é", 0, 2**100, 0.0, True, b"", None, 0j)
    table: dict[type, Callable[[object], int]] = {}
    for sample in samples:
        cls = type(sample)
        method = cls.__sizeof__
        if method(sample) == sys.getsizeof(sample):
            table[cls] = method
    return table


_PLAIN_SIZEOF = _plain_sizeof()


_DEPTH = 6  # containers nested deeper than this count by their own size only
_WIDTH = 16  # of a larger container, this many items are measured and scaled


_CONTAINERS = (dict, list, tuple, set, frozenset)
_CONTAINER_TYPES = frozenset(_CONTAINERS)


def _own_references() -> tuple[int, int, int, int]:
    """The reference count ``sys.getrefcount`` shows, inside each loop shape below, for
    an object that one container alone holds: a dict's items iterated directly and
    through a sampled list, a sequence's elements likewise.

    Measured once, in loops of exactly the estimator's shapes, rather than assumed:
    CPython versions differ in what a loop variable and the items tuple hold.
    """
    probe = {"k": [None]}
    item = item_sampled = element = element_sampled = 0
    for _key, value in probe.items():
        item = _refs(value)
    for _key, value in list(probe.items())[:_WIDTH]:
        item_sampled = _refs(value)
    sequence = [[None]]
    for value in sequence:
        element = _refs(value)
    for value in list(sequence)[:_WIDTH]:
        element_sampled = _refs(value)
    return item, item_sampled, element, element_sampled


_OWN_ITEM, _OWN_ITEM_SAMPLED, _OWN_ELEMENT, _OWN_ELEMENT_SAMPLED = _own_references()

# Every key and value counts by its share: all of its size when nothing but its
# container refers to it, 1/k of it when k holders do (the key strings every record
# of a batch shares, interned names and cached small ints count next to nothing, and
# a string two records share counts half in each).  A container counts with what it
# holds only when it is not shared.


def _deep_nbytes(value: object, depth: int, width: int = _WIDTH) -> float:
    """``value``'s size with what it holds: lists, tuples, sets and dicts measured down
    to :data:`_DEPTH` levels, at most ``width`` items each (scaled to the whole)."""
    size: float = _getsizeof(value)
    if depth >= _DEPTH:
        return size
    containers = _CONTAINER_TYPES
    refs = _refs
    getsizeof = _getsizeof
    inner = 0.0
    if isinstance(value, dict):
        n = len(value)
        if not n:
            return size
        if n <= width:
            own = _OWN_ITEM
            for k, v in value.items():
                extra = refs(k) - own
                inner += getsizeof(k) if extra <= 0 else getsizeof(k) / (extra + 1)
                extra = refs(v) - own
                if extra <= 0:
                    inner += (
                        _deep_nbytes(v, depth + 1, width)
                        if v.__class__ in containers
                        else getsizeof(v)
                    )
                else:
                    inner += getsizeof(v) / (extra + 1)
        else:
            own = _OWN_ITEM_SAMPLED
            for k, v in list(value.items())[:width]:
                extra = refs(k) - own
                inner += getsizeof(k) if extra <= 0 else getsizeof(k) / (extra + 1)
                extra = refs(v) - own
                if extra <= 0:
                    inner += (
                        _deep_nbytes(v, depth + 1, width)
                        if v.__class__ in containers
                        else getsizeof(v)
                    )
                else:
                    inner += getsizeof(v) / (extra + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        n = len(value)
        if not n:
            return size
        if n <= width:
            own = _OWN_ELEMENT
            for v in value:
                extra = refs(v) - own
                if extra <= 0:
                    inner += (
                        _deep_nbytes(v, depth + 1, width)
                        if v.__class__ in containers
                        else getsizeof(v)
                    )
                else:
                    inner += getsizeof(v) / (extra + 1)
        else:
            own = _OWN_ELEMENT_SAMPLED
            for v in list(value)[:width]:
                extra = refs(v) - own
                if extra <= 0:
                    inner += (
                        _deep_nbytes(v, depth + 1, width)
                        if v.__class__ in containers
                        else getsizeof(v)
                    )
                else:
                    inner += getsizeof(v) / (extra + 1)
    else:
        return size
    return size + inner * n / min(n, width)


def _record_nbytes(record: object) -> float:
    if record.__class__ is not dict:
        return _deep_nbytes(record, 0)
    assert isinstance(record, dict)
    if len(record) > _WIDTH:  # a wide record: its fields are sampled
        return _deep_nbytes(record, 0)
    # the hot case, a flat record: no call per field
    containers = _CONTAINER_TYPES
    refs = _refs
    getsizeof = _getsizeof
    plain = _PLAIN_SIZEOF.get
    own = _OWN_ITEM
    size: float = getsizeof(record)
    for key, value in record.items():
        sizeof = plain(key.__class__)
        nbytes = getsizeof(key) if sizeof is None else sizeof(key)
        extra = refs(key) - own
        size += nbytes if extra <= 0 else nbytes / (extra + 1)
        sizeof = plain(value.__class__)
        if sizeof is not None:
            nbytes = sizeof(value)
        elif value.__class__ in containers:
            extra = refs(value) - own
            size += _deep_nbytes(value, 1) if extra <= 0 else getsizeof(value) / (extra + 1)
            continue
        else:
            nbytes = getsizeof(value)
        extra = refs(value) - own
        size += nbytes if extra <= 0 else nbytes / (extra + 1)
    return size


def estimate_nbytes(message: Message) -> int:
    """Estimate the bytes a message keeps alive, from the real size of a sample.

    Up to eight records, spread over the batch, are measured (the dict, its keys
    and values with ``sys.getsizeof``, down through nested lists and dicts); the
    mean is scaled to the batch length.  An object others refer to as well counts
    by its share (``1/k`` of its size when ``k`` holders refer to it), so the key
    strings every record shares, interned names and cached small ints are not
    counted once per record: for typical records the estimate is within a few
    percent of what ``tracemalloc`` measures.

    A batch is measured once: the estimate is kept on it, so a batch forwarded as
    it is (router to partition, partition to sink) costs one estimate for all the
    mailboxes it crosses.  A batch is a message: its records are not changed once
    it was sent.

    Example:
        >>> estimate_nbytes(Batch.from_records([{"a": 1}] * 100)) > 100 * 64
        True
    """
    if not isinstance(message, Batch):
        return 64
    cached = message._nbytes
    if cached is not None:
        return cached
    records = message.records
    n = len(records)
    if n == 0:
        nbytes = 64
    else:
        step = max(1, n // _SAMPLES)
        sampled = records[::step][:_SAMPLES]
        per_record = sum(_record_nbytes(r) for r in sampled) / len(sampled)
        nbytes = _batch_nbytes(per_record, records)
    keep_estimate(message, nbytes)
    return nbytes


def share_estimate(whole: Batch, parts: Iterable[Batch | None]) -> None:
    """Give each of ``parts``, batches of some of ``whole``'s records (a router's split
    by key), its share of ``whole``'s estimate, if it has one: the records are of one
    kind, so measuring each part again would only repeat the sample.

    Example:
        >>> whole = Batch.from_records([{"k": i % 2, "v": "x" * 50} for i in range(100)])
        >>> total = estimate_nbytes(whole)
        >>> halves = [Batch(whole.records[i::2]) for i in (0, 1)]
        >>> share_estimate(whole, halves)
        >>> abs(sum(map(estimate_nbytes, halves)) - total) < total // 10
        True
    """
    nbytes = whole._nbytes
    n = len(whole.records)
    if nbytes is None or not n:
        return
    per_record = (nbytes - 64 - _getsizeof(whole.records)) / n
    for part in parts:
        if part is not None and part._nbytes is None:
            keep_estimate(part, _batch_nbytes(per_record, part.records))


def _batch_nbytes(per_record: float, records: Sequence[object]) -> int:
    """A batch's estimate from its records' mean size: theirs, the list's and its own."""
    return int(per_record * len(records)) + _getsizeof(records) + 64


def keep_estimate(batch: Batch, nbytes: int) -> None:
    """Give ``batch`` its memory estimate, taken of the same records before it was made
    (:func:`estimate_nbytes` answers it then, without measuring again)."""
    object.__setattr__(batch, "_nbytes", nbytes)  # a frozen class: kept, not changed


def estimate_state_nbytes(state: object) -> int:
    """Estimate the bytes an actor's state holds: its groups, windows, per-key states.

    The structure is walked as a batch's records are (shared objects count by their
    share), sampling at most eight items of each container at each level and
    scaling to its length, so a state of a million groups costs the same few
    hundred calls as one of a thousand.  For stats (:attr:`ActorStats.state_memory`),
    not for the hot path.

    Example:
        >>> groups = {("k", i): [i, float(i)] for i in range(1000, 2000)}
        >>> 100_000 < estimate_state_nbytes(groups) < 300_000
        True
    """
    if isinstance(state, dict) and len(state) <= _WIDTH:
        # a snapshot's few parts are referred to by the actor too: each is measured as
        # a root (its own size and what it holds), not as a shared object
        size: float = _getsizeof(state)
        for key, part in state.items():
            size += _getsizeof(key) + _deep_nbytes(part, 1, _STATE_WIDTH)
        return int(size)
    return int(_deep_nbytes(state, 0, _STATE_WIDTH))


_STATE_WIDTH = 8


class MemoryBudget:
    """A graph-wide ``max_memory`` budget that every mailbox draws from.

    The mailboxes share one pool: any of them may hold as much as the pool has
    room for, so a slow sink's mailbox can take what a fast operator's does not
    need.  Past ``soft_fraction`` of the pool the graph is *under pressure*:
    sources shrink their batches and hold back until it is not.  A send that
    would take the pool past ``max_bytes`` waits for room (``policy="wait"``,
    the default: backpressure, so a slow sink holds the source back) or raises
    :class:`MemoryLimitExceeded` (``policy="fail"``); room freed by any mailbox
    lets the senders waiting on every mailbox in, in the order they started
    waiting.  A message larger than the whole pool always raises, since it could
    never fit.

    An empty mailbox always takes one message, whatever the pool holds: otherwise
    an operator whose downstream is empty could wait for room that only its own
    (full) mailbox could free, and the graph would stop.  So the pool can go past
    ``max_bytes`` by at most one message per mailbox; sources cut batches of at
    most an eighth of :attr:`share` (the pool over the mailboxes), which keeps
    that overshoot under an eighth of ``max_bytes``.

    Example:
        >>> budget = MemoryBudget(1000, policy="fail")
        >>> budget.check("a", held=0, nbytes=600), budget.check("b", held=0, nbytes=600)
        (True, True)
        >>> budget.update("a", 600, 600); budget.check("b", held=0, nbytes=600)
        True
        >>> budget.update("b", 600, 600); budget.check("b", held=600, nbytes=100)
        Traceback (most recent call last):
          ...
        partita.runtime._errors.MemoryLimitExceeded: actor 'b': buffering 100 more bytes \
would exceed max_memory (1200 of 1000 bytes in use)
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
        self._waiting: dict[object, Callable[[], None]] = {}
        self._relieved = trio.Event()
        self._relieved.set()

    def join(self) -> None:
        """Count one more mailbox drawing from the pool (for :attr:`share`)."""
        self._members += 1

    @property
    def share(self) -> int:
        """The pool over the mailboxes: what sources size their batches by (no
        mailbox is limited to it)."""
        return self.max_bytes // max(1, self._members)

    @property
    def under_pressure(self) -> bool:
        """True while the pool holds more than ``soft_fraction`` of ``max_bytes``."""
        return not self._relieved.is_set()

    def fits(self, held: int, nbytes: int) -> bool:
        """Whether a mailbox holding ``held`` may take ``nbytes`` more now (no raise)."""
        return nbytes <= self.max_bytes and (held == 0 or self.in_use + nbytes <= self.max_bytes)

    def check(self, owner: str, held: int, nbytes: int) -> bool:
        """Whether ``owner`` (holding ``held``) may take ``nbytes`` more now.

        Raises:
            MemoryLimitExceeded: when it may not and the policy is ``fail``, or
                when ``nbytes`` alone exceeds ``max_bytes``.
        """
        if self.fits(held, nbytes):
            return True
        if nbytes > self.max_bytes or self.policy == "fail":
            raise MemoryLimitExceeded(owner, nbytes, self.in_use, self.max_bytes)
        return False

    def update(self, owner: str, held: int, delta: int) -> None:
        """Record that ``owner`` now holds ``held`` bytes (changed by ``delta``).

        The owner then lets its own waiting senders in and calls :meth:`room_freed`
        for the others'."""
        self.in_use += delta
        if self.in_use > self.max_bytes * self.soft_fraction:
            if self._relieved.is_set():
                self._relieved = trio.Event()
        elif not self._relieved.is_set():
            self._relieved.set()

    def room_freed(self) -> None:
        """Bytes were freed: let the senders waiting for room in, on every mailbox
        (in the order the mailboxes started waiting)."""
        if self._waiting:
            for admit in list(self._waiting.values()):
                admit()

    def wait_for_room(self, waiter: object, admit: Callable[[], None]) -> None:
        """While ``waiter`` (a mailbox) has senders waiting for room, call ``admit``
        whenever bytes are freed anywhere; registering again keeps its place."""
        self._waiting.setdefault(waiter, admit)

    def stop_waiting(self, waiter: object) -> None:
        """``waiter`` has no sender waiting for room any more."""
        self._waiting.pop(waiter, None)

    async def wait_relieved(self) -> None:
        """Wait until the graph is no longer under pressure."""
        await self._relieved.wait()
