"""Properties: a query's result does not depend on partitions or batch size."""

from __future__ import annotations

from typing import Any

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from partita import sql
from partita.actors import run_sql

from .helpers import canonical

QUERIES = [
    "SELECT k, v * 2 AS w FROM t WHERE v > 3",
    "SELECT k, COUNT(*) AS n, SUM(v) AS s FROM t GROUP BY k",
    "SELECT k, COUNT(*) AS n, MAX(v) AS m, window_start FROM t "
    "GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)",
]

records_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "k": st.sampled_from(["a", "b", "c", None]),
            "v": st.integers(-5, 20),
            "ts": st.integers(0, 5000),
        }
    ),
    max_size=60,
)


@settings(max_examples=25)
@given(
    records=records_strategy,
    query=st.sampled_from(QUERIES),
    partitions=st.integers(1, 4),
    batch_size=st.integers(1, 17),
)
def test_result_independent_of_partitions_and_batches(
    records: list[dict[str, Any]], query: str, partitions: int, batch_size: int
) -> None:
    async def main() -> Any:
        return await run_sql(
            query, records, partitions=partitions, batch_size=batch_size, allowed_lateness=300
        )

    run = trio.run(main)
    ref = sql.run_query(query, records, allowed_lateness=300)
    assert canonical(run.rows) == canonical(ref.rows)
    assert run.stats.rows_late == ref.counts.late
