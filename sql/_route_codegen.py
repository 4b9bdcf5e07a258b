"""Generate the routing stage's per-batch loops (see :mod:`sql._compiler`).

``route`` (keyed, several partitions) and ``route1`` (one target partition) compute each
record's event time, the exact watermark, WHERE (a filtered record is passed on to be
counted by a partition), lateness of aligned windows, and the partition of the key.  Each
has a fast form (list comprehensions over the batch) that falls back to a careful loop
with per-record error handling when anything is unusual.
"""

from __future__ import annotations

from typing import Protocol

from ._expr import ExprCompiler
from ._plan import LogicalPlan
from ._source import SourceLines as _Lines


class _Generator(Protocol):
    """What the routing loops need of the query's code generator."""

    @property
    def plan(self) -> LogicalPlan: ...

    @property
    def late_update(self) -> bool: ...

    def record_expr(self) -> ExprCompiler: ...

    def key_expr(self) -> str: ...

    def key_line(self) -> str: ...


__all__ = ["ROUTE_PARAMS", "gen_route", "gen_route_fast"]

ROUTE_PARAMS = "records, offsets, nparts, pcache, max_ts, lateness, on_bad"
"""The parameters of every generated routing function (see :mod:`sql._conventions`)."""


def _drops_late(gen: _Generator) -> bool:
    """Whether the router drops late records (aligned windows, no late updates)."""
    window = gen.plan.window
    return window is not None and window.kind != "session" and not gen.late_update


def _cut_lines(gen: _Generator) -> tuple[str, str]:
    """``cut``: the start of the earliest window still open at watermark ``mx - lateness``."""
    window = gen.plan.window
    assert window is not None
    size, slide = window.size_ms, window.slide_ms
    return f"w = mx - lateness - {size!r}", f"cut = w - w % {slide!r} + {slide!r}"


def _route_body(
    gen: _Generator,
    body: _Lines,
    partitions_by_key: bool,
    per_record_wm: bool,
    skip_late_indexes: bool | None = None,
) -> None:
    """The per-record routing step (``r``, ``i`` and for windows ``t`` are bound).

    Order: event time -> exact watermark -> WHERE (a filtered record goes to a
    partition, which counts it, without a lateness check or key) -> lateness ->
    partition of the key.  Per-record watermarks are the watermark before the record.
    ``skip_late_indexes``: a late record's index goes to ``skip`` (by default when
    not ``partitions_by_key``).
    """
    window = gen.plan.window
    plan = gen.plan
    skip_late = _drops_late(gen)
    if skip_late_indexes is None:
        skip_late_indexes = not partitions_by_key
    target = "p" if partitions_by_key else None
    if window is not None:
        if per_record_wm:
            body.add(0, "wm = mx - lateness")
        if skip_late:
            body.add(0, "if t > mx:", "    mx = t")
            body.add(1, *_cut_lines(gen))
        else:
            body.add(0, "if t > mx: mx = t")
    if plan.where is not None and (partitions_by_key or skip_late):
        cond = gen.record_expr().cond(plan.where)
        body.add(0, f"if not {cond}:")
        if partitions_by_key:
            # still routed by its key when it has one, so a key lives in one partition
            body.add(1, "try:", f"    {gen.key_line()}", "    p = pget(k)")
            body.add(2, "if p is None: p = _partition_of(pcache, k, nparts)")
            body.add(1, "except Exception:", "    p = 0")
            body.add(1, "radds[p](r)", "adds[p](i)")
            if per_record_wm:
                body.add(1, "wadds[p](wm)")
        elif per_record_wm:
            body.add(1, "wadd(wm)")
        body.add(1, "continue")
    if skip_late:
        body.add(0, "if t < cut:", "    late.append((i, t, mx - lateness))")
        if skip_late_indexes:
            body.add(1, "skip.append(i)")
        body.add(1, "continue")
    if target:
        body.add(0, gen.key_line(), "p = pget(k)")
        body.add(0, "if p is None: p = _partition_of(pcache, k, nparts)")
        body.add(0, "radds[p](r)", "adds[p](i)")
        if per_record_wm:
            body.add(0, "wadds[p](wm)")
    elif per_record_wm:
        body.add(0, "wadd(wm)")


def _route_prologue(
    gen: _Generator, out: _Lines, partitions_by_key: bool, per_record_wm: bool
) -> None:
    if partitions_by_key:
        out.add(1, "recs = [[] for _ in range(nparts)]", "radds = [x.append for x in recs]")
        out.add(1, "idx = [[] for _ in range(nparts)]", "adds = [x.append for x in idx]")
        out.add(1, "pget = pcache.get")
    _skip_and_wm_lists(out, partitions_by_key, per_record_wm)
    _window_prologue(gen, out)


def _skip_and_wm_lists(out: _Lines, partitions_by_key: bool, per_record_wm: bool) -> None:
    """Bind ``skip`` (one partition) and the per-record watermark list(s) ``wl``."""
    if partitions_by_key:
        if per_record_wm:
            out.add(1, "wl = [[] for _ in range(nparts)]", "wadds = [x.append for x in wl]")
    else:
        out.add(1, "skip = []")
        if per_record_wm:
            out.add(1, "wl = []", "wadd = wl.append")


def _window_prologue(gen: _Generator, out: _Lines) -> None:
    """Bind the stage's event-time state (``late``, ``mx``, ``lateness``, ``cut``)."""
    if gen.plan.window is not None:
        out.add(1, "late = []")
        # before any event time, ``mx`` is -inf: below every int, compared exactly
        out.add(1, "mx = _BEFORE_ALL if max_ts is None else max_ts")
        if _drops_late(gen):
            out.add(1, "if mx == _BEFORE_ALL: cut = _BEFORE_ALL")
            out.add(1, "else:")
            out.add(2, *_cut_lines(gen))


