"""A real ``redis-server`` for the Redis Streams tests: one per test.

Started on a free 127.0.0.1 port in a temporary directory without persistence
(``persistence=True`` in :func:`start_redis` for restart tests), waited on
until it answers PING, stopped at the end.  Skipped, saying why, when
``redis-server`` is not installed.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from tests.actors.helpers import free_port

pytest.importorskip("coredis", reason="coredis (the redis extra) is not installed")


@attrs.frozen
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(folder: Path, *, persistence: bool = False, port: int | None = None) -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port() if port is None else port
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    args += ["--appendonly", "yes"] if persistence else ["--save", "", "--appendonly", "no"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):  # bounded: each try waits on a connect, not the clock
        if _ping(port):
            return RedisServer(port, process)
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.01)
    process.kill()
    raise RuntimeError("redis-server did not answer PING")


def stop_redis(server: RedisServer) -> None:
    """Stop ``server`` as SIGTERM does (with persistence its data is on disk after)."""
    if server.process.poll() is None:
        server.process.terminate()
    server.process.wait(timeout=10)


def restart_redis(server: RedisServer, folder: Path, *, persistence: bool = True) -> RedisServer:
    """Stop ``server`` and start a new one on its port and in ``folder`` (its data dir)."""
    stop_redis(server)
    return start_redis(folder, persistence=persistence, port=server.port)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path)
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)
