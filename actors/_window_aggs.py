"""What a Flow window computes per key and window: folds, as the shared window state
takes them (:class:`sql.Aggregation`'s ``step`` / ``merge`` / ``row``).

Every form is a :class:`WindowFold`: ``step(acc, record)`` (``acc`` is ``None`` for
the first record of a key's window), ``merge(a, b)`` (sessions that come to touch),
and ``fields(acc)``, the output row's value fields.  A user's accumulator is kept
wrapped in a one-item list, so any value, ``None`` too, is an accumulator.  The
``aggregate`` form has SQL's NULL rules: ``None`` inputs are ignored by ``sum``,
``min``, ``max``, ``mean`` and ``count`` of a field; a window of only ``None`` gives
``None`` (``count`` gives 0).

Example:
    >>> agg = aggregate_fold({"n": "count", "total": ("sum", "x"), "avg": ("mean", "x")})
    >>> acc = None
    >>> for r in [{"x": 1}, {"x": None}, {"x": 4}]:
    ...     acc = agg.step(acc, r)
    >>> agg.fields(acc)
    {'n': 3, 'total': 5, 'avg': 2.5}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import attrs

from partita.runtime import Record
from partita.sql import Aggregation

from ._operators import qualname, short_name

__all__ = [
    "AGGREGATES",
    "AggregateSpec",
    "WindowFold",
    "aggregate_fold",
    "collect_fold",
    "count_fold",
    "reduce_fold",
    "user_fold",
]

AGGREGATES = ("count", "sum", "min", "max", "mean")
"""The aggregate functions of :meth:`WindowedStream.aggregate`."""

AggregateSpec: TypeAlias = str | tuple[str, str | Callable[[Record], Any]]
"""``"count"`` (every record), or ``(function, field)`` with a field name or a
function of the record: ``("sum", "amount")``, ``("max", lambda r: r["a"] * r["b"])``."""


@attrs.frozen
class WindowFold:
    """An accumulator per key and window: how records step it, how two merge, and
    the value fields of its output row.

    Attributes:
        label: the fold in errors: ``fold(add)``, ``count()``.
        describe: the fold and the user's functions (``module.qualname``), for the
            flow's fingerprint.
        step: ``step(acc, record)``, ``acc`` ``None`` for a window's first record.
        merge: ``merge(a, b)``, or ``None`` (then no session windows).
        fields: the output row's value fields from an accumulator.
    """

    label: str
    describe: str
    step: Callable[[Any, Record], Any]
    merge: Callable[[Any, Any], Any] | None
    fields: Callable[[Any], dict[str, Any]]

    def aggregation(self, key_field: str) -> Aggregation:
        """The :class:`sql.Aggregation` of this fold; its rows are ``{key_field,
        "window_start", "window_end", **fields}``."""
        fields = self.fields

        def row(key: Any, acc: Any, ws: int | None, we: int | None) -> Record:
            return {key_field: key, "window_start": ws, "window_end": we, **fields(acc)}

        def never() -> Any:  # pragma: no cover - only SQL's keyless global group calls it
            raise AssertionError("a Flow window has no global group")

        merge = self.merge if self.merge is not None else _no_merge
        return Aggregation(never, self.step, merge, row)


def _no_merge(a: Any, b: Any) -> Any:  # pragma: no cover - refused when the flow is built
    raise AssertionError("this fold has no merge (refused for session windows)")


def user_fold(
    init: Callable[[], Any],
    step: Callable[[Any, Record], Any],
    merge: Callable[[Any, Any], Any] | None,
) -> WindowFold:
    """``acc = step(acc, record)`` from ``init()``; the row's ``value`` is ``acc``."""

    def wrapped_step(acc: list[Any] | None, record: Record) -> list[Any]:
        return [step(init() if acc is None else acc[0], record)]

    wrapped_merge = None
    if merge is not None:
        join = merge

        def wrapped_merge(a: list[Any], b: list[Any]) -> list[Any]:
            return [join(a[0], b[0])]

    what = f"fold init={qualname(init)} step={qualname(step)}"
    if merge is not None:
        what += f" merge={qualname(merge)}"
    return WindowFold(f"fold({short_name(step)})", what, wrapped_step, wrapped_merge, _value)


def _value(acc: list[Any]) -> dict[str, Any]:
    return {"value": acc[0]}


def reduce_fold(fn: Callable[[Any, Any], Any]) -> WindowFold:
    """The first record, then ``acc = fn(acc, record)``; sessions merge with ``fn`` too."""

    def step(acc: list[Any] | None, record: Record) -> list[Any]:
        return [record] if acc is None else [fn(acc[0], record)]

    def merge(a: list[Any], b: list[Any]) -> list[Any]:
        return [fn(a[0], b[0])]

    return WindowFold(f"reduce({short_name(fn)})", f"reduce {qualname(fn)}", step, merge, _value)


def collect_fold() -> WindowFold:
    """The window's records in arrival order (a session's merged spans one after the
    other); the row's ``value`` is a new list each time."""

    def step(acc: list[Any] | None, record: Record) -> list[Any]:
        if acc is None:
            return [record]
        acc.append(record)
        return acc

    def merge(a: list[Any], b: list[Any]) -> list[Any]:
        return a + b

    return WindowFold("collect()", "collect", step, merge, lambda acc: {"value": list(acc)})


def count_fold() -> WindowFold:
    """How many records; the row's field is ``count``."""

    def step(acc: int | None, record: Record) -> int:
        return 1 if acc is None else acc + 1

    return WindowFold("count()", "count", step, _add, lambda acc: {"count": acc})


