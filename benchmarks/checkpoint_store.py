"""Checkpoint foundations: the state codec and the SQLite store, timed.  Prints JSON.

    python -m benchmarks.checkpoint_store [--folder DIR]

- codec: a state of 100,000 groups (``(str, int)`` keys, 3-item lists): size,
  ``encode_state`` and ``decode_state`` time, and (``encode_walk_s``) the encoding
  through the Python walk alone, as every state was encoded before the C packer
  did the walking (the same bytes);
- store: 20 checkpoints of 100 parts of 10 KB in a fresh SQLite store in
  ``--folder`` (default: a temporary folder): median time to stage the 100
  parts, to commit, and to read the latest back.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from partita.runtime import _state_codec, decode_state, encode_state, open_sqlite_store

__all__ = ["main", "measure_codec", "measure_store"]


def measure_codec(groups: int = 100_000) -> dict[str, Any]:
    """Encode and decode a state of ``groups`` groups once; sizes and seconds."""
    state = {(f"k{i}", i * 1000): [i, i / 3, "xxxxx"] for i in range(groups)}
    started = time.perf_counter()
    data = encode_state(state)
    encoded = time.perf_counter()
    assert decode_state(data) == state
    decoded = time.perf_counter()
    _state_codec._pack_walked(state)
    walked = time.perf_counter()
    return {
        "groups": groups,
        "bytes": len(data),
        "encode_s": round(encoded - started, 4),
        "decode_s": round(decoded - encoded, 4),
        "encode_walk_s": round(walked - decoded, 4),
    }


async def measure_store(folder: Path, *, checkpoints: int = 20, parts: int = 100) -> dict[str, Any]:
    """``checkpoints`` checkpoints of ``parts`` parts of 10 KB; median milliseconds."""
    blob = os.urandom(10_000)
    stage: list[float] = []
    commit: list[float] = []
    async with open_sqlite_store(folder / "bench.db", job="bench") as store:
        for n in range(1, checkpoints + 1):
            started = time.perf_counter()
            for actor in range(parts):
                await store.stage(n, f"p{actor}", blob)
            staged = time.perf_counter()
            await store.commit(n, b"manifest")
            stage.append(staged - started)
            commit.append(time.perf_counter() - staged)
        started = time.perf_counter()
        latest = await store.latest()
        read = time.perf_counter() - started
    assert latest is not None
    assert len(latest.parts) == parts
    return {
        "checkpoints": checkpoints,
        "parts": parts,
        "part_bytes": len(blob),
        "stage_all_ms": round(statistics.median(stage) * 1e3, 2),
        "commit_ms": round(statistics.median(commit) * 1e3, 2),
        "latest_ms": round(read * 1e3, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        store = trio.run(measure_store, Path(folder))
    print(json.dumps({"codec": measure_codec(), "sqlite_store": store}, indent=2))


if __name__ == "__main__":
    main()
