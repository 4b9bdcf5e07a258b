"""An actor's least watermark over several inputs, with idle and ended inputs.

Rules send a watermark, an :class:`runtime.Idle` or the end of stream on any of three
inputs of a running actor; the model knows each input's state (no watermark yet, its
watermark, idle, ended), so the invariant knows what the actor must have been told:
the least watermark of the inputs neither idle nor ended, once each of those has
one, never going back.  A broken twin whose idle inputs still hold the others back
(the kernel before idle inputs) is caught.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import pytest
import trio
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from partita.runtime import Actor, EndOfStream, Idle, Mailbox, Watermark
from partita.runtime._actor import cell_of
from partita.runtime._cell import ActorCell

from ._trio_machine import TrioPortal, machine_settings, run_machine

INPUTS = 3


@attrs.define(eq=False)
class Recorder(Actor):
    watermarks: list[int] = attrs.field(init=False, factory=list)

    def on_watermark(self, ts: int) -> None:
        self.watermarks.append(ts)


class StubbornCell(ActorCell):
    """Broken on purpose: an idle input is still waited for."""

    def _input_idle(self, port: int) -> None:
        pass


@attrs.define(eq=False)
class StubbornRecorder(Recorder):
    _cell_type: ClassVar[type[ActorCell]] = StubbornCell


class WatermarkInputsMachine(RuleBasedStateMachine):
    actor_type: ClassVar[type[Recorder]] = Recorder

    def __init__(self, portal: TrioPortal) -> None:
        super().__init__()
        self.portal = portal
        self.actor = self.actor_type("joined")
        self.box = Mailbox("joined", capacity=1000)
        cell_of(self.actor).wire_input(self.box, INPUTS)
        self.done = trio.Event()

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            await cell_of(self.actor).run()
            self.done.set()

        portal.start(run)
        self.state: dict[int, int | str | None] = dict.fromkeys(range(INPUTS))
        self.expected: int | None = None

    def _send(self, port: int, message: object) -> None:
        self.portal.call(lambda: self.box.send_nowait(message, port))  # type: ignore[arg-type]
        live = [s for s in self.state.values() if s not in ("idle", "ended")]
        if live and all(isinstance(s, int) for s in live):
            low = min(s for s in live if isinstance(s, int))
            if self.expected is None or low > self.expected:
                self.expected = low

    def _open(self, port: int) -> bool:
        return self.state[port] != "ended"

    @rule(port=st.integers(0, INPUTS - 1), ts=st.integers(0, 30))
    def watermark(self, port: int, ts: int) -> None:
        if not self._open(port):
            return
        before = self.state[port]
        self.state[port] = max(ts, before) if isinstance(before, int) else ts
        self._send(port, Watermark(ts))

    @rule(port=st.integers(0, INPUTS - 1))
    def idle(self, port: int) -> None:
        if not self._open(port):
            return
        self.state[port] = "idle"
        self._send(port, Idle())

    @precondition(lambda self: sum(s != "ended" for s in self.state.values()) > 1)
    @rule(port=st.integers(0, INPUTS - 1))
    def end(self, port: int) -> None:
        if not self._open(port):
            return
        self.state[port] = "ended"
        self._send(port, EndOfStream())

    @invariant()
    def told_the_least_watermark_of_the_live_inputs(self) -> None:
        seen = self.actor.watermarks
        assert seen == sorted(set(seen))  # strictly increasing
        assert (seen[-1] if seen else None) == self.expected

    def teardown(self) -> None:
        for port in range(INPUTS):
            if self._open(port):
                self.state[port] = "ended"
                self.portal.call(
                    lambda p=port: self.box.send_nowait(EndOfStream(), p)  # type: ignore[misc]
                )
        assert self.done.is_set()


class StubbornMachine(WatermarkInputsMachine):
    actor_type = StubbornRecorder


def test_watermark_inputs_machine() -> None:
    run_machine(WatermarkInputsMachine, settings=machine_settings(steps=30))


def test_the_machine_catches_idle_inputs_that_still_hold_back() -> None:
    settings = machine_settings(steps=30, phases=[Phase.generate], database=None)
    with pytest.raises(AssertionError):
        run_machine(StubbornMachine, settings=settings)
