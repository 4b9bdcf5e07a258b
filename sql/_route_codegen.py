"""Generate the routing stage's per-batch loops (see :mod:`sql._compiler`).

``route`` (keyed, several partitions) and ``route1`` (one target partition) compute each
record's event time, the exact watermark, WHERE (a filtered record is passed on to be
counted by a partition), lateness of aligned windows, and the partition of the key.  Each
has a fast form (list comprehensions over the batch) that falls back to a careful loop
with per-record error handling when anything is unusual.  Their calling convention is in
:mod:`sql._conventions`.
"""

from __future__ import annotations

import attrs

from ._scopes import QueryScopes
from ._source import SourceLines as _Lines

__all__ = ["KEYED", "ROUTE_PARAMS", "SINGLE", "RouteVariant", "gen_routes"]

ROUTE_PARAMS = "records, offsets, nparts, pcache, max_ts, lateness, on_bad"
"""The parameters of every generated routing function (see :mod:`sql._conventions`)."""


@attrs.frozen
class RouteVariant:
    """One of the two routers: its function names and whether it routes by key.

    Attributes:
        name: the fast function's name.
        careful: the careful loop's name (the fast one falls back to it).
        by_key: records go to ``nparts`` partitions by the hash of their key; otherwise
            all kept records go to one partition and the late or failed ones are skipped.
    """

    name: str
    careful: str
    by_key: bool


KEYED = RouteVariant("route", "route_careful", by_key=True)
"""The router of a keyed query on several partitions."""
SINGLE = RouteVariant("route1", "route1_careful", by_key=False)
"""The router of a windowed query on one partition (or without keys)."""


def gen_routes(scopes: QueryScopes, out: _Lines) -> None:
    """The routers the query needs: :data:`KEYED` with keys, :data:`SINGLE` with a window."""
    shape = scopes.shape
    if not shape.aggregated:
        return  # stateless queries are not routed per record
    variants = [KEYED] * shape.keyed + [SINGLE] * shape.windowed
    for variant in variants:
        _gen_careful(scopes, out, variant)
        _gen_fast(scopes, out, variant)


def _cut_lines(scopes: QueryScopes) -> tuple[str, str]:
    """``cut``: the start of the earliest window still open at watermark ``mx - lateness``."""
    window = scopes.plan.window
    assert window is not None
    size, slide = window.size_ms, window.slide_ms
    if window.kind == "cumulate":  # a record is late once its whole window [start, +size) is
        slide = size
    return f"w = mx - lateness - {size!r}", f"cut = w - w % {slide!r} + {slide!r}"


def _route_step(
    scopes: QueryScopes, body: _Lines, *, by_key: bool, watermarks: bool, skip_late: bool
) -> None:
    """The per-record routing step (``r``, ``i`` and for windows ``t`` are bound).

    Order: event time -> exact watermark -> WHERE (a filtered record goes to a
    partition, which counts it, without a lateness check or key) -> lateness ->
    partition of the key.  ``by_key``: append the record to its key's partition (else
    it stays where it is).  ``watermarks``: append each kept record's watermark (the
    one before the record) to the watermark list(s).  ``skip_late``: a late record's
    index goes to ``skip``.
    """
    plan, shape = scopes.plan, scopes.shape
    drops_late = shape.router_drops_late
    if shape.windowed:
        if watermarks:
            body.add(0, "wm = mx - lateness")
        if drops_late:
            body.add(0, "if t > mx:", "    mx = t")
            body.add(1, *_cut_lines(scopes))
        else:
            body.add(0, "if t > mx: mx = t")
    if plan.where is not None and (by_key or drops_late):
        body.add(0, f"if not {scopes.record().cond(plan.where)}:")
        if by_key:
            # still routed by its key when it has one, so a key lives in one partition
            body.add(1, "try:", f"    {scopes.key_line()}", "    p = pget(k)")
            body.add(2, "if p is None: p = _partition_of(pcache, k, nparts)")
            body.add(1, "except Exception:", "    p = 0")
            body.add(1, "radds[p](r)", "adds[p](i)")
            if watermarks:
                body.add(1, "wadds[p](wm)")
        elif watermarks:
            body.add(1, "wadd(wm)")
        body.add(1, "continue")
    if drops_late:
        body.add(0, "if t < cut:", "    late.append((i, t, mx - lateness))")
        if skip_late:
            body.add(1, "skip.append(i)")
        body.add(1, "continue")
    if by_key:
        body.add(0, scopes.key_line(), "p = pget(k)")
        body.add(0, "if p is None: p = _partition_of(pcache, k, nparts)")
        body.add(0, "radds[p](r)", "adds[p](i)")
        if watermarks:
            body.add(0, "wadds[p](wm)")
    elif watermarks:
        body.add(0, "wadd(wm)")


