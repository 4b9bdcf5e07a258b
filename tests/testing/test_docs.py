"""Every ```python block of docs/testing.md runs as written and prints the ```text
block under it."""

from __future__ import annotations

import pytest

from tests.docs_blocks import examples, run_example

EXAMPLES = examples("testing.md")


def test_the_page_has_an_example_for_each_part_of_the_kit() -> None:
    assert len(EXAMPLES) >= 6
    assert all(printed is not None for _, _, printed in EXAMPLES)


@pytest.mark.parametrize(("name", "code", "printed"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_the_example_runs_and_prints_what_the_doc_says(
    name: str, code: str, printed: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    run_example(name, code)
    assert capsys.readouterr().out == printed
