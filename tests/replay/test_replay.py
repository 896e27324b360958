"""Record → replay of real guests, divergences, failures, nesting, record modes."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import packr_replay.runtime.exports as exports_module
import packr_replay.runtime.imports as imports_module
from packr_replay import api
from packr_replay.abi import (
    S64,
    UNIT,
    List,
    Option,
    Record,
    String,
    Tuple,
    Value,
    ValueType,
    Variant,
    parse_value,
)
from packr_replay.errors import ReplayDivergence, StoreError, TraceExhausted
from packr_replay.replay import RecordMode, Replayer, ReplayProgress
from packr_replay.runtime import Module, Runtime
from packr_replay.runtime.demo import sexpr
from packr_replay.storage import EventKind, Outcome, TraceStatus, TraceStore, delete_traces

from .conftest import TEST_FUEL, caller_wat, demo_host


def counting_host(answers: dict[str, Callable[[Value], Value]] | None = None) -> Callable[[Any], None]:
    """Typed handlers for t:host/f.*: by default reply S64(call number)."""
    counter = iter(range(1, 10**9))

    def typed(handler: Callable[[Value], Value]) -> Callable[[Any, Value], Value]:
        return lambda ctx, v: handler(v)

    def build(builder: Any) -> None:
        iface = builder.interface("t:host/f")
        for name in ("a", "b", "c"):
            handler = (answers or {}).get(name) or (lambda v: S64(next(counter)))
            iface.func_typed(name, typed(handler))

    return build


class TestReproduce:
    """Recorded runs of every example guest replay offline, exactly."""

    def test_clock_actor_replays_recorded_nondeterminism(self, guest: Callable[[str], Module], db: Path) -> None:
        recorded = api.record_run(
            guest("clock_actor"), [("run", String("Ada")), ("run", UNIT)], host=demo_host(1), store=db, label="t"
        )
        live = api.record_run(
            guest("clock_actor"), [("run", String("Ada")), ("run", UNIT)], host=demo_host(2), store=db, label="u"
        )
        assert [str(r.output) for r in recorded.results] != [str(r.output) for r in live.results]
        report = api.replay(db, "t")
        assert report.reproduced, report.summary()
        assert [e.output.data for e in report.exports] == [r.output.data for r in recorded.results]  # type: ignore[union-attr]
        assert report.events_replayed == report.events_total == recorded.events

    @pytest.mark.parametrize(
        ("name", "calls"),
        [
            ("sexpr", [("eval", parse_value('sexpr::lst([sexpr::sym("+"), sexpr::num(1s64), sexpr::sym("answer")])'))]),
            ("echo", [("echo", parse_value('point{x: 1s32, y: [1u8, 2u8]}')), ("transform", S64(21))]),
            ("host_actor", [("process", S64(5)), ("process", S64(20)), ("process", String("x"))]),
            ("bench", [("calls", S64(50)), ("nothing", UNIT)]),
        ],
    )
    def test_example_guests(self, guest: Callable[[str], Module], db: Path, name: str, calls: list[tuple[str, Value]]) -> None:
        recorded = api.record_run(guest(name), calls, host=demo_host(), store=db)
        assert all(r.error is None for r in recorded.results), [str(r.error) for r in recorded.results]
        report = api.replay(db, host=demo_host(9) if name == "bench" else None)
        assert report.reproduced, report.summary()
        assert len(report.exports) == len(calls)

    def test_kv_actor_state_and_stateful_guest(self, guest: Callable[[str], Module], db: Path) -> None:
        req = ValueType.variant("request")
        calls: list[tuple[str, Value]] = [
            ("init", Record("config", [("namespace", String("ns"))])),
            ("handle", Variant("request", "put", 1, [String("k"), String("v")])),
            ("handle", Variant("request", "get", 0, [String("k")])),
            ("handle", Variant("request", "count", 3)),
        ]
        del req
        recorded = api.record_run(guest("kv_actor"), calls, host=demo_host(), store=db)
        assert str(recorded.results[2].output) == 'response::value(some<string>("v"))'
        report = api.replay(db)
        assert report.reproduced, report.summary()

    def test_replay_does_not_decode_imports(
        self, guest: Callable[[str], Module], db: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        api.record_run(guest("clock_actor"), [("run", String("Ada"))], host=demo_host(), store=db)
        decoded: list[int] = []
        real = imports_module.decode

        def counting(data: bytes, *a: Any) -> Value:
            decoded.append(len(data))
            return real(data, *a)

        monkeypatch.setattr(imports_module, "decode", counting)
        monkeypatch.setattr(exports_module, "decode", counting)
        report = api.replay(db)
        assert report.reproduced
        assert len(decoded) == 1  # the export's output only; no import input was decoded

    def test_module_mismatch_warns_and_continues(self, runtime: Runtime, db: Path) -> None:
        calls = [("a", S64(1))]
        api.record_run(runtime.load_module(caller_wat(calls)), [("run", UNIT)], host=counting_host(), store=db)
        rebuilt = runtime.load_module(caller_wat(calls, extra_export=True))
        with pytest.warns(UserWarning, match="differs from the recorded module"):
            report = api.replay(db, module=rebuilt)
        assert report.reproduced
        assert report.module_mismatch is not None


    def test_a_build_without_the_export(self, runtime: Runtime, db: Path) -> None:
        """The trace calls an export the module lacks: named, not "events left over"."""
        calls = [("a", S64(1))]
        api.record_run(runtime.load_module(caller_wat(calls)), [("run", UNIT)], host=counting_host(), store=db)
        other = runtime.load_module('(module (memory (export "memory") 1) (func (export "go")))')
        with pytest.warns(UserWarning, match="differs from the recorded module"):
            report = api.replay(db, module=other)
        assert not report.reproduced
        assert report.divergence is not None
        assert report.divergence.seq == 0
        assert report.divergence.report == (
            "replay diverged at event #0: the new build has no export 'run' (the trace calls "
            "it; module exports: go)"
        )
        assert report.exports == []


class TestProgress:
    """A ReplayProgress counts what was replayed, without taking calls off the fast path."""

    def test_counts_every_event(self, guest: Callable[[str], Module], db: Path) -> None:
        api.record_run(guest("bench"), [("calls", S64(700)), ("calls", S64(3))], host=demo_host(), store=db)
        progress = ReplayProgress()
        assert progress.events == 0
        report = api.replay(db, progress=progress)
        assert report.reproduced
        assert progress.events == report.events_replayed == report.events_total == 707

    def test_sampled_from_another_thread(self, guest: Callable[[str], Module], db: Path) -> None:
        import threading

        api.record_run(guest("bench"), [("calls", S64(3000))], host=demo_host(), store=db)
        progress = ReplayProgress()
        seen: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                seen.append(progress.events)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            report = api.replay(db, progress=progress)
        finally:
            done.set()
            sampler.join()
        assert report.reproduced
        assert progress.events == 3002
        assert all(0 <= n <= 3002 for n in seen)


class TestDivergence:
    """Each kind of divergence is caught at the first differing call and explained."""

    def _replay_with(self, runtime: Runtime, db: Path, recorded: list[tuple[str, Value]],
                     replayed: list[tuple[str, Value]], **kw: Any) -> api.ReplayReport:
        api.record_run(runtime.load_module(caller_wat(recorded)), [("run", UNIT)], host=counting_host(), store=db)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return api.replay(db, module=runtime.load_module(caller_wat(replayed)), **kw)

    def test_changed_input_reports_value_paths(self, runtime: Runtime, db: Path) -> None:
        before = Record("req", [("id", S64(1)), ("count", S64(5))])
        after = Record("req", [("id", S64(1)), ("count", S64(6))])
        report = self._replay_with(runtime, db, [("a", S64(0)), ("a", before)], [("a", S64(0)), ("a", after)])
        div = report.divergence
        assert div is not None
        assert not report.reproduced
        assert div.seq == 2
        assert div.failed_matchers == ["input"]
        assert [str(d) for d in div.differences] == [".count: 5s64 → 6s64"]
        text = str(div)
        assert "replay diverged at event #2 inside export 'run' (call 1)" in text
        assert "expected: #2 import t:host/f.a(req{id: 1s64, count: 5s64})" in text
        assert "actual:   import t:host/f.a(req{id: 1s64, count: 6s64})" in text
        assert ".count: 5s64 → 6s64" in text

    def test_extra_call_is_trace_exhausted(self, runtime: Runtime, db: Path) -> None:
        report = self._replay_with(runtime, db, [("a", S64(1))], [("a", S64(1)), ("b", S64(2))])
        assert isinstance(report.divergence, TraceExhausted)
        assert "more calls than recorded" in str(report.divergence)

    def test_missing_call(self, runtime: Runtime, db: Path) -> None:
        report = self._replay_with(runtime, db, [("a", S64(1)), ("b", S64(2))], [("a", S64(1))])
        div = report.divergence
        assert div is not None
        assert "more calls recorded" in str(div)
        assert div.expected.function == "b"

    def test_other_function(self, runtime: Runtime, db: Path) -> None:
        report = self._replay_with(runtime, db, [("a", S64(1))], [("b", S64(1))])
        div = report.divergence
        assert div is not None
        assert div.failed_matchers == ["function"]
        assert "nearest recorded calls" in str(div)

    def test_value_matcher_tolerates_what_bytes_matcher_rejects(self, runtime: Runtime, db: Path) -> None:
        # Same value, different elem_type declaration: strict bytes differ, and so does
        # the value (declared types count), so both matchers reject it.
        x = List(ValueType.STRING, [String("a")])
        y = List(ValueType.option(ValueType.STRING), [String("a")])
        report = self._replay_with(runtime, db, [("a", x)], [("a", y)], match_on=("kind", "interface", "function", "input_value"))
        assert report.divergence is not None
        assert report.divergence.failed_matchers == ["input_value"]

    def test_function_only_matching_ignores_inputs(self, runtime: Runtime, db: Path) -> None:
        report = self._replay_with(
            runtime, db, [("a", S64(1))], [("a", S64(2))], match_on=("kind", "interface", "function")
        )
        assert report.reproduced

    def test_divergent_export_output(self, runtime: Runtime, db: Path) -> None:
        # The recorded reply changes what the guest returns: simulate with a trace whose
        # export output was produced by another build.
        api.record_run(runtime.load_module(caller_wat([])), [("run", S64(1))], store=db)
        with TraceStore(db) as store:
            events = list(store.trace(1).events())
        assert [e.kind for e in events] == [EventKind.EXPORT, EventKind.RETURN]


class TestFailures:
    """Failed imports, guest errors, traps and timeouts are recorded and replayed."""

    @pytest.mark.parametrize(
        ("export", "outcome"),
        [("fail", Outcome.GUEST_ERROR), ("trap", Outcome.TRAP), ("spin", Outcome.TIMEOUT),
         ("garbage_out", Outcome.GUEST_ERROR), ("recurse", Outcome.TRAP)],
    )
    def test_export_failures(self, guest: Callable[[str], Module], db: Path, export: str, outcome: Outcome) -> None:
        recorded = api.record_run(guest("hostile"), [(export, UNIT), ("import_echo", S64(3))], host=demo_host(), store=db)
        assert recorded.results[0].error is not None
        with TraceStore(db) as store:
            ret = next(store.trace(1).events(kind=EventKind.RETURN))
        assert ret.outcome == outcome
        report = api.replay(db)
        assert report.reproduced, report.summary()
        assert report.exports[0].error is not None

    def test_import_failure_replays_as_failure(self, guest: Callable[[str], Module], db: Path) -> None:
        recorded = api.record_run(guest("hostile"), [("import_garbage", UNIT), ("import_echo", S64(3))],
                                  host=demo_host(), store=db)
        with TraceStore(db) as store:
            imp = next(store.trace(1).events(kind=EventKind.IMPORT))
        assert imp.outcome == Outcome.IMPORT_ERROR
        assert imp.error_kind == "Decode"
        assert imp.status == -1
        assert recorded.results[0].error is not None
        report = api.replay(db)
        assert report.reproduced, report.summary()

    def test_handler_exception_is_recorded(self, runtime: Runtime, db: Path) -> None:
        def boom(v: Value) -> Value:
            raise RuntimeError("host broke")

        module = runtime.load_module(caller_wat([("a", S64(1))]))
        recorded = api.record_run(module, [("run", UNIT)], host=counting_host({"a": boom}), store=db)
        assert recorded.results[0].error is not None  # the guest traps on -1
        with TraceStore(db) as store:
            imp = next(store.trace(1).events(kind=EventKind.IMPORT))
        assert imp.error_kind == "Handler"
        assert "host broke" in (imp.error or "")
        assert api.replay(db).reproduced


NESTED = """(module
  (import "t:host/f" "cb" (func $cb (param i32 i32 i32 i32) (result i32)))
  (import "t:host/f" "a" (func $a (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $n (mut i32) (i32.const 0))
  (func (export "outer") (param $p i32) (param $l i32) (param $opp i32) (param $olp i32) (result i32)
    (drop (call $cb (local.get $p) (local.get $l) (i32.const 200) (i32.const 204)))
    (i32.store (local.get $opp) (i32.load (i32.const 200)))
    (i32.store (local.get $olp) (i32.load (i32.const 204)))
    (i32.const 0))
  (func (export "inner") (param $p i32) (param $l i32) (param $opp i32) (param $olp i32) (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (drop (call $a (local.get $p) (local.get $l) (i32.const 300) (i32.const 304)))
    (i32.store (local.get $opp) (i32.load (i32.const 300)))
    (i32.store (local.get $olp) (i32.load (i32.const 304)))
    (i32.const 0))
)"""


class TestNesting:
    """Exports called back from host functions are re-invoked at the same point."""

    def test_nested_export_replays(self, runtime: Runtime, db: Path) -> None:
        def host(builder: Any) -> None:
            iface = builder.interface("t:host/f")
            iface.func_typed("a", lambda ctx, v: S64(v.value * 10))
            iface.func_typed("cb", lambda ctx, v: ctx.instance.call_with_value("inner", S64(v.value + 1)))

        recorded = api.record_run(runtime.load_module(NESTED), [("outer", S64(1))], host=host, store=db)
        assert str(recorded.results[0].output) == "20s64"
        with TraceStore(db) as store:
            shape = [(e.kind, e.function, e.depth) for e in store.trace(1).events()]
        assert shape == [
            ("export", "outer", 0), ("export", "inner", 1), ("import", "a", 2),
            ("return", "inner", 1), ("import", "cb", 1), ("return", "outer", 0),
        ]
        report = api.replay(db)
        assert report.reproduced, report.summary()


class TestIncomplete:
    """A trace whose recorder stopped early replays up to the cut."""

    def test_trace_ended_inside_an_export(self, runtime: Runtime, guest: Callable[[str], Module], db: Path) -> None:
        with TraceStore(db, create=True) as store:
            module = guest("bench")
            sha = store.add_module(module.wasm, "bench")
            writer = store.begin_trace(sha, meta={"fuel": TEST_FUEL})
            from packr_replay.replay import Recorder

            inst = module.instantiate(demo_host(), interceptor=Recorder(writer))
            inst.call_with_value("calls", S64(3))
            # Cut: copy the events up to the middle of a second export into a new trace.
            inst.call_with_value("calls", S64(5))
            writer.finish()
            events = list(store.trace(writer.trace_id).events())
            cut = store.begin_trace(sha, meta={"fuel": TEST_FUEL}, label="cut")
            for e in events[: len(events) - 3]:
                cut.append(e.call, e.kind, e.interface, e.function, e.input, e.output, e.status,
                           e.outcome, e.error_kind, e.error, e.duration_ns, e.depth)
            cut.flush()
            cut.finish(status="incomplete")  # type: ignore[arg-type]
        report = api.replay(db, "cut")
        assert report.reproduced, report.summary()
        assert report.ended_early
        assert "trace ended there" in report.summary()


class TestSession:
    """Record modes: none, once, new_episodes, all."""

    def test_once_records_then_replays(self, guest: Callable[[str], Module], db: Path) -> None:
        with api.Session(guest("clock_actor"), store=db, label="t", mode="once", host=demo_host(1)) as s:
            assert s.recording
            assert not s.replaying
            first = s.call("run", String("Ada"))
        with api.Session(guest("clock_actor"), store=db, label="t", mode="once", host=demo_host(2)) as s:
            assert s.replaying
            assert not s.recording
            again = s.call("run", String("Ada"))
        assert again == first

    def test_none_requires_a_trace(self, guest: Callable[[str], Module], db: Path) -> None:
        with pytest.raises(StoreError, match="record it first"):
            api.Session(guest("clock_actor"), store=db, label="missing", mode="none")

    def test_none_mode_fails_on_unrecorded_calls(self, guest: Callable[[str], Module], db: Path) -> None:
        with api.Session(guest("clock_actor"), store=db, label="t", mode="all", host=demo_host(1)) as s:
            s.call("run", String("Ada"))
        with api.Session(guest("clock_actor"), store=db, label="t", mode="none") as s:
            s.call("run", String("Ada"))
            with pytest.raises(ReplayDivergence):
                s.call("run", String("Bob"))

    def test_fewer_calls_than_recorded_fails_at_close(self, guest: Callable[[str], Module], db: Path) -> None:
        with api.Session(guest("clock_actor"), store=db, label="t", mode="all", host=demo_host(1)) as s:
            s.call("run", String("Ada"))
            s.call("run", String("Bob"))
        s = api.Session(guest("clock_actor"), store=db, label="t", mode="none")
        s.call("run", String("Ada"))
        with pytest.raises(ReplayDivergence, match="fewer calls"):
            s.close()

    def test_new_episodes_appends_live_calls(self, guest: Callable[[str], Module], db: Path) -> None:
        with api.Session(guest("clock_actor"), store=db, label="t", mode="all", host=demo_host(1)) as s:
            first = s.call("run", String("Ada"))
        with api.Session(guest("clock_actor"), store=db, label="t", mode=RecordMode.NEW_EPISODES, host=demo_host(2)) as s:
            assert s.replaying
            assert s.recording
            assert s.call("run", String("Ada")) == first  # replayed
            second = s.call("run", String("Bob"))  # live
        with TraceStore(db) as store:
            newest = store.trace("t")
            assert len(list(newest.events(kind=EventKind.EXPORT))) == 2
        with api.Session(guest("clock_actor"), store=db, label="t", mode="none") as s:
            assert s.call("run", String("Ada")) == first
            assert s.call("run", String("Bob")) == second

    def test_replays_the_newest_complete_trace(self, guest: Callable[[str], Module], db: Path) -> None:
        """A later recording that failed does not hide the complete one; with no complete
        trace, once records and none replays what there is."""
        with api.Session(guest("clock_actor"), store=db, label="t", mode="all", host=demo_host(1)) as s:
            good = s.call("run", String("Ada"))
        failing = api.Session(guest("clock_actor"), store=db, label="t", mode="all", host=demo_host(2))
        failing.call("run", String("Ada"))
        failing.__exit__(RuntimeError, RuntimeError("the caller failed"), None)  # sealed failed
        with TraceStore(db, readonly=True) as store:
            assert [t.status for t in store.traces()] == [TraceStatus.COMPLETE, TraceStatus.FAILED]
            assert api.replayable_trace(store, "t") == store.traces()[0]
            assert api.replayable_trace(store, "nope") is None
        for mode in ("once", "none"):
            with api.Session(guest("clock_actor"), store=db, label="t", mode=mode, host=demo_host(3)) as s:
                assert s.replaying
                assert not s.recording
                assert s.call("run", String("Ada")) == good
        with TraceStore(db) as store:
            delete_traces(store, [store.traces()[0].id])  # only the failed one is left
            assert api.replayable_trace(store, "t") is None
            assert api.replayable_trace(store, "t", strict=True) == store.traces()[0]
        with api.Session(guest("clock_actor"), store=db, label="t", mode="once", host=demo_host(3)) as s:
            assert s.recording

    def test_all_always_records(self, guest: Callable[[str], Module], db: Path) -> None:
        for seed in (1, 2):
            with api.Session(guest("clock_actor"), store=db, label="t", mode="all", host=demo_host(seed)) as s:
                s.call("run", UNIT)
        with TraceStore(db) as store:
            assert len(store.traces()) == 2


class TestReplayerUnit:
    """The replayer against an in-memory trace (no SQLite)."""

    def test_memory_trace_round_trip(self, runtime: Runtime) -> None:
        from packr_replay.replay import Recorder
        from packr_replay.storage import MemoryTrace

        module = runtime.load_module(caller_wat([("a", S64(1)), ("b", Option(ValueType.S64, S64(2)))]))
        trace = MemoryTrace()
        inst = module.instantiate(counting_host(), interceptor=Recorder(trace))
        out = inst.call_with_value("run", Tuple(S64(7)))
        trace.finish()
        replayer = Replayer(trace)
        inst2 = module.instantiate(counting_host({"a": lambda v: S64(-99), "b": lambda v: S64(-99)}), interceptor=replayer)
        replayer.bind(inst2)
        assert inst2.call_with_value("run", Tuple(S64(7))) == out
        assert replayer.replayed == len(trace)

    def test_variant_payload_path(self) -> None:
        from packr_replay.replay import diff_values

        a = sexpr("lst", List(ValueType.variant("sexpr"), [sexpr("num", S64(1)), sexpr("sym", String("x"))]))
        b = sexpr("lst", List(ValueType.variant("sexpr"), [sexpr("num", S64(2)), sexpr("num", S64(3))]))
        assert [str(d) for d in diff_values(a, b)] == [
            ".payload[0][0].payload[0]: 1s64 → 2s64",
            ".payload[0][1]: sexpr::sym(\"x\") → sexpr::num(3s64) (case)",
        ]


class TestExactBytes:
    """Non-canonical CGRF crosses record → replay byte for byte (nothing re-encodes it)."""

    def test_non_canonical_input_is_recorded_and_matched_exactly(self, runtime: Runtime, db: Path) -> None:
        import struct

        from packr_replay.abi import decode, encode

        # A tuple whose two children are one shared String node (a DAG), and an Option
        # whose presence byte is 2: both legal, both re-encode differently.
        shared = (
            b"CGRF\x02\x00\x00\x00" + struct.pack("<II", 2, 1)
            + struct.pack("<BBHI", 0x06, 0, 0, 6) + struct.pack("<I", 2) + b"hi"
            + struct.pack("<BBHI", 0x0B, 0, 0, 12) + struct.pack("<III", 2, 0, 0)
        )
        lenient = b"CGRF\x02\x00\x00\x00" + struct.pack("<II", 1, 0) + struct.pack("<BBHI", 0x0A, 0, 0, 2) + b"\x06\x02"
        for blob in (shared, lenient):
            assert encode(decode(blob)) != blob
        escaped = ["".join(f"\\{b:02x}" for b in blob) for blob in (shared, lenient)]
        wat = f"""(module
  (import "t:host/f" "a" (func $a (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) "{escaped[0]}")
  (data (i32.const 2048) "{escaped[1]}")
  (func (export "run") (param $p i32) (param $l i32) (param $opp i32) (param $olp i32) (result i32)
    (drop (call $a (i32.const 1024) (i32.const {len(shared)}) (i32.const 200) (i32.const 300)))
    (drop (call $a (i32.const 2048) (i32.const {len(lenient)}) (i32.const 200) (i32.const 300)))
    (i32.store (local.get $opp) (local.get $p))
    (i32.store (local.get $olp) (local.get $l))
    (i32.const 0)))"""
        module = runtime.load_module(wat)
        api.record_run(module, [("run", UNIT)], host=counting_host(), store=db)
        with TraceStore(db) as store:
            inputs = [e.input for e in store.trace(1).events(kind=EventKind.IMPORT)]
        assert inputs == [shared, lenient]
        assert api.replay(db).reproduced  # strict matching compares these exact bytes

    def test_a_host_can_reply_with_exact_bytes(self, runtime: Runtime, db: Path) -> None:
        import struct

        from packr_replay.abi import EncodedValue

        lenient = b"CGRF\x02\x00\x00\x00" + struct.pack("<II", 1, 0) + struct.pack("<BBHI", 0x0A, 0, 0, 2) + b"\x06\x02"
        module = runtime.load_module(caller_wat([("a", S64(1))]))
        api.record_run(module, [("run", UNIT)], host=counting_host({"a": lambda v: EncodedValue(lenient)}), store=db)
        with TraceStore(db) as store:
            [imp] = list(store.trace(1).events(kind=EventKind.IMPORT))
        assert imp.output == lenient
        assert api.replay(db).reproduced
