"""Turn the JSON lines of ``python -m benchmarks`` into Markdown tables and a plot::

python -m benchmarks --memory-check > results.jsonl
python -m benchmarks._report results.jsonl
python -m benchmarks --peers --batch-sizes 64,256,1024,4096,16384 > results.jsonl
python -m benchmarks._report results.jsonl --plot docs/images/benchmarks.png

The first table is partita against the floor; with ``--peers`` lines a second one
puts every system side by side (median per-round ratio to the same floor); the
plot (matplotlib, the ``bench`` extra) draws that and W3's throughput against a
fixed batch size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

__all__ = ["main", "markdown", "plot", "side_by_side"]

TARGETS = {("W4", None): 0.6, ("W1", 4): 0.65, ("W2", 4): 0.65, ("W3", 4): 0.65}
_DEFAULT_TARGET = {1: 0.8}


def _target(line: dict[str, Any]) -> str:
    workload, partitions, ratio = line["workload"], line["partitions"], line.get("ratio")
    bar = TARGETS.get((workload, partitions), TARGETS.get((workload, None)))
    if bar is None and workload != "W0":
        bar = _DEFAULT_TARGET.get(partitions)
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
        if "workload" not in line or line.get("system", "partita") != "partita":
            continue
        if "sweep" in line:
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


def _system(line: dict[str, Any]) -> str:
    system = str(line.get("system", "partita"))
    return f"partita {line['partitions']}p" if system == "partita" else system


def side_by_side(lines: list[dict[str, Any]]) -> str:
    """Per workload: the floor's rate (the median over the processes: each system ran
    in its own), then every system's median ratio to the floor in its process."""
    runs = [ln for ln in lines if "workload" in ln and "sweep" not in ln and "ratio" in ln]
    systems = list(dict.fromkeys(_system(ln) for ln in runs))
    workloads = list(dict.fromkeys(str(ln["workload"]) for ln in runs))
    cell = {(str(ln["workload"]), _system(ln)): ln for ln in runs}
    out = [
        "| workload | floor rec/s | " + " | ".join(systems) + " |",
        "|---|---:|" + "---:|" * len(systems),
    ]
    for workload in workloads:
        floors = [ln["floor_rec_per_s"] for ln in runs if ln["workload"] == workload]
        row = [workload, f"{round(statistics.median(floors)):,}"]
        for system in systems:
            line = cell.get((workload, system))
            row.append("-" if line is None else f"{line['ratio_median']:.2f}x")
        out.append("| " + " | ".join(row) + " |")
    skipped = [ln for ln in lines if "skipped" in ln]
    for line in skipped:
        out.append(f"\n{line['workload']} {line['system']}: {line['skipped']}")
    return "\n".join(out)


def plot(lines: list[dict[str, Any]], path: str) -> None:
    """Two panels: every system's ratio by workload; W3's ratio by fixed batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [ln for ln in lines if "workload" in ln and "sweep" not in ln and "ratio" in ln]
    sweep = sorted(
        (ln for ln in lines if ln.get("sweep") == "batch_size"), key=lambda ln: ln["batch_size"]
    )
    systems = list(dict.fromkeys(_system(ln) for ln in runs))
    workloads = list(dict.fromkeys(str(ln["workload"]) for ln in runs))
    cell = {(str(ln["workload"]), _system(ln)): ln["ratio_median"] for ln in runs}
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(1, len(systems))
    for i, system in enumerate(systems):
        xs = [w + i * width for w in range(len(workloads))]
        left.bar(xs, [cell.get((w, system), 0.0) for w in workloads], width, label=system)
    left.set_xticks([w + 0.4 - width / 2 for w in range(len(workloads))], workloads)
    left.axhline(1.0, color="black", linewidth=0.8)
    left.set_ylabel("throughput / best hand-written loop (median of rounds)")
    left.set_title("partita and peers against the floor, same run")
    left.legend(fontsize="small")
    if sweep:
        # the ratio to the floor in the same process: absolute rates drift with the load
        right.plot(
            [ln["batch_size"] for ln in sweep], [ln["ratio_median"] for ln in sweep], marker="o"
        )
        right.set_xscale("log", base=2)
        right.set_xlabel("fixed batch size (records)")
        right.set_ylabel("throughput / best hand-written loop")
        right.set_title("W3, 1 partition, by batch size")
    else:
        right.set_axis_off()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._report")
    parser.add_argument("path", nargs="?", default="-", help="JSON lines (default stdin)")
    parser.add_argument("--plot", default=None, help="also draw the plot into this PNG file")
    args = parser.parse_args(argv)
    if args.path == "-":
        text = sys.stdin.read()
    else:
        with open(args.path, encoding="utf-8") as file:
            text = file.read()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    sys.stdout.write(markdown(lines) + "\n")
    if any(line.get("system", "partita") != "partita" for line in lines):
        sys.stdout.write("\n" + side_by_side(lines) + "\n")
    if args.plot:
        plot(lines, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
