"""Run every benchmark side by side and write BENCHMARKS.md plus a JSON file.

Usage::

    python -m bench                     # default sizes (100k calls; diff on 100k events)
    python -m bench --full              # the goals' sizes: 1M-event diff, scaling to 1M
    python -m bench --quick             # small sizes, few rounds: a smoke test, not a measurement
    python -m bench --only codec --only store
    python -m bench --out DIR           # write DIR/BENCHMARKS.md and DIR/results.json

Each benchmark runs in a child process of its own (``python -m bench --child NAME``), one
after the other, so one benchmark's heap, caches and threads never weigh on the next;
the diff benchmark starts a further child per repeat to measure its peak RSS alone.
A complete run (every benchmark, not ``--quick``) writes ``BENCHMARKS.md`` at the
repository root and ``bench/results.json``; a partial or quick run writes to ``--out``
(default: a fresh temporary directory) so it never replaces the committed figures.

Every figure is a ratio of two things measured in the same run (or a rate/size with
its own goal), given as the median over repeated rounds with the spread (min-max), and
compared with its goal: ``met`` or ``missed`` by the median; ``(spread crosses)`` when
some rounds fell on the other side.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ profiles


@dataclass(frozen=True)
class Profile:
    """Sizes and round counts for one kind of run."""

    name: str
    record_calls: int
    record_rounds: int
    host_calls: int
    host_rounds: int
    store_events: int
    store_repeat: int
    diff_events: int
    diff_repeats: int
    codec_rounds: int
    codec_tree: int
    scaling_sizes: tuple[int, ...]
    scaling_rounds: int
    index_calls: int
    index_rounds: int
    startup_rounds: int
    native_calls: int  # calls(n) for the native path's ratios (work: a quarter, text: a tenth)
    native_rounds: int
    play_calls: int  # the trace `play` and the library replay it (a process each)
    big_events: int  # the long run's trace: record, play, verify, diff, info
    corpus_traces: int  # the corpus check: traces of corpus_events events each
    corpus_events: int
    corpus_rounds: int


PROFILES = {
    "quick": Profile(
        "quick", record_calls=5_000, record_rounds=3, host_calls=300, host_rounds=3,
        store_events=10_000, store_repeat=2, diff_events=10_000, diff_repeats=2,
        codec_rounds=1, codec_tree=5_000, scaling_sizes=(1_000, 5_000), scaling_rounds=1,
        index_calls=5_000, index_rounds=2, startup_rounds=3,
        native_calls=10_000, native_rounds=3, play_calls=20_000, big_events=50_000,
        corpus_traces=100, corpus_events=200, corpus_rounds=1,
    ),
    "default": Profile(
        "default", record_calls=100_000, record_rounds=5, host_calls=2_000, host_rounds=7,
        store_events=200_000, store_repeat=5, diff_events=100_000, diff_repeats=3,
        codec_rounds=7, codec_tree=100_000, scaling_sizes=(1_000, 10_000, 100_000),
        scaling_rounds=3, index_calls=50_000, index_rounds=5, startup_rounds=21,
        native_calls=100_000, native_rounds=5, play_calls=1_000_000, big_events=1_000_000,
        corpus_traces=1_000, corpus_events=1_000, corpus_rounds=3,
    ),
    "full": Profile(
        "full", record_calls=100_000, record_rounds=7, host_calls=2_000, host_rounds=9,
        store_events=200_000, store_repeat=7, diff_events=1_000_000, diff_repeats=3,
        codec_rounds=7, codec_tree=100_000, scaling_sizes=(1_000, 10_000, 100_000, 1_000_000),
        scaling_rounds=2, index_calls=50_000, index_rounds=5, startup_rounds=31,
        native_calls=100_000, native_rounds=7, play_calls=1_000_000, big_events=10_000_000,
        corpus_traces=1_000, corpus_events=1_000, corpus_rounds=5,
    ),
}  # fmt: skip


# ---------------------------------------------------------- the benchmarks


def _child_codec(p: Profile) -> dict[str, Any]:
    from bench import bench_codec

    return bench_codec.run(p.codec_rounds, tree_nodes=p.codec_tree)


def _child_host_call(p: Profile) -> dict[str, Any]:
    from bench import bench_host_call

    return bench_host_call.run(p.host_calls, p.host_rounds)


def _child_store(p: Profile) -> dict[str, Any]:
    from bench import bench_store

    return bench_store.run(p.store_events, 32, p.store_repeat)


def _child_record(p: Profile) -> dict[str, Any]:
    from bench import bench_record

    return bench_record.ratios(p.record_calls, p.record_rounds)


def _child_diff(p: Profile) -> dict[str, Any]:
    from bench import bench_record

    return bench_record.diff_cost(p.diff_events, p.diff_repeats)


def _child_scaling(p: Profile) -> dict[str, Any]:
    from bench import bench_record

    return bench_record.scaling(list(p.scaling_sizes), p.scaling_rounds)


def _child_record_parts(p: Profile) -> dict[str, Any]:
    from bench import bench_record

    return bench_record.record_parts(p.record_calls, p.record_rounds)


def _child_index(p: Profile) -> dict[str, Any]:
    from bench import bench_index

    return bench_index.run(p.index_calls, p.index_rounds)


def _child_native(p: Profile) -> dict[str, Any]:
    from bench import bench_native

    n = p.native_calls
    return bench_native.ratios(n, p.native_rounds, n // 4, n // 10, p.play_calls)


def _child_big(p: Profile) -> dict[str, Any]:
    from bench import bench_native

    return bench_native.big(p.big_events)


def _child_startup(p: Profile) -> dict[str, Any]:
    from bench import bench_startup

    return bench_startup.run(p.startup_rounds)


def _child_corpus(p: Profile) -> dict[str, Any]:
    from bench import bench_corpus

    return bench_corpus.run(p.corpus_traces, p.corpus_events, p.corpus_rounds)


#: name -> (what it measures, the function a child process runs); in running order.
BENCHMARKS: dict[str, tuple[str, Callable[[Profile], dict[str, Any]]]] = {
    "codec": ("CGRF codec vs msgpack on bench_codec.py's shapes", _child_codec),
    "host_call": ("typed host call vs bare wasmtime-py host call", _child_host_call),
    "store": ("trace store write rate and size", _child_store),
    "record": ("record and replay vs live, bench.wasm calls(n)", _child_record),
    "record_parts": ("where record overhead goes: the stack in parts vs live", _child_record_parts),
    "index": ("what indexing at record time would add (informational)", _child_index),
    "scaling": ("record, replay and diff cost per call by run length", _child_scaling),
    "diff": ("diff_traces on two large traces: time and peak RSS", _child_diff),
    "startup": ("packr-replay --version / --help vs python -c pass", _child_startup),
    "native": ("the native call path: record, replay, play and live against live", _child_native),
    "big": ("one long trace through record, play, verify, diff and info", _child_big),
    "corpus": ("packr-replay check over a corpus: --jobs 1, --jobs 2, a Dask LocalCluster",
               _child_corpus),
}


# ------------------------------------------------------------------- figures


@dataclass
class Goal:
    """``value op target``: ``op`` is ``<=`` or ``>=``."""

    op: str
    target: float
    text: str

    def met(self, value: float) -> bool:
        return value <= self.target if self.op == "<=" else value >= self.target


@dataclass
class Figure:
    """One measured figure: median and spread over rounds, checked against its goal."""

    number: str
    title: str
    what: str
    unit: str
    median: float | None
    low: float | None = None
    high: float | None = None
    goal: Goal | None = None
    note: str = ""
    verdict: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if self.median is None:
            self.verdict = "error"
        elif self.goal is None:
            self.verdict = "info"
        else:
            ok = self.goal.met(self.median)
            self.verdict = "met" if ok else "missed"
            ends = [x for x in (self.low, self.high) if x is not None]
            if any(self.goal.met(x) != ok for x in ends):
                self.verdict += " (spread crosses)"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("events/s", "traces/s"):
        return f"{value:,.0f}/s"
    if unit == "s":
        return f"{value:.2f} s" if value >= 1 else f"{value:.3f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "B/event":
        return f"{value:.1f} B"
    return f"{value:g} {unit}"


def _spread(fig: Figure) -> str:
    if fig.low is None or fig.high is None:
        return "-"
    return f"{fmt(fig.low, fig.unit)} – {fmt(fig.high, fig.unit)}"


def _stats(xs: list[float]) -> tuple[float, float, float]:
    return statistics.median(xs), min(xs), max(xs)


def _size(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def figures_record(r: dict[str, Any], p: Profile) -> list[Figure]:
    n = _size(r["calls"])
    rec, rep, e2e = r["record_vs_live"], r["replay_vs_live"], r["api_replay_vs_live"]
    pe, split = r["per_export_record_vs_live"], r["per_export_vs_in_one"]
    return [
        Figure("1", "record overhead",
               f"bench.wasm calls({n}) recorded by a Recorder into a trace store file ÷ the "
               f"same run with no interceptor ({r['rounds']} rounds)",
               "x", rec["median"], rec["min"], rec["max"], Goal("<=", 1.05, "≤ 1.05x"),
               note=f"{r['live_us_per_call']:.2f} µs/call live, "
                    f"{r['record_us_per_call']:.2f} µs/call recording"),
        Figure("2", "replay vs live",
               f"replay_source of that trace (instantiate, replay every call from the open "
               f"file; module compiled first, as for the live run) ÷ the live run "
               f"({r['rounds']} rounds)",
               "x", rep["median"], rep["min"], rep["max"], Goal("<=", 0.67, "≤ 0.67x"),
               note=f"{r['replay_us_per_call']:.2f} µs/call replaying"),
        Figure("1d", "record overhead, one import per export",
               f"calls(1) called {n} times (the same {n} imports, one per export call) "
               f"recorded ÷ the same calls live ({r['rounds']} rounds)",
               "x", pe["median"], pe["min"], pe["max"],
               note=f"{r['per_export_live_us_per_call']:.2f} µs/call live, "
                    f"{r['per_export_record_us_per_call']:.2f} µs/call recording"),
        Figure("1e", "record overhead: one import per export ÷ all in one export",
               "figure 1d ÷ figure 1, per round: what splitting the calls across exports "
               "adds to recording (commits by size and time, not per export call)",
               "x", split["median"], split["min"], split["max"], Goal("<=", 1.2, "≤ 1.2x")),
        Figure("2b", "api.replay end to end vs live",
               "api.replay (open the file, compile the stored module, replay) ÷ the live run",
               "x", e2e["median"], e2e["min"], e2e["max"], None,
               note=f"{r['api_replay_us_per_call']:.2f} µs/call"),
    ]  # fmt: skip


def figures_host_call(r: dict[str, Any], p: Profile) -> list[Figure]:
    ratios = r["ratios"]
    main = ratios["typed / raw-wasmtime"]
    fast = ratios["typed / raw-fast"]
    return [
        Figure("3", "typed host call",
               f"a typed import (CGRF in and out) ÷ a bare no-op defined with wasmtime-py's "
               f"Linker.define_func, {r['n']} calls per run, {r['rounds']} rounds",
               "x", main["median"], main["min"], main["max"], Goal("<=", 2.0, "≤ 2x"),
               note=f"{main['numerator_us']:.2f} vs {main['denominator_us']:.2f} µs/call"),
        Figure("3b", "typed host call vs our raw fast path",
               "the same typed import ÷ a bare no-op through packr-replay's func_raw",
               "x", fast["median"], fast["min"], fast["max"],
               note=f"{fast['numerator_us']:.2f} vs {fast['denominator_us']:.2f} µs/call"),
    ]  # fmt: skip


def figures_store(r: dict[str, Any], p: Profile) -> list[Figure]:
    w = r["variants"]["writer"]
    med, lo, hi = _stats(w["rates"])
    vs = w["vs_baseline"]
    return [
        Figure("4", "trace store write rate",
               f"TraceWriter.extend in the Recorder's batches of 512 + finish, "
               f"{_size(r['events'])} events of "
               f"{r['payload']}+{r['payload']} payload bytes, default FlushPolicy "
               f"({r['repeat']} rounds)",
               "events/s", med, lo, hi, Goal(">=", 300_000, "≥ 300,000/s"),
               note=f"{vs['median']:.2f}x a plain executemany of the same rows "
                    f"({vs['min']:.2f}–{vs['max']:.2f})"),
        Figure("4b", "trace store size",
               "file bytes per event after the writer closes, minus the payload "
               "(input + output bytes)",
               "B/event", w["overhead_bytes_per_event"],
               note=f"{w['bytes_per_event']:.1f} B/event in all, "
                    f"{2 * r['payload']} B of payload"),
    ]  # fmt: skip


def figures_diff(r: dict[str, Any], p: Profile) -> list[Figure]:
    events = r["events_per_trace"]
    sec, rss = r["seconds"], r["peak_rss_mb"]
    scale = events / 1_000_000
    time_goal = 5.0 * scale
    scaled = abs(scale - 1) > 0.01
    note = f"{r['us_per_event']:.2f} µs/event; traces built in {r['build_seconds']:.1f} s"
    if scaled:
        note += f"; goal scaled from 5 s at 1M events to {events:,} events"
    return [
        Figure("5", "diff_traces time",
               f"diff_traces on two {_size(events)}-event traces (identical runs of calls(n)) "
               f"in a child process ({r['repeats']} runs)",
               "s", sec["median"], sec["min"], sec["max"],
               Goal("<=", time_goal, f"≤ {fmt(time_goal, 's')}" if scaled else "≤ 5 s"),
               note=note),
        Figure("5b", "diff_traces peak RSS",
               "the diff child's peak resident set (ru_maxrss, interpreter and imports included)",
               "MB", rss["median"], rss["min"], rss["max"], Goal("<=", 200, "≤ 200 MB"),
               note=f"a child that only imports packr_replay.api peaks at "
                    f"{r['baseline_rss_mb']:.0f} MB"),
    ]  # fmt: skip


def figures_codec(r: dict[str, Any], p: Profile) -> list[Figure]:
    worst_key = max(r, key=lambda k: r[k]["ratio_median"])
    w = r[worst_key]
    py_key = max(r, key=lambda k: r[k]["python_ratio_median"])
    py = r[py_key]
    accel = "C accelerator" if w["accelerated"] else "pure Python codec"
    return [
        Figure("6", "codec vs msgpack (worst shape)",
               f"the slowest of {len(r)} shape/operation ratios, packr_replay.abi ({accel}) "
               f"÷ msgpack's C implementation on the same data ({w['rounds']} rounds each): "
               f"{worst_key}",
               "x", w["ratio_median"], w["ratio_min"], w["ratio_max"],
               Goal("<=", 5.0, "≤ 5x (every shape)")),
        Figure("6b", "pure-Python codec vs msgpack (worst shape)",
               f"the same with the accelerator bypassed (py_encode/py_decode): {py_key}",
               "x", py["python_ratio_median"], py.get("python_ratio_min"),
               py.get("python_ratio_max")),
    ]  # fmt: skip


def _reference(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The size per-call growth is measured from: the smallest with at least 10k calls
    (1k-call runs mostly measure start-up), or the smallest there is."""
    big = [row for row in rows[:-1] if row["calls"] >= 10_000]
    return big[0] if big else rows[0]


