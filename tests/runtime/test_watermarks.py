"""Watermarks: the minimum over live inputs, monotonic; barriers align across inputs."""

from __future__ import annotations

import attrs

from partita.runtime import Actor, Barrier, EndOfStream, Idle, Mailbox, Watermark
from partita.runtime._actor import cell_of


@attrs.define(eq=False)
class Recorder(Actor):
    watermarks: list[int] = attrs.field(init=False, factory=list)
    barriers: list[int] = attrs.field(init=False, factory=list)
    ended: bool = attrs.field(init=False, default=False)

    def on_watermark(self, ts: int) -> None:
        self.watermarks.append(ts)

    def on_barrier(self, barrier: Barrier) -> None:
        self.barriers.append(barrier.checkpoint_id)

    def on_end(self) -> None:
        self.ended = True


async def feed(actor: Recorder, inputs: int, messages: list[tuple[int, object]]) -> None:
    box = Mailbox(actor.name, capacity=len(messages) + 1)
    cell_of(actor).wire_input(box, inputs)
    for port, message in messages:
        box.send_nowait(message, port)  # type: ignore[arg-type]
    await cell_of(actor).run()


async def test_watermark_is_the_minimum_over_inputs() -> None:
    actor = Recorder("join")
    await feed(
        actor,
        3,
        [
            (0, Watermark(10)),
            (1, Watermark(5)),  # port 2 has said nothing yet: no watermark
            (2, Watermark(7)),  # min(10, 5, 7) = 5
            (1, Watermark(20)),  # min(10, 20, 7) = 7
            (1, Watermark(3)),  # never backwards on a port
            (2, Watermark(30)),  # min(10, 20, 30) = 10
            (0, EndOfStream()),  # port 0 ended: min(20, 30) = 20
            (2, Watermark(25)),  # still 20
            (1, EndOfStream()),  # min(30) = 30
            (2, EndOfStream()),
        ],
    )
    assert actor.watermarks == [5, 7, 10, 20, 30]
    assert actor.ended


async def test_single_input_watermark_only_moves_forward() -> None:
    actor = Recorder("one")
    await feed(
        actor,
        1,
        [
            (0, Watermark(5)),
            (0, Watermark(4)),
            (0, Watermark(5)),
            (0, Watermark(9)),
            (0, EndOfStream()),
        ],
    )
    assert actor.watermarks == [5, 9]


async def test_barriers_align_across_inputs() -> None:
    actor = Recorder("join")
    await feed(
        actor,
        2,
        [
            (0, Barrier(1)),
            (0, Barrier(2)),
            (1, Barrier(1)),  # both inputs delivered 1
            (1, EndOfStream()),  # input 1 ended: 2 needs input 0 only, which delivered it
            (0, Barrier(3)),
            (0, EndOfStream()),
        ],
    )
    assert actor.barriers == [1, 2, 3]


async def test_an_idle_input_is_left_out_until_its_next_watermark() -> None:
    actor = Recorder("join")
    await feed(
        actor,
        3,
        [
            (0, Watermark(10)),
            (1, Idle()),  # port 1 has no event time: not waited for
            (2, Watermark(7)),  # min(10, 7) = 7
            (2, Watermark(12)),  # min(10, 12) = 10
            (1, Watermark(4)),  # port 1 is back, behind: min 4, never backwards
            (0, Watermark(30)),
            (2, Watermark(30)),  # min(30, 4, 30) = 4: still 10
            (1, Watermark(20)),  # min(30, 20, 30) = 20
            (1, Idle()),  # idle again: min(30, 30) = 30
            (0, Idle()),
            (2, Idle()),  # every input idle: nothing to combine
            (0, EndOfStream()),
            (1, EndOfStream()),
            (2, EndOfStream()),
        ],
    )
    assert actor.watermarks == [7, 10, 20, 30]
    assert actor.ended
