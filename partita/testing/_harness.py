"""Drive a query or a Flow from a test: feed records, let virtual time pass, look."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import attrs
import trio
import trio.testing

from partita.actors import CollectSink, Flow, FlowStream, IterableSource, build_sql_graph, run_sql
from partita.actors._sources import RecordSource
from partita.runtime import (
    ActorState,
    DeadLetter,
    Graph,
    GraphStats,
    Record,
    Source,
    Supervisor,
    open_supervisor,
)
from partita.sql import CompiledQuery, compile_query

from ._faults import SlowSink
from ._timed import ChannelSource, Timed, TimedSource

__all__ = [
    "Advance",
    "Cancel",
    "Crash",
    "Harness",
    "Pause",
    "Resume",
    "Send",
    "Step",
    "open_harness",
    "run_steps",
    "run_sync",
]

Build: TypeAlias = Callable[[FlowStream], FlowStream]
"""A pipeline as a function of its input stream: what a test hands the kit instead of
a whole :class:`Flow`, so the kit can feed it and collect what comes out."""

Target: TypeAlias = str | CompiledQuery | Build | Flow

_COMPILE_OPTIONS = ("allowed_lateness", "event_time", "on_error", "late", "watermark", "retention")
_ENDED = (ActorState.COMPLETED, ActorState.FAILED, ActorState.CANCELLED)


# ------------------------------------------------------------------- steps
def _records(records: Iterable[Record]) -> tuple[Record, ...]:
    return tuple(records)


@attrs.frozen
class Send:
    """Feed these records, as one batch."""

    records: tuple[Record, ...] = attrs.field(converter=_records)


@attrs.frozen
class Advance:
    """Let ``seconds`` of (virtual) time pass with no input."""

    seconds: float = attrs.field(validator=attrs.validators.ge(0))


@attrs.frozen
class Pause:
    """Pause the graph, or one actor by name."""

    actor: str | None = None


@attrs.frozen
class Resume:
    """Resume the graph, or one actor by name."""

    actor: str | None = None


@attrs.frozen
class Crash:
    """Crash the harness's sink on its next batch (the restart policy decides the rest)."""


@attrs.frozen
class Cancel:
    """Cancel the graph: gracefully (drain, flush, complete) or at once."""

    graceful: bool = True


Step: TypeAlias = Send | Advance | Pause | Resume | Crash | Cancel
"""One thing a test does to a running pipeline (see :func:`partita.testing.interleavings`)."""


