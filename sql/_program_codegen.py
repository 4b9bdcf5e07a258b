"""Generate a partition program's functions (see :mod:`sql._compiler`).

* ``process(records, offsets, wms, groups, windows, on_bad, on_session, on_late)``: the
  fused per-batch loop (filter, project, key, accumulate, and for ``EMIT CHANGES`` build
  the changed row); its calling convention is in :mod:`sql._conventions`;
* ``process_unchecked(records)``: a stateless query's first tier, its comprehension
  without the NULL checks Python makes itself (it raises on ``None``), or ``None``
  when a record raised; only when it would differ from ``process``'s comprehension;
* ``step(g, args)``, ``merge(g1, g2)``, ``init()``, ``row(k, g, ws, we)``: the group-state
  operations the slower paths use (sessions, late updates, closing windows).

Group state is one list per group holding the aggregate slots; a record's update is
computed into locals first and stored only when every step succeeded, so a failing record
never leaves a group half-updated.
"""

from __future__ import annotations

import attrs

from ._expr import ExprCompiler
from ._scopes import QueryScopes
from ._source import SourceLines as _Lines
from ._source import tuple_display

__all__ = ["PROCESS_PARAMS", "gen_group_functions", "gen_process"]

PROCESS_PARAMS = "records, offsets, wms, groups, windows, on_bad, on_session, on_late"
"""The parameters of the generated ``process`` (see :mod:`sql._conventions`)."""


def gen_process(scopes: QueryScopes, out: _Lines) -> None:
    """``process``: one partition's fused loop over a batch."""
    shape = scopes.shape
    out.add(0, f"def process({PROCESS_PARAMS}):")
    start = len(out.lines)
    out.add(1, "out = []", "append = out.append", "nf = 0", "n = len(records)", "i = 0")
    if shape.aggregated and not shape.windowed:
        out.add(1, "get = groups.get")
    elif shape.aligned:
        out.add(1, "cur_ws = None", "get = None")
    out.add(1, "while i < n:")
    out.add(2, "try:")
    out.add(3, "for i in range(i, n):")
    out.add(4, "r = records[i]")
    _gen_body(scopes, out.nested(4))
    out.add(3, "i = n")
    out.add(2, "except Exception as exc:")
    out.add(3, "on_bad(exc, records[i], offsets, i)", "i += 1")
    out.add(1, "return _Processed(out, nf)", "")
    if not shape.aggregated:  # the fast path goes first (generated last: the loop's
        fast = _Lines([], out.base)  # temporaries keep their names)
        fast.add(1, "try:")
        fast.add(2, f"out = {_comprehension(scopes, scopes.record())}")
        fast.add(2, "return _Processed(out, len(records) - len(out))")
        fast.add(1, "except Exception:")
        fast.add(2, "pass  # the loop below says which records fail, and why")
        out.lines[start:start] = fast.lines
        _gen_unchecked(scopes, out)


def _comprehension(scopes: QueryScopes, rec: ExprCompiler) -> str:
    """A stateless query's fast path: one list comprehension over the batch (about a
    quarter cheaper than the loop).  Its expressions have no side effects, so when a
    record fails it is dropped and the careful loop redoes the batch, calling ``on_bad``
    for each bad record."""
    plan, shape = scopes.plan, scopes.shape
    items = [f"{o.name!r}: {rec.value(o.expr).src}" for o in plan.outputs]
    if shape.star:
        row = "{**r, " + ", ".join(items) + "}" if items else "dict(r)"
    else:
        row = "{" + ", ".join(items) + "}"
    where = "" if plan.where is None else f" if {rec.cond(plan.where)}"
    return f"[{row} for r in records{where}]"


def _gen_unchecked(scopes: QueryScopes, out: _Lines) -> None:
    """``process_unchecked``: the comprehension without the NULL checks of the operators
    Python raises on ``None`` for (see :class:`ExprCompiler` ``unchecked``).  A record
    that raises makes it return ``None`` and the program runs ``process``; so a batch
    with a NULL costs one partial pass more.  Nothing when it drops no check."""
    rec = attrs.evolve(scopes.record(), unchecked=True)
    body = _comprehension(scopes, rec)
    if not rec.dropped:
        return
    out.add(0, "def process_unchecked(records):")
    out.add(1, "try:")
    out.add(2, f"out = {body}")
    out.add(1, "except Exception:")
    out.add(2, "return None  # process's NULL checks (and its loop) redo the batch")
    out.add(1, "return _Processed(out, len(records) - len(out))", "")


