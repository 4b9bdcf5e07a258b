"""The ``partita`` command: run, explain and demo streaming SQL from the shell.

One module per idea: :mod:`._commands` (the click group, ``run``, ``explain``),
:mod:`._demo`, :mod:`._driver` (trio, signals, failures as one line),
:mod:`._progress` (the live panel and the summary), :mod:`._paths` (the run's
files checked up front), :mod:`._parse` (options and the query),
:mod:`._columns` (the missing-column warning), :mod:`._console` (rich output
that never hard-wraps into a pipe) and :mod:`._exit` (exit codes).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from partita.runtime import parse_duration_ms, parse_size

from ._commands import cli
from ._demo import demo, demo_sql
from ._exit import EXIT_INTERRUPTED, EXIT_OK, CliError

__all__ = ["cli", "demo_sql", "main", "parse_duration_ms", "parse_size"]

cli.add_command(demo)


def main(argv: Sequence[str] | None = None) -> None:
    """The console script ``partita``."""
    try:
        code = cli.main(
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
