"""A tiny builder of indented Python source lines for the code generators."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

__all__ = ["SourceLines", "tuple_display"]


@attrs.define
class SourceLines:
    """Lines of generated source; :meth:`add` indents by four spaces per level.

    ``base`` levels are added to every indent: :meth:`nested` gives a builder that
    writes into the same lines one block deeper.
    """

    lines: list[str] = attrs.Factory(list)
    base: int = 0

    def add(self, indent: int, *texts: str) -> None:
        """Append ``texts`` as lines at ``indent`` levels (empty text: an empty line)."""
        for text in texts:
            self.lines.append("    " * (self.base + indent) + text if text else "")

    def nested(self, levels: int) -> SourceLines:
        """A builder appending to these lines, ``levels`` deeper."""
        return SourceLines(self.lines, self.base + levels)


def tuple_display(names: Sequence[str]) -> str:
    """The tuple display of ``names``: ``()``, ``(a,)``, ``(a, b)``."""
    if len(names) == 1:
        return f"({names[0]},)"
    return f"({', '.join(names)})"
