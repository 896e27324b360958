"""The C trampoline against the Python path, side by side: same traces byte for byte
(every stored field but the timing), same values, same errors and reports; which
calls it serves itself; lifetime and hostile input."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from packr_replay import api
from packr_replay.abi import (
    S64,
    U32,
    UNIT,
    List,
    Record,
    String,
    Value,
    Variant,
    encode,
    parse_value,
)
from packr_replay.errors import (
    GuestTimeout,
    HostFunctionError,
    ReplayDivergence,
    TraceExhausted,
)
from packr_replay.replay import Recorder, Replayer
from packr_replay.runtime import (
    CallInterceptor,
    Ctx,
    HostLinkerBuilder,
    Instance,
    ReplyMode,
    Runtime,
    native,
)
from packr_replay.runtime.demo import DemoHost, example_guest
from packr_replay.storage import MemoryTrace, TraceStore

from .conftest import TEST_FUEL

pytestmark = pytest.mark.skipif(not native.AVAILABLE, reason=f"{native.UNAVAILABLE_REASON}")

# Every chain field but duration_ns (index 11): the rest of a trace must be identical.
_TIMING = 11


def _events(trace: Any) -> list[tuple[Any, ...]]:
    return [f[:_TIMING] + f[_TIMING + 1 :] for f, _ in trace.records()]


def _runtimes() -> dict[str, Runtime]:
    return {p: Runtime(fuel=TEST_FUEL, native=p == "native") for p in ("native", "python")}


@pytest.fixture(params=[None], autouse=True)
def _both_import_paths() -> None:
    """(This module compares the two paths itself, in each test.)"""


def _record(
    runtime: Runtime, wasm: Path | str, calls: list[tuple[str, Value]], host: Any
) -> tuple[list[tuple[Any, ...]], list[Any], Instance]:
    """Record ``calls``; the trace's events, each call's value or error, the instance."""
    module = runtime.load_module(wasm)
    sink = MemoryTrace()
    inst = module.instantiate(host() if callable(host) and not isinstance(host, DemoHost) else host,
                              interceptor=Recorder(sink))
    results: list[Any] = []
    for name, value in calls:
        try:
            results.append(inst.call_with_value(name, value))
        except Exception as exc:  # compared across paths: type and text
            results.append((type(exc).__name__, str(exc)))
    sink.finish()
    return _events(sink), results, inst


def _demo(seed: int = 0) -> Callable[[], DemoHost]:
    def make() -> DemoHost:
        import itertools

        clock = itertools.count(1_700_000_000_000_000_000 + seed, 1000)
        rolls = itertools.count(seed)
        return DemoHost(environ={"USER": "ada"}, clock=lambda: next(clock),
                        randbelow=lambda n: next(rolls) % n)  # fmt: skip

    return make


FLOWS: dict[str, list[tuple[str, Value]]] = {
    "bench": [("calls", S64(300)), ("calls", String("x")), ("nothing", UNIT)],
    "clock_actor": [("run", String("Ada")), ("run", UNIT), ("run", S64(3))],
    "kv_actor": [
        ("handle", Variant("request", "count", 3)),  # before init: no host call
        ("init", Record("config", [("namespace", String("ns"))])),
        ("handle", Variant("request", "put", 1, [String("k"), String("v")])),
        ("handle", Variant("request", "get", 0, [String("k")])),
        ("handle", Variant("request", "delete", 2, [String("nope")])),
        ("init", S64(1)),
    ],
    "sexpr": [
        ("eval", parse_value('sexpr::lst([sexpr::sym("+"), sexpr::num(1s64), sexpr::sym("answer")])')),
        ("eval", parse_value('sexpr::sym("unbound")')),
    ],
    "echo": [("echo", parse_value("point{x: 1s32, y: [1u8, 2u8]}")), ("transform", S64(21))],
    "host_actor": [("process", S64(5)), ("process", S64(20)), ("process", String("x"))],
}


class TestSameTraces:
    """Recording the example guests: identical events, values and errors on both paths."""

    @pytest.mark.parametrize("name", sorted(FLOWS))
    def test_record(self, name: str) -> None:
        runs = {
            path: _record(rt, example_guest(name), FLOWS[name], _demo())
            for path, rt in _runtimes().items()
        }
        (ev_n, res_n, inst_n), (ev_p, res_p, inst_p) = runs["native"], runs["python"]
        assert ev_n == ev_p
        assert res_n == res_p
        assert inst_p._native is None
        imports = sum(1 for e in ev_n if e[2] == "import")
        assert inst_n._native.native == imports  # every import served by C, none handed back
        assert inst_n._native.python == 0

    def test_replay_serves_in_c(self, tmp_path: Path) -> None:
        rt = Runtime(fuel=TEST_FUEL, native=True)
        module = rt.load_module(example_guest("bench"))
        api.record_run(module, [("calls", S64(2000)), ("calls", S64(5))], host=DemoHost(),
                       store=tmp_path / "t.db")  # fmt: skip
        with TraceStore(tmp_path / "t.db", readonly=True) as store:
            replayer = Replayer(store.trace(1))
            inst = module.instantiate(_stub_host, interceptor=replayer)
            replayer.bind(inst)
            while (event := replayer.next_export()) is not None:
                inst.call_raw(event.function, event.input or b"")
            assert replayer.remaining() is None
            assert inst._native.mode == native.MODE_REPLAY
            assert inst._native.native == 2005
            # at most one import per export call and per 256-record chunk goes to Python
            assert inst._native.python <= 2 + 2005 // 256 + 1
            assert replayer.replayed == len(store.trace(1))


def _stub_host(b: HostLinkerBuilder) -> None:
    b.interface("bench:host/math").func_typed("inc", _never)
    b.interface("bench:host/text").func_typed("echo", _never)
    b.interface("bench:host/raw").func_raw("noop", lambda ctx, i: i, params=("i32",), results=("i32",))


def _never(ctx: Ctx, v: Value) -> Value:
    raise AssertionError("a replayed import ran its handler")


# ---------------------------------------------------------------- failures


CALLER = """
(module
  (import "t" "f" (func $f (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) "{blob}")
  (func (export "poke") (param i32 i32 i32 i32) (result i32)
    (call $f (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "many") (param i32) (result i32)
    (local $s i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get 0)))
      (local.set $s (i32.add (local.get $s)
        (call $f (i32.const 1024) (i32.const {n}) (i32.const 8000) (i32.const 8004))))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br $l)))
    (local.get $s)))
