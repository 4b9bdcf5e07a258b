"""Async operators: ``map_async`` / ``filter_async`` / ``flat_map_async`` behind :class:`Flow`.

One actor per operator (per lane after ``key_by``) awaits the user's function for
the records of a batch with bounded concurrency: a fixed pool of at most
``max_in_flight`` tasks, started in a nursery inside the batch's handler, pulls the
records from one shared iterator.  The batch's output goes on as one batch when
every record is done, in input order (``ordered=True``), in input order per key
(``ordered="key"``: a key's records are awaited one after the other) or in
completion order (``ordered=False``).  While a batch is in flight the actor takes
no other message, so its inbox fills and upstream waits: backpressure.  Cancelling
the graph cancels the pool's nursery: no task outlives the batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Hashable, Iterator
from itertools import chain, compress
from typing import Any, Literal, TypeAlias

import attrs
import trio

from partita.runtime import AsyncActor, Batch, DeadLetter, Record

from ._operators import KeyFn, OperatorActor, short_name

__all__ = ["AsyncOperatorActor", "Ordering", "check_async", "check_ordering"]

Ordering: TypeAlias = bool | Literal["key"]
"""``True``: input order; ``"key"``: input order per key; ``False``: completion order."""

AsyncKind: TypeAlias = Literal["map", "filter", "flat_map"]

_MISSING: Any = object()


def check_ordering(ordered: object, key: KeyFn | None) -> Ordering:
    """``ordered`` if it is an :data:`Ordering` usable here.

    Raises:
        ValueError: it is not ``True``, ``False`` or ``"key"``, or it is ``"key"``
            with no ``key_by`` before the operator.
    """
    if not (ordered is True or ordered is False or ordered == "key"):
        raise ValueError(f"ordered must be True, False or 'key', got {ordered!r}")
    if ordered == "key" and key is None:
        raise ValueError("ordered='key' needs a key: call key_by() before this operator")
    result: Ordering = ordered
    return result


def check_async(kind: str, fn: object, *, generators: bool = False) -> None:
    """Refuse a plain function where an async operator awaits it.

    Raises:
        TypeError: ``fn`` is not an ``async def`` (nor, when ``generators``, an async
            generator function); the message points to the sync operator.
    """
    call: object = fn
    if not (inspect.isroutine(fn) or hasattr(fn, "func")):
        call = type(fn).__call__ if callable(fn) else fn
    if inspect.iscoroutinefunction(call) or (generators and inspect.isasyncgenfunction(call)):
        return
    name = short_name(fn)
    raise TypeError(
        f"{kind}_async({name}): {name} is not an async function; {kind}_async awaits "
        f"fn(record) (use {kind}({name}) for a plain function)"
    )


@attrs.define(eq=False)
class AsyncOperatorActor(OperatorActor, AsyncActor):
    """Awaits ``fn(record)`` for every record of a batch, at most ``max_in_flight`` at once.

    ``kind`` says what the results are: ``"map"``, the new records;
    ``"filter"``, whether to keep each record; ``"flat_map"``, iterables of records
    (or ``fn`` is an async generator).  Records ``fn`` raises on go to the error
    policy (see :class:`OperatorActor`).  Under a restart policy a failed batch is
    handled again whole, so ``fn`` may be awaited again for its records.

    Attributes:
        in_flight: the calls of ``fn`` running now (for tests and stats).
    """

    fn: Callable[[Record], Awaitable[Any]]
    kind: AsyncKind = "map"
    max_in_flight: int = attrs.field(default=16, validator=attrs.validators.ge(1))
    ordered: Ordering = True
    key: KeyFn | None = None
    in_flight: int = attrs.field(init=False, default=0)
    _call: Callable[[Record], Awaitable[Any]] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        fn = self.fn
        if self.kind == "flat_map" and inspect.isasyncgenfunction(fn):

            async def collect(record: Record) -> list[Any]:
                return [row async for row in fn(record)]

            self._call = collect
        elif self.kind == "flat_map":

            async def listed(record: Record) -> list[Any]:
                return list(await fn(record))

            self._call = listed
        else:
            self._call = fn

    async def on_batch_async(self, batch: Batch) -> None:
        records = batch.records
        n = len(records)
        if not n:
            return
        results: list[Any] = [_MISSING] * n
        done: list[int] = []  # indexes in completion order
        failures: dict[int, Exception] = {}
        letters: list[DeadLetter] = []
        groups = self._groups(batch, failures)
        call = self._call
        fail_fast = self.on_error == "fail"

        async def work(cancel: trio.CancelScope) -> None:
            for group in groups:
                for i in group:
                    self.in_flight += 1
                    try:
                        results[i] = await call(records[i])
                    except Exception as exc:
                        failures[i] = exc
                        if fail_fast:
                            cancel.cancel()
                            return
                    finally:
                        self.in_flight -= 1
                    done.append(i)

        pool = min(self.max_in_flight, n)
        async with trio.open_nursery() as nursery:
            for _ in range(pool):
                nursery.start_soon(work, nursery.cancel_scope)
        for i in sorted(failures):
            self.record_failed(failures[i], batch, i, letters)  # "fail" raises here
        self.send_dead_letters(letters)
        order = range(n) if self.ordered is True else done
        order = [i for i in order if i not in failures] if failures else order
        self._emit(batch, order, results)

    def _groups(self, batch: Batch, failures: dict[int, Exception]) -> Iterator[list[int]]:
        """What the pool's tasks take turns at: one record each, or one key's records."""
        n = len(batch.records)
        if self.ordered != "key" or self.key is None:
            return ([i] for i in range(n))
        by_key: dict[Hashable, list[int]] = {}
        key = self.key
        for i, record in enumerate(batch.records):
            try:
                k = key(record)
            except Exception as exc:
                failures[i] = exc
                continue
            by_key.setdefault(k, []).append(i)
        return iter(list(by_key.values()))

    def _emit(self, batch: Batch, order: range | list[int], results: list[Any]) -> None:
        offsets = batch.offsets
        in_order = isinstance(order, range)
        if self.kind == "map":
            out = results if in_order else [results[i] for i in order]
            marks = offsets if in_order or not len(offsets) else [offsets[i] for i in order]
            self.emit_batch(Batch(out, marks))
        elif self.kind == "filter":
            records = batch.records
            picked = order if not in_order else range(len(records))
            flags = [results[i] for i in picked]
            kept = list(compress((records[i] for i in picked), flags))
            self.rows_filtered += len(flags) - len(kept)
            marks = list(compress((offsets[i] for i in picked), flags)) if len(offsets) else ()
            if kept:
                self.emit_batch(Batch(kept, marks))
        else:
            self.emit(list(chain.from_iterable(results[i] for i in order)))
