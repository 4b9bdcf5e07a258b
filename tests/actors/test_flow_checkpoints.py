"""Checkpoints of a Flow: a crashed flow run again gives the uninterrupted output.

The stateful operator's per-key states go into every checkpoint; a changed flow
is refused with both named; a state the codec cannot hold fails the checkpoint
with one line naming the operator, the function and the key; ``fresh=True``
starts over.  All under a MockClock: a virtual millisecond passes per batch.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import event, given, settings
from hypothesis import strategies as st

from partita.actors import Flow, IterableSource, JsonLinesSink
from partita.runtime import (
    ActorFailed,
    BatchSizer,
    CheckpointError,
    GraphStats,
    MemoryCheckpointStore,
    Record,
)
from partita.sql import stable_hash
from tests.actors.test_recovery import Crash, CrashingSink, TickingSource


def tally(state: dict[str, int], r: Record) -> list[Record]:
    """A running count and sum per key: every row says how far its key had got."""
    state["n"] = state.get("n", 0) + 1
    state["s"] = state.get("s", 0) + r["v"]
    return [{"k": r["k"], "n": state["n"], "s": state["s"]}]


def tally_twice(state: dict[str, int], r: Record) -> list[Record]:
    return tally(state, r) + tally(state, r)


def positive(r: Record) -> bool:
    return bool(r["v"] >= 0)


def label(r: Record) -> Record:
    return {**r, "k": f"key-{r['k']}"}  # str keys: hash() differs between processes


def key_of(r: Record) -> Any:
    return r["k"]


def build(
    path: Path,
    out: Path,
    *,
    partitions: int = 2,
    crash_at: int | None = None,
    fn: Any = tally,
    batch: int = 7,
) -> Flow:
    flow = Flow()
    (
        flow.source(TickingSource("source", path, sizer=BatchSizer.fixed(batch)))
        .filter(positive, name="positive")
        .map(label, name="label")
        .key_by(key_of, partitions=partitions, name="by-key")
        .stateful(fn, copy=copy.copy, name="tally")
        .sink(CrashingSink("sink", out, crash_at=crash_at))
    )
    return flow


def write(path: Path, raw: list[tuple[int, int]]) -> None:
    text = "".join(json.dumps({"k": k, "v": v}) + "\n" for k, v in raw)
    path.write_text(text, encoding="utf-8")


def rows_of(path: Path) -> list[str]:
    return sorted(path.read_text().splitlines())


@settings(deadline=None, max_examples=25)
@given(
    raw=st.lists(st.tuples(st.integers(0, 5), st.integers(-2, 9)), min_size=1, max_size=300),
    partitions=st.sampled_from((1, 3)),
    crashes=st.lists(st.integers(1, 10), min_size=1, max_size=3),
)
def test_a_crashed_flow_resumed_gives_the_uninterrupted_output(
    tmp_path_factory: pytest.TempPathFactory,
    raw: list[tuple[int, int]],
    partitions: int,
    crashes: list[int],
) -> None:
    folder = tmp_path_factory.mktemp("flow")
    path = folder / "in.jsonl"
    write(path, raw)
    expected, got = folder / "expected.jsonl", folder / "got.jsonl"

    async def main() -> GraphStats | None:
        await build(path, expected, partitions=partitions).run()
        store = MemoryCheckpointStore()
        for crash_at in crashes:
            flow = build(path, got, partitions=partitions, crash_at=crash_at)
            try:
                await flow.run(checkpoint=store, checkpoint_interval="1ms")
            except ActorFailed as failed:
                assert isinstance(failed.error, Crash)
                store = store.crashed()  # what the process leaves behind
            else:
                return None
        flow = build(path, got, partitions=partitions)
        return await flow.run(checkpoint=store, checkpoint_interval="1ms")

    stats = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert rows_of(got) == rows_of(expected)
    if stats is not None:
        event("resumed from a checkpoint" if stats.resumed_from is not None else "started afresh")
        assert stats["source"].rows_in == len(raw)  # every record counted once


async def crashed_once(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> Any:
    """The input, the output path, and the store a flow crashed on (with a checkpoint)."""
    path, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write(path, [(i % 4, i) for i in range(200)])
    store = MemoryCheckpointStore()
    with pytest.raises(ActorFailed, match="crash in batch 15"):
        await build(path, out, crash_at=15).run(checkpoint=store, checkpoint_interval="1ms")
    assert await store.latest() is not None
    return path, out, store.crashed()


async def test_a_resumed_flow_restores_the_stateful_states(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path, out, store = await crashed_once(tmp_path, autojump_clock)
    stats = await build(path, out).run(checkpoint=store, checkpoint_interval="1ms")
    assert stats.resumed_from is not None
    await build(path, tmp_path / "expected.jsonl").run()
    assert rows_of(out) == rows_of(tmp_path / "expected.jsonl")


async def test_a_changed_flow_is_refused_with_both_named(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path, out, store = await crashed_once(tmp_path, autojump_clock)
    with pytest.raises(CheckpointError, match=r"another job: it has .*tally_twice") as refused:
        await build(path, out, fn=tally_twice).run(checkpoint=store)
    message = str(refused.value)
    assert f"{__name__}.tally init=" in message
    assert f"{__name__}.tally_twice init=" in message
    with pytest.raises(CheckpointError, match=r"it has 'key_by by-key .* partitions=2'"):
        await build(path, out, partitions=3).run(checkpoint=store)


async def test_fresh_starts_over(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    path, out, store = await crashed_once(tmp_path, autojump_clock)
    stats = await build(path, out, fn=tally_twice).run(checkpoint=store, fresh=True)
    assert stats.resumed_from is None
    await build(path, tmp_path / "expected.jsonl", fn=tally_twice).run()
    assert rows_of(out) == rows_of(tmp_path / "expected.jsonl")


class Opaque:
    """A user's class: the state codec does not hold it."""