"""


def _caller(value: Value) -> str:
    blob = encode(value)
    return CALLER.format(blob="".join(f"\\{b:02x}" for b in blob), n=len(blob))


def _handlers() -> dict[str, Callable[[Ctx, Value], Any]]:
    def grow(ctx: Ctx, v: Value) -> Value:
        ctx.memory.grow(1)
        return String("g" * 100)

    return {
        "ok": lambda ctx, v: v,
        "raises": lambda ctx, v: 1 / 0,
        "not-a-value": lambda ctx, v: 42,
        "huge": lambda ctx, v: String("h" * 40_000),  # over the 32 KiB scratch cap
        "grows": grow,
        "list": lambda ctx, v: List([U32(1), U32(2)]),
    }


def _run_calls(
    runtime: Runtime, wat: str, handler: Callable[..., Any], pokes: list[tuple[int, ...]],
    *, reply: ReplyMode = ReplyMode.SCRATCH, interceptor: CallInterceptor | None = None,
) -> tuple[list[Any], list[tuple[str, str]]]:
    errors: list[HostFunctionError] = []
    inst = runtime.load_module(wat).instantiate(
        lambda b: b.interface("t").func_typed("f", handler),
        on_error=errors.append, reply=reply, interceptor=interceptor,
    )
    out: list[Any] = []
    for args in pokes:
        try:
            status = inst.call("poke", *args) if len(args) == 4 else inst.call("many", *args)
            out.append((status, inst.memory.read_u32(8000), inst.memory.read_u32(8004)))
        except BaseException as exc:
            out.append((type(exc).__name__, str(exc)))
    return out, [(e.kind, e.message) for e in errors]


POKES = [
    (1024, 32, 8000, 8004),
    (1024, 32, 2 * 65536, 8004),  # reply slot outside memory
    (-1, 32, 8000, 8004),  # input outside memory
    (1024, 7, 8000, 8004),  # truncated CGRF
    (3,),
]


class TestSameErrors:
    """Failing handlers, bad pointers, big replies: the same statuses, slots and reports."""

    @pytest.mark.parametrize("handler", sorted(_handlers()))
    @pytest.mark.parametrize("reply", [ReplyMode.SCRATCH, ReplyMode.GUEST_ALLOC])
    @pytest.mark.parametrize("recording", [False, True], ids=["live", "record"])
    def test_side_by_side(self, handler: str, reply: ReplyMode, recording: bool) -> None:
        results = {}
        traces = {}
        for path, rt in _runtimes().items():
            sink = MemoryTrace()
            icpt = Recorder(sink) if recording else None
            results[path] = _run_calls(rt, _caller(S64(7)), _handlers()[handler], POKES,
                                       reply=reply, interceptor=icpt)  # fmt: skip
            if recording:
                assert icpt is not None
                icpt.drain()  # plain calls have no export boundary that hands rows over
                sink.finish()
                traces[path] = _events(sink)
        assert results["native"] == results["python"]
        assert traces.get("native") == traces.get("python")

    def test_base_exception_propagates(self) -> None:
        def stop(ctx: Ctx, v: Value) -> Value:
            raise KeyboardInterrupt

        for rt in _runtimes().values():
            inst = rt.load_module(_caller(S64(1))).instantiate(lambda b: b.interface("t").func_typed("f", stop))
            with pytest.raises(KeyboardInterrupt):
                inst.call("many", 5)
            assert inst.call("many", 0) == 0  # still usable, nothing left pending

    def test_timeout_after_native_calls(self) -> None:
        spin = """
        (module
          (import "t" "f" (func $f (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 1024) "{blob}")
          (func (export "run") (param i32) (result i32)
            (drop (call $f (i32.const 1024) (i32.const {n}) (i32.const 8000) (i32.const 8004)))
            (loop $l (br $l)) (i32.const 0)))"""
        blob = encode(S64(1))
        wat = spin.format(blob="".join(f"\\{b:02x}" for b in blob), n=len(blob))
        for path in ("native", "python"):
            rt = Runtime(fuel=None, timeout=0.2, native=path == "native")
            inst = rt.load_module(wat).instantiate(lambda b: b.interface("t").func_typed("f", lambda c, v: v))
            with pytest.raises(GuestTimeout, match="wall-clock timeout"):
                inst.call("run", 0)
            assert inst._native is None or inst._native.native == 1


    @pytest.mark.parametrize("budget", ["fuel", "timeout"])
    def test_a_replayed_run_that_runs_out_stops_the_same_way(
        self, budget: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An epoch (wall clock) or fuel trap after imports the trampoline served comes out
        of the export as the same typed error, and the replay reproduces the recording."""
        wat = """
        (module
          (import "t" "f" (func $f (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 1024) "{blob}")
          (func (export "run") (param i32 i32 i32 i32) (result i32)
            (drop (call $f (i32.const 1024) (i32.const {n}) (i32.const 8000) (i32.const 8004)))
            (drop (call $f (i32.const 1024) (i32.const {n}) (i32.const 8000) (i32.const 8004)))
            (loop $l (br $l)) (i32.const 0)))"""
        blob = encode(S64(1))
        wat = wat.format(blob="".join(f"\\{b:02x}" for b in blob), n=len(blob))
        if budget == "fuel":
            rt = Runtime(fuel=2_000_000, native=True)
        else:
            rt = Runtime(fuel=None, timeout=0.2, native=True)
        db = tmp_path / "t.db"
        result = api.record_run(
            rt.load_module(wat), [("run", UNIT)], store=db,
            host=lambda b: b.interface("t").func_typed("f", lambda c, v: v),
        )  # fmt: skip
        recorded = result.results[0].error
        assert isinstance(recorded, GuestTimeout)
        for path in ("native", "python"):
            monkeypatch.setattr(native, "DEFAULT", path == "native")
            report = api.replay(db)
            assert report.reproduced, report.summary()
            assert report.exports[0].error == str(recorded)


# ------------------------------------------------------------------- replay


def _record_caller(db: Path, value: Value, n: int) -> None:
    rt = Runtime(fuel=TEST_FUEL, native=False)
    module = rt.load_module(_caller(value))
    with TraceStore(db, create=True) as store:
        writer = store.begin_trace(store.add_module(module.wasm, "caller"), label="t")
        counter = iter(range(1, 10**9))
        recorder = Recorder(writer)
        inst = module.instantiate(lambda b: b.interface("t").func_typed("f", lambda c, v: S64(next(counter))),
                                  interceptor=recorder)  # fmt: skip
        inst.call("many", n)  # (a plain call: no export events; drained by hand)
        recorder.drain()
        writer.finish()


def _replay(db: Path, module_wat: str, path: str, n: int) -> tuple[Any, str]:
    rt = Runtime(fuel=TEST_FUEL, native=path == "native")
    module = rt.load_module(module_wat)
    with TraceStore(db, readonly=True) as store:
        replayer = Replayer(store.trace("t"))
        inst = module.instantiate(lambda b: b.interface("t").func_typed("f", _never), interceptor=replayer)
        replayer.bind(inst)
        try:
            result: Any = inst.call("many", n)
        except (ReplayDivergence, TraceExhausted) as exc:
            result = (type(exc).__name__, exc.seq, exc.failed_matchers)
            return result, str(exc)
        return result, ""


class TestSameReplay:
    """Replaying, reproducing or diverging: the same results and the same reports.

    (The guest's ``many(n)`` repeats one call n times; "input" changes its bytes.)"""

    @pytest.mark.parametrize(
        ("change", "calls"),
        [
            ("none", 600),  # reproduces
            ("input", 600),  # the guest sends other bytes: divergence at the first call
            ("more", 700),  # more calls than recorded: exhausted
            ("fewer", 300),  # (the export ends early: the plain call just returns)
        ],
    )
    def test_report(self, tmp_path: Path, change: str, calls: int) -> None:
        db = tmp_path / "t.db"
        _record_caller(db, S64(7), 600)
        wat = _caller(S64(8) if change == "input" else S64(7))
        native_run = _replay(db, wat, "native", calls)
        python_run = _replay(db, wat, "python", calls)
        assert native_run == python_run
        if change in ("none", "fewer"):
            assert native_run[1] == ""
        if change == "input":
            assert "import call differs" in native_run[1]
        if change == "more":
            assert native_run[0][0] == "TraceExhausted"

    @pytest.mark.parametrize("source", ["memory", "file"])
    @pytest.mark.parametrize("at", [0, 255, 256, 450, 599])
    def test_divergence_deep_in_the_trace(
        self, at: int, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A divergence after hundreds of natively served calls names the same event,
        with the same history and nearest calls in its report."""
        rt = Runtime(fuel=TEST_FUEL, native=False)
        wat = _caller(S64(7))
        sink = MemoryTrace()
        recorder = Recorder(sink)
        inst = rt.load_module(wat).instantiate(
            lambda b: b.interface("t").func_typed("f", lambda c, v: S64(3)), interceptor=recorder
        )
        inst.call("many", 600)
        recorder.drain()
        altered = MemoryTrace()
        for event in sink.events():
            data = encode(S64(8)) if event.seq == at else event.input
            altered.append(event.call, event.kind, event.interface, event.function, data,
                           event.output, event.status, event.outcome, event.error_kind,
                           event.error, event.duration_ns, event.depth)  # fmt: skip
        altered.finish()
        store = None
        if source == "file":  # read back lazily: most records never built in Python
            store = TraceStore(tmp_path / "t.db", create=True)
            writer = store.begin_trace(None, label="t")
            writer.extend([(e.call, e.kind, e.interface, e.function, e.input, e.output, e.status,
                            e.outcome, e.error_kind, e.error, e.duration_ns, e.depth)
                           for e in altered.events()])  # fmt: skip
            writer.finish()
        reports = {}
        for path, runtime in _runtimes().items():
            replayer = Replayer(altered if store is None else store.trace("t"))
            inst = runtime.load_module(wat).instantiate(
                lambda b: b.interface("t").func_typed("f", _never), interceptor=replayer
            )
            with pytest.raises(ReplayDivergence) as info:
                inst.call("many", 600)
            reports[path] = (str(info.value), info.value.seq, replayer.replayed)
            if path == "native":
                assert inst._native.native == at  # everything before it was served in C
        # the reference: the Python path with plain records (no feed, nothing lazy)
        monkeypatch.setattr(native, "ReplayFeed", None)
        replayer = Replayer(altered if store is None else store.trace("t"))
        assert replayer.native_feed is None
        inst = Runtime(fuel=TEST_FUEL, native=False).load_module(wat).instantiate(
            lambda b: b.interface("t").func_typed("f", _never), interceptor=replayer
        )
        with pytest.raises(ReplayDivergence) as info:
            inst.call("many", 600)
        reports["reference"] = (str(info.value), info.value.seq, replayer.replayed)
        if store is not None:
            store.close()
        assert reports["native"] == reports["python"] == reports["reference"]
        assert reports["native"][1] == at

    def test_custom_matchers(self, tmp_path: Path) -> None:
        """Matchers other than the strict default keep the Python path, same results."""
        db = tmp_path / "t.db"
        _record_caller(db, S64(7), 600)
        wat = _caller(S64(7))
        results = {}
        for path in ("native", "python"):
            rt = Runtime(fuel=TEST_FUEL, native=path == "native")
            module = rt.load_module(wat)
            with TraceStore(db, readonly=True) as store:
                replayer = Replayer(store.trace("t"), match_on=("kind", "interface", "function"))
                inst = module.instantiate(lambda b: b.interface("t").func_typed("f", _never),
                                          interceptor=replayer)  # fmt: skip
                replayer.bind(inst)
                results[path] = (inst.call("many", 600), replayer.replayed)
                assert replayer.native_feed is None  # custom matchers: the Python path
        assert results["native"] == results["python"]


class TestModes:
    """Which interceptors the trampoline serves itself."""

    def _mode(self, interceptor: CallInterceptor | None) -> int:
        rt = Runtime(fuel=TEST_FUEL, native=True)
        inst = rt.load_module(_caller(S64(1))).instantiate(
            lambda b: b.interface("t").func_typed("f", lambda c, v: v), interceptor=interceptor
        )
        inst.call("many", 1)
        mode: int = inst._native.mode
        return mode

    def test_modes(self) -> None:
        class Watching(CallInterceptor):
            async def after_import(self, *args: Any) -> None:
                pass

        class OwnObserver(Recorder):
            def _observe_import(self, *args: Any) -> None:
                super()._observe_import(*args)

        assert self._mode(None) == native.MODE_LIVE
        assert self._mode(Recorder(MemoryTrace())) == native.MODE_RECORD
        assert self._mode(Watching()) == native.MODE_PYTHON
        assert self._mode(OwnObserver(MemoryTrace())) == native.MODE_PYTHON

    @pytest.mark.parametrize(("env", "default"), [("0", False), ("1", True), ("", True)])
    def test_environment_switch(self, env: str, default: bool) -> None:
        import os
        import subprocess
        import sys

        code = "from packr_replay.runtime import Runtime, native; print(native.DEFAULT, Runtime().native)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PACKR_REPLAY_NATIVE_IMPORTS": env}).stdout  # fmt: skip
        assert out.split() == [str(default), str(default)]

    def test_python_runtime(self) -> None:
        rt = Runtime(fuel=TEST_FUEL, native=False)
        inst = rt.load_module(_caller(S64(1))).instantiate(lambda b: b.interface("t").func_typed("f", lambda c, v: v))
        assert inst._native is None
        assert inst.call("many", 3) == 0


class TestLifetime:
    """Instances on the native path are collected, and their imports with them."""

    def test_collected(self) -> None:
        rt = Runtime(fuel=TEST_FUEL, native=True)
        module = rt.load_module(_caller(S64(1)))
        refs = []
        for _ in range(20):
            inst = module.instantiate(lambda b: b.interface("t").func_typed("f", lambda c, v: v),
                                      interceptor=Recorder(MemoryTrace()))  # fmt: skip
            inst.call("many", 10)
            refs.append(weakref.ref(inst))
            del inst
        gc.collect()
        assert all(r() is None for r in refs)


class TestHostileFeed:
    """Records the trampoline must not serve (or must not crash on) go to Python."""

    @pytest.mark.parametrize(
        "record",
        [
            "not a tuple",
            (),
            ((1, 2, 3), b""),
            ((0, 1, "import", "t", "f", None, b"", 0, "ok", None, None, 0, 1), b""),
            ((0, 1, "import", "t", "f", b"", b"", 2**40, "ok", None, None, 0, 1), b""),
            ((0, 1, "import", "t\ud800", "f", b"", b"", 0, "ok", None, None, 0, 1), b""),
            ((0, 1, "import", "t", "f", b"", b"", 0, "import_error", "Decode", "x", 0, 1), b""),
            ((0, 1, "export", "", "f", b"", None, None, "ok", None, None, 0, 0), b""),
            ((0, 1, "import", "t", "f", bytearray(b""), b"", 0, "ok", None, None, 0, 1), b""),
        ],
        ids=[
            "str", "empty", "short", "none-input", "big-status", "surrogate", "failure",
            "export", "bytearray",
        ],
    )
    def test_not_loaded(self, record: Any) -> None:
        feed = native.ReplayFeed("import", "ok", lambda: None)
        assert feed.load([record], 0) == 0
        assert feed.take() == 0

    def test_loads_the_servable_prefix(self) -> None:
        ok = ((0, 1, "import", "t", "f", b"in", b"out", None, "ok", None, None, 0, 1), b"")
        bad = ((1, 1, "return", "", "f", None, b"", 0, "ok", None, None, 0, 0), b"")
        feed = native.ReplayFeed("import", "ok", lambda: None)
        assert feed.load([bad, ok, ok, bad, ok], 1) == 2
        assert feed.load([ok], 5) == 0  # past the end
        assert feed.load([ok], -1) == 0

