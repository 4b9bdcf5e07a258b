"""Code generation: readable, inspectable, safe, compiled once."""

from __future__ import annotations

import linecache
import traceback

import pytest

from partita.runtime import BadRecord
from partita.sql import compile_query, explain, run_query


def test_explain_shows_plan_and_code() -> None:
    text = explain(
        "SELECT k, COUNT(*) AS n FROM t WHERE x > 1 GROUP BY k, TUMBLE(ts, 1000) EMIT CHANGES"
    )
    assert "-- logical plan" in text and "Filter(x > 1)" in text
    assert "-- generated code (<partita-sql:program#" in text
    assert (
        "def process(records, offsets, wms, groups, windows, on_bad, on_session, on_late):" in text
    )
    assert "def route(records, offsets, nparts, pcache, max_ts, lateness, on_bad):" in text
    assert "r['x']" in text and "append(rw)" in text
    assert compile_query("SELECT a FROM t").explain().startswith("-- query\nSELECT a FROM t")


def test_generated_code_is_in_linecache_for_tracebacks() -> None:
    q = compile_query("SELECT a + 1 AS b FROM t", on_error="fail")
    lines = linecache.getlines(q.code.filename)
    assert "".join(lines) == q.code.source
    with pytest.raises(BadRecord) as info:
        run_query(q, [{"a": "x"}])
    cause = info.value.__cause__
    assert cause is not None
    frames = traceback.extract_tb(cause.__traceback__)
    assert any(f.filename == q.code.filename and "r['a']" in (f.line or "") for f in frames)


@pytest.mark.parametrize(
    "name",
    ["x'); import os; os._exit(1); ('", 'a"b', "a\\nb", "__import__('os')", "r", "k"],
)
def test_identifiers_and_literals_go_through_repr(name: str) -> None:
    quoted = '"' + name.replace('"', '""') + '"'
    literal = "'" + name.replace("'", "''") + "'"
    q = compile_query(
        f"SELECT {quoted} AS {quoted}, {literal} AS lit FROM t WHERE {quoted} = {literal}"
    )
    if len(name) > 3:
        assert name not in q.code.source.replace(repr(name), "")
    rows = run_query(q, [{name: name}, {name: "other"}]).rows
    assert rows == [{name: name, "lit": name}]


def test_like_pattern_is_compiled_once_and_enters_through_the_namespace() -> None:
    q = compile_query("SELECT s FROM t WHERE s LIKE 'a%' OR s LIKE 'a%' OR s ILIKE 'b_'")
    assert "#   _like0 = _like_regex('a%', None, False)" in q.code.source
    assert "#   _like1 = _like_regex('b_', None, True)" in q.code.source
    assert q.code.source.index("_like0 =") < q.code.source.index("def process")
    assert "_like0 = " not in q.code.source.replace("#   _like0 = ", "")  # not assigned
    assert q.code.constants["_like0"].fullmatch("abc")
    assert run_query(q, [{"s": "abc"}, {"s": "BX"}, {"s": "c"}]).rows == [
        {"s": "abc"},
        {"s": "BX"},
    ]


def test_programs_share_the_compiled_code() -> None:
    q = compile_query("SELECT k, COUNT(*) AS n FROM t GROUP BY k")
    first, second = q.new_program(), q.new_program()
    assert first._functions["process"] is second._functions["process"]
    assert first._functions["process"].__code__.co_filename == q.code.filename


def test_compiled_query_attributes() -> None:
    q = compile_query("SELECT *, a AS b FROM t")
    assert q.columns == ("*", "b") and not q.keyed and not q.windowed and q.emit == "final"
    w = compile_query("SELECT k, COUNT(*) AS n FROM t GROUP BY k, TUMBLE(ts, 10) EMIT CHANGES")
    assert w.columns == ("k", "n") and w.keyed and w.windowed and w.emit == "changes"


def test_filter_project_loop_has_no_helper_calls_per_record() -> None:
    q = compile_query("SELECT symbol, price * qty AS notional FROM t WHERE qty > 50")
    body = q.code.source.split("def process")[1]
    assert "(_t1 := r['qty']) is not None and _t1 > 50" in body
    assert "_t2 * _t3" in body
    assert "append({'symbol': r['symbol'], 'notional':" in body


def test_docstring_examples() -> None:
    import doctest

    from partita import sql

    for module in (sql, sql._driver, sql._errors, sql._query):
        failures, _ = doctest.testmod(module, raise_on_error=False, verbose=False)
        assert failures == 0, module.__name__
