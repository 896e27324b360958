"""Record and replay overhead, trace diff cost, and per-call scaling — side by side.

Workloads, on the ``bench`` example guest (``calls(n)`` makes n typed import calls to
``bench:host/math.inc``):

* ``live``    the run with the demo host, no interceptor;
* ``record``  the same run with a ``Recorder`` writing into a trace store file;
* ``replay``  the recorded trace replayed (no host, imports served from the trace);
* ``live``/``record`` per export: the same n imports made one per export call
  (``calls(1)`` n times), so record overhead is compared across the two shapes.

Each round runs all three back to back, so each ratio compares runs made under the same
machine conditions; the report gives the median and spread over rounds. ``--diff`` also
builds two N-event traces and times ``diff_traces`` with its peak RSS (in a child
process, so the parent's memory does not count). ``--scaling`` reports per-call cost at
1k, 10k, 100k (and 1M with ``--full``) calls.

Run::

    python bench/bench_record.py                 # N=100k calls, 5 rounds
    python bench/bench_record.py --quick         # N=20k, 3 rounds
    python bench/bench_record.py --diff --scaling --full
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from packr_replay import api
from packr_replay.abi import S64
from packr_replay.replay import Recorder, replay_source
from packr_replay.runtime import Runtime
from packr_replay.runtime.demo import DemoHost, example_guest
from packr_replay.storage import FlushPolicy, TraceStore

FUEL = 10**13


def run_live(runtime: Runtime, n: int) -> float:
    module = runtime.load_module(example_guest("bench"))
    inst = module.instantiate(DemoHost())
    t = time.perf_counter()
    inst.call_with_value("calls", S64(n))
    return time.perf_counter() - t


def run_record(runtime: Runtime, n: int, db: Path, label: str = "bench") -> float:
    module = runtime.load_module(example_guest("bench"))
    with TraceStore(db, create=True) as store:
        sha = store.add_module(module.wasm, "bench")
        writer = store.begin_trace(sha, label=label, meta={"fuel": FUEL})
        inst = module.instantiate(DemoHost(), interceptor=Recorder(writer))
        t = time.perf_counter()
        inst.call_with_value("calls", S64(n))
        writer.finish()  # the last flush is part of recording
        return time.perf_counter() - t


def run_live_per_export(runtime: Runtime, n: int) -> float:
    """``calls(1)`` n times: one import per export call."""
    module = runtime.load_module(example_guest("bench"))
    inst = module.instantiate(DemoHost())
    one = S64(1)
    t = time.perf_counter()
    for _ in range(n):
        inst.call_with_value("calls", one)
    return time.perf_counter() - t


def run_record_per_export(runtime: Runtime, n: int, db: Path, label: str = "per-export") -> float:
    module = runtime.load_module(example_guest("bench"))
    with TraceStore(db, create=True) as store:
        sha = store.add_module(module.wasm, "bench")
        writer = store.begin_trace(sha, label=label, meta={"fuel": FUEL})
        inst = module.instantiate(DemoHost(), interceptor=Recorder(writer))
        one = S64(1)
        t = time.perf_counter()
        for _ in range(n):
            inst.call_with_value("calls", one)
        writer.finish()
        return time.perf_counter() - t


def run_replay(db: Path, label: str = "bench") -> tuple[float, bool]:
    """``api.replay`` end to end: open the file, compile the stored module, replay."""
    t = time.perf_counter()
    report = api.replay(db, label)
    return time.perf_counter() - t, report.reproduced


def run_replay_calls(runtime: Runtime, db: Path, label: str = "bench") -> tuple[float, bool]:
    """The replay itself, timed like ``run_live``: the module is compiled first, then
    ``replay_source`` instantiates it and replays every call from the open file."""
    with TraceStore(db, readonly=True) as store:
        source = store.trace(label)
        assert source.info.module_sha256 is not None
        module = runtime.load_module(store.module_bytes(source.info.module_sha256))
        t = time.perf_counter()
        report = replay_source(source, module)
        return time.perf_counter() - t, report.reproduced


def run_diff(db: Path, a: str, b: str) -> tuple[float, bool]:
    t = time.perf_counter()
    d = api.diff(f"{db}#{a}", f"{db}#{b}")
    return time.perf_counter() - t, d.identical


def ratios(n: int, rounds: int) -> dict[str, Any]:
    """record/live and replay/live, each round's runs back to back: live, record, the
    replay itself (module compiled first, as for live) and ``api.replay`` end to end."""
    runtime = Runtime(fuel=FUEL)
    live, rec, rep, e2e, live_pe, rec_pe = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            db = Path(tmp) / f"r{r}.db"
            live.append(run_live(runtime, n))
            rec.append(run_record(runtime, n, db))
            t, ok = run_replay_calls(runtime, db)
            assert ok, "replay did not reproduce"
            rep.append(t)
            t, ok = run_replay(db)
            assert ok, "api.replay did not reproduce"
            e2e.append(t)
            db.unlink()
            # The same n imports, one per export call (calls(1) n times).
            live_pe.append(run_live_per_export(runtime, n))
            rec_pe.append(run_record_per_export(runtime, n, db))
            db.unlink()
    in_one = [b / a for a, b in zip(live, rec, strict=True)]
    per_export = [b / a for a, b in zip(live_pe, rec_pe, strict=True)]
    return {
        "calls": n,
        "rounds": rounds,
        "record_vs_live": _stats(in_one),
        "per_export_record_vs_live": _stats(per_export),
        "per_export_vs_in_one": _stats([b / a for a, b in zip(in_one, per_export, strict=True)]),
        "per_export_live_us_per_call": statistics.median(live_pe) / n * 1e6,
        "per_export_record_us_per_call": statistics.median(rec_pe) / n * 1e6,
        "replay_vs_live": _stats([b / a for a, b in zip(live, rep, strict=True)]),
        "api_replay_vs_live": _stats([b / a for a, b in zip(live, e2e, strict=True)]),
        "live_us_per_call": statistics.median(live) / n * 1e6,
        "record_us_per_call": statistics.median(rec) / n * 1e6,
        "replay_us_per_call": statistics.median(rep) / n * 1e6,
        "api_replay_us_per_call": statistics.median(e2e) / n * 1e6,
        "seconds": {"live": live, "record": rec, "replay": rep, "api.replay": e2e,
                    "live per export": live_pe, "record per export": rec_pe},
    }


class _DropSink:
    """An EventSink that drops every event: the Recorder's own cost, no store."""

    def extend(self, rows: list[tuple[Any, ...]]) -> int:
        return 0

    def flush(self) -> None:
        pass