# ----------------------------------------------------------------- harness
@attrs.define(eq=False)
class Harness:
    """A running query or Flow that a test feeds and watches; from :func:`open_harness`.

    Every method that lets the graph work returns once it has nothing left to do
    (``trio.testing.wait_all_tasks_blocked``): after ``await h.send(...)`` the rows
    those records make are in :attr:`rows`; after ``await h.advance(5)`` so is
    whatever five seconds of silence made (with ``idle_timeout``, the windows
    they closed).  Time is the run's clock: under a ``MockClock`` with autojump
    (pytest-trio's ``autojump_clock`` fixture, or :func:`run_sync`'s) no real time
    passes.

    Attributes:
        supervisor: the graph's :class:`runtime.Supervisor` (stats, pause, cancel).
        sink: the :class:`SlowSink` the rows go to.
    """

    supervisor: Supervisor
    sink: SlowSink
    _send: trio.MemorySendChannel[list[Record]]
    _dead: Any = None
    _ended: bool = False
    _source: ChannelSource | None = attrs.field(default=None, kw_only=True)
    _capacity: int = attrs.field(default=16, kw_only=True)
    _sent: int = attrs.field(init=False, default=0)

    @property
    def pending(self) -> int:
        """Sends the graph's source has not taken yet (at most ``capacity``)."""
        return 0 if self._source is None else self._sent - self._source.taken

    @property
    def rows(self) -> list[Record]:
        """Every row out so far, in arrival order."""
        return self.sink.rows

    @property
    def dead_letters(self) -> list[DeadLetter]:
        """The dead letters so far (a SQL query's late or bad records, by its policies)."""
        return [] if self._dead is None else list(self._dead.dead_letters)

    def stats(self) -> GraphStats:
        """The graph's stats now."""
        return self.supervisor.stats()

    async def settle(self) -> None:
        """Wait until every task of the run is blocked: the graph has done what it can."""
        await trio.testing.wait_all_tasks_blocked()

    async def send(self, records: Iterable[Record]) -> None:
        """Feed ``records`` (one batch) and wait until the graph has handled them.

        The input holds at most ``capacity`` sends the graph has not taken (a paused
        graph takes none).  When it is full, a running graph's ``send`` waits for
        room (backpressure: a slow sink holds the test back); a paused one's raises,
        as nothing but the test can resume it.

        Raises:
            trio.ClosedResourceError: after :meth:`end`.
            RuntimeError: the input is full and the graph (or an actor) is paused.
        """
        batch = list(records)
        source = self._source
        if source is not None:
            while self.pending >= self._capacity:
                paused = self._paused()
                if paused is not None:
                    n = self._capacity
                    raise RuntimeError(
                        f"the harness's input holds {n} sends (capacity={n}) and {paused} "
                        f"paused: nothing can take a {_ordinal(n + 1)} until it resumes; "
                        "resume() first, or open_harness(capacity=...)"
                    )
                await source.wait_taken(source.taken)
        await self._send.send(batch)
        self._sent += 1
        await self.settle()

    def _paused(self) -> str | None:
        """What holds the graph: ``"the graph is"``, ``"actor 'x' is"``, or ``None``."""
        if self.supervisor.state is ActorState.PAUSED:
            return "the graph is"
        for actor in self.supervisor.graph:
            if actor.paused:
                return f"actor {actor.name!r} is"
        return None

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass (``trio.sleep``), then settle: silence, as the graph sees it."""
        await trio.sleep(seconds)
        await self.settle()

    def pause(self, actor: str | None = None) -> None:
        """Pause the graph (or one actor) at the next batch boundary."""
        self.supervisor.pause(actor)

    def resume(self, actor: str | None = None) -> None:
        """Resume the graph (or one actor)."""
        self.supervisor.resume(actor)

    def crash_next(self) -> None:
        """Crash the sink on its next batch (:class:`InjectedFault`)."""
        self.sink.crash_next()

    async def cancel(self, *, graceful: bool = True) -> None:
        """Cancel the graph and wait until it has stopped."""
        self._send.close()
        self._ended = True
        await self.supervisor.cancel(graceful=graceful)

    async def end(self) -> list[Record]:
        """End the input, wait for the graph to finish (every window closes); the rows."""
        if not self._ended:
            self._ended = True
            self._send.close()
        await self.supervisor.wait()
        return self.rows

    async def perform(self, steps: Iterable[Step]) -> None:
        """Do each step in order (see :data:`Step`); a step after the graph ended is skipped."""
        for step in steps:
            if self.supervisor.state in _ENDED:
                return
            match step:
                case Send(records):
                    await self.send(records)
                case Advance(seconds):
                    await self.advance(seconds)
                case Pause(actor):
                    self.pause(actor)
                    await self.settle()
                case Resume(actor):
                    self.resume(actor)
                    await self.settle()
                case Crash():
                    self.crash_next()
                case Cancel(graceful):
                    await self.cancel(graceful=graceful)


def _split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    compile_options = {k: options.pop(k) for k in _COMPILE_OPTIONS if k in options}
    return compile_options, options


def _graph(
    target: Target, source: Source, sink: SlowSink, partitions: int, compile_options: dict[str, Any]
) -> tuple[Graph, Any]:
    if isinstance(target, str | CompiledQuery):
        query = compile_query(target, **compile_options) if isinstance(target, str) else target
        return build_sql_graph(query, source, sink, partitions=partitions)
    if compile_options:
        raise TypeError(f"{', '.join(sorted(compile_options))}: options of a SQL query, not a Flow")
    if isinstance(target, Flow):
        raise TypeError(
            "a harness feeds its own input: give the pipeline as a function of its input "
            "stream (lambda stream: stream.map(...)), not a Flow with sources"
        )
    if not callable(target):
        raise TypeError(f"expected SQL text, a CompiledQuery or a function, got {target!r}")
    flow = Flow()
    target(flow.source(source)).sink(sink)
    return flow.graph, None


@asynccontextmanager
async def open_harness(
    target: str | CompiledQuery | Build,
    *,
    idle_timeout: float | None = None,
    partitions: int = 1,
    sink_delay: float = 0.0,
    capacity: int = 16,
    **options: Any,
) -> AsyncIterator[Harness]:
    """Run a SQL query, or a pipeline function, fed by the test through a :class:`Harness`.

    Leaving the block ends the input and waits for the graph to finish (like a
    nursery), unless the block raised: then the graph is cancelled at once.

    Args:
        target: SQL text, a compiled query, or a function from the input
            :class:`FlowStream` to the stream whose records are the output
            (``lambda s: s.key_by(...).stateful(...)``).
        idle_timeout: seconds of silence after which the source sends an idle
            tick (a SQL query's watermark then advances by the time idle, so its
            windows close on virtual time).
        partitions: a SQL query's partitions.
        sink_delay: seconds the sink takes a batch (a slow sink, for backpressure).
        capacity: how many :meth:`Harness.send` lists may wait for the graph's
            source (see :meth:`Harness.send`); more than an interleaving sends.
        **options: a SQL query's compile options (``allowed_lateness=``,
            ``event_time=``, ``on_error=``, ``late=``, ...) and the supervisor's
            (``restart=``, ``max_memory=``, ...).

    Example:
        >>> import trio, trio.testing
        >>> async def main() -> None:
        ...     sql = "SELECT k, COUNT(*) AS n FROM t GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"
        ...     async with open_harness(sql, idle_timeout=0.5) as h:
        ...         await h.send([{"k": "a", "ts": 100}, {"k": "a", "ts": 900}])
        ...         print(h.rows)  # the window [0, 1000) is still open
        ...         await h.advance(5)  # five silent seconds: the watermark passes 1000
        ...         print(h.rows)
        >>> trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        []
        [{'k': 'a', 'n': 2}]
    """
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
    compile_options, supervisor_fields = _split_options(dict(options))
    send, receive = trio.open_memory_channel[list[Record]](capacity)
    source = ChannelSource("source", receive, idle_timeout=idle_timeout)
    sink = SlowSink("output", delay=sink_delay)
    graph, dead = _graph(target, source, sink, partitions, compile_options)
    async with open_supervisor(graph, **supervisor_fields) as supervisor:
        harness = Harness(supervisor, sink, send, dead, source=source, capacity=capacity)
        try:
            await harness.settle()
            yield harness
        except BaseException:
            send.close()
            if supervisor.state not in _ENDED:
                await supervisor.cancel(graceful=False)
            raise
        await harness.end()


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ---------------------------------------------------------------- run_sync
def _source_of(items: list[Any], idle_timeout: float | None) -> Source:
    timed = [r for r in items if isinstance(r, Timed)]
    if timed and len(timed) == len(items):
        return TimedSource("source", timed, idle_timeout=idle_timeout)
    if timed:
        raise TypeError("records must be all Timed or all plain records, not a mix")
    return IterableSource("source", items, idle_timeout=idle_timeout)


def run_sync(
    target: Target,
    records: Iterable[Record] | Sequence[Timed] = (),
    *,
    clock: trio.abc.Clock | None = None,
    idle_timeout: float | None = None,
    **options: Any,
) -> list[Record]:
    """Run a SQL query, a pipeline function or a :class:`Flow` to its end from plain
    (not async) code, on virtual time; return the output rows (as Bytewax's
    ``run_main``).

    Args:
        target: SQL text or a compiled query (run by :func:`partita.run_sql`); a
            function from the input :class:`FlowStream` to the output stream; or a
            whole :class:`Flow` whose one :class:`CollectSink` holds the output
            (then ``records`` must be empty: the flow has its sources).
        records: the input: plain records, or :class:`Timed` records that arrive
            at their ``at`` (seconds of virtual time after the start).
        clock: the run's clock (default ``MockClock(autojump_threshold=0)``: time
            jumps whenever every task waits, so sleeps and timeouts take no real time).
        idle_timeout: seconds of silence before the source's idle tick.
        **options: :func:`partita.run_sql`'s options for SQL (``partitions=``,
            ``allowed_lateness=``, ``restart=`` ...); the supervisor's for a Flow.

    Raises:
        RuntimeError: called inside a running trio (use :func:`open_harness` there).
        runtime.ActorFailed: the run failed.

    Example:
        >>> data = [{"k": "a", "v": 2}, {"k": "a", "v": 3}]
        >>> run_sync("SELECT k, SUM(v) AS s FROM t GROUP BY k", data)
        [{'k': 'a', 's': 5}]
        >>> run_sync(lambda s: s.map(lambda r: {"y": r["x"] * 2}), [{"x": 1}, {"x": 2}])
        [{'y': 2}, {'y': 4}]
    """
    if clock is None:
        clock = trio.testing.MockClock(autojump_threshold=0)
    items: list[Any] = list(records)

    async def main() -> list[Record]:
        if isinstance(target, str | CompiledQuery):
            source = _source_of(items, idle_timeout)
            return (await run_sql(target, source, **options)).rows
        if isinstance(target, Flow):
            if items:
                raise TypeError("a Flow has its own sources: give records=() (the default)")
            sinks = [a for a in target.graph if isinstance(a, CollectSink)]
            if len(sinks) != 1:
                raise TypeError(
                    f"a Flow's output is its one CollectSink; this one has {len(sinks)}"
                )
            if idle_timeout is not None:
                for actor in target.graph:
                    if isinstance(actor, RecordSource):
                        actor.idle_timeout = idle_timeout
            await target.run(**options)
            return sinks[0].rows
        sink = CollectSink("output")
        flow = Flow()
        target(flow.source(_source_of(items, idle_timeout))).sink(sink)
        await flow.run(**options)
        return sink.rows

    return trio.run(main, clock=clock)


def run_steps(
    target: str | CompiledQuery | Build,
    steps: Iterable[Step],
    *,
    clock: trio.abc.Clock | None = None,
    **options: Any,
) -> list[Record]:
    """From plain code: open a :func:`open_harness` on virtual time, :meth:`perform
    <Harness.perform>` ``steps``, end the input; return the rows.  With
    :func:`interleavings` and Hypothesis's ``@given``, a property test of a
    pipeline under pause, resume, silence, crashes and cancellation.

    Args:
        target, **options: as for :func:`open_harness` (``idle_timeout=``,
            ``restart=``, compile options...).
        steps: what happens, in order (:data:`Step`).
        clock: the run's clock (default ``MockClock(autojump_threshold=0)``).

    Example:
        >>> from partita import RestartPolicy
        >>> steps = [Send([{"x": 1}]), Crash(), Advance(1.0), Send([{"x": 2}])]
        >>> run_steps(lambda s: s.map(lambda r: {"x": r["x"] * 10}), steps, restart=RestartPolicy())
        [{'x': 10}, {'x': 20}]
    """
    if clock is None:
        clock = trio.testing.MockClock(autojump_threshold=0)
    todo = list(steps)

    async def main() -> list[Record]:
        async with open_harness(target, **options) as harness:
            await harness.perform(todo)
        return harness.rows

    return trio.run(main, clock=clock)
