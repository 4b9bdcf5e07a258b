"""The ``partita`` command group, which imports a command only when it runs.

``partita --help`` (and ``--version``) needs click alone: the commands' modules
import trio, sqlglot, rich and the whole runtime, so the group lists the
commands from the table below and imports one when it is invoked (or asked
for its own ``--help``).  A test checks the table against the commands.
"""

from __future__ import annotations

import importlib

import click

__all__ = ["COMMANDS", "cli"]

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (the module that defines it, its short help: the first sentence of its help)
    "consume": ("partita._cli._commands", "Print a Redis Streams topic as JSON lines."),
    "describe": (
        "partita._cli._commands",
        "Print the query's inputs: columns, types, event time and watermark; and its output.",
    ),
    "demo": (
        "partita._cli._demo",
        "Generated trades through a per-symbol tumbling-window aggregate, live.",
    ),
    "explain": (
        "partita._cli._commands",
        "Print QUERY's logical plan and the Python code it compiles to.",
    ),
    "produce": (
        "partita._cli._commands",
        "Load JSON lines into a Redis Streams topic, one entry per batch.",
    ),
    "run": (
        "partita._cli._commands",
        "Run QUERY over an input; write the result rows (JSON lines, CSV or Parquet).",
    ),
    "worker": (
        "partita._cli._worker",
        "Run QUERY over the partitions of topic T this worker owns, into topic O.",
    ),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            if cmd_name not in COMMANDS:
                return None
            module = importlib.import_module(COMMANDS[cmd_name][0])
            if cmd_name not in self.commands:  # defined there, not registered: register it
                self.add_command(getattr(module, cmd_name))
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows = []
        for name in names:
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
            else:
                help_text = COMMANDS[name][1]  # shortened as click shortens a command's help
                rows.append((name, click.Command(name, help=help_text).get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="partita", prog_name="partita")
def cli() -> None:
    """partita: streaming SQL on an actor runtime (trio).

    \b
    partita demo                      a windowed aggregate over generated trades
    partita run --sql Q --input F     run a query over a JSON-lines (or CSV) file
    partita explain --sql Q           show the plan and the generated code
    partita describe --sql-file F     the query's inputs, columns, event time, output
    """
