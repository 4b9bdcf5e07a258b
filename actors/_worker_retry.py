"""A worker's calls to Redis, retried while Redis is unreachable or loading.

Every Redis call of a worker (its reads, writes, commits and lease steps) goes
through one :class:`RedisRetry`: a call that fails because Redis cannot be
reached (connection refused or reset, a timeout, ``LOADING`` while a restarted
server reads its append-only file) is tried again after a capped exponential
backoff with jitter (:func:`actors._retry.retrying`), until it succeeds.  What
it has seen is counted, so the worker's stats and progress line can say
"Redis unavailable, retrying".  Any other error goes to the caller at once.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

from ._retry import Retry, retrying, unavailable

__all__ = ["RedisRetry", "is_unavailable"]

_T = TypeVar("_T")


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means Redis is (for now) out of reach, so the call may be retried."""
    return unavailable("redis", exc) is not None


@attrs.define(eq=False)
class RedisRetry:
    """A worker's retries of its Redis calls: :func:`actors._retry.retrying`, counted.

    Capped exponential backoff with full jitter (each pause uniform in
    ``0 .. min(max_delay, first_delay * 2 ** (n - 1))``).

    Example:
        >>> import trio
        >>> retry = RedisRetry(first_delay=0.01)
        >>> async def main() -> None:
        ...     async def ping() -> str:
        ...         return "PONG"
        ...     print(await retry.call(ping, what="PING"), retry.retries)
        >>> trio.run(main)
        PONG 0

    Args:
        first_delay: the first backoff ceiling (seconds).
        max_delay: the cap of the backoff ceiling (seconds).
        seed: seeds the jitter (tests); ``None``: the system's randomness.
        url: the server, for the errors that do not name it.
    """

    first_delay: float = attrs.field(default=0.05, validator=attrs.validators.gt(0))
    max_delay: float = attrs.field(default=2.0, validator=attrs.validators.gt(0))
    seed: int | None = None
    url: str | None = None
    retries: int = attrs.field(init=False, default=0)
    failing: int = attrs.field(init=False, default=0)
    last_error: str | None = attrs.field(init=False, default=None)
    _random: random.Random = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @property
    def unavailable(self) -> bool:
        """Whether some call is waiting for Redis to come back now."""
        return self.failing > 0

    async def call(self, op: Callable[[], Awaitable[_T]], *, what: str) -> _T:
        """``await op()``, again and again while it fails with Redis unavailable."""
        failed = False

        def count(retry: Retry) -> None:
            nonlocal failed
            if not failed:
                failed = True
                self.failing += 1
            self.retries += 1
            self.last_error = str(retry)

        try:
            return await retrying(
                op,
                what=what,
                url=self.url,
                on_retry=count,
                base_delay=self.first_delay,
                max_delay=self.max_delay,
                rng=self._random,
            )
        finally:
            if failed:
                self.failing -= 1
