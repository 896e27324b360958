"""A trace whose recorder died (SIGKILL, power loss) ends at its last commit, which can
be anywhere: between exports, inside one, or between an export's last host call and
its return. Wherever it is, replay reproduces every event up to the cut and says the
trace ends there (:class:`TraceExhausted` at the end of the trace, ``ended_early``),
never a divergence: on both import paths (this directory's conftest runs every test on
each) and for every package of a composition.

tests/reliability/test_crash_safety.py kills real recorders at random moments, so it
lands in the narrow window before an export's return only now and then (a return
missing there used to be reported as a divergence: a flake there). Here recorded traces
are cut at every event, deterministically.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from packr_replay import api
from packr_replay.abi import S64, U32, UNIT, String
from packr_replay.cli import app
from packr_replay.errors import TraceExhausted
from packr_replay.replay import Replayer
from packr_replay.replay.composition import replay_composition
from packr_replay.replay.session import ReplayReport, fill_missing_imports, replay_source
from packr_replay.runtime import DemoHost, Module, Runtime
from packr_replay.storage import Event, EventKind, Trace, TraceStatus, TraceStore

from .conftest import demo_host
from .test_composition import CALLS, composition
from .test_replay import NESTED


def cut_copies(db: Path, label: str) -> list[Event]:
    """Beside trace ``label`` of ``db``, one trace per cut point: ``cut-N`` holds its
    first N events, sealed ``incomplete`` as a killed recorder's trace reads. Returns
    the whole trace's events."""
    with TraceStore(db) as store:
        trace = store.trace(label)
        info, events = trace.info, list(trace.events())
        for n in range(len(events) + 1):
            writer = store.begin_trace(
                info.module_sha256, label=f"cut-{n}", host=info.host, meta=dict(info.meta)
            )
            for e in events[:n]:
                writer.append(e.call, e.kind, e.interface, e.function, e.input, e.output,
                              e.status, e.outcome, e.error_kind, e.error, e.duration_ns,
                              e.depth, e.package)  # fmt: skip
            writer.finish(TraceStatus.INCOMPLETE)
    return events


def inside_an_export(events: list[Event]) -> bool:
    """Whether a trace of these events stops inside an export call: some package's
    (the guest's) last event is not a top-level return."""
    last: dict[str | None, Event] = {}
    for e in events:
        last[e.package] = e
    return any(not (e.kind is EventKind.RETURN and e.depth == 0) for e in last.values())


def check_every_cut(
    db: Path, events: list[Event], replay: Callable[[Trace], ReplayReport]
) -> None:
    """Replay each ``cut-N``: reproduced up to the cut, ended early exactly when it is
    inside an export, and never a divergence."""
    with TraceStore(db, readonly=True) as store:
        for n in range(len(events) + 1):
            report = replay(store.trace(f"cut-{n}"))
            kept = events[:n]
            last = f"{kept[-1].kind} {kept[-1].name}" if kept else "nothing"
            assert report.divergence is None, f"cut after {last}: {report.summary()}"
            assert report.reproduced, f"cut after {last}: {report.summary()}"
            assert report.trace_incomplete
            assert report.events_replayed == n
            inside = inside_an_export(kept)
            assert report.ended_early == inside, f"cut after {last}: {report.summary()}"
            # (every guest here returns or calls the host right after the cut: well
            # within the grace for running on past the end)
            assert report.stopped_after_end is None, f"cut after {last}: {report.summary()}"
            assert ("the trace ended there" in report.summary()) == inside


def before_a_return(events: list[Event]) -> int:
    """How many cut points fall between an export's last host call and its return."""
    return sum(
        1 for a, b in pairwise(events)
        if a.kind in (EventKind.IMPORT, EventKind.RAW) and b.kind is EventKind.RETURN
    )  # fmt: skip


