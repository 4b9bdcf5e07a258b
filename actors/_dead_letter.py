"""Dead letters on the wire, and the sink that keeps or writes them.

A dead letter crosses mailboxes like any other data: as a record of a batch,
``{"offset", "stage", "reason", "record"}``, sent to a graph's dead-letter
output.  :class:`DeadLetterSink` writes those records as JSON lines, or keeps
them in memory as :class:`runtime.DeadLetter` values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, ClassVar, Literal

import attrs
import trio

from partita.runtime import Actor, Batch, DeadLetter, Record, Sink

from ._jsonl import JsonLinesWriter, encode_lines

__all__ = ["DeadLetterSink", "dead_letter_batch", "dead_letter_from_record", "emit_dead_letters"]


def dead_letter_batch(letters: Iterable[DeadLetter]) -> Batch:
    """The wire form of ``letters``: one batch of ``{"offset", "stage", "reason", "record"}``."""
    return Batch(
        [
            {"offset": d.offset, "stage": d.stage, "reason": d.reason, "record": d.record}
            for d in letters
        ]
    )


def emit_dead_letters(
    actor: Actor, letters: list[DeadLetter], output: int | None, kept: list[DeadLetter]
) -> None:
    """Emit ``letters`` from ``actor`` to its dead-letter ``output``; with none, keep them."""
    if output is None:
        kept.extend(letters)
    else:
        actor.emit_message(dead_letter_batch(letters), output)


def dead_letter_from_record(record: Record) -> DeadLetter:
    """Back from the wire form to a :class:`runtime.DeadLetter`."""
    return DeadLetter(
        record=record.get("record"),
        reason=str(record.get("reason", "")),
        offset=record.get("offset"),
        stage=str(record.get("stage", "")),
    )


@attrs.define(eq=False)
class DeadLetterSink(Sink):
    """Receives dead letters; writes them as JSON lines to ``path``, or keeps them.

    Each line is ``{"offset", "stage", "reason", "record"}``.  With ``path``
    ``None`` the letters are kept in :attr:`dead_letters` instead (what
    :func:`actors.run_sql` does when no dead-letter destination is given).

    Example:
        >>> sink = DeadLetterSink("dead-letter")  # in memory
        >>> sink.dead_letters
        []

    Args:
        name: the actor's name (``"dead-letter"`` in SQL graphs).
        path: a file to write (created or truncated at the first letter, flushed
            at the end), or ``None`` to keep the letters in memory.
        keep: with no ``path``, ``False`` only counts the letters (:attr:`count`)
            instead of keeping them, for endless streams with nowhere to put them.
    """

    path: str | os.PathLike[str] | None = None
    keep: bool = attrs.field(default=True, kw_only=True)
    dead_letters: list[DeadLetter] = attrs.field(init=False, factory=list)
    count: int = attrs.field(init=False, default=0)
    _writer: JsonLinesWriter | None = attrs.field(init=False, default=None)

    delivery: ClassVar[Literal["exactly-once", "at-least-once"]] = "exactly-once"

    def snapshot_state(self) -> object:
        """The file's length at the barrier (or the letters kept), and the count."""
        kept = [(d.record, d.reason, d.offset, d.stage) for d in self.dead_letters]
        length = self._writer.length if self._writer is not None else 0
        return {"count": self.count, "bytes": length, "kept": kept}

    def restore_state(self, state: object) -> None:
        saved: Any = state
        self.count = saved["count"]
        self.dead_letters = [DeadLetter(*letter) for letter in saved["kept"]]
        if self.path is not None:
            self._writer = JsonLinesWriter(self.path)
            self._writer.resume(saved["bytes"])

    async def consume(self, batch: Batch) -> None:
        records = batch.records
        if not records:
            return
        self.count += len(records)
        if self.path is None:
            if not self.keep:
                return  # counted only: nothing grows with the stream
            self.dead_letters.extend(dead_letter_from_record(r) for r in records)
            return
        if self._writer is None:
            self._writer = JsonLinesWriter(self.path)
        try:
            await trio.to_thread.run_sync(self._writer.write, encode_lines(records))
        except OSError as exc:
            raise self._write_error(exc) from None

    def _write_error(self, exc: OSError) -> OSError:
        where = os.fspath(self.path) if self.path is not None else "?"
        return OSError(exc.errno, f"cannot write dead letters to {where!r}: {exc.strerror}")

    async def flush(self) -> None:
        if self.path is None:
            return
        if self._writer is None:
            self._writer = JsonLinesWriter(self.path)
        writer = self._writer
        try:
            await trio.to_thread.run_sync(writer.open)
        except OSError as exc:
            raise self._write_error(exc) from None
        writer.close()
