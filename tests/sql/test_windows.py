"""Group windows, watermarks, lateness policies and EMIT modes."""

from __future__ import annotations

import copy
import random
from collections import Counter
from typing import Any

import pytest

from partita.runtime import Batch, CheckpointError
from partita.sql import compile_query, run_query

TUMBLE = (
    "SELECT k, COUNT(*) AS n, SUM(x) AS s, window_start, window_end FROM t "
    "GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"
)


def recs(*items: tuple[str, int, int]) -> list[dict[str, Any]]:
    return [{"k": k, "ts": ts, "x": x} for k, ts, x in items]


def as_set(rows: list[dict[str, Any]]) -> Counter[tuple[tuple[str, Any], ...]]:
    return Counter(tuple(sorted(r.items(), key=lambda kv: kv[0])) for r in rows)


def test_tumble_final_rows() -> None:
    rows = recs(("a", 100, 1), ("b", 200, 2), ("a", 999, 3), ("a", 1000, 4), ("b", 2500, 5))
    result = run_query(TUMBLE, rows)
    assert as_set(result.rows) == as_set(
        [
            {"k": "a", "n": 2, "s": 4, "window_start": 0, "window_end": 1000},
            {"k": "b", "n": 1, "s": 2, "window_start": 0, "window_end": 1000},
            {"k": "a", "n": 1, "s": 4, "window_start": 1000, "window_end": 2000},
            {"k": "b", "n": 1, "s": 5, "window_start": 2000, "window_end": 3000},
        ]
    )
    assert result.counts.late == 0 and result.counts.rows_out == 4


def test_windows_close_when_the_watermark_passes_their_end() -> None:
    q = compile_query(TUMBLE)
    stage, program = q.routing_stage(1), q.new_program()
    routed = stage.route(Batch.from_records(recs(("a", 100, 1), ("a", 999, 1))))
    assert routed.watermark == 999
    assert program.process(routed.parts[0]) == []  # type: ignore[arg-type]
    assert program.advance(999) == []
    routed = stage.route(Batch.from_records(recs(("a", 1000, 1)), start=2))
    program.process(routed.parts[0])  # type: ignore[arg-type]
    assert program.advance(routed.watermark) == [  # type: ignore[arg-type]
        {"k": "a", "n": 2, "s": 2, "window_start": 0, "window_end": 1000}
    ]
    assert program.finish() == [
        {"k": "a", "n": 1, "s": 1, "window_start": 1000, "window_end": 2000}
    ]


def test_allowed_lateness_keeps_windows_open() -> None:
    rows = recs(("a", 100, 1), ("a", 1200, 1), ("a", 900, 1))
    strict = run_query(TUMBLE, rows)
    assert strict.counts.late == 1
    lenient = run_query(TUMBLE, rows, allowed_lateness=300)
    assert lenient.counts.late == 0
    assert {r["window_start"]: r["n"] for r in lenient.rows} == {0: 2, 1000: 1}


def test_late_records_dead_lettered_with_reason() -> None:
    rows = recs(("a", 100, 1), ("a", 1500, 1), ("a", 200, 7))
    result = run_query(TUMBLE, rows, late="dead-letter")
    (dead,) = result.dead_letters
    assert dead.reason.startswith("late")
    assert dead.offset == 2 and dead.record == {"k": "a", "ts": 200, "x": 7}
    assert result.counts.late == 1
    assert run_query(TUMBLE, rows).dead_letters == []  # drop: counted only


def test_late_update_reemits_the_closed_window() -> None:
    rows = recs(("a", 100, 1), ("a", 1500, 1), ("a", 200, 7))
    for batch_size in (1, 2, 3):
        result = run_query(TUMBLE, rows, late="update", batch_size=batch_size)
        window0 = [r for r in result.rows if r["window_start"] == 0]
        assert [r["s"] for r in window0] == [1, 8], batch_size
        assert result.counts.late == 1


def test_late_update_forgets_after_retention() -> None:
    rows = recs(("a", 100, 1), ("a", 5000, 1), ("a", 200, 7))
    result = run_query(TUMBLE, rows, late="update", retention=1000)
    assert [r["s"] for r in result.rows if r["window_start"] == 0] == [1]
    assert result.counts.late == 1
    assert result.dead_letters[0].reason.startswith("late")