def _gen_body(scopes: QueryScopes, out: _Lines) -> None:
    """The per-record step of ``process`` (``r`` and ``i`` are bound)."""
    plan, shape = scopes.plan, scopes.shape
    rec = scopes.record()
    if plan.where is not None:
        out.add(0, f"if not {rec.cond(plan.where)}:", "    nf += 1", "    continue")
    if not shape.aggregated:
        items = [f"{o.name!r}: {rec.value(o.expr).src}" for o in plan.outputs]
        if shape.star:
            out.add(0, "append({**r, " + ", ".join(items) + "})" if items else "append(dict(r))")
        else:
            out.add(0, "append({" + ", ".join(items) + "})")
        return
    window = plan.window
    if window is not None:
        col = window.time_column
        out.add(0, f"t = r[{col!r}]", "if t.__class__ is not int: t = _to_ms(t)")
    out.add(0, scopes.key_line())
    layout = scopes.layout
    for i, (agg, name) in enumerate(zip(plan.aggregates, layout.arg_names, strict=True)):
        if agg.arg is not None and name == f"a{i}":
            out.add(0, f"{name} = {rec.value(agg.arg).src}")
    args_tuple = tuple_display(layout.args)
    if window is None:
        _gen_update(scopes, out, 0, "groups", "None")
        return
    if shape.session:
        out.add(0, f"rows = on_session(r, _off(offsets, i), k, t, {args_tuple}, wms[i])")
        out.add(0, "if rows: out += rows")
        return
    size, slide = window.size_ms, window.slide_ms
    late = f"out += on_late(r, _off(offsets, i), k, ws, {args_tuple}, wms[i], {{count}})"
    indent = 0
    if shape.hop:
        out.add(0, f"last = t - t % {slide!r}")
        if size % slide == 0:  # a record is in size / slide windows
            out.add(0, f"for ws in range(last - {size - slide!r}, last + 1, {slide!r}):")
        else:  # the windows starting after t - size, every slide, up to t
            out.add(0, f"first = t - {size!r}", f"first += {slide!r} - first % {slide!r}")
            out.add(0, f"for ws in range(first, last + 1, {slide!r}):")
        indent = 1
        out.add(1, f"if ws + {size!r} <= wms[i]:")
        if shape.late_update:  # a HOP record counts as late once, for its last window
            out.add(2, late.format(count="ws == last"))
        out.add(2, "continue")
    elif shape.cumulate:  # the windows of the aligned start ending after t, keyed by end
        out.add(0, f"ws = t - t % {size!r}", f"last = ws + {size!r}")
        out.add(0, f"for we in range(t - t % {slide!r} + {slide!r}, last + 1, {slide!r}):")
        indent = 1
        out.add(1, "if we <= wms[i]:")
        if shape.late_update:  # counted late once, for its whole window
            out.add(2, late.format(count="we == last").replace(", ws, ", ", we, "))
        out.add(2, "continue")
        out.add(1, "if we != cur_ws:")
        out.add(2, "cur = windows.get(we)")
        out.add(2, "if cur is None: cur = windows[we] = {}")
        out.add(2, "cur_ws = we", "get = cur.get")
        _gen_update(scopes, out, 1, "cur", "we")
        return
    else:
        out.add(0, f"ws = t - t % {size!r}")
        if shape.late_update:
            out.add(0, f"if ws + {size!r} <= wms[i]:")
            out.add(1, late.format(count="True"), "continue")
    out.add(indent, "if ws != cur_ws:")
    out.add(indent + 1, "cur = windows.get(ws)")
    out.add(indent + 1, "if cur is None: cur = windows[ws] = {}")
    out.add(indent + 1, "cur_ws = ws", "get = cur.get")
    _gen_update(scopes, out, indent, "cur", f"ws + {size!r}")