def run_record_parts(runtime: Runtime, n: int, db: Path, part: str) -> float:
    """One recorded run with part of the recording stack: ``drop`` (Recorder, events
    dropped), ``inline`` (Recorder + store, commits on the guest's thread) or
    ``background`` (the default: commits on the writer's thread)."""
    module = runtime.load_module(example_guest("bench"))
    if part == "drop":
        inst = module.instantiate(DemoHost(), interceptor=Recorder(_DropSink()))  # type: ignore[arg-type]
        t = time.perf_counter()
        inst.call_with_value("calls", S64(n))
        return time.perf_counter() - t
    with TraceStore(db, create=True) as store:
        sha = store.add_module(module.wasm, "bench")
        writer = store.begin_trace(sha, label=part, flush=FlushPolicy(background=part == "background"))
        inst = module.instantiate(DemoHost(), interceptor=Recorder(writer))
        t = time.perf_counter()
        inst.call_with_value("calls", S64(n))
        writer.finish()
        return time.perf_counter() - t


def record_parts(n: int, rounds: int) -> dict[str, Any]:
    """Where record overhead goes: each part of the stack ÷ the live run, per round."""
    runtime = Runtime(fuel=FUEL)
    parts = ("drop", "inline", "background")
    live: list[float] = []
    runs: dict[str, list[float]] = {p: [] for p in parts}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            live.append(run_live(runtime, n))
            for part in parts:
                db = Path(tmp) / f"{part}-{r}.db"
                runs[part].append(run_record_parts(runtime, n, db, part))
                for f in Path(tmp).glob(f"{db.name}*"):
                    f.unlink()
    return {
        "calls": n,
        "rounds": rounds,
        "live_us_per_call": statistics.median(live) / n * 1e6,
        "parts": {
            part: {
                "vs_live": _stats([b / a for a, b in zip(live, xs, strict=True)]),
                "us_per_call": statistics.median(xs) / n * 1e6,
            }
            for part, xs in runs.items()
        },
    }


