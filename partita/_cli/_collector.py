"""The cyclic garbage collector of a ``partita`` process: the command owns it.

Start-up (imports, the query's compilation) allocates objects that live as long
as the process; run every 700 new container objects, the collector walked them
over a hundred times and found next to nothing (~0.1 s of a file run's start-up).
A run allocates records by the batch, and reference counting frees them once the
batch is written; at that threshold the collector also walked each batch's
records while they lived (~1,900 collections, ~0.2 s of CPU, for W1 over
1,000,000 JSON lines).  So a command runs its start-up with the collector off
(:func:`partita._cli.main`), and every ``trio.run`` of a command (``_driver``,
``_worker``) with what start-up left frozen (never walked again) and young
collections every :data:`RUN_THRESHOLD` objects (~20 collections, ~10 ms; the
peak RSS the same).  Nothing here changes a result.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RUN_THRESHOLD", "collector_for_run", "collector_off"]

RUN_THRESHOLD = 20_000
"""Container objects allocated (less those freed) between young collections in a
run: more than a batch of records (at most 16,384) holds."""


@contextmanager
def collector_off() -> Iterator[None]:
    """No collection inside; the collector is as it was after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def collector_for_run() -> Iterator[None]:
    """The collector on, what exists now frozen, young collections every
    :data:`RUN_THRESHOLD` objects; the collector is as it was after."""
    enabled = gc.isenabled()
    threshold = gc.get_threshold()
    frozen = gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(RUN_THRESHOLD, *threshold[1:])
    gc.enable()
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if not frozen:  # a freeze from before stays
            gc.unfreeze()
        if not enabled:
            gc.disable()
