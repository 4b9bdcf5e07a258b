"""A generated stream of realistic trades, for demos and benchmarks."""

from __future__ import annotations

import random
import string
from typing import Any, ClassVar

import attrs
import trio

from partita.runtime import Record

from ._sources import RecordSource

__all__ = ["TradeSource"]

_EPOCH_MS = 1_700_000_000_000  # a fixed start, so runs are reproducible


def _symbols(count: int, rng: random.Random) -> list[str]:
    letters = string.ascii_uppercase
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        symbol = "".join(rng.choice(letters) for _ in range(rng.choice((3, 4))))
        if symbol not in seen:
            seen.add(symbol)
            out.append(symbol)
    return out


@attrs.define(eq=False)
class TradeSource(RecordSource):
    """Generates trades ``{"symbol", "price", "qty", "side", "ts"}``, reproducibly.

    Prices follow a small random walk per symbol; ``ts`` is epoch ms from a
    fixed start, one ms apart (``1000 / rate`` ms apart with a
    rate), then moved back by up to ``disorder_ms`` (bounded disorder).  With
    ``rate`` the source sends at most that many records per second, sleeping
    with ``trio.sleep_until`` once per batch.

    Example:
        >>> src = TradeSource("source", records=100_000, rate=50_000, disorder_ms=20)

    Args:
        name: unique within its graph.
        records: how many trades to generate.
        rate: records per second (``None``: as fast as downstream takes them).
        seed: the random seed; the same seed gives the same trades.
        symbols: how many distinct symbols.
        disorder_ms: the most a trade's ``ts`` lags the trade before it in time.
    """

    records: int = attrs.field(kw_only=True, validator=attrs.validators.ge(0))
    rate: float | None = attrs.field(default=None, kw_only=True)
    seed: int = attrs.field(default=0, kw_only=True)
    symbols: int = attrs.field(default=50, kw_only=True, validator=attrs.validators.ge(1))
    disorder_ms: int = attrs.field(default=0, kw_only=True, validator=attrs.validators.ge(0))
    _made: int = attrs.field(init=False, default=0)
    _rng: random.Random | None = attrs.field(init=False, default=None)
    _names: list[str] = attrs.field(init=False, factory=list)
    _prices: list[float] = attrs.field(init=False, factory=list)
    _started: float | None = attrs.field(init=False, default=None)
    resumable: ClassVar[bool] = True

    def __attrs_post_init__(self) -> None:
        if self.rate is not None and self.rate <= 0:
            raise ValueError(f"rate must be > 0 records/s or None, got {self.rate}")

    def _generate(self, n: int) -> list[Record]:
        rng = self._rng
        assert rng is not None
        names = self._names
        prices = self._prices
        nsym = len(names)
        step = 1.0 if self.rate is None else 1000.0 / self.rate
        disorder = self.disorder_ms
        rand = rng.random
        start = self._made
        out: list[Record] = []
        append = out.append
        for i in range(start, start + n):
            s = int(rand() * nsym)  # randrange costs ~4x as much
            price = prices[s] = max(0.01, prices[s] * (1.0 + (rand() - 0.5) * 0.002))
            ts = _EPOCH_MS + int(i * step)
            if disorder:
                ts -= int(rand() * (disorder + 1))
            append(
                {
                    "symbol": names[s],
                    "price": round(price, 2),
                    "qty": 1 + int(rand() * 999),
                    "side": "buy" if rand() < 0.5 else "sell",
                    "ts": ts,
                }
            )
        self._made = start + n
        return out

    def snapshot_state(self) -> object:
        """How many trades were made, and the generator's state: it resumes exactly."""
        if self._rng is None:
            return None
        return {
            "made": self._made,
            "rng": self._rng.getstate(),
            "names": list(self._names),
            "prices": list(self._prices),
        }

    def restore_state(self, state: object) -> None:
        if state is None:
            return
        saved: Any = state
        rng = random.Random()
        rng.setstate(saved["rng"])
        self._rng = rng
        self._made = saved["made"]
        self._names = list(saved["names"])
        self._prices = list(saved["prices"])

    async def produce(self) -> None:
        if self._rng is None:
            self._rng = rng = random.Random(self.seed)
            self._names = _symbols(self.symbols, rng)
            self._prices = [rng.uniform(5.0, 500.0) for _ in self._names]
        if self._started is None:  # (a resumed source is as far along as it was)
            ahead = self._made / self.rate if self.rate is not None else 0.0
            self._started = trio.current_time() - ahead
        while self._made < self.records:
            n = min(self.batch_size, self.records - self._made)
            if self.rate is not None:
                n = min(n, max(1, int(self.rate * 0.05)))  # at least 20 batches/s
                await trio.sleep_until(self._started + (self._made + n) / self.rate)
            await self.send_records(self._generate(n))