def test_emit_changes_rows_and_last_equals_final() -> None:
    rng = random.Random(7)
    rows = [
        {"k": rng.choice("abc"), "ts": i * 37 + rng.randint(-40, 40), "x": rng.randint(0, 9)}
        for i in range(300)
    ]
    final = run_query(TUMBLE, rows, allowed_lateness=50)
    changes = run_query(TUMBLE + " EMIT CHANGES", rows, allowed_lateness=50, partitions=3)
    aggregated = changes.counts.rows_in - changes.counts.late - changes.counts.errored
    assert len(changes.rows) == aggregated
    last: dict[tuple[Any, int], dict[str, Any]] = {}
    for row in changes.rows:
        last[(row["k"], row["window_start"])] = row
    assert as_set(list(last.values())) == as_set(final.rows)


@pytest.mark.parametrize(
    "query",
    [
        TUMBLE,
        "SELECT k, COUNT(*) AS n, MIN(x) AS lo, window_start FROM t "
        "GROUP BY k, HOP(ts, INTERVAL '250' MILLISECOND, INTERVAL '1' SECOND)",
        "SELECT k, COUNT(*) AS n, MAX(x) AS hi, window_start, window_end FROM t "
        "GROUP BY k, SESSION(ts, INTERVAL '100' MILLISECOND)",
        "SELECT k, COUNT(*) AS n, SUM(x) AS s, window_start, window_end FROM t "
        "GROUP BY k, CUMULATE(ts, INTERVAL '100' MILLISECOND, INTERVAL '500' MILLISECOND)",
        TUMBLE + " EMIT CHANGES",
    ],
)
def test_result_independent_of_partitions_and_batching(query: str) -> None:
    rng = random.Random(11)
    rows = [
        {"k": rng.choice("abcde"), "ts": i * 20 + rng.randint(-60, 60), "x": rng.randint(0, 9)}
        for i in range(400)
    ]
    base = run_query(query, rows, allowed_lateness=30)
    for partitions, batch_size in [(1, 1), (2, 7), (4, 64), (3, 1000)]:
        other = run_query(
            query, rows, partitions=partitions, batch_size=batch_size, allowed_lateness=30
        )
        assert as_set(other.rows) == as_set(base.rows)
        assert other.counts == base.counts


def test_hop_windows() -> None:
    q = (
        "SELECT k, COUNT(*) AS n, window_start, window_end FROM t "
        "GROUP BY k, HOP(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)"
    )
    result = run_query(q, recs(("a", 1500, 0)))
    assert [(r["window_start"], r["window_end"]) for r in result.rows] == [(0, 2000), (1000, 3000)]


def test_hop_record_joins_only_its_open_windows() -> None:
    q = (
        "SELECT COUNT(*) AS n, window_start FROM t "
        "GROUP BY HOP(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)"
    )
    result = run_query(q, recs(("a", 100, 0), ("a", 2100, 0), ("a", 1500, 0)))
    assert {r["window_start"]: r["n"] for r in result.rows} == {-1000: 1, 0: 1, 1000: 2, 2000: 1}
    assert result.counts.late == 0


def test_sessions_merge_and_touching_records_join() -> None:
    q = (
        "SELECT k, COUNT(*) AS n, window_start, window_end FROM t "
        "GROUP BY k, SESSION(ts, INTERVAL '100' MILLISECOND)"
    )
    rows = recs(("a", 0, 0), ("a", 100, 0), ("a", 300, 0), ("a", 200, 0), ("b", 50, 0))
    result = run_query(q, rows, allowed_lateness=1000)
    assert as_set(result.rows) == as_set(
        [
            {"k": "a", "n": 4, "window_start": 0, "window_end": 400},
            {"k": "b", "n": 1, "window_start": 50, "window_end": 150},
        ]
    )


def test_session_lateness_is_decided_per_record() -> None:
    q = "SELECT COUNT(*) AS n, window_start FROM t GROUP BY SESSION(ts, 100)"
    rows = recs(("a", 0, 0), ("a", 500, 0), ("a", 50, 0), ("a", 450, 0))
    result = run_query(q, rows, late="dead-letter")
    assert result.counts.late == 1  # ts 50: its session [0, 100) closed at watermark 500
    assert result.dead_letters[0].offset == 2
    assert {r["window_start"]: r["n"] for r in result.rows} == {0: 1, 450: 2}


