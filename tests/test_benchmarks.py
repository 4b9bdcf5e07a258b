"""The benchmarks' own correctness: every floor and peer computes what partita does.

A ratio against a floor that does less work, or a peer that drops rows, would be
a lie; these run each one on a small seeded input (in order, and disordered with
late records) and compare the rows with partita's, never any timing.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from benchmarks import __main__ as bench
from benchmarks._data import generate_trades
from benchmarks._peers import PEERS
from benchmarks._report import main as report
from benchmarks._workloads import WORKLOADS
from partita import actors

Record = dict[str, Any]


def _rows(rows: list[Record]) -> Counter[tuple[Any, ...]]:
    """A multiset of rows, floats rounded (sums in another order differ in the last bits)."""
    return Counter(
        tuple(sorted((k, round(v, 6) if isinstance(v, float) else v) for k, v in r.items()))
        for r in rows
    )


def _disordered(records: list[Record], seed: int) -> list[Record]:
    rng = random.Random(seed)
    out = list(records)
    for i in range(0, len(out) - 8, 5):
        j = i + rng.randrange(8)
        out[i], out[j] = out[j], out[i]
    for i in range(0, len(out), 331):
        out[i] = {**out[i], "ts": out[i]["ts"] - rng.randrange(500, 3000)}
    return out


async def _partita(name: str, records: list[Record]) -> list[Record]:
    result = await actors.run_sql(
        WORKLOADS[name].sql, actors.IterableSource("source", records), partitions=1
    )
    return result.rows


@pytest.mark.parametrize("name", sorted(WORKLOADS))
@pytest.mark.parametrize("disorder", [False, True])
async def test_each_floor_returns_partitas_rows(name: str, disorder: bool) -> None:
    records = generate_trades(30_000, seed=3)
    if disorder:
        records = _disordered(records, seed=5)
    expected = await _partita(name, records)
    assert len(expected) > 0
    assert _rows(WORKLOADS[name].floor(records)) == _rows(expected)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
async def test_duckdb_returns_partitas_rows_on_ordered_input(name: str) -> None:
    records = generate_trades(20_000, seed=4)
    expected = await _partita(name, records)
    rows = PEERS["duckdb"](name)(records)
    if name == "W4":
        # EMIT CHANGES: a row per record with its group's running aggregates.  A
        # parallel scan has no arrival order, so compare what does not depend on it:
        # each group's counts 1..n, and its final volume.
        def shape(rs: list[Record]) -> tuple[Counter[tuple[Any, int]], dict[Any, int]]:
            final: dict[Any, tuple[int, int]] = {}
            for r in rs:
                if r["trades"] > final.get(r["symbol"], (0, 0))[0]:
                    final[r["symbol"]] = (r["trades"], r["volume"])
            counts = Counter((r["symbol"], r["trades"]) for r in rs)
            return counts, {k: v[1] for k, v in final.items()}

        assert shape(rows) == shape(expected)
    else:
        assert _rows(rows) == _rows(expected)


def test_the_runner_and_report_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--records=3000", "--repeat=1", "--workloads=W1", "--partitions=1"]
    assert bench.main([*argv, "--peers", "--peer-systems=duckdb", "--batch-sizes=256"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(ln["system"], "sweep" in ln) for ln in lines] == [
        ("partita", False),
        ("duckdb", False),
        ("partita", True),
    ]
    assert lines[1]["rows_match"] is True
    assert lines[2]["batch_size"] == 256
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(ln) + "\n" for ln in lines))
    assert report([str(results)]) == 0
    table = capsys.readouterr().out
    assert "| W1 | 1 | 3,000 |" in table
    assert "| workload | floor rec/s | partita 1p | duckdb |" in table


def test_an_unknown_peer_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--peers", "--peer-systems=flink"])
    assert "unknown peer(s) flink" in capsys.readouterr().err


def test_the_batching_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import batching

    argv = ["--rate=50000", "--seconds=0.2", "--unlimited-records=20000", "--sizers=adaptive"]
    assert batching.main(argv) == 0
    limited, unlimited = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert limited["records"] == 10_000 and limited["rows"] == limited["records"] // 2
    assert 0 < limited["p50_ms"] <= limited["p99_ms"]
    assert unlimited["rows"] == 10_000 and "p99_ms" not in unlimited


@pytest.mark.parametrize("module", ["interval_join", "temporal_join"])
def test_the_join_benchmarks_agree_with_their_loops(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    bench_module = importlib.import_module(f"benchmarks.{module}")
    assert bench_module.main(["--records", "6000"]) == 0  # asserts rows == the loop's
    (line,) = capsys.readouterr().out.splitlines()
    result = json.loads(line)
    assert result["rows"] > 0 and result["ratio"] > 0
