"""Hypothesis properties of the SQL layer (DESIGN.md, "Streaming SQL" invariants).

* Results, as multisets, and counters do not depend on partition count or batch size.
* Results do not depend on arrival order within the allowed lateness.
* The last ``EMIT CHANGES`` row of a group equals its ``EMIT FINAL`` row.
* ``EMIT CHANGES`` emits one row per record aggregated into a group, in source order per
  key (compared with the naive reference's change stream).
* Every input record is counted exactly once as aggregated, filtered, late or errored,
  and the late / errored side outputs carry the right records (offsets included);
  ``on_error="fail"`` names the first bad record's offset.
* ISO-8601 event times give the same windows as epoch milliseconds.
* Routing: a stateless query hands each batch whole to one partition, round-robin; a keyed
  query sends each key to one partition, and the same one in every process.
* ``late="update"`` does not depend on partition count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from partita.runtime import BadRecord, Batch
from tests.sql._reference import (
    Agg,
    Cumulate,
    Hop,
    Record,
    Session,
    Tumble,
    WindowQuery,
    compiled,
    normalize,
    normalize_row,
    record_strategy,
    run_reference,
    run_sql,
    streams,
)
from tests.sql.test_oracle_windows import CASES_BY_NAME, WINDOW_CASES, WindowCase, expected_for

LATENESS = st.sampled_from([0, 250, 1000, 2500, 0])

NON_WINDOWED: list[tuple[str, WindowQuery]] = [
    (
        "SELECT k, COUNT(*) AS n, COUNT(x) AS nx, SUM(x) AS sx, MAX(y) AS my "
        "FROM events GROUP BY k",
        WindowQuery(
            (("k", lambda r: r["k"]),),
            (
                Agg("n", "count_star"),
                Agg("nx", "count", lambda r: r["x"]),
                Agg("sx", "sum", lambda r: r["x"]),
                Agg("my", "max", lambda r: r["y"]),
            ),
        ),
    ),
    (
        "SELECT k, g, COUNT(DISTINCT s) AS ds, AVG(y) AS ay FROM events "
        "WHERE x IS NULL OR x < 20 GROUP BY k, g",
        WindowQuery(
            (("k", lambda r: r["k"]), ("g", lambda r: r["g"])),
            (Agg("ds", "count_distinct", lambda r: r["s"]), Agg("ay", "avg", lambda r: r["y"])),
            where=lambda r: r["x"] is None or r["x"] < 20,
        ),
    ),
]

STATELESS = [
    "SELECT k, x * 2 AS x2 FROM events WHERE x > 0 OR s LIKE 'a%'",
    "SELECT COALESCE(s, k) AS sk, ts FROM events",
]

NO_HAVING = [c for c in WINDOW_CASES if c.ref.having is None]


def _key_names(query: WindowQuery) -> list[str]:
    return [alias for alias, _ in query.keys]


def _counts(result: Any) -> tuple[int, ...]:
    c = result.counts
    return (c.rows_in, c.rows_out, c.filtered, c.late, c.errored)


BAD_TS: list[Any] = [None, "soon", 1.5, [1]]


@st.composite
def streams_with_bad_records(draw: st.DrawFn, any_field: bool = False) -> list[Record]:
    """A stream where some records have a missing or unusable event time (or, with
    ``any_field``, miss any one field: what then happens is not pinned, only that it does
    not depend on batching or partitioning)."""
    records = draw(streams())
    for i in draw(st.lists(st.integers(0, max(len(records) - 1, 0)), max_size=4)):
        if not records:
            break
        bad = dict(records[i])
        if any_field and draw(st.booleans()):
            bad.pop(draw(st.sampled_from(sorted(bad))))
        else:
            choice = draw(st.sampled_from([*range(len(BAD_TS)), -1]))
            if choice == -1:
                bad.pop("ts", None)
            else:
                bad["ts"] = BAD_TS[choice]
        records.insert(i, bad)
    return records


ALL_SQL: list[str] = [c.sql for c in WINDOW_CASES] + [sql for sql, _ in NON_WINDOWED] + STATELESS


def _letters(result: Any) -> list[tuple[int | None, bool]]:
    """Dead letters as (offset, is late); the error text may name either bad field."""
    return sorted(((d.offset, "late" in d.reason) for d in result.dead_letters), key=repr)


def _check_independent(
    sql_text: str, records: list[Record], lateness: int, partitions: int, batch_size: int
) -> None:
    options: dict[str, Any] = {
        "allowed_lateness": lateness,
        "on_error": "dead-letter",
        "late": "dead-letter",
    }
    base = run_sql(sql_text, records, **options)
    got = run_sql(sql_text, records, partitions=partitions, batch_size=batch_size, **options)
    assert normalize(got.rows) == normalize(base.rows)
    assert _counts(got) == _counts(base)
    assert _letters(got) == _letters(base)


@pytest.mark.parametrize("sql_text", ALL_SQL)
@given(
    records=streams_with_bad_records(),
    lateness=LATENESS,
    partitions=st.integers(1, 5),
    batch_size=st.integers(1, 50),
)
def test_result_independent_of_partitions_and_batch_size(
    sql_text: str, records: list[Record], lateness: int, partitions: int, batch_size: int
) -> None:
    _check_independent(sql_text, records, lateness, partitions, batch_size)


@pytest.mark.parametrize("sql_text", ALL_SQL)
@given(
    records=streams_with_bad_records(any_field=True),
    lateness=LATENESS,
    partitions=st.integers(1, 5),
    batch_size=st.integers(1, 50),
)
def test_missing_fields_fate_independent_of_partitions_and_batch_size(
    sql_text: str, records: list[Record], lateness: int, partitions: int, batch_size: int
) -> None:
    """Records missing any field: whether WHERE or the key fails first, the same everywhere."""
    _check_independent(sql_text, records, lateness, partitions, batch_size)


@pytest.mark.parametrize(
    "sql_text",
    [
        "SELECT g, COUNT(*) AS n FROM events WHERE x > 0 GROUP BY g",
        "SELECT g, window_start, window_end, COUNT(*) AS n FROM events WHERE x > 0 "
        "GROUP BY g, TUMBLE(ts, INTERVAL '1' SECOND)",
    ],
)
def test_filtered_record_missing_group_key_same_fate_for_any_partition_count(
    sql_text: str,
) -> None:
    _check_independent(sql_text, [{"ts": 0, "x": 0}, {"ts": 1, "g": 1, "x": 1}], 0, 2, 1)


@pytest.mark.parametrize("case", WINDOW_CASES, ids=lambda c: c.name)
@given(records=streams(), lateness=LATENESS, data=st.data())
def test_result_independent_of_arrival_order_within_lateness(
    case: WindowCase, records: list[Record], lateness: int, data: st.DataObject
) -> None:
    in_order = sorted(records, key=lambda r: r["ts"])
    jitter = data.draw(st.lists(st.integers(0, lateness), min_size=len(records)))
    # each record moves later by at most `lateness` of event time (ties keep source order),
    # so every record's ts > watermark before it: none is late, and no record can touch a
    # session that the watermark already closed
    order = sorted(range(len(in_order)), key=lambda i: (in_order[i]["ts"] + jitter[i], i))
    shuffled = [in_order[i] for i in order]
    base = run_sql(case.sql, in_order, allowed_lateness=lateness, batch_size=7)
    got = run_sql(case.sql, shuffled, allowed_lateness=lateness, batch_size=7, partitions=2)
    assert base.counts.late == 0
    assert got.counts.late == 0
    assert normalize(got.rows) == normalize(base.rows)


def _final_sql(case: WindowCase) -> str:
    return case.sql + " EMIT FINAL"


@pytest.mark.parametrize("case", NO_HAVING, ids=lambda c: c.name)
@given(records=streams(), lateness=LATENESS, batch_size=st.integers(1, 50))
def test_windowed_last_change_row_equals_final_row(
    case: WindowCase, records: list[Record], lateness: int, batch_size: int
) -> None:
    final = run_sql(_final_sql(case), records, allowed_lateness=lateness)
    changes = run_sql(
        case.sql + " EMIT CHANGES",
        records,
        allowed_lateness=lateness,
        partitions=2,
        batch_size=batch_size,
    )
    group = [*_key_names(case.ref), "window_start", "window_end"]
    last: dict[tuple[Any, ...], Record] = {}
    for row in changes.rows:
        last[normalize_row({n: row[n] for n in group})] = row
    finals = {normalize_row({n: row[n] for n in group}): row for row in final.rows}
    assert len(finals) == len(final.rows), "a window was emitted twice by EMIT FINAL"
    for ident, row in finals.items():
        assert ident in last, f"no EMIT CHANGES row for window {ident}"
        assert normalize_row(last[ident]) == normalize_row(row)
    if not isinstance(case.ref.window, Session):
        # aligned windows never change identity: the groups are the same
        assert set(last) == set(finals)


@pytest.mark.parametrize(("sql_text", "ref"), NON_WINDOWED)
@given(records=streams(), batch_size=st.integers(1, 50), partitions=st.integers(1, 5))
def test_grouped_last_change_row_equals_final_row(
    sql_text: str, ref: WindowQuery, records: list[Record], batch_size: int, partitions: int
) -> None:
    final = run_sql(sql_text, records)
    changes = run_sql(
        sql_text + " EMIT CHANGES", records, partitions=partitions, batch_size=batch_size
    )
    names = _key_names(ref)
    last: dict[tuple[Any, ...], Record] = {}
    for row in changes.rows:
        last[normalize_row({n: row[n] for n in names})] = row
    assert normalize(last.values()) == normalize(final.rows)


def _per_key(rows: list[Record], names: list[str]) -> dict[tuple[Any, ...], list[Any]]:
    out: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for row in rows:
        out[normalize_row({n: row[n] for n in names})].append(normalize_row(row))
    return dict(out)


CHANGE_CASES: list[tuple[str, str, WindowQuery]] = [
    *((c.name, c.sql, c.ref) for c in NO_HAVING),
    *((f"grouped-{i}", sql, ref) for i, (sql, ref) in enumerate(NON_WINDOWED)),
]


@pytest.mark.parametrize(
    ("name", "sql_text", "ref"), CHANGE_CASES, ids=[c[0] for c in CHANGE_CASES]
)
@given(
    records=streams(),
    lateness=LATENESS,
    partitions=st.integers(1, 5),
    batch_size=st.integers(1, 50),
)
def test_emit_changes_one_row_per_aggregated_record_in_source_order(
    name: str,
    sql_text: str,
    ref: WindowQuery,
    records: list[Record],
    lateness: int,
    partitions: int,
    batch_size: int,
) -> None:
    expected = expected_for(ref, records, lateness)
    got = run_sql(
        sql_text + " EMIT CHANGES",
        records,
        partitions=partitions,
        batch_size=batch_size,
        allowed_lateness=lateness,
    )
    if not isinstance(ref.window, Hop | Cumulate):
        assert len(got.rows) == expected.aggregated
    # HOP, CUMULATE: one row per (aggregated record, open window it joined)
    assert len(got.rows) == len(expected.change_rows)
    # order per GROUP BY key (HOP, CUMULATE: per key and window; one record feeds several)
    names = _key_names(ref)
    if isinstance(ref.window, Hop | Cumulate):
        names = [*names, "window_start", "window_end"]
    assert _per_key(got.rows, names) == _per_key(expected.change_rows, names)


@pytest.mark.parametrize("case", WINDOW_CASES, ids=lambda c: c.name)
@given(
    records=streams_with_bad_records(),
    lateness=LATENESS,
    partitions=st.integers(1, 5),
    batch_size=st.integers(1, 50),
)
def test_every_record_accounted_exactly_once(
    case: WindowCase, records: list[Record], lateness: int, partitions: int, batch_size: int
) -> None:
    expected = expected_for(case.ref, records, lateness)
    got = run_sql(
        case.sql,
        records,
        partitions=partitions,
        batch_size=batch_size,
        allowed_lateness=lateness,
        on_error="dead-letter",
        late="dead-letter",
    )
    c = got.counts
    assert c.rows_in == len(records)
    assert c.errored == expected.errored
    both = expected.filtered_and_late
    assert expected.late <= c.late <= expected.late + both
    assert expected.filtered <= c.filtered <= expected.filtered + both
    assert c.filtered + c.late == expected.filtered + expected.late + both
    aggregated = c.rows_in - c.filtered - c.late - c.errored
    assert aggregated == expected.aggregated
    assert c.rows_out == len(got.rows)
    late_letters = [d for d in got.dead_letters if "late" in d.reason]
    error_letters = [d for d in got.dead_letters if "late" not in d.reason]
    assert len(late_letters) == c.late
    assert len(error_letters) == c.errored
    if both == 0:
        assert sorted(d.offset for d in late_letters) == expected.late_offsets
    assert normalize(got.rows) == normalize(expected.final_rows)


@pytest.mark.parametrize("sql_text", STATELESS + [sql for sql, _ in NON_WINDOWED])
@given(records=streams(), partitions=st.integers(1, 5), batch_size=st.integers(1, 50))
def test_non_windowed_records_accounted(
    sql_text: str, records: list[Record], partitions: int, batch_size: int
) -> None:
    got = run_sql(sql_text, records, partitions=partitions, batch_size=batch_size)
    c = got.counts
    assert c.rows_in == len(records)
    assert (c.late, c.errored) == (0, 0)
    assert c.rows_out == len(got.rows)
    if sql_text in STATELESS:
        assert c.rows_out == c.rows_in - c.filtered


def test_tumble_query_has_reference_shape() -> None:
    """Sanity: the catalogue covers every window kind."""
    kinds = {type(c.ref.window) for c in WINDOW_CASES}
    assert kinds == {Tumble, Hop, Cumulate, Session}


def _iso(ts: int, style: int) -> str:
    moment = datetime.fromtimestamp(ts / 1000, UTC)
    text = moment.isoformat(timespec="milliseconds")
    if style == 0:
        return text  # ...+00:00
    if style == 1:
        return text.replace("+00:00", "Z")
    return text.replace("+00:00", "")  # naive: UTC


@pytest.mark.parametrize("case", WINDOW_CASES, ids=lambda c: c.name)
@given(records=streams(), lateness=LATENESS, data=st.data())
def test_iso_event_times_equal_epoch_ms(
    case: WindowCase, records: list[Record], lateness: int, data: st.DataObject
) -> None:
    """Event time as ISO-8601 text gives the same windows (bounds still epoch ms ints)."""
    styles = data.draw(st.lists(st.integers(0, 2), min_size=len(records), max_size=len(records)))
    as_text = [{**r, "ts": _iso(r["ts"], style)} for r, style in zip(records, styles, strict=True)]
    base = run_sql(case.sql, records, allowed_lateness=lateness, batch_size=5)
    got = run_sql(case.sql, as_text, allowed_lateness=lateness, batch_size=5)
    assert normalize(got.rows) == normalize(base.rows)
    assert _counts(got) == _counts(base)
    for row in got.rows:
        assert type(row["window_start"]) is int and type(row["window_end"]) is int


@pytest.mark.parametrize("case", WINDOW_CASES[:1] + WINDOW_CASES[-3:-2], ids=lambda c: c.name)
@given(records=streams(min_size=1), data=st.data(), batch_size=st.integers(1, 50))
def test_fail_policy_names_the_first_bad_offset(
    case: WindowCase, records: list[Record], data: st.DataObject, batch_size: int
) -> None:
    """``on_error="fail"`` raises ``BadRecord`` naming the first bad record's offset."""
    index = data.draw(st.integers(0, len(records)))
    bad = {**records[min(index, len(records) - 1)], "ts": "not a time"}
    stream = [*records[:index], bad, *records[index:]]
    with pytest.raises(BadRecord) as info:
        run_sql(case.sql, stream, batch_size=batch_size, on_error="fail")
    assert info.value.offset == index


