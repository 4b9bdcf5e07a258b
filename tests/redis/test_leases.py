"""The lease protocol and the fenced commit against a real redis-server.

Time is an integer the tests pass as ``now_ms`` (the scripts never read the
server's clock), so expiry is exact and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partita.actors._leases import (
    Committed,
    Lease,
    LeaseTable,
    assignment,
    commit,
    fair_share,
    lease_key,
    load_committed,
    members_key,
    output_key,
    state_key,
    token_key,
)
from partita.actors._redis import encode_entry, open_redis

from .conftest import RedisServer

LEASE = 1000
T0 = 1_700_000_000_000


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Any]:
    async with open_redis(redis_server.url) as client:
        yield client


def table(client: Any, worker: str, partitions: int = 4) -> LeaseTable:
    return LeaseTable(client, "t", "g", worker, partitions=partitions, lease_ms=LEASE)


async def output(client: Any, partition: int = 0) -> list[Any]:
    return [e.field_values for e in await client.xrange(output_key("t", partition, "o"))]


async def test_acquire_renew_release_and_expiry(client: Any) -> None:
    a, b = table(client, "a"), table(client, "b")
    lease = await a.acquire(0, T0)
    assert lease == Lease(0, 1, T0 + LEASE)
    assert await b.acquire(0, T0 + LEASE - 1) is None  # live: refused
    renewed = await a.renew(lease, T0 + 500)
    assert renewed == Lease(0, 1, T0 + 500 + LEASE)
    assert await b.acquire(0, T0 + LEASE) is None  # the renewal counts, not the first expiry
    assert await a.owners(T0 + 600) == {0: ("a", 1)}
    # expired: anyone may take it, with a new token
    taken = await b.acquire(0, T0 + 500 + LEASE)
    assert taken == Lease(0, 2, T0 + 500 + 2 * LEASE)
    assert await a.owners(T0 + 500 + LEASE) == {0: ("b", 2)}
    assert await b.release(taken) is True
    assert await a.owners(T0 + 500 + LEASE) == {}
    again = await a.acquire(0, T0 + 500 + LEASE)  # released: at once, not after expiry
    assert again is not None and again.token == 3


async def test_an_expired_lease_nobody_took_is_still_renewable(client: Any) -> None:
    a = table(client, "a")
    lease = await a.acquire(1, T0)
    assert lease is not None
    assert await a.owners(T0 + LEASE) == {}  # expired
    renewed = await a.renew(lease, T0 + 5 * LEASE)
    assert renewed == Lease(1, lease.token, T0 + 6 * LEASE)


async def test_tokens_strictly_increase_across_owners_and_releases(client: Any) -> None:
    workers = [table(client, w) for w in "abc"]
    tokens = []
    now = T0
    for i in range(9):
        lease = await workers[i % 3].acquire(2, now)
        assert lease is not None
        tokens.append(lease.token)
        if i % 2:
            assert await workers[i % 3].release(lease)
        else:
            now += LEASE  # let it expire
    assert tokens == sorted(set(tokens)) and tokens[0] == 1
    assert int(await client.get(token_key("t", "g", 2))) == tokens[-1]


async def test_the_same_worker_name_takes_its_lease_over_with_a_new_token(client: Any) -> None:
    first = table(client, "a")
    old = await first.acquire(0, T0)
    restarted = table(client, "a")
    new = await restarted.acquire(0, T0 + 1)
    assert old is not None and new is not None and new.token == old.token + 1
    assert await first.renew(old, T0 + 2) is None  # the old process is fenced


async def test_a_zombie_can_neither_renew_release_nor_commit(client: Any) -> None:
    a, b = table(client, "a"), table(client, "b")
    zombie = await a.acquire(0, T0)
    assert zombie is not None
    assert await commit(
        client,
        "t",
        "g",
        zombie,
        commit_id="c1",
        output_topic="o",
        entries=[encode_entry([{"n": 1}])],
        position="1-0",
        state=b"s1",
        done=False,
    )
    # a stops past its lease; b takes over
    owner = await b.acquire(0, T0 + LEASE)
    assert owner is not None and owner.token == zombie.token + 1
    assert await a.renew(zombie, T0 + LEASE + 1) is None
    assert await a.release(zombie) is False
    assert await b.owners(T0 + LEASE + 1) == {0: ("b", owner.token)}  # release left it alone
    refused = await commit(
        client,
        "t",
        "g",
        zombie,
        commit_id="c2",
        output_topic="o",
        entries=[encode_entry([{"n": 2}])],
        position="2-0",
        state=b"zombie",
        done=True,
    )
    assert refused is False
    assert [entry for entry in await output(client)] == [encode_entry([{"n": 1}])]
    assert await load_committed(client, "t", "g", 0) == Committed(zombie.token, "1-0", b"s1", False)
    # the owner's commit goes through
    assert await commit(
        client,
        "t",
        "g",
        owner,
        commit_id="c3",
        output_topic="o",
        entries=[encode_entry([{"n": 3}])],
        position="3-0",
        state=b"s3",
        done=True,
    )
    assert len(await output(client)) == 2
    assert await load_committed(client, "t", "g", 0) == Committed(owner.token, "3-0", b"s3", True)


async def test_a_commit_sent_again_writes_nothing_and_a_zombie_stays_fenced(client: Any) -> None:
    """The retry of a commit whose reply was lost: the same ``commit_id``, a success, no write."""
    a, b = table(client, "a"), table(client, "b")
    old = await a.acquire(0, T0)
    assert old is not None

    async def send(lease: Lease, commit_id: str, n: int) -> bool:
        return await commit(
            client, "t", "g", lease, commit_id=commit_id, output_topic="o",
            entries=[encode_entry([{"n": n}])], position=f"{n}-0", state=b"s", done=False,
        )  # fmt: skip

    assert await send(old, "1-x", 1) and await send(old, "1-x", 1)
    assert len(await output(client)) == 1
    # b takes over but has not committed: a's retry is still the success it was
    new = await b.acquire(0, T0 + LEASE)
    assert new is not None
    assert await send(old, "1-x", 1)
    assert not await send(old, "2-x", 2)  # a new commit of the zombie is refused
    assert len(await output(client)) == 1
    # once b committed, a's retry is refused too; b's own retry is not
    assert await send(new, "1-y", 3) and await send(new, "1-y", 3)
    assert not await send(old, "1-x", 1)
    assert [e for e in await output(client)] == [encode_entry([{"n": n}]) for n in (1, 3)]
    committed = await load_committed(client, "t", "g", 0)
    assert committed is not None and (committed.token, committed.commit_id) == (new.token, "1-y")


async def test_a_released_lease_cannot_commit(client: Any) -> None:
    a = table(client, "a")
    lease = await a.acquire(0, T0)
    assert lease is not None and await a.release(lease)
    done = await commit(
        client,
        "t",
        "g",
        lease,
        commit_id="c4",
        output_topic="o",
        entries=[encode_entry([{"n": 1}])],
        position="1-0",
        state=b"s",
        done=False,
    )
    assert done is False
    assert await output(client) == [] and await load_committed(client, "t", "g", 0) is None


async def test_commit_writes_entries_in_order_with_their_fields(client: Any) -> None:
    a = table(client, "a")
    lease = await a.acquire(3, T0)
    assert lease is not None
    entries = [encode_entry([{"n": i}]) for i in range(50)] + [{b"end": b""}]
    entries.append({b"x": b"1", b"y": b"\x00\xff"})
    state = bytes(range(256)) * 40  # binary and not small
    assert await commit(
        client,
        "t",
        "g",
        lease,
        commit_id="c5",
        output_topic="o",
        entries=entries,
        position="1700000000000-5",
        state=state,
        done=True,
    )
    assert await output(client, 3) == entries
    assert await load_committed(client, "t", "g", 3) == Committed(
        lease.token, "1700000000000-5", state, True
    )
    assert await load_committed(client, "t", "g", 2) is None
    # a commit without output, say a checkpoint with no rows since the last
    assert await commit(
        client,
        "t",
        "g",
        lease,
        commit_id="c6",
        output_topic=None,
        entries=[],
        position="1700000000001-0",
        state=b"",
        done=False,
    )
    committed = await load_committed(client, "t", "g", 3)
    assert committed == Committed(lease.token, "1700000000001-0", b"", False)
    assert len(await output(client, 3)) == len(entries)


async def test_a_failing_commit_writes_nothing(client: Any) -> None:
    from coredis.exceptions import ResponseError

    a = table(client, "a")
    lease = await a.acquire(0, T0)
    assert lease is not None
    await client.set(output_key("t", 0, "o"), "not a stream")
    with pytest.raises(ResponseError, match="not a stream"):
        await commit(
            client,
            "t",
            "g",
            lease,
            commit_id="c7",
            output_topic="o",
            entries=[encode_entry([{"n": 1}])],
            position="1-0",
            state=b"s",
            done=False,
        )
    assert await load_committed(client, "t", "g", 0) is None


async def test_entries_need_an_output_topic(client: Any) -> None:
    lease = Lease(0, 1, T0)
    with pytest.raises(ValueError, match="entries need an output_topic"):
        await commit(
            client,
            "t",
            "g",
            lease,
            commit_id="c8",
            output_topic=None,
            entries=[{b"a": b"b"}],
            position="1-0",
            state=b"",
            done=False,
        )


async def test_heartbeat_and_leave(client: Any) -> None:
    a, b, c = table(client, "a"), table(client, "b"), table(client, "c")
    assert await b.heartbeat(T0) == ("b",)
    assert await a.heartbeat(T0 + 10) == ("a", "b")
    assert await c.heartbeat(T0 + LEASE) == ("a", "c")  # b's heartbeat expired at T0 + LEASE
    assert sorted(await client.hkeys(members_key("t", "g"))) == [b"a", b"c"]  # b dropped
    await a.leave()
    assert await c.heartbeat(T0 + LEASE + 1) == ("c",)


async def test_scripts_are_loaded_again_after_the_server_forgets_them(client: Any) -> None:
    a = table(client, "a")
    assert await a.acquire(0, T0) is not None
    await client.script_flush()
    assert await a.acquire(1, T0) is not None


async def test_keys_share_the_partition_hash_tag() -> None:
    keys = [
        lease_key("t", "g", 5),
        token_key("t", "g", 5),
        state_key("t", "g", 5),
        output_key("t", 5, "o"),
    ]
    assert all(k.startswith("{t:5}:") for k in keys)
    assert members_key("t", "g") == "partita:group:{t}:g"


async def test_partition_out_of_range_is_refused(client: Any) -> None:
    with pytest.raises(ValueError, match=r"partition 4 is not in 0\.\.3"):
        await table(client, "a").acquire(4, T0)
    with pytest.raises(ValueError, match="lease_ms must be at least 1, got 0"):
        LeaseTable(client, "t", "g", "a", partitions=1, lease_ms=0)


@given(
    members=st.lists(st.text("abcdefgh", min_size=1, max_size=3), min_size=1, max_size=6),
    partitions=st.integers(0, 40),
)
def test_fair_share_is_balanced_complete_and_deterministic(
    members: list[str], partitions: int
) -> None:
    names = sorted(set(members))
    shares = {m: fair_share(members, partitions, m) for m in names}
    sizes = [len(s) for s in shares.values()]
    assert max(sizes) - min(sizes) <= 1
    assert sum(sizes) == partitions  # so disjoint, given the union below
    assert frozenset().union(*shares.values()) == set(range(partitions))
    assert shares == {m: fair_share(list(reversed(members)), partitions, m) for m in names}
    assert fair_share(members, partitions, "not a member") == frozenset()


def test_fair_share_moves_few_partitions_when_a_member_joins() -> None:
    before = assignment([f"w{i}" for i in range(4)], 64)
    after = assignment([f"w{i}" for i in range(5)], 64)
    moved = sum(1 for p in range(64) if before[p] != after[p])
    # the newcomer's 12 or 13 must move; round-robin would move about 51
    assert moved <= 20


def test_docstring_examples() -> None:
    import doctest

    from partita.actors import _leases

    result = doctest.testmod(_leases, raise_on_error=False, verbose=False)
    assert result.failed == 0 and result.attempted >= 5


async def test_the_operations_guide_example(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text[text.index("## Ownership, leases and fencing") :]
    program = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    assert program.rstrip().endswith("trio.run(main)")
    program = program.replace('"redis://127.0.0.1:6379"', repr(redis_server.url))
    namespace: dict[str, Any] = {"__name__": "operations_example"}
    exec(compile(program.replace("trio.run(main)", ""), "docs/operations.md", "exec"), namespace)
    await namespace["main"]()
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "a commits: True",
        "tokens: 1 -> 2",
        "zombie a commits: False renews: None",
        "committed: 1 1-0",
    ]
