"""What a host call costs through packr-replay's runtime, measured side by side.

The ``bench`` example guest (``examples/guests/bench.wasm``) makes N calls in a loop:
``calls(n)`` calls the typed import ``bench:host/math.inc`` (CGRF in, CGRF out, the
4-i32 convention), ``raw_calls(n)`` the bare ``bench:host/raw.noop(i32) -> i32``. Every
workload below runs once per round, interleaved, for several rounds, and each result is
a **ratio** of two workloads measured in the same round (median and spread over the
rounds), so machine speed and noise cancel out. Absolute per-call times are shown next
to the ratios only as context.

Workloads:

* ``typed``            typed import through our runtime (handler takes/returns Values)
* ``typed-plain``      the same with plain-Python conversion (``n: s64 -> s64``)
* ``raw-wasmtime``     bare no-op defined with wasmtime-py's standard ``Linker.define_func``
* ``raw-fast``         bare no-op through our unchecked fast path (``func_raw``)
* ``typed+icpt``       typed, with a recorder-like interceptor that never suspends
* ``typed+inline``     the same interceptor marked ``inline`` (as the Recorder is)
* ``async``            typed, via ``await call_with_value_async`` (guest in a worker thread)
* ``async+icpt``       async path with the same interceptor (hooks run on the caller's loop)
* ``async+inline``     async path with the interceptor marked ``inline``
* ``async-handler``    an ``async def`` import handler on the sync path

Run::

    python bench/bench_host_call.py             # N=2000 calls, 7 rounds
    python bench/bench_host_call.py --quick     # N=500, 3 rounds
    python bench/bench_host_call.py --json      # machine-readable
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmtime

from packr_replay.abi import S64, EncodedValue, Value, decode, encode
from packr_replay.abi.convert import s64
from packr_replay.runtime import (
    AsyncCtx,
    CallInterceptor,
    Ctx,
    HostLinkerBuilder,
    Instance,
    Runtime,
)
from packr_replay.runtime.demo import example_guest

BENCH_WASM = Path(__file__).resolve().parents[1] / "examples" / "guests" / "bench.wasm"
if not BENCH_WASM.exists():  # an installed package: the guests ship as packr_replay.examples
    try:
        BENCH_WASM = example_guest("bench")
    except FileNotFoundError:
        pass


class Recorder(CallInterceptor):
    """What a recorder does on the hot path: keep the exact bytes, never suspend."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes, bytes]] = []

    async def after_import(
        self, interface: str, function: str, input: EncodedValue, output: EncodedValue
    ) -> None:
        self.events.append((function, input.data, output.data))

    async def after_export(self, function: str, input: EncodedValue, output: EncodedValue) -> None:
        self.events.append((function, input.data, output.data))


class InlineRecorder(Recorder):
    inline = True


# ------------------------------------------------------------------ hosts


def _inc_value(ctx: Ctx, v: Value) -> Value:
    assert isinstance(v, S64)
    return S64(v.value + 1)


def _inc_plain(ctx: Ctx, i: s64) -> s64:
    return i + 1


async def _inc_async(ctx: AsyncCtx, v: Value) -> Value:
    assert isinstance(v, S64)
    return S64(v.value + 1)


def _noop(ctx: Ctx, i: int) -> int:
    return i


def host(inc: Callable[..., Any], *, is_async: bool = False) -> Callable[[HostLinkerBuilder], None]:
    def register(b: HostLinkerBuilder) -> None:
        math = b.interface("bench:host/math")
        if is_async:
            math.func_async("inc", inc)
        else:
            math.func_typed("inc", inc)
        b.interface("bench:host/raw").func_raw("noop", _noop, params=("i32",), results=("i32",))
        b.interface("bench:host/text").func_typed("echo", lambda ctx, v: v)  # (unused here)

    return register


