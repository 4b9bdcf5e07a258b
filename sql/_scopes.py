"""What the code generators share: a query's expression scopes and its state layout.

The partition loop (:mod:`sql._program_codegen`) and the routing loops
(:mod:`sql._route_codegen`) both compile expressions over the current record and the
group key; the partition loop also over a group (key parts, aggregate slots, window
bounds).  :class:`QueryScopes` gives both the compilers they need, and
:class:`AggregateLayout` says where each aggregate lives in a group's state.
"""

from __future__ import annotations

import attrs
from sqlglot import exp

from ._dialect import WindowBound
from ._expr import Code, ExprCompiler, ModuleNames
from ._plan import AggregateCall, LogicalPlan
from ._shape import QueryShape

__all__ = ["AggregateLayout", "QueryScopes", "RowCode"]


@attrs.frozen
class AggregateLayout:
    """Where the aggregates live in a group's state list, and which locals feed them.

    Every group counts its rows in one slot (``rows``: COUNT(*)'s, or a slot of its own
    when the query has no COUNT(*)).  COUNT(x) keeps the NULLs of ``x`` it saw, SUM and
    AVG their total and their NULLs: a record whose arguments are all non-NULL (nearly
    every record) then updates only the row count and the totals, and the non-NULL
    count of an aggregate is ``rows - nulls``.

    Attributes:
        slots: each aggregate's slot indexes: COUNT(*) the row count; COUNT(x) its
            NULLs; SUM and AVG their total, then their NULLs; MIN, MAX and
            COUNT(DISTINCT) their value.
        arg_names: each aggregate's argument local (``a<i>``, shared by aggregates with
            equal arguments), ``None`` for ``COUNT(*)``.
        args: the distinct argument locals, in the order the aggregates first use them.
        init: each slot's initial value, as source (``0``, ``None``, ``set()``).
        rows: the slot of the group's row count.
        nulls: the slots that count NULL arguments (a record with non-NULL arguments
            leaves them as they are).
    """

    slots: tuple[tuple[int, ...], ...]
    arg_names: tuple[str | None, ...]
    args: tuple[str, ...]
    init: tuple[str, ...]
    rows: int
    nulls: frozenset[int]

    @property
    def nslots(self) -> int:
        """How many slots a group's state list has."""
        return len(self.init)

    @classmethod
    def of(cls, aggregates: tuple[AggregateCall, ...]) -> AggregateLayout:
        """The layout of ``aggregates`` (in plan order).

        Example:
            >>> from partita.sql._plan import AggregateCall
            >>> layout = AggregateLayout.of((AggregateCall("sum", None, "SUM(x)"),))
            >>> layout.slots, layout.rows, sorted(layout.nulls), layout.init
            (((0, 1),), 2, [1], ('0', '0', '0'))
        """
        slots: list[tuple[int, ...]] = []
        init: list[str] = []
        names: list[str | None] = []
        nulls: set[int] = set()
        seen: dict[str, str] = {}
        rows: int | None = None
        for i, agg in enumerate(aggregates):
            if agg.func == "count_star":
                if rows is None:
                    rows = len(init)
                    init.append("0")
                slots.append((rows,))
            else:
                if agg.func == "count":
                    values = ["0"]
                    nulls.add(len(init))
                elif agg.func in ("avg", "sum"):
                    values = ["0", "0"]
                    nulls.add(len(init) + 1)
                elif agg.func == "count_distinct":
                    values = ["set()"]
                else:
                    values = ["None"]
                slots.append(tuple(range(len(init), len(init) + len(values))))
                init += values
            names.append(None if agg.arg is None else seen.setdefault(agg.arg.sql(), f"a{i}"))
        if rows is None:
            rows = len(init)
            init.append("0")
        return cls(
            tuple(slots), tuple(names), tuple(seen.values()), tuple(init), rows, frozenset(nulls)
        )


@attrs.frozen
class RowCode:
    """The source of one output row of a group.

    Attributes:
        display: the dict display of the row.
        having: the HAVING condition, or ``None`` without HAVING.
        uses_window_end: the row or condition reads ``we`` (the window end), so the
            caller must bind it first.
    """

    display: str
    having: str | None
    uses_window_end: bool


