"""Every exception type the runtime raises, each saying when it is raised.

trio's own vocabulary is reused where it means the same thing:
``trio.ClosedResourceError``, ``trio.BrokenResourceError``, ``trio.WouldBlock``
and ``trio.EndOfChannel``.
"""

from __future__ import annotations

__all__ = [
    "ActorFailed",
    "BadRecord",
    "CheckpointCorrupt",
    "CheckpointError",
    "ConsumerGone",
    "InvalidTransition",
    "MemoryLimitExceeded",
    "PartitaError",
    "RestartIntensityExceeded",
]


class PartitaError(Exception):
    """Base class of partita's own errors."""


class InvalidTransition(PartitaError):
    """An actor was asked to move between lifecycle states that are not connected.

    Example: ``resume()`` on a COMPLETED actor.
    """

    def __init__(self, actor: str, current: str, target: str) -> None:
        super().__init__(actor, current, target)
        self.actor = actor
        self.current = current
        self.target = target

    def __str__(self) -> str:
        return f"actor {self.actor!r}: illegal transition {self.current} -> {self.target}"


class MemoryLimitExceeded(PartitaError):
    """Buffering a message would take a graph past its hard ``max_memory`` budget."""

    def __init__(self, actor: str, requested: int, in_use: int, limit: int) -> None:
        super().__init__(actor, requested, in_use, limit)
        self.actor = actor
        self.requested = requested
        self.in_use = in_use
        self.limit = limit

    def __str__(self) -> str:
        return (
            f"actor {self.actor!r}: buffering {self.requested} more bytes would exceed "
            f"max_memory ({self.in_use} of {self.limit} bytes in use)"
        )


class ActorFailed(PartitaError):
    """An actor raised; the original exception is the ``__cause__``.

    Raised to the caller of the supervisor when the restart policy gives up
    (or there is none).
    """

    def __init__(self, actor: str, error: BaseException, offset: int | None = None) -> None:
        super().__init__(actor, error, offset)
        self.actor = actor
        self.error = error
        self.offset = offset

    def __str__(self) -> str:
        error = self.error
        if isinstance(error, BadRecord):
            # The bad record says where it was; say each thing once.
            stage = error.stage if error.stage not in ("", self.actor) else ""
            return f"actor {self.actor!r} failed: {error._describe(stage)}"
        where = f" at record offset {self.offset}" if self.offset is not None else ""
        return f"actor {self.actor!r} failed: {type(error).__name__}{where}: {error}"


class RestartIntensityExceeded(ActorFailed):
    """An actor crashed more than ``max_restarts`` times within ``within`` seconds."""

    def __init__(self, actor: str, error: BaseException, restarts: int, within: float) -> None:
        super().__init__(actor, error)
        self.restarts = restarts
        self.within = within

    def __str__(self) -> str:
        return (
            f"actor {self.actor!r} failed {self.restarts + 1} times within {self.within:g}s, "
            f"more than its restart intensity allows; last error: "
            f"{type(self.error).__name__}: {self.error}"
        )


class BadRecord(PartitaError):
    """A record could not be processed and the error policy is ``fail``."""

    def __init__(self, reason: str, offset: int | None = None, stage: str = "") -> None:
        super().__init__(reason, offset, stage)
        self.reason = reason
        self.offset = offset
        self.stage = stage

    def __str__(self) -> str:
        return self._describe(self.stage)

    def _describe(self, stage: str) -> str:
        where = f" at record offset {self.offset}" if self.offset is not None else ""
        prefix = f"{stage}: " if stage else ""
        return f"{prefix}bad record{where}: {self.reason}"


class ConsumerGone(PartitaError):
    """Whoever reads a graph's output went away (a sink's reader closed).

    Raised inside a sink; the supervisor then cancels everything upstream
    promptly and quietly: the graph ends CANCELLED, not FAILED.
    """

    def __init__(self, actor: str) -> None:
        super().__init__(actor)
        self.actor = actor

    def __str__(self) -> str:
        return f"the consumer of actor {self.actor!r} went away"


class CheckpointError(PartitaError):
    """A checkpoint, or the store that holds checkpoints, cannot be used as asked.

    Raised when a store file belongs to another job or has a schema this partita
    does not know, and as the base class of :class:`CheckpointCorrupt`.  ``where``
    names the file or the piece of state; ``problem`` says what was wrong and what
    was expected.

    Example:
        >>> from partita.runtime import CheckpointError
        >>> print(CheckpointError("ck/job.db", "holds the checkpoints of job 'a', not 'b'"))
        ck/job.db: holds the checkpoints of job 'a', not 'b'
    """

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(where, problem)
        self.where = where
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


class CheckpointCorrupt(CheckpointError):
    """Bytes that should hold a checkpoint do not: truncated, damaged, or not partita's.

    Raised by ``decode_state`` for anything but what ``encode_state`` wrote, and by a
    store for a file that is not a store (not a database, or the database of another
    application) or is damaged.  Nothing is ever reset silently: the caller decides
    (for example ``--fresh``).
    """
