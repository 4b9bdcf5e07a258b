"""Exit codes of the ``partita`` command and the one-line error that carries one."""

from __future__ import annotations

from typing import NoReturn

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_READER_GONE",
    "EXIT_RUNTIME",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "CliError",
    "fail",
]

EXIT_OK = 0
EXIT_RUNTIME = 1  # the run failed: the message names the record (input line or offset)
EXIT_USAGE = 2  # a bad option or SQL (SQL errors name line and column)
EXIT_INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C
EXIT_READER_GONE = 141  # 128 + SIGPIPE: the reader of stdout went away (`| head`)
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended


class CliError(Exception):
    """A failure the command reports as one line on stderr, with an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str, code: int) -> NoReturn:
    """Stop the command: ``partita: <message>`` on stderr, exit ``code``."""
    raise CliError(message, code)