def _bind_outputs(scopes: QueryScopes, out: _Lines, variant: RouteVariant) -> None:
    """Bind ``skip`` (one partition) and the per-record watermark list(s) ``wl``."""
    watermarks = scopes.shape.per_record_watermark
    if variant.by_key:
        if watermarks:
            out.add(1, "wl = [[] for _ in range(nparts)]", "wadds = [x.append for x in wl]")
    else:
        out.add(1, "skip = []")
        if watermarks:
            out.add(1, "wl = []", "wadd = wl.append")


def _bind_event_time(scopes: QueryScopes, out: _Lines) -> None:
    """Bind the event-time state: ``late``, ``mx`` and (dropping late records) ``cut``."""
    if scopes.shape.windowed:
        out.add(1, "late = []")
        # before any event time, ``mx`` is -inf: below every int, compared exactly
        out.add(1, "mx = _BEFORE_ALL if max_ts is None else max_ts")
        if scopes.shape.router_drops_late:
            out.add(1, "if mx == _BEFORE_ALL: cut = _BEFORE_ALL")
            out.add(1, "else:")
            out.add(2, *_cut_lines(scopes))


def _gen_return(
    scopes: QueryScopes, out: _Lines, variant: RouteVariant, *, indexes: str, keys: str
) -> None:
    """Return the named result: the split batch, the new max event time, the late records."""
    wl = "wl" if scopes.shape.per_record_watermark else "None"
    if scopes.shape.windowed:
        mx, late = "None if mx == _BEFORE_ALL else mx", "late"
    else:
        mx, late = "max_ts", "()"
    if variant.by_key:
        out.add(1, f"return _KeyedRoute(recs, {indexes}, {wl}, {keys}, {mx}, {late})", "")
    else:
        out.add(1, f"return _SingleRoute(skip, {wl}, {mx}, {late})", "")


def _gen_careful(scopes: QueryScopes, out: _Lines, variant: RouteVariant) -> None:
    """The router's careful loop (per-record error handling).

    ``route`` returns per-partition lists of records, of their indexes in the batch,
    and of their exact watermarks (or ``None``).  ``route1`` (one target partition)
    returns the indexes it skipped (late or failed) and the watermarks of the records
    it kept (or ``None``).
    """
    window = scopes.plan.window
    out.add(0, f"def {variant.careful}({ROUTE_PARAMS}):")
    out.add(1, "n = len(records)", "i = 0")
    if variant.by_key:
        out.add(1, "recs = [[] for _ in range(nparts)]", "radds = [x.append for x in recs]")
        out.add(1, "idx = [[] for _ in range(nparts)]", "adds = [x.append for x in idx]")
        out.add(1, "pget = pcache.get")
    _bind_outputs(scopes, out, variant)
    _bind_event_time(scopes, out)
    out.add(1, "while i < n:")
    out.add(2, "try:")
    out.add(3, "for i in range(i, n):")
    out.add(4, "r = records[i]")
    if window is not None:
        out.add(4, f"t = r[{window.time_column!r}]")
        out.add(4, "if t.__class__ is not int: t = _to_ms(t)")
    _route_step(
        scopes,
        out.nested(4),
        by_key=variant.by_key,
        watermarks=scopes.shape.per_record_watermark,
        skip_late=not variant.by_key,
    )
    out.add(3, "i = n")
    out.add(2, "except Exception as exc:")
    if not variant.by_key:
        out.add(3, "skip.append(i)")
    out.add(3, "on_bad(exc, records[i], offsets, i)", "i += 1")
    _gen_return(scopes, out, variant, indexes="idx", keys="None")