@given(
    batches=st.lists(st.lists(record_strategy, min_size=1, max_size=10), min_size=1, max_size=6),
    partitions=st.integers(1, 5),
)
def test_stateless_routing_hands_whole_batches_round_robin(
    batches: list[list[Record]], partitions: int
) -> None:
    """A stateless query does not hash per record: each batch goes whole to one partition."""
    stage = compiled(STATELESS[0]).routing_stage(partitions)
    offset = 0
    targets: list[int] = []
    for records in batches:
        routed = stage.route(Batch.from_records(records, start=offset))
        full = [i for i, part in enumerate(routed.parts) if part is not None and len(part)]
        assert len(full) == 1
        part = routed.parts[full[0]]
        assert part is not None
        assert part.records == records
        assert [part.offset_of(i) for i in range(len(records))] == list(
            range(offset, offset + len(records))
        )
        targets.append(full[0])
        offset += len(records)
    assert targets == [(targets[0] + i) % partitions for i in range(len(targets))]


@pytest.mark.parametrize("case", WINDOW_CASES, ids=lambda c: c.name)
@given(records=streams(), partitions=st.integers(2, 5), batch_size=st.integers(1, 20))
def test_keyed_routing_sends_each_key_to_one_partition(
    case: WindowCase, records: list[Record], partitions: int, batch_size: int
) -> None:
    stage = compiled(case.sql, allowed_lateness=10**9).routing_stage(partitions)
    names = _key_names(case.ref)
    owner: dict[tuple[Any, ...], int] = {}
    for start in range(0, len(records), batch_size):
        routed = stage.route(Batch.from_records(records[start : start + batch_size], start=start))
        for index, part in enumerate(routed.parts):
            for record in part.records if part is not None else ():
                key = tuple(record[n] for n in names)
                assert owner.setdefault(key, index) == index, f"key {key} on two partitions"