def figures_scaling(r: dict[str, Any], p: Profile) -> list[Figure]:
    rows = r["rows"]
    ref, top = _reference(rows), rows[-1]
    out = []
    for number, key, what in (("7", "record", "record"), ("7b", "replay", "replay"),
                              ("7c", "diff", "diff")):  # fmt: skip
        a, b = ref[f"{key}_samples"], top[f"{key}_samples"]
        per_round = [y / x for x, y in zip(a, b, strict=True)]
        med, lo, hi = _stats(per_round)
        costs = ", ".join(f"{_size(row['calls'])} {row[f'{key}_us_per_call']:.2f}" for row in rows)
        out.append(
            Figure(number, f"{what} cost per call, flat",
                   f"µs per call at {_size(top['calls'])} calls ÷ at {_size(ref['calls'])} calls "
                   f"({len(per_round)} paired samples)",
                   "x", med, lo, hi, Goal("<=", 1.25, "flat (≤ 1.25x)"),
                   note=f"µs/call: {costs}")
        )
    return out


def figures_index(r: dict[str, Any], p: Profile) -> list[Figure]:
    x = r["record_index_vs_live"]
    return [
        Figure("i", "recording with the index",
               f"(record + index_trace) ÷ live, calls({_size(r['calls'])}): what filling "
               "event_index at record time would cost",
               "x", x["median"], x["min"], x["max"],
               note=f"{r['index_us_per_event']:.1f} µs per indexed event; record alone "
                    f"{r['record_vs_live']['median']:.2f}x"),
    ]  # fmt: skip


