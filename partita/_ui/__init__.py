"""The web view and Prometheus metrics of a running graph (the ``ui`` extra)."""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from ._address import parse_address as parse_address
    from ._serve import UiServer as UiServer
    from ._serve import serve_ui as serve_ui

__all__ = ["UiServer", "parse_address", "serve_ui"]

# Where each name lives: imported when first used (PEP 562), so that ``partita run``
# parses ``--ui HOST:PORT`` without importing the server.
_HOMES: dict[str, str] = {
    "UiServer": "._serve",
    "parse_address": "._address",
    "serve_ui": "._serve",
}


def __getattr__(name: str) -> _typing.Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
