"""Raw imports (``func_raw``) are recorded and replayed: arguments, results and every
write the host function made to guest memory through ``Ctx``, so ``play`` needs no host
for any guest (it used to exit 2 asking for ``--host``)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from packr_replay import api
from packr_replay.abi import S64, U32, String, decode, encode
from packr_replay.replay.rawevents import BadRawEvent, decode_reply
from packr_replay.runtime import Ctx, HostLinkerBuilder, Runtime
from packr_replay.runtime.demo import DemoHost, example_guest
from packr_replay.storage import EventKind, TraceStatus, TraceStore

from .conftest import TEST_FUEL

#: ``run`` calls every raw import once and returns the CGRF value ``h.fill`` wrote at
#: 2048 (so the output is only right if the host's writes are re-applied); ``peek``
#: returns what ``h.sneak`` wrote behind the API's back; ``boom`` calls ``h.boom``.
RAW_GUEST = """
(module
  (import "h" "fill" (func $fill (param i32 i32) (result i32)))
  (import "h" "tick" (func $tick (result i64)))
  (import "h" "half" (func $half (param f64) (result f64)))
  (import "h" "two" (func $two (param i32) (result i32 i64)))
  (import "h" "sneak" (func $sneak (param i32) (result i32)))
  (import "h" "boom" (func $boom (param i32)))
  (memory (export "memory") 1)
  (func (export "run") (param $p i32) (param $n i32) (param $opp i32) (param $olp i32) (result i32)
    (local $len i32)
    (drop (call $tick))
    (drop (call $half (f64.const 3.0)))
    (call $two (i32.const 5)) (drop) (drop)
    (local.set $len (call $fill (i32.const 2048) (i32.const 1024)))
    (i32.store (local.get $opp) (i32.const 2048))
    (i32.store (local.get $olp) (local.get $len))
    (i32.const 0))
  (func (export "peek") (param $p i32) (param $n i32) (param $opp i32) (param $olp i32) (result i32)
    (local $len i32)
    (local.set $len (call $sneak (i32.const 4096)))
    (i32.store (local.get $opp) (i32.const 4096))
    (i32.store (local.get $olp) (local.get $len))
    (i32.const 0))
  (func (export "boom") (param $p i32) (param $n i32) (param $opp i32) (param $olp i32) (result i32)
    (call $boom (i32.const 7))
    (i32.const 0)))
