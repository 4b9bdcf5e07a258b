"""Start-up: ``import partita`` and ``partita --help`` import neither trio, sqlglot
nor rich, and ``partita run`` over a file imports no connector (checked by module
presence in a fresh process, never by timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from partita._cli import _group, cli

HEAVY = ("trio", "sqlglot", "rich")

_HELP = """
import sys
from partita._cli import main
try:
    main([{args}])
except SystemExit as exc:
    assert exc.code == 0, exc.code
print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


def _heavy_after(*args: str) -> tuple[str, str]:
    code = _HELP.format(args=", ".join(map(repr, args)), heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout, done.stderr.strip()


def test_help_and_version_import_nothing_heavy() -> None:
    out, heavy = _heavy_after("--help")
    assert heavy == "[]"
    for name in _group.COMMANDS:
        assert f"  {name} " in out
    out, heavy = _heavy_after("--version")
    assert heavy == "[]"
    assert out.startswith("partita, version ")


def test_a_command_is_imported_when_asked_for() -> None:
    out, heavy = _heavy_after("run", "--help")
    assert "--sql QUERY" in out
    assert heavy == str(sorted(HEAVY))


@pytest.mark.parametrize("limit", [20, 45, 74, 200])
def test_the_table_of_commands_is_the_commands(limit: int) -> None:
    # the group lists commands from a table without importing them: it must agree
    ctx = click.Context(cli)
    commands = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    assert sorted(commands) == sorted(_group.COMMANDS)
    for name, command in commands.items():
        assert command is not None
        table = click.Command(name, help=_group.COMMANDS[name][1]).get_short_help_str(limit)
        assert table == command.get_short_help_str(limit), name


def test_an_unknown_command_is_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "partita", "nosuch"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "No such command 'nosuch'" in done.stderr
    assert "Traceback" not in done.stderr


# What a run from a JSON-lines file to a JSON-lines file never needs: the connectors'
# libraries (the extras), the web view's server, the highlighter of ``explain``, and
# partita's own modules for them, the worker and the Flow API.
NOT_FOR_FILES = (
    "coredis",
    "psycopg",
    "pyarrow",
    "hypercorn",
    "starlette",
    "prometheus_client",
    "pygments",
    "partita._ui._serve",
    "partita.actors._flow",
    "partita.actors._parquet_sink",
    "partita.actors._postgres_sink",
    "partita.actors._postgres_source",
    "partita.actors._redis",
    "partita.actors._worker",
)

_RUN = """
import json, sys
from partita._cli import main
try:
    main({args!r})
except SystemExit as exc:
    assert exc.code == 0, exc.code
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT symbol, price * qty AS notional FROM trades WHERE qty > 50",
        "SELECT symbol, window_start, COUNT(*) AS n FROM trades "
        "GROUP BY symbol, TUMBLE(ts, INTERVAL '1' SECOND)",
    ],
)
def test_a_file_run_imports_no_connector(tmp_path: Path, sql: str) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"symbol": "a", "price": 1.5, "qty": 60, "ts": 0}\n')
    args = ["run", "--sql", sql, "--input", str(src), "--output", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", _RUN.format(args=args)], capture_output=True, text=True, check=True
    )
    modules = set(json.loads(done.stdout))
    assert out.read_text().count("\n") == 1  # it ran
    assert "partita.actors._sqlgraph" in modules  # and the check sees partita's modules
    loaded = [
        m for m in NOT_FOR_FILES if m in modules or any(n.startswith(m + ".") for n in modules)
    ]
    assert loaded == []


_COLLECTOR = """
import gc, sys
import partita._cli._driver as driver
from partita._cli import main
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(1))
seen = []
real = driver.trio.run
def watch(*args, **kwargs):
    frozen = gc.get_freeze_count() > 0
    seen.append((len(collections), gc.isenabled(), gc.get_threshold()[0], frozen))
    return real(*args, **kwargs)
driver.trio.run = watch
before = (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count())
collections.clear()
try:
    main({args!r})
except SystemExit as exc:
    assert exc.code == 0, exc.code
print(seen, before == (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()))
"""


def test_a_run_collects_rarely_and_start_up_never(tmp_path: Path) -> None:
    # start-up's objects live as long as the process: frozen for the run, whose young
    # generation holds more than a batch; afterwards the collector is as it was
    from partita._cli._collector import RUN_THRESHOLD

    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(f'{{"k": {i % 3}}}\n' for i in range(5000)))
    args = ["run", "--sql", "SELECT k, COUNT(*) AS n FROM t GROUP BY k"]
    args += ["--input", str(src), "--output", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", _COLLECTOR.format(args=args)],
        capture_output=True,
        text=True,
        check=True,
    )
    # no collection from the command's start to its run; in the run, frozen start-up
    assert done.stdout.split() == ["[(0,", "True,", f"{RUN_THRESHOLD},", "True)]", "True"]
    assert out.read_text().count("\n") == 3
