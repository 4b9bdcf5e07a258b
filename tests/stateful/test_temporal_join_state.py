"""One partition's temporal-join state against a brute-force model.

Rules bring changelog versions (or deletions) and stream records of a few keys (NULL
among them), at event times at or after the combined watermark as the join routers
guarantee (a record late on its own stream never reaches the join); advance the
watermark; checkpoint and restore the state into a fresh one; or end both inputs.
The model keeps everything that arrived, so the invariants know the exact answer:
a stream record is joined exactly once, only once the watermark has passed its time
(or at the end), and with the version of its key that was current at its time (the
last one at or before it; among versions at the same time the last to arrive), or
with NULLs (LEFT JOIN) when there is none or it is a deletion; the state holds no
more versions than the ones still reachable.  Two broken twins are caught: one that
joins a record as soon as the watermark reaches its time (a version at that very
time can still come), one that drops a key's last version behind the watermark.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

import pytest
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from partita.sql import TemporalJoinState, compile_query

from ._trio_machine import machine_settings

QUERY = compile_query(
    "SELECT o.lid, r.v FROM orders o LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.k = r.k"
)
JOIN = QUERY.temporal_join
assert JOIN is not None


class TemporalStateMachine(RuleBasedStateMachine):
    state_type: ClassVar[type[TemporalJoinState]] = TemporalJoinState

    def __init__(self) -> None:
        super().__init__()
        self._reset()

    def _reset(self) -> None:
        assert JOIN is not None
        self.state = self.state_type.of(JOIN)
        self.wm: int | None = None
        self.lefts: list[tuple[int, Any, int]] = []  # (id, key, time)
        self.versions: list[tuple[Any, int, int | None]] = []  # (key, time, v or None)
        self.joined: Counter[int] = Counter()
        self.got: dict[int, int | None] = {}
        self.finished = False

    def _take(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.joined[row["lid"]] += 1
            self.got[row["lid"]] = row["r.v"]

    def _base(self) -> int:
        return 0 if self.wm is None else self.wm

    @rule(key=st.sampled_from([0, 1, None]), after=st.integers(0, 3), n=st.integers(1, 3))
    def stream_records(self, key: Any, after: int, n: int) -> None:
        entries = []
        for _ in range(n):
            ident = len(self.lefts)
            self.lefts.append((ident, key, self._base() + after))
            entries.append([key, self._base() + after, {"lid": ident}])
        self._take(self.state.left(entries))

    @rule(
        key=st.sampled_from([0, 1, None]),
        after=st.integers(0, 3),
        deleted=st.booleans(),
    )
    def version(self, key: Any, after: int, deleted: bool) -> None:
        value = None if deleted else len(self.versions) + 100
        t = self._base() + after
        self.versions.append((key, t, value))
        fields = None if deleted else {"r.v": value}
        assert self.state.right([[key, t, fields]]) == []

    @rule(by=st.integers(0, 3))
    def advance(self, by: int) -> None:
        self.wm = by if self.wm is None else self.wm + by
        self._take(self.state.advance(self.wm))

    @rule()
    def checkpoint_and_restore(self) -> None:
        assert JOIN is not None
        fresh = self.state_type.of(JOIN)
        fresh.restore(self.state.snapshot())
        self.state = fresh

    @rule()
    def finish(self) -> None:
        self._take(self.state.finish())
        self.finished = True
        self.each_record_joined_once_when_due()
        self.with_the_version_current_at_its_time()
        self._reset()

    # -- the model ---------------------------------------------------------------------

    def _current(self, key: Any, t: int) -> int | None:
        found: int | None = None
        best = None
        for k, vt, value in self.versions:  # in arrival order: the last among equals
            if key is not None and k == key and vt <= t and (best is None or vt >= best):
                best, found = vt, value
        return found

    @invariant()
    def each_record_joined_once_when_due(self) -> None:
        wm = self.wm
        due = {
            lid
            for lid, k, t in self.lefts
            if self.finished or k is None or (wm is not None and t < wm)
        }
        assert set(self.joined) == due
        assert all(n == 1 for n in self.joined.values())

    @invariant()
    def with_the_version_current_at_its_time(self) -> None:
        for lid, k, t in self.lefts:
            if lid in self.got:
                assert self.got[lid] == self._current(k, t), (lid, k, t)

    @invariant()
    def holds_only_what_can_still_match(self) -> None:
        if self.finished:
            return
        wm = self.wm
        waiting = sum(1 for lid, k, _ in self.lefts if k is not None and lid not in self.joined)
        # per key: the versions after the watermark, and the last one at or before it
        # (unless that one deletes the key)
        reachable = 0
        for key in {k for k, _, _ in self.versions if k is not None}:
            mine = [(t, v) for k, t, v in self.versions if k == key]
            if wm is None:
                reachable += len(mine)
                continue
            after = [m for m in mine if m[0] > wm]
            # by time (a stable sort: among equal times, the last to arrive is last)
            before = sorted((m for m in mine if m[0] <= wm), key=lambda m: m[0])
            reachable += len(after) + (1 if before and before[-1][1] is not None else 0)
        known = sum(1 for k, _, _ in self.versions if k is not None)
        # pruned lazily (when a key is touched), but never what can still match
        assert waiting + reachable <= self.state.held() <= waiting + known


class EagerJoin(TemporalJoinState):
    """Broken on purpose: joins a record once the watermark reaches its time (``<=``
    for ``<``): a version at that very time can still arrive."""

    def advance(self, watermark: int) -> list[dict[str, Any]]:
        return super().advance(watermark + 1)


class ForgetsTheCurrent(TemporalJoinState):
    """Broken on purpose: prunes every version at or before the watermark, the
    current one included."""

    def _prune(self, k: Any, wm: int) -> None:
        chain = self._versions[k]
        kept = [v for v in chain if v[0] > wm]
        if kept:
            self._versions[k] = kept
        else:
            del self._versions[k]


class EagerJoinMachine(TemporalStateMachine):
    state_type = EagerJoin


class ForgetsTheCurrentMachine(TemporalStateMachine):
    state_type = ForgetsTheCurrent


TestTemporalStateMachine = TemporalStateMachine.TestCase
TestTemporalStateMachine.settings = machine_settings(steps=40)


@pytest.mark.parametrize("machine", [EagerJoinMachine, ForgetsTheCurrentMachine])
def test_the_machine_catches_a_broken_temporal_state(
    machine: type[TemporalStateMachine],
) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    settings = machine_settings(share=3.0, steps=40, phases=[Phase.generate], database=None)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(machine, settings=settings)
