"""A guest still running past the last event of an incomplete trace is stopped after a
short grace (``ReplayCaps.after_end``), not left to meet the time cap: nothing it does
there can be checked, so the replay is reproduced up to the cut and says the guest was
stopped (``stopped_after_end``). Within the grace nothing changes (a return or another
host call there is the trace's end, as before), and a complete trace is unaffected.
On both import paths (this directory's conftest) and for a composition's package.

The recorded guest makes ``calls`` host calls in its export ``run`` and returns; its
trace is cut before the return (as a recorder interrupted while the export ran leaves
it), then replayed against a build that does something else after those calls: spins,
computes a little and returns, or makes one more call.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from packr_replay.abi import UNIT, encode
from packr_replay.replay import ReplayCaps
from packr_replay.replay.composition import replay_composition
from packr_replay.replay.session import ReplayReport, replay_source
from packr_replay.runtime import Module, Runtime
from packr_replay.storage import EventKind, TraceStatus, TraceStore

from .test_composition import CALLS, composition

SPIN = "(loop $spin (br $spin))"
#: A few milliseconds of computing.
BUSY = (
    "(local.set $i (i32.const 2000000))"
    "(loop $busy (local.set $i (i32.sub (local.get $i) (i32.const 1))) (br_if $busy (local.get $i)))"
)
CALL = "(drop (call $a (i32.const 1024) (i32.const {n}) (i32.const 200) (i32.const 300)))"


def guest(calls: int, after: str = "") -> str:
    """Export ``run``: ``calls`` calls to ``t:host/f.a`` with ``()``, then ``after``, then
    it echoes its input."""
    unit = encode(UNIT)
    data = "".join(f"\\{b:02x}" for b in unit)
    return f"""(module
  (import "t:host/f" "a" (func $a (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) "{data}")
  (func (export "run") (param $p i32) (param $l i32) (param $opp i32) (param $olp i32) (result i32)
    (local $i i32)
    (local.set $i (i32.const {calls}))
    (loop $calls
      (if (i32.lt_s (call $a (i32.const 1024) (i32.const {len(unit)}) (i32.const 200)
                             (i32.const 300)) (i32.const 0)) (then unreachable))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $calls (local.get $i)))
    {after.format(n=len(unit))}
    (i32.store (local.get $opp) (local.get $p))
    (i32.store (local.get $olp) (local.get $l))
    (i32.const 0)))"""


def host(builder: Any) -> None:
    builder.interface("t:host/f").func_typed("a", lambda ctx, v: UNIT)


def cut_trace(db: Path, calls: int, status: TraceStatus = TraceStatus.INCOMPLETE) -> str:
    """Record ``run`` of ``guest(calls)`` and store its events up to (not with) the
    return as trace ``cut``, sealed ``status``; its label."""
    from packr_replay import api

    module = Runtime().load_module(guest(calls))
    api.record_run(module, [("run", UNIT)], host=host, store=db, label="whole")
    with TraceStore(db) as store:
        whole = store.trace("whole")
        info, events = whole.info, list(whole.events())
        assert events[-1].kind is EventKind.RETURN
        writer = store.begin_trace(info.module_sha256, label="cut", host=info.host, meta=dict(info.meta))
        for e in events[:-1]:
            writer.append(e.call, e.kind, e.interface, e.function, e.input, e.output, e.status,
                          e.outcome, e.error_kind, e.error, e.duration_ns, e.depth, e.package)  # fmt: skip
        writer.finish(status)
    return "cut"


def replay(db: Path, module: Module, caps: ReplayCaps) -> tuple[ReplayReport, float]:
    """Replay trace ``cut`` against ``module`` (another build: its warning ignored)."""
    t0 = time.monotonic()
    with TraceStore(db, readonly=True) as store, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = replay_source(store.trace("cut"), module, caps=caps)
    return report, time.monotonic() - t0


class TestAGuestRunningPastTheEnd:
    # 255 calls: the trace's 256 events fill the replayer's first read exactly, so
    # only reading on tells that nothing follows.
    @pytest.mark.parametrize("calls", [1, 255])
    def test_is_stopped_after_the_grace(self, db: Path, runtime: Runtime, calls: int) -> None:
        cut_trace(db, calls)
        report, took = replay(
            db, runtime.load_module(guest(calls, SPIN)), ReplayCaps(time=60, after_end=0.2)
        )
        assert took < 10  # not the 60 s time cap
        assert report.reproduced, report.summary()
        assert (report.divergence, report.capped) == (None, None)
        assert report.ended_early
        assert (report.stopped_after_end, report.after_end_s) == ("run", 0.2)
        assert report.events_replayed == report.events_total == calls + 1
        (entry,) = report.exports
        assert not entry.reproduced
        assert entry.error is None  # stopped, not failing on its own
        summary = report.summary()
        assert "the trace ended there" in summary
        assert "the guest was still running in export 'run' when the trace ended" in summary
        assert "stopped 0.2 s later" in summary
        assert "cut by" not in summary

    def test_the_grace_is_waited_for(self, db: Path, runtime: Runtime) -> None:
        cut_trace(db, 1)
        report, took = replay(db, runtime.load_module(guest(1, SPIN)), ReplayCaps(after_end=1.5))
        assert report.stopped_after_end == "run"
        assert 1.4 < took < 15

    def test_with_no_time_cap(self, db: Path, runtime: Runtime) -> None:
        """The grace needs no time cap to be enforced (its ticks run on their own)."""
        cut_trace(db, 1)
        caps = ReplayCaps(fuel=None, time=None, after_end=0.2)
        report, took = replay(db, runtime.load_module(guest(1, SPIN)), caps)
        assert took < 10
        assert report.reproduced
        assert report.stopped_after_end == "run"

    def test_a_time_cap_before_the_grace_ends_it_as_before(self, db: Path, runtime: Runtime) -> None:
        cut_trace(db, 1)
        caps = ReplayCaps(time=0.3, after_end=None)
        report, took = replay(db, runtime.load_module(guest(1, SPIN)), caps)
        assert took < 10
        assert report.reproduced, report.summary()
        assert report.ended_early
        assert report.stopped_after_end is None  # the time cap stopped it

    def test_a_complete_trace_still_meets_the_time_cap(self, db: Path, runtime: Runtime) -> None:
        """A trace sealed complete that ends inside an export (a stranger's file): its
        spinning guest is not stopped early as past the end; the time cap cuts it."""
        cut_trace(db, 1, TraceStatus.COMPLETE)
        caps = ReplayCaps(time=0.6, after_end=0.05)
        report, took = replay(db, runtime.load_module(guest(1, SPIN)), caps)
        assert took < 10
        assert not report.reproduced
        assert not report.ended_early
        assert report.stopped_after_end is None
        assert report.capped is not None
        assert report.capped.cap == "time"
        assert "cut by its time cap" in report.summary()


class TestWithinTheGrace:
    """What the guest does before the grace ends is reported as it always was."""

    @pytest.fixture
    def caps(self) -> ReplayCaps:
        return ReplayCaps(time=60, after_end=30)

    def test_a_return(self, db: Path, runtime: Runtime, caps: ReplayCaps) -> None:
        cut_trace(db, 1)
        report, took = replay(db, runtime.load_module(guest(1, BUSY)), caps)
        assert took < 10
        assert report.reproduced, report.summary()
        assert report.ended_early
        assert report.stopped_after_end is None
        assert "still running" not in report.summary()

    def test_another_host_call(self, db: Path, runtime: Runtime, caps: ReplayCaps) -> None:
        cut_trace(db, 1)
        report, took = replay(db, runtime.load_module(guest(1, BUSY + CALL)), caps)
        assert took < 10
        assert report.reproduced, report.summary()
        assert report.ended_early
        assert report.stopped_after_end is None


class TestAComposition:
    """``play --package``: a package replayed alone gets the same grace."""

    SPINNER = """(module (memory (export "memory") 1)
      (func (export "transform") (param i32 i32 i32 i32) (result i32)
        (loop $spin (br $spin)) (i32.const 0)))"""

    def test_a_package_spinning_past_the_end(self, db: Path, runtime: Runtime) -> None:
        from packr_replay import api

        api.record_composition(composition(), CALLS, store=db, label="whole")
        with TraceStore(db) as store:
            whole = store.trace("whole")
            info, events = whole.info, list(whole.events())
            # up to doubler's first wired call (its export event)
            n = next(i for i, e in enumerate(events) if e.package == "doubler") + 1
            assert events[n - 1].kind is EventKind.EXPORT
            writer = store.begin_trace(info.module_sha256, label="cut", host=info.host,
                                       meta=dict(info.meta))  # fmt: skip
            for e in events[:n]:
                writer.append(e.call, e.kind, e.interface, e.function, e.input, e.output,
                              e.status, e.outcome, e.error_kind, e.error, e.duration_ns,
                              e.depth, e.package)  # fmt: skip
            writer.finish(TraceStatus.INCOMPLETE)
        spinner = runtime.load_module(self.SPINNER)
        t0 = time.monotonic()
        with TraceStore(db, readonly=True) as store, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = replay_composition(
                store.trace("cut"), {"doubler": spinner}, packages=["doubler"],
                caps=ReplayCaps(time=60, after_end=0.2),
            )  # fmt: skip
        assert time.monotonic() - t0 < 10
        assert report.reproduced, report.summary()
        assert report.packages["doubler"].stopped_after_end == "transform"
        assert report.stopped_after_end == "transform"
        assert "inside an export call of doubler" in report.summary()
        assert "still running in export 'transform'" in report.summary()
