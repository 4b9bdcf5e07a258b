"""A Flow window against the SQL window and the floor: W3 three ways.

    python -m benchmarks.flow_windows [--records N] [--repeat R] [--partitions P]

W3 (a one-second tumbling window by symbol: trades, volume, mean price) over the
seeded trades, alternately as the SQL query (``run_sql``), as a Flow
(``key_by(symbol).tumbling("1s", ts="ts").aggregate(...)``, the SQL layer's window
state stepped by Python folds) and as the hand-written floor loop, best of
``--repeat`` each.  Prints one JSON object: the rates, ``flow_vs_sql`` and
``flow_vs_floor`` (rate ratios) and ``same_rows`` (the Flow's rows are the SQL ones).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

import trio

from ._data import generate_trades
from ._workloads import WORKLOADS

__all__ = ["main", "measure"]


def _symbol(record: dict[str, Any]) -> Any:
    return record["symbol"]


def _run_flow(records: list[dict[str, Any]], partitions: int) -> list[dict[str, Any]]:
    from partita import actors

    out = actors.CollectSink("out")
    flow = actors.Flow()
    (
        flow.source(actors.IterableSource("source", records))
        .key_by(_symbol, partitions=partitions)
        .tumbling("1s", ts="ts")
        .aggregate(trades="count", volume=("sum", "qty"), avg_price=("mean", "price"))
        .sink(out)
    )
    trio.run(flow.run)
    return [
        {
            "symbol": r["key"],
            "window_start": r["window_start"],
            "window_end": r["window_end"],
            "trades": r["trades"],
            "volume": r["volume"],
            "avg_price": r["avg_price"],
        }
        for r in out.rows
    ]


def _run_sql(records: list[dict[str, Any]], partitions: int) -> list[dict[str, Any]]:
    from partita import actors

    async def main() -> Any:
        return await actors.run_sql(
            WORKLOADS["W3"].sql, actors.IterableSource("source", records), partitions=partitions
        )

    rows: list[dict[str, Any]] = trio.run(main).rows
    return rows


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def _rows(rows: list[dict[str, Any]]) -> Counter[str]:
    return Counter(json.dumps(r, sort_keys=True) for r in rows)


def measure(records: int, repeat: int, partitions: int) -> dict[str, Any]:
    """W3 as SQL, as a Flow and as the floor, alternating; best of ``repeat`` each."""
    data = generate_trades(records)
    best: dict[str, float] = {}
    same = True
    for _ in range(repeat):
        sql_s, sql_rows = _timed(_run_sql, data, partitions)
        flow_s, flow_rows = _timed(_run_flow, data, partitions)
        floor_s, _ = _timed(WORKLOADS["W3"].floor, data)
        same = same and _rows(flow_rows) == _rows(sql_rows)
        for name, seconds in (("sql", sql_s), ("flow", flow_s), ("floor", floor_s)):
            best[name] = min(seconds, best.get(name, seconds))
    rate = {name: records / seconds for name, seconds in best.items()}
    return {
        "benchmark": "flow_windows_w3",
        "records": records,
        "partitions": partitions,
        "sql_rec_per_s": rate["sql"],
        "flow_rec_per_s": rate["flow"],
        "floor_rec_per_s": rate["floor"],
        "flow_vs_sql": rate["flow"] / rate["sql"],
        "flow_vs_floor": rate["flow"] / rate["floor"],
        "same_rows": same,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flow_windows")
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=1)
    args = parser.parse_args(argv)
    line = measure(args.records, args.repeat, args.partitions)
    print(json.dumps({**line, "python": sys.version.split()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
