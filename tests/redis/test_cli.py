"""``partita produce`` / ``consume`` and ``run --input/--output redis://`` as processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import RedisServer

pytestmark = pytest.mark.slow


def partita(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partita", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def records(n: int) -> list[dict[str, int]]:
    return [{"k": i % 13, "ts": i * 10, "v": i} for i in range(n)]


def write(path: Path, rows: list[dict[str, int]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_produce_consume_round_trip(redis_server: RedisServer, tmp_path: Path) -> None:
    rows = records(5000)
    src = write(tmp_path / "in.jsonl", rows)
    url = redis_server.url
    done = partita("produce", "--redis", url, "--topic", "t", "--partitions", "4", "--key", "k",
                   "--input", str(src))  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = partita("consume", "--redis", url, "--topic", "t", "--from-start", "--until-end")
    assert out.returncode == 0, out.stderr
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted(got, key=lambda r: r["v"]) == rows
    again = partita("produce", "--redis", url, "--topic", "t", "--partitions", "3", "--key", "k",
                    "--input", str(src))  # fmt: skip
    assert again.returncode == 1
    assert again.stderr.strip().endswith("topic 't' has 4 partitions, not 3")
    assert "Traceback" not in again.stderr


def test_key_hash_is_the_same_in_every_process() -> None:
    code = (
        "from partita.actors._redis import partition_of; "
        "print([partition_of(k, 8) for k in ('a', 'user-42', 17, None)])"
    )
    seen = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
        for seed in ("1", "2", "3")
    }  # fmt: skip
    assert len(seen) == 1


def test_unreachable_redis_is_one_line_exit_1() -> None:
    done = partita("consume", "--redis", "redis://127.0.0.1:1", "--topic", "t", "--until-end")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Redis at redis://127.0.0.1:1: cannot connect" in lines[0]


def test_sql_window_job_over_a_topic_equals_the_file(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    src = write(tmp_path / "in.jsonl", records(20000))
    url = redis_server.url
    sql = (
        "SELECT k, COUNT(*) AS n, SUM(v) AS s, window_start FROM s "
        "GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"
    )
    # one partition: a single-process run reads the topic's partitions merged, and
    # event time is in order within a partition only (the worker is per partition)
    done = partita("produce", "--redis", url, "--topic", "in", "--input", str(src))
    assert done.returncode == 0, done.stderr
    ran = partita("run", "--sql", sql, "--input", f"{url}?topic=in",
                  "--output", f"{url}?topic=out&partitions=2&key=k")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    out = partita("consume", "--redis", url, "--topic", "out", "--from-start", "--until-end")
    assert out.returncode == 0, out.stderr
    expected = partita("run", "--sql", sql, "--input", str(src))

    def key(r: dict[str, int]) -> tuple[int, int]:
        return (r["k"], r["window_start"])

    got = sorted((json.loads(x) for x in out.stdout.splitlines()), key=key)
    want = sorted((json.loads(x) for x in expected.stdout.splitlines()), key=key)
    assert got == want
    assert len(want) == 200 * 13