@attrs.define
class QueryScopes:
    """The expression compilers of one query's generated module.

    Args:
        plan: the query's plan.
        shape: its variant flags.
        sql: the query text (for error positions).
        names: the module's temporaries and namespace constants.
    """

    plan: LogicalPlan
    shape: QueryShape
    sql: str
    names: ModuleNames = attrs.Factory(ModuleNames)
    layout: AggregateLayout = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.layout = AggregateLayout.of(self.plan.aggregates)

    def _column_name(self, node: exp.Column) -> str:
        table = node.table
        if table and table not in (self.plan.source, self.plan.source_alias):
            raise ExprCompiler(self.sql, lambda n: None, self.names).error(
                node, f"unknown table {table!r}; the query reads {self.plan.source!r}"
            )
        return node.name

    def record(self) -> ExprCompiler:
        """Expressions over the current record ``r``."""

        def resolve(node: exp.Expr) -> Code | None:
            if isinstance(node, exp.Column):
                return Code(f"r[{self._column_name(node)!r}]")
            return None

        return ExprCompiler(self.sql, resolve, self.names)

    def key_expr(self) -> str:
        """The group key of record ``r``: one value, or a tuple of several (or none)."""
        keys = self.plan.group_keys
        rec = self.record()
        if len(keys) == 1:
            return rec.value(keys[0]).src
        return f"({', '.join(rec.value(k).src for k in keys)})"

    def key_line(self) -> str:
        """Bind ``k``, the group key of record ``r``."""
        return f"k = {self.key_expr()}"

    def unpack_key(self) -> str | None:
        """Bind the key parts ``k0..`` of a key of several parts (else ``None``)."""
        n = len(self.plan.group_keys)
        if n < 2:  # no key, or ``k`` is the one key part itself
            return None
        return f"{', '.join(f'k{i}' for i in range(n))}, = k"

    def row(self, prefix: str, *, fast: bool = False, pending: bool = False) -> RowCode:
        """The output row of a group whose slots are the locals ``{prefix}0..``.

        The key is ``k`` (parts ``k0..``), the window bounds ``ws`` and ``we``.
        ``fast``: the group just took a record with non-NULL arguments, so SUM, AVG, MIN
        and MAX are known not to be NULL.  ``pending``: a COUNT(DISTINCT) set has yet to
        take the record's value (``_d<slot>`` says whether it is new).
        """
        plan = self.plan
        keys = {k.sql(): i for i, k in enumerate(plan.group_keys)}
        aggs = {a.text: (a, s) for a, s in zip(plan.aggregates, self.layout.slots, strict=True)}
        aliases = {o.name: o.expr for o in plan.outputs}
        uses_window_end = False

        def window_bound(is_end: bool) -> Code:
            nonlocal uses_window_end
            uses_window_end = uses_window_end or is_end
            return Code("we" if is_end else "ws", nonnull=True)

        def resolve(node: exp.Expr) -> Code | None:
            text = node.sql() if not isinstance(node, exp.Literal) else None
            if text is not None and text in keys:
                return Code("k" if len(keys) == 1 else f"k{keys[text]}")
            if text is not None and text in aggs:
                agg, slots = aggs[text]
                return _aggregate_value(
                    agg, slots, self.layout.rows, prefix, fast=fast, pending=pending
                )
            if isinstance(node, WindowBound):
                return window_bound(not node.this.name.endswith("_START"))
            if isinstance(node, exp.Column):
                name = self._column_name(node)
                if plan.window is not None and not node.table and name == "window_start":
                    return window_bound(False)
                if plan.window is not None and not node.table and name == "window_end":
                    return window_bound(True)
                if not node.table and name in aliases and aliases[name] is not node:
                    target = aliases[name]
                    if not (isinstance(target, exp.Column) and target.name == name):
                        return comp.value(target)
                raise comp.error(
                    node,
                    f"column {name!r} must appear in GROUP BY or be used in an aggregate function",
                )
            return None

        comp = ExprCompiler(self.sql, resolve, self.names)
        items = [f"{o.name!r}: {comp.value(o.expr).src}" for o in plan.outputs]
        having = comp.cond(plan.having) if plan.having is not None else None
        return RowCode("{" + ", ".join(items) + "}", having, uses_window_end)


def _aggregate_value(
    agg: AggregateCall,
    slots: tuple[int, ...],
    rows: int,
    prefix: str,
    *,
    fast: bool,
    pending: bool,
) -> Code:
    """The value of ``agg`` from its slot locals (see :meth:`QueryScopes.row`).

    ``rows`` is the slot of the group's row count.  With ``fast`` the record just taken
    had non-NULL arguments, so the NULL counts were not updated: they are read from the
    group ``g`` itself.
    """
    s = [f"{prefix}{i}" for i in slots]
    count = f"{prefix}{rows}"
    if agg.func == "count_star":
        return Code(count, nonnull=True)
    if agg.func == "count":
        nulls = f"g[{slots[0]}]" if fast else s[0]
        return Code(f"({count} - {nulls})", nonnull=True)
    if agg.func == "count_distinct":
        if pending:
            return Code(f"(len({s[0]}) + _d{slots[0]})", nonnull=True)
        return Code(f"len({s[0]})", nonnull=True)
    if agg.func == "avg":
        if fast:
            return Code(f"({s[0]} / ({count} - g[{slots[1]}]))", nonnull=True)
        return Code(f"({s[0]} / ({count} - {s[1]}) if {count} != {s[1]} else None)")
    if agg.func == "sum":
        if fast:
            return Code(s[0], nonnull=True)
        return Code(f"({s[0]} if {count} != {s[1]} else None)")
    return Code(s[0], nonnull=fast)
