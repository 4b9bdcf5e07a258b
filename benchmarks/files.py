"""``python -m benchmarks.files``: a JSON-lines file in, a JSON-lines file out.

W1 (filter + project) and W3 (one-second TUMBLE) over a file of seeded trades,
each system in a fresh process, the rounds alternating between systems so they
see the same machine load::

    python -m benchmarks.files --records 1000000 --repeat 3

Systems:

* ``partita``: ``python -m partita run --sql ... --input F --output O``;
* ``duckdb``: ``COPY (SELECT ... FROM read_json('F')) TO 'O' (FORMAT json)``
  (needs ``partita[bench]``; skipped when DuckDB is not installed);
* ``loop-json``: the hand-written loop with the stdlib: ``json.loads`` per line,
  the workload's floor, ``json.dumps`` per row;
* ``loop-msgspec``: the same loop decoding each 4 MiB chunk with msgspec's
  ``decode_lines`` and encoding the rows with ``encode_lines`` (what a
  competent engineer would write for speed).

One JSON object per line: ``{"bench": "file", "workload", "system", "records",
"rows", "seconds", "cpu_seconds", "peak_rss_mb", "vs_duckdb"}`` with the best
wall and CPU time of ``--repeat`` rounds, the child's own peak RSS (``wait4``),
and ``vs_duckdb`` = the median over rounds of DuckDB's seconds / this system's
(above 1: faster than DuckDB).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from ._data import generate_trades
from ._workloads import WINDOW_MS, WORKLOADS

__all__ = ["main"]

_DUCKDB_SQL = {
    "W1": "SELECT symbol, price * qty AS notional FROM read_json('{src}') WHERE qty > 50",
    "W3": (
        "SELECT symbol, (ts // {w}) * {w} AS window_start, (ts // {w}) * {w} + {w} AS window_end,"
        " COUNT(*) AS trades, SUM(qty) AS volume, AVG(price) AS avg_price"
        " FROM read_json('{src}') GROUP BY symbol, ts // {w}"
    ),
}

_DUCKDB = """
import sys, duckdb
con = duckdb.connect()
con.execute("COPY ({sql}) TO '{out}' (FORMAT json)")
"""

_LOOP = """
import sys
from benchmarks._workloads import WORKLOADS
floor = WORKLOADS[{workload!r}].floor
{decode}
"""

# the stdlib loop: every record decoded per line, the floor over them, rows encoded
_LOOP_JSON = """
import json
loads, dumps = json.loads, json.dumps
with open({src!r}, "rb") as f:
    records = [loads(line) for line in f if line.strip()]
rows = floor(records)
with open({out!r}, "w", encoding="utf-8") as f:
    f.write("".join([dumps(r) + "\\n" for r in rows]))
"""

_LOOP_MSGSPEC = """
import msgspec
decode_lines = msgspec.json.Decoder().decode_lines
with open({src!r}, "rb") as f:
    records = decode_lines(f.read())
rows = floor(records)
with open({out!r}, "wb") as f:
    f.write(msgspec.json.Encoder().encode_lines(rows))
"""


def _partita_sql(workload: str) -> str:
    return WORKLOADS[workload].sql


def _command(system: str, workload: str, src: str, out: str) -> list[str]:
    python = sys.executable
    if system == "partita":
        sql = _partita_sql(workload)
        return [python, "-m", "partita", "run", "--sql", sql, "--input", src, "--output", out]
    if system == "duckdb":
        sql = _DUCKDB_SQL[workload].format(src=src, w=WINDOW_MS)
        return [python, "-c", _DUCKDB.format(sql=sql.replace('"', '\\"'), out=out)]
    body = _LOOP_JSON if system == "loop-json" else _LOOP_MSGSPEC
    code = _LOOP.format(workload=workload, decode=body.format(src=src, out=out))
    return [python, "-c", code]


def _run(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS MiB of one child."""
    cwd = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    assert proc.stderr is not None
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"benchmarks.files: {command[:4]} failed:\n{err.strip()}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _have_duckdb() -> bool:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return False
    return True


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 22), b""))


def measure(records: int, repeat: int, workloads: list[str], seed: int = 0) -> list[dict[str, Any]]:
    """Every system on every workload, ``repeat`` alternating rounds; the JSON lines."""
    systems = ["partita", "loop-json", "loop-msgspec"]
    if _have_duckdb():
        systems.insert(1, "duckdb")
    lines: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="partita-bench-") as tmp:
        src = os.path.join(tmp, "trades.jsonl")
        # written by a child: this process stays small, and so do the children it
        # forks (a child's peak RSS counts what it inherited before its exec)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.files",
                "--write",
                src,
                f"--records={records}",
                f"--seed={seed}",
            ],
            check=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        for workload in workloads:
            times: dict[str, list[tuple[float, float, float]]] = {s: [] for s in systems}
            rows: dict[str, int] = {}
            for _ in range(max(1, repeat)):
                for system in systems:
                    out = os.path.join(tmp, f"{system}.jsonl")
                    times[system].append(_run(_command(system, workload, src, out)))
                    rows[system] = _count_lines(out)
                    os.unlink(out)
            for system in systems:
                runs = times[system]
                vs = None
                if "duckdb" in times:
                    vs = statistics.median(
                        d[0] / s[0] for d, s in zip(times["duckdb"], runs, strict=True)
                    )
                lines.append(
                    {
                        "bench": "file",
                        "workload": workload,
                        "system": system,
                        "records": records,
                        "rows": rows[system],
                        "seconds": round(min(r[0] for r in runs), 3),
                        "cpu_seconds": round(min(r[1] for r in runs), 3),
                        "peak_rss_mb": round(min(r[2] for r in runs), 1),
                        "vs_duckdb": None if vs is None else round(vs, 3),
                    }
                )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.files", description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workloads", default="W1,W3", help="from W1,W3 (default both)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as f:
            for record in generate_trades(args.records, seed=args.seed):
                f.write(json.dumps(record) + "\n")
        return 0
    workloads = [w for w in args.workloads.split(",") if w]
    if any(w not in _DUCKDB_SQL for w in workloads):
        parser.error("--workloads: choose from W1,W3")
    for line in measure(args.records, args.repeat, workloads, args.seed):
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
