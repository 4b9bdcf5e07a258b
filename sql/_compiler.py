"""Generate and compile the Python source of a query's partition program and router.

One module of source per query, compiled once with :func:`compile` under a readable
filename registered in :mod:`linecache` (tracebacks show the generated lines).  It defines:

* ``process(prog, records, offsets, wms)``: the fused per-batch loop (filter, project,
  key, accumulate, and for ``EMIT CHANGES`` build the changed row);
* ``route(stage, records, offsets)``: the router's per-record loop (event time, exact
  watermark, lateness, partition by key hash) for keyed or windowed queries;
* ``step(g, args)``, ``merge(g1, g2)``, ``init()``, ``row(k, g, ws, we)``: the group-state
  operations the slower paths use (sessions, late updates, closing windows).

Group state is one list per group holding the aggregate slots; a record's update is
computed into locals first and stored only when every step succeeded, so a failing record
never leaves a group half-updated.
"""

from __future__ import annotations

import itertools
import linecache
import weakref
from collections.abc import Callable
from typing import Any

import attrs
from sqlglot import exp

from ._conventions import KeyedRoute, Processed, SingleRoute
from ._dialect import WindowBound
from ._errors import SqlError
from ._expr import Code, ExprCompiler
from ._functions import HELPERS
from ._hashing import partition_of
from ._plan import AggregateCall, LogicalPlan
from ._route_codegen import gen_route, gen_route_fast
from ._source import SourceLines as _Lines

__all__ = ["GeneratedCode", "generate"]

_COUNTER = itertools.count(1)

PROCESS_PARAMS = "records, offsets, wms, groups, windows, on_bad, on_session, on_late"
"""The parameters of the generated ``process`` (see :mod:`sql._conventions`)."""


def _offset(offsets: Any, index: int) -> int | None:
    return int(offsets[index]) if index < len(offsets) else None


@attrs.frozen(eq=False)
class GeneratedCode:
    """The compiled module of one query: its source, filename and functions."""

    source: str
    filename: str
    functions: dict[str, Callable[..., Any]]


def _slots(aggs: tuple[AggregateCall, ...]) -> list[tuple[int, ...]]:
    """Slot indexes of each aggregate in the group-state list (AVG takes two)."""
    out: list[tuple[int, ...]] = []
    n = 0
    for agg in aggs:
        width = 2 if agg.func in ("avg", "sum") else 1
        out.append(tuple(range(n, n + width)))
        n += width
    return out


def _init_values(aggs: tuple[AggregateCall, ...]) -> list[str]:
    values: list[str] = []
    for agg in aggs:
        if agg.func in ("count_star", "count"):
            values.append("0")
        elif agg.func in ("avg", "sum"):
            values += ["0", "0"]
        elif agg.func == "count_distinct":
            values.append("set()")
        else:
            values.append("None")
    return values


