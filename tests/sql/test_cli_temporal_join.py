"""``partita run`` / ``describe`` of a stream enriched from a changelog file (a
temporal join, issue 12 item 2), end to end; recovery is in
tests/actors/test_interval_join_recovery.py, results against DuckDB in
tests/sql/test_temporal_join.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.actors.test_cli import partita, rows_of, write_jsonl

pytestmark = pytest.mark.slow

JOIN = (
    "SELECT o.id, o.amount * r.rate AS usd FROM orders o "
    "LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.cur = r.cur"
)


def test_a_stream_enriched_from_a_changelog_file(tmp_path: Path) -> None:
    # EUR changes rate every 10 s; GBP is deleted at 50 s
    rates = [{"cur": "EUR", "rate": 1 + s / 100, "ts": s * 1_000} for s in range(0, 100, 10)]
    rates += [{"cur": "GBP", "rate": 2, "ts": 0}, {"cur": "GBP", "ts": 50_000}]
    rates.sort(key=lambda r: r["ts"])
    orders = [
        {"id": i, "cur": "EUR" if i % 2 else "GBP", "amount": 100, "ts": i * 1_000}
        for i in range(100)
    ]
    done = partita(
        "run",
        "--sql",
        JOIN,
        "--input",
        f"orders={write_jsonl(tmp_path / 'orders.jsonl', orders)}",
        "--input",
        f"rates={write_jsonl(tmp_path / 'rates.jsonl', rates)}",
        "--partitions",
        "2",
        "--batch-size",
        "7",
    )
    assert done.returncode == 0, done.stderr
    expected = [
        {"id": i, "usd": 100 * (1 + (i // 10 * 10) / 100)}
        if i % 2
        else {"id": i, "usd": 200 if i < 50 else None}
        for i in range(100)
    ]
    assert sorted(rows_of(done.stdout), key=lambda r: r["id"]) == expected


def test_describe_and_errors_name_the_changelog(tmp_path: Path) -> None:
    done = partita("describe", "--sql", JOIN)
    assert done.returncode == 0, done.stderr
    assert (
        "  LEFT temporal join of stream orders (as o) with changelog rates (as r) as of "
        "o.ts on o.cur = r.cur; versions by r.ts"
    ) in done.stdout.splitlines()
    orders = write_jsonl(tmp_path / "orders.jsonl", [{"id": 1, "cur": "EUR", "ts": 0}])
    done = partita("run", "--sql", JOIN, "--input", f"orders={orders}")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "partita: the query joins the stream 'rates': give it as --input rates=FILE"
    )
