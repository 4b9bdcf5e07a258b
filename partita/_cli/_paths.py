"""The run's files, checked before anything is opened: nothing read is overwritten.

``--input``, ``--output`` and the dead-letter file must be three different
files, whatever names or links they go by, and so must what the shell
redirected: ``--input - < f`` reads ``f`` and ``--output -`` (or ``> f``,
``>> f``) writes the file standard output is.  A clash is exit 2, before the
output is created or truncated.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from partita.actors import CsvSink, CsvSource, JsonLinesSink, JsonLinesSource
from partita.runtime import OnError

from ._exit import EXIT_USAGE, fail

if TYPE_CHECKING:
    from partita.actors import ParquetSink

__all__ = ["OUTPUT_FORMATS", "check_paths", "make_sink", "make_source", "output_format"]

_Identity = tuple[int, int] | str  # (device, inode) of a file that exists, else its real path


def _identity_of_path(path: str) -> _Identity:
    try:
        info = os.stat(path)
    except OSError:  # not there yet: where it would be, symlinks resolved
        return os.path.realpath(path)
    return (info.st_dev, info.st_ino)


def _identity_of_fd(fd: int) -> _Identity | None:
    """A regular file the shell redirected ``fd`` to, if it is one (not a pipe or terminal)."""
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def check_paths(input_path: str, output_path: str, dead_letter_path: str | None) -> None:
    """Refuse any two of the run's files being one file, and a dead-letter file nowhere."""
    named: list[tuple[str, _Identity]] = []
    for flag, path, fd, stream in (
        ("--input", input_path, 0, "standard input"),
        ("--output", output_path, 1, "standard output"),
    ):
        if "://" in path:  # a server (postgres://...), not a file
            continue
        if path != "-":
            named.append((f"{flag} {path!r}", _identity_of_path(path)))
        elif (identity := _identity_of_fd(fd)) is not None:
            named.append((f"{stream} ({flag} -)", identity))
    if dead_letter_path is not None:
        named.append((f"--dead-letter {dead_letter_path!r}", _identity_of_path(dead_letter_path)))
    for i, (what_a, a) in enumerate(named):
        for what_b, b in named[i + 1 :]:
            if a == b:
                fail(f"{what_b} is the same file as {what_a}", EXIT_USAGE)
    if dead_letter_path is not None:
        folder = os.path.dirname(os.path.abspath(dead_letter_path))
        if not os.path.isdir(folder):
            fail(
                f"cannot write dead letters to {dead_letter_path!r}: no such directory {folder!r}",
                EXIT_USAGE,
            )


def make_source(
    path: str, fmt: str, on_error: OnError, name: str = "source"
) -> JsonLinesSource | CsvSource:
    """The file source ``--input`` and ``--format`` ask for (exit 2 if it cannot be read)."""
    if path != "-" and not os.path.exists(path):
        fail(f"cannot read input {path!r}: no such file", EXIT_USAGE)
    if path != "-" and os.path.isdir(path):
        fail(f"cannot read input {path!r}: is a directory", EXIT_USAGE)
    if fmt == "auto":
        fmt = "csv" if path.lower().endswith(".csv") else "jsonl"
    if fmt == "csv":
        if path == "-":
            fail("--format csv needs a file path, not '-'", EXIT_USAGE)
        return CsvSource(name, path, on_error=on_error)
    return JsonLinesSource(name, path, on_error=on_error)


OUTPUT_FORMATS = ("auto", "jsonl", "csv", "parquet")


def output_format(path: str, fmt: str) -> str:
    """The format ``--output-format`` names, or by ``auto`` the file's extension:
    ``.csv`` is CSV, ``.parquet`` / ``.pq`` Parquet, anything else (and ``-``) JSON lines."""
    if fmt != "auto":
        return fmt
    lower = path.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    return "jsonl"


def make_sink(path: str, fmt: str) -> JsonLinesSink | CsvSink | ParquetSink:
    """The file sink ``--output`` and ``--output-format`` ask for (exit 2 if it cannot be)."""
    fmt = output_format(path, fmt)
    if fmt == "csv":
        return CsvSink("sink", path)
    if fmt == "parquet":
        from partita.actors._parquet_sink import ParquetSink, import_pyarrow  # pyarrow's extra

        if path == "-":
            fail("--output-format parquet needs an --output file, not '-'", EXIT_USAGE)
        try:
            import_pyarrow()
        except ImportError as exc:
            fail(str(exc), EXIT_USAGE)
        return ParquetSink("sink", path)
    return JsonLinesSink("sink", path)