@attrs.define
class _Generator:
    plan: LogicalPlan
    sql: str
    late_update: bool = False
    prelude: list[str] = attrs.Factory(list)
    _temps: list[int] = attrs.Factory(lambda: [0])

    # -- expression contexts ----------------------------------------------------------

    def _column_name(self, node: exp.Column) -> str:
        table = node.table
        if table and table not in (self.plan.source, self.plan.source_alias):
            raise self._compiler(lambda n: None).error(
                node, f"unknown table {table!r}; the query reads {self.plan.source!r}"
            )
        return node.name

    def _compiler(self, resolve: Callable[[exp.Expr], Code | None]) -> ExprCompiler:
        return ExprCompiler(self.sql, resolve, self.prelude, self._temps)

    def record_expr(self) -> ExprCompiler:
        """Expressions over the current record ``r``."""

        def resolve(node: exp.Expr) -> Code | None:
            if isinstance(node, exp.Column):
                return Code(f"r[{self._column_name(node)!r}]")
            return None

        return self._compiler(resolve)

    def group_expr(self, prefix: str, fast: bool = False, pending: bool = False) -> ExprCompiler:
        """Expressions over a group: key parts ``k0..``, slots ``{prefix}0..``, ``ws``/``we``.

        ``fast``: the group just took a record with non-NULL arguments, so SUM, AVG, MIN
        and MAX are known not to be NULL.  ``pending``: a COUNT(DISTINCT) set has yet to
        take the record's value (``_d*`` says whether it is new).
        """
        plan = self.plan
        keys = {k.sql(): i for i, k in enumerate(plan.group_keys)}
        aggs = {
            a.text: (a, s) for a, s in zip(plan.aggregates, _slots(plan.aggregates), strict=True)
        }
        aliases = {o.name: o.expr for o in plan.outputs}
        comp: ExprCompiler

        def resolve(node: exp.Expr) -> Code | None:
            text = node.sql() if not isinstance(node, exp.Literal) else None
            if text is not None and text in keys:
                return Code("k" if len(keys) == 1 else f"k{keys[text]}")
            if text is not None and text in aggs:
                agg, slots = aggs[text]
                s = [f"{prefix}{i}" for i in slots]
                if agg.func in ("count", "count_star"):
                    return Code(s[0], nonnull=True)
                if agg.func == "count_distinct":
                    if pending:
                        return Code(f"(len({s[0]}) + _d{slots[0]})", nonnull=True)
                    return Code(f"len({s[0]})", nonnull=True)
                if agg.func == "avg":
                    if fast:
                        return Code(f"({s[0]} / {s[1]})", nonnull=True)
                    return Code(f"({s[0]} / {s[1]} if {s[1]} else None)")
                if agg.func == "sum":
                    return (
                        Code(s[0], nonnull=True) if fast else Code(f"({s[0]} if {s[1]} else None)")
                    )
                return Code(s[0], nonnull=fast)
            if isinstance(node, WindowBound):
                return Code("ws" if node.this.name.endswith("_START") else "we", nonnull=True)
            if isinstance(node, exp.Column):
                name = self._column_name(node)
                if plan.window is not None and not node.table and name == "window_start":
                    return Code("ws", nonnull=True)
                if plan.window is not None and not node.table and name == "window_end":
                    return Code("we", nonnull=True)
                if not node.table and name in aliases and aliases[name] is not node:
                    target = aliases[name]
                    if not (isinstance(target, exp.Column) and target.name == name):
                        return comp.value(target)
                raise comp.error(
                    node,
                    f"column {name!r} must appear in GROUP BY or be used in an aggregate function",
                )
            return None

        comp = self._compiler(resolve)
        return comp

    # -- pieces -----------------------------------------------------------------------

    def key_expr(self) -> str:
        """The group key of record ``r``: one value, or a tuple of several (or none)."""
        keys = self.plan.group_keys
        rec = self.record_expr()
        if len(keys) == 1:
            return rec.value(keys[0]).src
        return f"({', '.join(rec.value(k).src for k in keys)})"

    def key_line(self) -> str:
        return f"k = {self.key_expr()}"

    def unpack_key(self) -> str | None:
        n = len(self.plan.group_keys)
        if n < 2:  # no key, or ``k`` is the one key part itself
            return None
        return f"{', '.join(f'k{i}' for i in range(n))}, = k"

    def arg_names(self) -> list[str | None]:
        """The local holding each aggregate's argument (shared by equal arguments)."""
        seen: dict[str, str] = {}
        names: list[str | None] = []
        for i, agg in enumerate(self.plan.aggregates):
            if agg.arg is None:
                names.append(None)
                continue
            names.append(seen.setdefault(agg.arg.sql(), f"a{i}"))
        return names

    def arg_lines(self) -> list[str]:
        rec = self.record_expr()
        lines = []
        for i, (agg, name) in enumerate(zip(self.plan.aggregates, self.arg_names(), strict=True)):
            if agg.arg is not None and name == f"a{i}":
                lines.append(f"{name} = {rec.value(agg.arg).src}")
        return lines

    def args_tuple(self) -> str:
        names = sorted({n for n in self.arg_names() if n is not None}, key=lambda x: int(x[1:]))
        return f"({', '.join(names)}{',' if names else ''})"

    def update_lines(self, fast: bool = False) -> tuple[list[str], list[str], list[str]]:
        """(compute ``n*``, commit them into an existing ``g``, set additions).

        The generic form reads the old slots from locals ``o*`` and checks every argument
        for NULL; the ``fast`` form is for an existing group and non-NULL arguments and
        reads the old slots straight from ``g``.
        """
        compute: list[str] = []
        commit: list[str] = []
        adds: list[str] = []
        names = self.arg_names()
        for i, (agg, slots) in enumerate(
            zip(self.plan.aggregates, _slots(self.plan.aggregates), strict=True)
        ):
            s = slots[0]
            a, n = names[i] or "", f"n{s}"
            o = f"g[{s}]" if fast else f"o{s}"
            if agg.func == "count_star" or (fast and agg.func == "count"):
                compute.append(f"{n} = {o} + 1")
            elif agg.func == "count":
                compute.append(f"{n} = {o} if {a} is None else {o} + 1")
            elif agg.func in ("sum", "avg"):
                o2 = f"g[{slots[1]}]" if fast else f"o{slots[1]}"
                n2 = f"n{slots[1]}"
                if fast:
                    compute.append(f"{n} = {o} + {a}")
                    compute.append(f"{n2} = {o2} + 1")
                else:
                    compute.append(f"{n} = {o} if {a} is None else {o} + {a}")
                    compute.append(f"{n2} = {o2} if {a} is None else {o2} + 1")
            elif agg.func in ("min", "max"):
                op = "<" if agg.func == "min" else ">"
                if fast:
                    compute.append(f"o{s} = g[{s}]")
                    compute.append(f"{n} = {a} if o{s} is None or {a} {op} o{s} else o{s}")
                else:
                    compute.append(
                        f"{n} = {o} if {a} is None or ({o} is not None and not {a} {op} {o}) "
                        f"else {a}"
                    )
            else:  # count_distinct: the set itself is the slot; size is checked before adding
                compute.append(f"{n} = {o}")
                if fast:
                    compute.append(f"_d{s} = {a} not in {n}")
                else:
                    compute.append(f"_d{s} = {a} is not None and {a} not in {n}")
                adds.append(f"if _d{s}: {n}.add({a})")
                continue  # the set stays in its slot: nothing to commit
            for idx in slots:
                commit.append(f"g[{idx}] = n{idx}")
        return compute, commit, adds

    def nslots(self) -> int:
        return sum(len(s) for s in _slots(self.plan.aggregates))

    def row_dict(
        self, prefix: str, fast: bool = False, pending: bool = False
    ) -> tuple[str, str | None]:
        """(the dict display of an output row, the HAVING condition or None)."""
        comp = self.group_expr(prefix, fast, pending)
        items = [f"{o.name!r}: {comp.value(o.expr).src}" for o in self.plan.outputs]
        having = comp.cond(self.plan.having) if self.plan.having is not None else None
        return "{" + ", ".join(items) + "}", having

    # -- functions --------------------------------------------------------------------

    def gen_group_functions(self, out: _Lines) -> None:
        plan = self.plan
        ns = self.nslots()
        o_names = [f"o{i}" for i in range(ns)]
        init = _init_values(plan.aggregates)
        out.add(0, "def init():", f"    return [{', '.join(init)}]", "")
        # step(g, args) -> new state list (g is None for a new group)
        out.add(0, "def step(g, args):")
        args = self.args_tuple()
        if args != "()":
            out.add(1, f"{args[1:-1]} = args")
        out.add(1, f"if g is None: g = [{', '.join(init)}]")
        if ns:
            out.add(1, f"{', '.join(o_names)}, = g")
        compute, _commit, adds = self.update_lines()
        out.add(1, *compute)
        out.add(1, *adds)
        out.add(1, f"return [{', '.join(f'n{i}' for i in range(ns))}]", "")
        # merge(g1, g2) -> merged state
        out.add(0, "def merge(g1, g2):", "    g = list(g1)")
        for agg, slots in zip(plan.aggregates, _slots(plan.aggregates), strict=True):
            for s in slots:
                x, y = f"g1[{s}]", f"g2[{s}]"
                if agg.func in ("count", "count_star", "avg", "sum"):
                    out.add(1, f"g[{s}] = {x} + {y}")
                elif agg.func in ("min", "max"):
                    op = "<=" if agg.func == "min" else ">="
                    out.add(
                        1,
                        f"g[{s}] = {y} if {x} is None else {x} if {y} is None or {x} {op} {y} "
                        f"else {y}",
                    )
                else:
                    out.add(1, f"g[{s}] = {x} | {y}")
        out.add(1, "return g", "")
        # row(k, g, ws, we) -> output row, or None when HAVING rejects it
        row, having = self.row_dict("o")
        out.add(0, "def row(k, g, ws, we):")
        unpack = self.unpack_key()
        if unpack:
            out.add(1, unpack)
        if ns:
            out.add(1, f"{', '.join(o_names)}, = g")
        if having:
            out.add(1, f"if not {having}: return None")
        out.add(1, f"return {row}", "")

    def gen_process(self, out: _Lines) -> None:
        plan = self.plan
        window = plan.window
        out.add(0, f"def process({PROCESS_PARAMS}):")
        out.add(1, "out = []", "append = out.append", "nf = 0", "n = len(records)", "i = 0")
        if plan.aggregated:
            if window is None:
                out.add(1, "get = groups.get")
            elif window.kind != "session":
                out.add(1, "cur_ws = None", "get = None")
        out.add(1, "while i < n:")
        out.add(2, "try:")
        out.add(3, "for i in range(i, n):")
        out.add(4, "r = records[i]")
        body = _Lines()
        self.gen_body(body)
        for line in body.lines:
            out.add(4, line)
        out.add(3, "i = n")
        out.add(2, "except Exception as exc:")
        out.add(3, "on_bad(exc, records[i], offsets, i)", "i += 1")
        out.add(1, "return _Processed(out, nf)", "")

    def gen_body(self, out: _Lines) -> None:
        plan = self.plan
        rec = self.record_expr()
        if plan.where is not None:
            out.add(0, f"if not {rec.cond(plan.where)}:", "    nf += 1", "    continue")
        if not plan.aggregated:
            items = [f"{o.name!r}: {rec.value(o.expr).src}" for o in plan.outputs]
            if plan.star:
                out.add(
                    0, "append({**r, " + ", ".join(items) + "})" if items else "append(dict(r))"
                )
            else:
                out.add(0, "append({" + ", ".join(items) + "})")
            return
        window = plan.window
        if window is not None:
            col = window.time_column
            out.add(0, f"t = r[{col!r}]", "if t.__class__ is not int: t = _to_ms(t)")
        out.add(0, self.key_line())
        out.add(0, *self.arg_lines())
        args_tuple = self.args_tuple()
        if window is None:
            self.gen_update(out, 0, None, "None")
            return
        if window.kind == "session":
            out.add(0, f"rows = on_session(r, _off(offsets, i), k, t, {args_tuple}, wms[i])")
            out.add(0, "if rows: out += rows")
            return
        size, slide = window.size_ms, window.slide_ms
        late = self.late_update
        indent = 0
        if window.kind == "tumble":
            out.add(0, f"ws = t - t % {size!r}")
        else:
            out.add(0, f"last = t - t % {slide!r}")
            out.add(0, f"for ws in range(last - {size - slide!r}, last + 1, {slide!r}):")
            indent = 1
            out.add(1, f"if ws + {size!r} <= wms[i]:")
            if late:
                out.add(
                    2,
                    f"out += on_late(r, _off(offsets, i), k, ws, {args_tuple}, wms[i], ws == last)",
                )
            out.add(2, "continue")
        if late and window.kind == "tumble":
            out.add(0, f"if ws + {size!r} <= wms[i]:")
            out.add(
                1,
                f"out += on_late(r, _off(offsets, i), k, ws, {args_tuple}, wms[i], True)",
                "continue",
            )
        out.add(indent, "if ws != cur_ws:")
        out.add(indent + 1, "cur = windows.get(ws)")
        out.add(indent + 1, "if cur is None: cur = windows[ws] = {}")
        out.add(indent + 1, "cur_ws = ws", "get = cur.get")
        self.gen_update(out, indent, "cur", f"ws + {size!r}")

    def gen_update(self, out: _Lines, indent: int, container: str | None, we: str) -> None:
        plan = self.plan
        ns = self.nslots()
        o_names = [f"o{i}" for i in range(ns)]
        init = _init_values(plan.aggregates)
        target = container or "groups"
        arg_names = sorted({n for n in self.arg_names() if n is not None})
        out.add(indent, "g = get(k)")
        checks = ["g is not None", *(f"{a} is not None" for a in arg_names)]
        out.add(indent, f"if {' and '.join(checks)}:")
        compute, commit, adds = self.update_lines(fast=True)
        out.add(indent + 1, *compute)
        self._gen_change_row(out, indent + 1, we, fast=True)
        out.add(indent + 1, *(commit or ["pass"]))
        out.add(indent + 1, *adds)
        self._gen_append_row(out, indent + 1)
        out.add(indent, "else:")
        indent += 1
        if ns:
            out.add(indent, f"if g is None: {', '.join(o_names)}, = {', '.join(init)},")
            out.add(indent, f"else: {', '.join(o_names)}, = g")
        compute, commit, adds = self.update_lines()
        out.add(indent, *compute)
        self._gen_change_row(out, indent, we)
        out.add(indent, "if g is None:")
        out.add(indent + 1, f"{target}[k] = [{', '.join(f'n{i}' for i in range(ns))}]")
        if commit:
            out.add(indent, "else:")
            out.add(indent + 1, *commit)
        out.add(indent, *adds)
        self._gen_append_row(out, indent)

    def _gen_change_row(self, out: _Lines, indent: int, we: str, fast: bool = False) -> None:
        """EMIT CHANGES: build the group's new row (before committing, as it may fail)."""
        plan = self.plan
        if plan.emit != "changes":
            return
        row, having = self.row_dict("n", fast, pending=True)
        unpack = self.unpack_key()
        if plan.window is not None and "we" in row + (having or ""):
            out.add(indent, f"we = {we}")
        if unpack:
            out.add(indent, unpack)
        if having:
            out.add(indent, f"rw = {row} if {having} else None")
        else:
            out.add(indent, f"rw = {row}")

    def _gen_append_row(self, out: _Lines, indent: int) -> None:
        if self.plan.emit != "changes":
            return
        if self.plan.having is not None:
            out.add(indent, "if rw is not None: append(rw)")
        else:
            out.add(indent, "append(rw)")