def _update_lines(scopes: QueryScopes, *, fast: bool) -> tuple[list[str], list[str], list[str]]:
    """(compute ``n*``, commit them into an existing ``g``, set additions).

    The generic form reads the old slots from locals ``o*`` and checks every argument
    for NULL; the ``fast`` form is for an existing group and non-NULL arguments and
    reads the old slots straight from ``g``: it counts the row and adds to the totals,
    and leaves the NULL counts (see :class:`sql._scopes.AggregateLayout`) alone.
    """
    layout = scopes.layout
    r = layout.rows
    compute: list[str] = [f"n{r} = {f'g[{r}]' if fast else f'o{r}'} + 1"]
    commit: list[str] = [f"g[{r}] = n{r}"]
    adds: list[str] = []
    for agg, slots, arg in zip(scopes.plan.aggregates, layout.slots, layout.arg_names, strict=True):
        s = slots[0]
        a, n = arg or "", f"n{s}"
        o = f"g[{s}]" if fast else f"o{s}"
        if agg.func == "count_star":
            continue  # the row count, counted once above
        if agg.func == "count":
            if not fast:
                compute.append(f"{n} = {o} + 1 if {a} is None else {o}")
                commit.append(f"g[{s}] = {n}")
            continue
        if agg.func in ("sum", "avg"):
            if fast:
                compute.append(f"{n} = {o} + {a}")
                commit.append(f"g[{s}] = {n}")
            else:
                n2, o2 = f"n{slots[1]}", f"o{slots[1]}"
                compute.append(f"{n} = {o} if {a} is None else {o} + {a}")
                compute.append(f"{n2} = {o2} + 1 if {a} is None else {o2}")
                commit += [f"g[{s}] = {n}", f"g[{slots[1]}] = {n2}"]
            continue
        if agg.func in ("min", "max"):
            op = "<" if agg.func == "min" else ">"
            if fast:
                compute.append(f"o{s} = g[{s}]")
                compute.append(f"{n} = {a} if o{s} is None or {a} {op} o{s} else o{s}")
            else:
                compute.append(
                    f"{n} = {o} if {a} is None or ({o} is not None and not {a} {op} {o}) else {a}"
                )
            commit.append(f"g[{s}] = {n}")
            continue
        # count_distinct: the set itself is the slot; size is checked before adding
        compute.append(f"{n} = {o}")
        if fast:
            compute.append(f"_d{s} = {a} not in {n}")
        else:
            compute.append(f"_d{s} = {a} is not None and {a} not in {n}")
        adds.append(f"if _d{s}: {n}.add({a})")  # the set stays in its slot
    return compute, commit, adds


def _gen_update(scopes: QueryScopes, out: _Lines, indent: int, target: str, we: str) -> None:
    """Fold record ``r`` into group ``k`` of ``target`` (``get`` is ``target.get``)."""
    layout = scopes.layout
    out.add(indent, "g = get(k)")
    if scopes.shape.retract:  # the old row is needed: the generic form binds the old slots
        _gen_generic_update(scopes, out, indent, target, we)
        return
    checks = ["g is not None", *(f"{a} is not None" for a in layout.args)]
    out.add(indent, f"if {' and '.join(checks)}:")
    compute, commit, adds = _update_lines(scopes, fast=True)
    out.add(indent + 1, *compute)
    distinct = scopes.shape.distinct  # a known group emits nothing more
    if not distinct:
        _gen_change_row(scopes, out, indent + 1, we, fast=True)
    out.add(indent + 1, *commit)
    out.add(indent + 1, *adds)
    if not distinct:
        _gen_append_row(scopes, out, indent + 1)
    out.add(indent, "else:")
    _gen_generic_update(scopes, out, indent + 1, target, we)


def _gen_generic_update(
    scopes: QueryScopes, out: _Lines, indent: int, target: str, we: str
) -> None:
    """The update of a new group, or with a NULL argument (or with retractions)."""
    layout = scopes.layout
    ns = layout.nslots
    o_names = [f"o{i}" for i in range(ns)]
    if ns:
        out.add(indent, f"if g is None: {', '.join(o_names)}, = {', '.join(layout.init)},")
        out.add(indent, f"else: {', '.join(o_names)}, = g")
    compute, commit, adds = _update_lines(scopes, fast=False)
    out.add(indent, *compute)
    _gen_change_row(scopes, out, indent, we, fast=False)
    out.add(indent, "if g is None:")
    out.add(indent + 1, f"{target}[k] = [{', '.join(f'n{i}' for i in range(ns))}]")
    out.add(indent, "else:")
    out.add(indent + 1, *commit)
    out.add(indent, *adds)
    _gen_append_row(scopes, out, indent)


