"""The mailbox and memory accounting, unit by unit (the state machine is in tests/stateful)."""

from __future__ import annotations

import re

import pytest
import trio
import trio.testing

from partita.runtime import (
    Barrier,
    Batch,
    EndOfStream,
    Mailbox,
    MemoryBudget,
    MemoryLimitExceeded,
    Watermark,
    estimate_nbytes,
)


def test_capacity_is_validated() -> None:
    with pytest.raises(ValueError, match=r"^mailbox capacity must be >= 1, got 0$"):
        Mailbox("a", 0)


async def test_send_nowait_raises_would_block_when_full() -> None:
    box = Mailbox("a", 2)
    box.send_nowait(Watermark(1))
    box.send_nowait(Watermark(2), port=1)
    with pytest.raises(trio.WouldBlock):
        box.send_nowait(Watermark(3))
    assert box.items == 2
    assert box.receive_nowait() == (0, Watermark(1))
    assert await box.receive() == (1, Watermark(2))
    with pytest.raises(trio.WouldBlock):
        box.receive_nowait()
    assert (box.sent, box.received, box.nbytes, box.high_water) == (2, 2, 0, 2)


async def test_a_blocked_send_is_backpressure_and_cancelling_it_sends_nothing() -> None:
    box = Mailbox("a", 1)
    await box.send(Watermark(1))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.send, Watermark(2))
        await trio.testing.wait_all_tasks_blocked()
        # The blocked sender's bytes are reserved: it counts against memory already.
        assert box.nbytes == 2 * estimate_nbytes(Watermark(1))
        assert (box.items, box.sent) == (1, 0 + 1)
        nursery.cancel_scope.cancel()
    assert box.items == 1
    assert box.nbytes == estimate_nbytes(Watermark(1))
    assert box.sent == 1
    assert box.receive_nowait() == (0, Watermark(1))


async def test_closing_breaks_senders() -> None:
    box = Mailbox("a", 1)
    box.close()
    with pytest.raises(trio.BrokenResourceError):
        await box.send(Watermark(1))
    assert box.nbytes == 0


def test_estimate_nbytes() -> None:
    for message in (Watermark(1), Barrier(2), EndOfStream(), Batch([])):
        assert estimate_nbytes(message) == 64
    small = estimate_nbytes(Batch.from_records([{"a": 1}] * 10))
    big = estimate_nbytes(Batch.from_records([{"a": "x" * 1000}] * 10))
    assert 10 * 64 < small < big
    assert estimate_nbytes(Batch.from_records([{"a": 1}] * 1000)) > 50 * small


async def test_mailboxes_share_one_pool_and_track_its_pressure() -> None:
    # issue 14 item 3: one pool for the graph, not an even split per mailbox
    budget = MemoryBudget(1000, soft_fraction=0.5, policy="fail")
    a = Mailbox("a", 20, budget=budget)
    b = Mailbox("b", 20, budget=budget)
    c = Mailbox("c", 20, budget=budget)
    assert budget.share == 333  # what sources size batches by, not a mailbox's limit
    for ts in range(7):
        a.send_nowait(Watermark(ts))  # 64 bytes each
    assert budget.in_use == 448 and not budget.under_pressure
    a.send_nowait(Watermark(7))
    assert budget.in_use == 512 and budget.under_pressure  # past half of the pool
    b.send_nowait(Watermark(0))
    for ts in range(8, 14):
        a.send_nowait(Watermark(ts))  # a holds 832 bytes: far past a third of the pool
    assert budget.in_use == 960
    message = (
        "actor 'b': buffering 64 more bytes would exceed max_memory (960 of 1000 bytes in use)"
    )
    with pytest.raises(MemoryLimitExceeded, match=f"^{re.escape(message)}$"):
        b.send_nowait(Watermark(1))
    # an empty mailbox always takes one message, so the graph can always go on
    c.send_nowait(Watermark(0))
    assert budget.in_use == 1024
    with pytest.raises(MemoryLimitExceeded):
        c.send_nowait(Watermark(1))
    a.receive_nowait()
    a.receive_nowait()
    b.send_nowait(Watermark(1))  # room freed by a
    for box in (a, b, c):
        while box.items:
            box.receive_nowait()
    assert budget.in_use == 0 and not budget.under_pressure
    with trio.fail_after(1):
        await budget.wait_relieved()