def generate(plan: LogicalPlan, sql: str, *, late_update: bool) -> GeneratedCode:
    """Generate, compile and load the module of ``plan``.

    Raises:
        SqlError: an expression cannot be compiled (unknown column in a group context,
            unsupported function, ...).
    """
    gen = _Generator(plan, sql, late_update)
    body = _Lines()
    gen.gen_process(body)
    if plan.aggregated:
        gen.gen_group_functions(body)
    window = plan.window
    per_record_wm = window is not None and (window.kind != "tumble" or late_update)
    if plan.aggregated:
        if plan.group_keys:
            gen_route(gen, body, "route_careful", True, per_record_wm)
            gen_route_fast(gen, body, "route", "route_careful", True, per_record_wm)
        if window is not None:
            gen_route(gen, body, "route1_careful", False, per_record_wm)
            gen_route_fast(gen, body, "route1", "route1_careful", False, per_record_wm)
    number = next(_COUNTER)
    filename = f"<partita-sql:program#{number}>"
    header = [f"# generated by partita.sql for query #{number}; do not edit"]
    source = "\n".join([*header, *gen.prelude, "", *body.lines]) + "\n"
    namespace: dict[str, Any] = dict(HELPERS)
    namespace["_off"] = _offset
    namespace["_INT_ONLY"] = {int}
    namespace["_partition_of"] = partition_of
    namespace["_INF"] = float("inf")
    namespace["_Processed"] = Processed
    namespace["_KeyedRoute"] = KeyedRoute
    namespace["_SingleRoute"] = SingleRoute
    namespace["_BEFORE_ALL"] = float("-inf")  # the routers' max event time before any
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:  # pragma: no cover - a compiler bug, not a user error
        raise SqlError(f"internal error compiling the query: {exc}") from exc
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(code, namespace)
    functions: dict[str, Callable[..., Any]] = {
        name: namespace[name]
        for name in ("process", "route", "route1", "init", "step", "merge", "row")
        if name in namespace
    }
    generated = GeneratedCode(source=source, filename=filename, functions=functions)
    # the source stays in linecache (tracebacks, explain) for as long as the query lives
    weakref.finalize(generated, linecache.cache.pop, filename, None)
    return generated
