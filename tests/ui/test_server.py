"""The web view's server against a running graph: /metrics against ``stats()``, the
JSON API, the live stream and the token check on control actions."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import urllib.request

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

import partita
from partita._ui import parse_address
from partita._ui._metrics import occupancy_buckets
from partita.runtime import ActorState

from ._pipeline import http, live_pipeline, wait_for

TOKEN = "X-Partita-Token"


def _samples(text: str, name: str) -> dict[str, float]:
    """``{actor: value}`` of one metric's samples."""
    return {
        sample.labels["actor"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_metrics_counters_match_stats_during_and_after_a_run() -> None:
    async with live_pipeline() as live:
        sup = live.supervisor
        await wait_for(lambda: sup.stats()["sink"].rows_in > 0)
        before = sup.stats()
        reply = await http(live.url("/metrics"))
        after = sup.stats()
        assert reply.status == 200
        assert reply.content_type.startswith("text/plain; version=")
        text = reply.body.decode()
        for field in ("rows_in", "rows_out", "batches_in"):
            scraped = _samples(text, f"partita_{field}_total")
            assert set(scraped) == {a.name for a in before.actors}
            for actor in before.actors:
                low = getattr(actor, field)
                high = getattr(after[actor.name], field)
                assert low <= scraped[actor.name] <= high, (field, actor.name)
        assert all(
            'job="test"' in line for line in text.splitlines() if line.startswith("partita_")
        )
        states = _samples(text, "partita_actor_state")  # the last sample per actor wins
        assert set(states) == {a.name for a in before.actors}
        capacity = _samples(text, "partita_mailbox_capacity_items")
        assert capacity["router"] == sup.graph.capacity_of(sup.graph["router"])
        assert "source" not in capacity  # a source has no inbox
        assert _samples(text, "partita_watermark_lag_seconds")  # the partitions have one

        await sup.cancel(graceful=True)
        final = sup.stats()
        assert final.state is ActorState.COMPLETED
        text = (await http(live.url("/metrics"))).body.decode()
        for field in ("rows_in", "rows_out", "rows_late", "rows_errored", "restarts"):
            scraped = _samples(text, f"partita_{field}_total")
            assert scraped == {a.name: float(getattr(a, field)) for a in final.actors}, field
        items = _samples(text, "partita_mailbox_items")
        assert items == {a.name: float(a.items_buffered) for a in final.actors if a.name in items}
        graph_state = [
            s
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "partita_graph_state" and s.value == 1
        ]
        assert [s.labels["state"] for s in graph_state] == ["completed"]


async def test_api_graph_is_the_graph_as_wired_with_rising_counters() -> None:
    async with live_pipeline(partitions=2) as live:
        graph = live.supervisor.graph
        view = (await http(live.url("/api/graph"))).json()
        assert view["job"] == "test"
        assert [n["name"] for n in view["nodes"]] == [a.name for a in graph.topological()]
        assert {(e["from"], e["to"]) for e in view["edges"]} == {
            (up.name, a.name) for a in graph for up in graph.inputs_of(a)
        }
        roles = {n["name"]: n["role"] for n in view["nodes"]}
        assert roles["source"] == "source"
        assert roles["sink"] == roles["dead-letter"] == "sink"
        assert roles["partition-1"] == "actor"
        assert view["stats"]["state"] == "running"
        assert [a["name"] for a in view["stats"]["actors"]] == [a.name for a in graph]
        first = {a["name"]: a["rows_in"] for a in view["stats"]["actors"]}

        async def source_moved() -> bool:
            stats = (await http(live.url("/api/stats"))).json()
            return bool(stats["actors"][0]["rows_in"] > first["source"])

        await wait_for(source_moved)


async def test_the_stream_sends_stats_at_least_twice_a_second() -> None:
    async with live_pipeline() as live:

        def read_events() -> tuple[str, list[dict[str, object]]]:
            with urllib.request.urlopen(live.url("/api/stream"), timeout=10) as response:
                events = []
                while len(events) < 5:
                    line = response.readline().decode()
                    if line.startswith("data: "):
                        events.append(json.loads(line[len("data: ") :]))
                return response.headers["Content-Type"], events

        kind, events = await trio.to_thread.run_sync(read_events)
        assert kind.startswith("text/event-stream")
        assert all(e["state"] == "running" for e in events)
        times = [float(str(e["time"])) for e in events]
        assert all(b > a for a, b in itertools.pairwise(times))
        # four a second, on trio's clock (two a second promised: room for a busy machine)
        assert (times[-1] - times[0]) / (len(times) - 1) < 0.5


async def test_control_needs_the_token_and_nothing_happens_without_it() -> None:
    async with live_pipeline() as live:
        sup = live.supervisor
        for headers in ({}, {TOKEN: "not-the-token"}, {TOKEN: live.ui.token + "x"}):
            for path in ("/api/graph/pause", "/api/actors/source/pause", "/api/graph/cancel"):
                reply = await http(live.url(path), "POST", headers)
                assert reply.status == 403, (path, headers)
                assert "X-Partita-Token" in reply.json()["error"]
        assert sup.state is ActorState.RUNNING
        assert all(a.state is ActorState.RUNNING for a in sup.stats().actors)

        good = {TOKEN: live.ui.token}
        reply = await http(live.url("/api/actors/partition-1/pause"), "POST", good)
        assert reply.status == 202
        assert sup.stats()["partition-1"].state is ActorState.PAUSED
        assert sup.stats()["partition-0"].state is ActorState.RUNNING
        assert (await http(live.url("/api/actors/partition-1/resume"), "POST", good)).status == 202
        assert sup.stats()["partition-1"].state is ActorState.RUNNING

        assert (await http(live.url("/api/graph/pause"), "POST", good)).status == 202
        assert sup.state is ActorState.PAUSED
        paused_at = sup.stats()["source"].rows_out
        assert (await http(live.url("/api/graph/resume"), "POST", good)).status == 202
        assert sup.state is ActorState.RUNNING
        await wait_for(lambda: sup.stats()["source"].rows_out > paused_at)

        missing = await http(live.url("/api/actors/nobody/pause"), "POST", good)
        assert (missing.status, missing.json()) == (404, {"error": "no actor named 'nobody'"})
        bad = await http(live.url("/api/graph/cancel?graceful=maybe"), "POST", good)
        assert bad.status == 400
        assert bad.json() == {"error": "graceful must be true or false, got 'maybe'"}
        wrong = await http(live.url("/api/graph/pause"), "GET")
        assert (wrong.status, wrong.json()) == (
            405,
            {"error": "GET is not allowed here: /api/graph/pause"},
        )
        nowhere = await http(live.url("/nowhere"))
        assert (nowhere.status, nowhere.json()) == (404, {"error": "no such page: /nowhere"})

        assert (await http(live.url("/api/graph/cancel"), "POST", good)).status == 202
        with trio.fail_after(10):
            await sup.wait()
        assert sup.state is ActorState.COMPLETED
        ended = await http(live.url("/api/graph/pause"), "POST", good)
        assert (ended.status, ended.json()) == (409, {"error": "the graph has ended (COMPLETED)"})


async def test_the_page_and_its_files_are_served() -> None:
    async with live_pipeline() as live:
        page = await http(live.url("/"))
        assert page.status == 200
        assert page.content_type.startswith("text/html")
        for name in ("app.js", "style.css"):
            assert f"/static/{name}" in page.body.decode()
            assert (await http(live.url(f"/static/{name}"))).status == 200
        for path in ("/", "/static/app.js", "/static/style.css"):
            # nothing from another host: the page works offline
            assert b"://" not in (await http(live.url(path))).body, path


async def test_a_port_in_use_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with live_pipeline() as live:
            with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}: "):
                async with partita.serve_ui(live.supervisor, port):
                    pass


def test_ui_url_names_the_port_and_the_token() -> None:
    ui = partita.UiServer("127.0.0.1", 8080, "tok")
    assert ui.url == "http://127.0.0.1:8080/?token=tok"
    assert partita.UiServer("::1", 1, "t").base_url == "http://[::1]:1"
    assert "tok" not in repr(ui)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8080", ("127.0.0.1", 8080)),
        (8080, ("127.0.0.1", 8080)),
        ("0", ("127.0.0.1", 0)),
        ("0.0.0.0:9100", ("0.0.0.0", 9100)),
        ("localhost:1", ("localhost", 1)),
        ("[::1]:8080", ("::1", 8080)),
        (("::", 80), ("::", 80)),
    ],
)
def test_addresses(text: str | int, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "host:", ":80", "65536", "x:y", "-1", "a:b:80"])
def test_bad_addresses(text: str) -> None:
    with pytest.raises(ValueError, match=r"\[HOST:\]PORT|IPv6 host goes in brackets"):
        parse_address(text)


