"""The ``partita`` command, run as a subprocess on JSON-lines files in ``tmp_path``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from partita._cli import parse_duration_ms, parse_size

ROOT = Path(__file__).resolve().parents[2]

TRADES: list[dict[str, Any]] = [
    {"symbol": "A", "price": 10.0, "qty": 100, "ts": 1_000},
    {"symbol": "B", "price": 20.0, "qty": 10, "ts": 1_400},
    {"symbol": "A", "price": 11.0, "qty": 60, "ts": 1_900},
    {"symbol": "B", "price": 21.0, "qty": 70, "ts": 2_100},
    {"symbol": "A", "price": 12.0, "qty": 5, "ts": 2_500},
    {"symbol": "A", "price": 13.0, "qty": 80, "ts": 3_200},
]


def partita(
    *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m actors._cli ARGS``; stderr is not a terminal, so no progress."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "partita", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def rows_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def trades(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "trades.jsonl", TRADES)


# ------------------------------------------------------------------ results
def test_projection_rows(trades: Path) -> None:
    done = partita(
        "run",
        "--sql",
        "SELECT symbol, price * qty AS notional FROM trades WHERE qty > 50",
        "--input",
        str(trades),
    )
    assert done.returncode == 0, done.stderr
    assert rows_of(done.stdout) == [
        {"symbol": "A", "notional": 1000.0},
        {"symbol": "A", "notional": 660.0},
        {"symbol": "B", "notional": 1470.0},
        {"symbol": "A", "notional": 1040.0},
    ]
    assert done.stderr == ""


def test_group_by_rows_with_four_partitions_to_a_file(trades: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    done = partita(
        "run",
        "--sql",
        "SELECT symbol, COUNT(*) AS n, SUM(qty) AS volume, AVG(price) AS avg_price "
        "FROM trades GROUP BY symbol",
        "--input",
        str(trades),
        "--output",
        str(out),
        "--partitions",
        "4",
        "--batch-size",
        "2",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    rows = sorted(rows_of(out.read_text(encoding="utf-8")), key=lambda r: r["symbol"])
    assert rows == [
        {"symbol": "A", "n": 4, "volume": 245, "avg_price": 11.5},
        {"symbol": "B", "n": 2, "volume": 80, "avg_price": 20.5},
    ]


def test_tumbling_window_rows(trades: Path) -> None:
    done = partita(
        "run",
        "--sql",
        "SELECT symbol, window_start, window_end, COUNT(*) AS n, SUM(qty) AS volume "
        "FROM trades GROUP BY symbol, TUMBLE(ts, INTERVAL '1' SECOND)",
        "--input",
        str(trades),
        "--partitions",
        "2",
    )
    assert done.returncode == 0, done.stderr
    rows = sorted(rows_of(done.stdout), key=lambda r: (r["window_start"], r["symbol"]))
    assert rows == [
        {"symbol": "A", "window_start": 1000, "window_end": 2000, "n": 2, "volume": 160},
        {"symbol": "B", "window_start": 1000, "window_end": 2000, "n": 1, "volume": 10},
        {"symbol": "A", "window_start": 2000, "window_end": 3000, "n": 1, "volume": 5},
        {"symbol": "B", "window_start": 2000, "window_end": 3000, "n": 1, "volume": 70},
        {"symbol": "A", "window_start": 3000, "window_end": 4000, "n": 1, "volume": 80},
    ]


def test_stdin_to_stdout() -> None:
    text = "".join(json.dumps(r) + "\n" for r in TRADES)
    done = partita(
        "run", "--sql", "SELECT symbol FROM trades WHERE price > 12", "--input", "-", stdin=text
    )
    assert done.returncode == 0, done.stderr
    assert rows_of(done.stdout) == [{"symbol": "B"}, {"symbol": "B"}, {"symbol": "A"}]


# -------------------------------------------------------------- exit codes
def test_sql_error_exits_2_naming_line_and_column(trades: Path) -> None:
    done = partita("run", "--sql", "SELECT\n  nosuch(qty) FROM trades", "--input", str(trades))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("partita: SQL error at line 2, column 3: ")
    assert "NOSUCH" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2(trades: Path, tmp_path: Path) -> None:
    missing = partita("run", "--sql", "SELECT * FROM t", "--input", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert "partita: cannot read input" in missing.stderr
    bad_policy = partita(
        "run", "--sql", "SELECT * FROM t", "--input", str(trades), "--on-error", "x"
    )
    assert bad_policy.returncode == 2
    assert "skip, fail, dead-letter:PATH" in bad_policy.stderr
    bad_size = partita(
        "run", "--sql", "SELECT * FROM t", "--input", str(trades), "--max-memory", "lots"
    )
    assert bad_size.returncode == 2
    assert "not a size" in bad_size.stderr
    no_sql = partita("run", "--input", str(trades))
    assert no_sql.returncode == 2
    assert "give the query as --sql QUERY or --sql-file PATH" in no_sql.stderr


def test_runtime_failure_exits_1_naming_the_input_line(tmp_path: Path) -> None:
    # issue 8 item 20: a record's error named a 0-based offset of parsed records
    # (3 here); with two blank lines before it, it is on line 6
    records = [*TRADES[:3], {"symbol": "C", "price": 1.0, "qty": "many", "ts": 2_000}, *TRADES[3:]]
    lines = [json.dumps(r) for r in records]
    lines[1:1] = ["", "   "]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = partita(
        "run",
        "--sql",
        "SELECT symbol FROM trades WHERE qty > 50",
        "--input",
        str(path),
        "--on-error",
        "fail",
    )
    assert done.returncode == 1
    assert done.stderr.startswith("partita: bad record at line 6 of ")
    assert "bad.jsonl' (in 'partition-0'): TypeError: " in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.fixture
def malformed(tmp_path: Path) -> Path:
    path = tmp_path / "malformed.jsonl"
    lines = (
        [json.dumps(r) for r in TRADES[:2]]
        + ['{"symbol": "X", "qty": ']
        + [json.dumps(r) for r in TRADES[2:]]
    )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


QUERY_ALL = "SELECT symbol, qty FROM trades"


def test_malformed_line_skip(malformed: Path) -> None:
    done = partita("run", "--sql", QUERY_ALL, "--input", str(malformed), "--on-error", "skip")
    assert done.returncode == 0, done.stderr
    assert rows_of(done.stdout) == [{"symbol": r["symbol"], "qty": r["qty"]} for r in TRADES]


def test_malformed_line_fail_names_the_line(malformed: Path) -> None:
    done = partita("run", "--sql", QUERY_ALL, "--input", str(malformed), "--on-error", "fail")
    assert done.returncode == 1
    assert "line 3" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_malformed_line_dead_letter(malformed: Path, tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    done = partita(
        "run", "--sql", QUERY_ALL, "--input", str(malformed), "--on-error", f"dead-letter:{dead}"
    )
    assert done.returncode == 0, done.stderr
    assert len(rows_of(done.stdout)) == len(TRADES)
    letters = rows_of(dead.read_text(encoding="utf-8"))
    assert len(letters) == 1
    assert "line 3" in letters[0]["reason"]
    assert letters[0]["record"] == '{"symbol": "X", "qty": '
    assert letters[0]["stage"] == "source"


def test_late_records_go_to_the_dead_letter_file(tmp_path: Path) -> None:
    records = [*TRADES, {"symbol": "A", "price": 9.0, "qty": 1, "ts": 1_500}]
    path = write_jsonl(tmp_path / "late.jsonl", records)
    dead = tmp_path / "late-dead.jsonl"
    done = partita(
        "run",
        "--sql",
        "SELECT symbol, COUNT(*) AS n FROM trades GROUP BY symbol, TUMBLE(ts, INTERVAL '1' SECOND)",
        "--input",
        str(path),
        "--late",
        "dead-letter",
        "--dead-letter",
        str(dead),
    )
    assert done.returncode == 0, done.stderr
    assert sum(r["n"] for r in rows_of(done.stdout)) == len(TRADES)
    letters = rows_of(dead.read_text(encoding="utf-8"))
    assert [letter["record"]["ts"] for letter in letters] == [1_500]
    assert "late" in letters[0]["reason"]


# ----------------------------------------------------------- explain, demo
def test_explain_prints_plan_and_code() -> None:
    done = partita("explain", "--sql", "SELECT symbol, price * qty AS n FROM t WHERE qty > 50")
    assert done.returncode == 0, done.stderr
    assert "Filter" in done.stdout
    assert "def process" in done.stdout
    bad = partita("explain", "--sql", "SELECT nosuch(x) FROM t")
    assert bad.returncode == 2
    assert "SQL error at line 1, column 8" in bad.stderr


def test_demo_finishes() -> None:
    done = partita("demo", "--records", "20000", "--partitions", "2")
    assert done.returncode == 0, done.stderr
    assert "20,000 records" in done.stdout
    assert "records/s" in done.stdout


# ------------------------------------------------------------ benchmarks
def test_benchmarks_smoke() -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks", "--records", "2000"),
            *("--workloads", "W1", "--partitions", "1", "--repeat", "1"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 1
    required = {
        "workload",
        "partitions",
        "records",
        "rec_per_s",
        "floor_rec_per_s",
        "ratio",
        "peak_rss_mb",
    }
    assert required <= lines[0].keys()
    assert lines[0]["workload"] == "W1"
    assert lines[0]["partitions"] == 1
    assert lines[0]["records"] == 2000
    assert lines[0]["rows"] == lines[0]["floor_rows"]


# ------------------------------------------------------------ parsing
@pytest.mark.parametrize(
    ("text", "ms"), [("0", 0), ("250ms", 250), ("5s", 5000), ("1.5s", 1500), ("2m", 120_000)]
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


def test_parse_duration_rejects() -> None:
    with pytest.raises(ValueError, match="'soon' is not a duration"):
        parse_duration_ms("soon")


@pytest.mark.parametrize(
    ("text", "nbytes"), [("512", 512), ("64KB", 65536), ("256MB", 256 << 20), ("1GiB", 1 << 30)]
)
def test_parse_size(text: str, nbytes: int) -> None:
    assert parse_size(text) == nbytes


def test_ctrl_c_drains_and_exits_130() -> None:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "partita", "demo"),
            *("--records", "400000", "--rate", "20000", "--progress"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert proc.stdout.readline().startswith("partita demo:")  # the graph is starting
    # --progress into a pipe prints a status line a second: the first one means the
    # graph is running and the Ctrl-C handler is installed (it starts before progress).
    assert proc.stderr.readline().startswith("partita running")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "partita: interrupted" in err
    assert "window rows" in out  # the summary of what was drained


def test_forced_progress_prints_the_summary_table(trades: Path) -> None:
    done = partita(
        "run",
        "--sql",
        "SELECT symbol, COUNT(*) AS n FROM trades WHERE qty > 5 GROUP BY symbol",
        "--input",
        str(trades),
        "--partitions",
        "2",
        "--progress",
    )
    assert done.returncode == 0, done.stderr
    assert len(rows_of(done.stdout)) == 2
    summary = done.stderr
    assert "partita: completed - 6 records" in summary
    for actor in ("source", "router", "partition-0", "partition-1", "merge", "sink"):
        assert actor in summary
    assert "filtered" in summary  # shown because one record was filtered out


def test_bad_csv_row_follows_on_error(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text("symbol,qty\nA,3\nB,4,extra\nC,5\n", encoding="utf-8")
    query = "SELECT symbol, qty FROM trades"
    skipped = partita("run", "--sql", query, "--input", str(path), "--on-error", "skip")
    assert skipped.returncode == 0, skipped.stderr
    assert rows_of(skipped.stdout) == [{"symbol": "A", "qty": 3}, {"symbol": "C", "qty": 5}]
    failed = partita("run", "--sql", query, "--input", str(path), "--on-error", "fail")
    assert failed.returncode == 1
    assert "line 3" in failed.stderr
    dead = tmp_path / "dead.jsonl"
    lettered = partita(
        "run", "--sql", query, "--input", str(path), "--on-error", f"dead-letter:{dead}"
    )
    assert lettered.returncode == 0, lettered.stderr
    (letter,) = rows_of(dead.read_text(encoding="utf-8"))
    assert "line 3" in letter["reason"]


# ------------------------------------------------- nothing lost (issue 8, CLI)

WINDOWED = (
    "SELECT symbol, window_start, COUNT(*) AS n FROM trades "
    "GROUP BY symbol, TUMBLE(ts, INTERVAL '1' SECOND)"
)


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_output_over_the_input_is_refused(trades: Path, tmp_path: Path, link: str) -> None:
    before = trades.read_bytes()
    target = tmp_path / "alias.jsonl"
    if link == "same":
        target = trades
    elif link == "symlink":
        target.symlink_to(trades)
    else:
        os.link(trades, target)
    done = partita("run", "--input", str(trades), "--output", str(target), "--sql", WINDOWED)
    assert done.returncode == 2
    assert "is the same file as --input" in done.stderr
    assert "Traceback" not in done.stderr
    assert trades.read_bytes() == before


def test_dead_letter_file_overlaps_are_refused(trades: Path, tmp_path: Path) -> None:
    before = trades.read_bytes()
    out = tmp_path / "out.jsonl"
    same_out = partita(
        "run", "--input", str(trades), "--output", str(out), "--on-error",
        f"dead-letter:{out}", "--sql", WINDOWED,
    )  # fmt: skip
    assert same_out.returncode == 2
    assert "--dead-letter" in same_out.stderr and "same file as --output" in same_out.stderr
    same_in = partita(
        "run", "--input", str(trades), "--dead-letter", str(trades), "--late", "dead-letter",
        "--sql", WINDOWED,
    )  # fmt: skip
    assert same_in.returncode == 2
    assert trades.read_bytes() == before


def test_usage_errors_found_before_the_run(trades: Path, tmp_path: Path) -> None:
    zero = partita("run", "--input", str(trades), "--max-memory", "0", "--sql", WINDOWED)
    assert zero.returncode == 2
    assert "--max-memory must be more than 0" in zero.stderr
    missing = tmp_path / "no" / "such" / "dead.jsonl"
    done = partita(
        "run", "--input", str(trades), "--on-error", f"dead-letter:{missing}", "--sql", WINDOWED
    )
    assert done.returncode == 2
    assert "no such directory" in done.stderr
    assert done.stdout == ""  # nothing ran


def test_output_is_strict_json(tmp_path: Path) -> None:
    # a NaN/Infinity (Python's json reads them) and a lone surrogate (valid JSON)
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"k": "a", "x": NaN}\n{"k": "b", "x": Infinity}\n{"k": "\\ud800", "x": 1}\n'
        '{"k": "c", "x": 2}\n',
        encoding="utf-8",
    )
    done = partita("run", "--input", str(path), "--sql", "SELECT k, x FROM t")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4
    rows = [json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c}")) for line in lines]
    assert rows == [
        {"k": "a", "x": None},
        {"k": "b", "x": None},
        {"k": "\ud800", "x": 1},
        {"k": "c", "x": 2},
    ]
    assert lines[2] == '{"k":"\\ud800","x":1}'


def _live_run(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "partita", "run", "--input", "-", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )


def _wait_for_file_line(path: Path, proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """The first line written to ``path``: polled until the process's own deadline."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and b"\n" in path.read_bytes():
            return path.read_text().splitlines()[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)  # polling a file another process writes; no virtual clock here
    pytest.fail(f"nothing written to {path} in {timeout}s")


