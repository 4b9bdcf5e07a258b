"""Stateful test of one partition's window state against the naive reference.

A :class:`RuleBasedStateMachine` drives a compiled query's routing stage (one partition)
and the partition program it routes to: batches of records near a moving event-time
front (some of them behind it: late or not), and watermark advances that lag the source
at random.  Invariants:

* no window is emitted twice;
* no window is emitted before the watermark the program has been told passes its end;
* after ``advance(w)`` no window with ``window_end <= w`` is still held open: every such
  window of the reference has been emitted (open state observed through emitted rows);
* everything emitted equals the naive reference (``tests/sql/_reference.py``) over the
  records routed so far, and after ``finish()`` equals it exactly.

``BrokenEarly`` wraps the program so it closes windows one window size early; the
machine must catch it (``test_machine_catches_early_emission``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from partita.runtime import Batch, DeadLetter
from partita.sql import PartitionProgram, ProgramCounts
from tests.sql._reference import (
    Agg,
    Cumulate,
    Hop,
    Record,
    ReferenceResult,
    Session,
    Tumble,
    WindowQuery,
    normalize,
    normalize_row,
)
from tests.sql.test_oracle_windows import expected_for

LATENESS = 500
_KEY = (("k", lambda r: r["k"]),)
_AGGS = (Agg("n", "count_star"), Agg("sx", "sum", lambda r: r["x"]))
_SELECT = "SELECT k, window_start, window_end, COUNT(*) AS n, SUM(x) AS sx FROM events "

_record = st.fixed_dictionaries(
    {
        "dt": st.sampled_from([-2000, -1000, -750, -500, -250, 0, 0, 250, 250, 500, 1000]),
        "k": st.sampled_from(["a", "b", None]),
        "x": st.none() | st.integers(-5, 5),
    }
)


class BrokenEarly:
    """A partition program that closes windows ``slack`` ms before the watermark says."""

    def __init__(self, inner: PartitionProgram, slack: int) -> None:
        self._inner = inner
        self._slack = slack

    def process(self, batch: Batch) -> list[Record]:
        return self._inner.process(batch)

    def advance(self, watermark: int) -> list[Record]:
        return self._inner.advance(watermark + self._slack)

    def finish(self) -> list[Record]:
        return self._inner.finish()

    def take_dead_letters(self) -> list[DeadLetter]:
        return self._inner.take_dead_letters()

    def counts(self) -> ProgramCounts:
        return self._inner.counts()


class WindowStateMachine(RuleBasedStateMachine):
    """One routing stage + one partition program versus the naive reference."""

    SQL: ClassVar[str] = _SELECT + "GROUP BY k, TUMBLE(ts, INTERVAL '1' SECOND)"
    REF: ClassVar[WindowQuery] = WindowQuery(_KEY, _AGGS, Tumble(1000))
    BROKEN_SLACK: ClassVar[int | None] = None  # set: wrap the program in BrokenEarly

    def __init__(self) -> None:
        super().__init__()
        from partita import sql

        query = sql.compile_query(self.SQL, allowed_lateness=LATENESS)
        self.stage = query.routing_stage(1)
        program: PartitionProgram = query.new_program()
        if self.BROKEN_SLACK is not None:
            program = BrokenEarly(program, self.BROKEN_SLACK)
        self.program = program
        self.records: list[Record] = []
        self.front = 5000
        self.offset = 0
        self.source_watermark: int | None = None
        self.advanced: int | None = None
        self.known: int | None = None  # highest watermark the program was told
        self.emitted: list[Record] = []
        self.finished = False
        self.late = 0
        self._cached: tuple[int, ReferenceResult] | None = None

    # ---- helpers --------------------------------------------------------------------

    def _reference(self) -> ReferenceResult:
        # memoized per number of records: invariants ask after every step
        if self._cached is None or self._cached[0] != len(self.records):
            self._cached = (len(self.records), expected_for(self.REF, self.records, LATENESS))
        return self._cached[1]

    def _expected(self) -> list[Record]:
        return self._reference().final_rows

    def _tell(self, watermark: int | None) -> None:
        if watermark is not None and (self.known is None or watermark > self.known):
            self.known = watermark

    def _take(self, rows: list[Record]) -> None:
        for row in rows:
            assert self.finished or (self.known is not None and row["window_end"] <= self.known), (
                f"window emitted before the watermark ({self.known}) passed its end: {row}"
            )
        self.emitted.extend(rows)

    # ---- rules ----------------------------------------------------------------------

    @rule(batch=st.lists(_record, min_size=1, max_size=6))
    def push(self, batch: list[dict[str, Any]]) -> None:
        records: list[Record] = []
        for item in batch:
            ts = max(0, self.front + item["dt"])  # dt > 0 moves the front, dt < 0 lags it
            self.front = max(self.front, ts)
            records.append({"ts": ts, "k": item["k"], "x": item["x"]})
        routed = self.stage.route(Batch.from_records(records, start=self.offset))
        self.offset += len(records)
        self.records.extend(records)
        self.late += len(routed.late)
        part = routed.parts[0]
        if part is not None:
            if part.watermarks is not None:
                self._tell(max(part.watermarks, default=None))
            self._take(self.program.process(part))
        if routed.watermark is not None:
            self.source_watermark = routed.watermark

    @precondition(lambda self: self.source_watermark is not None)
    @rule()
    def advance(self) -> None:
        assert self.source_watermark is not None
        self.advanced = self.source_watermark
        self._tell(self.advanced)
        self._take(self.program.advance(self.advanced))
        # nothing the watermark has passed may still be open: all of it is emitted now
        due = [r for r in self._expected() if r["window_end"] <= self.advanced]
        have = [r for r in self.emitted if r["window_end"] <= self.advanced]
        assert normalize(have) == normalize(due)

    def teardown(self) -> None:
        # end of input closes every window: everything emitted equals the reference
        self.finished = True
        self._take(self.program.finish())
        assert normalize(self.emitted) == normalize(self._expected())

    # ---- invariants -----------------------------------------------------------------

    @invariant()
    def no_window_emitted_twice(self) -> None:
        names = [*(a for a, _ in self.REF.keys), "window_start", "window_end"]
        idents = [normalize_row({n: r[n] for n in names}) for r in self.emitted]
        assert len(idents) == len(set(idents)), "a window was emitted twice"

    @invariant()
    def emitted_rows_are_reference_rows(self) -> None:
        expected = normalize(self._expected())
        got = normalize(self.emitted)
        assert not (got - expected), f"emitted rows the reference lacks: {got - expected}"

    @invariant()
    def no_open_window_behind_the_watermark(self) -> None:
        """Open state never holds a window the advanced watermark has passed.

        ``SqlProgram.open_window_ends()`` is the program's self-check accessor (the
        ends of its open windows or sessions, from its window state); a wrapped
        program without one checks nothing here (the ``advance`` rule checks the same
        through emitted rows).
        """
        if self.advanced is None:
            return
        open_window_ends = getattr(self.program, "open_window_ends", None)
        if open_window_ends is not None:
            ends = open_window_ends()
            assert all(end > self.advanced for end in ends), (ends, self.advanced)

    @invariant()
    def counts_add_up(self) -> None:
        stage, prog = self.stage.counts(), self.program.counts()
        reference = self._reference()
        assert stage.rows_in + prog.rows_in == self.offset
        assert stage.late + prog.late == reference.late
        assert stage.errored + prog.errored == 0


class HopStateMachine(WindowStateMachine):
    SQL = _SELECT + "GROUP BY k, HOP(ts, INTERVAL '500' MILLISECOND, INTERVAL '1' SECOND)"
    REF = WindowQuery(_KEY, _AGGS, Hop(1000, 500))


class CumulateStateMachine(WindowStateMachine):
    SQL = _SELECT + "GROUP BY k, CUMULATE(ts, INTERVAL '250' MILLISECOND, INTERVAL '1' SECOND)"
    REF = WindowQuery(_KEY, _AGGS, Cumulate(1000, 250))


class SessionStateMachine(WindowStateMachine):
    SQL = _SELECT + "GROUP BY k, SESSION(ts, INTERVAL '750' MILLISECOND)"
    REF = WindowQuery(_KEY, _AGGS, Session(750))


class BrokenTumbleMachine(WindowStateMachine):
    BROKEN_SLACK = 1000


MACHINE_SETTINGS = settings(stateful_step_count=25)

TestTumbleWindowState = WindowStateMachine.TestCase
TestTumbleWindowState.settings = MACHINE_SETTINGS
TestHopWindowState = HopStateMachine.TestCase
TestHopWindowState.settings = MACHINE_SETTINGS
TestCumulateWindowState = CumulateStateMachine.TestCase
TestCumulateWindowState.settings = MACHINE_SETTINGS
TestSessionWindowState = SessionStateMachine.TestCase
TestSessionWindowState.settings = MACHINE_SETTINGS


def test_machine_catches_early_emission() -> None:
    """A program that closes windows one window early must fail the machine."""
    with pytest.raises(AssertionError) as info:
        run_state_machine_as_test(
            BrokenTumbleMachine,
            settings=settings(MACHINE_SETTINGS, max_examples=200, phases=_no_shrink()),
        )
    # teardown's final check may fail too; the early emission must be in the chain
    messages: list[str] = []
    error: BaseException | None = info.value
    while error is not None:
        messages.append(str(error))
        error = error.__context__
    assert any("before the watermark" in m for m in messages), messages


def _no_shrink() -> list[Any]:
    from hypothesis import Phase

    return [Phase.explicit, Phase.reuse, Phase.generate]


def test_machine_catches_cumulate_windows_kept_by_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken twin of CUMULATE's state: windows kept as if their key were the start
    (as TUMBLE and HOP keep theirs), when a CUMULATE window is kept under its end."""
    from partita.sql import _windows

    monkeypatch.setitem(_windows._KINDS, "cumulate", _windows.AlignedWindows)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            CumulateStateMachine,
            settings=settings(MACHINE_SETTINGS, max_examples=200, phases=_no_shrink()),
        )