def test_late_update_same_result_for_any_partition_count() -> None:
    sql_text = CASES_BY_NAME["tumble-count"].sql
    late_keys = [f"key{i}" for i in range(10)]  # some land away from key "a"'s partition
    records = [{"k": "a", "ts": 0}, {"k": "a", "ts": 1500}]
    records += [{"k": key, "ts": 500} for key in late_keys]
    options: dict[str, Any] = {"late": "update", "retention": 10**9}
    base = run_sql(sql_text, records, **options)
    for partitions in (2, 5):
        got = run_sql(sql_text, records, partitions=partitions, **options)
        assert normalize(got.rows) == normalize(base.rows)
        assert _counts(got) == _counts(base)


_ROUTE_SCRIPT = """
import json, sql
from partita.runtime import Batch
stage = sql.compile_query({sql!r}).routing_stage(4)
records = [{{"k": k, "ts": 0}} for k in "abcdefghijklmnop"]
parts = stage.route(Batch.from_records(records)).parts
print(json.dumps({{r["k"]: i for i, p in enumerate(parts) for r in (p.records if p else [])}}))
"""


def test_key_routing_is_stable_across_processes() -> None:
    """Key -> partition must not change between processes (scale-out, restarts)."""
    script = _ROUTE_SCRIPT.format(sql=CASES_BY_NAME["tumble-count"].sql)
    assignments = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        assignments.append(json.loads(done.stdout))
    assert assignments[0] == assignments[1]


