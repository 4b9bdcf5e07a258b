"""Typical record shapes, for the memory estimate's accuracy (its test and benchmark).

Each function builds 2,048 (or 512) records the way a source would: generated dicts
sharing their key strings and symbols, JSON lines decoded by msgspec and by the
stdlib, CSV rows, nested records, long strings, wide records and long lists (both
sampled by the estimate), tuples.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Callable
from typing import Any

import msgspec

__all__ = ["RECORD_KINDS"]


def _trades(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    symbols = [f"S{i:03d}" for i in range(50)]
    return [
        {
            "symbol": symbols[rng.randrange(50)],
            "price": round(rng.uniform(10, 500), 2),
            "qty": 1 + rng.randrange(100),
            "side": "buy" if rng.randrange(2) else "sell",
            "ts": 1_700_000_000_000 + i,
        }
        for i in range(n)
    ]


_LINES = b"".join(json.dumps(r).encode() + b"\n" for r in _trades(2048))
_CSV = "symbol,price,qty,side,ts\n" + "".join(
    f"{r['symbol']},{r['price']},{r['qty']},{r['side']},{r['ts']}\n" for r in _trades(2048)
)

RECORD_KINDS: dict[str, Callable[[], list[Any]]] = {
    "generated trades": lambda: _trades(2048),
    "msgspec JSON lines": lambda: msgspec.json.Decoder().decode_lines(_LINES),
    "stdlib json per line": lambda: [json.loads(line) for line in _LINES.splitlines()],
    "csv.DictReader rows": lambda: list(csv.DictReader(io.StringIO(_CSV))),
    "nested": lambda: [
        {
            "id": i,
            "user": {"name": f"user{i}", "tags": [f"t{i % 7}", f"x{i}"]},
            "items": [{"sku": f"s{j}", "n": j} for j in range(3)],
        }
        for i in range(2048)
    ],
    "long strings": lambda: [
        {"id": i, "text": "lorem ipsum " * (i % 20) + str(i), "v": i * 1.5} for i in range(2048)
    ],
    "wide records (40 fields, sampled)": lambda: [
        {f"f{j}": i * 100.0 + j for j in range(40)} for i in range(512)
    ],
    "long lists (sampled)": lambda: [
        {"id": i, "xs": [i * 1.5 + j for j in range(100)]} for i in range(512)
    ],
    "tuples": lambda: [(f"k{i}", i * 0.5, [i, i + 1000]) for i in range(2048)],
}
