"""A long trace recorded, replayed, shown and diffed within bounded memory.

The phases (``tests.reliability.children.long_phase``): record ``calls(n)`` of the
bench guest (n + 2 events) through ``api.record_run``; replay it with ``save=True``
(the replay run becomes a second trace of n + 2 events); diff the recording with the
replay run (identical); ``packr-replay show --limit 20``, ``show SEQ`` and ``verify``.

Quick: 20k calls in process, each phase's memory high-water mark above where it
started (Linux: VmHWM reset through /proc/self/clear_refs, so C and SQLite memory
count too; elsewhere tracemalloc) compared with the same phase at 5k calls: memory
must not grow with the trace.
Slow: 1M calls, each phase in a child process of its own, whose peak RSS is compared
with a child that only imports the package.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from .children import long_phase
from .conftest import ROOT, Tally, quick_count

PHASES = ("record", "replay", "diff", "show")


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _can_reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        _status_kb("VmHWM")
    except (OSError, KeyError):
        return False
    return True


def peak_growth_mb(fn: Any) -> tuple[Any, float]:
    """Run ``fn``; its result and how far memory peaked above where it started."""
    gc.collect()
    if _can_reset_hwm():
        start = _status_kb("VmRSS")
        result = fn()
        return result, (_status_kb("VmHWM") - start) / 1024
    tracemalloc.start()
    try:
        result = fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, peak / 1e6


def run_in_process(db: Path, n: int) -> dict[str, dict[str, Any]]:
    out = {}
    for phase in PHASES:
        result, growth = peak_growth_mb(lambda phase=phase: long_phase(str(db), phase, n))
        result["peak_growth_mb"] = growth
        out[phase] = result
    return out


def check(results: dict[str, dict[str, Any]], n: int) -> None:
    assert results["record"]["events"] == n + 2
    assert results["replay"]["reproduced"]
    assert results["replay"]["events"] == n + 2
    assert results["diff"]["identical"], results["diff"]["summary"]
    assert results["diff"]["events"] == n + 2
    assert results["show"]["codes"] == [0, 0, 0]


class TestLongTrace:
    """Record, replay, show and diff a long trace; memory stays flat."""

    def test_quick(self, tmp_path: Path, tally: Tally, capsys: pytest.CaptureFixture[str]) -> None:
        n = quick_count(20_000, 200_000)
        small = run_in_process(tmp_path / "small.db", n // 4)
        large = run_in_process(tmp_path / "large.db", n)
        capsys.readouterr()  # what show printed
        check(small, n // 4)
        check(large, n)
        for phase in PHASES:
            a, b = small[phase]["peak_growth_mb"], large[phase]["peak_growth_mb"]
            tally.fact(f"{phase}_peak_growth_mb", {n // 4: round(a, 2), n: round(b, 2)})
            tally.fact(f"{phase}_seconds", round(large[phase]["seconds"], 2))
            # four times the events: at most a little more memory, never four times
            assert b < a * 1.5 + 8.0, f"{phase}: {a:.1f} MB at {n // 4} calls, {b:.1f} MB at {n}"
            assert b < 64, f"{phase}: {b:.1f} MB above the starting point"
        tally.add("record, replay, diff, show: ok")

    @pytest.mark.slow
    def test_million(self, tmp_path: Path, tally: Tally) -> None:
        n = 1_000_000
        db = tmp_path / "long.db"
        baseline = child(["baseline"])["peak_rss_mb"]
        results = {phase: child(["long", str(db), phase, str(n)]) for phase in PHASES}
        check(results, n)
        tally.fact("baseline_rss_mb", round(baseline, 1))
        tally.fact("file_mb", round(db.stat().st_size / 1e6, 1))
        for phase, result in results.items():
            tally.fact(f"{phase}_peak_rss_mb", round(result["peak_rss_mb"], 1))
            tally.fact(f"{phase}_seconds", round(result["seconds"], 1))
            # a few hundred bytes an event would be 200+ MB at 1M events
            assert result["peak_rss_mb"] < baseline + 100, (phase, result, baseline)
        tally.add("record, replay, diff, show of 1M calls: ok")


def child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.children", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result