def test_occupancy_buckets_are_cumulative_up_to_the_capacity() -> None:
    assert occupancy_buckets([1]) == [("0", 1), ("+Inf", 1)]
    counts = [0] * 17
    counts[16] = 2
    counts[3] = 1
    buckets = occupancy_buckets(counts)
    assert [b for b, _ in buckets] == ["0", "1", "2", "4", "8", "16", "+Inf"]
    assert [n for _, n in buckets] == [0, 0, 0, 1, 1, 3, 3]


def test_import_partita_does_not_need_the_ui_extra() -> None:
    script = (
        "import sys\n"
        "for m in ('hypercorn', 'starlette', 'prometheus_client'):\n"
        "    sys.modules[m] = None\n"
        "import partita, trio\n"
        "async def main():\n"
        "    try:\n"
        "        async with partita.serve_ui(None):\n"
        "            pass\n"
        "    except ImportError as exc:\n"
        "        print(exc)\n"
        "trio.run(main)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.stderr == ""
    assert "pip install 'partita[ui]'" in done.stdout


@pytest.mark.parametrize("token", ["", "short"])
async def test_a_short_control_token_is_refused(token: str) -> None:
    # an empty token would equal the empty header of a request that sends none
    async with live_pipeline() as live:
        with pytest.raises(ValueError, match="at least 16 characters"):
            async with partita.serve_ui(live.supervisor, 0, token=token):
                pass
