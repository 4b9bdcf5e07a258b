"""A windowed query that checkpoints, crashes, and resumes exactly where it was.

Run it: ``python docs/examples/checkpoints.py``.  The first run dies halfway
(an exception in the sink, as a crash would); the second, the same job with the
same checkpoint directory, resumes from the last checkpoint, and the output
file ends up exactly as one uninterrupted run would have written it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import trio

import partita

QUERY = (
    "SELECT k, window_start, COUNT(*) AS n, SUM(v) AS total FROM t "
    "GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"
)


class Crash(Exception):
    pass


class CrashingSink(partita.JsonLinesSink):
    """Writes rows to a file, and dies on its 20th batch (once)."""

    batches = 0

    async def consume(self, batch: partita.Batch) -> None:
        type(self).batches += 1
        if type(self).batches == 20:
            raise Crash("the process died here")
        await super().consume(batch)


class Slow(partita.JsonLinesSource):
    """A file read as if it arrived over time: a virtual millisecond per batch."""

    async def send_with_dead_letters(self, records, dead, offsets=None) -> None:  # type: ignore[no-untyped-def]
        await super().send_with_dead_letters(records, dead, offsets)
        await trio.sleep(0.001)


async def run(folder: Path, sink: partita.JsonLinesSink) -> partita.GraphStats:
    result = await partita.run_sql(
        QUERY,
        Slow("source", folder / "in.jsonl", sizer=partita.BatchSizer.fixed(100)),
        sink,
        checkpoint=folder / "checkpoints",
        checkpoint_interval="5ms",
    )
    return result.stats


async def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        with (folder / "in.jsonl").open("w") as f:
            for i in range(20_000):
                f.write(json.dumps({"k": i % 7, "v": i, "ts": i}) + "\n")
        try:
            await run(folder, CrashingSink("sink", folder / "out.jsonl"))
        except partita.ActorFailed as failed:
            print("first run:", failed.error)
        stats = await run(folder, partita.JsonLinesSink("sink", folder / "out.jsonl"))
        print("second run resumed from checkpoint", stats.resumed_from is not None)
        rows = (folder / "out.jsonl").read_text().splitlines()
        print("rows:", len(rows), "distinct:", len(set(rows)))


if __name__ == "__main__":
    trio.run(main)
