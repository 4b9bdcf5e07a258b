"""partita's concrete actors: sources, SQL graph actors, sinks, and the graph builders.

See ``docs/api.md``.
"""

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
