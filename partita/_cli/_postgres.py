"""``--input postgres://...``: a Postgres query as the run's input; ``--output`` a table.

The query comes from ``--query "SELECT ..."`` or the URL's ``query=``
parameter; ``order_by=a,b`` (the key to resume after, for ``--checkpoint``),
``numeric=`` and ``timestamps=`` are the :class:`partita.PostgresSource`
options of the same names, ``connect_timeout=`` (seconds) that of the source
and the sink.  Every other URL parameter (``sslmode=``, ``application_name=``,
...) goes to libpq as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from partita.runtime import OnError

from ._exit import EXIT_USAGE, fail

if TYPE_CHECKING:  # imported by the functions that make them: a file run needs neither
    from partita.actors import PostgresSink, PostgresSource

__all__ = ["is_postgres_url", "postgres_sink", "postgres_source"]

_OWN = ("query", "order_by", "numeric", "timestamps", "connect_timeout")
_SINK_OWN = ("table", "key", "connect_timeout", "sink_id")
_DEFAULT_TIMEOUT = "10"


def is_postgres_url(text: str) -> bool:
    """Whether ``--input`` names a Postgres server (``postgres://`` or ``postgresql://``)."""
    return text.startswith(("postgres://", "postgresql://"))


def postgres_source(url: str, query: str | None, on_error: OnError) -> PostgresSource:
    """The source ``--input postgres://...`` and ``--query`` ask for (exit 2 if unusable)."""
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _OWN:
            ours[name] = value
        else:
            rest.append((name, value))
    in_url = ours.pop("query", None)
    if query is not None and in_url is not None:
        fail("give the Postgres query once: --query or the URL's query=, not both", EXIT_USAGE)
    query = query if query is not None else in_url
    if not query or not query.strip():
        fail(
            '--input postgres://... needs a query: --query "SELECT ..." (or ?query= in the URL)',
            EXIT_USAGE,
        )
    dsn = urlunsplit(parts._replace(query=urlencode(rest)))
    order_by = ours.get("order_by")
    from partita.actors import PostgresSource

    try:
        return PostgresSource(
            "source",
            dsn,
            query,
            order_by=None if not order_by else [c.strip() for c in order_by.split(",")],
            on_error=on_error,
            numeric=ours.get("numeric", "float"),  # type: ignore[arg-type]
            timestamps=ours.get("timestamps", "epoch_ms"),  # type: ignore[arg-type]
            connect_timeout=_seconds(ours.get("connect_timeout", _DEFAULT_TIMEOUT)),
        )
    except ValueError as exc:
        fail(f"--input {parts.scheme}://...: {exc}", EXIT_USAGE)


def postgres_sink(url: str) -> PostgresSink:
    """The sink ``--output postgres://...?table=T[&key=K]`` asks for (exit 2 if unusable)."""
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _SINK_OWN:
            ours[name] = value
        else:
            rest.append((name, value))
    table = ours.get("table")
    if not table:
        fail(
            "--output postgres://... needs the table: ?table=NAME (&key=K for upserts)", EXIT_USAGE
        )
    key = ours.get("key")
    dsn = urlunsplit(parts._replace(query=urlencode(rest)))
    from partita.actors import PostgresSink

    try:
        return PostgresSink(
            "sink",
            dsn,
            table,
            key=None if not key else [c.strip() for c in key.split(",")],
            connect_timeout=_seconds(ours.get("connect_timeout", _DEFAULT_TIMEOUT)),
            **({"sink_id": ours["sink_id"]} if "sink_id" in ours else {}),
        )
    except ValueError as exc:
        fail(f"--output {parts.scheme}://...: {exc}", EXIT_USAGE)


def _seconds(text: str) -> float:
    """``connect_timeout=`` as a number (the option's own check says what is wrong)."""
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"connect_timeout must be a number of seconds, got {text!r}") from None
