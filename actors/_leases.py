"""Who owns which partition of a Redis topic: leases, fencing tokens, the fenced commit.

Interface changes against the brief shared with the worker (additions only):

- ``LeaseTable.release`` returns ``True`` if it deleted the lease, ``False`` if
  the lease was no longer this one (callers may ignore it, as for ``None``).
- ``acquire`` also takes a live lease held under the worker's *own* name (a
  worker restarted with the same ``--name``): with a new token, so the old
  process, if it still runs, is fenced.
- ``commit`` is refused also once the lease was released (not only once another
  worker took it): the lease hash must still carry the token.
- :class:`RedisUnavailable`, :class:`Retry` and :func:`retrying` live in
  ``_retry.py`` and are re-exported here; ``retrying`` takes ``url`` (for the
  error) and ``on_retry`` (each :class:`Retry`, to show in progress and stats).
  Every call here raises :class:`RedisUnavailable` when Redis is away.
- Key names: :func:`lease_key`, :func:`token_key`, :func:`state_key`,
  :func:`output_key`, :func:`members_key`; :func:`wall_clock_ms` is the clock
  workers share.

Keys of topic ``T``, consumer group ``G`` and partition ``p`` (all but the
membership share the hash tag ``{T:p}``, one Redis Cluster slot):

- ``{T:p}:lease:G``: hash ``worker``, ``token``, ``expires_ms``;
- ``{T:p}:token:G``: the fencing counter, INCR'd for every new owner, never reset;
- ``{T:p}:state:G``: hash ``token``, ``position``, ``state``, ``done``;
- ``{T:p}:out:O``: the group's output to topic ``O`` from partition ``p``;
- ``partita:group:{T}:G``: hash worker name -> heartbeat expiry (ms).

Every call is one round trip and takes the time as ``now_ms`` (wall-clock
milliseconds of the calling worker, :func:`wall_clock_ms`), never the server's,
so tests drive a virtual clock against a real server.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

import attrs

from ._lease_scripts import ACQUIRE, COMMIT, HEARTBEAT, RELEASE, RENEW
from ._retry import RedisUnavailable, Retry, retrying, translating

__all__ = [
    "Committed",
    "Lease",
    "LeaseTable",
    "RedisUnavailable",
    "Retry",
    "assignment",
    "commit",
    "fair_share",
    "lease_key",
    "load_committed",
    "members_key",
    "output_key",
    "retrying",
    "state_key",
    "token_key",
    "wall_clock_ms",
]


def lease_key(topic: str, group: str, partition: int) -> str:
    """The lease hash of ``topic``'s ``partition`` for ``group``."""
    return f"{{{topic}:{partition}}}:lease:{group}"


def token_key(topic: str, group: str, partition: int) -> str:
    """The fencing counter of ``topic``'s ``partition`` for ``group``."""
    return f"{{{topic}:{partition}}}:token:{group}"


def state_key(topic: str, group: str, partition: int) -> str:
    """The committed state hash of ``topic``'s ``partition`` for ``group``."""
    return f"{{{topic}:{partition}}}:state:{group}"


def output_key(topic: str, partition: int, output_topic: str) -> str:
    """The stream of ``output_topic`` written from ``topic``'s ``partition``."""
    return f"{{{topic}:{partition}}}:out:{output_topic}"


def members_key(topic: str, group: str) -> str:
    """The membership hash of ``group`` on ``topic`` (worker -> heartbeat expiry ms)."""
    return f"partita:group:{{{topic}}}:{group}"


def wall_clock_ms() -> int:
    """Milliseconds since the epoch: the one clock every worker's leases are in."""
    return time.time_ns() // 1_000_000


