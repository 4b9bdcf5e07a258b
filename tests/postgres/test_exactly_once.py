"""``partita run --checkpoint ... --output postgres://...`` killed with SIGKILL, then run
again: the table equals the uninterrupted run's, with nothing written twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import PostgresServer

pytestmark = pytest.mark.slow

ROWS = 30_000
BATCH = "100"  # 300 batches: room for checkpoints between them

JOBS = {
    # append: every input row is an output row (a double would show)
    "append": ("SELECT id, k, v * 2 AS w FROM t", "id bigint, k text, w bigint", None),
    # upsert: the running count and sum per key, with EMIT CHANGES
    "upsert": (
        "SELECT k, COUNT(*) AS n, SUM(v) AS s FROM t GROUP BY k EMIT CHANGES",
        "k text PRIMARY KEY, n bigint, s bigint",
        "k",
    ),
}


def sealed(postgres: PostgresServer, sink_id: str) -> int | None:
    """The last checkpoint the sink committed into the table (``None``: none yet)."""
    if postgres.execute("SELECT to_regclass('partita_sink_progress')") == [(None,)]:
        return None
    found = postgres.execute(
        "SELECT checkpoint FROM partita_sink_progress WHERE sink_id = %s", [sink_id]
    )
    return found[0][0] if found else None


def finished(postgres: PostgresServer, sink_id: str) -> bool:
    """Whether the run's end is committed into the table (the job then completed)."""
    return postgres.execute(
        "SELECT complete FROM partita_sink_progress WHERE sink_id = %s", [sink_id]
    ) == [(True,)]


def partita_run(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "partita", "run", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.mark.parametrize("job", sorted(JOBS))
def test_sigkill_then_the_same_command_writes_each_row_once(
    postgres: PostgresServer, tmp_path: Path, job: str
) -> None:
    sql, columns, key = JOBS[job]
    source, expected, got = f"eo_in_{job}", f"eo_expected_{job}", f"eo_got_{job}"
    postgres.execute(
        f"DROP TABLE IF EXISTS {source}, {expected}, {got}; "
        f"CREATE TABLE {source} AS SELECT i AS id, 'k' || (i % 7) AS k, i % 100 AS v "
        f"FROM generate_series(1, {ROWS}) i; "
        f"CREATE TABLE {expected} ({columns}); CREATE TABLE {got} ({columns})"
    )
    if postgres.execute("SELECT to_regclass('partita_sink_progress')") != [(None,)]:
        postgres.execute("DELETE FROM partita_sink_progress WHERE sink_id = %s", [got])
    query = f"SELECT id, k, v FROM {source}"
    keyed = f"&key={key}" if key else ""
    url = f"{postgres.dsn}?order_by=id"

    reference = partita_run(
        "--sql", sql, "--input", url, "--query", query, "--batch-size", BATCH,
        "--output", f"{postgres.dsn}?table={expected}{keyed}",
    )  # fmt: skip
    assert reference.wait(timeout=120) == 0

    command = (
        "--sql", sql, "--input", url, "--query", query, "--batch-size", BATCH,
        "--output", f"{postgres.dsn}?table={got}{keyed}",
        "--checkpoint", str(tmp_path / "ck"), "--checkpoint-interval", "100ms",
    )  # fmt: skip
    rng = random.Random(0)
    kills = resumed = 0
    for _ in range(6):
        before = sealed(postgres, got)
        proc = partita_run(*command)
        assert proc.stderr is not None
        if kills < 4:  # SIGKILL soon after a checkpoint of this run reached the table
            # Under load the store's commit can lag the table's by more than the random
            # wait below, and every kill then restarts afresh: once two kills resumed
            # nothing, wait for this run's second seal (checkpoints are sequential, so
            # its first is in the store by then).
            seals = 2 if kills >= 2 and not resumed else 1
            deadline = time.monotonic() + 120
            last = before
            while proc.poll() is None and seals:
                assert time.monotonic() < deadline, "no checkpoint came"
                now = sealed(postgres, got)
                if now != last:
                    seals, last = seals - 1, now
                    continue
                time.sleep(0.005)
            try:  # a random moment after it: in the store's commit, or in the next one
                proc.wait(timeout=rng.uniform(0.0, 0.03))
            except subprocess.TimeoutExpired:
                if not finished(postgres, got):  # a kill after the end is a completed run
                    proc.kill()
        code = proc.wait(timeout=120)
        err = proc.stderr.read()
        resumed += b"resuming from checkpoint" in err
        if code == 0:
            break
        assert code == -signal.SIGKILL, err
        kills += 1
    else:
        pytest.fail("the job never finished")
    assert kills >= 1
    assert resumed >= 1  # (a kill before the store's first commit restarts afresh)
    order = "id" if key is None else "k"
    want = postgres.execute(f"SELECT * FROM {expected} ORDER BY {order}")
    assert len(want) == (ROWS if key is None else 7)
    assert postgres.execute(f"SELECT * FROM {got} ORDER BY {order}") == want