def figures_record_parts(r: dict[str, Any], p: Profile) -> list[Figure]:
    what = {
        "drop": ("1a", "recording, events dropped",
                 "a Recorder whose sink drops every event (no store) ÷ live"),
        "inline": ("1b", "recording, store commits inline",
                   "Recorder + trace store committing on the guest's thread ÷ live"),
        "background": ("1c", "recording, store commits in background",
                       "Recorder + trace store, the default (committer thread) ÷ live"),
    }  # fmt: skip
    figures = []
    for part, (number, title, text) in what.items():
        v = r["parts"][part]
        s = v["vs_live"]
        figures.append(Figure(number, title, f"{text}, calls({_size(r['calls'])})", "x",
                              s["median"], s["min"], s["max"],
                              note=f"{v['us_per_call']:.2f} µs/call; live "
                                   f"{r['live_us_per_call']:.2f}"))  # fmt: skip
    return figures


def figures_startup(r: dict[str, Any], p: Profile) -> list[Figure]:
    s, x = r["seconds"], r["vs_python"]
    version, bare, helps = s["version"], s["python"], s["help"]
    return [
        Figure("8", "start-up: --version",
               f"`{r['command']} --version` wall time in a fresh process, beside "
               f"`python -c pass` in the same round ({r['rounds']} rounds)",
               "s", version["median"], version["min"], version["max"],
               Goal("<=", 0.3, "≤ 0.3 s"),
               note=f"{x['version']['median']:.1f}x `python -c pass` "
                    f"({fmt(bare['median'], 's')})"),
        Figure("8b", "start-up: --help ÷ python -c pass",
               f"`{r['command']} --help` ÷ `python -c pass`, same rounds",
               "x", x["help"]["median"], x["help"]["min"], x["help"]["max"],
               note=f"{fmt(helps['median'], 's')} for --help"),
    ]  # fmt: skip


