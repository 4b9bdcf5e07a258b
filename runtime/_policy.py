"""What happens to a bad record: the one definition of the ``on_error`` policy.

Sources (a line that is not JSON), the routing stage and the partition programs
(a record whose expressions fail) all apply the same three choices, defined and
validated here once.
"""

from __future__ import annotations

from typing import Literal, TypeAlias, cast, get_args

__all__ = ["ON_ERROR_CHOICES", "OnError", "check_on_error"]

OnError: TypeAlias = Literal["skip", "dead-letter", "fail"]
"""``"skip"``: skip and count; ``"dead-letter"``: count and send to the dead-letter
output with the reason; ``"fail"``: fail the run naming the record."""

ON_ERROR_CHOICES: tuple[str, ...] = get_args(OnError)


def check_on_error(value: object, name: str = "on_error") -> OnError:
    """``value`` as an :data:`OnError`, or a ``ValueError`` naming the choices.

    Example:
        >>> check_on_error("dead-letter")
        'dead-letter'
        >>> check_on_error("ignore")
        Traceback (most recent call last):
        ...
        ValueError: on_error must be 'skip', 'dead-letter' or 'fail', got 'ignore'
    """
    if value not in ON_ERROR_CHOICES:
        raise ValueError(f"{name} must be 'skip', 'dead-letter' or 'fail', got {value!r}")
    return cast(OnError, value)
