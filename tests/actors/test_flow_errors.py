"""Errors by policy in a Flow: fail (naming operator, function and offset), skip, dead-letter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from partita.actors import CollectSink, Flow, IterableSource
from partita.actors._operators import OperatorError
from partita.runtime import ActorFailed, BatchSizer, Record


def orders(n: int = 50, size: int = 8) -> IterableSource:
    """Orders whose every 7th lacks its price."""
    records = [{"id": i, **({} if i % 7 == 3 else {"price": i * 10})} for i in range(n)]
    return IterableSource("orders", records, sizer=BatchSizer.fixed(size))


def parse_order(r: Record) -> Record:
    return {"id": r["id"], "cents": r["price"] * 100}


GOOD = [{"id": i, "cents": i * 1000} for i in range(50) if i % 7 != 3]


async def test_fail_names_the_operator_the_function_and_the_offset() -> None:
    flow = Flow()
    flow.source(orders()).map(parse_order).sink(CollectSink("out"))
    with pytest.raises(ActorFailed) as info:
        await flow.run()
    assert (
        str(info.value)
        == "actor 'map-1' failed: map(parse_order) at record offset 3: KeyError 'price'"
    )
    assert isinstance(info.value.error, OperatorError)
    assert info.value.offset == 3
    assert str(info.value.error) == "map(parse_order) at record offset 3: KeyError 'price'"


async def test_skip_leaves_the_record_out_and_counts_it() -> None:
    out = CollectSink("out")
    flow = Flow(on_error="skip")
    flow.source(orders()).map(parse_order).filter(lambda r: r["id"] != 11).sink(out)
    stats = await flow.run()
    assert out.rows == [r for r in GOOD if r["id"] != 11]
    assert stats["map-1"].rows_errored == 7
    assert stats["map-1"].errors_by_reason == (("KeyError 'price'", 7),)
    assert stats["filter-2"].rows_filtered == 1
    assert flow.dead_letters == []


async def test_dead_letters_go_to_the_flows_dead_letter_sink() -> None:
    out = CollectSink("out")
    flow = Flow(on_error="dead-letter")
    flow.source(orders()).key_by(lambda r: r["id"] % 3, partitions=3).map(parse_order).sink(out)
    stats = await flow.run()
    assert sorted(out.rows, key=lambda r: r["id"]) == GOOD
    letters = sorted(flow.dead_letters, key=lambda d: d.offset or 0)
    assert [d.offset for d in letters] == [i for i in range(50) if i % 7 == 3]
    assert {d.stage for d in letters} <= {"map-2[0]", "map-2[1]", "map-2[2]"}
    assert letters[0].reason == "map(parse_order): KeyError 'price'"
    assert letters[0].record == {"id": 3}
    assert stats["dead-letter"].rows_in == 7
    assert "dead-letter" not in {r.get("stage") for r in out.rows}  # data never goes there


async def test_dead_letters_to_a_file(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    flow = Flow(dead_letter=path)
    flow.source(orders()).map(parse_order, on_error="dead-letter").sink(CollectSink("out"))
    await flow.run()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["offset"] for line in lines] == [3, 10, 17, 24, 31, 38, 45]
    assert lines[0]["stage"] == "map-1"


async def test_the_operator_policy_overrides_the_flows() -> None:
    flow = Flow(on_error="skip")
    stream = flow.source(orders()).map(parse_order, on_error="fail")
    stream.sink(CollectSink("out"))
    with pytest.raises(ActorFailed, match=r"map\(parse_order\) at record offset 3"):
        await flow.run()
    out = CollectSink("out")
    flow = Flow(on_error="fail")
    flow.source(orders()).map(parse_order, on_error="skip").sink(out)
    await flow.run()
    assert out.rows == GOOD


def tally(state: dict[str, int], r: Record) -> list[Record]:
    state["n"] = state.get("n", 0) + 1  # changes the state before it fails
    state["sum"] = state.get("sum", 0) + r["price"]
    return [{"k": r["id"] % 2, **state}]


@pytest.mark.parametrize("policy", ["skip", "dead-letter"])
async def test_a_skipped_record_leaves_no_trace_in_a_stateful_operator(policy: str) -> None:
    out = CollectSink("out")
    flow = Flow()
    (
        flow.source(orders())
        .key_by(lambda r: r["id"] % 2, partitions=2)
        .stateful(tally, on_error=policy)  # type: ignore[arg-type]
        .sink(out)
    )
    stats = await flow.run()
    expected: list[Record] = []
    states: dict[int, dict[str, int]] = {}
    for i in range(50):
        if i % 7 != 3:
            state = states.setdefault(i % 2, {"n": 0, "sum": 0})
            state["n"] += 1
            state["sum"] += i * 10
            expected.append({"k": i % 2, **state})
    for k in (0, 1):
        assert [r for r in out.rows if r["k"] == k] == [r for r in expected if r["k"] == k]
    assert sum(stats[f"stateful-2[{i}]"].rows_errored for i in range(2)) == 7
    assert len(flow.dead_letters) == (7 if policy == "dead-letter" else 0)


@pytest.mark.parametrize("op", ["filter", "flat_map", "key_by"])
async def test_each_operator_skips_by_policy(op: str) -> None:
    def check(r: Record) -> Any:
        if r["id"] % 7 == 3:
            raise ValueError("bad id")
        return [r] if op == "flat_map" else r["id"]

    out = CollectSink("out")
    flow = Flow(on_error="skip")
    stream = flow.source(orders())
    stream = stream.key_by(check, partitions=2) if op == "key_by" else getattr(stream, op)(check)
    stream.sink(out)
    stats = await flow.run()
    expected = [i for i in range(50) if i % 7 != 3 and (op != "filter" or i != 0)]
    assert sorted(r["id"] for r in out.rows) == expected
    assert stats[f"{op}-1"].errors_by_reason == (("ValueError: bad id", 7),)


async def fetch(r: Record) -> Record:
    return r


async def fetch_many(r: Record) -> Any:
    yield r


class AsyncCallable:
    async def __call__(self, r: Record) -> Record:
        return r


@pytest.mark.parametrize(
    ("op", "fn", "instead"),
    [
        ("map", fetch, "map_async"),
        ("filter", fetch, "filter_async"),
        ("flat_map", fetch_many, "flat_map_async"),
        ("map", AsyncCallable(), "map_async"),
        ("key_by", fetch, "map_async"),
    ],
)
def test_an_async_function_to_a_sync_operator_is_a_type_error(
    op: str, fn: Any, instead: str
) -> None:
    stream = Flow().source(orders())
    name = getattr(fn, "__name__", "AsyncCallable")
    with pytest.raises(
        TypeError, match=rf"^{op}\({name}\): {name} is an async function.*{instead}"
    ):
        getattr(stream, op)(fn)
    with pytest.raises(TypeError, match=r"^stateful\(fetch\): .*map_async"):
        stream.stateful(fetch)  # type: ignore[arg-type]
