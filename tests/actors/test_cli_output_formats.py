"""``partita run --output``: CSV, Parquet or JSON lines by ``--output-format`` or the extension."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.actors.test_cli import partita, rows_of, trades  # noqa: F401  (a fixture)

QUERY = "SELECT symbol, SUM(qty) AS qty, COUNT(*) AS n FROM t GROUP BY symbol"
EXPECTED = [{"symbol": "A", "qty": 245, "n": 4}, {"symbol": "B", "qty": 80, "n": 2}]


@pytest.mark.slow
def test_the_extension_picks_the_format(trades: Path, tmp_path: Path) -> None:  # noqa: F811
    for name in ("out.csv", "out.parquet", "out.pq", "out.json"):
        out = tmp_path / name
        done = partita("run", "--sql", QUERY, "--input", str(trades), "--output", str(out))
        assert (done.returncode, done.stderr) == (0, "")
        if name.endswith(".csv"):
            with out.open(newline="") as f:
                got = [{**r, "qty": int(r["qty"]), "n": int(r["n"])} for r in csv.DictReader(f)]
            assert out.read_bytes().startswith(b"symbol,qty,n\r\n")
        elif name.endswith(("parquet", ".pq")):
            got = pq.read_table(out).to_pylist()
        else:
            got = rows_of(out.read_text())
        assert sorted(got, key=lambda r: r["symbol"]) == EXPECTED, name


@pytest.mark.slow
def test_output_format_overrides_the_extension(trades: Path, tmp_path: Path) -> None:  # noqa: F811
    done = partita("run", "--sql", QUERY, "--input", str(trades), "--output-format", "csv")
    assert done.returncode == 0
    assert sorted(done.stdout.splitlines()) == ["A,245,4", "B,80,2", "symbol,qty,n"]
    out = tmp_path / "rows.txt"
    args = ("run", "--sql", QUERY, "--input", str(trades), "--output", str(out))
    done = partita(*args, "--output-format", "parquet")
    assert done.returncode == 0
    assert sorted(pq.read_table(out).to_pylist(), key=lambda r: r["symbol"]) == EXPECTED


@pytest.mark.slow
def test_formats_that_cannot_be_are_one_line_exit_2(trades: Path, tmp_path: Path) -> None:  # noqa: F811
    base = ("run", "--sql", QUERY, "--input", str(trades))
    cases = [
        (
            ("--output-format", "parquet"),
            "partita: --output-format parquet needs an --output file, not '-'\n",
        ),
        (
            ("--output", str(tmp_path / "o.parquet"), "--checkpoint", str(tmp_path / "ck")),
            "partita: --checkpoint cannot resume a Parquet output (the file is complete only "
            "at the end): write CSV or JSON lines, or run without --checkpoint\n",
        ),
        (
            ("--output", "postgres://u@localhost:1/db?table=t", "--output-format", "csv"),
            "partita: --output-format csv is for an --output file, not a server\n",
        ),
    ]
    for extra, message in cases:
        done = partita(*base, *extra)
        assert (done.returncode, done.stderr, done.stdout) == (2, message, ""), extra
    assert not (tmp_path / "o.parquet").exists()
