"""``[HOST:]PORT``: where the web view listens, parsed in one place."""

from __future__ import annotations

__all__ = ["DEFAULT_HOST", "parse_address"]

DEFAULT_HOST = "127.0.0.1"
"""The web view binds to the loopback interface unless told otherwise."""


def parse_address(address: str | int | tuple[str, int]) -> tuple[str, int]:
    """``"8080"``, ``"0.0.0.0:8080"``, ``"[::1]:0"``, ``8080`` or ``(host, port)`` as
    ``(host, port)``.

    A bare port binds :data:`DEFAULT_HOST`; port 0 picks a free port.

    Raises:
        ValueError: not ``[HOST:]PORT``, or the port is not in 0-65535.

    Example:
        >>> parse_address("8080")
        ('127.0.0.1', 8080)
        >>> parse_address("[::1]:0")
        ('::1', 0)
    """
    if isinstance(address, tuple):
        host, port = address
        return parse_address(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if isinstance(address, bool) or not isinstance(address, str | int):
        raise TypeError(f"the address must be a str or an int, got {type(address).__name__}")
    text = str(address).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = DEFAULT_HOST
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 host goes in brackets ([::1]:8080), got {text!r}")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"the address must be [HOST:]PORT with a port in 0-65535, got {text!r}")
    return host, int(port_text)
