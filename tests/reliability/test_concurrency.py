"""Four recorder processes recording real guests into one trace file at once.

tests/storage/test_processes.py (TestConcurrentRecorders) has four processes appending
synthetic events through TraceWriter; here each process runs the whole recording
stack (``api.record_run``: runtime, Recorder, writer) on an example guest, two with
one long export (``bench``) and two with many short ones (``clock_actor``, a commit at
every export's return), started together. Every event of every trace must be there,
chain-valid, and every trace must replay.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from packr_replay import api
from packr_replay.storage import TraceStatus, TraceStore

from .conftest import Forked, Tally, quick_count

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")


def expected_events(guest: str, n: int) -> int:
    # bench: export + n imports + return; clock_actor: export + 5 imports + return per run
    return n + 2 if guest == "bench" else 7 * n


def record_together(path: Path, go: Path, jobs: list[tuple[str, int, str]]) -> None:
    """Every job forked from one process; all start recording when ``go`` appears.

    The file is created first: several processes creating the same new file at the
    same instant can fail (see TestCreatingTogether).
    """
    if not path.exists():
        TraceStore(path, create=True).close()
    with Forked([["record", str(path), guest, str(n), label, str(go)]
                 for guest, n, label in jobs]) as forked:  # fmt: skip
        forked.wait_ready()
        go.touch()  # every trace row exists and every guest is instantiated: go
        codes = forked.finish()
    assert set(codes.values()) == {0}, codes


def check_all(path: Path, jobs: list[tuple[str, int, str]], tally: Tally) -> None:
    with TraceStore(path) as store:
        infos = {info.label: info for info in store.traces()}
        assert sorted(infos) == sorted(label for *_, label in jobs)
        for guest, n, label in jobs:
            info = infos[label]
            assert info.status is TraceStatus.COMPLETE
            trace = store.trace(info.id)
            want = expected_events(guest, n)
            assert info.event_count == want
            assert len(trace) == want
            seqs = [e.seq for e in trace.events()]
            assert seqs == list(range(want))
            report = store.verify(info.id)
            assert report.ok, report.message
            tally.add(f"{guest} trace complete and chain-valid")
            tally.fact("events", tally.facts.get("events", 0) + want)
    for guest, _, label in jobs:
        report = api.replay(path, label)
        assert report.reproduced, report.summary()
        tally.add(f"{guest} trace replayed", case=False)


def jobs_for(round_: int, bench_calls: int, clock_runs: int) -> list[tuple[str, int, str]]:
    return [
        ("bench", bench_calls, f"bench-{round_}-a"),
        ("clock_actor", clock_runs, f"clock-{round_}-a"),
        ("bench", bench_calls, f"bench-{round_}-b"),
        ("clock_actor", clock_runs, f"clock-{round_}-b"),
    ]


class TestFourRecorders:
    """Four real recorders into one file: every event of every trace lands."""

    def test_quick(self, tmp_path: Path, tally: Tally) -> None:
        path = tmp_path / "shared.db"
        jobs = jobs_for(0, quick_count(5_000, 100_000), quick_count(100, 1_000))
        record_together(path, tmp_path / "go", jobs)
        check_all(path, jobs, tally)

    @pytest.mark.slow
    def test_rounds_into_one_file(self, tmp_path: Path, tally: Tally) -> None:
        """Three rounds of four recorders (12 traces, ~1.3M events) into one file."""
        path = tmp_path / "shared.db"
        jobs: list[tuple[str, int, str]] = []
        for r in range(3):
            batch = jobs_for(r, 200_000, 3_000)
            record_together(path, tmp_path / f"go-{r}", batch)
            jobs += batch
        check_all(path, jobs, tally)


CREATE_TOGETHER = """
import os, sys, time
from packr_replay.storage import TraceStore

path, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    pass
TraceStore(path, create=True).close()
"""


class TestCreatingTogether:
    """Several processes creating the same new trace file at the same instant."""

    def create_together(self, tmp_path: Path, tally: Tally, rounds: int) -> None:
        import subprocess
        import time

        failures = []
        for r in range(rounds):
            path = tmp_path / f"new-{r}.db"
            start = time.time() + 0.3
            procs = [subprocess.Popen([sys.executable, "-c", CREATE_TOGETHER, str(path), str(start)],
                                      stderr=subprocess.PIPE, text=True) for _ in range(4)]  # fmt: skip
            for proc in procs:
                _, err = proc.communicate(timeout=120)
                if proc.returncode:
                    failures.append(err.strip().splitlines()[-1])
                    tally.add("open failed")
                else:
                    tally.add("opened")
        assert not failures, f"{len(failures)} of {4 * rounds} opens failed, e.g. {failures[0]}"

    def test_quick(self, tmp_path: Path, tally: Tally) -> None:
        self.create_together(tmp_path, tally, quick_count(3, 10))

    @pytest.mark.slow
    def test_four_processes_create_one_file(self, tmp_path: Path, tally: Tally) -> None:
        self.create_together(tmp_path, tally, 40)
