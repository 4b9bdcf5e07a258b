"""partita's concrete actors: sources, SQL graph actors, sinks, and the graph builders.

See ``docs/api.md``.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from ._csv_sink import CsvSink as CsvSink
    from ._dead_letter import DeadLetterSink as DeadLetterSink
    from ._files import CsvSource as CsvSource
    from ._files import JsonLinesSource as JsonLinesSource
    from ._flow import Flow as Flow
    from ._flow import FlowStream as FlowStream
    from ._flow_windows import WindowedStream as WindowedStream
    from ._generator import TradeSource as TradeSource
    from ._interval_join import IntervalJoinActor as IntervalJoinActor
    from ._merge import MergeActor as MergeActor
    from ._operators import OperatorError as OperatorError
    from ._parquet_sink import ParquetSink as ParquetSink
    from ._partition import PartitionActor as PartitionActor
    from ._postgres_errors import PostgresError as PostgresError
    from ._postgres_sink import PostgresSink as PostgresSink
    from ._postgres_source import PostgresSource as PostgresSource
    from ._redis import RedisError as RedisError
    from ._redis import RedisStreamSink as RedisStreamSink
    from ._redis import RedisStreamSource as RedisStreamSource
    from ._router import RouterActor as RouterActor
    from ._row_stream import RowStream as RowStream
    from ._sinks import CallbackSink as CallbackSink
    from ._sinks import CollectSink as CollectSink
    from ._sinks import JsonLinesSink as JsonLinesSink
    from ._sources import AsyncIterableSource as AsyncIterableSource
    from ._sources import IterableSource as IterableSource
    from ._sources import RecordSource as RecordSource
    from ._sqlgraph import QueryRun as QueryRun
    from ._sqlgraph import QueryStream as QueryStream
    from ._sqlgraph import build_sql_graph as build_sql_graph
    from ._sqlgraph import open_sql as open_sql
    from ._sqlgraph import run_sql as run_sql
    from ._tables import TableFileError as TableFileError
    from ._tables import read_table as read_table
    from ._windowers import HoppingWindow as HoppingWindow
    from ._windowers import SessionWindow as SessionWindow
    from ._windowers import TumblingWindow as TumblingWindow
    from ._worker import Worker as Worker
    from ._worker import WorkerStats as WorkerStats

__all__ = [
    "AsyncIterableSource",
    "CallbackSink",
    "CollectSink",
    "CsvSink",
    "CsvSource",
    "DeadLetterSink",
    "Flow",
    "FlowStream",
    "HoppingWindow",
    "IntervalJoinActor",
    "IterableSource",
    "JsonLinesSink",
    "JsonLinesSource",
    "MergeActor",
    "OperatorError",
    "ParquetSink",
    "PartitionActor",
    "PostgresError",
    "PostgresSink",
    "PostgresSource",
    "QueryRun",
    "QueryStream",
    "RecordSource",
    "RedisError",
    "RedisStreamSink",
    "RedisStreamSource",
    "RouterActor",
    "RowStream",
    "SessionWindow",
    "TableFileError",
    "TradeSource",
    "TumblingWindow",
    "WindowedStream",
    "Worker",
    "WorkerStats",
    "build_sql_graph",
    "open_sql",
    "read_table",
    "run_sql",
]

# Where each name lives.  A name is imported when first used (PEP 562), so that
# `partita run` over a file imports neither the Redis, Postgres, Parquet and worker
# actors nor the Flow API (tests/test_startup.py checks which modules it imports).
_HOMES: dict[str, str] = {
    "AsyncIterableSource": "._sources",
    "CallbackSink": "._sinks",
    "CollectSink": "._sinks",
    "CsvSink": "._csv_sink",
    "CsvSource": "._files",
    "DeadLetterSink": "._dead_letter",
    "Flow": "._flow",
    "FlowStream": "._flow",
    "HoppingWindow": "._windowers",
    "IntervalJoinActor": "._interval_join",
    "IterableSource": "._sources",
    "JsonLinesSink": "._sinks",
    "JsonLinesSource": "._files",
    "MergeActor": "._merge",
    "OperatorError": "._operators",
    "ParquetSink": "._parquet_sink",
    "PartitionActor": "._partition",
    "PostgresError": "._postgres_errors",
    "PostgresSink": "._postgres_sink",
    "PostgresSource": "._postgres_source",
    "QueryRun": "._sqlgraph",
    "QueryStream": "._sqlgraph",
    "RecordSource": "._sources",
    "RedisError": "._redis",
    "RedisStreamSink": "._redis",
    "RedisStreamSource": "._redis",
    "RouterActor": "._router",
    "RowStream": "._row_stream",
    "SessionWindow": "._windowers",
    "TableFileError": "._tables",
    "TradeSource": "._generator",
    "TumblingWindow": "._windowers",
    "WindowedStream": "._flow_windows",
    "Worker": "._worker",
    "WorkerStats": "._worker",
    "build_sql_graph": "._sqlgraph",
    "open_sql": "._sqlgraph",
    "read_table": "._tables",
    "run_sql": "._sqlgraph",
}


def __getattr__(name: str) -> _typing.Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
