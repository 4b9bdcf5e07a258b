"""rich consoles that never hard-wrap or pad what goes into a pipe or a file.

In a terminal rich lays text and tables out to the terminal's width.  Into a
pipe it would assume 80 columns: long lines wrapped, tables padded with
trailing blanks.  Here a console that is not a terminal is as wide as its
longest line, and :func:`show` strips the blanks a table pads its cells with.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from rich.console import Console

__all__ = ["console_for", "show"]

_UNBOUNDED = 1 << 20  # columns: wider than any line a table or message makes


def console_for(stream: IO[str]) -> Console:
    """A console on ``stream`` (``sys.stdout`` or ``sys.stderr``)."""
    try:
        terminal = stream.isatty()
    except (ValueError, OSError):
        terminal = False
    if terminal:
        return Console(file=stream, stderr=stream is sys.stderr)
    return Console(file=stream, width=_UNBOUNDED, soft_wrap=True, stderr=stream is sys.stderr)


def show(console: Console, renderable: Any, **options: Any) -> None:
    """Print ``renderable``; into a pipe or file, every line without trailing blanks."""
    if console.is_terminal:
        console.print(renderable, **options)
        return
    with console.capture() as captured:
        console.print(renderable, **options)
    lines = captured.get().splitlines()
    console.file.write("".join(line.rstrip() + "\n" for line in lines))
    console.file.flush()
