"""The lifecycle table and waiting for states (the state machine is in tests/stateful)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from partita.runtime import TRANSITIONS, ActorState, InvalidTransition, Lifecycle

S = ActorState


def test_the_table_is_the_designed_one() -> None:
    assert {
        S.CREATED: {S.RUNNING, S.FAILED, S.CANCELLED},
        S.RUNNING: {S.PAUSED, S.DRAINING, S.FAILED, S.CANCELLED},
        S.PAUSED: {S.RUNNING, S.DRAINING, S.FAILED, S.CANCELLED},
        S.DRAINING: {S.COMPLETED, S.FAILED, S.CANCELLED},
        S.COMPLETED: set(),
        S.FAILED: {S.CREATED},
        S.CANCELLED: {S.CREATED},
    } == TRANSITIONS


def test_an_illegal_transition_raises_and_changes_nothing() -> None:
    life = Lifecycle("worker")
    with pytest.raises(
        InvalidTransition, match=r"^actor 'worker': illegal transition CREATED -> COMPLETED$"
    ):
        life.transition(S.COMPLETED)
    assert life.state is S.CREATED
    for state in (S.RUNNING, S.DRAINING, S.COMPLETED):
        life.transition(state)
    with pytest.raises(InvalidTransition) as info:
        life.transition(S.CREATED)
    assert (info.value.actor, info.value.current, info.value.target) == (
        "worker",
        "COMPLETED",
        "CREATED",
    )


async def test_waiting_is_lazy_and_wakes_on_the_state() -> None:
    life = Lifecycle("worker")
    assert await life.wait_state(S.CREATED) is S.CREATED
    assert life._value is None  # nothing allocated while nobody had to wait
    got: list[ActorState] = []
    async with trio.open_nursery() as nursery:

        async def wait() -> None:
            got.append(await life.wait_state(S.PAUSED, S.COMPLETED))

        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        assert life._value is not None
        life.transition(S.RUNNING)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        life.transition(S.PAUSED)
    assert got == [S.PAUSED]
