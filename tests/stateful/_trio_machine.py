"""Plumbing shared by the kernel's state machines: Hypothesis in a thread, trio in the main one.

``hypothesis-trio`` is dead, so the machines run like this: trio runs in the main
thread under a :class:`trio.testing.MockClock`; ``run_state_machine_as_test``
runs in a worker thread (``trio.to_thread.run_sync``); every rule and invariant
calls into trio through a :class:`TrioPortal`.  A portal call runs under
``fail_after`` on virtual time and ends with ``wait_all_tasks_blocked()``, so
what the machine looks at next is quiescent.

Virtual time only moves inside a portal call: while Hypothesis thinks in its
thread, the clock's autojump is off, so no timer fires behind the machine's back.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio
import trio.testing
from hypothesis import settings as Settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

__all__ = [
    "RULE_TIMEOUT",
    "TrioPortal",
    "expect_raises",
    "live_tasks",
    "machine_settings",
    "run_machine",
]

T = TypeVar("T")

RULE_TIMEOUT = 10_000.0
"""Virtual seconds a portal call may take; a deadlock surfaces as ``trio.TooSlowError``."""


class TrioPortal:
    """Runs trio code for a state machine that lives in another thread."""

    def __init__(self, clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
        self.clock = clock
        self.nursery = nursery

    def run(self, fn: Callable[[], Awaitable[T]], *, timeout: float = RULE_TIMEOUT) -> T:
        """Await ``fn()`` in trio (virtual time runs free), then quiesce."""
        return trio.from_thread.run(self._call, fn, timeout)

    def call(self, fn: Callable[[], T]) -> T:
        """Call the sync ``fn()`` in trio, then quiesce."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper)

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (timers fire in order), then quiesce."""

        async def sleep() -> None:
            await trio.sleep(seconds)

        self.run(sleep, timeout=seconds + RULE_TIMEOUT)

    def start(self, fn: Callable[..., Awaitable[Any]]) -> Any:
        """``nursery.start(fn)`` in the portal's long-lived nursery; return what it started with."""

        async def starter() -> Any:
            return await self.nursery.start(fn)

        return self.run(starter)

    @property
    def now(self) -> float:
        """The virtual time (only moves inside portal calls)."""
        return self.clock.current_time()

    async def _call(self, fn: Callable[[], Awaitable[T]], limit: float) -> T:
        self.clock.autojump_threshold = 0.0
        try:
            with trio.fail_after(limit):
                result = await fn()
                await trio.testing.wait_all_tasks_blocked()
            return result
        finally:
            self.clock.autojump_threshold = math.inf


E = TypeVar("E", bound=BaseException)


def expect_raises(error: type[E], fn: Callable[[], object]) -> E:
    """Call ``fn``; return the ``error`` it raised, or fail with an ``AssertionError``.

    (``pytest.raises`` fails with pytest's own ``Failed``, a ``BaseException``.)
    """
    try:
        fn()
    except error as exc:
        return exc
    raise AssertionError(f"expected {error.__name__}, nothing was raised")


def live_tasks() -> set[trio.lowlevel.Task]:
    """Every task of the current run (call from trio)."""
    found: set[trio.lowlevel.Task] = set()
    root = trio.lowlevel.current_root_task()
    assert root is not None
    stack = [root]
    while stack:
        task = stack.pop()
        found.add(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return found


def machine_settings(*, share: float = 1.0, steps: int = 30, **overrides: Any) -> Settings:
    """Settings for a machine: the loaded profile, with a ``share`` of its examples."""
    default = Settings.default
    assert default is not None
    examples = max(1, int(default.max_examples * share))
    return Settings(max_examples=examples, stateful_step_count=steps, **overrides)


def run_machine(
    factory: Callable[[TrioPortal], RuleBasedStateMachine], *, settings: Settings | None = None
) -> None:
    """Run the machine built by ``factory(portal)`` as a test, with trio in this thread."""
    clock = trio.testing.MockClock(rate=0.0)

    async def main() -> None:
        failure: BaseException | None = None
        async with trio.open_nursery() as nursery:
            portal = TrioPortal(clock, nursery)
            try:
                await trio.to_thread.run_sync(
                    lambda: run_state_machine_as_test(
                        lambda: factory(portal),  # type: ignore[arg-type]
                        settings=settings,
                    )
                )
            except BaseException as exc:  # a failed machine, reported after the nursery
                if isinstance(exc, trio.Cancelled):
                    raise
                failure = exc
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

    trio.run(main, clock=clock)
