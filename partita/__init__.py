"""partita: an actor-model stream runtime for Python on trio, with streaming SQL.

Everything a user needs is here; the layers underneath are :mod:`partita.runtime`
(the kernel), :mod:`partita.sql` (streaming SQL) and :mod:`partita.actors` (concrete
actors and the graph builders).  Every name below reports ``partita`` as its module.

Example:
    >>> import partita
    >>> import trio
    >>> async def main() -> None:
    ...     run = await partita.run_sql(
    ...         "SELECT k, COUNT(*) AS n FROM t GROUP BY k", [{"k": "a"}, {"k": "a"}]
    ...     )
    ...     print(run.rows)
    >>> trio.run(main)
    [{'k': 'a', 'n': 2}]
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from ._metadata import fixup_module_metadata as _fixup

if _typing.TYPE_CHECKING:
    from partita.actors import AsyncIterableSource as AsyncIterableSource
    from partita.actors import CallbackSink as CallbackSink
    from partita.actors import CollectSink as CollectSink
    from partita.actors import CsvSink as CsvSink
    from partita.actors import CsvSource as CsvSource
    from partita.actors import DeadLetterSink as DeadLetterSink
    from partita.actors import Flow as Flow
    from partita.actors import FlowStream as FlowStream
    from partita.actors import HoppingWindow as HoppingWindow
    from partita.actors import IterableSource as IterableSource
    from partita.actors import JsonLinesSink as JsonLinesSink
    from partita.actors import JsonLinesSource as JsonLinesSource
    from partita.actors import OperatorError as OperatorError
    from partita.actors import ParquetSink as ParquetSink
    from partita.actors import PostgresError as PostgresError
    from partita.actors import PostgresSink as PostgresSink
    from partita.actors import PostgresSource as PostgresSource
    from partita.actors import QueryRun as QueryRun
    from partita.actors import QueryStream as QueryStream
    from partita.actors import RecordSource as RecordSource
    from partita.actors import RedisError as RedisError
    from partita.actors import RedisStreamSink as RedisStreamSink
    from partita.actors import RedisStreamSource as RedisStreamSource
    from partita.actors import RowStream as RowStream
    from partita.actors import SessionWindow as SessionWindow
    from partita.actors import TradeSource as TradeSource
    from partita.actors import TumblingWindow as TumblingWindow
    from partita.actors import WindowedStream as WindowedStream
    from partita.actors import Worker as Worker
    from partita.actors import WorkerStats as WorkerStats
    from partita.actors import open_sql as open_sql
    from partita.actors import run_sql as run_sql
    from partita.runtime import Actor as Actor
    from partita.runtime import ActorFailed as ActorFailed
    from partita.runtime import ActorState as ActorState
    from partita.runtime import ActorStats as ActorStats
    from partita.runtime import Backoff as Backoff
    from partita.runtime import BadRecord as BadRecord
    from partita.runtime import Batch as Batch
    from partita.runtime import BatchSizer as BatchSizer
    from partita.runtime import CheckpointCorrupt as CheckpointCorrupt
    from partita.runtime import CheckpointError as CheckpointError
    from partita.runtime import ConsumerGone as ConsumerGone
    from partita.runtime import DeadLetter as DeadLetter
    from partita.runtime import Graph as Graph
    from partita.runtime import GraphStats as GraphStats
    from partita.runtime import InvalidTransition as InvalidTransition
    from partita.runtime import MemoryLimitExceeded as MemoryLimitExceeded
    from partita.runtime import PartitaError as PartitaError
    from partita.runtime import Record as Record
    from partita.runtime import RestartIntensityExceeded as RestartIntensityExceeded
    from partita.runtime import RestartPolicy as RestartPolicy
    from partita.runtime import Sink as Sink
    from partita.runtime import Source as Source
    from partita.runtime import Strategy as Strategy
    from partita.runtime import Supervisor as Supervisor
    from partita.runtime import Watermark as Watermark
    from partita.runtime import open_supervisor as open_supervisor
    from partita.runtime import run_graph as run_graph
    from partita.sql import CompiledQuery as CompiledQuery
    from partita.sql import QueryResult as QueryResult
    from partita.sql import SqlError as SqlError
    from partita.sql import compile_query as compile_query
    from partita.sql import explain as explain
    from partita.sql import run_query as run_query

    from ._ui import UiServer as UiServer
    from ._ui import serve_ui as serve_ui

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorFailed",
    "ActorState",
    "ActorStats",
    "AsyncIterableSource",
    "Backoff",
    "BadRecord",
    "Batch",
    "BatchSizer",
    "CallbackSink",
    "CheckpointCorrupt",
    "CheckpointError",
    "CollectSink",
    "CompiledQuery",
    "ConsumerGone",
    "CsvSink",
    "CsvSource",
    "DeadLetter",
    "DeadLetterSink",
    "Flow",
    "FlowStream",
    "Graph",
    "GraphStats",
    "HoppingWindow",
    "InvalidTransition",
    "IterableSource",
    "JsonLinesSink",
    "JsonLinesSource",
    "MemoryLimitExceeded",
    "OperatorError",
    "ParquetSink",
    "PartitaError",
    "PostgresError",
    "PostgresSink",
    "PostgresSource",
    "QueryResult",
    "QueryRun",
    "QueryStream",
    "Record",
    "RecordSource",
    "RedisError",
    "RedisStreamSink",
    "RedisStreamSource",
    "RestartIntensityExceeded",
    "RestartPolicy",
    "RowStream",
    "SessionWindow",
    "Sink",
    "Source",
    "SqlError",
    "Strategy",
    "Supervisor",
    "TradeSource",
    "TumblingWindow",
    "UiServer",
    "Watermark",
    "WindowedStream",
    "Worker",
    "WorkerStats",
    "compile_query",
    "explain",
    "open_sql",
    "open_supervisor",
    "run_graph",
    "run_query",
    "run_sql",
    "serve_ui",
]

# Where each name lives.  ``import partita`` imports none of them (so neither trio,
# sqlglot nor rich): a name is imported when first used (PEP 562), and then
# reports ``partita`` as its module.
_HOMES: dict[str, str] = {
    "Actor": "partita.runtime",
    "ActorFailed": "partita.runtime",
    "ActorState": "partita.runtime",
    "ActorStats": "partita.runtime",
    "AsyncIterableSource": "partita.actors",
    "Backoff": "partita.runtime",
    "BadRecord": "partita.runtime",
    "Batch": "partita.runtime",
    "BatchSizer": "partita.runtime",
    "CallbackSink": "partita.actors",
    "CheckpointCorrupt": "partita.runtime",
    "CheckpointError": "partita.runtime",
    "CollectSink": "partita.actors",
    "CompiledQuery": "partita.sql",
    "ConsumerGone": "partita.runtime",
    "CsvSink": "partita.actors",
    "CsvSource": "partita.actors",
    "DeadLetter": "partita.runtime",
    "DeadLetterSink": "partita.actors",
    "Flow": "partita.actors",
    "FlowStream": "partita.actors",
    "Graph": "partita.runtime",
    "GraphStats": "partita.runtime",
    "HoppingWindow": "partita.actors",
    "InvalidTransition": "partita.runtime",
    "IterableSource": "partita.actors",
    "JsonLinesSink": "partita.actors",
    "JsonLinesSource": "partita.actors",
    "MemoryLimitExceeded": "partita.runtime",
    "OperatorError": "partita.actors",
    "ParquetSink": "partita.actors",
    "PartitaError": "partita.runtime",
    "PostgresError": "partita.actors",
    "PostgresSink": "partita.actors",
    "PostgresSource": "partita.actors",
    "QueryResult": "partita.sql",
    "QueryRun": "partita.actors",
    "QueryStream": "partita.actors",
    "Record": "partita.runtime",
    "RecordSource": "partita.actors",
    "RedisError": "partita.actors",
    "RedisStreamSink": "partita.actors",
    "RedisStreamSource": "partita.actors",
    "RestartIntensityExceeded": "partita.runtime",
    "RestartPolicy": "partita.runtime",
    "RowStream": "partita.actors",
    "SessionWindow": "partita.actors",
    "Sink": "partita.runtime",
    "Source": "partita.runtime",
    "SqlError": "partita.sql",
    "Strategy": "partita.runtime",
    "Supervisor": "partita.runtime",
    "TradeSource": "partita.actors",
    "TumblingWindow": "partita.actors",
    "UiServer": "partita._ui",
    "Watermark": "partita.runtime",
    "WindowedStream": "partita.actors",
    "Worker": "partita.actors",
    "WorkerStats": "partita.actors",
    "compile_query": "partita.sql",
    "explain": "partita.sql",
    "open_sql": "partita.actors",
    "open_supervisor": "partita.runtime",
    "run_graph": "partita.runtime",
    "run_query": "partita.sql",
    "run_sql": "partita.actors",
    "serve_ui": "partita._ui",
}


_SUBPACKAGES = frozenset({"actors", "runtime", "sql"})


def __getattr__(name: str) -> _typing.Any:
    home = _HOMES.get(name)
    if home is None:
        if name in _SUBPACKAGES:
            return _importlib.import_module(f"partita.{name}")
        raise AttributeError(f"module 'partita' has no attribute {name!r}")
    value = getattr(_importlib.import_module(home), name)
    _fixup(__name__, {name: value}, [name])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