def test_iso_timestamps() -> None:
    rows = [
        {"k": "a", "ts": "2024-01-01T00:00:00.500Z", "x": 1},
        {"k": "a", "ts": "2024-01-01T00:00:00.900+00:00", "x": 2},
        {"k": "a", "ts": "2024-01-01T00:00:01", "x": 3},
    ]
    result = run_query(TUMBLE, rows)
    start = 1704067200000
    assert [(r["window_start"], r["s"]) for r in result.rows] == [(start, 3), (start + 1000, 3)]


def test_idle_source_advances_the_watermark() -> None:
    q = compile_query(TUMBLE)
    stage, program = q.routing_stage(1), q.new_program()
    assert stage.on_idle(5000) is None  # nothing seen yet
    routed = stage.route(Batch.from_records(recs(("a", 100, 1))))
    program.process(routed.parts[0])  # type: ignore[arg-type]
    assert program.advance(routed.watermark) == []  # type: ignore[arg-type]
    watermark = stage.on_idle(950)
    assert watermark == 1050
    assert [r["n"] for r in program.advance(watermark)] == [1]


def test_ascending_watermark() -> None:
    rows = recs(("a", 100, 1), ("a", 1100, 1), ("a", 900, 1))
    result = run_query(TUMBLE, rows, watermark="ascending")
    assert result.counts.late == 1


def test_window_bound_functions_and_velostream_clause() -> None:
    flink = run_query(
        "SELECT k, TUMBLE_START(ts, INTERVAL '1' SECOND) AS ws, "
        "TUMBLE_END(ts, INTERVAL '1' SECOND) AS we, COUNT(*) AS n FROM t "
        "GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)",
        recs(("a", 100, 0), ("a", 1100, 0)),
    )
    velo = run_query(
        "SELECT k, window_start AS ws, window_end AS we, COUNT(*) AS n FROM t "
        "GROUP BY k WINDOW TUMBLING(INTERVAL '1' SECOND)",
        recs(("a", 100, 0), ("a", 1100, 0)),
        event_time="ts",
    )
    assert (
        flink.rows
        == velo.rows
        == [
            {"k": "a", "ws": 0, "we": 1000, "n": 1},
            {"k": "a", "ws": 1000, "we": 2000, "n": 1},
        ]
    )


def test_window_without_keys_and_having() -> None:
    result = run_query(
        "SELECT COUNT(*) AS n, window_start FROM t GROUP BY TUMBLE(ts, 1000) HAVING COUNT(*) > 1",
        recs(("a", 1, 0), ("b", 2, 0), ("a", 1500, 0)),
        partitions=3,
    )
    assert result.rows == [{"n": 2, "window_start": 0}]


def test_where_applies_before_windowing() -> None:
    result = run_query(TUMBLE + "", recs(("a", 1, 1), ("a", 2, -1)))
    assert result.rows[0]["n"] == 2
    filtered = run_query(
        TUMBLE.replace("FROM t", "FROM t WHERE x > 0"), recs(("a", 1, 1), ("a", 2, -1))
    )
    assert filtered.rows[0]["n"] == 1 and filtered.counts.filtered == 1


def test_session_records_exactly_gap_apart_join() -> None:
    q = "SELECT COUNT(*) AS n, window_start, window_end FROM t GROUP BY SESSION(ts, 1000)"
    for batch_size in (1, 2):
        result = run_query(q, recs(("a", 0, 0), ("a", 1000, 0)), batch_size=batch_size)
        assert result.rows == [{"n": 2, "window_start": 0, "window_end": 2000}]


def test_late_update_same_for_any_partition_count() -> None:
    rows = recs(("a", 0, 1), ("a", 1500, 1), *[(f"k{i}", 500, 1) for i in range(8)])
    base = run_query(TUMBLE, rows, late="update", retention=10**9)
    assert len([r for r in base.rows if r["window_start"] == 0]) == 9
    for partitions in (2, 5):
        other = run_query(TUMBLE, rows, late="update", retention=10**9, partitions=partitions)
        assert as_set(other.rows) == as_set(base.rows)
        assert other.counts == base.counts


