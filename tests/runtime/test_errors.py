"""Errors reach the caller of trio.run with the actor's name; their messages are pinned."""

from __future__ import annotations

import re

import attrs
import pytest
import trio

from partita.runtime import (
    Actor,
    ActorFailed,
    ActorState,
    BadRecord,
    Batch,
    ConsumerGone,
    Graph,
    InvalidTransition,
    MemoryLimitExceeded,
    PartitaError,
    RestartIntensityExceeded,
    Sink,
    Source,
    open_supervisor,
    run_graph,
)
from tests.runtime._helpers import chain

S = ActorState


@attrs.define(eq=False)
class Numbers(Source):
    async def produce(self) -> None:
        await self.send_records([{"x": 1}, {"x": 0}, {"x": 2}])


@attrs.define(eq=False)
class Invert(Actor):
    def on_batch(self, batch: Batch) -> None:
        self.emit([{"y": 1 / r["x"]} for r in batch.records])


@attrs.define(eq=False)
class Strict(Actor):
    def on_batch(self, batch: Batch) -> None:
        for i, record in enumerate(batch.records):
            if record["x"] == 0:
                raise BadRecord("x is zero", offset=batch.offset_of(i), stage="strict")


def graph(middle: Actor) -> Graph:
    return chain(Numbers("numbers"), middle, Sink("sink"))


def test_an_actor_error_reaches_the_caller_of_trio_run() -> None:
    g = graph(Invert("invert"))
    message = "actor 'invert' failed: ZeroDivisionError: division by zero"
    with pytest.raises(ActorFailed, match=f"^{re.escape(message)}$") as info:
        trio.run(run_graph, g)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert info.value.actor == "invert"
    source, invert, sink = (a.state for a in g)
    assert source in (S.COMPLETED, S.CANCELLED)  # it may have finished its one batch
    assert (invert, sink) == (S.FAILED, S.CANCELLED)


async def test_the_offset_of_a_bad_record_is_named() -> None:
    g = graph(Strict("strict"))
    message = "actor 'strict' failed: bad record at record offset 1: x is zero"
    with pytest.raises(ActorFailed, match=f"^{re.escape(message)}$") as info:
        await run_graph(g)
    assert info.value.offset == 1


async def test_the_supervisor_reports_failed() -> None:
    g = graph(Invert("invert"))
    with pytest.raises(ActorFailed):
        async with open_supervisor(g) as sup:
            pass
    assert sup.state is S.FAILED
    assert sup.stats().state is S.FAILED


def test_error_messages() -> None:
    assert str(InvalidTransition("a", "RUNNING", "COMPLETED")) == (
        "actor 'a': illegal transition RUNNING -> COMPLETED"
    )
    assert str(MemoryLimitExceeded("sink", 10, 90, 95)) == (
        "actor 'sink': buffering 10 more bytes would exceed max_memory (90 of 95 bytes in use)"
    )
    assert str(ActorFailed("p-3", ZeroDivisionError("division by zero"), 1042)) == (
        "actor 'p-3' failed: ZeroDivisionError at record offset 1042: division by zero"
    )
    assert str(RestartIntensityExceeded("p", ValueError("bad"), 3, 5.0)) == (
        "actor 'p' failed 4 times within 5s, more than its restart intensity allows; "
        "last error: ValueError: bad"
    )
    assert str(BadRecord("no field 'ts'")) == "bad record: no field 'ts'"
    assert str(BadRecord("no field 'ts'", 7, "source")) == (
        "source: bad record at record offset 7: no field 'ts'"
    )
    assert str(ConsumerGone("sink")) == "the consumer of actor 'sink' went away"
    for error in (InvalidTransition, MemoryLimitExceeded, ActorFailed, BadRecord, ConsumerGone):
        assert issubclass(error, PartitaError)
    assert issubclass(RestartIntensityExceeded, ActorFailed)
