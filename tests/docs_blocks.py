"""The ```python blocks of a docs page, each with the ```text block printed under it."""

from __future__ import annotations

import re
from pathlib import Path

import trio
import trio.testing

DOCS = Path(__file__).resolve().parent.parent / "docs"

_BLOCK = re.compile(r"```python\n(.*?)```\n(?:```text\n(.*?)```\n)?", re.S)


def examples(page: str, sections: tuple[str, ...] = ()) -> list[tuple[str, str, str | None]]:
    """``(name, code, printed)`` of every python block of ``page`` (in ``sections``,
    the ``## `` headings, when given); ``printed`` is ``None`` without a text block."""
    text = (DOCS / page).read_text(encoding="utf-8")
    parts = [(page, text)]
    if sections:
        parts = []
        for title in sections:
            match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
            assert match is not None, f"{page}: no section {title!r}"
            parts.append((f"{page} {title}", match.group(1)))
    found = []
    for where, part in parts:
        blocks = _BLOCK.findall(part)
        assert blocks, f"{where}: no python block"
        found += [(f"{where} {i}", code, out or None) for i, (code, out) in enumerate(blocks)]
    return found


def run_example(name: str, code: str) -> None:
    """Run a block as written; a bare ``trio.run(main)`` runs on a MockClock (autojump)."""
    program = code
    if code.rstrip().endswith("\ntrio.run(main)"):
        program = code.rstrip().removesuffix("trio.run(main)")
    namespace: dict[str, object] = {"__name__": "docs_example"}
    exec(compile(program, name, "exec"), namespace)
    if program is not code:
        main = namespace["main"]
        assert callable(main)
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