class TestEveryCutPoint:
    """Each recorded trace, cut after each of its events, replays to the cut."""

    def test_short_exports(self, guest: Callable[[str], Module], db: Path) -> None:
        """``clock_actor``: typed imports, an export erroring on ``()``, exports in a row."""
        calls = [("run", String("Ada")), ("run", UNIT), ("run", String("Bo"))]
        api.record_run(guest("clock_actor"), calls, host=demo_host(1), store=db, label="t")
        events = cut_copies(db, "t")
        assert before_a_return(events) == 3
        check_every_cut(db, events, lambda trace: replay_source(trace, guest("clock_actor")))

    def test_nested_exports(self, runtime: Runtime, db: Path) -> None:
        """A host function calling back into the guest: the cut can fall before the
        inner export's return as well as the outer's."""

        def host(builder: Any) -> None:
            iface = builder.interface("t:host/f")
            iface.func_typed("a", lambda ctx, v: S64(v.value * 10))
            iface.func_typed(
                "cb", lambda ctx, v: ctx.instance.call_with_value("inner", S64(v.value + 1))
            )

        module = runtime.load_module(NESTED)
        api.record_run(module, [("outer", S64(1)), ("outer", S64(2))], host=host, store=db, label="t")
        events = cut_copies(db, "t")
        assert before_a_return(events) == 4
        check_every_cut(db, events, lambda trace: replay_source(trace, module))

    def test_raw_imports(self, guest: Callable[[str], Module], db: Path) -> None:
        """``logger``: raw imports (``raw`` events) before the returns."""
        host = DemoHost(randbytes=lambda n: bytes(range(n)))
        calls = [("process", S64(42)), ("token", U32(4))]
        api.record_run(guest("logger"), calls, host=host, store=db, label="t")
        events = cut_copies(db, "t")
        assert any(
            a.kind is EventKind.RAW and b.kind is EventKind.RETURN
            for a, b in pairwise(events)
        )
        check_every_cut(db, events, lambda trace: replay_source(trace, guest("logger")))

    def test_a_composition(self, runtime: Runtime, db: Path) -> None:
        """Each package replayed alone: the cut can leave the caller inside its export
        while the callee's wired call is whole, or the other way round."""
        api.record_composition(composition(), CALLS, store=db, label="t")
        events = cut_copies(db, "t")
        assert before_a_return(events) == 2  # actor's process calls (doubler's has no import)
        built = composition(runtime)
        modules = {name: built.packages[name] for name in ("doubler", "actor")}
        check_every_cut(db, events, lambda trace: replay_composition(trace, modules))


class TestReturnMissing:
    """The cut of the flake: every host call of the last export recorded, not its return."""

    @pytest.fixture
    def cut(self, guest: Callable[[str], Module], db: Path) -> Path:
        calls = [("run", String("Ada")), ("run", String("Bo"))]
        api.record_run(guest("clock_actor"), calls, host=demo_host(1), store=db, label="t")
        events = cut_copies(db, "t")
        assert events[-1].kind is EventKind.RETURN
        assert events[-2].kind is EventKind.IMPORT
        return db

    def test_the_replayer_raises_trace_exhausted(
        self, guest: Callable[[str], Module], cut: Path
    ) -> None:
        with TraceStore(cut, readonly=True) as store:
            trace = store.trace("cut-" + str(store.trace("t").info.event_count - 1))
            replayer = Replayer(trace)
            module = guest("clock_actor")
            instance = module.instantiate(fill_missing_imports(module), interceptor=replayer)
            replayer.bind(instance)
            try:
                assert str(instance.call_with_value("run", String("Ada"))) != ""
                with pytest.raises(TraceExhausted) as exc:
                    instance.call_with_value("run", String("Bo"))
            finally:
                instance.close()
        err = exc.value
        assert err.seq is None  # the end of the trace, not a recorded event
        assert err.expected is None
        text = str(err)
        assert "at the end of the trace inside export 'run' (call 2)" in text
        assert "the trace ends before this export call returned" in text
        assert replayer.remaining() is None

    def test_replay_reports_the_cut(self, cut: Path) -> None:
        with TraceStore(cut, readonly=True) as store:
            n = store.trace("t").info.event_count - 1
        report = api.replay(cut, f"cut-{n}")
        assert report.reproduced, report.summary()
        assert report.divergence is None
        assert report.ended_early
        assert report.events_replayed == n
        assert "the trace ended there" in report.summary()

    def test_play_says_the_trace_ends_there(self, cut: Path) -> None:
        with TraceStore(cut, readonly=True) as store:
            n = store.trace("t").info.event_count - 1
        result = CliRunner().invoke(app, ["play", f"{cut}#cut-{n}"])
        assert result.exit_code == 0, result.output
        assert "reproduced" in result.output
        assert "the trace ends there (its recorder stopped before finishing)" in result.output
        assert "diverged" not in result.output
        assert "… #7 run (the trace ends inside)" in result.output
