"""A tiny builder of indented Python source lines for the code generators."""

from __future__ import annotations

import attrs

__all__ = ["SourceLines"]


@attrs.define
class SourceLines:
    """Lines of generated source; :meth:`add` indents by four spaces per level."""

    lines: list[str] = attrs.Factory(list)

    def add(self, indent: int, *texts: str) -> None:
        """Append ``texts`` as lines at ``indent`` levels (empty text: an empty line)."""
        for text in texts:
            self.lines.append("    " * indent + text if text else "")