def _stats(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


# ------------------------------------------------------------------- diff


def _make_traces(path: Path, n: int) -> None:
    runtime = Runtime(fuel=FUEL)
    for label in ("a", "b"):
        run_record(runtime, n, path, label)


def peak_rss_mb() -> float:
    """This process's peak resident set: VmHWM where Linux has it (``ru_maxrss`` is
    not usable in a child: Linux carries the parent's peak across fork and exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _diff_child(path: str) -> None:
    elapsed, identical = run_diff(Path(path), "a", "b")
    rss = peak_rss_mb()
    with TraceStore(path, readonly=True) as store:
        events = len(store.trace("a"))
    print(json.dumps({"seconds": elapsed, "peak_rss_mb": rss, "identical": identical,
                      "events": events}))


def diff_cost(events: int, repeats: int = 1) -> dict[str, Any]:
    """Two traces of ``events`` events each (``calls(events - 2)``: an export, the
    imports, a return), then ``diff_traces`` timed ``repeats`` times, each in a fresh
    child process whose peak RSS (``ru_maxrss``) is the memory figure."""
    n = max(1, events - 2)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "diff.db"
        t = time.perf_counter()
        _make_traces(path, n)
        build = time.perf_counter() - t
        runs = []
        for _ in range(repeats):
            out = subprocess.run(
                [sys.executable, __file__, "--diff-child", str(path)],
                check=True, capture_output=True, text=True,
            ).stdout
            runs.append(json.loads(out))
        size = path.stat().st_size
    base = subprocess.run(
        [sys.executable, __file__, "--baseline-child"], check=True, capture_output=True,
        text=True,
    ).stdout
    assert all(r["identical"] for r in runs), "two recordings of the same run differ"
    seconds = [r["seconds"] for r in runs]
    rss = [r["peak_rss_mb"] for r in runs]
    return {
        "events_per_trace": runs[0]["events"],
        "repeats": repeats,
        "seconds": _stats(seconds),
        "peak_rss_mb": _stats(rss),
        "baseline_rss_mb": float(base),
        "build_seconds": build,
        "file_bytes": size,
        "us_per_event": statistics.median(seconds) / runs[0]["events"] * 1e6,
    }


# ----------------------------------------------------------------- scaling


def scaling(sizes: list[int], rounds: int = 1) -> dict[str, Any]:
    """Per-call cost of live, record, replay and diff at each size in ``sizes`` (calls).

    Every round runs every size (so a size's samples are spread over the run, like the
    others'): live, two recordings (both are record samples), a replay of the first and
    a diff of the two. Per-call cost is the run's time over its calls (diff: over the
    events of one trace).
    """
    runtime = Runtime(fuel=FUEL)
    samples: dict[int, dict[str, list[float]]] = {
        n: {"live": [], "record": [], "replay": [], "diff": []} for n in sizes
    }
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for n in sizes:
                db = Path(tmp) / f"s{n}-r{r}.db"
                s = samples[n]
                s["live"].append(run_live(runtime, n) / n * 1e6)
                s["record"].append(run_record(runtime, n, db, "a") / n * 1e6)
                s["record"].append(run_record(runtime, n, db, "b") / n * 1e6)
                t, ok = run_replay_calls(runtime, db, "a")
                assert ok, "replay did not reproduce"
                s["replay"].append(t / n * 1e6)
                t, identical = run_diff(db, "a", "b")
                assert identical
                s["diff"].append(t / (n + 2) * 1e6)
                for f in Path(tmp).glob(f"{db.name}*"):
                    f.unlink()
    rows = []
    for n in sizes:
        row: dict[str, Any] = {"calls": n}
        for key, xs in samples[n].items():
            row[f"{key}_us_per_call"] = statistics.median(xs)
            row[f"{key}_samples"] = xs
        rows.append(row)
    return {"sizes": sizes, "rounds": rounds, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--diff", action="store_true", help="also time diff_traces on two large traces")
    parser.add_argument("--scaling", action="store_true", help="per-call cost at 1k..100k calls")
    parser.add_argument("--full", action="store_true", help="1M-call sizes for --diff/--scaling")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--diff-child", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.diff_child:
        _diff_child(args.diff_child)
        return 0
    if args.baseline_child:  # the same imports as a diff child, no diff
        print(peak_rss_mb())
        return 0
    n, rounds = (20_000, 3) if args.quick else (100_000, 5)
    results: dict[str, Any] = {"overhead": ratios(n, rounds)}
    o = results["overhead"]
    print(f"calls per run: {n}, rounds: {rounds}")
    for key, label in (("record_vs_live", "record / live"), ("replay_vs_live", "replay / live"),
                       ("api_replay_vs_live", "api.replay / live")):  # fmt: skip
        s = o[key]
        print(f"  {label:15} {s['median']:.3f}x  (spread {s['min']:.3f}-{s['max']:.3f})")
    print(f"  µs per call: live {o['live_us_per_call']:.1f}, record {o['record_us_per_call']:.1f}, "
          f"replay {o['replay_us_per_call']:.1f}")
    if args.scaling:
        sizes = [1_000, 10_000, 100_000] + ([1_000_000] if args.full else [])
        results["scaling"] = scaling(sizes)
        print("per-call cost by run length (µs per call: live / record / replay / diff)")
        for row in results["scaling"]["rows"]:
            print(f"  {row['calls']:>9}: {row['live_us_per_call']:.1f} / "
                  f"{row['record_us_per_call']:.1f} / {row['replay_us_per_call']:.1f} / "
                  f"{row['diff_us_per_call']:.1f}")
    if args.diff:
        size = 1_000_000 if args.full else 100_000
        d = diff_cost(size)
        results["diff"] = d
        print(f"diff_traces on two traces of {d['events_per_trace']} events: "
              f"{d['seconds']['median']:.2f} s, peak RSS {d['peak_rss_mb']['max']:.0f} MB "
              f"(baseline process {d['baseline_rss_mb']:.0f} MB)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