@attrs.frozen
class _Script:
    """A Lua script called by SHA (one round trip), loaded again if the server lost it."""

    source: str
    sha: str = attrs.field(init=False)

    @sha.default
    def _sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()

    async def __call__(self, client: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        from coredis.exceptions import NoScriptError

        with translating(client):
            try:
                return await client.evalsha(self.sha, keys=keys, args=args)
            except NoScriptError:  # a new or restarted server
                await client.script_load(self.source)
                return await client.evalsha(self.sha, keys=keys, args=args)


_ACQUIRE = _Script(ACQUIRE)
_RENEW = _Script(RENEW)
_RELEASE = _Script(RELEASE)
_HEARTBEAT = _Script(HEARTBEAT)
_COMMIT = _Script(COMMIT)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@attrs.frozen
class Lease:
    """A worker's lease on one partition.

    Example:
        >>> Lease(partition=3, token=7, expires_ms=1_700_000_010_000)
        Lease(partition=3, token=7, expires_ms=1700000010000)
    """

    partition: int = attrs.field(validator=attrs.validators.ge(0))
    token: int = attrs.field(validator=attrs.validators.ge(1))
    """Fencing token: strictly increases with every new owner of the partition."""
    expires_ms: int


def _check_positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.define
class LeaseTable:
    """The lease protocol of one worker of group ``group`` on topic ``topic``.

    A lease lasts ``lease_ms`` from its last acquire or renew; a worker renews
    well before (every ``lease_ms / 3``, say).  Every method is one round trip
    to Redis and takes the time as ``now_ms``.

    Example (needs a Redis server, so not run here)::

        table = LeaseTable(client, "orders", "totals", "w1", partitions=8)
        members = await table.heartbeat(wall_clock_ms())
        for p in fair_share(members, 8, "w1"):
            lease = await table.acquire(p, wall_clock_ms())
    """

    client: Any
    topic: str
    group: str
    worker: str
    partitions: int = attrs.field(validator=_check_positive)
    lease_ms: int = attrs.field(default=10_000, validator=_check_positive)

    def _partition(self, partition: int) -> int:
        if not 0 <= partition < self.partitions:
            raise ValueError(f"partition {partition} is not in 0..{self.partitions - 1}")
        return partition

    async def heartbeat(self, now_ms: int) -> tuple[str, ...]:
        """Announce this worker until ``now_ms + lease_ms``; the live members, sorted.

        Members whose heartbeat expired are dropped from the group.
        """
        live = await _HEARTBEAT(
            self.client, [members_key(self.topic, self.group)], [self.worker, now_ms, self.lease_ms]
        )
        return tuple(sorted(_text(m) for m in live))

    async def leave(self) -> None:
        """Remove this worker from the group's members (its leases are left alone)."""
        with translating(self.client):
            await self.client.hdel(members_key(self.topic, self.group), [self.worker])

    async def acquire(self, partition: int, now_ms: int) -> Lease | None:
        """Take ``partition``'s lease if it is free or expired, with a new fencing token.

        ``None`` if another worker holds a live lease on it.  A live lease under
        this worker's own name is taken over too (a restarted worker).
        """
        p = self._partition(partition)
        keys = [lease_key(self.topic, self.group, p), token_key(self.topic, self.group, p)]
        got = await _ACQUIRE(self.client, keys, [self.worker, now_ms, self.lease_ms])
        if got is None:
            return None
        token, expires = got
        return Lease(p, int(token), int(expires))

    async def renew(self, lease: Lease, now_ms: int) -> Lease | None:
        """``lease`` extended to ``now_ms + lease_ms`` if it is still ours; ``None`` if lost.

        Lost means another worker acquired it since (a new token) or it was
        released.  A lease that expired but that nobody took is renewed.
        """
        p = self._partition(lease.partition)
        got = await _RENEW(
            self.client,
            [lease_key(self.topic, self.group, p)],
            [self.worker, lease.token, now_ms, self.lease_ms],
        )
        return None if got is None else attrs.evolve(lease, expires_ms=int(got))

    async def release(self, lease: Lease) -> bool:
        """Delete ``lease`` if it is still ours, so another worker can acquire at once.

        Returns whether it was (``False``: it had been taken over or released).
        """
        p = self._partition(lease.partition)
        done = await _RELEASE(
            self.client, [lease_key(self.topic, self.group, p)], [self.worker, lease.token]
        )
        return bool(done)

    async def owners(self, now_ms: int) -> dict[int, tuple[str, int]]:
        """Partition -> ``(worker, token)`` of every live lease (one pipelined round trip)."""
        with translating(self.client):
            async with self.client.pipeline(transaction=False) as pipe:
                requests = [
                    pipe.hmget(
                        lease_key(self.topic, self.group, p), ["worker", "token", "expires_ms"]
                    )
                    for p in range(self.partitions)
                ]
            replies = [await r for r in requests]
        found: dict[int, tuple[str, int]] = {}
        for p, (worker, token, expires) in enumerate(replies):
            if worker is not None and int(expires) > now_ms:
                found[p] = (_text(worker), int(token))
        return found


def _rank(member: str, partition: int) -> bytes:
    return hashlib.blake2b(f"{member}\0{partition}".encode(), digest_size=8).digest()


def assignment(members: Sequence[str], partitions: int) -> dict[int, str]:
    """Every partition's owner among ``members``: balanced, deterministic, stable-ish.

    Rendezvous hashing under a capacity: each partition goes to the member that
    ranks it highest among those not yet full, where every member may take
    ``partitions // len(members)`` and the first leftovers one more.  So the
    shares differ by at most one, and a member joining or leaving moves few
    partitions besides its own share.

    Example:
        >>> owners = assignment(["a", "b", "c"], 8)
        >>> sorted(owners) == list(range(8))
        True
        >>> sorted(sum(1 for o in owners.values() if o == m) for m in "abc")
        [2, 3, 3]
    """
    if partitions < 0:
        raise ValueError(f"partitions must be at least 0, got {partitions}")
    names = sorted(set(members))
    if not names:
        return {}
    base, extra = divmod(partitions, len(names))
    counts = dict.fromkeys(names, 0)
    owners: dict[int, str] = {}
    ranked = {p: sorted(names, key=lambda m: _rank(m, p), reverse=True) for p in range(partitions)}
    left: list[int] = []
    for p in range(partitions):
        for m in ranked[p]:
            if counts[m] < base:
                owners[p] = m
                counts[m] += 1
                break
        else:
            left.append(p)
    bumped: set[str] = set()
    for p in left:  # len(left) == extra: each goes to a different member
        m = next(m for m in ranked[p] if m not in bumped)
        owners[p] = m
        bumped.add(m)
    assert len(bumped) <= extra
    return owners


def fair_share(members: Sequence[str], partitions: int, me: str) -> frozenset[int]:
    """The partitions ``me`` should own among ``members`` (see :func:`assignment`).

    Example:
        >>> members = ["a", "b"]
        >>> fair_share(members, 4, "a") | fair_share(members, 4, "b") == set(range(4))
        True
        >>> fair_share(members, 4, "a") & fair_share(members, 4, "b")
        frozenset()
    """
    return frozenset(p for p, m in assignment(members, partitions).items() if m == me)


@attrs.frozen
class Committed:
    """What the last successful :func:`commit` of a partition wrote."""

    token: int
    position: str | None
    """The last input entry id processed."""
    state: bytes | None
    """The runtime's state codec's bytes."""
    done: bool
    """The input partition ended and everything was flushed."""
    commit_id: str | None = attrs.field(default=None, eq=False, kw_only=True)
    """The ``commit_id`` of that commit (``None``: written before commits had one); not
    compared: it names the attempt, not what it wrote."""


async def load_committed(client: Any, topic: str, group: str, partition: int) -> Committed | None:
    """The partition's committed state, ``None`` if nothing was ever committed."""
    with translating(client):
        token, position, state, done, commit_id = await client.hmget(
            state_key(topic, group, partition), ["token", "position", "state", "done", "commit"]
        )
    if token is None:
        return None
    return Committed(
        token=int(token),
        position=None if position is None else _text(position),
        state=state,
        done=done == b"1",
        commit_id=None if commit_id is None else _text(commit_id),
    )


async def commit(
    client: Any,
    topic: str,
    group: str,
    lease: Lease,
    *,
    commit_id: str,
    output_topic: str | None,
    entries: Sequence[dict[bytes, bytes]],
    position: str,
    state: bytes,
    done: bool,
) -> bool:
    """Append ``entries`` to the output and write the state, atomically, if ``lease`` holds.

    One Lua script: if the partition's fencing counter or its lease no longer
    carries ``lease.token`` (another worker acquired it, or it was released),
    nothing is written and the result is ``False``.  Otherwise every entry is
    XADDed to :func:`output_key` in order, the state hash gets ``token``,
    ``commit`` (``commit_id``), ``position``, ``state`` and ``done``, and the
    result is ``True``.  Lease expiry alone does not refuse a commit: until
    another worker acquires the partition, the token is still the newest.

    Idempotent: a commit whose ``commit_id`` the state already holds with
    ``lease.token`` is one that went through before (a retry after its reply
    was lost, by coredis's retry policy or the caller's): the result is
    ``True`` and nothing is written again, even if the partition has another
    owner since (who has not committed yet).  So ``commit_id`` must name one
    commit: the same for its retries, another for the next commit.

    Raises:
        ValueError: ``entries`` without an ``output_topic``.
    """
    if entries and output_topic is None:
        raise ValueError("entries need an output_topic")
    p = lease.partition
    keys = [lease_key(topic, group, p), token_key(topic, group, p), state_key(topic, group, p)]
    if output_topic is not None:
        keys.append(output_key(topic, p, output_topic))
    args: list[Any] = [lease.token, commit_id, position, state, "1" if done else "0"]
    args.append(len(entries))
    for fields in entries:
        args.append(len(fields))
        for name, value in fields.items():
            args += (name, value)
    return bool(await _COMMIT(client, keys, args))
