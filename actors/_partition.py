"""The partition actor: one partition's program, with the state it owns."""

from __future__ import annotations

import attrs

from partita.runtime import Actor, Batch, DeadLetter, Record
from partita.sql import PartitionProgram

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
    ``rows_errored``.  The program survives a restart of the actor, so a
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

    def on_batch(self, batch: Batch) -> None:
        self._emit_rows(self.program.process(batch))

    def on_watermark(self, ts: int) -> None:
        self._emit_rows(self.program.advance(ts))

    def on_end(self) -> None:
        self._emit_rows(self.program.finish())

    def snapshot_state(self) -> object:
        """The program's state: groups, windows, sessions, watermark, counters."""
        return self.program.snapshot()

    def restore_state(self, state: object) -> None:
        self.program.restore(state)

    def _emit_rows(self, rows: list[Record]) -> None:
        program = self.program
        if rows:
            self.emit_batch(Batch(rows), None if self.dead_letter_output is None else 0)
        letters = program.take_dead_letters()
        if letters:
            emit_dead_letters(self, letters, self.dead_letter_output, self.dead_letters)
        counts = program.counts()
        self.rows_filtered = counts.filtered
        self.rows_late = counts.late
        self.rows_errored = counts.errored
        if counts.errored:  # only then: the reasons cost nothing on a clean stream
            reasons = getattr(program, "error_reasons", None)
            if reasons is not None:
                self.set_error_reasons(dict(reasons()))
