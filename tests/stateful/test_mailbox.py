"""The mailbox against a model: a FIFO deque, the tasks blocked on it, and its accounting.

Senders and receivers that block run as trio tasks, so the machine also covers
a sender parked on a full mailbox being let in by a receive, receivers parked
on an empty one being handed a message, and either being cancelled.  Variants
run the mailbox under a :class:`runtime.MemoryBudget`: senders parked on it
are let in in the order they came (reserving their bytes in that order), and
no ``send_nowait`` overtakes a parked sender.
"""

from __future__ import annotations

import math
from collections import deque
from typing import ClassVar, Literal

import attrs
import pytest
import trio
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from partita.runtime import Batch, Mailbox, MemoryBudget, MemoryLimitExceeded, Message, Watermark
from partita.runtime import estimate_nbytes as nbytes_of

from ._trio_machine import TrioPortal, expect_raises, machine_settings, run_machine

CAPACITY = 3
PADS = (0, 40, 400, 4000)  # bytes of padding per record: messages of very different sizes


@attrs.define(eq=False)
class Sender:
    """A ``send`` running in a task."""

    port: int
    message: Message
    nbytes: int
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    reserved: bool = False  # the model's view: its bytes count while it is parked
    done: bool = False  # the model's view
    failed: bool = False  # the model's view
    finished: bool = False  # set by the task
    error: BaseException | None = None  # set by the task


@attrs.define(eq=False)
class Receiver:
    """A ``receive`` running in a task."""

    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    expected: tuple[int, Message] | None = None  # the model's view
    got: tuple[int, Message] | None = None  # set by the task


