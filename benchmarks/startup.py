"""``python -m benchmarks.startup``: how long ``import partita`` and ``partita --help`` take.

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
import time

__all__ = ["COMMANDS", "main"]

COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "import partita": ["-c", "import partita"],
    "partita --help": ["-m", "partita", "--help"],
    "import partita.actors": ["-c", "import partita.actors"],
}


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
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    for _ in range(max(1, args.repeat)):
        for name, command in COMMANDS.items():
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
