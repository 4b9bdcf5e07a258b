"""The ``partita`` command: run, explain and demo streaming SQL from the shell.

One module per idea: :mod:`._group` (the click group, which imports a command
only when it runs), :mod:`._commands` (``run``, ``explain``),
:mod:`._demo`, :mod:`._driver` (trio, signals, failures as one line),
:mod:`._progress` (the live panel and the summary), :mod:`._paths` (the run's
files checked up front), :mod:`._parse` (options and the query),
:mod:`._columns` (the missing-column warning), :mod:`._console` (rich output
that never hard-wraps into a pipe) and :mod:`._exit` (exit codes).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from ._collector import collector_off
from ._exit import EXIT_INTERRUPTED, EXIT_OK, CliError
from ._group import cli

if TYPE_CHECKING:
    from partita.runtime import parse_duration_ms, parse_size

    from ._demo import demo_sql

__all__ = ["cli", "demo_sql", "main", "parse_duration_ms", "parse_size"]

# imported when first used: ``partita --help`` imports click and nothing heavier
_HOMES = {
    "demo_sql": "partita._cli._demo",
    "parse_duration_ms": "partita.runtime",
    "parse_size": "partita.runtime",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'partita._cli' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


def main(argv: Sequence[str] | None = None) -> None:
    """The console script ``partita``."""
    try:
        with collector_off():  # start-up makes no garbage worth a collection; a run
            code = cli.main(  # turns the collector on (``_collector``)
                args=list(argv) if argv is not None else None,
                prog_name="partita",
                standalone_mode=False,
            )
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("partita: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except CliError as exc:
        sys.stdout.flush()
        click.echo(f"partita: {exc.message}", err=True)
        sys.exit(exc.code)
    except KeyboardInterrupt:
        click.echo("partita: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