def _add(a: Any, b: Any) -> Any:
    return a + b


def _getter(what: str | Callable[[Record], Any]) -> Callable[[Record], Any]:
    if isinstance(what, str):
        field = what
        return lambda record: record[field]
    if callable(what):
        return what
    raise TypeError(f"an aggregate's input must be a field name or a function, got {what!r}")


def _parse(name: str, spec: AggregateSpec) -> tuple[str, Callable[[Record], Any] | None, str]:
    """``(function, input getter or None for every record, describe)``."""
    if isinstance(spec, str):
        if spec != "count":
            raise ValueError(
                f"aggregate {name}={spec!r}: only 'count' stands alone; give the others "
                f"with their input, like ({spec!r}, 'field')"
            )
        return "count", None, "count"
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise TypeError(
            f"aggregate {name}={spec!r}: expected 'count' or (function, field), "
            "like ('sum', 'amount')"
        )
    func, what = spec
    if func not in AGGREGATES:
        raise ValueError(
            f"aggregate {name}={spec!r}: unknown function {func!r} (one of {', '.join(AGGREGATES)})"
        )
    shown = repr(what) if isinstance(what, str) else qualname(what)
    return func, _getter(what), f"{func}({shown})"


def _compile_step(
    plan: list[tuple[str, Callable[[Record], Any] | None, int]],
    inputs: list[str | Callable[[Record], Any] | None],
    fresh: tuple[Any, ...],
) -> Callable[[Any, Record], Any]:
    """The aggregate's ``step(acc, record)``, generated once as one straight-line
    function (as SQL's compiler does: about three times faster than a loop over the
    columns).  Field names enter as ``repr()`` literals, input functions and the
    fresh accumulator as globals; every new slot is computed into a local first and
    a new list is returned, so a record whose input raises changes nothing."""
    env: dict[str, Any] = {"_FRESH": fresh}
    lines = ["def step(acc, r):", "    o = _FRESH if acc is None else acc"]
    out: list[str] = []
    for i, ((func, _, slot), what) in enumerate(zip(plan, inputs, strict=True)):
        o, n = f"o[{slot}]", f"n{slot}"
        if what is None:  # count of every record
            lines.append(f"    {n} = {o} + 1")
            out.append(n)
            continue
        if isinstance(what, str):
            lines.append(f"    a{i} = r[{what!r}]")
        else:
            env[f"_input{i}"] = what
            lines.append(f"    a{i} = _input{i}(r)")
        a = f"a{i}"
        if func == "count":
            lines.append(f"    {n} = {o} if {a} is None else {o} + 1")
        elif func == "sum":
            lines.append(f"    {n} = {o} if {a} is None else {a} if {o} is None else {o} + {a}")
        elif func == "mean":
            o2, n2 = f"o[{slot + 1}]", f"n{slot + 1}"
            lines.append(f"    {n} = {o} if {a} is None else {o} + {a}")
            lines.append(f"    {n2} = {o2} if {a} is None else {o2} + 1")
            out.append(n)
            n = n2
        else:
            op = "<" if func == "min" else ">"
            lines.append(
                f"    {n} = {o} if {a} is None or ({o} is not None and not {a} {op} {o}) else {a}"
            )
        out.append(n)
    lines.append(f"    return [{', '.join(out)}]")
    source = "\n".join(lines) + "\n"
    exec(compile(source, "<partita window aggregate>", "exec"), env)
    step: Callable[[Any, Record], Any] = env["step"]
    return step


def aggregate_fold(columns: Mapping[str, AggregateSpec]) -> WindowFold:
    """Named SQL-like aggregates over the window's records (see the module docstring).

    Raises:
        ValueError: no columns, or an unknown function.
        TypeError: a column is neither ``"count"`` nor ``(function, field)``.
    """
    if not columns:
        raise ValueError("aggregate needs at least one column, like n='count'")
    parsed = [(name, *_parse(name, spec)) for name, spec in columns.items()]
    # one slot per column; a mean has two (sum and count) — its count is slot + 1
    slots: list[int] = []
    width = 0
    for _, func, _, _ in parsed:
        slots.append(width)
        width += 2 if func == "mean" else 1
    plan = [(func, get, slot) for (_, func, get, _), slot in zip(parsed, slots, strict=True)]
    fresh: list[Any] = []
    for func, _, _ in plan:
        fresh += [0, 0] if func == "mean" else [0] if func == "count" else [None]

    inputs = [None if isinstance(spec, str) else spec[1] for spec in columns.values()]
    step = _compile_step(plan, inputs, tuple(fresh))

    def merge(a: list[Any], b: list[Any]) -> list[Any]:
        out = list(a)
        for func, _, slot in plan:
            x, y = a[slot], b[slot]
            if func in ("count", "mean"):
                out[slot] = x + y
                if func == "mean":
                    out[slot + 1] = a[slot + 1] + b[slot + 1]
            elif x is None or y is None:
                out[slot] = x if y is None else y
            elif func == "sum":
                out[slot] = x + y
            else:
                out[slot] = min(x, y) if func == "min" else max(x, y)
        return out

    names = [(name, func, slot) for (name, func, _, _), slot in zip(parsed, slots, strict=True)]

    def fields(acc: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, func, slot in names:
            if func == "mean":
                n = acc[slot + 1]
                out[name] = acc[slot] / n if n else None
            else:
                out[name] = acc[slot]
        return out

    what = " ".join(f"{name}={d}" for name, _, _, d in parsed)
    label = f"aggregate({', '.join(columns)})"
    return WindowFold(label, f"aggregate {what}", step, merge, fields)
