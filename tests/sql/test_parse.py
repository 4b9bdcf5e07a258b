"""The partita dialect: EMIT, group windows, the velostream clause, error positions."""

from __future__ import annotations

import pytest
from sqlglot import exp

from partita import sql
from partita.sql._dialect import (
    Hop,
    Session,
    Tumble,
    WindowBound,
    WindowClause,
    node_position,
    parse,
)
from partita.sql._plan import WindowSpec, plan_query


def test_public_api_is_sorted_and_complete() -> None:
    assert sql.__all__ == sorted(sql.__all__)
    for name in sql.__all__:
        assert hasattr(sql, name)


@pytest.mark.parametrize(
    ("text", "emit"),
    [
        ("SELECT a FROM t", None),
        ("SELECT a FROM t EMIT CHANGES", "changes"),
        ("SELECT a FROM t EMIT FINAL", "final"),
        ("SELECT a FROM t WHERE a > 1 EMIT changes", "changes"),
        ("SELECT k, COUNT(*) FROM t GROUP BY k HAVING COUNT(*) > 1 EMIT FINAL", "final"),
    ],
)
def test_emit_clause(text: str, emit: str | None) -> None:
    (select,) = parse(text)
    assert select.meta.get("emit") == emit
    assert select.args["from_"].this.name == "t"  # EMIT is never taken as a table alias


def test_group_windows_are_typed_nodes() -> None:
    (select,) = parse("SELECT k FROM t GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)")
    assert isinstance(select.args["group"].expressions[1], Tumble)
    (select,) = parse("SELECT k FROM t GROUP BY HOP(ts, INTERVAL '1' SECOND, INTERVAL '5' SECOND)")
    assert isinstance(select.args["group"].expressions[0], Hop)
    (select,) = parse("SELECT k FROM t GROUP BY k, SESSION(ts, INTERVAL '30' SECOND)")
    assert isinstance(select.args["group"].expressions[1], Session)


def test_window_bound_functions() -> None:
    (select,) = parse("SELECT TUMBLE_START(ts, INTERVAL '1' SECOND), HOP_END(ts, 1, 2) FROM t")
    first, second = select.expressions
    assert isinstance(first, WindowBound) and first.this.name == "TUMBLE_START"
    assert isinstance(second, WindowBound) and second.this.name == "HOP_END"


@pytest.mark.parametrize(
    ("clause", "spec"),
    [
        ("WINDOW TUMBLING(INTERVAL '5' MINUTE)", WindowSpec("tumble", "ts", 300_000, 300_000)),
        ("WINDOW TUMBLING(INTERVAL '5' MINUTE, at)", WindowSpec("tumble", "at", 300_000, 300_000)),
        (
            "WINDOW SLIDING(INTERVAL '10' SECOND, INTERVAL '5' SECOND)",
            WindowSpec("hop", "ts", 10_000, 5_000),
        ),
        ("WINDOW SESSION(INTERVAL '1' HOUR)", WindowSpec("session", "ts", 3_600_000, 0)),
    ],
)
def test_velostream_window_clause(clause: str, spec: WindowSpec) -> None:
    text = f"SELECT k, COUNT(*) AS n FROM t GROUP BY k {clause}"
    (select,) = parse(text)
    assert isinstance(select.meta["window_clause"], WindowClause)
    assert plan_query(text, event_time="ts").window == spec


def test_velostream_clause_before_group_by_and_with_emit() -> None:
    text = (
        "SELECT k, COUNT(*) AS n FROM t WINDOW TUMBLING(INTERVAL '1' SECOND, ts) "
        "GROUP BY k EMIT CHANGES"
    )
    plan = plan_query(text)
    assert plan.window == WindowSpec("tumble", "ts", 1000, 1000)
    assert plan.emit == "changes"


def test_flink_and_velostream_windows_plan_alike() -> None:
    flink = plan_query("SELECT k, COUNT(*) AS n FROM t GROUP BY k, TUMBLE(ts, INTERVAL '5' MINUTE)")
    velo = plan_query(
        "SELECT k, COUNT(*) AS n FROM t GROUP BY k WINDOW TUMBLING(INTERVAL '5' MINUTE, ts)"
    )
    assert flink.window == velo.window


@pytest.mark.parametrize(
    ("interval", "ms"),
    [
        ("INTERVAL '1' SECOND", 1000),
        ("INTERVAL '250' MILLISECOND", 250),
        ("INTERVAL '2' MINUTE", 120_000),
        ("INTERVAL '1' HOUR", 3_600_000),
        ("INTERVAL '1' DAY", 86_400_000),
        ("INTERVAL '1 second'", 1000),
        ("INTERVAL 3 SECONDS", 3000),
        ("1500", 1500),
    ],
)
def test_interval_sizes(interval: str, ms: int) -> None:
    plan = plan_query(f"SELECT COUNT(*) AS n FROM t GROUP BY TUMBLE(ts, {interval})")
    assert plan.window is not None and plan.window.size_ms == ms


def test_node_positions_point_at_the_construct() -> None:
    text = "SELECT a\nFROM t\nORDER BY a"
    (select,) = parse(text)
    assert node_position(select.args["order"], text) == (3, 1)
    assert node_position(select.expressions[0], text) == (1, 8)


def test_syntax_error_names_line_and_column() -> None:
    with pytest.raises(sql.SqlError) as info:
        parse("SELECT a\nFROM WHERE x")
    assert info.value.line == 2
    assert info.value.col == 6
    assert str(info.value).startswith("line 2, column 6: syntax error")


def test_emit_needs_a_mode() -> None:
    with pytest.raises(sql.SqlError, match="expected CHANGES or FINAL after EMIT"):
        parse("SELECT a FROM t EMIT")


def test_plan_is_printable() -> None:
    plan = plan_query(
        "SELECT k, SUM(x) AS s FROM t WHERE x > 0 GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND) "
        "HAVING SUM(x) > 10 EMIT CHANGES"
    )
    text = str(plan)
    for part in (
        "Emit(CHANGES)",
        "Having(SUM(x) > 10)",
        "TUMBLE(ts, 1000 ms)",
        "Filter(x > 0)",
        "Scan(t)",
    ):
        assert part in text


def test_group_by_alias_and_position() -> None:
    by_alias = plan_query("SELECT UPPER(k) AS u, COUNT(*) AS n FROM t GROUP BY u")
    by_pos = plan_query("SELECT UPPER(k) AS u, COUNT(*) AS n FROM t GROUP BY 1")
    assert [k.sql() for k in by_alias.group_keys] == ["UPPER(k)"]
    assert [k.sql() for k in by_pos.group_keys] == ["UPPER(k)"]
    assert isinstance(by_alias.group_keys[0], exp.Upper)