class PlainWasmtime:
    """The bench guest under wasmtime-py alone: ``define_func`` host functions and
    ``Func.__call__``; CGRF handled by hand for the one export call per run."""

    def __init__(self, wasm: bytes) -> None:
        engine = wasmtime.Engine()
        self.store = wasmtime.Store(engine)
        linker = wasmtime.Linker(engine)
        i32 = wasmtime.ValType.i32()
        sig = wasmtime.FuncType([i32], [i32])
        linker.define_func("bench:host/raw", "noop", sig, lambda i: i)
        packr = wasmtime.FuncType([i32] * 4, [i32])
        linker.define_func("bench:host/math", "inc", packr, lambda *a: -1)  # unused here
        linker.define_func("bench:host/text", "echo", packr, lambda *a: -1)  # unused here
        module = wasmtime.Module(engine, wasm)
        instance = linker.instantiate(self.store, module)
        exports = instance.exports(self.store)
        memory, alloc, free, raw_calls = (
            exports[n] for n in ("memory", "__pack_alloc", "__pack_free", "raw_calls")
        )
        assert isinstance(memory, wasmtime.Memory)
        assert isinstance(alloc, wasmtime.Func)
        assert isinstance(free, wasmtime.Func)
        assert isinstance(raw_calls, wasmtime.Func)
        self.memory, self.alloc, self.free, self.raw_calls = memory, alloc, free, raw_calls

    def run(self, n: int) -> Value:
        data = encode(S64(n))
        ptr = self.alloc(self.store, len(data))
        self.memory.write(self.store, data, ptr)
        status = self.raw_calls(self.store, ptr, len(data), 16384, 16388)
        assert status == 0
        out_ptr = int.from_bytes(self.memory.read(self.store, 16384, 16388), "little")
        out_len = int.from_bytes(self.memory.read(self.store, 16388, 16392), "little")
        result = decode(bytes(self.memory.read(self.store, out_ptr, out_ptr + out_len)))
        self.free(self.store, ptr, len(data))
        self.free(self.store, out_ptr, out_len)
        return result


# -------------------------------------------------------------- workloads


