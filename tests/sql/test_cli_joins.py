"""``partita run`` with several ``--input NAME=FILE`` (issue 12 items 1-2), end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.actors.test_cli import partita, rows_of, write_jsonl

pytestmark = pytest.mark.slow

ORDERS = [
    {"id": 1, "cur": "EUR", "amount": 10, "ts": 1_000},
    {"id": 2, "cur": "GBP", "amount": 5, "ts": 2_000},
    {"id": 3, "cur": "JPY", "amount": 7, "ts": 3_000},
    {"id": 4, "cur": "EUR", "amount": 1, "ts": 61_000},
]
ENRICH = "SELECT o.id, o.amount * r.rate AS usd FROM orders o LEFT JOIN rates r ON o.cur = r.cur"


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    rates = tmp_path / "rates.csv"
    rates.write_text("cur,rate,region\nEUR,1.5,eu\nGBP,2,uk\n", encoding="utf-8")
    return write_jsonl(tmp_path / "orders.jsonl", ORDERS), rates


def test_two_named_inputs_enrich_and_aggregate(inputs: tuple[Path, Path]) -> None:
    orders, rates = inputs
    done = partita(
        "run",
        "--sql",
        "SELECT r.region, window_start, COUNT(*) AS n, SUM(o.amount * r.rate) AS usd "
        "FROM orders o JOIN rates r ON o.cur = r.cur "
        "GROUP BY r.region, TUMBLE(o.ts, INTERVAL '1' MINUTE)",
        "--input",
        f"orders={orders}",
        "--input",
        f"rates={rates}",
        "--partitions",
        "2",
    )
    assert done.returncode == 0, done.stderr
    assert sorted(rows_of(done.stdout), key=lambda r: (r["window_start"], r["region"])) == [
        {"region": "eu", "window_start": 0, "n": 1, "usd": 15.0},
        {"region": "uk", "window_start": 0, "n": 1, "usd": 10},
        {"region": "eu", "window_start": 60_000, "n": 1, "usd": 1.5},
    ]


def test_an_unnamed_input_is_the_stream(inputs: tuple[Path, Path]) -> None:
    orders, rates = inputs
    done = partita("run", "--sql", ENRICH, "--input", str(orders), "--input", f"rates={rates}")
    assert done.returncode == 0, done.stderr
    assert rows_of(done.stdout) == [
        {"id": 1, "usd": 15.0},
        {"id": 2, "usd": 10},
        {"id": 3, "usd": None},
        {"id": 4, "usd": 1.5},
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "partita: the query joins 'rates': give it as --input rates=FILE"),
        (
            ["--input", "ratez=x.csv"],
            "the query reads no input named 'ratez' (it reads orders, rates)",
        ),
        (["--input", "rates=nope.csv"], "--input rates=...: cannot read table 'nope.csv'"),
        (["--input", "rates=R", "--input", "rates=R"], "--input rates=...: given twice"),
    ],
)
def test_input_errors_are_one_line(
    inputs: tuple[Path, Path], extra: list[str], message: str
) -> None:
    orders, rates = inputs
    extra = [e.replace("=R", f"={rates}") for e in extra]
    done = partita("run", "--sql", ENRICH, "--input", f"orders={orders}", *extra)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_bad_table_line_and_an_ambiguous_column(inputs: tuple[Path, Path]) -> None:
    orders, rates = inputs
    bad = orders.parent / "bad.jsonl"
    bad.write_text('{"cur": "EUR"}\nnot json\n', encoding="utf-8")
    done = partita("run", "--sql", ENRICH, "--input", str(orders), "--input", f"rates={bad}")
    assert done.returncode == 2
    assert "line 2: not valid JSON" in done.stderr
    ambiguous = "SELECT cur FROM orders o JOIN rates r ON o.cur = r.cur"
    done = partita("run", "--sql", ambiguous, "--input", str(orders), "--input", f"rates={rates}")
    assert done.returncode == 2
    assert done.stderr == (
        "partita: SQL error at line 1, column 8: column 'cur' is ambiguous: both 'o' and "
        "'r' have it; write o.cur or r.cur\n"
    )


def test_describe_names_the_table(inputs: tuple[Path, Path]) -> None:
    _, rates = inputs
    done = partita("describe", "--sql", ENRICH, "--input", f"rates={rates}")
    assert done.returncode == 0, done.stderr
    assert "table rates (LEFT JOIN as r, 2 rows; the query reads rate, cur)" in done.stdout
