"""Turn the JSON lines of ``python -m benchmarks`` into a Markdown table::

python -m benchmarks --memory-check > results.jsonl
python -m benchmarks._report results.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["main", "markdown"]

TARGETS = {("W1", None): 0.5, ("W3", 4): 0.4}


def _target(line: dict[str, Any]) -> str:
    workload, partitions, ratio = line["workload"], line["partitions"], line.get("ratio")
    bar = TARGETS.get((workload, partitions), TARGETS.get((workload, None)))
    if bar is None or ratio is None:
        return ""
    return f">= {bar} {'met' if ratio >= bar else 'MISSED'}"


def markdown(lines: list[dict[str, Any]]) -> str:
    """A table: workload, partitions, records/s, floor records/s, ratio, peak RSS."""
    out = [
        "| workload | partitions | records | partita rec/s | floor rec/s | ratio "
        "| ratio (median) | CPU-time ratio | peak RSS MB | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for line in lines:
        if "workload" not in line:
            continue
        floor = line.get("floor_rec_per_s")
        ratio = line.get("ratio")
        median = line.get("ratio_median")
        cpu = line.get("cpu_ratio")
        target = _target(line)
        if line.get("limit_mb") is not None:
            target = f"< {line['limit_mb']:g} MB {'met' if line.get('ok') else 'MISSED'}"
        out.append(
            f"| {line['workload']} | {line['partitions']} | {line['records']:,} "
            f"| {line['rec_per_s']:,} | {'-' if floor is None else f'{floor:,}'} "
            f"| {'-' if ratio is None else f'{ratio:.2f}'} "
            f"| {'-' if median is None else f'{median:.2f}'} "
            f"| {'-' if cpu is None else f'{cpu:.2f}'} "
            f"| {line['peak_rss_mb']:.1f} | {target} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._report")
    parser.add_argument("path", nargs="?", default="-", help="JSON lines (default stdin)")
    args = parser.parse_args(argv)
    if args.path == "-":
        text = sys.stdin.read()
    else:
        with open(args.path, encoding="utf-8") as file:
            text = file.read()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    sys.stdout.write(markdown(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
