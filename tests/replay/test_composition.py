"""Recording a whole composition into one trace, and replaying any one package alone."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from packr_replay import api
from packr_replay.abi import S64, String, Tuple, encode
from packr_replay.errors import IntegrityError, Interrupted, StoreError, TraceFormatError
from packr_replay.replay import diff_traces
from packr_replay.replay.composition import CompositionReplayReport, diff_compositions
from packr_replay.replay.recorder import CompositionRecorder
from packr_replay.runtime import CompositionBuilder, DemoHost, Runtime
from packr_replay.storage import (
    Event,
    MemoryTrace,
    TraceStatus,
    TraceStore,
    delete_traces,
    index_trace,
)
from packr_replay.storage.chain import SegmentBuilder
from packr_replay.storage.model import chain_hash, trace_genesis
from packr_replay.storage.packages import PackageTrace, composition_meta, composition_of

GUESTS = Path(__file__).resolve().parents[2] / "examples" / "guests"
ECHO, HOST_ACTOR = GUESTS / "echo.wasm", GUESTS / "host_actor.wasm"
CALLS = [
    ("actor", "process", S64(5)),
    ("doubler", "transform", S64(7)),
    ("actor", "process", String("x")),
]

#: Another build of the doubler: ``transform`` triples an s64.
TRIPLER = """(module (memory (export "memory") 1)
  (func (export "transform") (param i32 i32 i32 i32) (result i32)
    (i64.store (i32.const 4120) (i64.mul (i64.load (i32.add (local.get 0) (i32.const 24))) (i64.const 3)))
    (memory.copy (i32.const 4096) (local.get 0) (i32.const 24))
    (i32.store (local.get 2) (i32.const 4096)) (i32.store (local.get 3) (i32.const 32))
    (i32.const 0)))"""


def composition(runtime: Runtime | None = None) -> CompositionBuilder:
    return (
        CompositionBuilder(runtime)
        .add_package("doubler", ECHO)
        .add_package("actor", HOST_ACTOR)
        .add_host(DemoHost())
        .wire("actor", "math", "double", "doubler", "transform")
    )


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    path = tmp_path / "comp.db"
    result = api.record_composition(composition(), CALLS, store=path, label="comp")
    assert [r.output.value if r.output else r.error for r in result.results] == [
        S64(11), S64(14), String("x")
    ]  # fmt: skip
    return path


class TestRecording:
    """One trace for the whole composition; every event names its package."""

    def test_every_event_names_its_package(self, recorded: Path) -> None:
        with TraceStore(recorded, readonly=True) as store:
            events = list(store.trace("comp").events())
        assert [(e.package, e.kind, e.name) for e in events[:6]] == [
            ("actor", "export", "process"),
            ("actor", "import", "theater:simple/runtime.log"),
            ("doubler", "export", "transform"),  # the wired call on the callee's side ...
            ("doubler", "return", "transform"),
            ("actor", "import", "math.double"),  # ... and on the caller's side
            ("actor", "return", "process"),
        ]
        wired_import, callee_start = events[4], events[2]
        assert wired_import.input == callee_start.input == encode(S64(5))
        assert wired_import.output == events[3].output == encode(S64(10))

    def test_calls_and_depths_count_per_package(self, recorded: Path) -> None:
        with TraceStore(recorded, readonly=True) as store:
            events = list(store.trace("comp").events())
        assert len({e.call for e in events if e.kind == "export"}) == 4  # unique in the trace
        assert all(e.depth == 0 for e in events if e.kind != "import")
        assert [e.depth for e in events if e.kind == "import"] == [1, 1, 1]

    def test_the_composition_is_in_the_header_and_bound_by_the_chain(self, recorded: Path) -> None:
        with TraceStore(recorded, readonly=True) as store:
            info = store.trace("comp").info
            assert store.verify("comp").ok
            comp = composition_of(info)
            assert comp is not None
            assert comp.names == ["doubler", "actor"]
            assert comp.wires == (("actor", "math", "double", "doubler", "transform"),)
            assert info.module_sha256 is None
            modules = {m.sha256: m.name for m in store.modules()}
            assert [modules[p.module_sha256 or ""] for p in comp.packages] == ["echo", "host_actor"]
            rows = store.db.execute(
                "SELECT position, name, module_sha256 FROM trace_packages ORDER BY position"
            ).fetchall()
            assert [(r[0], r[1], r[2]) for r in rows] == [
                (i, p.name, p.module_sha256) for i, p in enumerate(comp.packages)
            ]
        # swapping which module a package ran breaks the chain at its first event
        con = sqlite3.connect(recorded)
        meta = con.execute("SELECT meta FROM traces").fetchone()[0]
        con.execute("UPDATE traces SET meta = ?", [meta.replace(b"doubler", b"doublex")])
        con.commit()
        con.close()
        with TraceStore(recorded, readonly=True) as store:
            assert store.verify("comp").first_bad_seq == 0

    def test_in_memory(self) -> None:
        trace = MemoryTrace(
            meta={"composition": composition_meta([("doubler", None), ("actor", None)])}
        )
        recorder = CompositionRecorder(trace)
        with composition().build(interceptors=recorder.package) as comp:
            comp.call("actor", "process", S64(1))
        trace.finish()
        assert trace.verify().ok
        assert [e.package for e in trace.events()] == [
            "actor", "actor", "doubler", "doubler", "actor", "actor"
        ]  # fmt: skip
        view = PackageTrace(trace, "doubler")
        assert [e.seq for e in view.events()] == [2, 3]
        assert all(len(fields) == 13 for fields, _ in view.records())


class TestReplayAlone:
    """Any one package replays alone: its imports (host or wired) from the trace."""

    def test_each_package_alone(self, recorded: Path) -> None:
        for package, exports in (
            ("doubler", ["transform", "transform"]),
            ("actor", ["process"] * 2),
        ):
            report = api.replay(recorded, "comp", package=package)
            assert report.reproduced, report.summary()
            assert [e.function for e in report.exports] == exports

    def test_every_package_in_turn(self, recorded: Path) -> None:
        report = api.replay(recorded, "comp")
        assert isinstance(report, CompositionReplayReport)
        assert report.reproduced, report.summary()
        assert list(report.packages) == ["doubler", "actor"]
        assert report.events_replayed == report.events_total == 11
        assert "2 package(s) replayed alone" in report.summary()

    def test_a_new_build_of_one_package_finds_the_package_that_broke(self, recorded: Path) -> None:
        tripler = Runtime().load_module(TRIPLER)
        with pytest.warns(UserWarning, match="differs from the recorded module"):
            broken = api.replay(recorded, "comp", package="doubler", module=tripler)
        assert not broken.reproduced
        assert broken.divergence is not None
        assert "returned a different value" in str(broken.divergence)
        assert broken.divergence.seq == 3  # the doubler's first return, in the trace's seqs
        # the other package is unaffected: it replays alone from the trace
        assert api.replay(recorded, "comp", package="actor").reproduced

    def test_save_and_diff_per_package(self, recorded: Path) -> None:
        report = api.replay(recorded, "comp", save=True)
        assert report.saved_trace is not None
        diff = api.diff((recorded, "comp"), (recorded, report.saved_trace))
        assert diff.identical, diff.summary()
        assert set(diff.packages) == {"doubler", "actor"}
        with TraceStore(recorded, readonly=True) as store:
            saved = store.trace(report.saved_trace)
            packages = [e.package for e in saved.events()]
        # replayed one package after the other: a different interleaving, same per package
        assert packages == ["doubler"] * 4 + ["actor"] * 7

    def test_refusals(self, recorded: Path, tmp_path: Path) -> None:
        with pytest.raises(StoreError, match="has no package 'nowhere'"):
            api.replay(recorded, "comp", package="nowhere")
        with pytest.raises(StoreError, match="a new build replays one package"):
            api.replay(recorded, "comp", module=Runtime().load_module(TRIPLER))
        single = tmp_path / "single.db"
        api.record_run(ECHO, [("echo", S64(1))], store=single)
        with pytest.raises(StoreError, match="not a composition's trace"):
            api.replay(single, package="doubler")


class TestInterrupted:
    """SIGINT/SIGTERM during a composition's recording or replay: what was kept is
    sealed and named in the note, as for one guest (the signal is sent to this
    process from a callback; the library's own handling turns it into Interrupted)."""

    def test_recording_keeps_every_event_so_far(self, tmp_path: Path) -> None:
        path = tmp_path / "comp.db"

        def stop(result: object) -> None:
            os.kill(os.getpid(), signal.SIGINT)

        with pytest.raises(Interrupted) as info:
            api.record_composition(composition(), CALLS, store=path, on_result=stop)
        assert info.value.exit_code == 130
        with TraceStore(path, readonly=True) as store:
            (trace,) = store.traces()
            assert (trace.status, trace.end_reason) == (TraceStatus.INCOMPLETE, "interrupted")
            assert trace.event_count == 6  # the first call whole, its wired call too
            assert store.verify(trace.id).ok
        assert str(info.value) == (
            f"interrupted by SIGINT: kept 6 event(s) of trace 1 in {path} (incomplete, reason: "
            f"interrupted); replay them with: packr-replay play {path}#1"
        )
        assert api.replay(path, package="actor").reproduced

    @pytest.mark.parametrize("save", [False, True])
    def test_replay_names_the_package_and_what_was_written(
        self, recorded: Path, save: bool
    ) -> None:
        seen: list[Event] = []

        def stop(event: Event) -> None:
            seen.append(event)
            if len(seen) == 5:  # the actor's first event, after the doubler's four
                os.kill(os.getpid(), signal.SIGTERM)

        with pytest.raises(Interrupted) as info:
            api.replay(recorded, "comp", on_event=stop, save=save)
        assert info.value.exit_code == 143
        note = info.value.note
        assert note.startswith("replayed ")
        assert "of trace 1 (package actor; doubler replayed before it)" in note
        with TraceStore(recorded, readonly=True) as store:
            if not save:
                assert note.endswith("; nothing was written")
                assert len(store.traces()) == 1
                return
            assert note.endswith(f"; the replay run so far is trace 2 in {recorded}")
            saved = store.traces()[1]
            assert (saved.status, saved.end_reason) == (TraceStatus.INCOMPLETE, "interrupted")
            assert store.verify(saved.id).ok
            packages = [e.package for e in store.trace(saved.id).events()]
        assert packages[:4] == ["doubler"] * 4  # the package replayed whole is kept


class TestDiff:
    """diff aligns composition traces per package."""

    def test_two_runs_per_package(self, recorded: Path, tmp_path: Path) -> None:
        other = tmp_path / "other.db"
        changed = CompositionBuilder().add_package("doubler", TRIPLER)
        changed.add_package("actor", HOST_ACTOR).add_host(DemoHost())
        changed.wire("actor", "math", "double", "doubler", "transform")
        api.record_composition(changed, CALLS, store=other, label="comp")
        with TraceStore(recorded, readonly=True) as a, TraceStore(other, readonly=True) as b:
            diff = diff_compositions(a.trace("comp"), b.trace("comp"))
        assert not diff.identical
        assert diff.first_package == "doubler"
        assert not diff.packages["doubler"].identical
        assert diff.calls["actor: import math.double"].changed == 1
        assert diff.calls["doubler: return transform"].changed == 2
        assert "differing: doubler, actor" in diff.summary()

    def test_a_package_in_one_trace_only(self, recorded: Path, tmp_path: Path) -> None:
        other = tmp_path / "one.db"
        solo = CompositionBuilder().add_package("doubler", ECHO)
        api.record_composition(solo, [("doubler", "transform", S64(7))], store=other)
        with TraceStore(recorded, readonly=True) as a, TraceStore(other, readonly=True) as b:
            diff = diff_compositions(a.trace("comp"), b.trace(1))
        assert diff.packages["actor"].removed == 7
        assert diff.packages["doubler"].removed == 2  # one transform call fewer

    def test_whole_trace_diff_still_works(self, recorded: Path) -> None:
        with TraceStore(recorded, readonly=True) as store:
            trace = store.trace("comp")
            assert diff_traces(trace, trace).identical


class TestStorage:
    """Format 4's package dimension through export/import, bundles, the index, pruning."""

    def test_export_import_and_bundle_carry_every_module(
        self, recorded: Path, tmp_path: Path
    ) -> None:
        stream = io.BytesIO()
        with TraceStore(recorded) as store:
            store.export_trace("comp", stream)
            bundled = store.bundle("comp", tmp_path / "bundle.db")
        stream.seek(0)
        with TraceStore(tmp_path / "copy.db", create=True) as copy:
            new_id = copy.import_trace(stream)
            assert copy.verify(new_id).ok
            assert len(copy.modules()) == 2
        for path in (tmp_path / "copy.db", bundled):
            assert api.replay(path, package="doubler").reproduced
            assert api.replay(path).reproduced

    def test_index_and_events_view_have_the_package(self, recorded: Path) -> None:
        with TraceStore(recorded) as store:
            assert index_trace(store, "comp") == 11
            rows = store.db.execute(
                "SELECT package, count(*) FROM events GROUP BY package ORDER BY package"
            ).fetchall()
        assert [tuple(r) for r in rows] == [("actor", 7), ("doubler", 4)]

    def test_pruning_keeps_the_modules_of_a_kept_composition(
        self, recorded: Path, tmp_path: Path
    ) -> None:
        with TraceStore(recorded) as store:
            other = api.record_run(GUESTS / "clock_actor.wasm", [], store=store, host=DemoHost())
            delete_traces(store, [other.trace_id])
            assert len(store.modules()) == 2
            delete_traces(store, ["comp"])
            assert store.modules() == []

    def test_a_forged_composition_is_a_format_error(self, recorded: Path) -> None:
        import msgpack

        con = sqlite3.connect(recorded)
        con.execute(
            "UPDATE traces SET meta = ?",
            [msgpack.packb({"composition": {"packages": [["a", "not a sha"]]}})],
        )
        con.commit()
        con.close()
        with pytest.raises(TraceFormatError, match="a package is not"):
            api.replay(recorded, "comp")

    def test_an_event_without_a_package_in_a_composition(self) -> None:
        trace = MemoryTrace(meta={"composition": composition_meta([("a", None)])})
        trace.append(1, "export", "", "f", encode(Tuple()))  # type: ignore[arg-type]
        with pytest.raises(TraceFormatError, match="names no package"):
            list(PackageTrace(trace, "a").records())

    def test_a_tampered_package_field_breaks_the_chain(self) -> None:
        trace = MemoryTrace()
        trace.append(1, "export", "", "f", b"x", package="a")  # type: ignore[arg-type]
        event = next(trace.events())
        assert event.chain_fields()[-1] == "a"
        assert chain_hash(trace_genesis(trace.info), event) == event.hash
        forged = replace(event, package="b")
        assert chain_hash(trace_genesis(trace.info), forged) != event.hash
        builder = SegmentBuilder(trace_genesis(trace.info))
        with pytest.raises(IntegrityError):
            builder.add_event(forged)
