"""benchmarks/flow_windows.py runs end to end on a few records (its numbers are not
checked: performance targets live in the benchmark's output, not in unit tests)."""

from __future__ import annotations

import json

import pytest

from benchmarks import flow_windows


def test_the_flow_window_benchmark_prints_one_line_with_the_same_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert flow_windows.main(["--records", "3000", "--repeat", "1", "--partitions", "2"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    result = json.loads(line)
    assert result["benchmark"] == "flow_windows_w3"
    assert result["same_rows"] is True
    for name in ("sql_rec_per_s", "flow_rec_per_s", "floor_rec_per_s"):
        assert result[name] > 0
