"""The example programs in docs/examples run, under a MockClock so they take no real time."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import trio
import trio.testing

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def test_three_actors(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = runpy.run_path(str(EXAMPLES / "three_actors.py"), run_name="example")
    trio.run(namespace["main"], clock=trio.testing.MockClock(autojump_threshold=0))
    out = capsys.readouterr().out
    assert "paused:  PAUSED" in out
    assert "done:    COMPLETED, sink got 50000 records" in out


def test_checkpoints(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = runpy.run_path(str(EXAMPLES / "checkpoints.py"), run_name="example")
    trio.run(namespace["main"], clock=trio.testing.MockClock(autojump_threshold=0))
    out = capsys.readouterr().out
    assert "first run: the process died here" in out
    assert "second run resumed from checkpoint True" in out
    assert "rows: 140 distinct: 140" in out  # 20 one-second windows of 7 keys, once each


def test_flow_checkpoints(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = runpy.run_path(str(EXAMPLES / "flow_checkpoints.py"), run_name="example")
    trio.run(namespace["main"], clock=trio.testing.MockClock(autojump_threshold=0))
    out = capsys.readouterr().out
    assert "first run: the process died here" in out
    assert "second run resumed from checkpoint True" in out
    # every record once: one row each, and key-0's last row counts its 4,000 records
    assert "rows: 20000 distinct: 20000" in out
    assert f"key-0 last: {{'k': 'key-0', 'n': 4000, 'sum': {sum(range(0, 20000, 5))}}}" in out
