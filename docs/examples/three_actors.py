"""A three-actor graph inside your own ``trio.run(main)``.

A source of sensor readings, an actor that keeps a running mean per sensor
(its own state: no locks), and a deliberately slow sink.  While it runs, the
program pauses and resumes the graph, prints stats, and shows the slow sink
holding the fast source back: the source is never more than a few mailboxes'
worth of batches ahead.

Run it:  python docs/examples/three_actors.py
"""

from __future__ import annotations

import random

import attrs
import trio

from partita import Actor, Batch, BatchSizer, Graph, Sink, Source, open_supervisor


@attrs.define(eq=False)
class Readings(Source):
    """Sensor readings, ``total`` of them, in batches of the adaptive size."""

    total: int = 50_000
    sent: int = 0
    rng: random.Random = attrs.Factory(lambda: random.Random(7))

    async def produce(self) -> None:
        while self.sent < self.total:
            n = min(self.batch_size, self.total - self.sent)
            batch = [
                {"sensor": f"s{self.rng.randrange(8)}", "value": self.rng.gauss(20.0, 5.0)}
                for _ in range(n)
            ]
            self.sent += n
            await self.send_records(batch)


@attrs.define(eq=False)
class RunningMean(Actor):
    """Owns a (count, total) per sensor; emits the updated mean per record."""

    sums: dict[str, tuple[int, float]] = attrs.Factory(dict)

    def on_start(self) -> None:
        self.sums = {}  # fresh state at every (re)start

    def on_batch(self, batch: Batch) -> None:
        sums = self.sums
        out = []
        for record in batch.records:
            count, total = sums.get(record["sensor"], (0, 0.0))
            count, total = count + 1, total + record["value"]
            sums[record["sensor"]] = (count, total)
            out.append({"sensor": record["sensor"], "mean": total / count})
        self.emit(out)


@attrs.define(eq=False)
class SlowPrinter(Sink):
    """Takes a little while per batch, like a remote database would."""

    last: dict[str, float] = attrs.Factory(dict)

    async def consume(self, batch: Batch) -> None:
        for row in batch.records:
            self.last[row["sensor"]] = row["mean"]
        await trio.sleep(0.005)


async def main() -> None:
    graph = Graph()
    source = graph.add(Readings("readings", sizer=BatchSizer(minimum=100, maximum=2000)))
    means = graph.add(RunningMean("means"), inputs=[source], capacity=4)
    sink = graph.add(SlowPrinter("printer"), inputs=[means], capacity=4)

    async with open_supervisor(graph) as supervisor:
        await trio.sleep(0.05)
        supervisor.pause()
        paused = supervisor.stats()
        print(f"paused:  {paused.state}, source sent {paused['readings'].rows_out} records")
        await trio.sleep(0.05)
        assert supervisor.stats()["readings"].rows_out == paused["readings"].rows_out
        supervisor.resume()
        await trio.sleep(0.05)
        live = supervisor.stats()
        ahead = live["readings"].rows_out - live["printer"].rows_in
        print(f"running: source is {ahead} records ahead of the slow sink (bounded)")

    final = supervisor.stats()
    print(f"done:    {final.state}, sink got {final['printer'].rows_in} records")
    for sensor, mean in sorted(sink.last.items()):  # type: ignore[attr-defined]
        print(f"  {sensor}: mean {mean:.2f}")


if __name__ == "__main__":
    trio.run(main)
