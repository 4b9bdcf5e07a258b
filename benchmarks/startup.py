"""``python -m benchmarks.startup``: how long ``import partita`` and ``partita --help`` take.

Also what a run over a file imports (``from partita.actors import build_sql_graph``:
``import partita.actors`` alone imports its names lazily) and a whole ``partita run``
of W1 over a 1,000-line JSON-lines file, nearly all of it start-up.

Each command runs ``--repeat`` times in a fresh interpreter, the commands
alternating; one JSON line per command with the median wall-clock and CPU
(user + system, from ``wait4``) seconds, and the same less a bare
``python -c pass`` (the interpreter's own start-up)::

    python -m benchmarks.startup --repeat 20

The target is under 0.3 s for both (``docs/performance.md``).
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

from ._data import generate_trades
from ._workloads import WORKLOADS

__all__ = ["COMMANDS", "main"]

COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "import partita": ["-c", "import partita"],
    "partita --help": ["-m", "partita", "--help"],
    "import partita.actors": ["-c", "import partita.actors"],
    "from partita.actors import build_sql_graph": [
        "-c",
        "from partita.actors import build_sql_graph",
    ],
}

_RUN = "partita run W1, 1,000 lines"


def _run_command(folder: str) -> list[str]:
    """``partita run`` of W1 over a 1,000-line file written into ``folder``."""
    src, out = os.path.join(folder, "in.jsonl"), os.path.join(folder, "out.jsonl")
    with open(src, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in generate_trades(1000))
    sql = WORKLOADS["W1"].sql
    return ["-m", "partita", "run", "--sql", sql, "--input", src, "--output", out]


def _once(args: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"benchmarks.startup: python {' '.join(args)} failed")
    return seconds, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="partita-startup-") as folder:
        commands = {**COMMANDS, _RUN: _run_command(folder)}
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(max(1, args.repeat)):
            for name, command in commands.items():
                runs[name].append(_once(command))
    base_wall = statistics.median(r[0] for r in runs["python -c pass"])
    base_cpu = statistics.median(r[1] for r in runs["python -c pass"])
    for name, timings in runs.items():
        wall = statistics.median(r[0] for r in timings)
        cpu = statistics.median(r[1] for r in timings)
        line = {
            "bench": "startup",
            "command": name,
            "runs": len(timings),
            "seconds": round(wall, 4),
            "cpu_seconds": round(cpu, 4),
            "over_python_seconds": round(wall - base_wall, 4),
            "over_python_cpu_seconds": round(cpu - base_cpu, 4),
        }
        sys.stdout.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