def figures_corpus(r: dict[str, Any], p: Profile) -> list[Figure]:
    n, e = f"{r['traces']:,}", f"{r['events']:,}"
    up, dask, rate = r["speedup_2_jobs"], r["speedup_dask"], r["traces_per_s"]
    return [
        Figure("C", "corpus check: --jobs 2 ÷ --jobs 1 speed-up",
               f"check of {n} traces × {e} events: wall time with --jobs 1 ÷ with --jobs 2, "
               f"each starting its workers, same round ({r['rounds']} rounds)",
               "x", up["median"], up["min"], up["max"], Goal(">=", 1.8, "≥ 1.8x"),
               note=f"{rate['jobs1']['median']:,.0f} vs {rate['jobs2']['median']:,.0f} traces/s"),
        Figure("Cb", "corpus check: traces/s, --jobs 2",
               f"{n} traces of {e} events checked per second with two local workers",
               "traces/s", rate["jobs2"]["median"], rate["jobs2"]["min"], rate["jobs2"]["max"]),
        Figure("Cc", "corpus check: Dask LocalCluster ÷ --jobs 1 speed-up",
               "the same check through a LocalCluster of two worker processes (traces shipped "
               "as bundles) ÷ --jobs 1, same round",
               "x", dask["median"], dask["min"], dask["max"],
               note=f"{rate['dask']['median']:,.0f} traces/s; the cluster started in "
                    f"{r['cluster_start_s']:.1f} s (not counted)"),
    ]  # fmt: skip