def workloads(n: int) -> dict[str, Callable[[], Value]]:
    wasm = BENCH_WASM.read_bytes()
    runtime = Runtime(fuel=None)
    module = runtime.load_module(wasm)
    arg = S64(n)
    expected_typed = S64(n * (n + 1) // 2)
    expected_raw = S64(n * (n - 1) // 2)

    typed = module.instantiate(host(_inc_value))
    typed_plain = module.instantiate(host(_inc_plain))
    typed_icpt = module.instantiate(host(_inc_value), interceptor=Recorder())
    typed_inline = module.instantiate(host(_inc_value), interceptor=InlineRecorder())
    async_plain = module.instantiate(host(_inc_value))
    async_icpt = module.instantiate(host(_inc_value), interceptor=Recorder())
    async_inline = module.instantiate(host(_inc_value), interceptor=InlineRecorder())
    async_handler = module.instantiate(host(_inc_async, is_async=True))
    plain = PlainWasmtime(wasm)

    loop = asyncio.new_event_loop()

    def sync(inst: Instance, export: str, want: Value) -> Callable[[], Value]:
        def run() -> Value:
            out = inst.call_with_value(export, arg)
            assert out == want, out
            return out

        return run

    def via_async(inst: Instance) -> Callable[[], Value]:
        def run() -> Value:
            out = loop.run_until_complete(inst.call_with_value_async("calls", arg))
            assert out == expected_typed, out
            return out

        return run

    def raw_wasmtime() -> Value:
        out = plain.run(n)
        assert out == expected_raw, out
        return out

    def recorded(inst: Instance, fn: Callable[[], Value]) -> Callable[[], Value]:
        def run() -> Value:
            icpt = inst.interceptor
            assert isinstance(icpt, Recorder)
            icpt.events.clear()
            return fn()

        return run

    return {
        "typed": sync(typed, "calls", expected_typed),
        "typed-plain": sync(typed_plain, "calls", expected_typed),
        "raw-wasmtime": raw_wasmtime,
        "raw-fast": sync(typed, "raw_calls", expected_raw),
        "typed+icpt": recorded(typed_icpt, sync(typed_icpt, "calls", expected_typed)),
        "typed+inline": recorded(typed_inline, sync(typed_inline, "calls", expected_typed)),
        "async": via_async(async_plain),
        "async+icpt": recorded(async_icpt, via_async(async_icpt)),
        "async+inline": recorded(async_inline, via_async(async_inline)),
        "async-handler": sync(async_handler, "calls", expected_typed),
    }


#: (label, numerator, denominator, what it answers)
RATIOS = [
    ("typed / raw-wasmtime", "typed", "raw-wasmtime",
     "a typed call vs a bare no-op defined with wasmtime-py's Linker.define_func"),
    ("typed / raw-fast", "typed", "raw-fast",
     "a typed call vs a bare no-op through our unchecked fast path"),
    ("raw-wasmtime / raw-fast", "raw-wasmtime", "raw-fast",
     "what the unchecked fast path saves on a bare host call"),
    ("typed-plain / typed", "typed-plain", "typed",
     "plain-Python conversion (s64 -> int -> s64) vs Values"),
    ("typed+icpt / typed", "typed+icpt", "typed",
     "a non-suspending interceptor on the sync path (with / without)"),
    ("typed+inline / typed", "typed+inline", "typed",
     "the same interceptor marked inline, as the Recorder and Replayer are"),
    ("async / typed", "async", "typed",
     "the async path (guest in a worker thread) vs the sync path"),
    ("async+icpt / async", "async+icpt", "async",
     "the interceptor on the async path, hooks handed to the event loop"),
    ("async+inline / async", "async+inline", "async",
     "the interceptor on the async path, marked inline (stays on the guest thread)"),
    ("async-handler / typed", "async-handler", "typed",
     "an async def handler on the sync path vs a plain def"),
]  # fmt: skip


def measure(n: int, rounds: int) -> dict[str, list[float]]:
    runs = workloads(n)
    for fn in runs.values():  # warm up: compile caches, first-call costs
        fn()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate the order
        for name in order:
            t0 = time.perf_counter()
            runs[name]()
            samples[name].append((time.perf_counter() - t0) / n)
    return samples


def summarize(samples: dict[str, list[float]]) -> dict[str, Any]:
    ratios = {}
    for label, num, den, what in RATIOS:
        per_round = [a / b for a, b in zip(samples[num], samples[den], strict=True)]
        ratios[label] = {
            "median": statistics.median(per_round),
            "min": min(per_round),
            "max": max(per_round),
            "numerator_us": statistics.median(samples[num]) * 1e6,
            "denominator_us": statistics.median(samples[den]) * 1e6,
            "what": what,
        }
    return ratios


def run(n: int = 2000, rounds: int = 7) -> dict[str, Any]:
    """Every workload ``rounds`` times (rotated order); the ratios of :data:`RATIOS`."""
    samples = measure(n, rounds)
    return {
        "n": n,
        "rounds": rounds,
        "ratios": summarize(samples),
        "us_per_call": {k: statistics.median(v) * 1e6 for k, v in samples.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=500, 3 rounds")
    parser.add_argument("-n", type=int, default=None, help="host calls per run")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if not BENCH_WASM.exists():
        print(f"{BENCH_WASM} is not built (python examples/guests/build.py bench)", file=sys.stderr)
        return 2
    n = args.n or (500 if args.quick else 2000)
    rounds = args.rounds or (3 if args.quick else 7)
    result = run(n, rounds)
    ratios = result["ratios"]
    if args.json:
        print(json.dumps({"n": n, "rounds": rounds, "ratios": ratios}, indent=2))
        return 0
    print(f"host calls: N={n} per run, {rounds} interleaved rounds; ratio = median (min-max)")
    print()
    width = max(len(label) for label in ratios)
    for label, r in ratios.items():
        print(
            f"  {label:<{width}}  {r['median']:6.2f}x  ({r['min']:.2f}-{r['max']:.2f})"
            f"   [{r['numerator_us']:7.2f} vs {r['denominator_us']:7.2f} µs/call]"
        )
        print(f"  {'':<{width}}  {r['what']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
