"""The graph builder: which actors exist and who sends to whom."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs

from ._actor import Actor
from ._source import Source

__all__ = ["Graph"]


@attrs.define
class Graph:
    """A directed acyclic graph of actors, built before it runs.

    Each non-source actor has one bounded inbox of ``capacity`` messages
    (batches); its inputs send into it.  An actor's outputs are numbered in the
    order they were connected, which is what ``emit(..., output=i)`` refers to.
    A graph runs once.

    Example:
        >>> g = Graph()
        >>> src = g.add(Source("src"))
        >>> out = g.add(Actor("out"), inputs=[src], capacity=4)
        >>> [a.name for a in g]
        ['src', 'out']
    """

    _actors: dict[str, Actor] = attrs.field(init=False, factory=dict)
    _inputs: dict[str, list[str]] = attrs.field(init=False, factory=dict)
    _capacity: dict[str, int] = attrs.field(init=False, factory=dict)

    def add(self, actor: Actor, *, inputs: Iterable[Actor] = (), capacity: int = 16) -> Actor:
        """Add ``actor``, fed by ``inputs``, with an inbox of ``capacity`` messages.

        Raises:
            ValueError: the name is taken, an input is not in the graph, a source
                is given inputs, or ``capacity < 1``.
        """
        if actor.name in self._actors:
            raise ValueError(f"an actor named {actor.name!r} is already in the graph")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._actors[actor.name] = actor
        self._inputs[actor.name] = []
        self._capacity[actor.name] = capacity
        for upstream in inputs:
            self.connect(upstream, actor)
        return actor

    def connect(self, upstream: Actor, downstream: Actor) -> None:
        """Make ``upstream`` send to ``downstream`` (its next output number)."""
        for actor in (upstream, downstream):
            if self._actors.get(actor.name) is not actor:
                raise ValueError(f"actor {actor.name!r} is not in the graph; add() it first")
        if isinstance(downstream, Source):
            raise ValueError(f"source {downstream.name!r} cannot have inputs")
        if upstream.name in self._reachable_from(downstream.name):
            raise ValueError(f"connecting {upstream.name!r} -> {downstream.name!r} makes a cycle")
        self._inputs[downstream.name].append(upstream.name)

    def replace(self, actor: Actor, by: Actor) -> None:
        """Put ``by`` where ``actor`` is: same name, same inputs, outputs and inbox
        (a wrapper around it, before the graph runs).

        Raises:
            ValueError: ``actor`` is not in the graph, or ``by`` has another name.
        """
        if self._actors.get(actor.name) is not actor:
            raise ValueError(f"actor {actor.name!r} is not in the graph")
        if by.name != actor.name:
            raise ValueError(f"{by.name!r} cannot replace {actor.name!r}: the names differ")
        self._actors[actor.name] = by

    def _reachable_from(self, name: str) -> set[str]:
        seen = {name}
        stack = [name]
        while stack:
            current = stack.pop()
            for other, ins in self._inputs.items():
                if current in ins and other not in seen:
                    seen.add(other)
                    stack.append(other)
        return seen

    def __iter__(self) -> Iterator[Actor]:
        return iter(self._actors.values())

    def __len__(self) -> int:
        return len(self._actors)

    def __getitem__(self, name: str) -> Actor:
        return self._actors[name]

    def inputs_of(self, actor: Actor) -> list[Actor]:
        """The actors that send to ``actor``, in port order."""
        return [self._actors[n] for n in self._inputs[actor.name]]

    def capacity_of(self, actor: Actor) -> int:
        return self._capacity[actor.name]

    def validate(self) -> None:
        """Check the graph can run.

        Raises:
            ValueError: it is empty, has no source, or an actor other than a
                source has no input.
        """
        if not self._actors:
            raise ValueError("the graph is empty")
        if not any(isinstance(a, Source) for a in self):
            raise ValueError("the graph has no source")
        for actor in self:
            if not isinstance(actor, Source) and not self._inputs[actor.name]:
                raise ValueError(f"actor {actor.name!r} has no input")

    def topological(self) -> list[Actor]:
        """The actors, every one after all of its inputs."""
        order: list[Actor] = []
        placed: set[str] = set()
        remaining = list(self._actors)
        while remaining:
            ready = [n for n in remaining if all(i in placed for i in self._inputs[n])]
            for name in ready:
                order.append(self._actors[name])
                placed.add(name)
            remaining = [n for n in remaining if n not in placed]
        return order
