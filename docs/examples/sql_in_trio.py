"""Streaming SQL and Python operators inside your own ``trio.run(main)``.

Four short scenes over generated trades (``partita.TradeSource``):

1. ``run_sql``: a one-second tumbling window per symbol, across 4 partition
   actors, run to the end; the rows come back on the result.
2. ``open_sql``: an ``EMIT CHANGES`` query read row by row as it runs, paused
   and resumed midway, then left early, which cancels the whole graph.
3. bad input: a record with a string quantity goes to the dead letters,
   with its offset and the reason, instead of disappearing.
4. ``Flow``: the same kind of pipeline from plain Python functions, with a
   per-symbol running VWAP kept as per-key state.

Run it:  python docs/examples/sql_in_trio.py
"""

from __future__ import annotations

from typing import Any

import trio

import partita

WINDOWED = """
    SELECT symbol, COUNT(*) AS trades, SUM(qty) AS volume, window_start
    FROM trades
    GROUP BY symbol, TUMBLE(ts, INTERVAL '1' SECOND)
"""
CHANGES = (
    "SELECT symbol, COUNT(*) AS trades, SUM(qty) AS volume FROM t GROUP BY symbol EMIT CHANGES"
)


async def scene_run_sql() -> None:
    trades = partita.TradeSource("source", records=20_000, symbols=5, disorder_ms=50)
    run = await partita.run_sql(WINDOWED, trades, partitions=4, allowed_lateness="20ms")
    source = run.stats["source"]
    print(
        f"run_sql: {source.rows_out} trades -> {len(run.rows)} window rows, "
        f"{run.stats.rows_late} late, state {run.stats.state.name}"
    )
    first = min(run.rows, key=lambda r: (r["window_start"], r["symbol"]))
    print(f"  first window row: {first}")


async def scene_open_sql() -> None:
    # 2,000 trades/s, so the stream is still running when we pause and leave.
    trades = partita.TradeSource("source", records=1_000_000, rate=2_000, symbols=3)
    async with partita.open_sql(CHANGES, trades, partitions=2) as stream:
        supervisor = stream.supervisor
        seen = 0
        async for row in stream:
            seen += 1
            if seen == 500:
                supervisor.pause()  # takes effect at each actor's next batch boundary
                await trio.sleep(0.5)
                before = supervisor.stats()["source"].rows_out
                await trio.sleep(2)  # nothing moves while paused
                after = supervisor.stats()["source"].rows_out
                print(
                    f"open_sql: paused at {seen} rows: {supervisor.state.name}, "
                    f"source read {after - before} records while paused"
                )
                supervisor.resume()
            if seen == 1_000:
                print(f"  row 1000: {row}")
                break  # leaving early cancels everything upstream
    stats = supervisor.stats()
    states = sorted({a.state.name for a in stats.actors})
    print(f"  left early: graph {stats.state.name}, actors {states}")


async def scene_dead_letters() -> None:
    records: list[dict[str, Any]] = [
        {"symbol": "A", "qty": 10},
        {"symbol": "B", "qty": "ten"},  # bad: a string quantity
        {"symbol": "A", "qty": 5},
    ]
    run = await partita.run_sql(
        "SELECT symbol, qty + 1 AS next_qty FROM t", records, on_error="dead-letter"
    )
    print(f"dead letters: rows {run.rows}")
    for letter in run.dead_letters:
        print(f"  offset {letter.offset} ({letter.stage}): {letter.reason}")


def vwap(state: dict[str, float], trade: dict[str, Any]) -> list[dict[str, Any]]:
    state["value"] = state.get("value", 0.0) + trade["price"] * trade["qty"]
    state["qty"] = state.get("qty", 0.0) + trade["qty"]
    return [{"symbol": trade["symbol"], "vwap": round(state["value"] / state["qty"], 2)}]


async def scene_flow() -> None:
    out = partita.CollectSink("out")
    flow = partita.Flow()
    (
        flow.source(partita.TradeSource("trades", records=10_000, symbols=4, seed=3))
        .filter(lambda t: t["side"] == "buy")
        .map(lambda t: {"symbol": t["symbol"], "price": t["price"], "qty": t["qty"]})
        .key_by(lambda t: t["symbol"], partitions=2)
        .stateful(vwap, init=dict)
        .sink(out)
    )
    stats = await flow.run()
    latest = {row["symbol"]: row["vwap"] for row in out.rows}
    print(
        f"flow: {stats['filter-1'].rows_in} trades, {len(out.rows)} VWAP updates, "
        f"{len(latest)} symbols, state {stats.state.name}"
    )


async def main() -> None:
    await scene_run_sql()
    await scene_open_sql()
    await scene_dead_letters()
    await scene_flow()


if __name__ == "__main__":
    trio.run(main)
