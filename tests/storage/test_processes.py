"""Real processes: a recorder SIGKILLed mid-recording, and recorders sharing one file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from packr_replay.storage import TraceStatus, TraceStore

from .util import event_fields

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and /proc")


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


RECORD_FOREVER = """
    import sys
    from packr_replay.storage import FlushPolicy, TraceStore
    from tests.storage.util import event_fields

    store = TraceStore(sys.argv[1], create=True)
    policy = FlushPolicy(max_events=int(sys.argv[2]), max_delay=0.005)
    writer = store.begin_trace(None, label="victim", flush=policy)
    print(writer.trace_id, flush=True)
    i = 0
    while True:
        writer.append(**event_fields(i))
        i += 1
"""


def wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def committed(path: Path, trace_id: int) -> int:
    with TraceStore(path, readonly=True) as store:
        return len(store.trace(trace_id))


def check_survivors(path: Path, trace_id: int, at_least: int) -> int:
    """Every committed event is intact and chain-valid; the trace reads incomplete."""
    with TraceStore(path) as store:
        trace = store.trace(trace_id)
        assert trace.info.status is TraceStatus.INCOMPLETE
        assert trace.info.head_hash is None
        n = len(trace)
        assert n >= at_least
        assert trace.info.event_count == n
        for event in trace.events():
            assert event == trace.event(event.seq)
            expected = event_fields(event.seq)
            assert {k: getattr(event, k) for k in expected} == expected
        report = store.verify(trace_id)
        assert report.ok, report.message
        assert report.events == n
        return n


class TestCrashSafety:
    """A recorder killed with SIGKILL leaves every committed event and an incomplete trace."""

    def kill_mid_recording(self, path: Path, batch: int, at_least: int) -> int:
        proc = spawn(RECORD_FOREVER, str(path), str(batch))
        try:
            assert proc.stdout is not None
            trace_id = int(proc.stdout.readline())
            wait_for(lambda: committed(path, trace_id) >= at_least)
            with TraceStore(path, readonly=True) as store:
                assert store.trace(trace_id).info.status is TraceStatus.RECORDING  # alive
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        return check_survivors(path, trace_id, at_least)

    def test_sigkill(self, store_path: Path) -> None:
        self.kill_mid_recording(store_path, batch=37, at_least=500)

    def test_zombie_counts_as_dead(self, store_path: Path) -> None:
        proc = spawn(RECORD_FOREVER, str(store_path), "10")
        assert proc.stdout is not None
        trace_id = int(proc.stdout.readline())
        wait_for(lambda: committed(store_path, trace_id) >= 50)
        os.kill(proc.pid, signal.SIGKILL)
        time.sleep(0.2)  # not reaped yet: a zombie
        try:
            with TraceStore(store_path, readonly=True) as store:
                assert store.trace(trace_id).info.status is TraceStatus.INCOMPLETE
        finally:
            proc.communicate()

    def test_exit_without_finishing(self, store_path: Path) -> None:
        """A script that never finishes its writer still saves what it appended."""
        code = """
            import sys
            from packr_replay.storage import FlushPolicy, TraceStore
            from tests.storage.util import write_events

            store = TraceStore(sys.argv[1], create=True)
            writer = store.begin_trace(None, flush=FlushPolicy(max_events=10**6, max_delay=3600))
            write_events(writer, 123)
        """
        proc = spawn(code, str(store_path))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert check_survivors(store_path, 1, at_least=123) == 123

    @pytest.mark.slow
    def test_many_kills(self, tmp_path: Path) -> None:
        """Kill at many different moments (mid-commit included) into one file."""
        path = tmp_path / "many.db"
        for round_ in range(12):
            self.kill_mid_recording(path, batch=1 + round_ * 13, at_least=50 + round_ * 97)
        with TraceStore(path) as store:
            assert len(store.traces()) == 12
            assert all(store.verify(t.id).ok for t in store.traces())


APPEND_TOGETHER = """
    import sys, time
    from pathlib import Path
    from packr_replay.storage import FlushPolicy, TraceStore
    from tests.storage.util import event_fields

    path, label, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    with TraceStore(path, create=True) as store:
        writer = store.begin_trace(None, label=label, flush=FlushPolicy(max_events=10))
        while not go.exists():
            time.sleep(0.002)
        for i in range(n):
            writer.append(**event_fields(i))
            if i % 50 == 49:
                writer.flush()
        writer.finish()
"""


class TestConcurrentRecorders:
    """Four processes append to one file at once; every event of every trace lands."""

    @pytest.mark.parametrize(
        "precreate",
        [
            pytest.param(True, id="existing"),
            pytest.param(False, id="created", marks=pytest.mark.slow),
        ],
    )
    def test_four_writers(self, tmp_path: Path, precreate: bool) -> None:
        path, go, n = tmp_path / "shared.db", tmp_path / "go", 1000
        if precreate:
            TraceStore(path, create=True).close()
        procs = [spawn(APPEND_TOGETHER, str(path), f"p{k}", str(n), str(go)) for k in range(4)]
        try:

            def all_started() -> bool:
                if not path.exists():
                    return False
                try:
                    with TraceStore(path, readonly=True) as store:
                        return len(store.traces()) == 4
                except Exception:
                    return False

            wait_for(all_started)
            go.touch()
            for proc in procs:
                _, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, err
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.communicate()
        with TraceStore(path) as store:
            infos = store.traces()
            assert sorted(i.label or "" for i in infos) == ["p0", "p1", "p2", "p3"]
            for info in infos:
                assert info.status is TraceStatus.COMPLETE
                assert info.event_count == n
                trace = store.trace(info.id)
                for event in trace.events():
                    expected = event_fields(event.seq)
                    assert {k: getattr(event, k) for k in expected} == expected
                assert len(trace) == n
                assert store.verify(info.id).ok