async def test_room_freed_by_one_mailbox_lets_in_a_sender_waiting_on_another() -> None:
    one = estimate_nbytes(padded(0, 3000))
    budget = MemoryBudget(2 * one + one // 2, policy="wait")
    a = Mailbox("a", 10, budget=budget)
    b = Mailbox("b", 10, budget=budget)
    a.send_nowait(padded(1, 3000))
    b.send_nowait(padded(2, 3000))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(b.send, waiting := padded(3, 3000))
        await trio.testing.wait_all_tasks_blocked()
        assert b.sent == 1  # the pool has no room for a third
        b.check_invariants()
        a.receive_nowait()  # a frees room: b's sender goes in
        await trio.testing.wait_all_tasks_blocked()
        assert b.sent == 2
    assert [b.receive_nowait()[1].records[0]["seq"] for _ in range(2)] == [2, 3]
    assert waiting is not None and budget.in_use == 0


async def test_an_empty_mailbox_takes_a_message_though_the_pool_is_full() -> None:
    # the progress rule: an operator must be able to pass a batch on while its own full
    # mailbox holds the pool, or the graph would stop
    one = estimate_nbytes(padded(0, 3000))
    budget = MemoryBudget(one, policy="wait")
    a = Mailbox("a", 10, budget=budget)
    b = Mailbox("b", 10, budget=budget)
    a.send_nowait(padded(1, 3000))
    with trio.fail_after(1):
        await b.send(padded(2, 3000))
    assert budget.in_use == 2 * one
    with pytest.raises(trio.WouldBlock):
        b.send_nowait(padded(3, 3000))


def padded(seq: int, pad: int) -> Batch:
    return Batch.from_records([{"seq": seq, "pad": "x" * pad}])


async def test_send_nowait_does_not_overtake_a_send_parked_on_the_budget() -> None:
    small, big = padded(1, 0), padded(2, 3000)
    budget = MemoryBudget(estimate_nbytes(big) + estimate_nbytes(small) // 2, policy="wait")
    box = Mailbox("a", 10, budget=budget)
    box.send_nowait(small)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.send, big)  # does not fit next to `small`: parks
        await trio.testing.wait_all_tasks_blocked()
        assert box.sent == 1
        # A later message would fit, but an earlier sender is parked: it waits its turn.
        with pytest.raises(trio.WouldBlock):
            box.send_nowait(padded(3, 0))
        assert box.receive_nowait()[1] is small
        await trio.testing.wait_all_tasks_blocked()
        assert box.sent == 2
    assert box.receive_nowait()[1] is big
    box.send_nowait(third := padded(3, 0))
    assert box.receive_nowait()[1] is third
    box.check_invariants()


async def test_parked_senders_are_let_in_in_the_order_they_came() -> None:
    first = padded(1, 3000)
    one = estimate_nbytes(first)
    budget = MemoryBudget(one + one // 2, policy="wait")
    box = Mailbox("a", 10, budget=budget)
    box.send_nowait(first)
    order = [padded(seq, 3000 if seq % 2 else 0) for seq in range(2, 8)]
    async with trio.open_nursery() as nursery:
        for message in order:
            nursery.start_soon(box.send, message)
            await trio.testing.wait_all_tasks_blocked()  # they park in this order
        got = [box.receive_nowait()[1]]
        while len(got) < 7:
            await trio.testing.wait_all_tasks_blocked()
            got.append(box.receive_nowait()[1])
            box.check_invariants()
    assert got == [first, *order]
    assert box.nbytes == 0 and budget.in_use == 0


async def test_a_cancelled_parked_sender_lets_the_next_one_in() -> None:
    small, big = padded(1, 0), padded(2, 3000)
    budget = MemoryBudget(estimate_nbytes(big) + estimate_nbytes(small) // 2, policy="wait")
    box = Mailbox("a", 10, budget=budget)
    box.send_nowait(small)
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()
        nursery.start_soon(_send_in, scope, box, big)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(box.send, after := padded(3, 0))
        await trio.testing.wait_all_tasks_blocked()
        assert box.sent == 1  # `after` waits behind the parked `big`
        scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert box.sent == 2  # `big` gave up its place; `after` fits now
    assert [box.receive_nowait()[1] for _ in range(2)] == [small, after]
    box.check_invariants()


async def _send_in(scope: trio.CancelScope, box: Mailbox, message: Batch) -> None:
    with scope:
        await box.send(message)


async def test_closing_breaks_parked_senders_and_releases_their_bytes() -> None:
    box = Mailbox("a", 1)
    box.send_nowait(Watermark(1))
    errors: list[BaseException] = []

    async def send() -> None:
        try:
            await box.send(Watermark(2))
        except trio.BrokenResourceError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        await trio.testing.wait_all_tasks_blocked()
        assert box.nbytes == 2 * estimate_nbytes(Watermark(1))
        box.close()
    assert len(errors) == 1
    assert box.nbytes == estimate_nbytes(Watermark(1))
    assert box.sent == 1
