"""What ``/api/graph`` and ``/api/stats`` say of errors: bad records by actor and
reason, and the error the graph failed with."""

from __future__ import annotations

import attrs
import pytest

import partita
from partita._ui._snapshot import graph_view, stats_view
from partita.actors import CollectSink, IterableSource, build_sql_graph
from partita.runtime import ActorFailed, Batch, Graph, Sink, open_supervisor


async def test_bad_records_show_by_actor_and_reason() -> None:
    query = partita.compile_query("SELECT k, SUM(v) AS s FROM t GROUP BY k", on_error="skip")
    records = [{"k": 1, "v": 1}, {"k": 1, "v": "x"}, {"k": 2}]
    graph, _ = build_sql_graph(query, IterableSource("source", records), CollectSink("sink"))
    async with open_supervisor(graph) as sup:
        pass
    view = stats_view(sup, 0.0)
    assert view["state"] == "completed"
    assert view["failure"] is None
    (errored,) = [a for a in view["actors"] if a["rows_errored"]]
    assert errored["name"] == "partition-0"
    assert errored["rows_errored"] == 2
    assert ["missing field 'v'", 1] in errored["errors_by_reason"]


@attrs.define(eq=False)
class Broken(Sink):
    async def consume(self, batch: Batch) -> None:
        raise ZeroDivisionError("no room at the end")


async def test_the_failure_names_its_actor() -> None:
    graph = Graph()
    source = graph.add(IterableSource("source", [{"i": 1}]))
    graph.add(Broken("sink"), inputs=[source])
    with pytest.raises(ActorFailed):
        async with open_supervisor(graph) as sup:
            pass
    view = graph_view(sup, "job", 0.0)
    assert [n["role"] for n in view["nodes"]] == ["source", "sink"]
    assert view["edges"] == [{"from": "source", "to": "sink"}]
    failure = view["stats"]["failure"]
    assert failure["actor"] == "sink"
    assert "ZeroDivisionError" in failure["message"]
    assert "no room at the end" in failure["message"]
    assert view["stats"]["state"] == "failed"
