"""The native call path's goals, measured side by side (issue 13).

Workloads on the ``bench`` example guest, each round running every one back to back:

* ``old-live``   ``calls(n)``, typed imports through the Python path (``Runtime(native=False)``)
* ``live``       the same through the C trampoline (the default)
* ``record``     that run recorded into a trace store file (the final flush included)
* ``replay``     that trace replayed by ``replay_source`` (module compiled first, as for live)
* ``work-*``     ``work_calls(n, k)``: the same with about 5 µs of guest work before each
                 call (k calibrated at the start: ``spin(k)`` takes about 5 µs)
* ``text-*``     ``text_calls(n, 1024)``: a 1 KiB string each way, about 2.2 KB per event
* ``play`` / ``library``   ``packr-replay play DB`` and ``api.replay(DB)``, each in a
                 process of its own, on the same trace

and, once, a long run (``big``): a ``calls(N)`` trace of N events recorded, played,
verified and diffed (against a second recording) by the CLI, each in a child process
whose wall time and peak RSS are reported, and ``info`` timed on it.

Run::

    python bench/bench_native.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from packr_replay.abi import S64, Tuple, Value
from packr_replay.replay import Recorder, replay_source
from packr_replay.runtime import Module, Runtime
from packr_replay.runtime.demo import DemoHost, example_guest
from packr_replay.storage import TraceStore

FUEL = 10**13
TEXT_SIZE = 1024
WORK_US = 5.0


def _module(native: bool) -> Module:
    return Runtime(fuel=FUEL, native=native).load_module(example_guest("bench"))


def calibrate_spin(target_us: float = WORK_US) -> int:
    """k such that the guest's spin(k) takes about ``target_us`` (median of a few runs)."""
    inst = _module(True).instantiate(DemoHost())
    k = 100_000
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        inst.call_with_value("spin", S64(k))
        runs.append(time.perf_counter() - t)
    per_step = statistics.median(runs) / k
    return max(1, round(target_us * 1e-6 / per_step))


def run_live(module: Module, export: str, arg: Value) -> float:
    inst = module.instantiate(DemoHost())
    t = time.perf_counter()
    inst.call_with_value(export, arg)
    return time.perf_counter() - t


def run_record(module: Module, export: str, arg: Value, db: Path, label: str = "t") -> float:
    with TraceStore(db, create=True) as store:
        sha = store.add_module(module.wasm, "bench")
        writer = store.begin_trace(sha, label=label, meta={"fuel": FUEL})
        inst = module.instantiate(DemoHost(), interceptor=Recorder(writer))
        t = time.perf_counter()
        inst.call_with_value(export, arg)
        writer.finish()
        return time.perf_counter() - t


def run_replay(module: Module, db: Path, label: str = "t") -> float:
    with TraceStore(db, readonly=True) as store:
        source = store.trace(label)
        t = time.perf_counter()
        report = replay_source(source, module)
        elapsed = time.perf_counter() - t
    assert report.reproduced, report.summary()
    return elapsed


