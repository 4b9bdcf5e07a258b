"""The lease protocol as a state machine, against a real redis-server.

The scripts are the thing under test, so they run on a real server; the clock
is virtual (the ``now_ms`` every call takes), so no rule waits.  Up to three
workers of one group share ``N`` partitions.  Rules: a worker joins (or
restarts after a crash, under its old name), leaves (releasing its leases),
crashes (stops for good, never releases), stalls (frozen for a while as the
others go on, then resumes: a zombie committing on the leases it still believes
it holds), renews, rebalances toward :func:`fair_share`, commits on any
lease it believes it holds, and sends its last commit again as it was (a retry
after a lost reply); time advances.

What the machine knows besides the workers' beliefs is only what the protocol
promised: the token of each partition's newest acquire (``None`` once that
lease was released) and what each successful commit wrote.  Invariants:

- no two workers believe they hold a live lease on one partition at one time,
  and what a worker believes live is what Redis says (``owners``);
- fencing tokens of a partition strictly increase (checked at each acquire and
  against the server's counter);
- renew, release and commit succeed exactly when the lease carries the
  partition's current token, and a refused commit writes nothing: the output
  streams and the committed states are exactly those of the successful commits;
- a commit sent again succeeds, writing nothing, exactly while the state still
  holds it (its token and commit id), and is refused once another owner committed;
- liveness (the ``settle`` rule): with the live members heartbeating, renewing
  and rebalancing every half lease, within a few rounds every partition is
  owned, each by the member :func:`fair_share` gives it to.

Four broken twins (an acquire that takes live leases, an acquire that keeps the
token, a commit that does not check it, a commit that writes a retry again) must
each be caught.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import attrs
import pytest
import trio
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from partita.actors._lease_scripts import ACQUIRE, COMMIT
from partita.actors._leases import (
    Committed,
    Lease,
    LeaseTable,
    _Script,
    commit,
    fair_share,
    lease_key,
    load_committed,
    output_key,
    state_key,
    token_key,
)
from partita.actors._redis import encode_entry, open_redis
from tests.redis.conftest import RedisServer, start_redis

from ._trio_machine import machine_settings

T = TypeVar("T")

N = 3
LEASE = 1000
T0 = 1_700_000_000_000
NAMES = ("w0", "w1", "w2")
WORKERS = st.sampled_from(NAMES)
GUARD = 10  # seconds a Redis call may take: a hang fails, it does not wait
SETTLE_ROUNDS = 4

Status = Literal["out", "member", "crashed"]


@attrs.define
class Worker:
    """One worker process as the machine sees it: its status and the leases it believes in."""

    table: LeaseTable
    status: Status = "out"
    leases: dict[int, Lease] = attrs.Factory(dict)


class LeaseMachine(RuleBasedStateMachine):
    table_type: ClassVar[type[LeaseTable]] = LeaseTable
    examples = itertools.count()

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.topic = f"t{next(self.examples)}"
        self.now = T0
        self.workers = {
            name: Worker(self.table_type(client, self.topic, "g", name, N, LEASE)) for name in NAMES
        }
        self.tokens: dict[int, list[int]] = {p: [] for p in range(N)}
        self.current: dict[int, int | None] = dict.fromkeys(range(N))
        self.outputs: dict[int, list[dict[bytes, bytes]]] = {p: [] for p in range(N)}
        self.committed: dict[int, Committed | None] = dict.fromkeys(range(N))
        self.commit_ids: dict[int, str | None] = dict.fromkeys(range(N))
        self.sent: dict[tuple[str, int], tuple[Lease, dict[bytes, bytes], str]] = {}
        """Each worker's last successful commit per partition: what a retry sends again."""
        self.commits = itertools.count(1)

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        async def guarded() -> T:
            with trio.fail_after(GUARD):
                return await fn()

        return trio.from_thread.run(guarded)

    def commit(self, lease: Lease, entry: dict[bytes, bytes], position: str) -> bool:
        return self.call(
            lambda: commit(
                self.client, self.topic, "g", lease, commit_id=position, output_topic="o",
                entries=[entry],
                position=position, state=position.encode(), done=False,
            )
        )  # fmt: skip

    def named(self, status: Status) -> list[str]:
        return [n for n, w in self.workers.items() if w.status == status]

    def holds_current(self, lease: Lease) -> bool:
        return self.current[lease.partition] == lease.token

    # ------------------------------------------------------------ steps of one worker
    def _acquire(self, name: str, p: int) -> None:
        worker = self.workers[name]
        lease = self.call(lambda: worker.table.acquire(p, self.now))
        if lease is None:
            return
        assert all(t < lease.token for t in self.tokens[p]), (p, self.tokens[p], lease)
        self.tokens[p].append(lease.token)
        self.current[p] = lease.token
        worker.leases[p] = lease
        self.live_beliefs()  # at once: a rule's later steps could hide a second holder

    def _release(self, name: str, p: int) -> None:
        worker = self.workers[name]
        lease = worker.leases.pop(p)
        expected = self.holds_current(lease)
        assert self.call(lambda: worker.table.release(lease)) is expected, (name, lease)
        if expected:
            self.current[p] = None

    def _renew(self, name: str) -> None:
        worker = self.workers[name]
        self.call(lambda: worker.table.heartbeat(self.now))
        for p, lease in sorted(worker.leases.items()):
            renewed = self.call(lambda: worker.table.renew(lease, self.now))  # noqa: B023
            assert (renewed is not None) is self.holds_current(lease), (name, lease, self.now)
            if renewed is None:
                del worker.leases[p]
            else:
                assert renewed == attrs.evolve(lease, expires_ms=self.now + LEASE)
                worker.leases[p] = renewed

    def _rebalance(self, name: str) -> None:
        worker = self.workers[name]
        members = self.call(lambda: worker.table.heartbeat(self.now))
        assert name in members
        share = fair_share(members, N, name)
        for p in sorted(set(worker.leases) - share):
            self._release(name, p)
        for p in sorted(share - set(worker.leases)):
            self._acquire(name, p)

    def _commit(self, name: str, p: int) -> None:
        lease = self.workers[name].leases[p]
        n = next(self.commits)
        entry = encode_entry([{"worker": name, "token": lease.token, "n": n}])
        expected = self.holds_current(lease)
        assert self.commit(lease, entry, f"{n}-0") is expected, (name, lease, self.current)
        if not expected:
            del self.workers[name].leases[p]  # refused: it learns it lost the partition
        else:
            self.outputs[p].append(entry)
            self.committed[p] = Committed(lease.token, f"{n}-0", f"{n}-0".encode(), False)
            self.commit_ids[p] = f"{n}-0"
            self.sent[name, p] = (lease, entry, f"{n}-0")

    def _retry_commit(self, name: str, p: int) -> None:
        worker = self.workers[name]
        lease, entry, commit_id = self.sent[name, p]
        stored = self.committed[p]
        expected = stored is not None and stored.token == lease.token
        expected = expected and self.commit_ids[p] == commit_id
        assert expected or not self.holds_current(lease), (name, p, lease, self.current)
        assert self.commit(lease, entry, commit_id) is expected, (name, lease, self.current)
        if not expected:
            del worker.leases[p]

    # ------------------------------------------------------------ rules
    @rule(name=WORKERS)
    def join(self, name: str) -> None:
        worker = self.workers[name]
        if worker.status in ("out", "crashed"):  # a crashed one restarts afresh
            worker.status, worker.leases = "member", {}
            self.call(lambda: worker.table.heartbeat(self.now))

    @rule(name=WORKERS)
    def leave(self, name: str) -> None:
        worker = self.workers[name]
        if worker.status == "member":
            for p in sorted(worker.leases):
                self._release(name, p)
            self.call(worker.table.leave)
            worker.status = "out"

    @rule(name=WORKERS)
    def crash(self, name: str) -> None:
        worker = self.workers[name]
        if worker.status == "member":
            worker.status, worker.leases = "crashed", {}

    @rule(name=WORKERS, ms=st.integers(1, 3 * LEASE))
    def stall(self, name: str, ms: int) -> None:
        """The worker freezes for ``ms`` while the others go on, then resumes: a zombie.

        It goes on where it stopped, committing what it had on each lease it
        believes it holds, before it renews (SIGSTOP, then SIGCONT).
        """
        worker = self.workers[name]
        if worker.status != "member":
            return
        others = [n for n in self.named("member") if n != name]
        end = self.now + ms
        while self.now < end:
            self.now = min(end, self.now + LEASE // 2)
            for other in others:
                self._renew(other)
            for other in others:
                self._rebalance(other)
        for p in sorted(worker.leases):
            self._commit(name, p)

    @rule(ms=st.integers(1, 2 * LEASE))
    def advance(self, ms: int) -> None:
        self.now += ms

    @rule(name=WORKERS)
    def renew(self, name: str) -> None:
        if self.workers[name].status == "member":
            self._renew(name)

    @rule(name=WORKERS)
    def rebalance(self, name: str) -> None:
        if self.workers[name].status == "member":
            self._rebalance(name)

    @rule(name=WORKERS, pick=st.integers(0, N - 1), again=st.booleans())
    def commit_rows(self, name: str, pick: int, again: bool) -> None:
        """A commit; ``again``: its reply was lost, it is sent again at once."""
        worker = self.workers[name]
        if worker.status != "member" or not worker.leases:
            return
        p = sorted(worker.leases)[pick % len(worker.leases)]
        self._commit(name, p)
        if again and p in worker.leases:
            self._retry_commit(name, p)

    @rule(name=WORKERS, pick=st.integers(0, N - 1))
    def retry_commit(self, name: str, pick: int) -> None:
        """The worker sends its last commit on a lease again, as it was: its reply was lost.

        It went through, so the retry is a success that writes nothing while the
        state still holds it (even if another worker took the partition since);
        once another owner committed, it is refused.
        """
        worker = self.workers[name]
        sent = [
            p
            for (w, p), again in sorted(self.sent.items())
            if w == name and worker.leases.get(p) == again[0]
        ]
        if worker.status == "member" and sent:
            self._retry_commit(name, sent[pick % len(sent)])

    @precondition(lambda self: self.named("member"))
    @rule()
    def settle(self) -> None:
        """Liveness: live members renewing and rebalancing end with every partition owned."""
        members = sorted(self.named("member"))
        for _ in range(SETTLE_ROUNDS):
            self.now += LEASE // 2
            for name in members:
                self._renew(name)
            for name in members:
                self._rebalance(name)
        owners = self.call(lambda: self.workers[members[0]].table.owners(self.now))
        assert sorted(owners) == list(range(N)), (owners, members)
        for name in members:
            share = fair_share(members, N, name)
            assert set(self.workers[name].leases) == share, (name, share)
            assert all(owners[p][0] == name for p in share)

    # ------------------------------------------------------------ invariants
    def live_beliefs(self) -> dict[int, list[tuple[str, Lease]]]:
        """Per partition, the workers believing they hold a live lease on it now."""
        believed: dict[int, list[tuple[str, Lease]]] = {p: [] for p in range(N)}
        for name, worker in self.workers.items():
            for p, lease in worker.leases.items():
                if lease.expires_ms > self.now:
                    believed[p].append((name, lease))
        for p, holders in believed.items():
            assert len(holders) <= 1, (p, holders, self.now)
        return believed

    @invariant()
    def one_live_holder_per_partition(self) -> None:
        believed = self.live_beliefs()
        owners = self.call(lambda: self.workers["w0"].table.owners(self.now))
        for p, holders in believed.items():
            if holders:
                name, lease = holders[0]
                assert owners.get(p) == (name, lease.token), (p, owners, holders)

    @invariant()
    def counters_outputs_and_states_are_the_protocols(self) -> None:
        async def read() -> list[Any]:
            async with self.client.pipeline(transaction=False) as pipe:
                requests = [pipe.get(token_key(self.topic, "g", p)) for p in range(N)]
                requests += [pipe.xrange(output_key(self.topic, p, "o")) for p in range(N)]
            return [await r for r in requests]

        replies = self.call(read)
        for p in range(N):
            counter, entries = replies[p], replies[N + p]
            assert (None if counter is None else int(counter)) == max(self.tokens[p], default=None)
            assert [e.field_values for e in entries] == self.outputs[p], p

    @invariant()
    def committed_states_are_the_successful_commits(self) -> None:
        async def read() -> list[Committed | None]:
            return [await load_committed(self.client, self.topic, "g", p) for p in range(N)]

        assert self.call(read) == [self.committed[p] for p in range(N)]


# ------------------------------------------------------------------ broken twins


def _broken(source: str, old: str, new: str) -> _Script:
    assert old in source
    return _Script(source.replace(old, new))


class ScriptedAcquireTable(LeaseTable):
    """A lease table whose acquire runs ``script`` instead of the real one."""

    script: ClassVar[_Script]

    async def acquire(self, partition: int, now_ms: int) -> Lease | None:
        keys = [lease_key(self.topic, self.group, partition)]
        keys.append(token_key(self.topic, self.group, partition))
        got = await self.script(self.client, keys, [self.worker, now_ms, self.lease_ms])
        return None if got is None else Lease(partition, int(got[0]), int(got[1]))


class StealingTable(ScriptedAcquireTable):
    """Broken on purpose: acquire does not check the lease's expiry, so it takes live ones."""

    script = _broken(ACQUIRE, "tonumber(held[2]) > tonumber(ARGV[2])", "false")


class SameTokenTable(ScriptedAcquireTable):
    """Broken on purpose: a new owner gets the counter's value, not a new token."""

    script = _broken(
        ACQUIRE,
        "redis.call('INCR', KEYS[2])",
        "tonumber(redis.call('GET', KEYS[2]) or redis.call('INCR', KEYS[2]))",
    )


UNFENCED = _broken(COMMIT, "if redis.call('GET', KEYS[2]) ~= ARGV[1] then", "if false then")
UNFENCED = _broken(
    UNFENCED.source, "if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1]", "if false"
)


NOT_IDEMPOTENT = _broken(
    COMMIT, "if stored[1] == ARGV[1] and stored[2] == ARGV[2] then", "if false then"
)


class StealingMachine(LeaseMachine):
    table_type = StealingTable


class SameTokenMachine(LeaseMachine):
    table_type = SameTokenTable


class UnfencedCommitMachine(LeaseMachine):
    """Broken on purpose: the commit script does not check the token."""

    def commit(self, lease: Lease, entry: dict[bytes, bytes], position: str) -> bool:
        p = lease.partition
        keys = [lease_key(self.topic, "g", p), token_key(self.topic, "g", p)]
        keys += [state_key(self.topic, "g", p), output_key(self.topic, p, "o")]
        args = [
            lease.token,
            position,  # the commit id
            position,
            position.encode(),
            "0",
            1,
            len(entry),
            *next(iter(entry.items())),
        ]
        return bool(self.call(lambda: self.script(self.client, keys, args)))

    script = UNFENCED


class NotIdempotentCommitMachine(UnfencedCommitMachine):
    """Broken on purpose: the commit script writes a retried commit again."""

    script = NOT_IDEMPOTENT


def run_leases(machine: type[LeaseMachine], url: str, **settings: Any) -> None:
    """Run ``machine`` as a test: trio and the client here, Hypothesis in a thread."""

    failure: list[BaseException] = []

    def run(client: Any) -> None:
        try:
            run_state_machine_as_test(
                lambda: machine(client), settings=machine_settings(**settings)
            )
        except BaseException as exc:  # raised below, not inside the client's task group
            failure.append(exc)

    async def main() -> None:
        async with open_redis(url) as client:
            await trio.to_thread.run_sync(run, client)

    trio.run(main)
    if failure:
        raise failure[0]


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server: RedisServer = start_redis(tmp_path)
    yield server.url
    server.process.terminate()
    server.process.wait(timeout=10)


def test_lease_machine(redis_url: str) -> None:
    run_leases(LeaseMachine, redis_url, steps=40)


@pytest.mark.parametrize(
    "machine",
    [StealingMachine, SameTokenMachine, UnfencedCommitMachine, NotIdempotentCommitMachine],
)
def test_lease_machine_catches_a_broken_protocol(
    redis_url: str, machine: type[LeaseMachine]
) -> None:
    with pytest.raises(AssertionError):
        run_leases(machine, redis_url, steps=40, phases=[Phase.generate], database=None)
