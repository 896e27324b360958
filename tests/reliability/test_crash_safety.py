"""A real recorder (``api.record_run`` with a Recorder into a trace store) SIGKILLed at
random points: the file opens, its hash chains verify, the trace reads ``incomplete``,
and it replays up to the cut with a clear "the trace ended there" report.

tests/storage/test_processes.py kills a bare TraceWriter loop; this kills the whole
recording stack (runtime, Recorder batching, the writer's commits) in the
middle of a guest's run: ``bench`` (one export making endless import calls, so the cut
lands inside an export) and ``clock_actor`` (endless short exports, so the cut lands
anywhere, boundaries included).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from packr_replay import api
from packr_replay.cli import app
from packr_replay.storage import EventKind, TraceStatus, TraceStore

from .conftest import ROOT, Forked, Tally, quick_count

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

GUESTS = ("bench", "clock_actor")


@dataclass
class Trial:
    """One recorder to kill ``delay`` seconds after it said ``ready``."""

    path: Path
    guest: str
    delay: float


def run_batch(trials: list[Trial]) -> None:
    """Start every recorder (forked from one process), then kill each at its own moment
    after it is ready."""
    with Forked([["record-forever", str(t.path), t.guest] for t in trials]) as jobs:
        pids = jobs.wait_ready()
        ready = time.monotonic()  # all became ready within a few ms of each other
        for i in sorted(range(len(trials)), key=lambda i: trials[i].delay):
            time.sleep(max(0.0, ready + trials[i].delay - time.monotonic()))
            assert i not in jobs.codes, "the recorder stopped on its own"
            os.kill(pids[i], signal.SIGKILL)
        codes = jobs.finish()
    assert set(codes.values()) == {-signal.SIGKILL}, codes


def check_survivor(t: Trial, tally: Tally) -> None:
    """The killed recorder's file: opens, verifies, incomplete, replays to the cut."""
    with TraceStore(t.path) as store:
        (info,) = store.traces()
        assert info.status is TraceStatus.INCOMPLETE, info.status
        trace = store.trace(info.id)
        n = len(trace)
        assert info.event_count == n
        report = store.verify(info.id)
        assert report.ok, report.message
        assert report.events == n
        last = trace.event(n - 1) if n else None
    replayed = api.replay(t.path)
    assert replayed.trace_incomplete
    assert replayed.reproduced, replayed.summary()
    assert replayed.events_replayed == n
    at_boundary = last is None or (last.kind is EventKind.RETURN and last.depth == 0)
    if at_boundary:
        assert not replayed.ended_early
    else:
        assert replayed.ended_early
        assert "the trace ended there" in replayed.summary()
    tally.add(f"{t.guest}: {'cut between exports' if at_boundary else 'cut inside an export'}")
    tally.peak("most_events", n)
    tally.fact("fewest_events", min(n, tally.facts.get("fewest_events", n)))


def check_cli(t: Trial) -> None:
    """``packr-replay play`` / ``verify`` / ``show`` on a killed recording."""
    runner = CliRunner()
    result = runner.invoke(app, ["play", str(t.path)])
    assert result.exit_code == 0, result.output
    assert "reproduced" in result.output
    assert "the trace ends there (its recorder stopped before finishing)" in result.output
    assert "(the trace ends inside)" in result.output  # bench: cut inside its one export
    assert "diverged" not in result.output
    result = runner.invoke(app, ["verify", str(t.path)])
    assert result.exit_code == 0, result.output
    assert "hash chain intact" in result.output
    result = runner.invoke(app, ["show", str(t.path), "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert "incomplete" in result.output


def run_trials(
    tmp_path: Path, count: int, seed: int, tally: Tally, max_delay: float, batch: int
) -> None:
    """``count`` kills, ``batch`` recorders at a time, alternating the two guests; the
    first bench trial also goes through the CLI."""
    rng = random.Random(seed)
    trials = [
        Trial(tmp_path / f"trial-{i}.db", GUESTS[i % 2], rng.uniform(0.05, max_delay))
        for i in range(count)
    ]
    for start in range(0, count, batch):
        run_batch(trials[start : start + batch])
    for t in trials:
        check_survivor(t, tally)
    check_cli(trials[0])


class TestKilledRecorder:
    """SIGKILL at random points of a real recording; nothing committed is lost."""

    def test_quick(self, tmp_path: Path, tally: Tally) -> None:
        """Four recorders at once (twenty with PACKR_RELIABILITY=medium)."""
        run_trials(tmp_path, quick_count(4, 20), seed=11, tally=tally, max_delay=0.4, batch=4)

    @pytest.mark.slow
    def test_fifty(self, tmp_path: Path, tally: Tally) -> None:
        """Fifty kills, five recorders at a time, later cuts (up to 2.5 s in)."""
        run_trials(tmp_path, 50, seed=1729, tally=tally, max_delay=2.5, batch=5)

    @pytest.mark.slow
    def test_killed_while_starting(self, tmp_path: Path, tally: Tally) -> None:
        """Killed at any moment from process start (creating the file included): the
        file is absent, or opens (create=True takes an empty one) and verifies."""
        rng = random.Random(5)
        for i in range(12):
            path = tmp_path / f"early-{i}.db"
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.children", "record-forever",
                 str(path), GUESTS[i % 2]],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(rng.uniform(0.0, 1.2))
            proc.kill()
            proc.wait()
            if not path.exists():
                tally.add("no file yet")
                continue
            with TraceStore(path, create=True) as store:
                infos = store.traces()
                assert len(infos) <= 1
                for info in infos:
                    assert info.status is TraceStatus.INCOMPLETE
                    assert store.verify(info.id).ok
            for info in infos:
                assert api.replay(path, info.id).reproduced
            tally.add("trace row written" if infos else "file without a trace")