def _gen_fast(scopes: QueryScopes, out: _Lines, variant: RouteVariant) -> None:
    """The router's fast path: event times and keys by list comprehensions.

    Falls back to the careful loop (same results, per-record error handling) when any
    record lacks its event time or key, a key is unhashable, an event time is not an
    ``int``, or the query has a WHERE clause (filtered records must not need a key).

    Keyed: each distinct key of the batch is mapped once to its partition's ``append``;
    the records' batch indexes are not collected (``ks`` and ``kp``, the keys and their
    partitions, let the stage recover them if a record later fails).

    In order: when the batch's event times are non-decreasing and its first record is
    not late, no record is (a record either leaves the watermark where it was, and is
    no earlier than the first, or raises it to its own time, and a window containing
    ``mx - lateness`` is never closed by ``mx``), so the per-record lateness check is
    skipped.
    """
    shape = scopes.shape
    window = scopes.plan.window
    out.add(0, f"def {variant.name}({ROUTE_PARAMS}):")
    fallback = f"return {variant.careful}({ROUTE_PARAMS})"
    if shape.has_where:
        out.add(1, fallback, "")
        return
    if window is not None:
        out.add(1, "try:", f"    tss = [r[{window.time_column!r}] for r in records]")
        out.add(1, "except Exception:", f"    {fallback}")
        out.add(1, "if tss and set(map(type, tss)) != _INT_ONLY:", f"    {fallback}")
    if variant.by_key:
        out.add(1, "recs = [[] for _ in range(nparts)]", "radds = [x.append for x in recs]")
        out.add(1, "pget = pcache.get", "kp = {}", "amap = {}")
    _bind_outputs(scopes, out, variant)
    _bind_event_time(scopes, out)
    if window is not None:
        depth = 1
        if shape.in_order_fast_path:
            out.add(1, "if tss and tss[0] >= cut and tss == sorted(tss):")
            out.add(2, "if tss[-1] > mx: mx = tss[-1]")
            if variant.by_key:
                _gen_scatter(scopes, out.nested(2), fallback)
            out.add(1, "else:")
            depth = 2
        if variant.by_key:
            _gen_keys(scopes, out.nested(depth), fallback)
            out.add(depth, "for i, t, k, r in zip(range(len(records)), tss, ks, records):")
        else:
            out.add(depth, "for i, t in enumerate(tss):")
        _gen_fast_step(scopes, out.nested(depth + 1), variant)
    elif variant.by_key:
        assert not shape.per_record_watermark  # no event time: no watermarks
        _gen_scatter(scopes, out.nested(1), fallback)
    _gen_return(scopes, out, variant, indexes="None", keys="(ks, kp)")


def _gen_keys(scopes: QueryScopes, body: _Lines, fallback: str) -> None:
    """``ks``, every record's key, and ``amap``: each distinct key's partition ``append``
    (``kp``: its partition), by a list comprehension and a loop over the keys."""
    body.add(0, "try:", f"    ks = [{scopes.key_expr()} for r in records]", "    kset = set(ks)")
    body.add(0, "except Exception:", f"    {fallback}")
    body.add(0, "for k in kset:", "    p = pget(k)")
    body.add(1, "if p is None: p = _partition_of(pcache, k, nparts)")
    body.add(1, "kp[k] = p", "amap[k] = radds[p]")


def _gen_scatter(scopes: QueryScopes, body: _Lines, fallback: str) -> None:
    """Every record to its key's partition in one pass (each record is read once, while
    it is in the cache): ``ks`` collects the keys; a key's partition is looked up at its
    first record in the batch (the ``KeyError`` of ``amap``), later ones only call the
    ``append`` it maps to.  A record without its key, or an unhashable key, falls back to
    the careful loop (what the pass filled so far is dropped)."""
    body.add(0, "ks = []", "kadd = ks.append", "try:")
    body.add(1, "for r in records:")
    body.add(2, f"k = {scopes.key_expr()}", "kadd(k)", "try:", "    amap[k](r)")
    body.add(2, "except KeyError:", "    p = pget(k)")
    body.add(3, "if p is None: p = _partition_of(pcache, k, nparts)")
    body.add(3, "kp[k] = p", "add = amap[k] = radds[p]", "add(r)")
    body.add(0, "except Exception:", f"    {fallback}")


def _gen_fast_step(scopes: QueryScopes, body: _Lines, variant: RouteVariant) -> None:
    """The fast loop's step: like the careful one, but the key ``k`` is already known."""
    watermarks = scopes.shape.per_record_watermark
    if variant.by_key and watermarks:
        body.add(0, "wm = mx - lateness")
    start = len(body.lines)
    _route_step(
        scopes,
        body,
        by_key=False,
        watermarks=watermarks and not variant.by_key,
        skip_late=not variant.by_key,
    )
    if variant.by_key:
        body.add(0, "amap[k](r)")  # indexes are recovered from ``ks`` only if needed
        if watermarks:
            body.add(0, "wadds[kp[k]](wm)")
    elif len(body.lines) == start:
        body.add(0, "pass")
