"""Graph building and validation, with the exact messages."""

from __future__ import annotations

import attrs
import pytest

from partita.runtime import Actor, ActorState, Batch, BatchSizer, Graph, Sink, Source, run_graph
from tests.runtime._helpers import Counter, chain


def test_add_and_connect_validate_with_exact_messages() -> None:
    g = Graph()
    src = g.add(Source("src"))
    mid = g.add(Actor("mid"), inputs=[src])
    with pytest.raises(ValueError, match=r"^an actor named 'mid' is already in the graph$"):
        g.add(Actor("mid"))
    with pytest.raises(ValueError, match=r"^capacity must be >= 1, got 0$"):
        g.add(Actor("zero"), capacity=0)
    with pytest.raises(
        ValueError, match=r"^actor 'stranger' is not in the graph; add\(\) it first$"
    ):
        g.connect(Actor("stranger"), mid)
    impostor = Actor("mid")
    with pytest.raises(ValueError, match=r"^actor 'mid' is not in the graph; add\(\) it first$"):
        g.connect(src, impostor)
    with pytest.raises(ValueError, match=r"^source 'src' cannot have inputs$"):
        g.connect(mid, src)
    out = g.add(Actor("out"), inputs=[mid])
    with pytest.raises(ValueError, match=r"^connecting 'out' -> 'mid' makes a cycle$"):
        g.connect(out, mid)
    with pytest.raises(ValueError, match=r"^connecting 'mid' -> 'mid' makes a cycle$"):
        g.connect(mid, mid)


def test_validate_with_exact_messages() -> None:
    with pytest.raises(ValueError, match=r"^the graph is empty$"):
        Graph().validate()
    g = Graph()
    g.add(Actor("lonely"))
    with pytest.raises(ValueError, match=r"^the graph has no source$"):
        g.validate()
    g = Graph()
    g.add(Source("src"))
    g.add(Actor("orphan"))
    with pytest.raises(ValueError, match=r"^actor 'orphan' has no input$"):
        g.validate()


def test_topological_order_and_ports() -> None:
    g = Graph()
    b = g.add(Source("b"))
    a = g.add(Source("a"))
    join = g.add(Actor("join"), inputs=[a, b], capacity=3)
    sink = g.add(Sink("sink"), inputs=[join])
    order = [x.name for x in g.topological()]
    assert order.index("join") > max(order.index("a"), order.index("b"))
    assert order[-1] == "sink"
    assert g.inputs_of(join) == [a, b]
    assert g.capacity_of(join) == 3
    assert g["sink"] is sink
    assert len(g) == 4


async def test_a_graph_runs_once() -> None:
    g = Graph()
    src = g.add(Source("src"))
    g.add(Sink("sink"), inputs=[src])
    await run_graph(g)
    with pytest.raises(ValueError, match=r"^actor 'src' already ran; a graph runs once$"):
        await run_graph(g)


@attrs.define(eq=False)
class _Tally(Actor):
    """Uses the names the kernel keeps for itself elsewhere: ``state``, ``inbox``, ..."""

    state: dict[str, int] = attrs.field(factory=dict)
    inbox: list[int] = attrs.field(factory=list)
    outbox: list[int] = attrs.field(factory=list)
    life: str = "long"
    pending: int = 0
    current: int = 0
    cell: str = "mine"

    def on_batch(self, batch: Batch) -> None:
        for r in batch.records:
            self.state["n"] = self.state.get("n", 0) + 1
            self.inbox.append(r["i"])
        self.pending += 1
        self.emit(batch.records)


class _Plain(Sink):
    """A plain (not attrs) subclass assigning ``self.state`` and friends at run time."""

    def on_start(self) -> None:
        self.state = "open"
        self.got: list[int] = []

    async def consume(self, batch: Batch) -> None:
        self.got.extend(r["i"] for r in batch.records)

    def on_end(self) -> None:
        self.state = "closed"


async def test_subclasses_may_name_attributes_state_and_the_like() -> None:
    tally = _Tally("tally")
    sink = _Plain("sink")
    g = chain(Counter("src", limit=25, sizer=BatchSizer.fixed(10)), tally, sink)
    stats = await run_graph(g)
    assert tally.state == {"n": 25} and tally.inbox == list(range(25))
    assert (tally.pending, tally.life, tally.cell) == (3, "long", "mine")
    assert sink.state == "closed" and sink.got == list(range(25))
    assert tally.lifecycle_state is ActorState.COMPLETED is sink.lifecycle_state
    assert stats["tally"].state is ActorState.COMPLETED
    assert [a.state for a in stats.actors] == [ActorState.COMPLETED] * 3
    assert g["src"].state is ActorState.COMPLETED  # not shadowed: the lifecycle
