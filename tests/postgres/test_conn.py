"""ThreadedConnection against a real server: an abort always ends the session."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio

from partita.actors._postgres_conn import ThreadedConnection

from .conftest import PostgresServer
from .test_source import backends, dsn_of, poll


def no_setup(conn: Any) -> None:
    return None


async def test_an_abort_outlived_by_its_call_still_closes_the_connection(
    postgres: PostgresServer, autojump_clock: trio.testing.MockClock
) -> None:
    marker = "abort-outlived"
    conn = ThreadedConnection(dsn_of(postgres, marker), no_setup)
    await conn.run(lambda c: c.execute("SELECT 1"))
    entered, release = threading.Event(), threading.Event()

    def blocked(c: Any) -> None:
        entered.set()
        release.wait()

    # the call blocks in Python, where the server's cancel cannot reach it, past the
    # abort's deadline (virtual time jumps there at once)
    async with trio.open_nursery() as nursery:

        async def call() -> None:
            await conn.run(blocked)

        nursery.start_soon(call)
        await trio.to_thread.run_sync(entered.wait)
        nursery.cancel_scope.cancel()
    assert backends(postgres, marker)  # still in use by the abandoned call
    release.set()
    assert await poll(lambda: not backends(postgres, marker))
    with pytest.raises(trio.ClosedResourceError):
        await conn.run(lambda c: None)


async def test_a_cancel_during_connect_never_runs_the_call(
    postgres: PostgresServer, autojump_clock: trio.testing.MockClock
) -> None:
    marker = "abort-connecting"
    entered, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def slow_setup(c: Any) -> None:
        entered.set()
        release.wait()

    conn = ThreadedConnection(dsn_of(postgres, marker), slow_setup)
    async with trio.open_nursery() as nursery:

        async def call() -> None:
            await conn.run(lambda c: ran.append("ran"))

        nursery.start_soon(call)
        await trio.to_thread.run_sync(entered.wait)
        nursery.cancel_scope.cancel()
    release.set()
    assert await poll(lambda: not backends(postgres, marker))
    assert ran == []