def test_sigterm_drains_flushes_and_exits_143(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = _live_run(tmp_path, "--output", str(out), "--sql", "SELECT k FROM t")
    assert proc.stdin is not None
    proc.stdin.write('{"k": 1}\n')
    proc.stdin.flush()
    # rows of a live run reach the file at batch boundaries, not at exit
    assert _wait_for_file_line(out, proc) == '{"k":1}'
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "terminated" in err
    assert "Traceback" not in err


def test_sigterm_keeps_the_aggregates_in_flight(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = _live_run(
        tmp_path,
        *("--output", str(out), "--progress"),
        *("--sql", "SELECT k, COUNT(*) AS n FROM t GROUP BY k"),
    )
    assert proc.stdin is not None
    assert proc.stderr is not None
    proc.stdin.write('{"k": 1}\n{"k": 1}\n{"k": 2}\n')
    proc.stdin.flush()  # stdin stays open: the groups are in flight
    # --progress into a pipe prints a status line a second; once it counts the three
    # records they are in the graph (the signal handler is installed before it)
    while "3 records" not in (line := proc.stderr.readline()):
        assert line, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert rows_of(out.read_text()) == [{"k": 1, "n": 2}, {"k": 2, "n": 1}]


def test_ctrl_c_works_while_stdout_is_blocked(tmp_path: Path) -> None:
    # a reader that stops reading: writes must not block the event loop, the first
    # Ctrl-C starts the drain, the second stops at once with 130
    import queue
    import threading

    path = write_jsonl(tmp_path / "in.jsonl", [{"i": i, "pad": "x" * 40} for i in range(300_000)])
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "partita", "run", "--input", str(path), "--progress"),
            *("--sql", "SELECT i, pad FROM t"),
        ],
        stdout=subprocess.PIPE,  # never read: the pipe fills and stays full
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr], daemon=True).start()

    def wait_for(text: str) -> None:
        while text not in lines.get(timeout=30):
            pass

    try:
        wait_for("partita running")  # the graph runs; the pipe fills within a batch
        wait_for("partita running")  # a second status line: the loop lives with stdout full
        proc.send_signal(signal.SIGINT)
        wait_for("interrupted")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT COUNT(*) AS n FROM t GROUP BY TUMBLE(ts, INTERVAL 'inf' SECOND)",
        "SELECT " + "(" * 500 + "qty" + ")" * 500 + " AS y FROM t",
        "SELECT " + "+".join(["qty"] * 1000) + " AS y FROM t",
        "SELECT symbol FROM t GROUP BY 1.5",
    ],
)
def test_hostile_sql_is_one_line_and_exit_2(trades: Path, query: str) -> None:
    done = partita("run", "--input", str(trades), "--sql", query)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("partita: SQL error at line 1, column ")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_full_disk_is_one_line_and_exit_1(trades: Path) -> None:
    done = partita("run", "--input", str(trades), "--output", "/dev/full", "--sql", WINDOWED)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "cannot write output '/dev/full': No space left on device" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_summary_groups_bad_records_by_reason(trades: Path, tmp_path: Path) -> None:
    # issue 8 item 19: a misspelled column said only "skipped 6 bad record(s)"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(trades.read_text() + "{not json\n", encoding="utf-8")
    done = partita("run", "--input", str(bad), "--sql", "SELECT nosuch FROM t")
    assert done.returncode == 0
    assert "skipped 7 bad record(s)" in done.stderr
    assert "6: missing field 'nosuch'" in done.stderr
    assert "1: invalid JSON" in done.stderr


