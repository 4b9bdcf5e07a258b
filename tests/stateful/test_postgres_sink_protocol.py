"""The exactly-once protocol of PostgresSink as a state machine, every crash point.

The sink's decision on a (re)start, :func:`undo_after`, is pure: given the
checkpoint the run resumes from and the sink's row in ``partita_sink_progress``,
which committed transactions to take back.  The machine plays the protocol
around it, as the sink and the kernel do it (rows written into the open
transaction; at a barrier the transaction committed with the checkpoint id;
then, or never, the checkpoint store's commit; at the end the last rows
committed with ``complete``, then the store's final mark), crashing anywhere,
and checks that the table always holds a prefix of the output, each row once.
A deliberately broken decision (no undo in the commit window) must be caught.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from partita.actors._postgres_sink import Progress, undo_after

Decide = Callable[[int | None, Progress | None], list[int]]


@attrs.frozen
class Committed:
    """A checkpoint in the store: its id, and how far the output was at its barrier."""

    id: int
    rows: int
    complete: bool = False


def protocol(decide: Decide) -> type[RuleBasedStateMachine]:
    class SinkProtocol(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.table: list[tuple[int, int]] = []  # (output row, xid of its transaction)
            self.progress: Progress | None = None
            self.store: list[Committed] = []
            self.next_xid = 100
            self.next_id = 0  # the coordinator's next checkpoint id
            self.start_run()

        # ------------------------------------------------------------- a run
        def start_run(self) -> None:
            latest = self.store[-1] if self.store else None
            resume = latest if latest is not None and not latest.complete else None
            if latest is not None:
                self.next_id = latest.id + 1
            checkpoint = None if resume is None else resume.id
            undo = set(decide(checkpoint, self.progress))
            self.table = [(row, xid) for row, xid in self.table if xid not in undo]
            self.progress = Progress(checkpoint, False, False, [])
            self.position = 0 if resume is None else resume.rows  # the replay starts here
            self.open: list[int] = []  # rows in the open transaction
            self.sealed: int | None = checkpoint
            self.in_store = resume is not None  # a checkpoint of this run is in the store
            self.sealed_here = False
            self.unconfirmed: int | None = None  # sealed, not yet in the store
            self.pending: list[list[Any]] = []
            self.ended = False

        def commit(self, checkpoint: int | None, pending: list[list[Any]], complete: bool) -> None:
            xid = self.next_xid
            self.next_xid += 1
            self.table += [(row, xid) for row in self.open]
            self.open = []
            marked = [[label, xid if x is None else x] for label, x in pending]
            if not complete and self.sealed_here:
                self.in_store = True  # barrier n comes only once n - 1 is in the store
            self.progress = Progress(checkpoint, complete, not self.in_store, marked)
            self.pending = marked

        # ------------------------------------------------------------- rules
        @precondition(lambda self: not self.ended)
        @rule(n=st.integers(1, 5))
        def write(self, n: int) -> None:
            self.open += range(self.position, self.position + n)
            self.position += n

        @precondition(lambda self: not self.ended and self.unconfirmed is None)
        @rule()
        def barrier(self) -> None:  # the sink's commit_checkpoint
            checkpoint = self.next_id
            self.next_id += 1
            self.commit(checkpoint, [[checkpoint, None]], complete=False)
            self.sealed = checkpoint
            self.sealed_here = True
            self.unconfirmed = checkpoint
            self.sealed_rows = self.position  # the open transaction is empty now

        @precondition(lambda self: self.unconfirmed is not None)
        @rule()
        def store_commits(self) -> None:
            self.store.append(Committed(self.unconfirmed, self.sealed_rows))
            self.unconfirmed = None

        @precondition(lambda self: not self.ended)
        @rule()
        def end(self) -> None:  # flush: the last rows with complete
            self.commit(self.sealed, [*self.pending, ["end", None]], complete=True)
            self.ended = True

        @precondition(lambda self: self.ended and self.unconfirmed is None)
        @rule()
        def store_marks_complete(self) -> None:
            self.store.append(Committed(self.next_id, self.position, complete=True))
            self.next_id += 1
            # the job completed: check it, then a new job begins on an empty table
            assert sorted(row for row, _ in self.table) == list(range(self.position))
            self.table, self.progress, self.store = [], None, []
            self.next_id = 0
            self.start_run()

        @rule()
        def crash(self) -> None:  # the process dies: the open transaction is gone
            self.start_run()

        @invariant()
        def each_row_at_most_once_and_no_gaps(self) -> None:
            rows = sorted(row for row, _ in self.table)
            assert rows == list(range(len(rows)))

    return SinkProtocol


SETTINGS = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def check(decide: Decide) -> None:
    machine = protocol(decide)
    machine.TestCase.settings = SETTINGS
    machine.TestCase().runTest()


def test_the_protocol_writes_each_row_once() -> None:
    check(undo_after)


def broken(checkpoint: int | None, progress: Progress | None) -> list[int]:
    """No undo when the sink committed a checkpoint the store does not hold."""
    if progress is not None and checkpoint is not None and progress.checkpoint == checkpoint + 1:
        return []
    return undo_after(checkpoint, progress)


def test_a_decision_without_the_window_undo_is_caught() -> None:
    with pytest.raises((AssertionError, ExceptionGroup)):
        check(broken)