def corpus_paragraph(r: dict[str, Any]) -> list[str]:
    """What a 1M-trace corpus costs, worked out from this run's per-trace figures."""
    per = r["per_trace_s"]["jobs1"]
    replay = r["worker_replay_per_trace_s"]["jobs1"]
    coord = r["coordinator_cpu_per_trace_s"]
    speedup = r["speedup_2_jobs"]["median"]
    efficiency = min(1.0, speedup / 2)
    million = 1_000_000
    one = million * per
    lines = [
        f"**A 1M-trace corpus.** Checked with one worker, a trace of {r['events']:,} events "
        f"cost {per * 1e3:.1f} ms of wall time here ({replay * 1e3:.1f} ms of it replaying "
        f"in the worker; the rest is opening its file, dispatch and the worker's start-up "
        f"spread over the run), so 1M such traces take 1,000,000 × {per * 1e3:.1f} ms = "
        f"{one / 3600:.1f} h on one worker. Two workers ran at {speedup:.2f}x one, a "
        f"parallel efficiency of {efficiency:.0%}; at that efficiency N workers need "
        f"{one / 3600:.1f} h ÷ (N × {efficiency:.2f}): "
        + ", ".join(
            f"{n} → {one / (n * efficiency) / 3600:.2f} h" for n in (2, 8, 32, 128)
        )
        + ".",
        "",
        f"The coordinator bounds N: it spent {coord['jobs2'] * 1e3:.2f} ms of its own CPU "
        f"per trace with local workers (listing, dispatch, results), so one coordinator "
        f"feeds at most 1 ÷ {coord['jobs2'] * 1e3:.2f} ms ≈ {1 / coord['jobs2']:,.0f} traces/s, "
        f"{_workers_worth(per / coord['jobs2'])}; through Dask it spent "
        f"{coord['dask'] * 1e3:.2f} ms per trace (it bundles each trace before shipping it), "
        f"a ceiling of ≈ {1 / coord['dask']:,.0f} traces/s, "
        f"{_workers_worth(per / coord['dask'])}, so 1M traces need at least "
        f"{million * coord['dask'] / 3600:.1f} h of one coordinator's time on a cluster of "
        f"any size. Past that, split the corpus between several coordinators (one `check` "
        f"per directory or `--select file=...` pattern).",
    ]
    return lines


def _workers_worth(n: float) -> str:
    """How many one-worker checks a coordinator's ceiling keeps busy, in words."""
    if n < 1:
        return f"less than one worker's worth ({n:.2f})"
    return f"about {n:,.0f} workers' worth"


def figures_native(r: dict[str, Any], p: Profile) -> list[Figure]:
    n, w, t = _size(r["calls"]), _size(r["work_calls"]), _size(r["text_calls"])
    us = r["us_per_call"]
    rounds = f"{r['rounds']} rounds"

    def fig(number: str, title: str, key: str, goal: float, what: str, note: str) -> Figure:
        v = r[key]
        return Figure(number, title, f"{what} ({rounds})", "x", v["median"], v["min"], v["max"],
                      Goal("<=", goal, f"≤ {goal:g}x"), note=note)  # fmt: skip

    return [
        fig("N1", "record ÷ live, s64", "record_vs_live", 1.25,
            f"calls({n}) recorded into a trace store file ÷ the same run live, both on the "
            "native call path, no guest work between calls",
            f"{us['record']:.2f} vs {us['live']:.2f} µs/call"),
        fig("N2", "record ÷ live, s64 with guest work", "work_record_vs_live", 1.05,
            f"work_calls({w}, k): about {r['work_us']:.1f} µs of guest work before each "
            f"call (k={r['spin_k']}), recorded ÷ live",
            f"{us['work-record']:.2f} vs {us['work-live']:.2f} µs/call"),
        fig("N3", "replay ÷ live, s64", "replay_vs_live", 0.25,
            f"replay_source of the calls({n}) trace (module compiled first) ÷ the live run",
            f"{us['replay']:.2f} µs/call replaying"),
        fig("N4", "play CLI ÷ library replay", "play_vs_library", 1.2,
            f"`packr-replay play` of a calls({_size(r['play_calls'])}) trace ÷ "
            "`api.replay` of it, each a process of its own (start-up included)",
            f"{r['play_s']:.2f} vs {r['library_s']:.2f} s"),
        fig("N5", "record ÷ live, 2 KB events", "text_record_vs_live", 2.0,
            f"text_calls({t}, {r['text_size']}): a {r['text_size']}-byte string each way "
            "(about 2.2 KB per event), recorded ÷ live",
            f"{us['text-record']:.2f} vs {us['text-live']:.2f} µs/call"),
        fig("N6", "replay ÷ live, 2 KB events", "text_replay_vs_live", 1.0,
            "that trace replayed ÷ the live run",
            f"{us['text-replay']:.2f} µs/call replaying"),
        fig("N7", "new live ÷ old live", "live_vs_old_live", 0.5,
            f"calls({n}) live through the C trampoline ÷ through the Python path "
            "(Runtime(native=False)), same round",
            f"{us['live']:.2f} vs {us['old-live']:.2f} µs/call"),
    ]  # fmt: skip


def figures_big(r: dict[str, Any], p: Profile) -> list[Figure]:
    n = _size(r["events"])
    out = []
    for number, key in (("B1", "record"), ("B2", "play"), ("B3", "verify"), ("B4", "diff")):
        seconds, rss = r[key]
        out.append(Figure(number, f"{n}-event trace: {key}",
                          f"`{key}` of a {n}-event trace (calls(n)), one child process",
                          "s", seconds, note=f"peak RSS {rss:.0f} MB"))  # fmt: skip
    seconds, rss = r["info"]
    out.append(Figure("B5", f"{n}-event trace: info",
                      "`packr-replay info` on that trace, one child process (start-up "
                      "included)", "s", seconds, goal=Goal("<=", 1.0, "< 1 s"),
                      note=f"peak RSS {rss:.0f} MB"))  # fmt: skip
    return out


FIGURES: dict[str, Callable[[dict[str, Any], Profile], list[Figure]]] = {
    "codec": figures_codec,
    "host_call": figures_host_call,
    "store": figures_store,
    "record": figures_record,
    "record_parts": figures_record_parts,
    "index": figures_index,
    "scaling": figures_scaling,
    "diff": figures_diff,
    "startup": figures_startup,
    "native": figures_native,
    "big": figures_big,
    "corpus": figures_corpus,
}


