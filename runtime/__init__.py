"""partita's kernel: messages, mailboxes, actors, the supervisor, stats and errors.

It knows nothing of the layers built on it.
See ``docs/concepts.md``.
"""

from ._actor import Actor as Actor
from ._actor import AsyncActor as AsyncActor
from ._actor import Sink as Sink
from ._batching import BatchSizer as BatchSizer
from ._checkpoint import CheckpointCoordinator as CheckpointCoordinator
from ._checkpoint import Checkpointing as Checkpointing
from ._errors import ActorFailed as ActorFailed
from ._errors import BadRecord as BadRecord
from ._errors import CheckpointCorrupt as CheckpointCorrupt
from ._errors import CheckpointError as CheckpointError
from ._errors import ConsumerGone as ConsumerGone
from ._errors import InvalidTransition as InvalidTransition
from ._errors import MemoryLimitExceeded as MemoryLimitExceeded
from ._errors import PartitaError as PartitaError
from ._errors import RestartIntensityExceeded as RestartIntensityExceeded
from ._graph import Graph as Graph
from ._lifecycle import TRANSITIONS as TRANSITIONS
from ._lifecycle import ActorState as ActorState
from ._lifecycle import Lifecycle as Lifecycle
from ._mailbox import Mailbox as Mailbox
from ._memory import MemoryBudget as MemoryBudget
from ._memory import MemoryPolicy as MemoryPolicy
from ._memory import estimate_nbytes as estimate_nbytes
from ._memory import estimate_state_nbytes as estimate_state_nbytes
from ._memory import share_estimate as share_estimate
from ._messages import Barrier as Barrier
from ._messages import Batch as Batch
from ._messages import DeadLetter as DeadLetter
from ._messages import EndOfStream as EndOfStream
from ._messages import Idle as Idle
from ._messages import Message as Message
from ._messages import Record as Record
from ._messages import Watermark as Watermark
from ._policy import ON_ERROR_CHOICES as ON_ERROR_CHOICES
from ._policy import OnError as OnError
from ._policy import check_on_error as check_on_error
from ._source import Source as Source
from ._sqlite_store import STORE_SCHEMA_VERSION as STORE_SCHEMA_VERSION
from ._sqlite_store import SqliteCheckpointStore as SqliteCheckpointStore
from ._sqlite_store import open_sqlite_store as open_sqlite_store
from ._state_codec import MAX_STATE_DEPTH as MAX_STATE_DEPTH
from ._state_codec import STATE_FORMAT_VERSION as STATE_FORMAT_VERSION
from ._state_codec import decode_state as decode_state
from ._state_codec import encode_state as encode_state
from ._stats import MAX_ERROR_REASONS as MAX_ERROR_REASONS
from ._stats import OTHER_REASONS as OTHER_REASONS
from ._stats import ActorStats as ActorStats
from ._stats import CheckpointInfo as CheckpointInfo
from ._stats import ErrorReasons as ErrorReasons
from ._stats import GraphStats as GraphStats
from ._stats import MailboxStats as MailboxStats
from ._store import Checkpoint as Checkpoint
from ._store import CheckpointStore as CheckpointStore
from ._store import MemoryCheckpointStore as MemoryCheckpointStore
from ._supervisor import Backoff as Backoff
from ._supervisor import RestartPolicy as RestartPolicy
from ._supervisor import Strategy as Strategy
from ._supervisor import Supervisor as Supervisor
from ._supervisor import SupervisorOptions as SupervisorOptions
from ._supervisor import open_supervisor as open_supervisor
from ._supervisor import run_graph as run_graph
from ._units import Duration as Duration
from ._units import Size as Size
from ._units import parse_duration_ms as parse_duration_ms
from ._units import parse_size as parse_size

__all__ = [
    "MAX_ERROR_REASONS",
    "MAX_STATE_DEPTH",
    "ON_ERROR_CHOICES",
    "OTHER_REASONS",
    "STATE_FORMAT_VERSION",
    "STORE_SCHEMA_VERSION",
    "TRANSITIONS",
    "Actor",
    "ActorFailed",
    "ActorState",
    "ActorStats",
    "AsyncActor",
    "Backoff",
    "BadRecord",
    "Barrier",
    "Batch",
    "BatchSizer",
    "Checkpoint",
    "CheckpointCoordinator",
    "CheckpointCorrupt",
    "CheckpointError",
    "CheckpointInfo",
    "CheckpointStore",
    "Checkpointing",
    "ConsumerGone",
    "DeadLetter",
    "Duration",
    "EndOfStream",
    "ErrorReasons",
    "Graph",
    "GraphStats",
    "Idle",
    "InvalidTransition",
    "Lifecycle",
    "Mailbox",
    "MailboxStats",
    "MemoryBudget",
    "MemoryCheckpointStore",
    "MemoryLimitExceeded",
    "MemoryPolicy",
    "Message",
    "OnError",
    "PartitaError",
    "Record",
    "RestartIntensityExceeded",
    "RestartPolicy",
    "Sink",
    "Size",
    "Source",
    "SqliteCheckpointStore",
    "Strategy",
    "Supervisor",
    "SupervisorOptions",
    "Watermark",
    "check_on_error",
    "decode_state",
    "encode_state",
    "estimate_nbytes",
    "estimate_state_nbytes",
    "open_sqlite_store",
    "open_supervisor",
    "parse_duration_ms",
    "parse_size",
    "run_graph",
    "share_estimate",
]
