"""``packr-replay check``: the command over a recorded corpus, in process and as the
installed executable (exit codes, JSON, JUnit XML, Ctrl-C)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Invoke, executable

Sh = Callable[..., subprocess.CompletedProcess[str]]


def _kv2(lab: Path) -> str:
    return f"kv={lab / 'guests' / 'kv2' / 'kv.wat'}"


class TestVerdicts:
    """Exit codes and the summary."""

    def test_all_reproduce(self, cli: Invoke, lab: Path) -> None:
        run = cli("check", lab / "corpus" / "clock.db", "-j", "1")
        assert run.code == 0, run.err
        assert "reproduced:       3" in run.out
        assert "every trace reproduced" in run.out

    def test_diverged_and_refused(self, cli: Invoke, lab: Path) -> None:
        run = cli("check", lab / "corpus", "-m", _kv2(lab), "-l", "kv-*", "-l", "clock-*")
        assert run.code == 1
        assert "run › import t:host/kv.get: 2 trace(s)" in run.out
        assert "junk.db: bad file" in run.out
        assert "some traces did not reproduce" in run.out

    def test_baseline(self, cli: Invoke, lab: Path) -> None:
        kv1 = f"kv={lab / 'guests' / 'kv' / 'kv.wat'}"
        run = cli("check", lab / "corpus" / "nested", "-m", _kv2(lab), "--baseline", kv1)
        assert run.code == 1
        assert "2 regressed" in run.out
        assert "reproduced → diverged" in run.out
        run = cli("check", lab / "corpus" / "nested", "-m", kv1, "--baseline", _kv2(lab))
        assert run.code == 0
        assert "2 fixed" in run.out

    def test_json_and_junit(self, cli: Invoke, lab: Path, tmp_path: Path) -> None:
        xml_path = tmp_path / "out" / "check.xml"
        xml_path.parent.mkdir()
        run = cli("check", lab / "corpus" / "nested", lab / "corpus" / "clock.db",
                  "-m", _kv2(lab), "--json", "--junit-xml", xml_path)  # fmt: skip
        assert run.code == 1
        doc = json.loads(run.out)
        assert doc["counts"] == {"reproduced": 3, "diverged": 2, "refused": 0, "over_caps": 0,
                                 "crashed": 0}  # fmt: skip
        assert [t["label"] for t in doc["traces"]] == ["kv-0", "kv-1", "clock-0", "clock-1",
                                                       "clock-2"]  # fmt: skip
        suite = ET.parse(xml_path).getroot().find("testsuite")
        assert suite is not None
        assert suite.get("failures") == "2"
        assert not list(xml_path.parent.glob(".*partial"))

    def test_control_characters_do_not_reach_the_terminal(self, cli: Invoke, lab: Path) -> None:
        from packr_replay import api
        from packr_replay.abi import String
        from packr_replay.runtime.demo import DemoHost, example_guest

        store = lab / "evil.db"
        api.record_run(example_guest("clock_actor"), [("run", String("x"))], host=DemoHost(),
                       store=store, label="evil\x1b]0;pwned\x07")  # fmt: skip
        run = cli("check", store, "-m", str(example_guest("echo")), "-j", "1")
        assert run.code == 1
        assert "\x1b" not in run.out
        assert "\x07" not in run.out
        assert "evil\\x1b]0;pwned\\x07" in run.out

    def test_every_character_escapes_as_elsewhere(self, cli: Invoke, lab: Path) -> None:
        """The summary escapes as every other command does (render.escape): line breaks,
        tabs, C1 codes and bidirectional overrides too, not only C0 controls."""
        from packr_replay import api
        from packr_replay.abi import String
        from packr_replay.runtime.demo import DemoHost, example_guest

        store = lab / "evil2.db"
        label = "a\x1b[2J\nb\tc\x9bd\u202ee"
        api.record_run(example_guest("clock_actor"), [("run", String("\x1b[31m\u202e"))],
                       host=DemoHost(), store=store, label=label)  # fmt: skip
        run = cli("check", store, "-m", str(example_guest("echo")), "-j", "1")
        assert run.code == 1
        assert all(line.isprintable() for line in run.out.splitlines())
        assert "a\\x1b[2J\\nb\\tc\\x9bd\\u202ee" in run.out


class TestUsage:
    """Exit 2 with one line."""

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["missing.db"], "no such file or directory"),
            (["corpus", "--select", "colour=red"], "FIELD=PATTERN"),
            (["corpus", "-m", "nothing=x.wasm"], "no such file"),
            (["corpus", "-l", "nope"], "no trace in the corpus"),
            (["corpus", "-j", "2", "--dask", "tcp://127.0.0.1:1"], "either --jobs or --dask"),
            (["corpus", "--host", "nowhere.py:register"], "--host nowhere.py"),
        ],
        ids=["missing", "select", "module", "nothing-selected", "jobs-and-dask", "host"],
    )
    def test_usage_errors(self, sh: Sh, lab: Path, args: list[str], message: str) -> None:
        corpus = str(lab / "corpus")
        if args == ["corpus", "-l", "nope"]:
            args = [str(lab / "corpus" / "clock.db"), "-l", "nope"]
        run = sh("check", *[corpus if a == "corpus" else a for a in args], cwd=lab)
        assert run.returncode == 2, run.stdout + run.stderr
        assert message in run.stderr
        assert run.stderr.count("\n") == 1
        assert run.stdout == ""


class TestExecutable:
    """The installed command, including a worker that crashes and Ctrl-C."""

    def test_crash_and_hang_do_not_stop_the_run(self, sh: Sh, lab: Path) -> None:
        run = sh("check", "corpus/actor.db", "--host", "nasty.py:register", "--max-time", "2",
                 "--json", cwd=lab)  # fmt: skip
        assert run.returncode == 1, run.stderr
        doc = json.loads(run.stdout)
        assert [t["verdict"] for t in doc["traces"]] == ["reproduced", "crashed", "over_caps"]

    @pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
    def test_ctrl_c_stops_the_workers_and_reports(self, lab: Path, signum: int, code: int) -> None:
        """SIGINT and SIGTERM alike (the shared interrupt handling): the workers are
        stopped, what finished is reported, and one line says so."""
        proc = subprocess.Popen(
            [executable(), "check", "corpus/actor.db", "corpus/clock.db", "--host",
             "nasty.py:register", "-j", "1"],
            cwd=lab, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        workers = _wait_for_hang(proc.pid)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == code, err
        assert "interrupted: 2 of 6 trace(s) checked" in out
        assert "actor.db#1 fine" not in out  # reproduced: counted, not listed
        assert "reproduced:       1" in out
        assert "crashed:          1" in out
        name = signal.Signals(signum).name
        assert err.splitlines() == [
            f"packr-replay: interrupted by {name}: 2 of 6 trace(s) were checked (reported above)"
        ]
        time.sleep(0.2)
        assert not [pid for pid in workers if _alive(pid)]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for_hang(pid: int, timeout: float = 60.0) -> list[int]:
    """The check's workers, once the second one (after the crash) has been busy on the
    hanging trace for a moment."""
    deadline = time.monotonic() + timeout
    seen: list[int] = []
    while time.monotonic() < deadline:
        for child in _children(pid):
            if child not in seen:
                seen.append(child)
        if len(seen) >= 2 and _alive(seen[-1]):
            # the replacement worker is up; give it time to take the hanging trace
            time.sleep(2.0)
            return seen
        time.sleep(0.05)
    raise AssertionError(f"the check did not reach the hanging trace in {timeout} s")




def test_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar writes rich's cursor codes as they are (render.progress_bar, as every
    command's bar): through the guarded console they showed as text ("\\x1b[2K")."""
    import io
    import sys

    from packr_replay.cli.check import _Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = _Progress(enabled=True)
    assert progress.enabled
    progress.start(2)
    progress.advance_baseline()
    progress.stop()
    shown = terminal.getvalue()
    assert "\x1b[" in shown
    assert "\\x1b" not in shown


