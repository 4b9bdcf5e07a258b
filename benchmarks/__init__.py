"""Reproducible benchmarks of partita against the plain-CPython floor.

Run ``python -m benchmarks --help``.  Every result is one JSON object per line:
``workload``, ``partitions``, ``records``, ``rec_per_s`` (partita),
``floor_rec_per_s`` (a hand-written CPython loop doing the same work on the same
records, in the same run), ``ratio`` and ``peak_rss_mb`` (of a fresh process
that ran only that partita run).  See ``docs/performance.md``.
"""