# ------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    """What the figures were measured on (call at the start of the run)."""
    import wasmtime  # noqa: F401  (its version, below)

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "wasmtime": _version("wasmtime"),
        "sqlite": sqlite3.sqlite_version,
        "msgpack": _version("msgpack"),
        "packr_replay": _version("packr-replay"),
        "platform": platform.platform(terse=True),
        "load_average_start": _loadavg(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    from packr_replay.abi import ACCELERATED

    info["codec_accelerated"] = ACCELERATED
    info["git"] = _git()
    return info


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _git() -> str | None:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "packr_replay", "bench",
                                ":!bench/results.json"],
                               cwd=ROOT, text=True, capture_output=True, check=True).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + (" (with uncommitted changes in packr_replay/ or bench/)" if dirty.strip() else "")


# ------------------------------------------------------------------ running


def run_child(name: str, profile: Profile) -> dict[str, Any]:
    """Run one benchmark in a child process; its result dict, or ``{"error": ...}``."""
    with tempfile.TemporaryDirectory(prefix="packr-bench-") as tmp:
        result = Path(tmp) / "result.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "bench", "--child", name, "--profile", profile.name,
               "--result", str(result)]  # fmt: skip
        t0 = time.perf_counter()
        err_path = Path(tmp) / "stderr.txt"
        with err_path.open("w") as err, subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:  # the child's progress, as it comes
                print(line, end="", flush=True)
            code = proc.wait()
        elapsed = time.perf_counter() - t0
        if code != 0 or not result.exists():
            tail = "\n".join(err_path.read_text().strip().splitlines()[-15:])
            return {"error": f"exit status {code}: {tail}", "elapsed_s": elapsed}
        data: dict[str, Any] = json.loads(result.read_text())
        return {"result": data, "elapsed_s": elapsed}


def child_main(name: str, profile: Profile, result: Path) -> int:
    _, fn = BENCHMARKS[name]
    data = fn(profile)
    result.write_text(json.dumps(data, indent=1))
    return 0


# ------------------------------------------------------------------ reports


