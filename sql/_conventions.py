"""How the generated functions are called: their parameters and their named results.

The generated module of a query (see :mod:`sql._compiler`) holds no state and reads
no attribute of the objects that own the state.  The partition program and the routing
stage pass in what a function needs (their dicts, their current values, their callbacks)
and take back a named result, which they store themselves.

``process(records, offsets, wms, groups, windows, on_bad, on_session, on_late)``
    One partition's fused loop over a batch.  ``groups`` is the group state of an
    unwindowed aggregate (key -> slot list), ``windows`` that of aligned windows
    (window start -> key -> slot list); each is updated in place.  The callbacks are
    the program's slow paths: ``on_bad(exc, record, offsets, index)`` a failed record,
    ``on_session(record, offset, key, t, args, wm)`` a session record and
    ``on_late(record, offset, key, ws, args, wm, count)`` a record for a closed window
    under ``late="update"``; the last two return rows.  Returns :class:`Processed`.

``process_unchecked(records)``
    A stateless query's first tier (generated only when it differs from ``process``'s
    own comprehension): the batch's rows without the NULL checks of the operators
    Python raises on ``None`` for.  Returns :class:`Processed`, or ``None`` when a
    record raised (a NULL, or a bad record): then the program calls ``process``.

``route(records, offsets, nparts, pcache, max_ts, lateness, on_bad)``
    The routing stage's loop: ``pcache`` maps keys to partitions (filled in place),
    ``max_ts`` is the largest event time so far (``None`` before any), ``lateness``
    the allowed lateness in ms.  ``route`` (by key) returns :class:`KeyedRoute`,
    ``route1`` (one partition) :class:`SingleRoute`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from partita.runtime import Record

__all__ = ["KeyedRoute", "LateIndex", "Processed", "SingleRoute"]

LateIndex = tuple[int, int, int]
"""A record the router found late: (index in the batch, event time, watermark)."""


class Processed(NamedTuple):
    """What ``process`` made of a batch."""

    rows: list[Record]
    """The rows the batch emits now (projections, ``EMIT CHANGES``, late updates)."""
    filtered: int
    """How many records WHERE rejected."""


class KeyedRoute(NamedTuple):
    """A batch split by key across partitions (``route``)."""

    records: list[list[Record]]
    """Each partition's records, in source order."""
    indexes: list[list[int]] | None
    """Each partition's records' indexes in the batch; ``None``: recover them from ``keys``."""
    watermarks: list[list[int]] | None
    """Each partition's records' exact watermarks, or ``None`` when not needed."""
    keys: tuple[list[Any], dict[Any, int]] | None
    """The batch's keys in order and each key's partition (with ``indexes=None``)."""
    max_ts: int | None
    """The largest event time seen after the batch (``None``: none yet, or no window)."""
    late: list[LateIndex] | tuple[()]
    """The records found late (aligned windows without late updates)."""


class SingleRoute(NamedTuple):
    """A windowed batch for one partition (``route1``)."""

    skip: list[int]
    """Ascending indexes of the records left out (late or failed)."""
    watermarks: list[int] | None
    """The kept records' exact watermarks, or ``None`` when not needed."""
    max_ts: int | None
    """The largest event time seen after the batch (``None``: none yet)."""
    late: list[LateIndex]
    """The records found late."""
