"""An example property test of a pipeline with partita.testing (run by tests/testing)."""

from hypothesis import given, settings

from partita import RestartPolicy
from partita.testing import interleavings, run_steps, run_sync, streams

WINDOW = "SELECT k, COUNT(*) AS n FROM t GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"


def double(stream):
    return stream.map(lambda r: {**r, "v": r["v"] * 2})


def test_double() -> None:
    assert run_sync(double, [{"k": "a", "v": 1}]) == [{"k": "a", "v": 2}]


@settings(max_examples=10, deadline=None)
@given(streams(disorder_ms=300, max_size=20))
def test_window_counts_every_record_once(stream) -> None:
    rows = run_sync(WINDOW, stream.records, allowed_lateness=300)
    assert sum(r["n"] for r in rows) == len(stream.records)


@settings(max_examples=10, deadline=None)
@given(interleavings([{"k": "a", "v": i} for i in range(20)], crash=True))
def test_pauses_and_crashes_change_nothing(steps) -> None:
    rows = run_steps(double, steps, restart=RestartPolicy(max_restarts=50))
    assert rows == [{"k": "a", "v": 2 * i} for i in range(20)]
