"""Aligned-barrier checkpoints in the kernel: consistent cuts, commits, recovery, errors."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import pytest
import trio
import trio.testing

from partita.runtime import (
    Actor,
    ActorFailed,
    Barrier,
    Batch,
    CheckpointError,
    Checkpointing,
    EndOfStream,
    Graph,
    Mailbox,
    MemoryCheckpointStore,
    Sink,
    Source,
    decode_state,
    open_supervisor,
)
from partita.runtime._actor import cell_of


@attrs.define(eq=False)
class Numbers(Source):
    """Records ``{"i": 0..n-1}`` in batches of ``size``, one batch a virtual second."""

    n: int = 100
    size: int = 10
    pos: int = 0
    resumable: ClassVar[bool] = True

    async def produce(self) -> None:
        while self.pos < self.n:
            end = min(self.pos + self.size, self.n)
            records = [{"i": i} for i in range(self.pos, end)]
            self.pos = end
            await self.send_records(records)
            await trio.sleep(1)

    def snapshot_state(self) -> object:
        return self.pos

    def restore_state(self, state: object) -> None:
        assert isinstance(state, int)
        self.pos = state


@attrs.define(eq=False)
class RunningSum(Actor):
    """Per key ``i % 3``: emits the running sum after each record; may crash once."""

    crash_at: int | None = None
    sums: dict[int, int] = attrs.field(factory=dict)

    def on_batch(self, batch: Batch) -> None:
        out = []
        for record in batch.records:
            i = record["i"]
            if i == self.crash_at:
                self.crash_at = None
                raise RuntimeError(f"crash at {i}")
            key = i % 3
            self.sums[key] = self.sums.get(key, 0) + i
            out.append({"k": key, "sum": self.sums[key]})
        self.emit(out)

    def snapshot_state(self) -> object:
        return dict(self.sums)

    def restore_state(self, state: object) -> None:
        assert isinstance(state, dict)
        self.sums = dict(state)


@attrs.define(eq=False)
class FileLikeSink(Sink):
    """Appends rows to ``file`` (a list outliving the run, like a file); exactly-once."""

    file: list[dict[str, Any]] = attrs.field(factory=list)
    delivery: ClassVar[Any] = "exactly-once"

    async def consume(self, batch: Batch) -> None:
        self.file.extend(batch.records)

    def snapshot_state(self) -> object:
        return len(self.file)

    def restore_state(self, state: object) -> None:
        assert isinstance(state, int)
        del self.file[state:]  # what came after the checkpoint is written again


def make_graph(file: list[dict[str, Any]], crash_at: int | None = None) -> Graph:
    graph = Graph()
    source = graph.add(Numbers("source"))
    summer = graph.add(RunningSum("sum", crash_at=crash_at), inputs=[source])
    graph.add(FileLikeSink("sink", file=file), inputs=[summer])
    return graph


async def uninterrupted() -> list[dict[str, Any]]:
    file: list[dict[str, Any]] = []
    async with open_supervisor(make_graph(file)):
        pass
    return file


async def test_a_checkpoint_is_a_consistent_cut(autojump_clock: trio.testing.MockClock) -> None:
    store = MemoryCheckpointStore()
    file: list[dict[str, Any]] = []
    async with open_supervisor(make_graph(file), checkpoints=Checkpointing(store=store)) as sup:
        await trio.sleep(3.5)  # four batches sent
        first = await sup.checkpoint()
        await trio.sleep(2)
        second = await sup.checkpoint()
        latest = await store.latest()
        info = sup.stats().checkpoint
    assert (first, second) == (0, 1)
    assert latest is not None
    assert info is not None
    assert (info.id, info.size) == (1, sum(len(b) for b in latest.parts.values()))
    parts = {name: decode_state(blob) for name, blob in latest.parts.items()}
    assert isinstance(parts["source"], dict)
    pos = parts["source"]["state"]
    assert pos % 10 == 0 and 40 < pos < 100  # at a batch boundary, after what it sent
    # every part reflects exactly the records before that position
    assert parts["sum"]["state"] == {k: sum(i for i in range(pos) if i % 3 == k) for k in range(3)}
    assert parts["sum"]["counts"][0] == pos  # its rows_in, restored with the state
    assert parts["sink"]["state"] == pos  # one row per record before the barrier
    assert len(file) == 100
    assert await store.retained() == [0, 1, 2]  # 2: the end's "complete" marker


async def test_a_crash_then_a_resume_gives_the_uninterrupted_output(
    autojump_clock: trio.testing.MockClock,
) -> None:
    expected = await uninterrupted()
    store = MemoryCheckpointStore()
    file: list[dict[str, Any]] = []
    options = Checkpointing(store=store, interval="2s")
    with pytest.raises(ActorFailed, match="crash at 75"):
        async with open_supervisor(make_graph(file, crash_at=75), checkpoints=options):
            pass
    assert 0 < len(file) < len(expected)
    store = store.crashed()  # what the process leaves behind
    options = Checkpointing(store=store, interval="2s")
    latest = await store.latest()
    assert latest is not None
    # the same job again, new actors: it resumes at the last checkpoint, and the sink
    # takes back what it wrote after it
    async with open_supervisor(make_graph(file), checkpoints=options) as sup:
        assert sup.stats().resumed_from == latest.id
    assert file == expected
    assert sup.stats()["source"].rows_in == 100  # counted once across both runs


async def test_a_completed_run_starts_afresh_next_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryCheckpointStore()
    options = Checkpointing(store=store, interval="2s")
    for _ in range(2):
        file: list[dict[str, Any]] = []
        async with open_supervisor(make_graph(file), checkpoints=options) as sup:
            pass
        assert sup.stats().resumed_from is None
        assert len(file) == 100


async def test_a_cancelled_run_resumes_where_it_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    expected = await uninterrupted()
    store = MemoryCheckpointStore()
    options = Checkpointing(store=store)
    file: list[dict[str, Any]] = []
    async with open_supervisor(make_graph(file), checkpoints=options) as sup:
        await trio.sleep(4.5)
        await sup.checkpoint()
        await trio.sleep(2)
        await sup.cancel(graceful=True)  # Ctrl-C: drained, then stopped short
    async with open_supervisor(make_graph(file), checkpoints=options) as sup:
        assert sup.stats().resumed_from == 0
    assert file == expected


async def test_another_job_or_graph_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    store = MemoryCheckpointStore()
    file: list[dict[str, Any]] = []
    async with open_supervisor(
        make_graph(file), checkpoints=Checkpointing(store=store, fingerprint="job a")
    ) as sup:
        await trio.sleep(2.5)
        await sup.checkpoint()
        await sup.cancel(graceful=False)
    with pytest.raises(CheckpointError, match="taken of another job: it has 'job a', this one"):
        async with open_supervisor(
            make_graph(file), checkpoints=Checkpointing(store=store, fingerprint="job b")
        ):
            pass
    other = Graph()
    other.add(FileLikeSink("sink"), inputs=[other.add(Numbers("source"))])
    with pytest.raises(CheckpointError, match=r"actors \['sink', 'source', 'sum'\]"):
        async with open_supervisor(
            other, checkpoints=Checkpointing(store=store, fingerprint="job a")
        ):
            pass
    fresh = Checkpointing(store=store, fingerprint="job b", fresh=True)
    async with open_supervisor(make_graph([]), checkpoints=fresh) as sup:
        pass
    assert sup.stats().resumed_from is None


async def test_a_source_that_cannot_resume_is_refused() -> None:
    @attrs.define(eq=False)
    class Once(Source):
        async def produce(self) -> None:
            await self.send_records([{"x": 1}])

    graph = Graph()
    graph.add(FileLikeSink("sink"), inputs=[graph.add(Once("source"))])
    with pytest.raises(CheckpointError, match="a Once cannot resume from a checkpoint"):
        async with open_supervisor(graph, checkpoints=Checkpointing(store=MemoryCheckpointStore())):
            pass


async def test_checkpoint_without_checkpoints_is_a_clear_error() -> None:
    file: list[dict[str, Any]] = []
    async with open_supervisor(make_graph(file)) as sup:
        with pytest.raises(CheckpointError, match="checkpoints are off"):
            await sup.checkpoint()
        await sup.cancel(graceful=False)


async def test_sinks_say_what_they_guarantee() -> None:
    file: list[dict[str, Any]] = []
    async with open_supervisor(make_graph(file)) as sup:
        pass
    assert sup.stats()["sink"].delivery == "exactly-once"
    assert sup.stats()["sum"].delivery is None


# ------------------------------------------------------------------ alignment
@attrs.define(eq=False)
class Log(Actor):
    """Writes down what it handles, and what it had handled at each snapshot."""

    seen: list[Any] = attrs.field(factory=list)
    snapshots: list[tuple[int, list[Any]]] = attrs.field(factory=list)

    def on_batch(self, batch: Batch) -> None:
        self.seen += [r["v"] for r in batch.records]

    def on_barrier(self, barrier: Barrier) -> None:
        self.snapshots.append((barrier.checkpoint_id, list(self.seen)))


async def test_an_input_that_delivered_the_barrier_is_held_back() -> None:
    actor = Log("merge")
    box = Mailbox("merge", capacity=16)
    cell_of(actor).wire_input(box, 2)
    for port, message in [
        (0, Batch([{"v": "a1"}])),
        (0, Barrier(0)),
        (0, Batch([{"v": "a2"}])),  # after the barrier: not in checkpoint 0
        (1, Batch([{"v": "b1"}])),
        (1, Barrier(0)),  # aligned: snapshot, then a2
        (1, Batch([{"v": "b2"}])),
        (0, EndOfStream()),
        (1, EndOfStream()),
    ]:
        box.send_nowait(message, port)
    await cell_of(actor).run()
    assert actor.snapshots == [(0, ["a1", "b1"])]
    assert actor.seen == ["a1", "b1", "a2", "b2"]
