"""``partita demo --ui`` and ``partita run --ui``: the URL with its token on stderr, and
the web view of the command's own run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"partita: web view at (http://127\.0\.0\.1:(\d+))/\?token=(\S+)")


def _partita(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partita", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        timeout=60,
        check=False,
    )


def test_demo_prints_the_url_with_its_token_on_stderr() -> None:
    done = _partita("demo", "--records", "20000", "--partitions", "2", "--ui", "0")
    assert done.returncode == 0, done.stderr
    assert URL.search(done.stderr), done.stderr
    assert "web view" not in done.stdout


def test_run_takes_ui_too(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"k": i % 3}) + "\n" for i in range(100)))
    done = _partita(
        "run", "--sql", "SELECT k, COUNT(*) AS n FROM t GROUP BY k", "--input", str(data),
        "--ui", "127.0.0.1:0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert URL.search(done.stderr), done.stderr
    assert sorted(json.loads(line)["k"] for line in done.stdout.splitlines()) == [0, 1, 2]


def test_a_bad_ui_address_is_a_usage_error() -> None:
    done = _partita("demo", "--ui", "localhost:http")
    assert done.returncode == 2
    assert "Invalid value for '--ui': the address must be [HOST:]PORT" in done.stderr


def test_the_demo_is_paused_and_cancelled_from_its_web_view() -> None:
    command = ["demo", "--records", "100000000", "--rate", "20000", "--ui", "0", "--no-progress"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "partita", *command],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert proc.stderr is not None
        match = URL.search(proc.stderr.readline())
        assert match, "no URL on stderr"
        base, _, token = match.groups()

        def call(path: str, method: str = "GET") -> bytes:
            request = urllib.request.Request(
                base + path, method=method, headers={"X-Partita-Token": token}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return bytes(response.read())

        assert b'partita_rows_out_total{actor="source",job="partita"}' in call("/metrics")
        call("/api/graph/pause", "POST")
        assert json.loads(call("/api/stats"))["state"] == "paused"
        call("/api/graph/cancel", "POST")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
