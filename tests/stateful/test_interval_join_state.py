"""One partition's interval-join state against a brute-force model.

Rules bring records to either side (keys from a few, NULL among them; event times at
or after the combined watermark, as the join routers guarantee: a record late on its
own stream never reaches the join, and every stream's watermark is at least the
combined one), advance the watermark, or checkpoint and restore the state into a
fresh one.  The model keeps every record that arrived, so the invariants know the
exact answer: the joined pairs emitted are every matching pair of records that
arrived (none twice, none missed: each match is found when the second record comes,
and nothing is evicted while a record to come could still match it); an outer row
is emitted for a record exactly when it is unmatched and out of reach; every record
held is still in reach.  Two broken twins are caught: one evicting a millisecond
early, one that forgets on restore which records were matched.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

import pytest
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from partita.sql import IntervalJoinState, compile_query

from ._trio_machine import machine_settings

LOWER, UPPER = -1, 2  # p.ts - o.ts in [-1, 2] ms: small, so edges are hit often
QUERY = compile_query(
    "SELECT o.lid, p.rid FROM orders o FULL JOIN payments p ON o.k = p.k "
    f"AND p.ts BETWEEN o.ts - {-LOWER} AND o.ts + {UPPER}"
)
JOIN = QUERY.interval_join
assert JOIN is not None


class JoinStateMachine(RuleBasedStateMachine):
    state_type: ClassVar[type[IntervalJoinState]] = IntervalJoinState

    def __init__(self) -> None:
        super().__init__()
        self._reset()

    def _reset(self) -> None:
        assert JOIN is not None
        self.state = self.state_type.of(JOIN)
        self.wm: int | None = None
        self.lefts: list[tuple[int, Any, int]] = []  # (id, key, time)
        self.rights: list[tuple[int, Any, int]] = []
        self.pairs: Counter[tuple[int, int]] = Counter()
        self.outer_left: Counter[int] = Counter()
        self.outer_right: Counter[int] = Counter()
        self.finished = False

    def _take(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            lid, rid = row["lid"], row["p.rid"]
            if lid is not None and rid is not None:
                self.pairs[(lid, rid)] += 1
            elif lid is not None:
                self.outer_left[lid] += 1
            else:
                self.outer_right[rid] += 1

    @rule(
        left=st.booleans(),
        key=st.sampled_from([0, 1, None]),
        after=st.integers(0, 4),
        n=st.integers(1, 3),
    )
    def arrive(self, left: bool, key: Any, after: int, n: int) -> None:
        base = 0 if self.wm is None else self.wm
        entries = []
        for _ in range(n):
            ident = len(self.lefts) + len(self.rights)
            if left:
                self.lefts.append((ident, key, base + after))
                entries.append([key, base + after, {"lid": ident}])
            else:
                self.rights.append((ident, key, base + after))
                entries.append([key, base + after, {"p.rid": ident}])
        self._take(self.state.left(entries) if left else self.state.right(entries))

    @rule(by=st.integers(0, 4))
    def advance(self, by: int) -> None:
        self.wm = by if self.wm is None else self.wm + by
        self._take(self.state.advance(self.wm))

    @rule()
    def checkpoint_and_restore(self) -> None:
        assert JOIN is not None
        saved = self.state.snapshot()
        fresh = self.state_type.of(JOIN)
        fresh.restore(saved)
        self.state = fresh

    @rule()
    def finish(self) -> None:
        """End of both inputs: every unmatched record's outer row; then a new run."""
        self._take(self.state.finish())
        self.finished = True
        self.every_match_once()
        self.outer_rows_exactly_for_the_unmatched_out_of_reach()
        self.holds_only_what_is_in_reach()
        self._reset()

    # -- the model ---------------------------------------------------------------------

    def _matching(self) -> set[tuple[int, int]]:
        return {
            (lid, rid)
            for lid, lk, lt in self.lefts
            for rid, rk, rt in self.rights
            if lk is not None and lk == rk and LOWER <= rt - lt <= UPPER
        }

    @invariant()
    def every_match_once(self) -> None:
        matching = self._matching()
        assert set(self.pairs) == matching
        assert all(n == 1 for n in self.pairs.values())

    @invariant()
    def outer_rows_exactly_for_the_unmatched_out_of_reach(self) -> None:
        matched_left = {lid for lid, _ in self._matching()}
        matched_right = {rid for _, rid in self._matching()}
        wm = self.wm
        due_left = {
            lid
            for lid, k, t in self.lefts
            if lid not in matched_left
            and (self.finished or k is None or (wm is not None and t + UPPER < wm))
        }
        due_right = {
            rid
            for rid, k, t in self.rights
            if rid not in matched_right
            and (self.finished or k is None or (wm is not None and t - LOWER < wm))
        }
        assert set(self.outer_left) == due_left
        assert set(self.outer_right) == due_right
        assert all(n == 1 for n in [*self.outer_left.values(), *self.outer_right.values()])

    @invariant()
    def holds_only_what_is_in_reach(self) -> None:
        if self.finished:
            assert self.state.held() == 0
            return
        wm = self.wm
        in_reach = sum(
            1 for _, k, t in self.lefts if k is not None and (wm is None or t + UPPER >= wm)
        ) + sum(1 for _, k, t in self.rights if k is not None and (wm is None or t - LOWER >= wm))
        assert self.state.held() == in_reach


class EarlyEviction(IntervalJoinState):
    """Broken on purpose: evicts a millisecond early (``<=`` for ``<``)."""

    def advance(self, watermark: int) -> list[dict[str, Any]]:
        return super().advance(watermark + 1)


class ForgetfulRestore(IntervalJoinState):
    """Broken on purpose: a restored record has forgotten that it was matched."""

    def restore(self, state: Any) -> None:
        sides = [[[k, t, f, False] for k, t, f, _ in rows] for rows in state["sides"]]
        super().restore({**state, "sides": sides})


class EarlyEvictionMachine(JoinStateMachine):
    state_type = EarlyEviction


class ForgetfulRestoreMachine(JoinStateMachine):
    state_type = ForgetfulRestore


TestJoinStateMachine = JoinStateMachine.TestCase
TestJoinStateMachine.settings = machine_settings(steps=40)


@pytest.mark.parametrize("machine", [EarlyEvictionMachine, ForgetfulRestoreMachine])
def test_the_machine_catches_a_broken_join_state(machine: type[JoinStateMachine]) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    settings = machine_settings(share=3.0, steps=40, phases=[Phase.generate], database=None)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(machine, settings=settings)
