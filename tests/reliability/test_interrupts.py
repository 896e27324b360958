"""SIGINT at random points of real ``packr-replay record`` runs: no crash, the trace
reads ``incomplete`` (reason ``interrupted``), its hash chain verifies, and it replays up
to the cut. (Before: a segfault in about 1 run in 4, an empty "an earlier commit
failed" error, traces sealed ``failed``, or no effect on a spinning guest.)

Three workloads, so the signal lands everywhere: ``bench`` (one export call making
imports without end: the cut lands inside it, often inside a host call or a commit),
``clock`` (thousands of short export calls: the cut lands anywhere, boundaries
included) and ``spin`` (a guest spinning with no fuel limit: only an epoch
interruption can stop it).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from packr_replay import api
from packr_replay.replay.caps import ReplayCaps
from packr_replay.storage import TraceStatus, TraceStore

from .conftest import ROOT, Tally, quick_count

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

GUESTS = ROOT / "examples" / "guests"
EXE = str(Path(sys.executable).parent / "packr-replay")
WORKLOADS = ("bench", "clock", "spin")


def command(workload: str, db: Path, calls: Path) -> list[str]:
    if workload == "bench":
        return ["record", str(GUESTS / "bench.wasm"), "--host", "demo", "-c",
                "calls=1000000000000s64", "--fuel", "0", "-o", str(db), "-q"]  # fmt: skip
    if workload == "clock":
        return ["record", str(GUESTS / "clock_actor.wasm"), "--host", "demo", "--calls",
                str(calls), "-o", str(db), "-q"]  # fmt: skip
    return ["record", str(GUESTS / "hostile.wasm"), "--host", "demo", "-c", "import_echo=1s32",
            "-c", "spin", "--fuel", "0", "-o", str(db), "-q"]  # fmt: skip


@dataclass
class Trial:
    workload: str
    db: Path
    delay: float  # seconds after the trace exists
    proc: subprocess.Popen[str] | None = None
    took: float = 0.0
    err: str = ""


def _has_trace(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        with TraceStore(db, readonly=True) as store:
            return bool(store.traces())
    except Exception:
        return False  # (being created)


def run(trials: list[Trial], calls: Path) -> None:
    """Start the trials together; interrupt each ``delay`` after its trace exists."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for t in trials:
        t.proc = subprocess.Popen([EXE, *command(t.workload, t.db, calls)], cwd=t.db.parent, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    pending = list(trials)
    ready: dict[int, float] = {}
    deadline = time.monotonic() + 120
    while pending:
        assert time.monotonic() < deadline, "a recorder never began"
        for t in list(pending):
            assert t.proc is not None
            if t.proc.poll() is not None:
                _, err = t.proc.communicate()
                raise AssertionError(f"{t.workload} ended on its own: {err}")
            key = id(t)
            if key not in ready and _has_trace(t.db):
                ready[key] = time.monotonic()
            if key in ready and time.monotonic() >= ready[key] + t.delay:
                sent = time.monotonic()
                t.proc.send_signal(signal.SIGINT)
                _, t.err = t.proc.communicate(timeout=60)
                t.took = time.monotonic() - sent
                pending.remove(t)
        time.sleep(0.01)


def check(t: Trial, tally: Tally) -> None:
    assert t.proc is not None
    err = t.err
    code = t.proc.returncode
    tally.add(f"exit {code}" if code != 130 else "exit 130")
    assert code == 130, f"{t.workload}: exit {code}: {err}"  # not a crash (-11, -6...)
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"{t.workload}: {err}"
    assert lines[0].startswith("packr-replay: interrupted by SIGINT: kept "), (
        f"{t.workload} after {t.delay:.3f} s: {err}"
    )
    assert f"replay them with: packr-replay play {t.db}#1" in lines[0]
    assert "Exception ignored" not in err
    assert sorted(p.name for p in t.db.parent.iterdir() if p.name.startswith(t.db.name)) == [
        t.db.name
    ]  # one file, no -wal/-shm
    with TraceStore(t.db, readonly=True) as store:
        (info,) = store.traces()
        assert (info.status, info.end_reason) == (TraceStatus.INCOMPLETE, "interrupted")
        report = store.verify(info.id)
        assert report.ok, report.message
        events = info.event_count
    # (a spinning guest spins on in replay too, until a cap or the grace past the
    # trace's end: a small cap keeps it short)
    caps = ReplayCaps(fuel=50_000_000) if t.workload == "spin" else ReplayCaps()
    replayed = api.replay(t.db, caps=caps)
    assert replayed.reproduced, f"{t.workload}: {replayed.summary()}"
    assert replayed.events_replayed == events
    tally.add("incomplete, verified, replayed to the cut", case=False)
    tally.peak("slowest_exit_s", round(t.took, 3))
    tally.peak(f"most_events_{t.workload}", events)


def run_trials(tmp_path: Path, count: int, seed: int, tally: Tally, batch: int) -> None:
    rng = random.Random(seed)
    calls = tmp_path / "calls.jsonl"
    calls.write_text("".join(json.dumps({"export": "run", "value": f'"u{i}"'}) + "\n"
                             for i in range(20_000)))  # fmt: skip
    trials = []
    for i in range(count):
        home = tmp_path / f"trial-{i}"
        home.mkdir()
        trials.append(Trial(WORKLOADS[i % 3], home / "t.db", rng.uniform(0.0, 1.0)))
    for start in range(0, count, batch):
        run(trials[start : start + batch], calls)
    for t in trials:
        check(t, tally)
    tally.fact("trials", count)
    tally.fact("exits_within_1s", sum(t.took < 1.0 for t in trials))
    tally.fact("median_exit_s", round(sorted(t.took for t in trials)[count // 2], 3))


class TestInterruptedRecorder:
    """SIGINT at random points of ``packr-replay record``; nothing committed is lost."""

    def test_quick(self, tmp_path: Path, tally: Tally) -> None:
        """One trial per workload (nine with PACKR_RELIABILITY=medium)."""
        run_trials(tmp_path, quick_count(3, 9), seed=7, tally=tally, batch=3)

    @pytest.mark.slow
    def test_thirty(self, tmp_path: Path, tally: Tally) -> None:
        """Thirty interrupts, three recorders at a time."""
        run_trials(tmp_path, 30, seed=2026, tally=tally, batch=3)