@pytest.mark.parametrize("partitions", [1, 2, 3])
def test_filtered_record_without_key_is_filtered_for_any_partition_count(partitions: int) -> None:
    rows: list[dict[str, Any]] = [{"ts": 0, "x": 0}, {"ts": 1, "k": "a", "x": 1}]
    for query in (
        "SELECT k, COUNT(*) AS n FROM t WHERE x > 0 GROUP BY k",
        "SELECT k, COUNT(*) AS n FROM t WHERE x > 0 GROUP BY k, TUMBLE(ts, 1000)",
    ):
        result = run_query(query, rows, partitions=partitions)
        assert result.rows == [{"k": "a", "n": 1}]
        assert (result.counts.filtered, result.counts.errored) == (1, 0)


def test_key_partitions_are_stable_across_processes() -> None:
    from partita.sql._hashing import stable_hash

    # CRC-32 of the repr: fixed values, whatever PYTHONHASHSEED is
    assert stable_hash("ACME") == 387908287
    assert stable_hash(1) == stable_hash(1.0) == stable_hash(True)
    assert stable_hash(("a", 1)) == stable_hash(("a", 1.0))


def test_failing_late_update_keeps_the_rows_it_closed() -> None:
    rows = [{"k": "a", "ts": 100, "x": 1}, {"k": "a", "ts": 1500, "x": 1}]
    rows.append({"k": "a", "ts": 200, "x": "bad"})  # late, and its update fails
    for batch_size in (1, 3):
        result = run_query(TUMBLE, rows, late="update", batch_size=batch_size)
        assert [(r["window_start"], r["s"]) for r in result.rows] == [(0, 1), (1000, 1)]
        assert result.counts.errored == 1 and result.counts.late == 0


def test_session_failure_keeps_the_sessions_it_closed() -> None:
    q = "SELECT k, SUM(x) AS s, window_start FROM t GROUP BY k, SESSION(ts, 100)"
    rows = [{"k": "a", "ts": 0, "x": 1}, {"k": "b", "ts": 500, "x": 1}]
    rows.append({"k": "a", "ts": 450, "x": "bad"})  # closes a's session, then fails
    for batch_size in (1, 3):
        result = run_query(q, rows, batch_size=batch_size)
        assert as_set(result.rows) == as_set(
            [{"k": "a", "s": 1, "window_start": 0}, {"k": "b", "s": 1, "window_start": 500}]
        )
        assert result.counts.errored == 1


# ------------------------------------------------- nothing lost (issue 8 items 4, 5, 6, 14)

BIG = 2**63  # event times and sizes at and past a 64-bit integer are still just ints


@pytest.mark.parametrize(
    ("window", "memberships"),
    [
        ("TUMBLE(ts, INTERVAL '1' SECOND)", 3),
        ("HOP(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)", 6),
        ("CUMULATE(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)", 3),
        ("SESSION(ts, INTERVAL '1' SECOND)", 3),
        ("TUMBLE(ts, INTERVAL '200000000000' DAY)", 3),
    ],
)
@pytest.mark.parametrize("emit", ["", " EMIT CHANGES"])
@pytest.mark.parametrize("late", ["drop", "update"])
def test_event_times_past_2_63_are_kept_exactly(
    window: str, memberships: int, emit: str, late: str
) -> None:
    query = f"SELECT k, COUNT(*) AS n FROM t GROUP BY k, {window}{emit}"
    records = [{"k": "a", "ts": BIG - 1}, {"k": "a", "ts": BIG + 5}, {"k": "b", "ts": BIG * 4}]
    result = run_query(query, records, late=late)
    assert result.counts.late == result.counts.errored == 0
    if emit:  # one row per record per window it joined
        assert len(result.rows) == memberships
    else:  # every window closed at end of input, every record in its windows
        assert sum(r["n"] for r in result.rows) == memberships


def test_a_row_that_fails_when_its_window_closes_is_counted() -> None:
    query = "SELECT k, MAX(x) + 1 AS y FROM t GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"
    records = [
        {"k": "a", "x": "s", "ts": 0},
        {"k": "b", "x": 1, "ts": 0},
        {"k": "b", "x": 2, "ts": 5000},
    ]
    skipped = run_query(query, records)
    assert {r["k"] for r in skipped.rows} == {"b"}
    assert skipped.counts.errored == 1
    lettered = run_query(query, records, on_error="dead-letter")
    assert [d.reason for d in lettered.dead_letters if "output row" in d.reason] != []