def _gen_change_row(scopes: QueryScopes, out: _Lines, indent: int, we: str, *, fast: bool) -> None:
    """EMIT CHANGES: build the group's new row (before committing, as it may fail)."""
    if not scopes.shape.emit_changes:
        return
    row = scopes.row("n", fast=fast, pending=True)
    if row.uses_window_end and we != "we":
        out.add(indent, f"we = {we}")
    unpack = scopes.unpack_key()
    if unpack:
        out.add(indent, unpack)
    if row.having is not None:
        out.add(indent, f"rw = {row.display} if {row.having} else None")
    else:
        out.add(indent, f"rw = {row.display}")
    if scopes.shape.retract:  # the group's row before this record (None: there was none)
        old = scopes.row("o")
        qualifies = f" and {old.having}" if old.having is not None else ""
        out.add(indent, f"ro = {old.display} if g is not None{qualifies} else None")


def _gen_append_row(scopes: QueryScopes, out: _Lines, indent: int) -> None:
    shape = scopes.shape
    if not shape.emit_changes:
        return
    if shape.retract:  # a changed row: the old one retracted, then the new one
        out.add(indent, "if ro != rw:")
        out.add(indent + 1, "if ro is not None: append({**ro, '_retract': True})")
        out.add(indent + 1, "if rw is not None: append(rw)")
        return
    if shape.has_having:
        out.add(indent, "if rw is not None: append(rw)")
    else:
        out.add(indent, "append(rw)")


def gen_group_functions(scopes: QueryScopes, out: _Lines) -> None:
    """``init``, ``step``, ``merge`` and ``row``: a group's state, one call at a time."""
    plan, layout = scopes.plan, scopes.layout
    ns = layout.nslots
    o_names = [f"o{i}" for i in range(ns)]
    init = ", ".join(layout.init)
    out.add(0, "def init():", f"    return [{init}]", "")
    # step(g, args) -> new state list (g is None for a new group)
    out.add(0, "def step(g, args):")
    if layout.args:
        out.add(1, f"{', '.join(layout.args)}, = args")
    out.add(1, f"if g is None: g = [{init}]")
    if ns:
        out.add(1, f"{', '.join(o_names)}, = g")
    compute, _commit, adds = _update_lines(scopes, fast=False)
    out.add(1, *compute)
    out.add(1, *adds)
    out.add(1, f"return [{', '.join(f'n{i}' for i in range(ns))}]", "")
    # merge(g1, g2) -> merged state
    out.add(0, "def merge(g1, g2):", "    g = list(g1)")
    r = layout.rows
    out.add(1, f"g[{r}] = g1[{r}] + g2[{r}]")
    for agg, slots in zip(plan.aggregates, layout.slots, strict=True):
        if agg.func == "count_star":
            continue  # the row count, merged above
        for s in slots:
            x, y = f"g1[{s}]", f"g2[{s}]"
            if agg.func in ("count", "avg", "sum"):
                out.add(1, f"g[{s}] = {x} + {y}")
            elif agg.func in ("min", "max"):
                op = "<=" if agg.func == "min" else ">="
                out.add(
                    1,
                    f"g[{s}] = {y} if {x} is None else {x} if {y} is None or {x} {op} {y} else {y}",
                )
            else:
                out.add(1, f"g[{s}] = {x} | {y}")
    out.add(1, "return g", "")
    # row(k, g, ws, we) -> output row, or None when HAVING rejects it
    row = scopes.row("o")
    out.add(0, "def row(k, g, ws, we):")
    unpack = scopes.unpack_key()
    if unpack:
        out.add(1, unpack)
    if ns:
        out.add(1, f"{', '.join(o_names)}, = g")
    if row.having is not None:
        out.add(1, f"if not {row.having}: return None")
    out.add(1, f"return {row.display}", "")
