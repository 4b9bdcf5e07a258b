"""Prometheus metrics of a supervised graph, read from its stats at scrape time.

Nothing is counted on the hot path: :class:`GraphCollector` calls
``supervisor.stats()`` when Prometheus scrapes and turns the snapshot into metric
families (in trio's thread: the stats are read where the actors run);
``prometheus-client`` writes the exposition format, which is most of a scrape's
cost, and may do it in a worker thread (:func:`format_metrics`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import trio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from partita.runtime import ActorState, ActorStats, GraphStats, Supervisor

__all__ = [
    "GraphCollector",
    "format_metrics",
    "metrics_text",
    "occupancy_buckets",
    "watermark_lag_ms",
]

_COUNTERS = (
    ("rows_in", "Records the actor handled."),
    ("rows_out", "Records the actor emitted."),
    ("rows_filtered", "Records the actor dropped by a filter."),
    ("rows_late", "Records that arrived behind the watermark."),
    ("rows_errored", "Bad records (skipped, dead-lettered or failing)."),
    ("batches_in", "Batches the actor received."),
    ("restarts", "Times the supervisor restarted the actor."),
)
_STATES = tuple(state.value for state in ActorState)


def watermark_lag_ms(stats: GraphStats) -> dict[str, int]:
    """Per actor with a watermark: how far it is behind the graph's most advanced one (ms)."""
    marks = {a.name: a.watermark for a in stats.actors if a.watermark is not None}
    if not marks:
        return {}
    ahead = max(marks.values())
    return {name: ahead - mark for name, mark in marks.items()}


def occupancy_buckets(counts: Sequence[int]) -> list[tuple[str, int]]:
    """Cumulative histogram buckets over an occupancy count list (index = items held):
    bounds 0, 1, 2, 4, ... up to the capacity, then ``+Inf``.

    Example:
        >>> occupancy_buckets([5, 3, 0, 2])
        [('0', 5), ('1', 8), ('2', 8), ('3', 10), ('+Inf', 10)]
    """
    capacity = len(counts) - 1
    bounds: list[int] = [0]
    bound = 1
    while bound < capacity:
        bounds.append(bound)
        bound *= 2
    if capacity > 0:
        bounds.append(capacity)
    out: list[tuple[str, int]] = []
    seen = 0
    index = 0
    for upper in bounds:
        while index <= upper:
            seen += counts[index]
            index += 1
        out.append((str(upper), seen))
    out.append(("+Inf", sum(counts)))
    return out


