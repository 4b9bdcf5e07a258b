"""The partition actor: one partition's program, with the state it owns."""

from __future__ import annotations

import attrs

from partita.runtime import Actor, Batch, DeadLetter, estimate_state_nbytes
from partita.sql import PartitionProgram, PartitionResult, PartitionStep

from ._dead_letter import emit_dead_letters

__all__ = ["PartitionActor"]


@attrs.define(eq=False)
class PartitionActor(Actor):
    """Runs one :class:`partita.sql.PartitionProgram`: the partition's state lives in it.

    A batch goes to ``program.process``, a watermark to ``program.advance``
    (closing windows), the end of the stream to ``program.finish``; the rows
    they return go to output 0 as one batch, and the program's dead letters to
    :attr:`dead_letter_output` (else they are kept in :attr:`dead_letters`).
    The program's counts show in ``rows_filtered``, ``rows_late`` and
    ``rows_errored``.  It calls the program through a
    :class:`partita.sql.PartitionStep`, as ``run_query`` does, and only moves
    what that returns.  The program survives a restart of the actor, so a
    restarted partition keeps its groups and windows.

    Example:
        >>> part = PartitionActor("partition-0", compiled.new_program())  # doctest: +SKIP

    Args:
        name: ``"partition-<i>"`` in SQL graphs.
        program: the partition's program.
        dead_letter_output: the output index of the dead-letter sink, if any.
    """

    program: PartitionProgram
    dead_letter_output: int | None = attrs.field(default=None, kw_only=True)
    dead_letters: list[DeadLetter] = attrs.field(init=False, factory=list)
    _step: PartitionStep = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._step = PartitionStep(self.program)

    def on_batch(self, batch: Batch) -> None:
        self._send(self._step.process(batch))

    def on_watermark(self, ts: int) -> None:
        self._send(self._step.advance(ts))

    def on_end(self) -> None:
        self._send(self._step.finish())

    def snapshot_state(self) -> object:
        """The program's state: groups, windows, sessions, watermark, counters."""
        return self._step.snapshot()

    def restore_state(self, state: object) -> None:
        self._step.restore(state)

    def state_nbytes(self) -> int:
        """The program's groups, windows and sessions, estimated (sampled)."""
        state = self._step.state()
        return 0 if state is None else estimate_state_nbytes(state)

    def _send(self, result: PartitionResult) -> None:
        rows = result.rows
        if rows:
            self.emit_batch(Batch(rows), None if self.dead_letter_output is None else 0)
        if result.dead_letters:
            letters = list(result.dead_letters)
            emit_dead_letters(self, letters, self.dead_letter_output, self.dead_letters)
        counts = result.counts
        self.rows_filtered = counts.filtered
        self.rows_late = counts.late
        self.rows_errored = counts.errored
        if result.error_reasons is not None:
            self.set_error_reasons(dict(result.error_reasons))
