"""A Flow with per-key state that checkpoints, crashes, and resumes exactly.

Run it: ``python docs/examples/flow_checkpoints.py``.  The first run dies on its
sink's 300th batch; the second, the same flow with the same checkpoint directory,
resumes from the last checkpoint (the file's position, each key's running total,
the lines already written), and the output is what one uninterrupted run writes.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import trio

import partita


class Crash(Exception):
    pass


class CrashingSink(partita.JsonLinesSink):
    """Writes rows to a file, and dies on its 300th batch (once)."""

    batches = 0

    async def consume(self, batch: partita.Batch) -> None:
        type(self).batches += 1
        if type(self).batches == 300:
            raise Crash("the process died here")
        await super().consume(batch)


class Slow(partita.JsonLinesSource):
    """A file read as if it arrived over time: a virtual millisecond per batch."""

    async def send_with_dead_letters(self, records, dead, offsets=None) -> None:  # type: ignore[no-untyped-def]
        await super().send_with_dead_letters(records, dead, offsets)
        await trio.sleep(0.001)


def running_total(state: dict[str, Any], r: dict[str, Any]) -> list[dict[str, Any]]:
    """Per key: how many records so far and their sum (the state is plain data)."""
    state["n"] = state.get("n", 0) + 1
    state["sum"] = state.get("sum", 0) + r["v"]
    return [{"k": r["k"], "n": state["n"], "sum": state["sum"]}]


def by_key(r: dict[str, Any]) -> Any:
    return r["k"]


async def run(folder: Path, sink: partita.JsonLinesSink) -> partita.GraphStats:
    flow = partita.Flow()
    (
        flow.source(Slow("source", folder / "in.jsonl", sizer=partita.BatchSizer.fixed(50)))
        .key_by(by_key, partitions=2)
        .stateful(running_total)
        .sink(sink)
    )
    return await flow.run(checkpoint=folder / "checkpoints", checkpoint_interval="5ms")


async def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        with (folder / "in.jsonl").open("w") as f:
            for i in range(20_000):
                f.write(json.dumps({"k": f"key-{i % 5}", "v": i}) + "\n")
        try:
            await run(folder, CrashingSink("sink", folder / "out.jsonl"))
        except partita.ActorFailed as failed:
            print("first run:", failed.error)
        stats = await run(folder, partita.JsonLinesSink("sink", folder / "out.jsonl"))
        print("second run resumed from checkpoint", stats.resumed_from is not None)
        rows = [json.loads(line) for line in (folder / "out.jsonl").read_text().splitlines()]
        last = {row["k"]: row for row in rows}
        print("rows:", len(rows), "distinct:", len({json.dumps(r) for r in rows}))
        print("key-0 last:", last["key-0"])


if __name__ == "__main__":
    trio.run(main)
