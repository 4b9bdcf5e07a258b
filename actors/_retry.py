"""Redis unavailable for now: the retryable error and the backoff that waits it out.

:class:`RedisUnavailable` is what a Redis call raises when the server cannot
answer for now: the connection is refused, reset or times out, or the server is
still loading its data after a restart (``LOADING``).  :func:`retrying` calls an
operation again after each such failure, waiting a capped exponential backoff
with full jitter (AWS's "Exponential Backoff And Jitter": a delay drawn
uniformly from ``0 .. min(max_delay, base_delay * 2**n)``), so that many workers
losing one server do not come back in step.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import attrs
import trio

from ._redis import RedisError

__all__ = [
    "RedisUnavailable",
    "Retry",
    "backoff_delay",
    "retrying",
    "translating",
    "unavailable",
    "url_of",
]

T = TypeVar("T")


class RedisUnavailable(RedisError, ConnectionError):
    """Raised when Redis cannot answer for now: refused, reset, timed out, or loading.

    Worth retrying (:func:`retrying`): a restarted server answers again.  It is
    also a builtin :class:`ConnectionError` (so an ``OSError``), so code that
    retries on those retries on it too.
    """


def unavailable(url: str, exc: BaseException) -> RedisUnavailable | None:
    """``exc`` as a :class:`RedisUnavailable` if it means Redis is away for now, else ``None``.

    Looks through an exception group of one (coredis's task group wraps errors).

    Example:
        >>> str(unavailable("redis://127.0.0.1:6379", ConnectionRefusedError("refused")))
        'Redis at redis://127.0.0.1:6379: unavailable (refused)'
        >>> unavailable("redis://127.0.0.1:6379", ValueError("no")) is None
        True
    """
    import coredis.exceptions

    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, RedisUnavailable):
        return exc
    if isinstance(exc, coredis.exceptions.BusyLoadingError):
        return RedisUnavailable(url, "unavailable (loading its data)")
    if isinstance(exc, OSError | TimeoutError | coredis.exceptions.ConnectionError):
        return RedisUnavailable(url, f"unavailable ({exc or type(exc).__name__})")
    return None


def url_of(client: Any) -> str:
    """The ``redis://host:port`` a coredis client talks to, for error messages."""
    location = getattr(getattr(client, "connection_pool", None), "location", None)
    return f"redis://{location}" if location else "redis"


@contextmanager
def translating(client: Any) -> Iterator[None]:
    """Raise :class:`RedisUnavailable` for a failure inside that means Redis is away."""
    try:
        yield
    except BaseException as exc:
        error = unavailable(url_of(client), exc)
        if error is None or error is exc:
            raise
        raise error from exc


@attrs.frozen
class Retry:
    """One retry :func:`retrying` is about to wait for (what its ``on_retry`` gets).

    Example:
        >>> error = RedisUnavailable("redis://127.0.0.1:6379", "unavailable (refused)")
        >>> str(Retry("commit partition 3", 2, 1.6, error))
        'redis unavailable, retrying commit partition 3 in 1.6 s (attempt 2): unavailable (refused)'
    """

    what: str
    attempt: int
    """How many attempts failed so far (1 after the first)."""
    delay: float
    """Seconds until the next attempt."""
    error: RedisUnavailable

    def __str__(self) -> str:
        return (
            f"redis unavailable, retrying {self.what} in {self.delay:.1f} s "
            f"(attempt {self.attempt}): {self.error.message}"
        )


def backoff_delay(
    failures: int, *, base_delay: float, max_delay: float, rng: random.Random
) -> float:
    """The wait after ``failures`` failures (full jitter under a capped exponential).

    Uniform in ``0 .. min(max_delay, base_delay * 2 ** (failures - 1))``.

    Example:
        >>> rng = random.Random(1)
        >>> delays = [backoff_delay(n, base_delay=0.1, max_delay=2.0, rng=rng) for n in (1, 6, 30)]
        >>> [round(d, 3) for d in delays]
        [0.013, 1.695, 1.528]
    """
    ceiling = min(max_delay, base_delay * 2.0 ** min(failures - 1, 64))
    return rng.uniform(0.0, ceiling)


def _check_attempts(instance: object, attribute: object, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"attempts must be at least 1, got {value}")


async def retrying(
    op: Callable[[], Awaitable[T]],
    *,
    what: str,
    url: str | None = None,
    on_retry: Callable[[Retry], None] | None = None,
    base_delay: float = 0.1,
    max_delay: float = 5.0,
    attempts: int | None = None,
    rng: random.Random | None = None,
) -> T:
    """``await op()``, again after each time Redis was unavailable, with backoff and jitter.

    Each failure that :func:`unavailable` recognises is reported to
    ``on_retry`` (say, to show "redis unavailable, retrying in 1.6 s" in
    progress and stats), then waited out with :func:`trio.sleep` (so a
    ``MockClock`` controls it) for :func:`backoff_delay`.  Any other error
    propagates at once.  ``op`` must be safe to repeat.  A fenced commit is
    not: if its reply was lost after it ran, a retry appends its rows again,
    so look at ``load_committed`` before retrying one.

    Args:
        op: the operation; called once per attempt.
        what: what it does, for the report (``"commit of partition 3"``).
        url: the server, for errors that do not name it (default ``"redis"``).
        on_retry: told of each retry before its wait.
        base_delay: the first backoff ceiling, in seconds.
        max_delay: the cap of the backoff ceiling, in seconds.
        attempts: give up after this many (``None``: retry for ever, as a
            worker waiting for its server does).
        rng: the jitter's source (seeded in tests); default a fresh
            ``random.Random()``.

    Raises:
        RedisUnavailable: still unavailable after ``attempts`` attempts.

    Example:
        >>> async def ping() -> str:
        ...     return "PONG"
        >>> trio.run(lambda: retrying(ping, what="ping"))
        'PONG'
    """
    if base_delay <= 0 or max_delay < base_delay:
        raise ValueError(f"need 0 < base_delay <= max_delay, got {base_delay} and {max_delay}")
    _check_attempts(None, None, attempts)
    jitter = random.Random() if rng is None else rng
    failures = 0
    while True:
        try:
            return await op()
        except BaseException as exc:
            error = unavailable(url or "redis", exc)
            if error is None:
                raise
            failures += 1
            if attempts is not None and failures >= attempts:
                raise error from exc
        delay = backoff_delay(failures, base_delay=base_delay, max_delay=max_delay, rng=jitter)
        if on_retry is not None:
            on_retry(Retry(what, failures, delay, error))
        await trio.sleep(delay)