def test_late_update_counts_and_dead_letters_records_past_retention() -> None:
    query = "SELECT k, COUNT(*) AS n FROM t GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"
    records = [{"k": "a", "ts": 10_000}, {"k": "a", "ts": 0}, {"k": "a", "ts": 9_500}]
    result = run_query(query, records, late="update")
    assert result.counts.late == 2  # one expired, one that updated a retained window
    expired = [d for d in result.dead_letters if d.reason.startswith("late")]
    assert [d.offset for d in expired] == [1]


def test_one_session_keeps_one_scheduled_close_not_one_per_record() -> None:
    query = "SELECT k, COUNT(*) AS n FROM t GROUP BY k, SESSION(ts, INTERVAL '1' HOUR)"
    program = compile_query(query).new_program()
    stage = compile_query(query).routing_stage(1)
    records = [{"k": "a", "ts": i} for i in range(20_000)]
    routed = stage.route(Batch.from_records(records))
    assert routed.parts[0] is not None
    program.process(routed.parts[0])
    assert program.scheduled_closes() <= 2
    assert program.finish() == [{"k": "a", "n": 20_000}]


@pytest.mark.parametrize(
    ("window", "keys"),
    [
        ("", {"groups"}),
        (", TUMBLE(ts, INTERVAL '1' SECOND)", {"windows", "closed"}),
        (", HOP(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)", {"windows", "closed"}),
        (", CUMULATE(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)", {"windows", "closed"}),
        (
            ", SESSION(ts, INTERVAL '1' SECOND)",
            {"sessions", "closed_sessions", "heap", "due", "seq"},
        ),
    ],
)
def test_program_snapshot_is_one_flat_dict_of_the_window_state_and_the_program(
    window: str, keys: set[str]
) -> None:
    # the layout checkpoints were written in before window states had their own module
    query = compile_query(f"SELECT k, COUNT(*) AS n FROM t GROUP BY k{window}", late="update")
    program = query.new_program()
    stage = query.routing_stage(1)
    routed = stage.route(Batch.from_records([{"k": "a", "ts": 10}, {"k": "b", "ts": 3000}]))
    assert routed.parts[0] is not None
    program.process(routed.parts[0])
    program.advance(2500)
    state: Any = program.snapshot()
    program_keys = {"wm", "saw_batch", "rows_in", "rows_out", "filtered", "errors", "group_layout"}
    assert set(state) == keys | {"late", "pending"} | program_keys
    again = query.new_program()
    again.restore(copy.deepcopy(state))  # a snapshot shares the program's dicts
    assert again.snapshot() == state
    assert again.finish() == program.finish()


@pytest.mark.parametrize("window", ["", ", TUMBLE(ts, INTERVAL '1' SECOND)"])
def test_a_checkpoint_of_groups_in_the_earlier_layout_is_refused_not_misread(window: str) -> None:
    # Before the row count was shared, SUM kept its non-NULL count where it now keeps
    # its NULLs: read as they are, those groups would sum to NULL.
    query = compile_query(f"SELECT k, SUM(x) AS s FROM t GROUP BY k{window}")
    program = query.new_program()
    program.process(Batch.from_records([{"k": "a", "ts": 10, "x": 1}]))
    state: Any = copy.deepcopy(program.snapshot())
    del state["group_layout"]  # as a checkpoint taken before it was recorded
    with pytest.raises(CheckpointError, match=r"layout 1 .* layout 2: start afresh"):
        query.new_program().restore(state)


def test_a_checkpoint_without_groups_restores_from_any_layout() -> None:
    query = compile_query("SELECT k, SUM(x) AS s FROM t GROUP BY k")
    state: Any = copy.deepcopy(query.new_program().snapshot())
    del state["group_layout"]
    again = query.new_program()
    again.restore(state)
    assert again.process(Batch.from_records([{"k": "a", "x": 2}])) == []
    assert again.finish() == [{"k": "a", "s": 2}]
