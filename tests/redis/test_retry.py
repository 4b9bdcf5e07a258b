"""RedisUnavailable and ``retrying``: backoff on a mock clock; a real server stopped, restarted."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from partita.actors._leases import LeaseTable, RedisUnavailable, Retry, retrying
from partita.actors._redis import RedisError, open_redis
from partita.actors._retry import backoff_delay, unavailable

from .conftest import restart_redis, start_redis, stop_redis

URL = "redis://127.0.0.1:6379"
GUARD = 20


@given(
    failures=st.integers(1, 200),
    base=st.floats(0.001, 1.0),
    cap=st.floats(1.0, 60.0),
    seed=st.integers(0, 2**32),
)
def test_backoff_is_full_jitter_under_a_capped_exponential(
    failures: int, base: float, cap: float, seed: int
) -> None:
    delay = backoff_delay(failures, base_delay=base, max_delay=cap, rng=random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2 ** (failures - 1))
    again = backoff_delay(failures, base_delay=base, max_delay=cap, rng=random.Random(seed))
    assert delay == again  # deterministic under a seeded generator


def flaky(failures: list[BaseException], result: str = "ok") -> tuple[list[int], object]:
    calls: list[int] = []

    async def op() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return result

    return calls, op


async def test_retries_wait_the_reported_backoff_on_the_mock_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    import coredis.exceptions

    failures: list[BaseException] = [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("timed out"),
        coredis.exceptions.BusyLoadingError("LOADING Redis is loading the dataset in memory"),
        BaseExceptionGroup("wrapped", [coredis.exceptions.ConnectionError("gone")]),
    ]
    calls, op = flaky(failures)
    seen: list[Retry] = []
    start = trio.current_time()
    got = await retrying(
        op, what="acquire of partition 2", url=URL, on_retry=seen.append,  # type: ignore[arg-type]
        base_delay=0.5, max_delay=4.0, rng=random.Random(7),
    )  # fmt: skip
    assert got == "ok" and len(calls) == 6
    rng = random.Random(7)
    expected = [backoff_delay(n, base_delay=0.5, max_delay=4.0, rng=rng) for n in range(1, 6)]
    assert [r.delay for r in seen] == expected
    assert [r.attempt for r in seen] == [1, 2, 3, 4, 5]
    assert trio.current_time() - start == pytest.approx(sum(expected))
    assert "unavailable (loading its data)" in str(seen[3])
    assert str(seen[0]) == (
        f"redis unavailable, retrying acquire of partition 2 in {expected[0]:.1f} s "
        "(attempt 1): unavailable ([Errno 111] Connection refused)"
    )


async def test_gives_up_after_attempts(autojump_clock: trio.testing.MockClock) -> None:
    calls, op = flaky([ConnectionRefusedError("refused")] * 5)
    with pytest.raises(RedisUnavailable, match="unavailable \\(refused\\)") as info:
        await retrying(op, what="x", url=URL, attempts=3, rng=random.Random(0))  # type: ignore[arg-type]
    assert len(calls) == 3
    assert isinstance(info.value, RedisError)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


async def test_other_errors_are_not_retried(autojump_clock: trio.testing.MockClock) -> None:
    calls, op = flaky([ValueError("bad"), ConnectionRefusedError("refused")])
    with pytest.raises(ValueError, match="bad"):
        await retrying(op, what="x", url=URL)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_bad_backoff_settings_are_refused() -> None:
    async def op() -> None:
        pass

    with pytest.raises(ValueError, match=r"need 0 < base_delay <= max_delay, got 2\.0 and 1\.0"):
        trio.run(lambda: retrying(op, what="x", url=URL, base_delay=2.0, max_delay=1.0))
    with pytest.raises(ValueError, match="attempts must be at least 1, got 0"):
        trio.run(lambda: retrying(op, what="x", url=URL, attempts=0))


def test_what_is_unavailable() -> None:
    assert unavailable(URL, ValueError("x")) is None
    error = unavailable(URL, ConnectionResetError("reset"))
    assert isinstance(error, RedisUnavailable)
    assert str(error) == f"Redis at {URL}: unavailable (reset)"
    # a builtin ConnectionError too, so code retrying on OSError retries on it
    assert isinstance(error, ConnectionError) and isinstance(error, RedisError)
    assert unavailable(URL, error) is error


async def test_a_stopped_server_raises_unavailable_then_the_retry_goes_on_after_its_restart(
    tmp_path: Path,
) -> None:
    """With persistence: the fencing counter survives the restart, so tokens go on increasing."""
    server = start_redis(tmp_path, persistence=True)
    seen: list[Retry] = []
    try:
        async with open_redis(server.url) as client:
            table = LeaseTable(client, "t", "g", "w", partitions=1, lease_ms=1000)
            first = await table.acquire(0, 1000)
            assert first is not None
            stop_redis(server)
            with pytest.raises(RedisUnavailable, match=f"Redis at {server.url}: unavailable"):
                await table.renew(first, 1500)

            def restart_on_first_retry(retry: Retry) -> None:
                nonlocal server
                seen.append(retry)
                if len(seen) == 1:
                    server = restart_redis(server, tmp_path, persistence=True)

            with trio.fail_after(GUARD):
                second = await retrying(
                    lambda: table.acquire(0, 5000), what="acquire", url=server.url,
                    on_retry=restart_on_first_retry, base_delay=0.001, max_delay=0.01,
                    rng=random.Random(3),
                )  # fmt: skip
            assert second is not None and second.token == first.token + 1
            assert seen and all("unavailable" in str(r) for r in seen)
    finally:
        stop_redis(server)


def start_loading(folder: Path, port: int, key_load_delay_us: int) -> subprocess.Popen[bytes]:
    """A persistent redis-server on ``port`` that loads each key slowly; returned once it listens.

    It answers ``-LOADING`` until its data is in (``key-load-delay`` is Redis's
    own knob for testing this; while it loads an AOF it serves clients every
    1024 commands, so the handshake and the first tries get through).
    """
    binary = shutil.which("redis-server")
    assert binary is not None
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    args += ["--appendonly", "yes", "--key-load-delay", str(key_load_delay_us)]
    args += ["--loading-process-events-interval-bytes", "1024"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):  # bounded: each try waits on a connect, not the clock
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return process
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.01)
    process.kill()
    raise RuntimeError("redis-server did not listen")


async def test_a_loading_server_is_unavailable_until_its_data_is_in(tmp_path: Path) -> None:
    server = start_redis(tmp_path, persistence=True)
    keys = 10_000
    async with open_redis(server.url) as client:
        table = LeaseTable(client, "t", "g", "w", partitions=1, lease_ms=1000)
        first = await table.acquire(0, 1000)
        assert first is not None
        fill = "for i = 1, ARGV[1] do redis.call('SET', 'k' .. i, 'v') end"
        await client.eval(fill, keys=[], args=[keys])  # one SET a line in the AOF
    stop_redis(server)
    process = start_loading(tmp_path, server.port, key_load_delay_us=1)  # a sleep per key: ~1 s
    seen: list[Retry] = []
    try:
        async with open_redis(server.url) as client:
            table = LeaseTable(client, "t", "g", "w", partitions=1, lease_ms=1000)
            with trio.fail_after(GUARD):
                second = await retrying(
                    lambda: table.acquire(0, 5000), what="acquire", url=server.url,
                    on_retry=seen.append, base_delay=0.01, max_delay=0.05,
                    rng=random.Random(5),
                )  # fmt: skip
            assert second is not None and second.token == first.token + 1
            assert await client.dbsize() == keys + 2  # and the lease and its counter
        assert seen and all("unavailable (loading its data)" in str(r) for r in seen), seen
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_docstring_examples() -> None:
    import doctest

    from partita.actors import _retry

    result = doctest.testmod(_retry, raise_on_error=False, verbose=False)
    assert result.failed == 0 and result.attempted >= 5
