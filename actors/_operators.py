"""Actors that run plain Python functions on batches: the operators behind :class:`Flow`.

Each handles a whole batch in one synchronous call: C-level ``map`` /
``filter`` / list building over ``batch.records``, no ``await`` per record.
A function that raises fails the actor with :class:`runtime.BadRecord` naming
the record's source offset (when the batch still carries offsets).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from copy import deepcopy
from itertools import chain, compress
from typing import Any, NoReturn

import attrs

from partita.runtime import (
    Actor,
    BadRecord,
    Batch,
    CheckpointCorrupt,
    Record,
    decode_state,
    encode_state,
)
from partita.sql import partition_of  # the SQL router's process-stable hash

__all__ = [
    "STATE_TYPES",
    "FilterActor",
    "FlatMapActor",
    "KeyByActor",
    "MapActor",
    "StatefulActor",
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


def _fail(actor: Actor, batch: Batch, index: int, exc: Exception) -> NoReturn:
    reason = f"{type(exc).__name__}: {exc}"
    raise BadRecord(reason, batch.offset_of(index), actor.name) from exc


@attrs.define(eq=False)
class MapActor(Actor):
    """Emits ``fn(record)`` for every record; keeps the source offsets."""

    fn: Callable[[Record], Record]

    def on_batch(self, batch: Batch) -> None:
        out: list[Record] = []
        try:
            out.extend(map(self.fn, batch.records))
        except Exception as exc:
            _fail(self, batch, len(out), exc)
        self.emit_batch(Batch(out, batch.offsets))


@attrs.define(eq=False)
class FilterActor(Actor):
    """Keeps the records for which ``predicate(record)`` is true; counts the rest as filtered."""

    predicate: Callable[[Record], Any]

    def on_batch(self, batch: Batch) -> None:
        records = batch.records
        flags: list[Any] = []
        try:
            flags.extend(map(self.predicate, records))
        except Exception as exc:
            _fail(self, batch, len(flags), exc)
        kept = list(compress(records, flags))
        self.rows_filtered += len(records) - len(kept)
        offsets = list(compress(batch.offsets, flags)) if len(batch.offsets) else ()
        if kept:
            self.emit_batch(Batch(kept, offsets))


@attrs.define(eq=False)
class FlatMapActor(Actor):
    """Emits every record of ``fn(record)`` (an iterable, possibly empty)."""

    fn: Callable[[Record], Iterable[Record]]

    def on_batch(self, batch: Batch) -> None:
        parts: list[Iterable[Record]] = []
        try:
            parts.extend(map(self.fn, batch.records))
            out = list(chain.from_iterable(parts))
        except Exception as exc:
            _fail(self, batch, len(parts), exc)
        self.emit(out)


@attrs.define(eq=False)
class KeyByActor(Actor):
    """Hash-partitions records by ``key(record)`` across its outputs.

    Records of one key always go to one output, in order.  Watermarks and
    barriers go to every output.  When the graph takes checkpoints, a key's
    output comes from a hash that does not depend on the process (the SQL
    router's; ``hash()`` of a ``str`` does), so a run resumed in a new process
    sends each key to the lane that holds its restored state.
    """

    key: KeyFn
    _lanes: dict[Hashable, int] = attrs.field(init=False, factory=dict)

    def _lane(self, key: Hashable, n: int) -> int:
        lane = self._lanes.get(key)
        return partition_of(self._lanes, key, n) if lane is None else lane

    def on_batch(self, batch: Batch) -> None:
        n = self.outputs
        records = batch.records
        keys: list[Hashable] = []
        try:
            keys.extend(map(self.key, records))
        except Exception as exc:
            _fail(self, batch, len(keys), exc)
        if n <= 1:
            self.emit_batch(batch)
            return
        if self.checkpointing:
            lane = self._lane
            keys = [lane(key, n) for key in keys]  # a lane i < n: hash(i) % n == i
        buckets: list[list[Record]] = [[] for _ in range(n)]
        appends = [b.append for b in buckets]
        offsets = batch.offsets
        if len(offsets):
            marks: list[list[int]] = [[] for _ in range(n)]
            mark_appends = [m.append for m in marks]
            for record, key, offset in zip(records, keys, offsets, strict=True):
                i = hash(key) % n
                appends[i](record)
                mark_appends[i](offset)
            for i in range(n):
                if buckets[i]:
                    self.emit_batch(Batch(buckets[i], marks[i]), i)
        else:
            for record, key in zip(records, keys, strict=True):
                appends[hash(key) % n](record)
            for i in range(n):
                if buckets[i]:
                    self.emit_batch(Batch(buckets[i]), i)


@attrs.define(eq=False)
class StatefulActor(Actor):
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
    """

    fn: Callable[[Any, Record], Iterable[Record] | None]
    init: Callable[[], Any] = dict
    key: KeyFn | None = None
    copy: Callable[[Any], Any] = deepcopy
    states: dict[Hashable, Any] = attrs.field(init=False, factory=dict)

    def on_batch(self, batch: Batch) -> None:
        fn = self.fn
        init = self.init
        copy = self.copy
        states = self.states
        records = batch.records
        out: list[Record] = []
        extend = out.extend
        index = 0
        touched: dict[Hashable, Any] = {}  # this batch's working copies, by key
        try:
            if self.key is None:
                if records:
                    old = states.get(None)
                    state = touched[None] = init() if old is None else copy(old)
                    for index in range(len(records)):
                        rows = fn(state, records[index])
                        if rows:
                            extend(rows)
            else:
                keys = self.key
                get = touched.get
                for index in range(len(records)):
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
            _fail(self, batch, index, exc)
        states.update(touched)
        self.emit(out)

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