def test_idle_timeout_closes_the_last_window_of_a_live_stdin(tmp_path: Path) -> None:
    # issue 8 item 21: with a quiet stdin that stays open, the window only came at the end
    out = tmp_path / "out.jsonl"
    proc = _live_run(
        tmp_path,
        *("--output", str(out), "--idle-timeout", "50ms"),
        *("--sql", "SELECT k, COUNT(*) AS n FROM t GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"),
    )
    assert proc.stdin is not None
    proc.stdin.write('{"k": 1, "ts": 100}\n')
    proc.stdin.flush()  # and then silence: idle ticks move event time on
    try:
        assert json.loads(_wait_for_file_line(out, proc)) == {"k": 1, "n": 1}
    finally:
        proc.kill()
        proc.communicate()


# ------------------------------------------------- issue 7 item 6, issue 8 items 1, 12, 19
def test_the_reader_going_away_exits_141_quietly(tmp_path: Path) -> None:
    # issue 8 item 12: when the reader of stdout closed, the exit code was 0
    path = write_jsonl(tmp_path / "in.jsonl", [{"i": i} for i in range(200_000)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "partita", "run", "--input", str(path), "--sql", "SELECT i FROM t"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b'{"i":0}\n'
    proc.stdout.close()  # `| head -1`
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141, err
    assert err == b""


def test_stdin_redirected_from_the_output_file_is_refused(tmp_path: Path) -> None:
    # issue 8 item 1: `--input - < f --output f` truncated f, the input, to nothing
    path = write_jsonl(tmp_path / "data.jsonl", TRADES)
    before = path.read_bytes()
    with path.open("rb") as stdin:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "partita",
                "run",
                "--input",
                "-",
                "--output",
                str(path),
                "--sql",
                "SELECT * FROM t",
            ],
            stdin=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr == (
        f"partita: --output {str(path)!r} is the same file as standard input (--input -)\n"
    )
    assert path.read_bytes() == before


def test_stdout_appending_to_the_input_file_is_refused(tmp_path: Path) -> None:
    # issue 8 item 1: `--input f >> f` read its own output, forever
    path = write_jsonl(tmp_path / "data.jsonl", TRADES)
    before = path.read_bytes()
    with path.open("ab") as stdout:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "partita",
                "run",
                "--input",
                str(path),
                "--sql",
                "SELECT * FROM t",
            ],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            check=False,
        )
    assert done.returncode == 2
    assert "standard output (--output -) is the same file as --input" in done.stderr
    assert path.read_bytes() == before


