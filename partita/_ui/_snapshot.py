"""The graph and its stats as JSON-ready values, for ``/api/graph`` and the live stream."""

from __future__ import annotations

from typing import Any

from partita.runtime import ActorStats, Graph, Sink, Source, Supervisor

from ._metrics import watermark_lag_ms

__all__ = ["graph_view", "stats_view"]


def _role(graph: Graph, name: str) -> str:
    actor = graph[name]
    if isinstance(actor, Source):
        return "source"
    if isinstance(actor, Sink):
        return "sink"
    return "actor"


def _actor_view(a: ActorStats, lag: dict[str, int]) -> dict[str, Any]:
    capacity = len(a.occupancy_counts) - 1 if a.occupancy_counts else None
    return {
        "name": a.name,
        "state": a.state.value,
        "rows_in": a.rows_in,
        "rows_out": a.rows_out,
        "rows_filtered": a.rows_filtered,
        "rows_late": a.rows_late,
        "rows_errored": a.rows_errored,
        "batches_in": a.batches_in,
        "mailbox_items": a.items_buffered,
        "mailbox_bytes": a.estimated_memory,
        "state_bytes": a.state_memory,
        "mailbox_capacity": capacity,
        "high_water": a.high_water,
        "occupancy_p50": a.occupancy_p50,
        "occupancy_p99": a.occupancy_p99,
        "restarts": a.restarts,
        "batch_size": a.batch_size,
        "watermark": a.watermark,
        "watermark_lag_ms": lag.get(a.name),
        "errors_by_reason": [[reason, n] for reason, n in a.errors_by_reason],
    }


def stats_view(supervisor: Supervisor, now: float) -> dict[str, Any]:
    """The graph's stats now: its state, memory, checkpoint, failure and every actor's."""
    stats = supervisor.stats()
    lag = watermark_lag_ms(stats)
    failure = supervisor.failure
    checkpoint = stats.checkpoint
    return {
        "time": now,
        "state": stats.state.value,
        "memory_in_use": stats.memory_in_use,
        "state_memory": stats.state_memory,
        "max_memory": stats.max_memory,
        "restarts": stats.restarts,
        "checkpoint": None
        if checkpoint is None
        else {
            "id": checkpoint.id,
            "age_s": max(0.0, now - checkpoint.committed_at),
            "duration_s": checkpoint.duration,
            "size_bytes": checkpoint.size,
        },
        "failure": None if failure is None else {"actor": failure.actor, "message": str(failure)},
        "actors": [_actor_view(a, lag) for a in stats.actors],
    }


def graph_view(supervisor: Supervisor, job: str, now: float) -> dict[str, Any]:
    """The graph as wired (actors in topological order, edges upstream → downstream)
    and its stats now."""
    graph = supervisor.graph
    order = graph.topological()
    nodes = [
        {
            "name": actor.name,
            "kind": type(actor).__name__,
            "role": _role(graph, actor.name),
            "inputs": [up.name for up in graph.inputs_of(actor)],
            "capacity": graph.capacity_of(actor) if graph.inputs_of(actor) else None,
        }
        for actor in order
    ]
    edges = [
        {"from": up.name, "to": actor.name} for actor in order for up in graph.inputs_of(actor)
    ]
    return {"job": job, "nodes": nodes, "edges": edges, "stats": stats_view(supervisor, now)}
