"""``export`` / ``import`` (lossless, pipeable) and ``bundle`` (the bug-report round trip)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from packr_replay.storage import TraceStore
from tests.cli.conftest import CLOCK, Invoke

Sh = Callable[..., subprocess.CompletedProcess[str]]


def _events(path: Path, ref: int | str) -> list[tuple[object, ...]]:
    with TraceStore(path, readonly=True) as store:
        trace = store.trace(ref)
        return [(trace.info.uuid, trace.info.head_hash, e, e.hash) for e in trace.events()]


class TestExportImport:
    """The versioned msgpack stream round-trips losslessly."""

    def test_file_round_trip(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        stream = tmp_path / "t.stream"
        run = cli("export", f"{recorded}#second", "-o", stream)
        assert run.code == 0, run.err
        assert "exported trace 2 'second' (14 events" in run.err  # stdout stays clean
        run = cli("import", stream, "-o", tmp_path / "copy.db")
        assert run.code == 0, run.err
        assert run.out.startswith("imported trace 1 'second' (14 events, uuid ")
        assert _events(tmp_path / "copy.db", 1) == _events(recorded, "second")
        assert cli("verify", tmp_path / "copy.db").code == 0
        assert not list(tmp_path.glob(".*partial"))

    def test_stdin_and_stdout_in_process(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        stream = tmp_path / "t.stream"
        assert cli("export", f"{recorded}#first", "-o", stream).code == 0
        run = cli("import", "-", "-o", tmp_path / "copy.db", "--json", input=stream.read_bytes())
        assert run.code == 0, run.err
        data = json.loads(run.out)
        assert set(data) == {"store", "trace"}
        assert data["trace"]["label"] == "first"

    def test_pipe(self, sh: Sh, recorded: Path, tmp_path: Path) -> None:
        done = subprocess.run(
            f"'{_exe()}' export '{recorded}#first' -o - | '{_exe()}' import - -o copy.db --json",
            shell=True, capture_output=True, text=True, cwd=tmp_path, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["trace"]["events"] == 14
        assert _events(tmp_path / "copy.db", 1) == _events(recorded, "first")

    def test_json(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        data = json.loads(cli("export", recorded, "-o", tmp_path / "s", "--json").out)
        assert set(data) == {"output", "trace", "events", "bytes"}
        assert data["events"] == 14
        assert cli("export", recorded, "-o", "-", "--json").code == 2

    def test_importing_twice_and_garbage(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        stream = tmp_path / "t.stream"
        cli("export", recorded, "-o", stream)
        assert cli("import", stream, "-o", tmp_path / "c.db").code == 0
        again = cli("import", stream, "-o", tmp_path / "c.db")
        assert (again.code, "already holds trace" in again.err) == (2, True)
        junk = tmp_path / "junk"
        junk.write_bytes(b"\x00\x01junk")
        bad = cli("import", junk, "-o", tmp_path / "d.db")
        assert bad.code == 2
        assert "not a packr-replay trace stream" in bad.err
        assert cli("import", tmp_path / "missing", "-o", tmp_path / "d.db").code == 2


def _exe() -> str:
    from tests.cli.conftest import executable

    return executable()


class TestBundle:
    """A single file for a bug report, replayable anywhere, optionally redacted."""

    def test_bug_report_round_trip_in_a_fresh_directory(self, sh: Sh, tmp_path: Path) -> None:
        """record → bundle → play the bundle where nothing else exists (subprocesses)."""
        work = tmp_path / "work"
        work.mkdir()
        done = sh("record", CLOCK, "--host", "demo", "-c", 'run="Ada"', "-c", "run", "-o",
                  "bug.db", "-l", "flaky", cwd=work)  # fmt: skip
        assert done.returncode == 0, done.stderr
        done = sh("bundle", "bug.db#flaky", "-o", "report.db", cwd=work)
        assert done.returncode == 0, done.stderr
        assert "replay it anywhere with: packr-replay play report.db" in done.stdout
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (work / "report.db").rename(elsewhere / "report.db")
        done = sh("play", "report.db", cwd=elsewhere)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "reproduced: 2 export call(s), 14 event(s) replayed" in done.stdout
        assert sorted(p.name for p in elsewhere.iterdir()) == ["report.db"]  # reading adds nothing

    def test_one_file_one_trace(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        out = tmp_path / "report.db"
        data = json.loads(cli("bundle", f"{recorded}#first", "-o", out, "--json").out)
        assert set(data) == {"bundle", "bytes", "trace", "source", "redacted", "redacted_events"}
        assert (data["redacted"], data["redacted_events"]) == ([], 0)
        assert data["source"]["trace"] == 1
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("report")] == ["report.db"]
        assert _events(out, 1) == _events(recorded, "first")  # same uuid, same hashes

    def test_redacted(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        out = tmp_path / "report.db"
        run = cli("bundle", f"{recorded}#first", "-o", out, "--redact", "demo:host/log.*")
        assert run.code == 0, run.err
        assert "redacted 4 host call(s) of demo:host/log.write" in run.out
        shown = cli("show", out, "--function", "write").out
        assert shown.count('"<redacted>" → ()') == 4
        assert "clock-actor" not in shown
        played = cli("play", out)
        assert played.code == 0  # the guest ignores log replies: still reproduced
        assert "note: this trace is redacted: the values of demo:host/log.write" in played.err
        assert "note: #1 demo:host/log.write is redacted: serving its placeholder" in played.err
        assert "note: 4 redacted call(s) were served with placeholder values" in played.out
        data = json.loads(cli("play", out, "--json").out)
        assert (data["redacted"], data["redacted_served"]) == (
            ["demo:host/log.write"],
            [1, 5, 8, 12],
        )

    def test_redacting_a_reply_the_guest_uses(
        self, cli: Invoke, recorded: Path, tmp_path: Path
    ) -> None:
        out = tmp_path / "report.db"
        assert cli("bundle", recorded, "-o", out, "--redact", "demo:host/env.get").code == 0
        assert 'some<string>("<redacted>")' in cli("show", out, "4").out
        played = cli("play", out)
        assert played.code == 1
        assert '.user.some: "ada" → "<redacted>"' in played.out
        assert "the divergence may come from redaction" in played.out

    def test_refusals(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        out = tmp_path / "report.db"
        nothing = cli("bundle", recorded, "-o", out, "--redact", "demo:host/nope")
        assert nothing.code == 2
        assert "no host call of trace 2 'second' matches it; its host calls are: " in nothing.err
        assert not out.exists()
        assert cli("bundle", recorded, "-o", out).code == 0
        exists = cli("bundle", recorded, "-o", out)
        assert (exists.code, "already exists" in exists.err) == (2, True)
        assert cli("bundle", recorded, "-o", out, "--force").code == 0
