"""``partita run`` / ``describe`` over two streams joined within an interval, end to end
(issue 12 item 2); recovery is in tests/actors/test_interval_join_recovery.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.actors.test_cli import partita, rows_of, write_jsonl

pytestmark = pytest.mark.slow

JOIN = (
    "SELECT o.id, p.paid FROM orders o LEFT JOIN payments p ON o.id = p.oid "
    "AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '10' SECOND"
)


@pytest.fixture
def streams(tmp_path: Path) -> tuple[Path, Path]:
    orders = [{"id": i, "ts": i * 1_000} for i in range(200)]
    payments = [{"oid": i, "paid": i * 10, "ts": i * 1_000 + 5_000} for i in range(0, 200, 2)]
    return (
        write_jsonl(tmp_path / "orders.jsonl", orders),
        write_jsonl(tmp_path / "payments.jsonl", payments),
    )


def _expected() -> list[dict[str, object]]:
    return [{"id": i, "paid": i * 10 if i % 2 == 0 else None} for i in range(200)]


def test_two_streams_join_from_files(streams: tuple[Path, Path]) -> None:
    orders, payments = streams
    done = partita(
        "run",
        "--sql",
        JOIN,
        "--input",
        f"orders={orders}",
        "--input",
        f"payments={payments}",
        "--partitions",
        "3",
        "--batch-size",
        "7",
    )
    assert done.returncode == 0, done.stderr
    assert sorted(rows_of(done.stdout), key=lambda r: r["id"]) == _expected()


def test_the_joined_stream_must_be_given(streams: tuple[Path, Path]) -> None:
    orders, _ = streams
    done = partita("run", "--sql", JOIN, "--input", f"orders={orders}")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "partita: the query joins the stream 'payments': give it as --input payments=FILE"
    )


def test_describe_shows_both_streams_and_the_held_watermark() -> None:
    done = partita("describe", "--sql", JOIN, "--allowed-lateness", "2s")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "input orders (stream; the query reads id)",
        "input payments (stream; the query reads paid)",
        "  LEFT interval join of stream orders (as o) with stream payments (as p) on "
        "o.id = p.oid, p.ts - o.ts in [0, 10000] ms",
        "  event time: o.ts, p.ts",
        "  watermark: the least of the inputs' (max event time - 2000 ms), less 10000 ms "
        "after the join",
        "output id, paid (EMIT FINAL)",
    ]


def test_a_misspelled_column_of_one_stream_is_named_with_its_stream(
    streams: tuple[Path, Path],
) -> None:
    orders, payments = streams
    done = partita(
        "run",
        "--sql",
        JOIN.replace("p.paid", "p.payd"),
        "--input",
        f"orders={orders}",
        "--input",
        f"payments={payments}",
    )
    assert done.returncode == 0, done.stderr
    assert (
        "partita: warning: the query reads 'payd' of 'payments', which none of the first"
        in done.stderr
    )
