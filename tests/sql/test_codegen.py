"""The generated source is code a reader can follow (issue 7 item 3).

Its functions take their state as parameters and return named results: no generated
line reaches into a private attribute of the program or the routing stage, and every
constant enters through the module's namespace, never as text.
"""

from __future__ import annotations

import ast
from typing import Any

import pytest

from partita.sql import compile_query, run_query

_KEYED = "SELECT k, COUNT(*) AS n, SUM(x) AS s FROM t"
_WINDOW_COLUMNS = "SELECT k, COUNT(*) AS n, AVG(x) AS a, window_start, window_end FROM t"

QUERIES: dict[str, tuple[str, dict[str, Any]]] = {
    "filter-project": ("SELECT k, x * 2 AS y FROM t WHERE x > 1 AND k LIKE 'a%'", {}),
    "star": ("SELECT *, x + 1 AS y FROM t", {}),
    "global-aggregate": ("SELECT COUNT(*) AS n, MIN(x) AS lo, MAX(x) AS hi FROM t", {}),
    "group-by": (f"{_KEYED} WHERE x > 0 GROUP BY k", {}),
    "group-by-two-keys": ("SELECT k, j, COUNT(*) AS n FROM t GROUP BY k, j", {}),
    "having": (f"{_KEYED} GROUP BY k HAVING COUNT(*) > 1", {}),
    "tumble": (f"{_WINDOW_COLUMNS} GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)", {}),
    "tumble-where": (
        f"{_WINDOW_COLUMNS} WHERE x > 0 GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)",
        {},
    ),
    "global-tumble": ("SELECT COUNT(*) AS n FROM t GROUP BY TUMBLE(ts, INTERVAL '1' SECOND)", {}),
    "hop": (
        f"{_WINDOW_COLUMNS} GROUP BY k, HOP(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)",
        {},
    ),
    "cumulate": (
        f"{_WINDOW_COLUMNS} GROUP BY k, CUMULATE(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)",
        {},
    ),
    "session": (f"{_WINDOW_COLUMNS} GROUP BY k, SESSION(ts, INTERVAL '1' SECOND)", {}),
    "emit-changes": (
        f"{_WINDOW_COLUMNS} GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND) "
        "HAVING COUNT(*) > 0 EMIT CHANGES",
        {},
    ),
    "group-by-emit-changes": (f"{_KEYED} GROUP BY k EMIT CHANGES", {}),
    "late-update-tumble": (
        f"{_WINDOW_COLUMNS} GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)",
        {"late": "update"},
    ),
    "late-update-hop": (
        f"{_WINDOW_COLUMNS} GROUP BY k, HOP(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)",
        {"late": "update"},
    ),
    "late-update-cumulate": (
        f"{_WINDOW_COLUMNS} GROUP BY k, CUMULATE(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)",
        {"late": "update"},
    ),
    "late-update-session": (
        f"{_WINDOW_COLUMNS} GROUP BY k, SESSION(ts, INTERVAL '1' SECOND)",
        {"late": "update"},
    ),
    "count-distinct": (
        "SELECT k, COUNT(DISTINCT x) AS d FROM t GROUP BY k, TUMBLE(ts, 1000) EMIT CHANGES",
        {},
    ),
}

RECORDS = [
    {"k": k, "j": i % 2, "x": i % 5, "ts": ts}
    for i, (k, ts) in enumerate(
        [("a", 0), ("b", 10), ("a", 1500), ("c", 700), ("a", 3000), ("b", 200), ("a", 3100)]
    )
]


def _private_attributes(source: str) -> list[str]:
    """Every ``x._name`` (not a dunder) the source reads or writes, with its line."""
    return [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not (node.attr.startswith("__") and node.attr.endswith("__"))
    ]


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_generated_code_reads_no_private_attribute(name: str) -> None:
    sql, options = QUERIES[name]
    q = compile_query(sql, **options)
    assert _private_attributes(q.code.source) == []


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_the_queries_run_routed_across_several_partitions(name: str) -> None:
    """The representative queries run (and route) alike on one and three partitions."""
    sql, options = QUERIES[name]
    q = compile_query(sql, **options)

    def canon(rows: list[dict[str, Any]]) -> list[str]:
        return sorted(repr(sorted(r.items())) for r in rows)

    one = run_query(q, RECORDS, partitions=1, batch_size=3)
    three = run_query(q, RECORDS, partitions=3, batch_size=2)
    assert canon(one.rows) == canon(three.rows)
    assert one.rows  # every query above emits something for these records


def test_the_checker_catches_a_private_read() -> None:
    assert _private_attributes("def f(prog):\n    return prog._groups\n") == [
        "line 2: prog._groups"
    ]
    assert _private_attributes("x = r.__class__\ny = s.upper()\n") == []


def test_an_infinite_literal_enters_through_the_namespace() -> None:
    q = compile_query("SELECT x FROM t WHERE x < 1e999 AND x > -1e999")
    names = {n.id for n in ast.walk(ast.parse(q.code.source)) if isinstance(n, ast.Name)}
    assert "inf" not in names
    assert run_query(q, [{"x": 1}, {"x": None}]).rows == [{"x": 1}]


def test_the_variant_is_named_flags_decided_once() -> None:
    hop = compile_query(
        "SELECT k, COUNT(*) AS n FROM t GROUP BY k, HOP(ts, 1000, 2000) HAVING COUNT(*) > 1",
        late="update",
    ).code.shape
    assert (hop.aggregated, hop.keyed, hop.windowed, hop.aligned, hop.hop) == (True,) * 5
    assert (hop.session, hop.emit_changes, hop.has_where, hop.star) == (False,) * 4
    assert hop.late_update and hop.has_having and hop.per_record_watermark
    assert not hop.router_drops_late and not hop.in_order_fast_path
    tumble = compile_query("SELECT COUNT(*) AS n FROM t GROUP BY TUMBLE(ts, 10)").code.shape
    assert tumble.router_drops_late and tumble.in_order_fast_path
    assert not tumble.keyed and not tumble.per_record_watermark
    plain = compile_query("SELECT * FROM t WHERE x > 1").code.shape
    assert plain.star and plain.has_where and not plain.aggregated and not plain.windowed


@pytest.mark.parametrize(("column", "binds_we"), [("window_start", False), ("window_end", True)])
def test_the_window_end_is_bound_only_when_a_row_reads_it(column: str, binds_we: bool) -> None:
    """Known from the compiled expressions, not by searching the generated text."""
    q = compile_query(
        f"SELECT k AS lower_we, {column} FROM t GROUP BY k, TUMBLE(ts, 1000) EMIT CHANGES"
    )
    assert ("we = ws + 1000" in q.code.source) is binds_we
    rows = run_query(q, [{"k": "a", "ts": 5}]).rows
    assert rows == [{"lower_we": "a", column: 1000 if binds_we else 0}]


def test_a_node_type_without_a_handler_of_its_own_takes_its_base_classes() -> None:
    from sqlglot import exp

    from partita.sql._expr import ExprCompiler

    assert exp.TryCast not in ExprCompiler.TRANSFORMS
    assert issubclass(exp.TryCast, exp.Cast) and exp.Cast in ExprCompiler.TRANSFORMS
    q = compile_query("SELECT TRY_CAST(x AS INTEGER) AS y FROM t")
    assert run_query(q, [{"x": "7"}]).rows == [{"y": 7}]
