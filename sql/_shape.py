"""The variant of a query's generated code, decided once from its plan.

Every code generator reads these named flags instead of testing the plan (or
positional booleans) itself, so a variant is chosen in one place.
"""

from __future__ import annotations

import attrs

from ._plan import LogicalPlan

__all__ = ["QueryShape"]


@attrs.frozen
class QueryShape:
    """What kind of query the generators compile, as named flags.

    Attributes:
        aggregated: the query keeps group state (GROUP BY, aggregates or a window).
        keyed: it has GROUP BY keys (records of a key go to one partition).
        windowed: it has a group window on an event-time column.
        aligned: the window is aligned (TUMBLE, HOP or CUMULATE), its state kept per
            window start (per window end for CUMULATE, whose windows share starts).
        hop: the window is a HOP (a record belongs to several windows).
        cumulate: the window is a CUMULATE (a record belongs to the windows of its
            aligned start that end after it).
        session: the window is a SESSION (the program's slow path owns its state).
        emit_changes: ``EMIT CHANGES``: one row per record aggregated into a group.
        late_update: ``late="update"``: a late record updates its closed window.
        has_where: the query has a WHERE clause.
        has_having: the query has a HAVING clause.
        star: ``SELECT *``.
        distinct: ``SELECT DISTINCT``: a group emits its change row once, when it is new.
        retract: ``EMIT CHANGES WITH RETRACTIONS``: a changed group's old row goes out,
            marked ``"_retract": True``, before its new one.
        per_record_watermark: the router sends each record's exact watermark along
            (sessions and hop windows decide lateness per record in the partition, as
            does ``late="update"``).
        router_drops_late: the router itself finds and drops late records (aligned
            windows without late updates).
        in_order_fast_path: the router may skip the per-record lateness check for a
            batch whose event times do not decrease (no per-record watermarks needed,
            and a window holds its start).
    """

    aggregated: bool
    keyed: bool
    windowed: bool
    aligned: bool
    hop: bool
    cumulate: bool
    session: bool
    emit_changes: bool
    late_update: bool
    has_where: bool
    has_having: bool
    star: bool
    distinct: bool
    retract: bool
    per_record_watermark: bool
    router_drops_late: bool
    in_order_fast_path: bool

    @classmethod
    def of(cls, plan: LogicalPlan, *, late_update: bool) -> QueryShape:
        """The shape of ``plan`` compiled with (or without) late updates."""
        window = plan.window
        kind = window.kind if window is not None else None
        windowed = window is not None
        aligned = kind in ("tumble", "hop", "cumulate")
        per_record_watermark = windowed and (kind != "tumble" or late_update)
        router_drops_late = aligned and not late_update
        return cls(
            aggregated=plan.aggregated,
            keyed=bool(plan.group_keys),
            windowed=windowed,
            aligned=aligned,
            hop=kind == "hop",
            cumulate=kind == "cumulate",
            session=kind == "session",
            emit_changes=plan.emit == "changes",
            late_update=late_update,
            has_where=plan.where is not None,
            has_having=plan.having is not None,
            star=plan.star,
            distinct=plan.distinct,
            retract=plan.retract,
            per_record_watermark=per_record_watermark,
            router_drops_late=router_drops_late,
            in_order_fast_path=(
                router_drops_late
                and not per_record_watermark
                and window is not None
                and 0 < window.slide_ms <= window.size_ms
            ),
        )
