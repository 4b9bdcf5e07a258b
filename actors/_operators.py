"""Actors that run plain Python functions on batches: the operators behind :class:`Flow`.

Each handles a whole batch in one synchronous call: C-level ``map`` /
``filter`` / list building over ``batch.records``, no ``await`` per record.
A record the function raises on goes to the operator's error policy
(:class:`OperatorActor`): by default it fails the actor with an
:class:`OperatorError` naming the operator, the function and the record's source
offset (when the batch still carries offsets).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Iterable, Sequence
from copy import deepcopy
from functools import partial
from itertools import chain, compress, islice
from typing import Any

import attrs

from partita.runtime import (
    Actor,
    BadRecord,
    Batch,
    CheckpointCorrupt,
    DeadLetter,
    OnError,
    Record,
    Watermark,
    check_on_error,
    decode_state,
    encode_state,
    estimate_state_nbytes,
)
from partita.sql import partition_of  # the SQL router's process-stable hash

from ._dead_letter import emit_dead_letters
from ._event_clock import EventClock

__all__ = [
    "STATE_TYPES",
    "FilterActor",
    "FlatMapActor",
    "KeyByActor",
    "MapActor",
    "OperatorActor",
    "OperatorError",
    "StatefulActor",
    "check_sync",
    "describe_failure",
    "short_name",
]

KeyFn = Callable[[Record], Hashable]

STATE_TYPES = (
    "None, bool, int, float, str, bytes and lists, tuples, dicts, sets and frozensets of them"
)
"""What a checkpointed state may hold (the state codec's types)."""


def qualname(fn: object) -> str:
    """``module.qualname`` of a user's function (what names it in fingerprints and errors)."""
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{name}"


def short_name(fn: object) -> str:
    """The user's function as an operator label names it: ``parse_order``, ``<lambda>``."""
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


def describe_failure(exc: BaseException) -> str:
    """A record's failure in a few words: ``KeyError 'price'``, ``ValueError: bad x``."""
    if isinstance(exc, KeyError):
        return f"KeyError {exc}"
    return f"{type(exc).__name__}: {exc}"


def check_sync(kind: str, fn: object, instead: str) -> None:
    """Refuse an ``async def`` where a sync operator would call it without awaiting.

    Raises:
        TypeError: ``fn`` is a coroutine function (or an async generator function, or
            an object whose ``__call__`` is one); the message names ``instead``.
    """
    call: object = fn
    if not (inspect.isroutine(fn) or isinstance(fn, partial)):
        call = type(fn).__call__ if callable(fn) else fn  # an instance: its method
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        name = short_name(fn)
        raise TypeError(
            f"{kind}({name}): {name} is an async function, and {kind} calls its function "
            f"without awaiting it (it would emit coroutine objects); use {instead}"
        )


class OperatorError(BadRecord):
    """A Flow operator's function raised on a record and the operator's policy is ``fail``.

    Names the operator, the user's function and the record's source offset:
    ``map(parse_order) at record offset 1042: KeyError 'price'``.  ``stage`` is the
    operator's label (``map(parse_order)``), ``reason`` the error in a few words.

    Example:
        >>> str(OperatorError("KeyError 'price'", 1042, "map(parse_order)"))
        "map(parse_order) at record offset 1042: KeyError 'price'"
    """

    def _describe(self, stage: str) -> str:
        where = f" at record offset {self.offset}" if self.offset is not None else ""
        return f"{self.stage}{where}: {self.reason}"


@attrs.define(eq=False)
class OperatorActor(Actor):
    """What every Flow operator shares: its label, its error policy, its dead letters.

    A record ``fn`` raises on is, by ``on_error``: ``"fail"``, an
    :class:`OperatorError` that fails the actor; ``"skip"``, left out and counted
    (``rows_errored``, ``errors_by_reason``); ``"dead-letter"``, counted and sent to
    :attr:`dead_letter_output` (kept in :attr:`dead_letters` with none) as a
    :class:`runtime.DeadLetter` whose stage is this actor's name.  With a dead-letter
    output, data goes to the outputs before it only.
    """

    label: str = attrs.field(default="", kw_only=True)
    on_error: OnError = attrs.field(default="fail", kw_only=True, converter=check_on_error)
    dead_letter_output: int | None = attrs.field(default=None, kw_only=True)
    dead_letters: list[DeadLetter] = attrs.field(init=False, factory=list)

    def emit_batch(self, batch: Batch, output: int | None = None) -> None:
        """Emit to ``output``, or to every data output (not the dead-letter one)."""
        dead = self.dead_letter_output
        if output is None and dead is not None:
            super().emit_batch(batch, 0)
            for index in range(1, dead):
                self.emit_message(batch, index)
            return
        super().emit_batch(batch, output)

    def record_failed(
        self, exc: Exception, batch: Batch, index: int, letters: list[DeadLetter]
    ) -> None:
        """Apply the policy to ``batch.records[index]``, which raised ``exc``.

        Raises:
            OperatorError: the policy is ``"fail"``.
        """
        reason = describe_failure(exc)
        offset = batch.offset_of(index)
        if self.on_error == "fail":
            raise OperatorError(reason, offset, self.label or self.name) from exc
        self.count_error(reason)
        if self.on_error == "dead-letter":
            letters.append(
                DeadLetter(batch.records[index], f"{self.label}: {reason}", offset, self.name)
            )

    def send_dead_letters(self, letters: list[DeadLetter]) -> None:
        """Emit a batch's dead letters (one message), or keep them with no output."""
        if letters:
            emit_dead_letters(self, letters, self.dead_letter_output, self.dead_letters)

    def call_each(self, fn: Callable[[Record], Any], batch: Batch) -> tuple[list[Any], list[int]]:
        """``fn`` of every record (C-level ``map``); the failed indexes, by the policy.

        Returns the results of the records that succeeded, in order, and the indexes
        of those that failed (skipped or dead-lettered; with ``"fail"`` the first one
        raises).
        """
        records = batch.records
        results: list[Any] = []
        failed: list[int] = []
        letters: list[DeadLetter] = []
        start = 0
        n = len(records)
        while start < n:
            before = len(results)
            try:
                results.extend(map(fn, islice(records, start, None) if start else records))
                break
            except Exception as exc:
                index = start + len(results) - before
                self.record_failed(exc, batch, index, letters)
                failed.append(index)
                start = index + 1
        self.send_dead_letters(letters)
        return results, failed


def without(items: Sequence[Any], failed: list[int]) -> list[Any]:
    """``items`` less the (ascending) indexes ``failed``."""
    if not len(items):
        return []
    drop = set(failed)
    return [item for i, item in enumerate(items) if i not in drop]


@attrs.define(eq=False)
class MapActor(OperatorActor):
    """Emits ``fn(record)`` for every record; keeps the source offsets."""

    fn: Callable[[Record], Record]

    def on_batch(self, batch: Batch) -> None:
        out, failed = self.call_each(self.fn, batch)
        offsets = without(batch.offsets, failed) if failed else batch.offsets
        self.emit_batch(Batch(out, offsets))


@attrs.define(eq=False)
class FilterActor(OperatorActor):
    """Keeps the records for which ``predicate(record)`` is true; counts the rest as filtered."""

    predicate: Callable[[Record], Any]

    def on_batch(self, batch: Batch) -> None:
        flags, failed = self.call_each(self.predicate, batch)
        records, offsets = batch.records, batch.offsets
        if failed:
            records, offsets = without(records, failed), without(offsets, failed)
        kept = list(compress(records, flags))
        self.rows_filtered += len(records) - len(kept)
        offsets = list(compress(offsets, flags)) if len(offsets) else ()
        if kept:
            self.emit_batch(Batch(kept, offsets))


@attrs.define(eq=False)
class FlatMapActor(OperatorActor):
    """Emits every record of ``fn(record)`` (an iterable, possibly empty)."""

    fn: Callable[[Record], Iterable[Record]]

    def on_batch(self, batch: Batch) -> None:
        fn = self.fn
        parts, _ = self.call_each(lambda record: list(fn(record)), batch)
        self.emit(list(chain.from_iterable(parts)))


@attrs.define(eq=False)
class KeyByActor(OperatorActor):
    """Hash-partitions records by ``key(record)`` across its outputs.

    Records of one key always go to one output, in order.  Watermarks and
    barriers go to every output.  When the graph takes checkpoints, a key's
    output comes from a hash that does not depend on the process (the SQL
    router's; ``hash()`` of a ``str`` does), so a run resumed in a new process
    sends each key to the lane that holds its restored state.

    With a ``clock`` (a window follows), it stamps each record with the exact
    watermark as of it, in source order, before the lanes split, and after each
    batch sends the new watermark to every lane (instead of forwarding upstream
    watermarks): so every lane's windows close as one stream's would.
    """

    key: KeyFn
    clock: EventClock | None = attrs.field(default=None, kw_only=True)
    _lanes: dict[Hashable, int] = attrs.field(init=False, factory=dict)
    _sent_wm: int | None = attrs.field(init=False, default=None)

    def _lane(self, key: Hashable, n: int) -> int:
        lane = self._lanes.get(key)
        return partition_of(self._lanes, key, n) if lane is None else lane

    def on_batch(self, batch: Batch) -> None:
        n = self.lanes
        clock = self.clock
        wms = clock.stamp(batch.records) if clock is not None else None
        keys, failed = self.call_each(self.key, batch)
        if failed:
            batch = Batch(
                without(batch.records, failed),
                without(batch.offsets, failed),
                None if wms is None else without(wms, failed),
            )
        elif wms is not None:
            batch = Batch(batch.records, batch.offsets, wms)
        if n <= 1:
            self.emit_batch(batch)
        else:
            self._split(batch, keys, n)
        if clock is not None:
            self._send_watermark(clock.watermark())

    def _split(self, batch: Batch, keys: list[Any], n: int) -> None:
        records = batch.records
        if self.checkpointing:
            lane = self._lane
            keys = [lane(key, n) for key in keys]  # a lane i < n: hash(i) % n == i
        lanes = [hash(key) % n for key in keys]
        buckets: list[list[Record]] = [[] for _ in range(n)]
        appends = [b.append for b in buckets]
        for record, i in zip(records, lanes, strict=True):
            appends[i](record)
        columns = [
            _split_column(batch.offsets, lanes, n),
            _split_column(batch.watermarks, lanes, n),
        ]
        for i in range(n):
            if buckets[i]:
                offsets, wms = (column[i] if column else None for column in columns)
                self.emit_batch(Batch(buckets[i], offsets or (), wms), i)

    def _send_watermark(self, wm: int | None) -> None:
        if wm is not None and (self._sent_wm is None or wm > self._sent_wm):
            self._sent_wm = wm
            for i in range(self.lanes):
                self.emit_message(Watermark(wm), i)

    def on_watermark(self, ts: int) -> None:
        """Forwarded to every output, unless a clock makes the lanes' watermarks."""
        if self.clock is None:
            super().on_watermark(ts)

    def snapshot_state(self) -> object:
        """The clock's largest event time (with a clock), else nothing."""
        if self.clock is None:
            return None
        return [self.clock.max_ts, self._sent_wm]

    def restore_state(self, state: object) -> None:
        """Take back what :meth:`snapshot_state` returned."""
        if self.clock is None:
            return
        if not (isinstance(state, list) and len(state) == 2):
            raise CheckpointCorrupt(
                f"the state of operator {self.name!r}", "not the event-time clock it wrote"
            )
        self.clock.max_ts, self._sent_wm = state

    @property
    def lanes(self) -> int:
        """The lanes it splits into: its outputs, less the dead-letter one."""
        dead = self.dead_letter_output
        return self.outputs if dead is None else dead


def _split_column(column: Sequence[int] | None, lanes: list[int], n: int) -> list[list[int]] | None:
    """``column`` (offsets or watermarks, one per record) split by the records' lanes."""
    if column is None or not len(column):
        return None
    parts: list[list[int]] = [[] for _ in range(n)]
    appends = [p.append for p in parts]
    for value, i in zip(column, lanes, strict=True):
        appends[i](value)
    return parts


class _AtRecord(Exception):
    """The record at ``index`` raised ``error`` (inside a stateful batch)."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


@attrs.define(eq=False)
class StatefulActor(OperatorActor):
    """Runs ``fn(state, record) -> rows`` with one state per key (``init()`` makes it).

    ``key`` is ``None`` for one state for all records.  States are dropped
    only at the end of the stream: keep the key space bounded.  The state
    survives a restart of the actor.

    A batch is applied all or nothing: the first time a batch touches a key,
    ``fn`` gets a copy of that key's state (``copy``, default
    :func:`copy.deepcopy`), and the copies replace the states only once the
    whole batch succeeded.  So a handler restarted after a crash starts from
    the states as they were before the batch, and no record counts twice.
    The cost is one copy per key touched per batch, never of all the states;
    pass ``copy=copy.copy`` for flat states (numbers, strings) to make it cheap.
    A record skipped or dead-lettered by the policy leaves no trace: the batch
    is applied again, from the states before it, without that record.
    """

    fn: Callable[[Any, Record], Iterable[Record] | None]
    init: Callable[[], Any] = dict
    key: KeyFn | None = None
    copy: Callable[[Any], Any] = deepcopy
    states: dict[Hashable, Any] = attrs.field(init=False, factory=dict)

    def state_nbytes(self) -> int:
        """Every key's state, estimated (sampled)."""
        return estimate_state_nbytes(self.states)

    def on_batch(self, batch: Batch) -> None:
        skip: set[int] = set()
        letters: list[DeadLetter] = []
        while True:
            try:
                out, touched = self._apply(batch.records, skip)
                break
            except _AtRecord as at:
                self.record_failed(at.error, batch, at.index, letters)
                skip.add(at.index)
        self.states.update(touched)
        self.send_dead_letters(letters)
        self.emit(out)

    def _apply(
        self, records: list[Record], skip: set[int]
    ) -> tuple[list[Record], dict[Hashable, Any]]:
        """The rows of ``records`` (less ``skip``) and the states they leave, by key."""
        fn = self.fn
        init = self.init
        copy = self.copy
        states = self.states
        out: list[Record] = []
        extend = out.extend
        index = 0
        touched: dict[Hashable, Any] = {}  # this batch's working copies, by key
        try:
            if self.key is None:
                if len(records) > len(skip):
                    old = states.get(None)
                    state = touched[None] = init() if old is None else copy(old)
                    for index in range(len(records)):
                        if skip and index in skip:
                            continue
                        rows = fn(state, records[index])
                        if rows:
                            extend(rows)
            else:
                keys = self.key
                get = touched.get
                for index in range(len(records)):
                    if skip and index in skip:
                        continue
                    record = records[index]
                    key = keys(record)
                    state = get(key)
                    if state is None:
                        old = states.get(key)
                        state = touched[key] = init() if old is None else copy(old)
                    rows = fn(state, record)
                    if rows:
                        extend(rows)
        except Exception as exc:
            raise _AtRecord(index, exc) from exc
        return out, touched

    def snapshot_state(self) -> object:
        """Every key's state, encoded at once (one C-level pass in the usual case).

        Raises:
            TypeError: a key or a state holds a value the checkpoint cannot; one line
                naming this operator, the user's function and the key.
            ValueError: a state nests too deep (or refers to itself); named the same way.
        """
        try:
            return encode_state(self.states)
        except (TypeError, ValueError):
            pass
        for key, state in self.states.items():  # find the key to name
            for what, value in (("key", key), ("state", state)):
                try:
                    encode_state(value)
                except (TypeError, ValueError) as exc:
                    where = f"key {key!r}" if what == "state" else "a key"
                    raise type(exc)(
                        f"operator {self.name!r} (function {qualname(self.fn)}), {where}: "
                        f"{exc}; a checkpointed state holds only {STATE_TYPES}"
                    ) from None
        raise AssertionError("the states encode one by one but not together")  # pragma: no cover

    def restore_state(self, state: object) -> None:
        """Take back the states :meth:`snapshot_state` encoded."""
        states = decode_state(state) if isinstance(state, bytes) else None
        if not isinstance(states, dict):
            raise CheckpointCorrupt(
                f"the states of operator {self.name!r}", "not the per-key states it wrote"
            )
        self.states = states
