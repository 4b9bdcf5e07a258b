"""The web view's ASGI app (Starlette): the page, ``/metrics``, the JSON API, a live
stream of stats and the control actions.

Reading is open to whoever can reach the address; every control action (pause,
resume, cancel) needs the run's token in the ``X-Partita-Token`` header, so a page
on another origin cannot send one (a custom header needs a CORS preflight, which
this app never grants).  Errors are one line of JSON, ``{"error": "..."}``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import trio
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from trio_util import periodic

from partita.runtime import ActorState, Supervisor

from ._metrics import GraphCollector, format_metrics
from ._snapshot import graph_view, stats_view

__all__ = ["STATIC", "TOKEN_HEADER", "make_app"]

TOKEN_HEADER = "X-Partita-Token"
"""The header that carries the run's token on control requests."""

STATIC = Path(__file__).parent / "static"
"""The page's files (shipped in the wheel)."""

_ENDED = (ActorState.COMPLETED, ActorState.FAILED, ActorState.CANCELLED)

Spawn = Callable[[Callable[[], Awaitable[None]]], None]
"""Starts a task that outlives the request (the server's nursery ``start_soon``)."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def make_app(
    supervisor: Supervisor,
    *,
    token: str,
    job: str,
    spawn: Spawn,
    stream_interval: float = 0.25,
) -> Starlette:
    """The app for one supervised graph.

    Args:
        supervisor: the running graph.
        token: what control requests must send in :data:`TOKEN_HEADER`.
        job: the ``job`` label of the metrics and the page's title.
        spawn: starts the graceful cancel, which outlives its request.
        stream_interval: seconds between two updates of ``/api/stream``.
    """
    collector = GraphCollector(supervisor, job)
    expected = token.encode()

    def refused(request: Request) -> JSONResponse | None:
        given = request.headers.get(TOKEN_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            what = "wrong" if given else "missing"
            return _error(
                403, f"{what} {TOKEN_HEADER} header: control actions need the run's token"
            )
        if supervisor.state in _ENDED:
            return _error(409, f"the graph has ended ({supervisor.state})")
        return None

    def actor_named(request: Request) -> str | JSONResponse:
        name = str(request.path_params["name"])
        try:
            supervisor.graph[name]
        except KeyError:
            return _error(404, f"no actor named {name!r}")
        return name

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def metrics(request: Request) -> Response:
        families = list(collector.collect())  # the stats, read in trio's thread
        # formatting is most of a scrape: in a worker thread, so the actors keep going
        text = await trio.to_thread.run_sync(format_metrics, families)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    async def api_graph(request: Request) -> Response:
        return JSONResponse(graph_view(supervisor, job, trio.current_time()))

    async def api_stats(request: Request) -> Response:
        return JSONResponse(stats_view(supervisor, trio.current_time()))

    async def api_stream(request: Request) -> Response:
        async def events() -> AsyncIterator[str]:
            async for _ in periodic(stream_interval):
                view = stats_view(supervisor, trio.current_time())
                yield f"data: {json.dumps(view, separators=(',', ':'))}\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    def control(
        act: Callable[[Request], Any],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            denied = refused(request)
            if denied is not None:
                return denied
            outcome = act(request)
            if isinstance(outcome, Response):
                return outcome
            return JSONResponse({"ok": True, "state": supervisor.state.value}, status_code=202)

        return endpoint

    def pause_graph(request: Request) -> None:
        supervisor.pause()

    def resume_graph(request: Request) -> None:
        supervisor.resume()

    def cancel_graph(request: Request) -> JSONResponse | None:
        graceful = request.query_params.get("graceful", "true")
        if graceful not in ("true", "false"):
            return _error(400, f"graceful must be true or false, got {graceful!r}")

        async def cancel() -> None:
            await supervisor.cancel(graceful=graceful == "true")

        spawn(cancel)
        return None

    def pause_actor(request: Request) -> JSONResponse | None:
        name = actor_named(request)
        if isinstance(name, JSONResponse):
            return name
        supervisor.pause(name)
        return None

    def resume_actor(request: Request) -> JSONResponse | None:
        name = actor_named(request)
        if isinstance(name, JSONResponse):
            return name
        supervisor.resume(name)
        return None

    routes = [
        Route("/", page),
        Route("/metrics", metrics),
        Route("/api/graph", api_graph),
        Route("/api/stats", api_stats),
        Route("/api/stream", api_stream),
        Route("/api/graph/pause", control(pause_graph), methods=["POST"]),
        Route("/api/graph/resume", control(resume_graph), methods=["POST"]),
        Route("/api/graph/cancel", control(cancel_graph), methods=["POST"]),
        Route("/api/actors/{name}/pause", control(pause_actor), methods=["POST"]),
        Route("/api/actors/{name}/resume", control(resume_actor), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's own 404 and 405 are plain text: every error here is one line of JSON
        assert isinstance(exc, HTTPException)
        what = {404: "no such page", 405: f"{request.method} is not allowed here"}
        reason = what.get(exc.status_code, exc.detail)
        return _error(exc.status_code, f"{reason}: {request.url.path}")

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