class GraphCollector(Collector):
    """A custom collector: every scrape reads ``supervisor.stats()`` once.

    Metric names follow the Prometheus conventions: ``partita_`` prefix, counters
    end in ``_total``, units in the name (``_bytes``, ``_seconds``, ``_items``),
    labels ``job`` and ``actor``.
    """

    def __init__(self, supervisor: Supervisor, job: str) -> None:
        self._supervisor = supervisor
        self._job = job

    def collect(self) -> Iterator[Metric]:
        stats = self._supervisor.stats()
        job = self._job
        yield from self._actor_metrics(stats, job)
        yield from self._graph_metrics(stats, job)

    def _actor_metrics(self, stats: GraphStats, job: str) -> Iterator[Metric]:
        labels = ["job", "actor"]
        actors = stats.actors
        for field, doc in _COUNTERS:
            family = CounterMetricFamily(f"partita_{field}", doc, labels=labels)
            for a in actors:
                family.add_metric([job, a.name], getattr(a, field))
            yield family
        inboxes = [a for a in actors if a.occupancy_counts]
        gauges: list[tuple[str, str, list[tuple[ActorStats, float]]]] = [
            (
                "partita_mailbox_items",
                "Messages (batches) waiting in the actor's inbox.",
                [(a, a.items_buffered) for a in inboxes],
            ),
            (
                "partita_mailbox_bytes",
                "Estimated bytes of the records waiting in the actor's inbox.",
                [(a, a.estimated_memory) for a in inboxes],
            ),
            (
                "partita_mailbox_capacity_items",
                "Messages the actor's inbox holds at most.",
                [(a, len(a.occupancy_counts) - 1) for a in inboxes],
            ),
            (
                "partita_mailbox_high_water_items",
                "The most messages the actor's inbox has held.",
                [(a, a.high_water) for a in inboxes],
            ),
            (
                "partita_state_bytes",
                "Estimated bytes of the actor's state (groups, windows, per-key states).",
                [(a, a.state_memory) for a in actors if a.state_memory],
            ),
            (
                "partita_batch_size_records",
                "The batch size the actor uses now (sources: adaptive).",
                [(a, a.batch_size) for a in actors if a.batch_size is not None],
            ),
            (
                "partita_watermark_seconds",
                "The actor's input watermark, event time in seconds since the epoch.",
                [(a, a.watermark / 1000) for a in actors if a.watermark is not None],
            ),
        ]
        lag = watermark_lag_ms(stats)
        gauges.append(
            (
                "partita_watermark_lag_seconds",
                "How far the actor's watermark is behind the graph's most advanced one.",
                [(a, lag[a.name] / 1000) for a in actors if a.name in lag],
            )
        )
        for name, doc, values in gauges:
            gauge = GaugeMetricFamily(name, doc, labels=labels)
            for a, value in values:
                gauge.add_metric([job, a.name], value)
            yield gauge
        histogram = HistogramMetricFamily(
            "partita_mailbox_occupancy_items",
            "Messages in the actor's inbox, sampled at every send.",
            labels=labels,
        )
        for a in inboxes:
            counts = a.occupancy_counts
            total = sum(n * occupancy for occupancy, n in enumerate(counts))
            histogram.add_metric([job, a.name], occupancy_buckets(counts), total)
        yield histogram
        state = GaugeMetricFamily(
            "partita_actor_state",
            "1 for the actor's lifecycle state, 0 for the others.",
            labels=[*labels, "state"],
        )
        for a in actors:
            for name in _STATES:
                state.add_metric([job, a.name, name], 1 if a.state.value == name else 0)
        yield state

    def _graph_metrics(self, stats: GraphStats, job: str) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "partita_graph_state",
            "1 for the graph's state, 0 for the others.",
            labels=["job", "state"],
        )
        for value in _STATES:
            state.add_metric([job, value], 1 if stats.state.value == value else 0)
        yield state
        yield _gauge(
            "partita_memory_in_use_bytes",
            "Estimated bytes held in all the graph's mailboxes.",
            job,
            stats.memory_in_use,
        )
        if stats.max_memory is not None:
            yield _gauge(
                "partita_max_memory_bytes",
                "The graph's memory limit (max_memory).",
                job,
                stats.max_memory,
            )
        yield _counter(
            "partita_graph_restarts",
            "Actor restarts in the whole graph.",
            job,
            stats.restarts,
        )
        checkpoint = stats.checkpoint
        if checkpoint is not None:
            yield _gauge(
                "partita_checkpoint_last_id", "The last committed checkpoint.", job, checkpoint.id
            )
            yield _gauge(
                "partita_checkpoint_last_duration_seconds",
                "From the last committed checkpoint's barriers to its commit.",
                job,
                checkpoint.duration,
            )
            yield _gauge(
                "partita_checkpoint_last_size_bytes",
                "Bytes of state the last committed checkpoint holds.",
                job,
                checkpoint.size,
            )
            yield _gauge(
                "partita_checkpoint_last_age_seconds",
                "Seconds since the last checkpoint was committed.",
                job,
                max(0.0, trio.current_time() - checkpoint.committed_at),
            )


def _gauge(name: str, doc: str, job: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["job"])
    family.add_metric([job], value)
    return family


def _counter(name: str, doc: str, job: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["job"])
    family.add_metric([job], value)
    return family


class _Collected(Collector):
    """Metric families collected already (formatting them needs no stats)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def format_metrics(families: list[Metric]) -> bytes:
    """The Prometheus text exposition of collected families; touches no graph, so it
    may run in a worker thread."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collected(families))
    return generate_latest(registry)


def metrics_text(collector: GraphCollector) -> bytes:
    """The Prometheus text exposition of one scrape of ``collector``."""
    return format_metrics(list(collector.collect()))
