"""``serve_ui``: the web view served by Hypercorn's trio worker inside the caller's
``trio.run``."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import attrs
import trio

from partita.runtime import Supervisor

from ._address import parse_address

__all__ = ["UiServer", "serve_ui"]


@attrs.frozen
class UiServer:
    """A running web view.

    Attributes:
        host: the address it is bound to.
        port: the port it listens on (the real one when 0 was asked for).
        token: the run's random token; control requests send it in the
            ``X-Partita-Token`` header.
    """

    host: str
    port: int
    token: str = attrs.field(repr=False)

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The page's address with the token, as printed: ``http://HOST:PORT/?token=...``."""
        return f"{self.base_url}/?token={self.token}"


def _missing_extra(exc: ImportError) -> ImportError:
    return ImportError(
        f"the web view needs the 'ui' extra ({(exc.name or '?').split('.')[0]} is missing): "
        "pip install 'partita[ui]'"
    )


@asynccontextmanager
async def serve_ui(
    supervisor: Supervisor,
    address: str | int | tuple[str, int] = "127.0.0.1:0",
    *,
    job: str = "partita",
    token: str | None = None,
) -> AsyncIterator[UiServer]:
    """Serve the web view of ``supervisor``'s graph for the duration of the block.

    The page (``/``), Prometheus metrics (``/metrics``), the graph and its stats as
    JSON (``/api/graph``), a live stream of stats (``/api/stream``, server-sent
    events, four a second) and control actions (``POST /api/graph/pause``,
    ``/resume``, ``/cancel``, ``/api/actors/NAME/pause``, ``/resume``), which need
    the run's token in the ``X-Partita-Token`` header.  Leaving the block stops the
    server (not the graph).

    Args:
        supervisor: the running graph (``open_supervisor``, or a query stream's
            ``.supervisor``).
        address: ``[HOST:]PORT``; the host defaults to 127.0.0.1, port 0 picks a
            free port (see :attr:`UiServer.port`).  Bind ``0.0.0.0`` only on a
            network you trust: reading needs no token.
        job: the ``job`` label of every metric, and the page's title.
        token: the control token (default: a new random one).

    Raises:
        ValueError: the address is not ``[HOST:]PORT``.
        ImportError: the ``ui`` extra is not installed.
        OSError: the address cannot be bound.

    Example:
        >>> async def main() -> None:
        ...     async with partita.open_supervisor(graph) as supervisor:
        ...         async with partita.serve_ui(supervisor, "127.0.0.1:8080") as ui:
        ...             print("web view:", ui.url)
        ...             await supervisor.wait()

    .. versionadded:: 0.1
    """
    host, port = parse_address(address)
    try:
        from hypercorn.config import Config
        from hypercorn.trio import serve

        from ._app import make_app
    except ImportError as exc:
        raise _missing_extra(exc) from exc
    token = secrets.token_urlsafe(24) if token is None else token
    if len(token) < 16:  # an empty token would match a request without one
        raise ValueError("serve_ui: the control token must have at least 16 characters")
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"  # not "Running on ...": the caller prints the URL, token and all
    serving = False
    try:
        async with trio.open_nursery() as nursery:

            def spawn(task: Callable[[], Awaitable[None]]) -> None:
                nursery.start_soon(task)

            app = make_app(supervisor, token=token, job=job, spawn=spawn)
            binds: list[str] = await nursery.start(serve, app, config)
            serving = True
            yield UiServer(host, int(binds[0].rsplit(":", 1)[1]), token)
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # one error (the block's own, or the server's) comes out as itself
        leaves = _leaves(group)
        if len(leaves) != 1:
            raise
        (error,) = leaves
        if not serving and isinstance(error, OSError):
            raise OSError(
                error.errno, f"cannot listen on {host}:{port}: {error.strerror or error}"
            ) from error
        raise error from error.__cause__


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [] if isinstance(exc, trio.Cancelled) else [exc]
