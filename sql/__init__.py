"""Streaming SQL for partita: parse with sqlglot, plan, compile to fused Python loops.

Example:
    >>> from partita.sql import run_query
    >>> run_query("SELECT x * 2 AS y FROM t WHERE x > 1", [{"x": 1}, {"x": 2}]).rows
    [{'y': 4}]
"""

from ._driver import QueryResult as QueryResult
from ._driver import run_query as run_query
from ._errors import SqlError as SqlError
from ._functions import to_epoch_ms as to_epoch_ms
from ._hashing import partition_of as partition_of
from ._hashing import stable_hash as stable_hash
from ._interface import PartitionProgram as PartitionProgram
from ._interface import ProgramCounts as ProgramCounts
from ._interface import Routed as Routed
from ._interface import RoutingStage as RoutingStage
from ._interface import StreamJoin as StreamJoin
from ._interface import StreamJoinState as StreamJoinState
from ._interval_join import IntervalJoin as IntervalJoin
from ._interval_join import IntervalJoinState as IntervalJoinState
from ._interval_join import JoinSideStage as JoinSideStage
from ._join import QueryInputs as QueryInputs
from ._join import query_inputs as query_inputs
from ._plan import WindowSpec as WindowSpec
from ._policy import RecordErrors as RecordErrors
from ._query import CompiledQuery as CompiledQuery
from ._query import compile_query as compile_query
from ._query import explain as explain
from ._query_config import LatePolicy as LatePolicy
from ._query_config import QueryOptions as QueryOptions
from ._query_config import WatermarkStrategy as WatermarkStrategy
from ._query_config import check_late as check_late
from ._schema import SchemaColumn as SchemaColumn
from ._schema import StreamSchema as StreamSchema
from ._schema import parse_schema as parse_schema
from ._step import PartitionResult as PartitionResult
from ._step import PartitionStep as PartitionStep
from ._step import RouteResult as RouteResult
from ._step import RouteStep as RouteStep
from ._temporal_join import TemporalJoin as TemporalJoin
from ._temporal_join import TemporalJoinState as TemporalJoinState
from ._windows import Aggregation as Aggregation
from ._windows import WindowRules as WindowRules
from ._windows import WindowState as WindowState
from ._windows import new_window_state as new_window_state

__all__ = [
    "Aggregation",
    "CompiledQuery",
    "IntervalJoin",
    "IntervalJoinState",
    "JoinSideStage",
    "LatePolicy",
    "PartitionProgram",
    "PartitionResult",
    "PartitionStep",
    "ProgramCounts",
    "QueryInputs",
    "QueryOptions",
    "QueryResult",
    "RecordErrors",
    "RouteResult",
    "RouteStep",
    "Routed",
    "RoutingStage",
    "SchemaColumn",
    "SqlError",
    "StreamJoin",
    "StreamJoinState",
    "StreamSchema",
    "TemporalJoin",
    "TemporalJoinState",
    "WatermarkStrategy",
    "WindowRules",
    "WindowSpec",
    "WindowState",
    "check_late",
    "compile_query",
    "explain",
    "new_window_state",
    "parse_schema",
    "partition_of",
    "query_inputs",
    "run_query",
    "stable_hash",
    "to_epoch_ms",
]