def percentile(samples: list[int], q: float) -> int:
    """Nearest-rank percentile: the reference for the occupancy histogram."""
    if not samples:
        return 0
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class MailboxMachine(RuleBasedStateMachine):
    mailbox: ClassVar[type[Mailbox]] = Mailbox
    policy: ClassVar[Literal["fail", "wait"] | None] = None
    max_bytes: ClassVar[int] = 6000

    def __init__(self, portal: TrioPortal) -> None:
        super().__init__()
        self.portal = portal
        self.budget = (
            None if self.policy is None else MemoryBudget(self.max_bytes, policy=self.policy)
        )
        # Sizes are taken once, by the model: an estimate counts shared objects by their
        # share, which can move by a byte as other objects come and go.
        self.sizes: dict[int, int] = {}
        self.messages: list[Message] = []  # (kept alive: ids stay unique)
        self.box = self.mailbox("box", CAPACITY, budget=self.budget, estimate=self._size_of)
        self.seq = 0
        # The model.
        self.buffer: deque[tuple[int, Message, int]] = deque()
        # Parked senders in arrival order: those that reserved their bytes (waiting for a
        # slot) first, then those waiting for memory room (nothing reserved).
        self.parked: deque[Sender] = deque()
        self.receivers: deque[Receiver] = deque()
        self.senders: list[Sender] = []
        self.all_receivers: list[Receiver] = []
        self.taken: list[tuple[int, Message]] = []  # everything received, in order
        self.sent = 0
        self.samples: list[int] = []

    # ---------------------------------------------------------------- model
    def _size_of(self, message: Message) -> int:
        return self.sizes[id(message)]

    def _message(self, pad: int, size: int) -> Message:
        self.seq += 1
        message: Message
        if size == 0:
            message = Watermark(self.seq)
        else:
            message = Batch.from_records([{"seq": self.seq, "pad": "x" * pad} for _ in range(size)])
        self.sizes[id(message)] = nbytes_of(message)
        self.messages.append(message)
        return message

    @property
    def reserved(self) -> int:
        return sum(n for _, _, n in self.buffer) + sum(s.nbytes for s in self.parked if s.reserved)

    def _budget_verdict(self, nbytes: int) -> str:
        """'ok', 'fail' (MemoryLimitExceeded) or 'wait' under the budget."""
        if self.budget is None:
            return "ok"
        share = self.max_bytes
        if self.reserved + nbytes <= share:
            return "ok"
        if nbytes > share or self.policy == "fail":
            return "fail"
        return "wait"

    def _enter(self, port: int, message: Message, nbytes: int) -> None:
        """A message enters the channel: straight to a parked receiver, or the buffer."""
        self.sent += 1
        if self.receivers:
            receiver = self.receivers.popleft()
            receiver.expected = (port, message)
            self.taken.append((port, message))
        else:
            self.buffer.append((port, message, nbytes))
        self.samples.append(len(self.buffer))

    def _waiting_for_memory(self) -> bool:
        """Whether some parked sender waits for memory room (it is then the last)."""
        return bool(self.parked) and not self.parked[-1].reserved

    def _slot_free(self) -> bool:
        return bool(self.receivers) or len(self.buffer) < CAPACITY

    def _room_made(self) -> None:
        """Bytes or a slot were freed: parked senders go in, in order, while they can."""
        index = 0
        while index < len(self.parked):
            sender = self.parked[index]
            if not sender.reserved:
                verdict = self._budget_verdict(sender.nbytes)
                if verdict == "fail":  # larger than a share: it can never go in
                    del self.parked[index]
                    sender.failed = True
                    continue
                if verdict == "wait":
                    return
                sender.reserved = True
            if index == 0 and self._slot_free():
                self.parked.popleft()
                sender.done = True
                self._enter(sender.port, sender.message, sender.nbytes)
                continue
            index += 1

    def _take(self) -> tuple[int, Message]:
        port, message, _ = self.buffer.popleft()
        self.taken.append((port, message))
        self._room_made()
        return port, message

    # ---------------------------------------------------------------- rules
    @rule(port=st.integers(0, 2), pad=st.sampled_from(PADS), size=st.integers(0, 3))
    def send_nowait(self, port: int, pad: int, size: int) -> None:
        message = self._message(pad, size)
        nbytes = self.sizes[id(message)]
        # Behind a sender waiting for memory room it waits too, whatever its size; the
        # budget's verdict is taken when its turn for memory comes (now, otherwise).
        verdict = "wait" if self._waiting_for_memory() else self._budget_verdict(nbytes)
        if verdict == "fail":
            error = expect_raises(
                MemoryLimitExceeded, lambda: self.portal.call(lambda: self.box.send_nowait(message))
            )
            assert error.actor == "box"
            assert error.requested == nbytes
            return
        if verdict == "wait" or self.parked or not self._slot_free():
            # Past the budget, it still may not overtake a sender parked for a slot.
            expect_raises(
                trio.WouldBlock,
                lambda: self.portal.call(lambda: self.box.send_nowait(message, port)),
            )
            return
        self.portal.call(lambda: self.box.send_nowait(message, port))
        self._enter(port, message, nbytes)

    @precondition(lambda self: len(self.senders) < 12)
    @rule(port=st.integers(0, 2), pad=st.sampled_from(PADS), size=st.integers(0, 3))
    def send(self, port: int, pad: int, size: int) -> None:
        message = self._message(pad, size)
        sender = Sender(port, message, self.sizes[id(message)])

        async def send(task_status: trio.TaskStatus[None]) -> None:
            with sender.scope:
                task_status.started()
                try:
                    await self.box.send(message, port)
                except MemoryLimitExceeded as exc:
                    sender.error = exc
                else:
                    sender.finished = True

        self.portal.start(send)
        self.senders.append(sender)
        if self._waiting_for_memory():
            # Someone ahead waits for memory room: this one waits behind it, unreserved.
            self.parked.append(sender)
            return
        verdict = self._budget_verdict(sender.nbytes)
        if verdict == "fail":
            sender.failed = True
        elif verdict == "ok" and not self.parked and self._slot_free():
            sender.done = True
            self._enter(sender.port, sender.message, sender.nbytes)
        else:
            sender.reserved = verdict == "ok"
            self.parked.append(sender)

    @rule()
    def receive_nowait(self) -> None:
        if not self.buffer:
            expect_raises(trio.WouldBlock, lambda: self.portal.call(self.box.receive_nowait))
            return
        got = self.portal.call(self.box.receive_nowait)
        expected = self._take()
        assert got[0] == expected[0]
        assert got[1] is expected[1]

    @precondition(lambda self: len(self.all_receivers) < 12)
    @rule()
    def receive(self) -> None:
        receiver = Receiver()

        async def receive(task_status: trio.TaskStatus[None]) -> None:
            with receiver.scope:
                task_status.started()
                receiver.got = await self.box.receive()

        self.portal.start(receive)
        self.all_receivers.append(receiver)
        if self.buffer:
            receiver.expected = self._take()
        else:
            self.receivers.append(receiver)

    @precondition(lambda self: bool(self.parked))
    @rule(data=st.data())
    def cancel_sender(self, data: st.DataObject) -> None:
        sender = data.draw(st.sampled_from(list(self.parked)))
        self.portal.call(sender.scope.cancel)
        self.parked.remove(sender)
        self._room_made()

    @precondition(lambda self: bool(self.receivers))
    @rule(data=st.data())
    def cancel_receiver(self, data: st.DataObject) -> None:
        receiver = data.draw(st.sampled_from(list(self.receivers)))
        self.portal.call(receiver.scope.cancel)
        self.receivers.remove(receiver)

    # ----------------------------------------------------------- invariants
    @invariant()
    def accounting_agrees(self) -> None:
        box = self.box
        stats = self.portal.call(box.stats)
        assert stats.capacity == CAPACITY
        assert 0 <= stats.items_buffered == len(self.buffer) <= CAPACITY
        assert 0 <= stats.estimated_memory == self.reserved
        assert stats.sent == self.sent
        assert stats.received == len(self.taken)
        assert 0 <= stats.received <= stats.sent
        assert stats.high_water == max(self.samples, default=0)
        assert stats.occupancy_p50 == percentile(self.samples, 0.5)
        assert stats.occupancy_p99 == percentile(self.samples, 0.99)
        if self.budget is not None:
            assert self.budget.in_use == self.reserved
            assert self.reserved <= self.budget.share
            assert self.budget.under_pressure == (
                self.reserved > self.budget.share * self.budget.soft_fraction
            )

    @invariant()
    def mailbox_checks_itself(self) -> None:
        self.portal.call(self.box.check_invariants)

    @invariant()
    def tasks_agree(self) -> None:
        def outcomes() -> list[tuple[bool, BaseException | None]]:
            return [(sender.finished, sender.error) for sender in self.senders]

        for sender, (finished, error) in zip(self.senders, self.portal.call(outcomes), strict=True):
            assert finished == sender.done
            assert isinstance(error, MemoryLimitExceeded) == sender.failed
        for receiver in self.all_receivers:
            if receiver.expected is None:
                assert receiver.got is None
            else:
                assert receiver.got is not None
                assert receiver.got[0] == receiver.expected[0]
                assert receiver.got[1] is receiver.expected[1]

    @invariant()
    def fifo_nothing_lost_or_duplicated(self) -> None:
        # Everything taken (by tasks or receive_nowait) was taken once.
        ids = [id(m) for _, m in self.taken]
        assert len(ids) == len(set(ids))
        # Per port, messages come out in the order they went in.
        for port in range(3):
            seqs = [self._seq(m) for p, m in self.taken if p == port]
            assert seqs == sorted(seqs)

    @staticmethod
    def _seq(message: Message) -> int:
        if isinstance(message, Watermark):
            return message.ts
        assert isinstance(message, Batch)
        seq: int = message.records[0]["seq"]
        return seq

    def teardown(self) -> None:
        def cancel() -> None:
            for sender in self.senders:
                sender.scope.cancel()
            for receiver in self.all_receivers:
                receiver.scope.cancel()

        self.portal.call(cancel)


