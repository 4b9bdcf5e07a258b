"""The seeded trade records every workload reads."""

from __future__ import annotations

import random
from typing import Any

__all__ = ["BASE_TS", "SYMBOLS", "generate_trades"]

BASE_TS = 1_700_000_000_000
"""Event time of the first trade (epoch milliseconds)."""

SYMBOLS = 50
"""How many distinct symbols the stream carries."""


def generate_trades(n: int, *, seed: int = 0, per_second: int = 10_000) -> list[dict[str, Any]]:
    """``n`` trades ``{"symbol", "price", "qty", "side", "ts"}`` in event-time order.

    About ``per_second`` trades per second of event time, so one million
    records span 100 one-second windows of 50 symbols.  The same ``seed``
    always gives the same list, in this process and in a fresh one.
    """
    rng = random.Random(seed)
    names = [f"S{i:03d}" for i in range(SYMBOLS)]
    prices = [rng.uniform(10.0, 500.0) for _ in range(SYMBOLS)]
    choice = rng.randrange
    gauss = rng.gauss
    step = 1000.0 / per_second
    records: list[dict[str, Any]] = []
    append = records.append
    t = float(BASE_TS)
    for _ in range(n):
        i = choice(SYMBOLS)
        price = prices[i] = max(1.0, prices[i] * (1.0 + gauss(0.0, 0.0005)))
        t += step
        append(
            {
                "symbol": names[i],
                "price": round(price, 2),
                "qty": 1 + choice(100),
                "side": "buy" if choice(2) else "sell",
                "ts": int(t),
            }
        )
    return records
