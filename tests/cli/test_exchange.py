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


class TestNoClobber:
    """Outputs never overwrite without --force, never their source, never through a
    planted name; import - reads its stream before it takes the write lock."""

    def test_export_refuses_to_overwrite(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        dest = tmp_path / "t.stream"
        dest.write_bytes(b"precious")
        run = cli("export", recorded, "-o", dest)
        assert run.code == 2
        assert "already exists" in run.err
        assert dest.read_bytes() == b"precious"
        assert cli("export", recorded, "-o", dest, "--force").code == 0
        assert dest.read_bytes() != b"precious"

    def test_never_over_its_own_source(self, cli: Invoke, recorded: Path) -> None:
        before = recorded.read_bytes()
        for extra in ([], ["--force"]):
            run = cli("export", recorded, "-o", recorded, *extra)
            assert run.code == 2
            assert "is the file being read" in run.err
            run = cli("bundle", recorded, "-o", recorded, *extra)
            assert run.code == 2
        assert recorded.read_bytes() == before
        assert cli("verify", recorded).code == 0

    def test_a_planted_partial_symlink_is_not_followed(
        self, cli: Invoke, recorded: Path, tmp_path: Path
    ) -> None:
        target = tmp_path / "victim"
        target.write_bytes(b"do not touch")
        for name in ("out.stream", "report.db"):
            (tmp_path / f".{name}.partial").symlink_to(target)
        assert cli("export", recorded, "-o", tmp_path / "out.stream").code == 0
        assert cli("bundle", recorded, "-o", tmp_path / "report.db").code == 0
        assert target.read_bytes() == b"do not touch"
        assert not list(tmp_path.glob(".*.partial-*"))

    def test_a_symlink_at_the_destination(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        target = tmp_path / "victim"
        target.write_bytes(b"do not touch")
        link = tmp_path / "out.stream"
        link.symlink_to(target)
        assert cli("export", recorded, "-o", link).code == 2  # it exists, as a link
        assert cli("export", recorded, "-o", link, "--force").code == 0
        assert target.read_bytes() == b"do not touch"  # the link was replaced, not followed
        assert not link.is_symlink()

    def test_import_from_a_stalled_pipe_does_not_hold_the_lock(self, tmp_path: Path) -> None:
        from packr_replay import api
        from packr_replay.abi import S64
        from packr_replay.runtime.demo import DemoHost, example_guest
        from tests.cli.conftest import executable

        source = tmp_path / "big.db"  # a stream of several read chunks (64 KiB each)
        api.record_run(example_guest("bench"), [("calls", S64(3000))], host=DemoHost(),
                       store=source, label="first")  # fmt: skip
        stream = tmp_path / "t.stream"
        with TraceStore(source, readonly=True) as store, stream.open("wb") as f:
            store.export_trace("first", f)
        assert stream.stat().st_size > 4 * 65536
        target = tmp_path / "target.db"
        TraceStore(target, create=True).close()
        proc = subprocess.Popen([executable(), "import", "-", "-o", str(target)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)  # fmt: skip
        try:
            assert proc.stdin is not None
            data = stream.read_bytes()
            proc.stdin.write(data[:-100])  # all but the end: inside the events, then nothing
            proc.stdin.flush()
            import time

            time.sleep(2.0)  # the import is waiting on its stdin
            with TraceStore(target, busy_timeout=2.0) as store:  # a recorder meanwhile
                store.begin_trace(None, label="meanwhile").finish()
            proc.stdin.write(data[-100:])
            proc.stdin.close()
            assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        with TraceStore(target, readonly=True) as store:
            assert sorted(i.label or "" for i in store.traces()) == ["first", "meanwhile"]
