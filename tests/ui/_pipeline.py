"""A live SQL pipeline with a web view, and an HTTP client for the tests (urllib in a
worker thread: the server runs in the test's own trio loop)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

import partita
from partita.actors import CallbackSink, DeadLetterSink, TradeSource, build_sql_graph
from partita.runtime import Supervisor, open_supervisor

QUERY = (
    "SELECT symbol, COUNT(*) AS n, SUM(qty) AS volume FROM trades "
    "GROUP BY symbol, TUMBLE(ts, INTERVAL '1' SECOND)"
)


@attrs.frozen
class Reply:
    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        return json.loads(self.body)


def _request(url: str, method: str, headers: dict[str, str]) -> Reply:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, response.read(), response.headers["Content-Type"])
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read(), exc.headers["Content-Type"] or "")


async def http(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Reply:
    return await trio.to_thread.run_sync(_request, url, method, headers or {})


@attrs.frozen
class Live:
    supervisor: Supervisor
    ui: partita.UiServer

    def url(self, path: str) -> str:
        return self.ui.base_url + path


@asynccontextmanager
async def live_pipeline(
    *, partitions: int = 3, rate: float = 20_000, job: str = "test"
) -> AsyncIterator[Live]:
    """source → router → partitions → merge → sink (+ dead-letter), generated trades
    at ``rate`` a second for far longer than a test lasts; cancelled at the end."""
    query = partita.compile_query(QUERY)
    source = TradeSource("source", records=10**9, rate=rate, seed=1)
    graph, _ = build_sql_graph(
        query,
        source,
        CallbackSink("sink", lambda rows: None),
        partitions=partitions,
        dead_letter=DeadLetterSink("dead-letter", keep=False),
    )
    async with open_supervisor(graph) as supervisor:
        async with partita.serve_ui(supervisor, "127.0.0.1:0", job=job) as ui:
            yield Live(supervisor, ui)
        if supervisor.state not in (
            partita.ActorState.COMPLETED,
            partita.ActorState.CANCELLED,
            partita.ActorState.FAILED,
        ):
            await supervisor.cancel(graceful=False)


async def wait_for(condition: Any, *, within: float = 10.0, poll: float = 0.02) -> None:
    """Bounded polling: until ``condition()`` (sync or async) is true, or fail."""
    with trio.fail_after(within):
        while True:
            value = condition()
            if hasattr(value, "__await__"):
                value = await value
            if value:
                return
            await trio.sleep(poll)