def _route_return(
    gen: _Generator, out: _Lines, partitions_by_key: bool, per_record_wm: bool, idx: str, keys: str
) -> None:
    """Return the named result: the split batch, the new max event time, the late records."""
    wl = "wl" if per_record_wm else "None"
    if gen.plan.window is not None:
        mx, late = "None if mx == _BEFORE_ALL else mx", "late"
    else:
        mx, late = "max_ts", "()"
    if partitions_by_key:
        out.add(1, f"return _KeyedRoute(recs, {idx}, {wl}, {keys}, {mx}, {late})", "")
    else:
        out.add(1, f"return _SingleRoute(skip, {wl}, {mx}, {late})", "")


def gen_route(
    gen: _Generator, out: _Lines, name: str, partitions_by_key: bool, per_record_wm: bool
) -> None:
    """The router's careful loop (per-record error handling).

    ``route(stage, records, offsets, nparts)`` returns per-partition lists of records,
    of their indexes in the batch, and of their exact watermarks (or ``None``).
    ``route1`` (one target partition) returns the indexes it skipped (late or failed)
    and the watermarks of the records it kept (or ``None``).
    """
    window = gen.plan.window
    out.add(0, f"def {name}({ROUTE_PARAMS}):")
    out.add(1, "n = len(records)", "i = 0")
    _route_prologue(gen, out, partitions_by_key, per_record_wm)
    out.add(1, "while i < n:")
    out.add(2, "try:")
    out.add(3, "for i in range(i, n):")
    out.add(4, "r = records[i]")
    body = _Lines()
    if window is not None:
        body.add(0, f"t = r[{window.time_column!r}]")
        body.add(0, "if t.__class__ is not int: t = _to_ms(t)")
    _route_body(gen, body, partitions_by_key, per_record_wm)
    for line in body.lines or ["pass"]:
        out.add(4, line)
    out.add(3, "i = n")
    out.add(2, "except Exception as exc:")
    if not partitions_by_key:
        out.add(3, "skip.append(i)")
    out.add(3, "on_bad(exc, records[i], offsets, i)", "i += 1")
    _route_return(gen, out, partitions_by_key, per_record_wm, "idx", "None")


def gen_route_fast(
    gen: _Generator,
    out: _Lines,
    name: str,
    careful: str,
    partitions_by_key: bool,
    per_record_wm: bool,
) -> None:
    """The router's fast path: event times and keys by list comprehensions.

    Falls back to the ``careful`` loop (same results, per-record error handling) when
    any record lacks its event time or key, a key is unhashable, an event time is not an
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
    window = gen.plan.window
    out.add(0, f"def {name}({ROUTE_PARAMS}):")
    fallback = f"return {careful}({ROUTE_PARAMS})"
    if gen.plan.where is not None:
        out.add(1, fallback, "")
        return
    if window is not None:
        out.add(1, "try:", f"    tss = [r[{window.time_column!r}] for r in records]")
        out.add(1, "except Exception:", f"    {fallback}")
        out.add(1, "if tss and set(map(type, tss)) != _INT_ONLY:", f"    {fallback}")
    if partitions_by_key:
        key = gen.key_expr()
        out.add(1, "try:", f"    ks = [{key} for r in records]", "    kset = set(ks)")
        out.add(1, "except Exception:", f"    {fallback}")
        out.add(1, "recs = [[] for _ in range(nparts)]", "radds = [x.append for x in recs]")
        out.add(1, "pget = pcache.get", "kp = {}", "amap = {}")
        out.add(1, "for k in kset:", "    p = pget(k)")
        out.add(2, "if p is None: p = _partition_of(pcache, k, nparts)")
        out.add(2, "kp[k] = p", "amap[k] = radds[p]")
    _skip_and_wm_lists(out, partitions_by_key, per_record_wm)
    _window_prologue(gen, out)
    if window is not None:
        in_order = _drops_late(gen) and not per_record_wm and 0 < window.slide_ms <= window.size_ms
        body = _Lines(_fast_body(gen, partitions_by_key, per_record_wm))
        depth = 1
        if in_order:
            out.add(1, "if tss and tss[0] >= cut and tss == sorted(tss):")
            out.add(2, "if tss[-1] > mx: mx = tss[-1]")
            if partitions_by_key:
                out.add(2, "for k, r in zip(ks, records): amap[k](r)")
            out.add(1, "else:")
            depth = 2
        if partitions_by_key:
            out.add(depth, "for i, t, k, r in zip(range(len(records)), tss, ks, records):")
        else:
            out.add(depth, "for i, t in enumerate(tss):")
        for line in body.lines or ["pass"]:
            out.add(depth + 1, line)
    elif partitions_by_key:
        out.add(1, "for k, r in zip(ks, records): amap[k](r)")
    _route_return(gen, out, partitions_by_key, per_record_wm, "None", "(ks, kp)")


def _fast_body(gen: _Generator, partitions_by_key: bool, per_record_wm: bool) -> list[str]:
    """The fast loop's step: like the careful one, but the key ``k`` is already known."""
    body = _Lines()
    _route_body(gen, body, False, per_record_wm and not partitions_by_key, not partitions_by_key)
    lines = body.lines
    if partitions_by_key:
        lines += ["amap[k](r)"]  # indexes are recovered from ``ks`` only if needed
        if per_record_wm:
            lines = ["wm = mx - lateness", *lines, "wadds[kp[k]](wm)"]
    return lines