TUMBLES = [c for c in NO_HAVING if isinstance(c.ref.window, Tumble)]


@pytest.mark.parametrize("case", TUMBLES, ids=lambda c: c.name)
@given(
    records=streams(),
    lateness=LATENESS,
    partitions=st.integers(1, 5),
    batch_size=st.integers(1, 50),
)
def test_late_update_reemits_each_late_record_into_its_window(
    case: WindowCase, records: list[Record], lateness: int, partitions: int, batch_size: int
) -> None:
    """``late="update"`` (retention longer than the stream): each late record re-emits its
    window's row, so the last row per window is the window over every record."""
    got = run_sql(
        case.sql,
        records,
        partitions=partitions,
        batch_size=batch_size,
        allowed_lateness=lateness,
        late="update",
        retention=10**9,
    )
    everything = run_reference(case.ref, records, allowed_lateness=10**9)
    on_time = expected_for(case.ref, records, lateness)
    assume(on_time.filtered_and_late == 0)
    names = [*_key_names(case.ref), "window_start", "window_end"]
    last: dict[tuple[Any, ...], Record] = {}
    for row in got.rows:
        last[normalize_row({n: row[n] for n in names})] = row
    assert normalize(last.values()) == normalize(everything.final_rows)
    assert len(got.rows) == len(on_time.final_rows) + on_time.late
    assert got.counts.late == on_time.late