def test_help_defaults_stay_true() -> None:
    """The command copies a library constant so that --help stays light."""
    from packr_replay.cli import check as command
    from packr_replay.corpus import SELECT_FIELDS

    assert command.SELECT_FIELDS == SELECT_FIELDS


class TestPastTheEnd:
    """``--max-time-after-end`` reaches the workers: an interrupted trace whose guest
    spins on past its last event is reproduced up to the cut, a moment later."""

    def test_a_spinning_guest_is_stopped_after_the_grace(self, cli: Invoke, tmp_path: Path) -> None:
        from tests.replay.test_after_end import SPIN, cut_trace, guest

        db = tmp_path / "t.db"
        cut_trace(db, 1)
        (tmp_path / "spin.wat").write_text(guest(1, SPIN))
        t0 = time.monotonic()
        run = cli("check", db, "-l", "cut", "-m", tmp_path / "spin.wat", "-j", "1",
                  "--max-time-after-end", "0.2", "--json")  # fmt: skip
        assert time.monotonic() - t0 < 30
        assert run.code == 0, run.out + run.err
        (trace,) = json.loads(run.out)["traces"]
        assert trace["verdict"] == "reproduced"
        assert "the guest was still running in export 'run'" in trace["detail"]
        assert "stopped 0.2 s later" in trace["detail"]
        assert cli("check", db, "--max-time-after-end", "-3").code == 2