class BudgetWaitMachine(MailboxMachine):
    policy = "wait"
    max_bytes = 3000  # two or three mid-sized messages fill it: senders often park on it


class BudgetFailMachine(MailboxMachine):
    policy = "fail"


class LossyMailbox(Mailbox):
    """Broken on purpose: every fourth ``send_nowait`` is counted but never buffered."""

    def send_nowait(self, message: Message, port: int = 0) -> None:
        if self.sent % 4 == 3:
            self._sent()
            return
        super().send_nowait(message, port)


class LossyMailboxMachine(MailboxMachine):
    mailbox = LossyMailbox


class OvertakingMailbox(Mailbox):
    """Broken on purpose: ``send_nowait`` goes in ahead of parked senders when it fits."""

    def send_nowait(self, message: Message, port: int = 0) -> None:
        parked, self._parked = self._parked, deque()
        try:
            super().send_nowait(message, port)
        finally:
            self._parked = parked


class OvertakingMailboxMachine(BudgetWaitMachine):
    mailbox = OvertakingMailbox


def test_mailbox_machine() -> None:
    run_machine(MailboxMachine, settings=machine_settings(steps=40))


def test_mailbox_machine_with_waiting_budget() -> None:
    run_machine(BudgetWaitMachine, settings=machine_settings(share=0.6, steps=40))


def test_mailbox_machine_with_failing_budget() -> None:
    run_machine(BudgetFailMachine, settings=machine_settings(share=0.4, steps=40))


def test_mailbox_machine_catches_a_lossy_mailbox() -> None:
    settings = machine_settings(steps=40, phases=[Phase.generate], database=None)
    with pytest.raises(AssertionError):
        run_machine(LossyMailboxMachine, settings=settings)


def test_mailbox_machine_catches_a_mailbox_that_lets_send_nowait_overtake() -> None:
    settings = machine_settings(steps=40, phases=[Phase.generate], database=None)
    # Caught either way: a send_nowait that went in, or one that raised, where the model
    # says WouldBlock (it may not overtake).
    with pytest.raises((AssertionError, MemoryLimitExceeded)):
        run_machine(OvertakingMailboxMachine, settings=settings)
