"""Redis Streams topics: one stream per partition, one entry per batch of records.

Layout of a topic ``T`` with ``N`` partitions (the names are
:func:`partition_key` and :func:`meta_key`):

- ``{T:p}`` for ``p`` in ``0..N-1``: partition ``p``'s stream.  Everything a
  later worker keeps for partition ``p`` (lease, state, position) goes under
  the same hash tag ``{T:p}``, so it lives in one Redis Cluster slot and one
  MULTI/EXEC or Lua script can commit it atomically.
- ``partita:topic:{T}``: a hash with ``partitions`` (``N``, fixed once made),
  ``key`` (the field records were routed by, when produced with a key) and, for
  an output topic written by workers (``partita worker``), ``source``: the input
  topic ``S``, whose partition ``p`` wrote the stream ``{S:p}:out:T`` (read in
  place of ``{T:p}``).

An entry holds a batch of records (JSON-able maps): field ``t``, a table (runs
of records with the same fields, column by column), or ``r``, a msgpack array
of maps (see :mod:`actors._redis_entries`).  A partition's end (a bounded
topic) is an entry with field ``end``: it is in the stream's order, so a
reader at the end marker has read all.
A position in a partition is an entry id (``"1700000000000-0"``); ``"0-0"``
is before the first entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import attrs

from partita.runtime import BadRecord, Batch, DeadLetter, PartitaError, Record, Sink
from partita.sql import partition_of as remember
from partita.sql import stable_hash

from ._redis_entries import END, decode_entry, encode_entry
from ._sources import ErrorPolicy, RecordSource, _check_policy, single_error

__all__ = [
    "RedisError",
    "RedisStreamSink",
    "RedisStreamSource",
    "decode_entry",
    "encode_entry",
    "meta_key",
    "open_redis",
    "partition_key",
    "partition_of",
    "topic_partitions",
]

START = "0-0"


class RedisError(PartitaError):
    """Raised when Redis cannot be reached or a topic cannot be used, naming the URL."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(url, message)
        self.url = url
        self.message = message

    def __str__(self) -> str:
        return f"Redis at {self.url}: {self.message}"


def partition_key(topic: str, partition: int) -> str:
    """The stream key of ``topic``'s ``partition`` (hash tag ``{topic:partition}``)."""
    return f"{{{topic}:{partition}}}"


def meta_key(topic: str) -> str:
    """The hash holding ``topic``'s partition count."""
    return f"partita:topic:{{{topic}}}"


def partition_of(value: Any, partitions: int) -> int:
    """The partition of a key value: :func:`partita.sql.stable_hash` modulo ``partitions``.

    The in-process router's hash (CRC-32 of the canonical key's repr), so it is
    the same in every process and machine (unlike Python's salted ``hash``) and
    a topic's partition ``p`` holds the keys the in-process partition ``p`` would.
    """
    return stable_hash(value) % partitions


def _describe(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"


def open_redis(url: str) -> Any:
    """A coredis client for ``url`` (``redis://host:port/db``); use as ``async with``."""
    import coredis

    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0) if parts.path.strip("/").isdigit() else 0
    return coredis.Redis(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=db,
        username=parts.username,
        password=parts.password,
        decode_responses=False,
        connect_timeout=5.0,
    )


def _unreachable(url: str, exc: BaseException) -> RedisError:
    return RedisError(_describe(url), f"cannot connect ({exc or type(exc).__name__})")


def _translated(url: str, exc: BaseException) -> BaseException:
    """What a failure inside a coredis client means here (its task group wraps errors)."""
    import coredis.exceptions

    if isinstance(exc, BaseExceptionGroup):
        exc = single_error(exc)
    if isinstance(exc, OSError | ConnectionError | coredis.exceptions.ConnectionError):
        return _unreachable(url, exc)
    return exc


async def topic_partitions(client: Any, topic: str) -> int | None:
    """``topic``'s partition count, ``None`` if it does not exist."""
    value = await client.hget(meta_key(topic), "partitions")
    return None if value is None else int(value)


async def ensure_topic(
    client: Any, url: str, topic: str, partitions: int, key: str | None = None
) -> None:
    """Create ``topic`` with ``partitions`` (and the ``key`` field it is routed by), or
    check an existing one has that many (and that key)."""
    meta = meta_key(topic)
    await client.hsetnx(meta, "partitions", str(partitions))
    have = await topic_partitions(client, topic)
    if have != partitions:
        raise RedisError(
            _describe(url),
            f"topic {topic!r} has {have} partitions, not {partitions}",
        )
    if key is None or partitions == 1:
        return
    await client.hsetnx(meta, "key", key)
    routed = await client.hget(meta, "key")
    if routed is not None and routed.decode() != key:
        raise RedisError(
            _describe(url), f"topic {topic!r} is partitioned by {routed.decode()!r}, not {key!r}"
        )


