"""The runnable examples of docs/api.md's sections on consuming a Flow and bounded runs:
each ```python block runs as written (on a MockClock) and prints the ```text block after it."""

from __future__ import annotations

import pytest

from tests.docs_blocks import examples, run_example

EXAMPLES = examples("api.md", ("Consuming a Flow", "Bounded runs"))


@pytest.mark.parametrize(("name", "code", "printed"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_the_example_runs_and_prints_what_the_doc_says(
    name: str, code: str, printed: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    run_example(name, code)
    assert printed is not None
    assert capsys.readouterr().out == printed
