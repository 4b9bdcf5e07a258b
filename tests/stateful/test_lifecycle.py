"""The actor lifecycle against a model of the transition table, as a state machine.

Drives a real :class:`runtime.Actor`: lifecycle transitions (as the supervisor
makes them), ``pause()`` / ``resume()``, and tasks waiting for states with
``wait_state``.  The model is the table written out again by hand.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import pytest
import trio
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from partita.runtime import Actor, ActorState, InvalidTransition, Lifecycle
from partita.runtime._actor import cell_of

from ._trio_machine import TrioPortal, expect_raises, machine_settings, run_machine

S = ActorState

# The model: the design's table, written out independently of runtime.TRANSITIONS.
MODEL: dict[ActorState, set[ActorState]] = {
    S.CREATED: {S.RUNNING, S.FAILED, S.CANCELLED},
    S.RUNNING: {S.PAUSED, S.DRAINING, S.FAILED, S.CANCELLED},
    S.PAUSED: {S.RUNNING, S.DRAINING, S.FAILED, S.CANCELLED},
    S.DRAINING: {S.COMPLETED, S.FAILED, S.CANCELLED},
    S.COMPLETED: set(),
    S.FAILED: {S.CREATED},
    S.CANCELLED: {S.CREATED},
}
ENDED = {S.COMPLETED, S.FAILED, S.CANCELLED}


@attrs.define(eq=False)
class Waiter:
    states: frozenset[ActorState]
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    result: ActorState | None = None


class LifecycleMachine(RuleBasedStateMachine):
    lifecycle: ClassVar[type[Lifecycle]] = Lifecycle

    def __init__(self, portal: TrioPortal) -> None:
        super().__init__()
        self.portal = portal
        self.actor = Actor("worker")
        cell_of(self.actor).life = self.lifecycle("worker")
        self.state = S.CREATED
        self.paused = False
        self.waiters: list[Waiter] = []
        self.expected: list[ActorState | None] = []

    def _moved(self, target: ActorState) -> None:
        self.state = target
        for i, waiter in enumerate(self.waiters):
            if self.expected[i] is None and target in waiter.states:
                self.expected[i] = target

    # ---------------------------------------------------------------- rules
    @rule(goal=st.sampled_from(ActorState))
    def transition(self, goal: ActorState) -> None:
        if goal in MODEL[self.state]:
            self.portal.call(lambda: cell_of(self.actor).life.transition(goal))
            self._moved(goal)
        else:
            error = expect_raises(
                InvalidTransition,
                lambda: self.portal.call(lambda: cell_of(self.actor).life.transition(goal)),
            )
            assert str(error) == (
                f"actor 'worker': illegal transition {self.state.name} -> {goal.name}"
            )

    @precondition(lambda self: bool(MODEL[self.state]))
    @rule(data=st.data())
    def legal_transition(self, data: st.DataObject) -> None:
        target = data.draw(st.sampled_from(sorted(MODEL[self.state], key=lambda s: s.value)))
        self.portal.call(lambda: cell_of(self.actor).life.transition(target))
        self._moved(target)

    @rule()
    def pause(self) -> None:
        if self.state in ENDED:
            error = expect_raises(InvalidTransition, lambda: self.portal.call(self.actor.pause))
            assert str(error) == f"actor 'worker': illegal transition {self.state.name} -> PAUSED"
            return
        self.portal.call(self.actor.pause)
        self.paused = True
        if self.state is S.RUNNING:
            self._moved(S.PAUSED)

    @rule()
    def resume(self) -> None:
        if self.state in ENDED:
            error = expect_raises(InvalidTransition, lambda: self.portal.call(self.actor.resume))
            assert str(error) == f"actor 'worker': illegal transition {self.state.name} -> RUNNING"
            return
        self.portal.call(self.actor.resume)
        self.paused = False
        if self.state is S.PAUSED:
            self._moved(S.RUNNING)

    @precondition(lambda self: len(self.waiters) < 6)
    @rule(states=st.frozensets(st.sampled_from(ActorState), min_size=1, max_size=3))
    def wait_for(self, states: frozenset[ActorState]) -> None:
        waiter = Waiter(states)

        async def wait(task_status: trio.TaskStatus[None]) -> None:
            with waiter.scope:
                task_status.started()
                waiter.result = await self.actor.wait_state(*states)

        self.portal.start(wait)
        self.waiters.append(waiter)
        self.expected.append(self.state if self.state in states else None)

    # ----------------------------------------------------------- invariants
    @invariant()
    def agrees_with_model(self) -> None:
        state, paused, results = self.portal.call(
            lambda: (self.actor.state, self.actor.paused, [w.result for w in self.waiters])
        )
        assert state is self.state
        assert paused == self.paused
        assert results == self.expected

    @invariant()
    def illegal_moves_raise(self) -> None:
        """Probe every edge the model forbids from here: each must raise and change nothing."""

        def probe() -> list[ActorState]:
            allowed = []
            for goal in ActorState:
                if goal in MODEL[self.state]:
                    continue
                try:
                    cell_of(self.actor).life.transition(goal)
                except InvalidTransition:
                    continue
                allowed.append(goal)
            return allowed

        assert self.portal.call(probe) == []

    def teardown(self) -> None:
        def cancel() -> None:
            for waiter in self.waiters:
                waiter.scope.cancel()

        self.portal.call(cancel)


class LeakyLifecycle(Lifecycle):
    """Broken on purpose: lets a COMPLETED actor run again."""

    def transition(self, target: ActorState) -> None:
        if self.state is S.COMPLETED and target is S.RUNNING:
            self.state = target
            return
        super().transition(target)


class LeakyLifecycleMachine(LifecycleMachine):
    lifecycle = LeakyLifecycle


def test_lifecycle_machine() -> None:
    run_machine(LifecycleMachine, settings=machine_settings(steps=40))


def test_lifecycle_machine_catches_a_leaky_table() -> None:
    settings = machine_settings(steps=40, phases=[Phase.generate], database=None)
    with pytest.raises(AssertionError):
        run_machine(LeakyLifecycleMachine, settings=settings)
