"""Ctrl-C and SIGTERM on the installed command: a running guest stops within a second,
every event so far is committed, the trace reads ``incomplete (interrupted)``, and the
process exits 130/143 with one line saying what was kept and how to replay it.

(Before: a segfault in about 1 run in 4, "an earlier commit failed ... :" with an empty
reason, a trace sealed ``failed``, or, with ``--fuel 0``, no effect at all.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from packr_replay import api
from packr_replay.storage import TraceStatus, TraceStore
from tests.cli.conftest import GUESTS, executable

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [executable(), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )


def wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float = 60) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if text in line:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"never printed {text!r}")


def stop(proc: subprocess.Popen[str], signum: int) -> tuple[int, str, float]:
    """Send ``signum``; the exit code, stderr, and how long the process took to exit."""
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err, time.monotonic() - sent


def spin_recording(tmp_path: Path, echo: str) -> subprocess.Popen[str]:
    """``record`` of hostile's ``import_echo(ECHO)`` and then ``spin`` with no fuel limit,
    into ``t.db``, returned once the guest spins."""
    proc = start(["record", GUESTS / "hostile.wasm", "--host", "demo", "-c",
                  f"import_echo={echo}", "-c", "spin", "--fuel", "0", "-o", "t.db"], tmp_path)  # fmt: skip
    wait_for_line(proc, f"import_echo({echo})")
    time.sleep(0.3)  # spinning now
    return proc


class TestRecord:
    """``record`` of a guest spinning with no fuel limit (it used to ignore Ctrl-C)."""

    @pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
    def test_stops_keeps_and_says_so(self, tmp_path: Path, signum: int, code: int) -> None:
        returncode, err, took = stop(spin_recording(tmp_path, "5s32"), signum)
        assert returncode == code, err
        assert took < 1.5
        name = signal.Signals(signum).name
        assert err.strip().splitlines() == [
            f"packr-replay: interrupted by {name}: kept 4 event(s) of trace 1 in t.db "
            "(incomplete, reason: interrupted); replay them with: packr-replay play t.db#1"
        ]
        db = tmp_path / "t.db"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["t.db"]  # no -wal/-shm
        with TraceStore(db, readonly=True) as store:
            (info,) = store.traces()
            assert (info.status, info.end_reason, info.event_count) == (
                TraceStatus.INCOMPLETE, "interrupted", 4
            )  # fmt: skip
            assert store.verify(info.id).ok
        shown = subprocess.run([executable(), "show", "t.db"], cwd=tmp_path, capture_output=True,
                               text=True, check=True)  # fmt: skip
        assert "incomplete (interrupted)" in shown.stdout
        # replays to the cut (the guest spins on in replay too, until a cap or the
        # grace past the end of the trace, whichever comes first)
        play = subprocess.run([executable(), "play", "t.db", "--max-fuel", "20000000"],
                              cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
        assert play.returncode == 0, play.stdout + play.stderr
        assert "the trace ends there (its recording was interrupted)" in play.stdout


class TestPlay:
    """A spinning replay stops within a second too (no trace is written)."""

    def test_sigint_stops_a_spinning_replay(self, tmp_path: Path) -> None:
        returncode, err, _ = stop(spin_recording(tmp_path, "1s32"), signal.SIGINT)
        assert returncode == 130, err
        before = (tmp_path / "t.db").read_bytes()
        # No fuel limit was recorded, and none is asked for: the replay spins (past the
        # end of the trace, with no grace for that either).
        proc = start(["play", "t.db", "--max-fuel", "none", "--max-time", "none",
                      "--max-time-after-end", "none"], tmp_path)  # fmt: skip
        time.sleep(2)
        returncode, err, took = stop(proc, signal.SIGINT)
        assert returncode == 130, err
        assert took < 1.5
        assert err.strip().splitlines() == [
            "packr-replay: interrupted by SIGINT: replayed 4 of 4 event(s) of trace 1; "
            "nothing was written"
        ]
        assert (tmp_path / "t.db").read_bytes() == before


class TestPlayPastTheEnd:
    """Replaying that interrupted trace: the guest spins on past its last event, where
    nothing can be checked; it is stopped after a second, not at the 60 s time cap."""

    def test_stops_after_the_grace_and_says_why(self, tmp_path: Path) -> None:
        returncode, err, _ = stop(spin_recording(tmp_path, "5s32"), signal.SIGINT)
        assert returncode == 130, err
        t0 = time.monotonic()
        play = subprocess.run([executable(), "play", "t.db"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        took = time.monotonic() - t0
        assert play.returncode == 0, play.stdout + play.stderr
        assert took < 15  # a second's grace and the command's start-up (it was 60 s)
        out = " ".join(play.stdout.split())
        assert "… #3 spin (the trace ends inside)" in out
        assert "reproduced: 2 export call(s), 4 event(s) replayed in " in out
        assert "the trace ends there (its recording was interrupted)" in out
        assert (
            "the guest was still running in export 'spin' when the trace ended, and was "
            "stopped 1 s later" in out
        )
        assert "cut by" not in out
        assert "capped" not in out
        quick = subprocess.run([executable(), "play", "t.db", "--max-time-after-end", "0.1",
                                "--json"], cwd=tmp_path, capture_output=True, text=True,
                               timeout=60)  # fmt: skip
        assert quick.returncode == 0, quick.stderr
        data = json.loads(quick.stdout)
        assert (data["verdict"], data["ended_early"], data["capped"]) == ("reproduced", True, None)
        assert data["stopped_after_end"] == {"export": "spin", "after_s": 0.1}


class TestComposition:
    """``play --package`` of a composition's trace prints the one line a single guest's
    play prints, naming the package."""

    SPINNER = """(module (memory (export "memory") 1)
      (func (export "transform") (param i32 i32 i32 i32) (result i32)
        (loop $spin (br $spin)) (i32.const 0)))"""

    def test_sigterm_stops_a_spinning_package(self, tmp_path: Path) -> None:
        from packr_replay.abi import S64
        from tests.replay.test_composition import composition

        api.record_composition(composition(), [("actor", "process", S64(5))], store=tmp_path / "c.db")
        (tmp_path / "spin.wat").write_text(self.SPINNER)
        proc = start(["play", "c.db", "--package", "doubler", "--module", "spin.wat",
                      "--max-fuel", "none", "--max-time", "none"], tmp_path)  # fmt: skip
        time.sleep(2)
        returncode, err, took = stop(proc, signal.SIGTERM)
        assert returncode == 143, err
        assert took < 1.5
        assert err.strip().splitlines() == [
            "packr-replay: interrupted by SIGTERM: replayed 1 of 2 event(s) of trace 1 "
            "(package doubler); nothing was written"
        ]


class TestLibrary:
    """``api.record_run`` behaves the same (Interrupted, a KeyboardInterrupt, with the
    note), in a process of its own."""

    def test_record_run(self, tmp_path: Path) -> None:
        code = (
            "import sys\n"
            "from packr_replay import api\n"
            "from packr_replay.abi import S64\n"
            "from packr_replay.errors import Interrupted\n"
            "from packr_replay.runtime import Runtime\n"
            "from packr_replay.runtime.demo import DemoHost, example_guest\n"
            "module = Runtime(fuel=None).load_module(example_guest('bench'))\n"
            "print('ready', flush=True)\n"
            "try:\n"
            "    api.record_run(module, [('calls', S64(10**12))], host=DemoHost(), store='t.db')\n"
            "except Interrupted as exc:\n"
            "    print('caught', exc.signal, exc.note, flush=True)\n"
            "    sys.exit(exc.exit_code)\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        wait_for_line(proc, "ready")
        time.sleep(1.0)
        returncode, err, took = stop(proc, signal.SIGINT)
        assert returncode == 130, err
        assert took < 1.5
        with TraceStore(tmp_path / "t.db", readonly=True) as store:
            (info,) = store.traces()
            assert (info.status, info.end_reason) == (TraceStatus.INCOMPLETE, "interrupted")
            assert info.event_count > 100  # the calls made before the signal are kept
            assert store.verify(info.id).ok
        report = api.replay(tmp_path / "t.db")
        assert report.reproduced, report.summary()
        assert report.ended_early
