"""The runnable examples of docs/api.md's sections on consuming a Flow and bounded runs:
each ```python block runs as written (on a MockClock) and prints the ```text block after it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio
import trio.testing

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
SECTIONS = ("Consuming a Flow", "Bounded runs")


def _examples() -> list[tuple[str, str, str]]:
    text = DOC.read_text(encoding="utf-8")
    found = []
    for title in SECTIONS:
        match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
        assert match is not None, title
        pairs = re.findall(r"```python\n(.*?)```\n```text\n(.*?)```", match.group(1), re.S)
        assert pairs, title
        found += [(f"{title} {i}", code, out) for i, (code, out) in enumerate(pairs)]
    return found


EXAMPLES = _examples()


@pytest.mark.parametrize(("name", "code", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_the_example_runs_and_prints_what_the_doc_says(
    name: str, code: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert code.rstrip().endswith("trio.run(main)")
    program = code.rstrip().removesuffix("trio.run(main)")
    namespace: dict[str, object] = {"__name__": "api_example"}
    exec(compile(program, f"docs/api.md: {name}", "exec"), namespace)
    main = namespace["main"]
    assert callable(main)
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert capsys.readouterr().out == expected
