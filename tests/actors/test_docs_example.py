"""docs/examples/sql_in_trio.py runs, under a MockClock so it takes no real time."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
import trio
import trio.testing

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sql_in_trio.py"


def test_sql_in_trio_example(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = runpy.run_path(str(EXAMPLE), run_name="example")
    trio.run(namespace["main"], clock=trio.testing.MockClock(autojump_threshold=0))
    out = capsys.readouterr().out
    assert "run_sql: 20000 trades -> " in out
    assert "paused at 500 rows: PAUSED, source read 0 records while paused" in out
    assert "left early: graph CANCELLED" in out
    assert "offset 1 (sql-partition): TypeError" in out
    assert "flow: 10000 trades" in out


def test_api_guide_program(capsys: pytest.CaptureFixture[str]) -> None:
    text = (EXAMPLE.parents[1] / "api.md").read_text(encoding="utf-8")
    program = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    assert program.rstrip().endswith("trio.run(main)")
    namespace: dict[str, object] = {"__name__": "api_example"}
    exec(compile(program.replace("trio.run(main)", ""), "docs/api.md", "exec"), namespace)
    main = namespace["main"]
    assert callable(main)
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    out = capsys.readouterr().out
    assert "window rows" in out
    assert "CANCELLED" in out
    assert "VWAP updates; COMPLETED" in out
