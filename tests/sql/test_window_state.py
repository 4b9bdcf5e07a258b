"""The window states driven from plain Python, as a non-SQL operator drives them.

The SQL layer's generated loops step the accumulators; here a test does, with plain
callables, to show (and keep) that nothing in the window states needs SQL.
"""

from __future__ import annotations

import doctest
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from partita.sql import (
    Aggregation,
    RecordErrors,
    WindowRules,
    WindowSpec,
    WindowState,
    _windows,
    new_window_state,
)

COUNT = Aggregation(
    init=lambda: 0,
    step=lambda acc, record: (acc or 0) + 1,
    merge=lambda a, b: a + b,
    row=lambda key, acc, ws, we: {"key": key, "n": acc, "start": ws, "end": we},
)


def test_the_module_example_runs() -> None:
    failures, attempted = doctest.testmod(_windows, raise_on_error=False, verbose=False)
    assert attempted > 0
    assert failures == 0


def _tumble(state: WindowState, size: int, key: str, ts: int) -> None:
    _, windows, _, _ = state.process_args()
    groups = windows.setdefault(ts - ts % size, {})
    groups[key] = COUNT.step(groups.get(key), None)


def test_late_update_re_emits_the_closed_window_while_retained() -> None:
    rules = WindowRules(WindowSpec("tumble", "ts", 10, 10), late="update", retention_ms=20)
    state = new_window_state(rules, COUNT, RecordErrors("skip", "counter"))
    _tumble(state, 10, "a", 3)
    assert state.advance(10) == [{"key": "a", "n": 1, "start": 0, "end": 10}]
    _, _, _, on_late = state.process_args()
    # a record for [0, 10) at watermark 15: retained, so updated and re-emitted
    rows = on_late({"ts": 5}, 7, "a", 0, None, 15, True)
    assert rows == [{"key": "a", "n": 2, "start": 0, "end": 10}]
    assert state.late == 1
    # past the retention the record is only counted
    assert on_late({"ts": 5}, 8, "a", 0, None, 31, True) == []
    assert state.late == 2


def test_late_records_are_dead_lettered_under_the_policys_stage() -> None:
    rules = WindowRules(
        WindowSpec("session", "ts", 5, 0), emit="final", late="dead-letter", retention_ms=0
    )
    policy = RecordErrors("skip", "my-operator")
    state = new_window_state(rules, COUNT, policy)
    _, _, on_session, _ = state.process_args()
    assert on_session({"ts": 1}, 1, "k", 1, None, 0) == []
    assert state.advance(100) == [{"key": "k", "n": 1, "start": 1, "end": 6}]
    assert on_session({"ts": 2}, 2, "k", 2, None, 100) == []
    [dead] = policy.take()
    assert dead.stage == "my-operator"
    assert dead.offset == 2
    assert "joins no open session" in dead.reason


def _session_rows(events: list[tuple[str, int]], gap: int, cut: int | None) -> list[Any]:
    """Sessions of ``events`` (key, time), snapshotting and restoring at ``cut``."""
    rules = WindowRules(WindowSpec("session", "ts", gap, 0))
    state = new_window_state(rules, COUNT, RecordErrors("skip", "counter"))
    rows: list[Any] = []
    for i, (key, t) in enumerate(events):
        if i == cut:
            snapshot = state.snapshot()
            state = new_window_state(rules, COUNT, RecordErrors("skip", "counter"))
            state.restore(snapshot)
        _, _, on_session, _ = state.process_args()
        rows += on_session({"ts": t}, i, key, t, None, -1)
        rows += state.take_pending()
    return rows + state.finish(saw_batch=True)


@given(
    st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 60)), max_size=30),
    st.integers(1, 10),
    st.data(),
)
def test_sessions_match_a_plain_grouping_and_survive_a_snapshot(
    events: list[tuple[str, int]], gap: int, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(events)))
    rows = _session_rows(events, gap, cut)
    assert rows == _session_rows(events, gap, None)
    # the reference: per key, sort the times and split where the gap is exceeded
    expected = []
    for key in "ab":
        times = sorted(t for k, t in events if k == key)
        spans: list[list[int]] = []
        for t in times:
            if spans and t <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], t + gap)
                spans[-1][2] += 1
            else:
                spans.append([t, t + gap, 1])
        expected += [{"key": key, "n": n, "start": s, "end": e} for s, e, n in spans]
    key_of = lambda r: (r["key"], r["start"])  # noqa: E731
    assert sorted(rows, key=key_of) == sorted(expected, key=key_of)
    assert sum(r["n"] for r in rows) == len(events)


def test_a_projection_needs_no_aggregation() -> None:
    rules = WindowRules(None, aggregated=False)
    state = new_window_state(rules, None, RecordErrors("skip", "p"))
    assert state.finish(saw_batch=True) == []