"""


class RawHost:
    """Nondeterministic raw functions: each run answers differently."""

    def __init__(self, seed: int) -> None:
        self.counter = itertools.count(seed * 1000)

    def register(self, builder: HostLinkerBuilder) -> None:
        h = builder.interface("h")
        h.func_raw("fill", self.fill, params=("i32", "i32"), results=("i32",))
        h.func_raw("tick", lambda ctx: next(self.counter), results=("i64",))
        h.func_raw("half", lambda ctx, x: x / 2 + next(self.counter), params=("f64",), results=("f64",))
        h.func_raw("two", lambda ctx, n: (n, next(self.counter)), params=("i32",), results=("i32", "i64"))
        h.func_raw("sneak", self.sneak, params=("i32",), results=("i32",))
        h.func_raw("boom", self.boom, params=("i32",))

    def fill(self, ctx: Ctx, ptr: int, cap: int) -> int:
        ctx.memory.write_u32(ptr + 512, 0xDEADBEEF)  # scratch the guest ignores
        ctx.memory.grow(1)
        return ctx.write_value_at(ptr, cap, String(f"value {next(self.counter)}"))

    def sneak(self, ctx: Ctx, ptr: int) -> int:
        data = encode(S64(next(self.counter)))
        ctx.memory.view()[ptr : ptr + len(data)] = data  # raw access: not recorded
        return len(data)

    def boom(self, ctx: Ctx, n: int) -> None:
        raise RuntimeError(f"database unavailable ({n})")


def raw_module(native: bool | None = None) -> Any:
    return Runtime(fuel=TEST_FUEL, native=native).load_module(RAW_GUEST, name="raw")


def record(db: Path, calls: list[str], seed: int = 1) -> int:
    return api.record(raw_module(), [(c, String("x")) for c in calls], host=RawHost(seed), store=db)


def events(db: Path, trace_id: int) -> list[Any]:
    with TraceStore(db, readonly=True) as store:
        return list(store.trace(trace_id).events())


class TestRecorded:
    """What a raw call leaves in the trace."""

    def test_args_results_and_writes_in_order(self, db: Path) -> None:
        trace_id = record(db, ["run"])
        raws = [e for e in events(db, trace_id) if e.kind is EventKind.RAW]
        assert [e.function for e in raws] == ["tick", "half", "two", "fill"]
        tick, half, two, fill = raws
        assert str(decode(tick.input)) == "()"
        assert str(decode(half.input)) == "(3.0f64)"
        assert str(decode(two.input)) == "(5s32)"
        assert decode_reply(two.output, ("i32", "i64")).results == (5, 1002)
        reply = decode_reply(fill.output, ("i32",))
        written = encode(String("value 1003"))
        assert reply.results == (len(written),)
        assert reply.memory == (
            ("write", 2048 + 512, (0xDEADBEEF).to_bytes(4, "little")),
            ("grow", 1),
            ("write", 2048, written),
        )

    def test_raw_access_is_marked(self, db: Path) -> None:
        trace_id = record(db, ["peek"])
        (sneak,) = [e for e in events(db, trace_id) if e.kind is EventKind.RAW]
        assert "raw_access: true" in str(decode(sneak.output))


class TestReplayed:
    """Replay serves raw calls from the trace: no host, same values."""

    @pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
    def test_reproduces_without_a_host(self, db: Path, native: bool) -> None:
        trace_id = record(db, ["run", "run"])
        report = api.replay(db, trace_id, module=raw_module(native))
        assert report.reproduced, report.summary()
        assert [str(e.output.value) for e in report.exports if e.output] == [
            '"value 1003"', '"value 1007"'
        ]  # fmt: skip

    def test_a_host_given_to_replay_is_not_called(self, db: Path) -> None:
        trace_id = record(db, ["run"])
        report = api.replay(db, trace_id, module=raw_module(), host=RawHost(seed=9))
        assert report.reproduced, report.summary()
        assert str(report.exports[0].output.value) == '"value 1003"'  # type: ignore[union-attr]

    def test_saved_replay_records_raw_calls_too(self, db: Path) -> None:
        trace_id = record(db, ["run"])
        report = api.replay(db, trace_id, module=raw_module(), save=True)
        assert report.saved_trace is not None
        assert api.diff((db, trace_id), (db, report.saved_trace)).identical

    def test_writes_behind_the_api_diverge_and_the_report_says_why(self, db: Path) -> None:
        trace_id = record(db, ["peek"])
        report = api.replay(db, trace_id, module=raw_module())
        assert not report.reproduced
        assert report.raw_access_served == [1]
        assert report.divergence is not None
        assert "export 'peek'" in str(report.divergence)

    def test_other_arguments_diverge(self, db: Path) -> None:
        trace_id = record(db, ["run"])
        other = RAW_GUEST.replace("(f64.const 3.0)", "(f64.const 4.0)")
        module = Runtime(fuel=TEST_FUEL).load_module(other, name="raw")
        with pytest.warns(UserWarning, match="differs from the recorded module"):
            report = api.replay(db, trace_id, module=module)
        assert report.divergence is not None
        text = str(report.divergence)
        assert "raw import call differs from the recorded one" in text
        assert "h.half" in text


class TestFailures:
    """A raw host function that raises: the exception goes on out of the guest as
    before, the failure is recorded, and replay reproduces up to it."""

    def test_recorded_and_replayed_to_the_failure(self, db: Path) -> None:
        with pytest.raises(RuntimeError, match="database unavailable"):
            api.record_run(raw_module(), [("boom", String("x"))], host=RawHost(1), store=db)
        with TraceStore(db, readonly=True) as store:
            (info,) = store.traces()
            assert info.status is TraceStatus.FAILED
            last = list(store.trace(info.id).events())[-1]
        assert (last.kind, last.outcome, last.error) == (
            EventKind.RAW, "import_error", "RuntimeError: database unavailable (7)"
        )  # fmt: skip
        report = api.replay(db, module=raw_module())
        assert report.reproduced, report.summary()
        assert report.recorded_failure is not None
        assert "h.boom raised RuntimeError: database unavailable (7)" in report.summary()


class TestHostileReplies:
    """A forged raw event is refused as a divergence, never applied half-way."""

    @pytest.mark.parametrize(
        "output",
        [b"not cgrf", encode(S64(1)), encode(String("x"))],
        ids=["garbage", "wrong-value", "wrong-type"],
    )
    def test_bad_reply(self, output: bytes) -> None:
        with pytest.raises(BadRawEvent):
            decode_reply(output, ("i32",))

    def test_results_must_fit_the_signature(self, db: Path) -> None:
        trace_id = record(db, ["run"])
        (two,) = [e for e in events(db, trace_id) if e.function == "two"]
        with pytest.raises(BadRawEvent, match="result types"):
            decode_reply(two.output, ("i32",))
        assert decode_reply(two.output, ("i32", "i64")).results


class TestLogger:
    """The logger example guest: packr v0.7's logger over raw imports."""

    def test_records_and_plays_with_no_host(self, db: Path, tmp_path: Path) -> None:
        host = DemoHost(randbytes=lambda n: bytes(range(n)))
        calls = [("process", S64(42)), ("token", U32(4)), ("process", String("hi"))]
        result = api.record_run(example_guest("logger"), calls, host=host, store=db)
        assert [str(r.output.value) for r in result.results if r.output] == [
            "84s64", '"00010203"', '"hi"'
        ]  # fmt: skip
        assert host.logs[:4] == ["process: starting", "process: got S64 value", "42", "process: done"]
        report = api.replay(db)
        assert report.reproduced, report.summary()
        assert report.events_replayed == result.events


def test_a_raw_event_missing_where_one_is_due_diverges(db: Path) -> None:
    """A guest that makes a raw call where the trace has none: a divergence naming
    it, never a host call or a crash."""
    trace_id = api.record(raw_module(), [("peek", String("x"))], host=RawHost(1), store=db)
    # the same export name, but a build whose peek calls tick first
    other = RAW_GUEST.replace(
        "(local.set $len (call $sneak (i32.const 4096)))",
        "(drop (call $tick)) (local.set $len (call $sneak (i32.const 4096)))",
    )
    module = Runtime(fuel=TEST_FUEL).load_module(other, name="raw")
    with pytest.warns(UserWarning, match="differs from the recorded module"):
        report = api.replay(db, trace_id, module=module)
    assert report.divergence is not None
    assert "h.tick" in str(report.divergence)