def render(report: dict[str, Any], figures: list[Figure]) -> str:
    m = report["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m bench` (bench/runner.py); every figure below comes from this "
        "one run. Each is the median over repeated rounds of a ratio of two things measured "
        "side by side in the same run (or a rate or size with a goal of its own), with the "
        "spread (min–max over rounds) and the goal.",
        "",
        f"- command: `{report['command']}`",
        f"- profile: {report['profile']}"
        + (" — **a smoke test at small sizes, not a measurement**"
           if report["profile"] == "quick" else ""),
        f"- date: {report['started']}, {report['elapsed_s'] / 60:.1f} minutes",
        f"- commit: {m.get('git') or 'unknown'}",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPUs | {m['cpus']} × {m['cpu']} |",
        f"| memory | {m.get('memory_gb', '?')} GB |",
        f"| platform | {m['platform']} |",
        f"| Python | {m['implementation']} {m['python']} |",
        f"| wasmtime (wasmtime-py) | {m['wasmtime']} |",
        f"| SQLite | {m['sqlite']} |",
        f"| msgpack | {m['msgpack']} |",
        f"| packr-replay | {m['packr_replay']}, CGRF codec "
        f"{'with the C accelerator' if m['codec_accelerated'] else 'pure Python'} |",
        f"| load average at start | {_load(m.get('load_average_start'))} |",
        f"| load average at end | {_load(report.get('load_average_end'))} |",
        "",
        "## Figures against their goals",
        "",
        "| # | figure | median | spread | goal | verdict |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for f in figures:
        goal = f.goal.text if f.goal else "—"
        verdict = f"**{f.verdict}**" if f.verdict.startswith("missed") else f.verdict
        lines.append(
            f"| {f.number} | {f.title} | {fmt(f.median, f.unit)} | {_spread(f)} | {goal} "
            f"| {verdict} |"
        )
    lines += ["", "What each figure measures:", ""]
    for f in figures:
        extra = f" ({f.note})" if f.note else ""
        lines.append(f"- **{f.number}** {f.what}{extra}.")
    lines += _details(report)
    lines += ["", "## Notes", ""]
    for note in report["notes"]:
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def _load(values: list[float] | None) -> str:
    return " / ".join(f"{x:.2f}" for x in values) + " (1 / 5 / 15 min)" if values else "?"


def _details(report: dict[str, Any]) -> list[str]:
    runs = report["benchmarks"]
    out: list[str] = ["", "## Details", ""]
    for name, run in runs.items():
        desc = BENCHMARKS[name][0]
        out.append(f"### {name}: {desc} ({run['elapsed_s']:.0f} s)")
        out.append("")
        if "error" in run:
            out += ["```", run["error"], "```", ""]
            continue
        r = run["result"]
        if name == "codec":
            out += ["| shape / op | in use ÷ msgpack | spread | pure Python ÷ msgpack | "
                    "in use µs | msgpack µs | CGRF bytes | msgpack bytes |",
                    "|---|---|---|---|---|---|---|---|"]  # fmt: skip
            for key, v in r.items():
                out.append(
                    f"| {key} | {v['ratio_median']:.2f}x | {v['ratio_min']:.2f}–"
                    f"{v['ratio_max']:.2f} | {v['python_ratio_median']:.1f}x | "
                    f"{v['ours_us']:.2f} | {v['msgpack_us']:.2f} | {v['cgrf_bytes']} | "
                    f"{v['msgpack_bytes']} |"
                )
        elif name == "host_call":
            out += ["| ratio | median | spread | µs/call | what |", "|---|---|---|---|---|"]
            for label, v in r["ratios"].items():
                out.append(
                    f"| {label} | {v['median']:.2f}x | {v['min']:.2f}–{v['max']:.2f} | "
                    f"{v['numerator_us']:.2f} vs {v['denominator_us']:.2f} | {v['what']} |"
                )
        elif name == "store":
            out += ["| variant | events/s median | best | ÷ baseline (median) | bytes/event | "
                    "over payload |", "|---|---|---|---|---|---|"]  # fmt: skip
            for variant, v in r["variants"].items():
                size, over = v["bytes_per_event"], v["overhead_bytes_per_event"]
                sizes = "- | -" if size is None else f"{size:.1f} | {over:.1f}"
                out.append(
                    f"| {variant} | {v['median']:,.0f} | {v['best']:,.0f} | "
                    f"{v['vs_baseline']['median']:.2f}x | {sizes} |"
                )
            out += ["", "baseline: plain `executemany` of the same events as rows of a "
                    "14-column STRICT table, as many per transaction as the writer batches; "
                    "chain only: packing and SHA-256 chaining with no storage."]  # fmt: skip
        elif name == "record":
            s = r["seconds"]
            out += ["| run | median s | µs/call |", "|---|---|---|"]
            for key in ("live", "record", "replay", "api.replay", "live per export",
                        "record per export"):
                med = statistics.median(s[key])
                out.append(f"| {key} | {med:.3f} | {med / r['calls'] * 1e6:.2f} |")
        elif name == "scaling":
            out += ["| calls | live µs/call | record µs/call | replay µs/call | diff µs/event |",
                    "|---|---|---|---|---|"]  # fmt: skip
            for row in r["rows"]:
                out.append(
                    f"| {row['calls']:,} | {row['live_us_per_call']:.2f} | "
                    f"{row['record_us_per_call']:.2f} | {row['replay_us_per_call']:.2f} | "
                    f"{row['diff_us_per_call']:.2f} |"
                )
            out += ["", f"{r['rounds']} round(s); each round runs every size: live, two "
                    "recordings (both are record samples), a replay, a diff of the two "
                    "recordings. Replay per call is replay_source on the open file with "
                    "the module compiled first, as for live."]  # fmt: skip
        elif name == "diff":
            out += [
                f"two traces of {r['events_per_trace']:,} events in one file of "
                f"{r['file_bytes'] / 1e6:.1f} MB; diff seconds per run: "
                f"{r['seconds']['median']:.2f} (median), peak RSS "
                f"{r['peak_rss_mb']['max']:.0f} MB at most; a child that only imports "
                f"packr_replay.api: {r['baseline_rss_mb']:.0f} MB."
            ]
        elif name == "corpus":
            out += ["| run | median s | traces/s | coordinator CPU ms/trace | worker replay "
                    "ms/trace |", "|---|---|---|---|---|"]  # fmt: skip
            for key, label in (("jobs1", "--jobs 1"), ("jobs2", "--jobs 2"),
                               ("dask", "Dask LocalCluster, 2 workers")):  # fmt: skip
                out.append(
                    f"| {label} | {statistics.median(r['seconds'][key]):.2f} | "
                    f"{r['traces_per_s'][key]['median']:,.0f} | "
                    f"{r['coordinator_cpu_per_trace_s'][key] * 1e3:.2f} | "
                    f"{r['worker_replay_per_trace_s'][key] * 1e3:.2f} |"
                )
            out += ["", f"{r['traces']:,} traces of {r['events']:,} events in {r['files']} "
                    f"files, recorded in {r['build_s']:.0f} s.", ""]  # fmt: skip
            out += corpus_paragraph(r)
        elif name == "startup":
            out += ["| run | median s | spread | ÷ python -c pass |", "|---|---|---|---|"]
            for key, label in (("python", "python -c pass"), ("version", "--version"),
                               ("help", "--help")):  # fmt: skip
                v = r["seconds"][key]
                ratio = "1.00x" if key == "python" else f"{r['vs_python'][key]['median']:.2f}x"
                out.append(f"| {label} | {v['median']:.3f} | {v['min']:.3f}–{v['max']:.3f} | "
                           f"{ratio} |")  # fmt: skip
        elif name == "native":
            out += ["| run | median s | µs/call |", "|---|---|---|"]
            for key, us in r["us_per_call"].items():
                out.append(f"| {key} | {statistics.median(r['seconds'][key]):.3f} | {us:.2f} |")
            out += ["", f"old-record ÷ old-live (the Python path recording): "
                    f"{r['old_record_vs_old_live']['median']:.2f}x"]  # fmt: skip
        elif name == "big":
            out += ["| command | seconds | peak RSS MB |", "|---|---|---|"]
            for key in ("record", "play", "verify", "diff", "info"):
                out.append(f"| {key} | {r[key][0]:.2f} | {r[key][1]:.0f} |")
            out += ["", f"{r['events']:,} events, a file of {r['file_bytes'] / 1e6:.0f} MB "
                    "(two traces: diff compares them)"]  # fmt: skip
        elif name == "index":
            out += ["| ratio | median | spread |", "|---|---|---|"]
            for key in ("record_vs_live", "record_rows_vs_live", "record_index_vs_live",
                        "index_vs_record"):  # fmt: skip
                v = r[key]
                out.append(f"| {key} | {v['median']:.2f}x | {v['min']:.2f}–{v['max']:.2f} |")
        out.append("")
    return out


STANDING_NOTES = [
    "Ratios, not absolute times, are the figures: both sides of a ratio run in the same "
    "round, back to back, so machine speed and most noise cancel. Absolute µs are context "
    "only. Machines with 2 CPUs and other load show wide spreads; the spread column says "
    "how far the rounds disagreed.",
    "Record overhead (1) and replay (2) time the work on a compiled module: the export "
    "call for the live and record runs (recording includes the final flush), "
    "`replay_source` for replay (instantiating and replaying every call from the open "
    "file). 2b is `api.replay` whole: opening the file and compiling the stored module "
    "too (wasmtime compiles bench.wasm in tens of ms).",
    "Scaling (7) is flat when the cost per call at the largest size is within 1.25x of "
    "the cost at 10k calls (1k-call runs carry fixed start-up costs and are shown for "
    "context only).",
    "The diff benchmark compares two recordings of the same deterministic run, so every "
    "event is read, decoded into its fields and compared; its peak RSS includes the "
    "interpreter and every import.",
    "The store write rate (4) runs through `TraceWriter.extend` in batches of 512 rows, as "
    "the Recorder hands them over, with the default flush policy (commits on the writing "
    "thread; `writer background` uses a committer thread); `writer append` in the details "
    "is the one-event-per-call API.",
]


def build_report(
    profile: Profile,
    names: list[str],
    command: str,
    notes: list[str],
    run: Callable[[str, Profile], dict[str, Any]] = run_child,
) -> tuple[dict[str, Any], list[Figure]]:
    started = dt.datetime.now().astimezone()
    info = machine()
    t0 = time.perf_counter()
    runs: dict[str, Any] = {}
    figures: list[Figure] = []
    for name in names:
        print(f"== {name}: {BENCHMARKS[name][0]}", flush=True)
        outcome = run(name, profile)
        runs[name] = outcome
        if "error" in outcome:
            print(f"!! {name} failed: {outcome['error']}", file=sys.stderr, flush=True)
            figures.append(Figure("!", f"{name} (failed)", outcome["error"].splitlines()[0],
                                  "", None))  # fmt: skip
            continue
        figures += FIGURES[name](outcome["result"], profile)
    report: dict[str, Any] = {
        "command": command,
        "profile": profile.name,
        "sizes": asdict(profile),
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": time.perf_counter() - t0,
        "machine": info,
        "load_average_end": _loadavg(),
        "benchmarks": runs,
        "notes": [*notes, *STANDING_NOTES],
    }
    if profile.name == "quick":
        report["notes"].insert(0, "A --quick run: sizes and rounds far below the goals'; "
                                  "the verdicts only show that the runner works.")  # fmt: skip
    report["figures"] = [asdict(f) for f in figures]
    return report, figures


def _command_args(argv: list[str] | None) -> list[str]:
    """The command line as typed, minus ``--note`` texts (they are in the notes)."""
    args = list(sys.argv[1:] if argv is None else argv)
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--note":
            skip = True
        elif not a.startswith("--note="):
            out.append(shlex.quote(a))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, few rounds (smoke test)")
    size.add_argument("--full", action="store_true", help="the goals' sizes (1M-event traces)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help=f"run only these (repeatable or comma-separated): "
                             f"{', '.join(BENCHMARKS)}")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None,
                        help="directory for BENCHMARKS.md and results.json")  # fmt: skip
    parser.add_argument("--note", action="append", default=[], help="add a note to the report")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--profile", default="default", choices=PROFILES, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        return child_main(args.child, PROFILES[args.profile], args.result)

    profile = PROFILES["quick" if args.quick else "full" if args.full else args.profile]
    names = [n.strip().replace("-", "_") for item in args.only for n in item.split(",")]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(BENCHMARKS)}")  # fmt: skip
    selected = [n for n in BENCHMARKS if not names or n in names]
    complete = not names and profile.name != "quick"
    if args.out is not None:
        md_path, json_path = args.out / "BENCHMARKS.md", args.out / "results.json"
    elif complete:
        md_path, json_path = ROOT / "BENCHMARKS.md", ROOT / "bench" / "results.json"
    else:
        out = Path(tempfile.mkdtemp(prefix="packr-bench-"))
        md_path, json_path = out / "BENCHMARKS.md", out / "results.json"
    command = " ".join(["python -m bench", *_command_args(argv)])

    report, figures = build_report(profile, selected, command, args.note)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(render(report, figures))
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    print()
    width = max(len(f.title) for f in figures)
    for f in figures:
        goal = f" (goal {f.goal.text})" if f.goal else ""
        print(f"{f.number:>3} {f.title:<{width}} {fmt(f.median, f.unit):>14}  {f.verdict}{goal}")
    print(f"\nwrote {md_path} and {json_path}")
    failed = any(f.verdict == "error" for f in figures)
    missed = any(f.verdict.startswith("missed") for f in figures)
    return 1 if failed or (args.strict and missed) else 0
