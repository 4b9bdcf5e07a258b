"""The actor lifecycle: a checked state machine held in one enum attribute.

::

    CREATED ──> RUNNING <══> PAUSED
                   │            │
                   └──> DRAINING <┘ ──> COMPLETED

    FAILED / CANCELLED from CREATED, RUNNING, PAUSED or DRAINING;
    a supervisor restart takes FAILED or CANCELLED back to CREATED.

Waiting for a state needs a trio-util ``AsyncValue``; it is created only the
first time somebody waits, so the hot path reads one attribute and nothing else.
"""

from __future__ import annotations

import enum
from typing import Any

from ._errors import InvalidTransition

__all__ = ["LIVE_STATES", "TRANSITIONS", "ActorState", "Lifecycle"]


class ActorState(enum.Enum):
    """Where an actor is in its life."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    DRAINING = "draining"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.name


_S = ActorState

LIVE_STATES = frozenset({_S.RUNNING, _S.PAUSED, _S.DRAINING})

TRANSITIONS: dict[ActorState, frozenset[ActorState]] = {
    _S.CREATED: frozenset({_S.RUNNING, _S.FAILED, _S.CANCELLED}),
    _S.RUNNING: frozenset({_S.PAUSED, _S.DRAINING, _S.FAILED, _S.CANCELLED}),
    _S.PAUSED: frozenset({_S.RUNNING, _S.DRAINING, _S.FAILED, _S.CANCELLED}),
    _S.DRAINING: frozenset({_S.COMPLETED, _S.FAILED, _S.CANCELLED}),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset({_S.CREATED}),
    _S.CANCELLED: frozenset({_S.CREATED}),
}
"""Every legal transition; anything else raises :class:`InvalidTransition`."""


class Lifecycle:
    """The state of one actor.

    Example:
        >>> life = Lifecycle("worker")
        >>> life.transition(ActorState.RUNNING)
        >>> life.state
        <ActorState.RUNNING: 'running'>
        >>> life.transition(ActorState.COMPLETED)
        Traceback (most recent call last):
        ...
        runtime._errors.InvalidTransition: actor 'worker': illegal transition RUNNING -> COMPLETED
    """

    __slots__ = ("_name", "_value", "state")

    def __init__(self, name: str) -> None:
        self._name = name
        self.state = ActorState.CREATED
        self._value: Any = None  # trio_util.AsyncValue, created on first wait

    def transition(self, target: ActorState) -> None:
        """Move to ``target``; raise :class:`InvalidTransition` if that is not an edge."""
        if target not in TRANSITIONS[self.state]:
            raise InvalidTransition(self._name, str(self.state), str(target))
        self.state = target
        if self._value is not None:
            self._value.value = target

    async def wait_state(self, *states: ActorState) -> ActorState:
        """Wait until the state is one of ``states``; return it."""
        if self.state in states:
            return self.state
        if self._value is None:
            from trio_util import AsyncValue

            self._value = AsyncValue(self.state)
        await self._value.wait_value(lambda s: s in states)
        return self.state
