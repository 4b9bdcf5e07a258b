"""``python -m benchmarks``: partita against the plain-CPython floor, as JSON lines.

For each workload and partition count, a fresh process (``python -m
benchmarks._one``) generates the seeded record list, runs partita once (its
peak RSS is that run's own), then alternates the hand-written floor and partita
on the same list, best of ``--repeat`` each.  ``ratio = rec_per_s /
floor_rec_per_s``; ``ratio_median`` is the median of the per-round ratios.

``--peers`` (the ``bench`` extra) adds, per workload, one fresh process per peer
system (``python -m benchmarks._peer``: Bytewax with its per-record source and
with batches of 1,000, DuckDB list of dicts → Arrow → SQL), each alternating
with the same floor, so every line's ratio is against the same loop::

    pip install -e '.[bench]'
    python -m benchmarks --peers --machine > results.jsonl
    python -m benchmarks._report results.jsonl --plot docs/images/peers.png

``--batch-sizes 256,1024,...`` adds W3 at one partition with each fixed batch
size (lines with ``"sweep": "batch_size"``), for the throughput-by-batch plot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from typing import Any

from ._memory import LIMIT_MB
from ._peers import PEERS, available
from ._workloads import WORKLOADS

__all__ = ["main"]


def _csv(kind: type[Any]) -> Any:
    def parse(text: str) -> list[Any]:
        return [kind(part.strip()) for part in text.split(",") if part.strip()]

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="partita vs. the plain-CPython floor; one JSON object per line.",
    )
    parser.add_argument("--records", type=int, default=1_000_000, help="default 1,000,000")
    parser.add_argument(
        "--workloads",
        type=_csv(str),
        default=list(WORKLOADS),
        help="comma-separated, from W0,W1,W2,W3,W4 (default all; '' for none)",
    )
    parser.add_argument(
        "--partitions", type=_csv(int), default=[1, 4], help="comma-separated (default 1,4)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    parser.add_argument("--batch-size", type=int, default=None, help="default adaptive")
    parser.add_argument(
        "--batch-sizes",
        type=_csv(int),
        default=[],
        help="also run W3 at 1 partition with each of these fixed batch sizes",
    )
    parser.add_argument(
        "--memory-check",
        action="store_true",
        help=f"also run 5,000,000 TradeSource records through W3; peak RSS < {LIMIT_MB:g} MB",
    )
    parser.add_argument("--memory-records", type=int, default=5_000_000, help=argparse.SUPPRESS)
    parser.add_argument(
        "--machine", action="store_true", help="first print a JSON line describing the machine"
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also run Bytewax and DuckDB on each workload (needs partita[bench])",
    )
    parser.add_argument(
        "--peer-systems",
        type=_csv(str),
        default=list(PEERS),
        help=f"comma-separated, from {','.join(PEERS)} (default all installed)",
    )
    parser.add_argument(
        "--slow-peer-records",
        type=int,
        default=100_000,
        help="records for Bytewax's per-record source (default 100,000: ~1.5k rec/s on W3)",
    )
    return parser


def _child(module: str, *args: str) -> dict[str, Any]:
    """Run ``python -m benchmarks.<module> args`` in a fresh process; its JSON line."""
    command = [sys.executable, "-m", f"benchmarks.{module}", *args]
    cwd = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"benchmarks: {' '.join(command[1:])} failed (exit {done.returncode}):\n"
            f"{done.stderr.strip()}"
        )
    line: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return line


def _emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def _peer(system: str, workload: str, args: argparse.Namespace) -> dict[str, Any]:
    """One peer on one workload in a fresh process (or why it did not run)."""
    records = args.records
    if system == "bytewax":
        records = min(records, args.slow_peer_records)
    head = {"workload": workload, "system": system, "records": records}
    if not available(system):
        return {**head, "skipped": f"{system} is not installed (pip install -e '.[bench]')"}
    line = _child(
        "_peer",
        f"--system={system}",
        f"--workload={workload}",
        f"--records={records}",
        f"--seed={args.seed}",
        f"--repeat={args.repeat}",
    )
    return {**head, **line, "rows_match": line["rows"] == line["floor_rows"]}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        _parser().error(f"unknown workload(s) {','.join(unknown)}; choose from W0..W4")
    strangers = [p for p in args.peer_systems if p not in PEERS]
    if strangers:
        _parser().error(f"unknown peer(s) {','.join(strangers)}; choose from {','.join(PEERS)}")
    if any(p < 1 for p in args.partitions):
        _parser().error("--partitions must be positive integers")
    if args.machine:
        _emit(
            {
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "implementation": platform.python_implementation(),
                "system": platform.platform(),
            }
        )
    for name in args.workloads:
        for partitions in args.partitions:
            child_args = [
                f"--workload={name}",
                f"--partitions={partitions}",
                f"--records={args.records}",
                f"--seed={args.seed}",
                f"--repeat={args.repeat}",
            ]
            if args.batch_size is not None:
                child_args.append(f"--batch-size={args.batch_size}")
            run = _child("_one", *child_args)
            _emit(
                {
                    "workload": name,
                    "system": "partita",
                    "partitions": partitions,
                    "records": args.records,
                    **run,
                }
            )
        if args.peers:
            for system in args.peer_systems:
                _emit(_peer(system, name, args))
    for size in args.batch_sizes:
        run = _child(
            "_one",
            "--workload=W3",
            "--partitions=1",
            f"--records={args.records}",
            f"--seed={args.seed}",
            f"--repeat={args.repeat}",
            f"--batch-size={size}",
        )
        _emit(
            {
                "sweep": "batch_size",
                "workload": "W3",
                "system": "partita",
                "partitions": 1,
                "batch_size": size,
                "records": args.records,
                **run,
            }
        )
    if args.memory_check:
        _emit(
            _child(
                "_memory",
                f"--records={args.memory_records}",
                f"--partitions={max(args.partitions, default=4)}",
                f"--seed={args.seed}",
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