def test_a_column_no_record_has_is_named_at_once(tmp_path: Path) -> None:
    # issue 8 item 19: a misspelled column ran to the end in silence; now a warning
    # comes while the input is still open, naming the column and the records' columns
    proc = _live_run(tmp_path, "--sql", "SELECT symbl, qty FROM t WHERE qty > 1")
    assert proc.stdin is not None
    assert proc.stderr is not None
    proc.stdin.write('{"symbol": "A", "qty": 5}\n{"symbol": "B", "qty": 7}\n')
    proc.stdin.flush()
    try:
        line = proc.stderr.readline()
        assert line == (
            "partita: warning: the query reads 'symbl', which none of the first 2 record(s) "
            "has; they have 'symbol', 'qty'\n"
        )
    finally:
        _, err = proc.communicate(timeout=30)  # closes stdin: the end of input
    assert "2: missing field 'symbl'" in err


def test_output_into_a_pipe_is_neither_wrapped_nor_padded(trades: Path) -> None:
    # issue 7 item 6: rich laid out output into a pipe at 80 columns
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    long_name = "a_column_name_long_enough_to_pass_eighty_columns_on_its_own_" * 2
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "partita",
            "run",
            "--input",
            str(trades),
            "--progress",
            "--sql",
            f"SELECT symbol AS {long_name} FROM t WHERE qty > 50",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, "NO_COLOR": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("partita: completed - 6 records in ")
    assert lines[0].endswith("4 rows out, 0 late, 0 errored")  # one line, however long
    assert all(line == line.rstrip() for line in lines)
    assert any(line.split()[:2] == ["partition-0", "completed"] for line in lines)


