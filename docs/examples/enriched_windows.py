"""A Flow with an async enrichment step and a keyed tumbling window.

Run inside your own ``trio.run(main)`` and read with ``async for``; its property
test runs on virtual time (``partita.testing.run_sync``), so the 10 ms "service
call" never sleeps for real.  ``pytest docs/examples/enriched_windows.py`` runs the
tests; ``python docs/examples/enriched_windows.py`` runs ``main``.
"""

import trio
from hypothesis import given, settings

from partita import Flow, IterableSource
from partita.testing import run_sync, streams

PRICES = {"a": 2, "b": 3, "c": 5}


async def price(order: dict) -> dict:
    """The enrichment: a call to a price service, in real life (here 10 ms of trio time)."""
    await trio.sleep(0.01)
    return {**order, "amount": order["v"] * PRICES[order["k"]]}


def pipeline(stream):
    """Price each order (8 calls at once, results in input order), then per key and
    one-second tumbling window: how many orders and their total amount."""
    return (
        stream.map_async(price, max_in_flight=8)
        .key_by(lambda order: order["k"])
        .tumbling("1s", ts="ts")
        .aggregate(orders="count", amount=("sum", "amount"))
    )


ORDERS = [{"k": "abc"[i % 3], "v": i, "ts": 250 * i} for i in range(12)]


async def main() -> None:
    flow = Flow()
    pipeline(flow.source(IterableSource("orders", ORDERS)))  # no .sink(): we read the rows
    async with flow.open() as rows:
        async for row in rows:
            print(row["key"], row["window_start"], row["orders"], row["amount"])


@settings(max_examples=25, deadline=None)
@given(streams(max_size=30, max_step_ms=400))
def test_every_order_is_priced_and_counted_once(stream) -> None:
    rows = run_sync(pipeline, stream.records)
    assert sum(row["orders"] for row in rows) == len(stream.records)
    assert sum(row["amount"] for row in rows) == sum(
        order["v"] * PRICES[order["k"]] for order in stream.records
    )
    for row in rows:  # every window is one second, aligned, of one key
        assert row["window_end"] - row["window_start"] == 1000
        assert row["window_start"] % 1000 == 0


def test_main_prints_each_key_and_window() -> None:
    expected = [
        ("a", 0, 2, 6),
        ("b", 0, 1, 3),
        ("c", 0, 1, 10),
    ]
    rows = run_sync(pipeline, ORDERS)
    got = sorted((r["key"], r["window_start"], r["orders"], r["amount"]) for r in rows)
    assert [g for g in got if g[1] == 0] == expected


if __name__ == "__main__":
    trio.run(main)