def keep_opaque(state: dict[str, Any], r: Record) -> None:
    state["last"] = Opaque()


async def test_a_state_the_codec_cannot_hold_fails_with_one_clear_line(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    flow = Flow()
    path = tmp_path / "in.jsonl"
    write(path, [(1, 1), (2, 2)])
    (
        flow.source(TickingSource("source", path, sizer=BatchSizer.fixed(1)))
        .key_by(key_of, name="by-key")
        .stateful(keep_opaque, name="keep")
        .sink(JsonLinesSink("sink", tmp_path / "out.jsonl"))
    )
    with pytest.raises(ActorFailed) as failed:
        await flow.run(checkpoint=MemoryCheckpointStore(), checkpoint_interval="1ms")
    message = str(failed.value)
    assert "\n" not in message
    assert isinstance(failed.value.error, TypeError)
    assert (
        f"operator 'keep' (function {__name__}.keep_opaque), key 1: cannot checkpoint a value "
        "of type Opaque at state['last']; a checkpointed state holds only None, bool, int, "
        "float, str, bytes and lists, tuples, dicts, sets and frozensets of them"
    ) in message


async def test_checkpoint_options_need_a_checkpoint(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    flow = Flow()
    # a generator can be read once only: its source cannot resume
    numbers = IterableSource("numbers", ({"x": i} for i in range(3)))
    flow.source(numbers).sink(JsonLinesSink("sink", tmp_path / "unused.jsonl"))
    with pytest.raises(ValueError, match="checkpoint_interval and fresh need checkpoint="):
        await flow.run(fresh=True)
    with pytest.raises(CheckpointError, match="a IterableSource cannot resume"):
        await flow.run(checkpoint=MemoryCheckpointStore())


def test_the_fingerprint_names_the_flow(tmp_path: Path) -> None:
    flow = build(tmp_path / "in.jsonl", tmp_path / "out.jsonl", partitions=3)
    assert flow.fingerprint().split(" | ") == [
        f"source TickingSource source {str(tmp_path / 'in.jsonl')!r}",
        f"filter positive {__name__}.positive",
        f"map label {__name__}.label",
        f"key_by by-key {__name__}.key_of partitions=3",
        f"stateful tally {__name__}.tally init=builtins.dict",
        f"sink sink {str(tmp_path / 'out.jsonl')!r}",
    ]


def test_with_checkpoints_keys_take_lanes_that_do_not_depend_on_the_process(
    tmp_path: Path,
) -> None:
    # hash() of a str changes with the process (PYTHONHASHSEED): a resumed process
    # must send each key to the lane whose restored state holds it
    path = tmp_path / "in.jsonl"
    raw = [(i % 6, i) for i in range(60)]
    write(path, raw)
    flow = build(path, tmp_path / "out.jsonl", partitions=3)

    async def main() -> GraphStats:
        return await flow.run(checkpoint=MemoryCheckpointStore(), checkpoint_interval="1ms")

    stats = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    expected = [0, 0, 0]
    for k, _ in raw:
        expected[stable_hash(f"key-{k}") % 3] += 1
    assert [stats[f"tally[{i}]"].rows_in for i in range(3)] == expected
