"""The web view and Prometheus metrics of a running graph (the ``ui`` extra)."""

from ._address import parse_address as parse_address
from ._serve import UiServer as UiServer
from ._serve import serve_ui as serve_ui

__all__ = ["UiServer", "parse_address", "serve_ui"]
