"""partita.testing: test your own pipelines: run them from plain tests, on virtual
time, with Hypothesis strategies for streams and for what happens to a running
graph, and with faults injected.

The strategies (:func:`records`, :func:`streams`, :func:`interleavings`) need
Hypothesis (``pip install 'partita[testing]'``); importing them is what imports it,
so the rest of the kit (and ``import partita``) works without.  See docs/testing.md.

Example:
    >>> from partita.testing import run_sync
    >>> run_sync("SELECT x FROM t WHERE x > 1", [{"x": 1}, {"x": 2}])
    [{'x': 2}]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from partita._metadata import fixup_module_metadata

from ._faults import CrashAfter as CrashAfter
from ._faults import InjectedFault as InjectedFault
from ._faults import SlowSink as SlowSink
from ._harness import Advance as Advance
from ._harness import Cancel as Cancel
from ._harness import Crash as Crash
from ._harness import Harness as Harness
from ._harness import Pause as Pause
from ._harness import Resume as Resume
from ._harness import Send as Send
from ._harness import Step as Step
from ._harness import open_harness as open_harness
from ._harness import run_steps as run_steps
from ._harness import run_sync as run_sync
from ._timed import ChannelSource as ChannelSource
from ._timed import Timed as Timed
from ._timed import TimedSource as TimedSource

if TYPE_CHECKING:
    from ._strategies import TestStream as TestStream
    from ._strategies import interleavings as interleavings
    from ._strategies import records as records
    from ._strategies import streams as streams

_STRATEGIES = ("TestStream", "interleavings", "records", "streams")

__all__ = [
    "Advance",
    "Cancel",
    "ChannelSource",
    "Crash",
    "CrashAfter",
    "Harness",
    "InjectedFault",
    "Pause",
    "Resume",
    "Send",
    "SlowSink",
    "Step",
    "TestStream",
    "Timed",
    "TimedSource",
    "interleavings",
    "open_harness",
    "records",
    "run_steps",
    "run_sync",
    "streams",
]


fixup_module_metadata(__name__, globals(), [n for n in __all__ if n not in _STRATEGIES])
del fixup_module_metadata


def __getattr__(name: str) -> Any:
    """The strategies, imported (with Hypothesis) on first use."""
    if name in _STRATEGIES:
        from partita._metadata import fixup_module_metadata as fixup

        from . import _strategies

        fixup(__name__, vars(_strategies), _STRATEGIES)
        value = getattr(_strategies, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
