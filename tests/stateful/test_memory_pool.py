"""Several mailboxes drawing on one :class:`runtime.MemoryBudget`, against a model.

The mailboxes have slots to spare, so a sender parks only on the pool: the machine
is about room freed in one mailbox letting in senders waiting on another, and the
progress rule (an empty mailbox always takes one message).  The model is exact:
per mailbox the messages buffered and the senders parked, in order, and the order
in which the mailboxes started waiting for room; a release lets the releasing
mailbox's own senders in first, then every waiting mailbox's, in that order.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import pytest
import trio
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from partita.runtime import Batch, Mailbox, MemoryBudget, Message
from partita.runtime import estimate_nbytes as nbytes_of

from ._trio_machine import TrioPortal, expect_raises, machine_settings, run_machine

BOXES = 3
SLOTS = 64  # never the limit here: senders park on the pool only
PADS = (0, 400, 1500, 4000)
MAX_BYTES = 9000


@attrs.define(eq=False)
class Sender:
    box: int
    batch: Batch
    nbytes: int
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done: bool = False  # the model's view
    finished: bool = False  # set by the task


class PoolMachine(RuleBasedStateMachine):
    budget_type: ClassVar[type[MemoryBudget]] = MemoryBudget

    def __init__(self, portal: TrioPortal) -> None:
        super().__init__()
        self.portal = portal
        self.budget = self.budget_type(MAX_BYTES, policy="wait")
        # Sizes are taken once, by the model: an estimate counts shared objects by their
        # share, which moves by a byte as other objects come and go.
        self.sizes: dict[int, int] = {}
        self.boxes = [
            Mailbox(f"box{i}", SLOTS, budget=self.budget, estimate=self._size_of)
            for i in range(BOXES)
        ]
        self.seq = 0
        # The model.
        self.buffers: list[list[tuple[Batch, int]]] = [[] for _ in range(BOXES)]
        self.parked: list[list[Sender]] = [[] for _ in range(BOXES)]
        self.waiting_order: list[int] = []  # mailboxes with a parked sender, by first wait
        self.senders: list[Sender] = []
        self.largest = 0
        self.batches: list[Batch] = []

    # ---------------------------------------------------------------- model
    def _size_of(self, message: Message) -> int:
        return self.sizes[id(message)]

    def _batch(self, pad: int) -> Batch:
        self.seq += 1
        batch = Batch.from_records([{"seq": self.seq, "pad": "x" * pad}])
        self.sizes[id(batch)] = nbytes_of(batch)
        self.batches.append(batch)  # (kept alive: ids stay unique)
        return batch

    def _held(self, box: int) -> int:
        return sum(n for _, n in self.buffers[box])

    @property
    def in_use(self) -> int:
        return sum(self._held(box) for box in range(BOXES))

    def _fits(self, box: int, nbytes: int) -> bool:
        return self._held(box) == 0 or self.in_use + nbytes <= MAX_BYTES

    def _admit(self, box: int) -> None:
        parked = self.parked[box]
        while parked and self._fits(box, parked[0].nbytes):
            sender = parked.pop(0)
            sender.done = True
            self.buffers[box].append((sender.batch, sender.nbytes))
        if not parked and box in self.waiting_order:
            self.waiting_order.remove(box)

    def _room_made(self, box: int) -> None:
        self._admit(box)
        for other in list(self.waiting_order):
            self._admit(other)

    def _park(self, sender: Sender) -> None:
        self.parked[sender.box].append(sender)
        if sender.box not in self.waiting_order:
            self.waiting_order.append(sender.box)

    # ---------------------------------------------------------------- rules
    @precondition(lambda self: len(self.senders) < 16)
    @rule(box=st.integers(0, BOXES - 1), pad=st.sampled_from(PADS))
    def send(self, box: int, pad: int) -> None:
        batch = self._batch(pad)
        sender = Sender(box, batch, self.sizes[id(batch)])
        self.largest = max(self.largest, sender.nbytes)
        mailbox = self.boxes[box]

        async def send(task_status: trio.TaskStatus[None]) -> None:
            with sender.scope:
                task_status.started()
                await mailbox.send(batch)
                sender.finished = True

        self.portal.start(send)
        self.senders.append(sender)
        if not self.parked[box] and self._fits(box, sender.nbytes):
            sender.done = True
            self.buffers[box].append((batch, sender.nbytes))
        else:
            self._park(sender)

    @rule(box=st.integers(0, BOXES - 1), pad=st.sampled_from(PADS))
    def send_nowait(self, box: int, pad: int) -> None:
        batch = self._batch(pad)
        nbytes = self.sizes[id(batch)]
        mailbox = self.boxes[box]
        if self.parked[box] or not self._fits(box, nbytes):
            expect_raises(
                trio.WouldBlock, lambda: self.portal.call(lambda: mailbox.send_nowait(batch))
            )
            return
        try:
            self.portal.call(lambda: mailbox.send_nowait(batch))
        except trio.WouldBlock:
            raise AssertionError(f"box{box} refused a message it has room for") from None
        self.largest = max(self.largest, nbytes)
        self.buffers[box].append((batch, nbytes))

    @rule(box=st.integers(0, BOXES - 1))
    def receive_nowait(self, box: int) -> None:
        mailbox = self.boxes[box]
        if not self.buffers[box]:
            expect_raises(trio.WouldBlock, lambda: self.portal.call(mailbox.receive_nowait))
            return
        _, got = self.portal.call(mailbox.receive_nowait)
        expected, _ = self.buffers[box].pop(0)
        assert got is expected
        self._room_made(box)

    @precondition(lambda self: any(self.parked))
    @rule(data=st.data())
    def cancel_sender(self, data: st.DataObject) -> None:
        sender = data.draw(st.sampled_from([s for parked in self.parked for s in parked]))
        self.portal.call(sender.scope.cancel)
        parked = self.parked[sender.box]
        first = parked[0] is sender
        parked.remove(sender)
        if not parked:
            self.waiting_order.remove(sender.box)
        elif first:  # the next one in that mailbox may fit where the cancelled one did not
            self._admit(sender.box)

    # ----------------------------------------------------------- invariants
    @invariant()
    def accounting_agrees(self) -> None:
        held = self.portal.call(lambda: [box.nbytes for box in self.boxes])
        assert held == [self._held(box) for box in range(BOXES)]
        assert self.budget.in_use == sum(held)
        # past the pool by at most one message per mailbox (the progress rule)
        assert self.budget.in_use <= MAX_BYTES + BOXES * self.largest

    @invariant()
    def mailboxes_check_themselves(self) -> None:
        for box in self.boxes:
            self.portal.call(box.check_invariants)  # no waiting sender could go in now

    @invariant()
    def an_empty_mailbox_has_no_waiting_sender(self) -> None:
        for box in range(BOXES):
            if self._held(box) == 0:
                assert not self.parked[box]

    @invariant()
    def tasks_agree(self) -> None:
        finished = self.portal.call(lambda: [sender.finished for sender in self.senders])
        assert finished == [sender.done for sender in self.senders]

    def teardown(self) -> None:
        def cancel() -> None:
            for sender in self.senders:
                sender.scope.cancel()

        self.portal.call(cancel)


class IsolatedBudget(MemoryBudget):
    """Broken on purpose: room freed in one mailbox never reaches another's senders."""

    def room_freed(self) -> None:
        pass


class IsolatedPoolMachine(PoolMachine):
    budget_type = IsolatedBudget


class StallingBudget(MemoryBudget):
    """Broken on purpose: no progress rule (an empty mailbox waits for room too)."""

    def fits(self, held: int, nbytes: int) -> bool:
        return self.in_use + nbytes <= self.max_bytes


class StallingPoolMachine(PoolMachine):
    budget_type = StallingBudget


def test_pool_machine() -> None:
    run_machine(PoolMachine, settings=machine_settings(share=0.6, steps=40))


@pytest.mark.parametrize("machine", [IsolatedPoolMachine, StallingPoolMachine])
def test_pool_machine_catches_a_broken_budget(machine: type[PoolMachine]) -> None:
    settings = machine_settings(steps=40, phases=[Phase.generate], database=None)
    with pytest.raises(AssertionError):
        run_machine(machine, settings=settings)
