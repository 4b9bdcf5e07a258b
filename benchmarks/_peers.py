"""The peers: each workload written for Bytewax and for DuckDB, as their users would.

Every function takes the seeded list of dicts and returns the output rows as a
list of dicts keyed like partita's (so the row counts can be compared):

* **Bytewax** (``bytewax.operators`` and ``bytewax.operators.windowing`` on a
  ``TestingSource`` run by ``run_main``): ``bytewax`` is the default per-record
  source, ``bytewax-1000`` the same flow with the source emitting batches of
  1,000 (``TestingSource(batch_size=1000)``).  Event time is a timezone-aware
  ``datetime`` as Bytewax's ``EventClock`` requires; W3's windows are
  ``TumblingWindower`` ones aligned to the epoch, with no wait for late data
  (partita's watermark is the largest event time seen, too).
* **DuckDB** (``duckdb``): list of dicts → ``pyarrow.Table.from_pylist`` → SQL
  over the Arrow table → rows back as a list of dicts; every conversion is
  timed, because a stream processor's user starts and ends with Python rows.

They are imported only by ``python -m benchmarks._peer`` (the ``bench`` extra:
``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ._workloads import WINDOW_MS

__all__ = ["PEERS", "available"]

Record = dict[str, Any]
Peer = Callable[[list[Record]], list[Record]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch() -> datetime:
    return _EPOCH


def _bytewax(workload: str, batch_size: int) -> Peer:
    # imported here, untimed: the runs time the work, not the import (as Any: the
    # bench extra is not installed where the type check runs)
    op: Any = importlib.import_module("bytewax.operators")
    importlib.import_module("bytewax.operators.windowing")
    Dataflow: Any = importlib.import_module("bytewax.dataflow").Dataflow
    testing: Any = importlib.import_module("bytewax.testing")
    TestingSink, TestingSource, run_main = (
        testing.TestingSink,
        testing.TestingSource,
        testing.run_main,
    )

    def run(records: list[Record]) -> list[Record]:
        out: list[Record] = []
        flow = Dataflow(f"{workload.lower()}")
        up = op.input("in", flow, TestingSource(records, batch_size=batch_size))
        rows = _BYTEWAX_FLOWS[workload](op, up)
        op.output("out", rows, TestingSink(out))
        run_main(flow)
        return out

    return run


def _bw_w0(op: Any, up: Any) -> Any:
    return op.map("copy", up, dict)


def _bw_w1(op: Any, up: Any) -> Any:
    kept = op.filter("qty", up, lambda r: r["qty"] > 50)
    return op.map(
        "project", kept, lambda r: {"symbol": r["symbol"], "notional": r["price"] * r["qty"]}
    )


def _new_acc() -> list[Any]:
    return [0, 0, 0.0]


def _fold(acc: list[Any], r: Record) -> list[Any]:
    acc[0] += 1
    acc[1] += r["qty"]
    acc[2] += r["price"]
    return acc


def _merge(a: list[Any], b: list[Any]) -> list[Any]:
    return [a[0] + b[0], a[1] + b[1], a[2] + b[2]]


def _bw_w2(op: Any, up: Any) -> Any:
    keyed = op.key_on("key", up, lambda r: r["symbol"])
    folded = op.fold_final("fold", keyed, _new_acc, _fold)
    return op.map(
        "row",
        folded,
        lambda kv: {
            "symbol": kv[0],
            "trades": kv[1][0],
            "volume": kv[1][1],
            "avg_price": kv[1][2] / kv[1][0],
        },
    )


def _bw_w3(op: Any, up: Any) -> Any:
    win: Any = importlib.import_module("bytewax.operators.windowing")

    keyed = op.key_on("key", up, lambda r: r["symbol"])
    clock = win.EventClock(
        lambda r: _EPOCH + timedelta(milliseconds=r["ts"]),
        wait_for_system_duration=timedelta(0),
        # the watermark is the largest event time seen, not moved on by the wall
        # clock (Bytewax's default adds the system time since): as partita's
        now_getter=_epoch,
    )
    windower = win.TumblingWindower(length=timedelta(milliseconds=WINDOW_MS), align_to=_EPOCH)
    windows = win.fold_window("window", keyed, clock, windower, _new_acc, _fold, _merge)
    length_ms = WINDOW_MS

    def row(kv: tuple[str, tuple[int, list[Any]]]) -> Record:
        symbol, (window_id, acc) = kv
        start = window_id * length_ms
        return {
            "symbol": symbol,
            "window_start": start,
            "window_end": start + length_ms,
            "trades": acc[0],
            "volume": acc[1],
            "avg_price": acc[2] / acc[0],
        }

    return op.map("row", windows.down, row)


def _bw_w4(op: Any, up: Any) -> Any:
    keyed = op.key_on("key", up, lambda r: r["symbol"])

    def update(acc: list[Any] | None, r: Record) -> tuple[list[Any], Record]:
        if acc is None:
            acc = [1, r["qty"], r["price"]]
        else:
            acc[0] += 1
            acc[1] += r["qty"]
            acc[2] += r["price"]
        row = {
            "symbol": r["symbol"],
            "trades": acc[0],
            "volume": acc[1],
            "avg_price": acc[2] / acc[0],
        }
        return acc, row

    changes = op.stateful_map("changes", keyed, update)
    return op.map("row", changes, lambda kv: kv[1])


_BYTEWAX_FLOWS: dict[str, Callable[[Any, Any], Any]] = {
    "W0": _bw_w0,
    "W1": _bw_w1,
    "W2": _bw_w2,
    "W3": _bw_w3,
    "W4": _bw_w4,
}

_AGGS = "COUNT(*) AS trades, SUM(qty) AS volume, AVG(price) AS avg_price"

_DUCKDB_SQL = {
    "W0": "SELECT * FROM trades",
    "W1": "SELECT symbol, price * qty AS notional FROM trades WHERE qty > 50",
    "W2": f"SELECT symbol, {_AGGS} FROM trades GROUP BY symbol",
    "W3": (
        f"SELECT symbol, ts - ts % {WINDOW_MS} AS window_start, "
        f"ts - ts % {WINDOW_MS} + {WINDOW_MS} AS window_end, {_AGGS} "
        "FROM trades GROUP BY symbol, window_start"
    ),
    # EMIT CHANGES: one row per record, the group's aggregates so far (arrival order).
    "W4": (
        "SELECT symbol, "
        "COUNT(*) OVER w AS trades, SUM(qty) OVER w AS volume, AVG(price) OVER w AS avg_price "
        "FROM (SELECT *, row_number() OVER () AS arrival FROM trades) "
        "WINDOW w AS (PARTITION BY symbol ORDER BY arrival ROWS UNBOUNDED PRECEDING)"
    ),
}


def _duckdb(workload: str) -> Peer:
    import duckdb
    import pyarrow as pa

    def run(records: list[Record]) -> list[Record]:
        trades = pa.Table.from_pylist(records)
        con = duckdb.connect()
        try:
            con.register("trades", trades)
            result = con.sql(_DUCKDB_SQL[workload])
            # to_arrow_table since DuckDB 1.4 (fetch_arrow_table before, now deprecated)
            to_arrow = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
            rows: list[Record] = to_arrow().to_pylist()
        finally:
            con.close()
        return rows

    return run


PEERS: dict[str, Callable[[str], Peer]] = {
    "bytewax": lambda workload: _bytewax(workload, 1),
    "bytewax-1000": lambda workload: _bytewax(workload, 1000),
    "duckdb": _duckdb,
}
"""Peer system name → (workload name → the function running it)."""


def available(system: str) -> bool:
    """Whether ``system``'s package is installed (the ``bench`` extra)."""
    module = "bytewax" if system.startswith("bytewax") else system
    try:
        __import__(module)
        if system == "duckdb":
            __import__("pyarrow")
    except ImportError:
        return False
    return True