def _child(argv: list[str]) -> tuple[float, float]:
    """Run a command; its wall time and peak RSS in MB (from the kernel's rusage)."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def _cli() -> list[str]:
    exe = shutil.which("packr-replay")
    return [exe] if exe else [sys.executable, "-m", "packr_replay"]


def _library_replay(db: Path) -> list[str]:
    code = f"from packr_replay import api; assert api.replay({str(db)!r}).reproduced"
    return [sys.executable, "-c", code]


def _stats(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


#: figure key -> (numerator, denominator)
RATIOS = {
    "record_vs_live": ("record", "live"),
    "work_record_vs_live": ("work-record", "work-live"),
    "replay_vs_live": ("replay", "live"),
    "play_vs_library": ("play", "library"),
    "text_record_vs_live": ("text-record", "text-live"),
    "text_replay_vs_live": ("text-replay", "text-live"),
    "live_vs_old_live": ("live", "old-live"),
    "old_record_vs_old_live": ("old-record", "old-live"),
}


def ratios(n: int, rounds: int, work_n: int, text_n: int, play_n: int) -> dict[str, Any]:
    """Every workload once per round, back to back; each ratio per round. ``play`` and
    ``library`` replay one calls(play_n) trace (recorded once, up front)."""
    new, old = _module(True), _module(False)
    k = calibrate_spin()
    spin = new.instantiate(DemoHost())
    t = time.perf_counter()
    spin.call_with_value("spin", S64(k * 100))
    work_us = (time.perf_counter() - t) / 100 * 1e6
    calls, work, text = S64(n), Tuple(S64(work_n), S64(k)), Tuple(S64(text_n), S64(TEXT_SIZE))
    samples: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        samples.setdefault(name, []).append(seconds)

    with tempfile.TemporaryDirectory() as tmp:
        played = Path(tmp) / "play.db"
        run_record(new, "calls", S64(play_n), played)
        for r in range(rounds):
            d = Path(tmp) / f"r{r}"
            d.mkdir()
            add("old-live", run_live(old, "calls", calls))
            add("live", run_live(new, "calls", calls))
            add("record", run_record(new, "calls", calls, d / "calls.db"))
            add("replay", run_replay(new, d / "calls.db"))
            add("old-record", run_record(old, "calls", calls, d / "old.db"))
            add("work-live", run_live(new, "work_calls", work))
            add("work-record", run_record(new, "work_calls", work, d / "work.db"))
            add("text-live", run_live(new, "text_calls", text))
            add("text-record", run_record(new, "text_calls", text, d / "text.db"))
            add("text-replay", run_replay(new, d / "text.db"))
            add("play", _child([*_cli(), "play", str(played)])[0])
            add("library", _child(_library_replay(played))[0])
            shutil.rmtree(d)
    out: dict[str, Any] = {
        "calls": n,
        "work_calls": work_n,
        "text_calls": text_n,
        "text_size": TEXT_SIZE,
        "spin_k": k,
        "work_us": work_us,
        "play_calls": play_n,
        "play_s": statistics.median(samples["play"]),
        "library_s": statistics.median(samples["library"]),
        "rounds": rounds,
        "seconds": samples,
    }
    for key, (num, den) in RATIOS.items():
        out[key] = _stats([a / b for a, b in zip(samples[num], samples[den], strict=True)])
    per_call = {"live": n, "old-live": n, "record": n, "replay": n, "old-record": n,
                "work-live": work_n, "work-record": work_n, "text-live": text_n,
                "text-record": text_n, "text-replay": text_n}  # fmt: skip
    out["us_per_call"] = {
        name: statistics.median(samples[name]) / count * 1e6 for name, count in per_call.items()
    }
    return out


_RECORD = f"""
import sys
from packr_replay.abi import S64
from packr_replay.replay import Recorder
from packr_replay.runtime import Runtime
from packr_replay.runtime.demo import DemoHost, example_guest
from packr_replay.storage import TraceStore
db, label, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
module = Runtime(fuel={FUEL}).load_module(example_guest("bench"))
with TraceStore(db, create=True) as store:
    writer = store.begin_trace(store.add_module(module.wasm, "bench"), label=label,
                               meta={{"fuel": {FUEL}}})
    module.instantiate(DemoHost(), interceptor=Recorder(writer)).call_with_value("calls", S64(n))
    writer.finish()
"""


def big(events: int) -> dict[str, Any]:
    """A trace of ``events`` events (``calls(events - 2)``) through the CLI's commands,
    each in a child process: seconds and peak RSS."""
    n = max(1, events - 2)
    cli = _cli()
    out: dict[str, Any] = {"events": n + 2}
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "big.db")
        record = [sys.executable, "-c", _RECORD, db]
        out["record"] = _child([*record, "a", str(n)])
        out["play"] = _child([*cli, "play", f"{db}#a"])
        out["verify"] = _child([*cli, "verify", f"{db}#a"])
        _child([*record, "b", str(n)])
        out["diff"] = _child([*cli, "diff", f"{db}#a", f"{db}#b"])
        out["info"] = _child([*cli, "info", f"{db}#a"])
        out["file_bytes"] = Path(db).stat().st_size
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--big", type=int, default=0, help="also the long run, of this many events")
    args = parser.parse_args()
    n, rounds = (20_000, 3) if args.quick else (100_000, 5)
    result = ratios(n, rounds, n // 10, n // 10, n * 10)
    for key in RATIOS:
        s = result[key]
        print(f"{key:24} {s['median']:.2f}x ({s['min']:.2f}-{s['max']:.2f})")
    print("µs/call:", json.dumps({k: round(v, 3) for k, v in result["us_per_call"].items()}))
    if args.big:
        print(json.dumps(big(args.big), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