def test_explain_compiles_the_query_once() -> None:
    # issue 7 item 6: explain compiled twice and showed the second program's name
    done = partita("explain", "--sql", "SELECT a + 1 AS b FROM t")
    assert done.returncode == 0, done.stderr
    assert "-- generated code (<partita-sql:program#1>)" in done.stdout


# ------------------------------------------------------------------ checkpoints (issue 9)
def test_a_completed_checkpointed_run_starts_afresh_next_time(trades: Path, tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    args = ("run", "--input", str(trades), "--sql", WINDOWED, "--checkpoint", str(ck))
    first = partita(*args, "--output", str(tmp_path / "a.jsonl"), "--checkpoint-interval", "1ms")
    assert first.returncode == 0, first.stderr
    again = partita(*args, "--output", str(tmp_path / "a.jsonl"))
    assert again.returncode == 0, again.stderr
    assert "resuming" not in again.stderr  # the first run completed: the same job starts afresh


def test_a_damaged_checkpoint_store_is_one_line_and_exit_1(trades: Path, tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "checkpoints.db").write_bytes(b"this is not a database, " * 100)
    done = partita(
        "run",
        "--input",
        str(trades),
        "--sql",
        WINDOWED,
        "--checkpoint",
        str(ck),
        "--output",
        str(tmp_path / "out.jsonl"),
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "checkpoints.db" in done.stderr
    assert done.stderr.startswith("partita: ")


def test_checkpoint_options_need_a_directory_and_a_file_input(trades: Path) -> None:
    no_dir = partita("run", "--input", str(trades), "--sql", WINDOWED, "--fresh")
    assert no_dir.returncode == 2
    assert "--checkpoint-interval and --fresh need --checkpoint DIR" in no_dir.stderr
    stdin = partita("run", "--input", "-", "--sql", WINDOWED, "--checkpoint", "ck", stdin="")
    assert stdin.returncode == 2
    assert "standard input cannot be read again" in stdin.stderr