async def stream_keys(client: Any, topic: str, partitions: int) -> list[str]:
    """The stream key of each partition of ``topic``: ``{T:p}``, or for an output topic
    of workers (meta ``source`` = ``S``) ``{S:p}:out:T``."""
    source = await client.hget(meta_key(topic), "source")
    if source is None:
        return [partition_key(topic, p) for p in range(partitions)]
    # actors._leases.output_key's layout (not imported: _leases imports this module)
    return [f"{partition_key(source.decode(), p)}:out:{topic}" for p in range(partitions)]


@attrs.define(eq=False)
class RedisStreamSource(RecordSource):
    """Reads the partitions of a Redis Streams topic, a batch of entries at a time.

    Each entry is a batch of records (see ``docs/operations.md`` "Redis
    topics").  With ``until_end`` the source stops once every partition it
    reads has reached its end marker; otherwise it follows the topic.  The
    position is the last entry id read in each partition, so the source is
    resumable: a checkpoint's recovery reads on after it.

    Example:
        >>> src = RedisStreamSource("in", "redis://127.0.0.1:6379", "orders")
        >>> src.resumable
        True

    Args:
        name: unique within its graph.
        url: ``redis://host:port[/db]``.
        topic: the topic's name.
        partitions: the partitions to read (default all of them).
        start: where to start: an entry id for every partition (default
            ``"0-0"``, from the start) or ``"$"`` (only new entries).
        until_end: stop at the end markers (a bounded topic).
        on_error: bad entries: ``"skip"``, ``"dead-letter"`` or ``"fail"``.
        block_ms: how long one XREAD waits for new entries.

    Raises:
        RedisError: Redis unreachable, or the topic does not exist.

    .. versionadded:: 0.1
    """

    url: str
    topic: str
    partitions: Sequence[int] | None = attrs.field(default=None, kw_only=True)
    start: str = attrs.field(default=START, kw_only=True)
    until_end: bool = attrs.field(default=True, kw_only=True)
    on_error: ErrorPolicy = attrs.field(default="skip", kw_only=True, validator=_check_policy)
    block_ms: int = attrs.field(default=1000, kw_only=True)
    resumable = True
    entries_read: int = attrs.field(init=False, default=0)
    _positions: dict[int, str] = attrs.field(init=False, factory=dict)
    _ended: set[int] = attrs.field(init=False, factory=set)
    _keys: list[str] = attrs.field(init=False, factory=list)

    @property
    def server(self) -> str:
        return _describe(self.url)

    def describe_input(self) -> str:
        return f"{self.server} topic {self.topic!r}"

    def describe_offset(self, offset: int) -> str:
        return f"at record {offset} of topic {self.topic!r} on {self.server}"

    def snapshot_state(self) -> object:
        """The last entry id read per partition, and the partitions ended."""
        return {
            "positions": {str(p): i for p, i in self._positions.items()},
            "ended": sorted(self._ended),
        }

    def restore_state(self, state: object) -> None:
        saved: Any = state
        self._positions = {int(p): i for p, i in saved["positions"].items()}
        self._ended = set(saved["ended"])

    async def produce(self) -> None:
        try:
            async with open_redis(self.url) as client:
                await self._read(client)
        except BaseException as exc:
            error = _translated(self.url, exc)
            if error is exc:
                raise
            raise error from exc

    async def _first_position(self, client: Any, partition: int) -> str:
        """``start``, with ``"$"`` made the partition's last entry id now (or ``"0-0"``)."""
        if self.start != "$":
            return self.start
        last = await client.xrevrange(self._keys[partition], count=1)
        return _entry_id(last[0].identifier) if last else START

    async def _read(self, client: Any) -> None:
        count = await topic_partitions(client, self.topic)
        if count is None:
            raise RedisError(self.server, f"no topic {self.topic!r}")
        wanted = list(range(count)) if self.partitions is None else list(self.partitions)
        self._keys = await stream_keys(client, self.topic, count)
        for p in wanted:
            if p not in self._positions:
                self._positions[p] = await self._first_position(client, p)
        while True:
            live = [p for p in wanted if p not in self._ended]
            if not live:
                return
            n = max(1, self.batch_size // 256)
            streams = {self._keys[p]: self._positions[p] for p in live}
            reply = await client.xread(streams, count=n, block=self.block_ms)
            if not reply:
                if self.idle_timeout is not None:
                    await self.send_records([])
                continue
            records: list[Record] = []
            dead: list[DeadLetter] = []
            failure: BadRecord | None = None
            by_key = {self._keys[p]: p for p in live}
            for key, entries in reply.items():
                p = by_key[key.decode() if isinstance(key, bytes) else key]
                for entry in entries:
                    ident = entry.identifier
                    ident = ident.decode() if isinstance(ident, bytes) else ident
                    self._positions[p] = ident
                    self.entries_read += 1
                    try:
                        got = decode_entry(entry.field_values)
                    except ValueError as exc:
                        reason = f"partition {p} entry {ident}: {exc}"
                        if self.on_error == "fail":
                            failure = BadRecord(reason, None, self.name)
                            break
                        dead.append(
                            DeadLetter(record={}, reason=reason, offset=None, stage=self.name)
                        )
                        continue
                    if got is None:
                        if not self.until_end:
                            continue  # following: a later producer may append
                        self._ended.add(p)
                        break
                    records.extend(got)
                if failure is not None:
                    break
            await self.send_with_dead_letters(records, dead)
            if failure is not None:
                raise failure


def _entry_id(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _no_key(instance: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and not (isinstance(value, str) and value):
        raise ValueError(f"key must name a field, got {value!r}")


@attrs.define(eq=False)
class RedisStreamSink(Sink):
    """Writes each batch to a Redis Streams topic: one XADD per partition per batch.

    One client for the run (:meth:`open_session`), each batch's XADDs in one
    pipelined round trip.

    With ``key`` rows go to partition :func:`partition_of` their ``key`` field
    (a row without it: partition of ``null``); without, all to partition 0.
    No MAXLEN is applied.  At the end of the stream (``close=True``) each
    partition gets its end marker, so readers with ``until_end`` stop.

    Example:
        >>> sink = RedisStreamSink("out", "redis://127.0.0.1:6379", "totals", partitions=4, key="k")

    Args:
        name: unique within its graph.
        url: ``redis://host:port[/db]``.
        topic: the topic's name; made if missing, else its partition count must
            be ``partitions``.
        partitions: how many partitions the topic has.
        key: the field rows are routed by.
        close: mark every partition's end when the stream ends.

    Raises:
        RedisError: Redis unreachable, or the topic has another partition count.

    .. versionadded:: 0.1
    """

    url: str
    topic: str
    partitions: int = attrs.field(default=1, kw_only=True, validator=attrs.validators.ge(1))
    key: str | None = attrs.field(default=None, kw_only=True, validator=_no_key)
    close: bool = attrs.field(default=True, kw_only=True)
    rows_written: int = attrs.field(init=False, default=0)
    _checked: bool = attrs.field(init=False, default=False)
    _client: Any = attrs.field(init=False, default=None)
    _partition_cache: dict[Any, int] = attrs.field(init=False, factory=dict)

    def open_session(self) -> AbstractAsyncContextManager[object]:
        """One client for the sink's run: every batch's XADDs go over its connection."""
        return self._session()

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[None]:
        try:
            async with open_redis(self.url) as client:
                self._client = client
                try:
                    yield
                finally:
                    self._client = None
        except BaseException as exc:
            error = _translated(self.url, exc)
            if error is exc:
                raise
            raise error from exc

    async def _write(self, entries: list[tuple[int, dict[bytes, bytes]]]) -> None:
        """XADD each ``(partition, fields)`` in one round trip, on the run's client.

        coredis clients are bound to the task that entered them: the sink's
        session (:meth:`open_session`) enters one as its run starts, in the task
        that handles its batches, and leaves it as the run ends (completed,
        failed, cancelled or restarted: a restart opens a new one).
        """
        client = self._client
        assert client is not None, "a RedisStreamSink writes inside its session"
        try:
            if not self._checked:
                await ensure_topic(client, self.url, self.topic, self.partitions, self.key)
                self._checked = True
            if not entries:
                return
            async with client.pipeline(transaction=False) as pipe:
                for p, fields in entries:
                    pipe.xadd(partition_key(self.topic, p), fields)
        except BaseException as exc:
            error = _translated(self.url, exc)
            if error is exc:
                raise
            raise error from exc

    async def consume(self, batch: Batch) -> None:
        records = batch.records
        if not records:
            return
        await self._write([(p, encode_entry(rows)) for p, rows in self.route(records).items()])
        self.rows_written += len(records)

    def route(self, records: Iterable[Record]) -> dict[int, list[Record]]:
        """``records`` by partition, in order."""
        key, n = self.key, self.partitions
        if key is None or n == 1:
            return {0: list(records)}
        out: dict[int, list[Record]] = {}
        cache = self._partition_cache  # keys repeat: hash each once (bounded, see remember)
        for r in records:
            value = r.get(key)
            try:
                p = cache[value]
            except KeyError:
                p = remember(cache, value, n)
            except TypeError:  # an unhashable key value (a list, a map)
                p = partition_of(value, n)
            out.setdefault(p, []).append(r)
        return out

    async def flush(self) -> None:
        """At the end of the stream: every partition's end marker (with ``close``)."""
        ends = [(p, {END: b""}) for p in range(self.partitions)] if self.close else []
        await self._write(ends)
