"""The workloads: their SQL and the plain-CPython loop doing the same work (the floor).

Each floor is what a competent engineer would hand-write for that one query on
a list of dicts, with no framework: one loop, local-variable binding, output
rows built as dicts keyed by the select aliases (as partita's are).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["WORKLOADS", "Workload"]

Record = dict[str, Any]
Floor = Callable[[list[Record]], list[Record]]

WINDOW_MS = 1000


def floor_w0(records: list[Record]) -> list[Record]:
    """``SELECT * FROM trades``: one output row (a copy) per record."""
    return [dict(r) for r in records]


def floor_w1(records: list[Record]) -> list[Record]:
    """``SELECT symbol, price * qty AS notional FROM trades WHERE qty > 50``."""
    return [
        {"symbol": r["symbol"], "notional": r["price"] * r["qty"]} for r in records if r["qty"] > 50
    ]


def floor_w2(records: list[Record]) -> list[Record]:
    """GROUP BY symbol with COUNT(*), SUM(qty), AVG(price): rows at the end."""
    groups: dict[Any, list[Any]] = {}
    get = groups.get
    for r in records:
        acc = get(r["symbol"])
        if acc is None:
            groups[r["symbol"]] = [1, r["qty"], r["price"]]
        else:
            acc[0] += 1
            acc[1] += r["qty"]
            acc[2] += r["price"]
    return [
        {"symbol": k, "trades": a[0], "volume": a[1], "avg_price": a[2] / a[0]}
        for k, a in groups.items()
    ]


def _emit_window(emit: Callable[[Record], None], start: int, groups: dict[Any, list[Any]]) -> None:
    end = start + WINDOW_MS
    for symbol, a in groups.items():
        emit(
            {
                "symbol": symbol,
                "window_start": start,
                "window_end": end,
                "trades": a[0],
                "volume": a[1],
                "avg_price": a[2] / a[0],
            }
        )


def floor_w3(records: list[Record]) -> list[Record]:
    """1-second tumbling window by symbol, EMIT FINAL, watermark = max ts seen.

    Nested dicts ``{window_start: {symbol: acc}}`` (about 1.5x faster than one
    dict keyed by ``(symbol, start)``): a record in the window of the one before
    looks up only its symbol; a record that opens a new window checks lateness
    against the watermark and emits every window the watermark closed.
    """
    out: list[Record] = []
    emit = out.append
    windows: dict[int, dict[Any, list[Any]]] = {}
    window = windows.get
    watermark = -(2**63)
    current = -(2**63)
    groups: dict[Any, list[Any]] = {}
    late = 0
    for r in records:
        ts = r["ts"]
        if ts > watermark:
            watermark = ts
        start = ts - ts % WINDOW_MS
        if start != current:
            # (a record in the current window is never late: the one before it
            # was in it and the watermark has not left it since)
            if start + WINDOW_MS <= watermark:
                late += 1
                continue
            found = window(start)
            if found is None:
                found = windows[start] = {}
                if start > current:
                    for closed in [s for s in windows if s + WINDOW_MS <= watermark]:
                        _emit_window(emit, closed, windows.pop(closed))
            groups = found
            current = start
        acc = groups.get(r["symbol"])
        if acc is None:
            groups[r["symbol"]] = [1, r["qty"], r["price"]]
        else:
            acc[0] += 1
            acc[1] += r["qty"]
            acc[2] += r["price"]
    for start, open_groups in windows.items():
        _emit_window(emit, start, open_groups)
    return out


def floor_w4(records: list[Record]) -> list[Record]:
    """GROUP BY symbol EMIT CHANGES: one updated row per record."""
    out: list[Record] = []
    emit = out.append
    groups: dict[Any, list[Any]] = {}
    get = groups.get
    for r in records:
        symbol = r["symbol"]
        acc = get(symbol)
        if acc is None:
            acc = groups[symbol] = [1, r["qty"], r["price"]]
        else:
            acc[0] += 1
            acc[1] += r["qty"]
            acc[2] += r["price"]
        emit({"symbol": symbol, "trades": acc[0], "volume": acc[1], "avg_price": acc[2] / acc[0]})
    return out


@attrs.frozen
class Workload:
    """One benchmark workload: the query partita runs and its hand-written floor."""

    name: str
    sql: str
    floor: Floor
    event_time: str | None = None


_AGGS = "COUNT(*) AS trades, SUM(qty) AS volume, AVG(price) AS avg_price"

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("W0", "SELECT * FROM trades", floor_w0),
        Workload(
            "W1",
            "SELECT symbol, price * qty AS notional FROM trades WHERE qty > 50",
            floor_w1,
        ),
        Workload("W2", f"SELECT symbol, {_AGGS} FROM trades GROUP BY symbol", floor_w2),
        Workload(
            "W3",
            f"SELECT symbol, window_start, window_end, {_AGGS} FROM trades "
            "GROUP BY symbol, TUMBLE(ts, INTERVAL '1' SECOND)",
            floor_w3,
        ),
        Workload(
            "W4",
            f"SELECT symbol, {_AGGS} FROM trades GROUP BY symbol EMIT CHANGES",
            floor_w4,
        ),
    )
}
