"""What a new user hits first: files that are not guests, outputs in missing
directories, --until out of range, another build without the export, record modes'
verdicts, hosts that print under --json, redaction counts, diffs across modules."""

from __future__ import annotations

import json
from pathlib import Path

from packr_replay.storage import TraceStore
from tests.cli.conftest import CLOCK, GUESTS, Invoke

ECHO = GUESTS / "echo.wasm"
HOST_ACTOR = GUESTS / "host_actor.wasm"
README = Path(__file__).resolve().parents[2] / "README.md"

#: clock_actor's host, printing what the guest logs (as the README's example host does).
PRINTING_HOST = """
from packr_replay.abi.convert import u64

def register(builder):
    @builder.interface("demo:host/log").func_typed("write")
    def write(ctx, message: str) -> None:
        print("guest:", message)

    @builder.interface("demo:host/clock").func_typed("now")
    def now(ctx) -> u64:
        return 1

    @builder.interface("demo:host/random").func_typed("next")
    def roll(ctx, bound: u64) -> u64:
        return 2

    @builder.interface("demo:host/env").func_typed("get")
    def getenv(ctx, name: str) -> str | None:
        return None
"""


class TestNotAGuest:
    """Files that are not WebAssembly say so, not "bad WAT at <anon>:1:1"."""

    def test_a_text_file(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", README, "-c", "run", "-o", tmp_path / "t.db")
        assert run.code == 2
        assert run.err.startswith(
            f"packr-replay: error: {README}: not a WebAssembly module (or WAT text): "
            "it starts with b'# packr-replay"
        )
        assert not (tmp_path / "t.db").exists()

    def test_an_empty_file(self, cli: Invoke, tmp_path: Path) -> None:
        empty = tmp_path / "empty.wasm"
        empty.write_bytes(b"")
        run = cli("record", empty, "-c", "run", "-o", tmp_path / "t.db")
        assert run.err == (
            f"packr-replay: error: {empty}: not a WebAssembly module (or WAT text): an empty file\n"
        )

    def test_bad_wat_is_still_bad_wat(self, cli: Invoke, tmp_path: Path) -> None:
        wat = tmp_path / "g.wat"
        wat.write_text("(module (func")
        run = cli("record", wat, "-c", "run", "-o", tmp_path / "t.db")
        assert "invalid WAT for g" in run.err


class TestMissingDirectory:
    """-o in a directory that does not exist: a clear error, no temporary names."""

    def test_record(self, cli: Invoke, tmp_path: Path) -> None:
        out = tmp_path / "nonexistent_dir" / "t.db"
        run = cli("record", ECHO, "-c", "echo=1s32", "-o", out)
        assert (run.code, run.err) == (
            2, f"packr-replay: error: cannot create {out}: no such directory {out.parent}\n"
        )  # fmt: skip

    def test_bundle_names_the_bundle_not_its_temporary(
        self, cli: Invoke, recorded: Path, tmp_path: Path
    ) -> None:
        out = tmp_path / "nonexistent_dir" / "b.db"
        run = cli("bundle", recorded, "-o", out)
        assert (run.code, run.err) == (
            2, f"packr-replay: error: cannot create {out}: no such directory {out.parent}\n"
        )  # fmt: skip
        assert "partial" not in run.err

    def test_export_import_and_demo(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        out = tmp_path / "nonexistent_dir" / "x"
        for args in (("export", recorded, "-o", out), ("demo", "-o", out)):
            run = cli(*args)
            assert run.code == 2
            assert f"cannot create {out}: no such directory" in run.err
        stream = tmp_path / "s.pack"
        assert cli("export", recorded, "-o", stream).code == 0
        run = cli("import", stream, "-o", out)
        assert (
            run.err == f"packr-replay: error: cannot create {out}: no such directory {out.parent}\n"
        )

    def test_a_file_where_the_directory_should_be(self, cli: Invoke, tmp_path: Path) -> None:
        (tmp_path / "afile").write_text("")
        run = cli("record", ECHO, "-c", "echo=1s32", "-o", tmp_path / "afile" / "t.db")
        assert "afile is not a directory" in run.err


class TestUntil:
    """--until takes an event number in range; past the end it says so."""

    def test_negative_is_refused(self, cli: Invoke, recorded: Path) -> None:
        run = cli("play", recorded, "--until", "-1")
        assert run.code == 2
        assert "--until" in run.err
        assert run.out == ""

    def test_past_the_end_is_noted(self, cli: Invoke, recorded: Path) -> None:
        run = cli("play", f"{recorded}#first", "--until", "100")
        assert run.code == 0
        assert "note: --until 100 is past the end of the trace (14 events: #0-#13)" in run.err
        assert "reproduced: 2 export call(s), 14 event(s)" in run.out

    def test_the_last_event_is_in_range(self, cli: Invoke, recorded: Path) -> None:
        run = cli("play", f"{recorded}#first", "--until", "13")
        assert "past the end" not in run.err
        assert "stopped after event #13" in run.out


class TestAnotherBuild:
    """play --module with a build that lacks the export the trace calls."""

    def test_names_the_missing_export(self, cli: Invoke, tmp_path: Path) -> None:
        db = tmp_path / "ha.db"
        assert cli("record", HOST_ACTOR, "--host", "demo", "-c", "process=5s64", "-o", db).code == 0
        run = cli("play", db, "--module", ECHO)
        assert run.code == 1
        assert (
            "replay diverged at event #0: the new build has no export 'process' (the trace "
            "calls it; echo exports: echo, transform)"
        ) in run.out
        assert "left over" not in run.out
        data = json.loads(cli("play", db, "--module", ECHO, "--json").out)
        assert data["verdict"] == "diverged"
        assert "has no export 'process'" in data["divergence"]["report"]


class TestRecordModeVerdicts:
    """record --mode none/once replaying: exit codes as documented, messages on stderr."""

    def _once(self, cli: Invoke, db: Path, value: str = '"x"') -> None:
        run = cli("record", CLOCK, "--host", "demo", "-c", f"run={value}", "-o", db,
                  "--mode", "once", "-l", "m")  # fmt: skip
        assert run.code == 0, run.err

    def test_reproduced_exits_0(self, cli: Invoke, tmp_path: Path) -> None:
        db = tmp_path / "m.db"
        self._once(cli, db)
        run = cli("record", CLOCK, "-c", 'run="x"', "-o", db, "--mode", "none", "-l", "m")
        assert run.code == 0, run.err
        assert "reproduced trace 'm' (mode none); nothing new recorded" in run.out
        assert run.err == ""

    def test_diverged_exits_1_and_says_so_on_stderr_only(self, cli: Invoke, tmp_path: Path) -> None:
        db = tmp_path / "m.db"
        self._once(cli, db)
        run = cli("record", CLOCK, "-c", 'run="y"', "-o", db, "--mode", "none", "-l", "m")
        assert run.code == 1
        assert run.out == ""  # no call returned, and no verdict claiming it replayed
        assert "replay diverged at event #0" in run.err
        assert (
            "diverged: the run did not reproduce trace 'm' (mode none) at the first call" in run.err
        )

    def test_more_calls_than_recorded(self, cli: Invoke, tmp_path: Path) -> None:
        db = tmp_path / "m.db"
        self._once(cli, db)
        run = cli("record", CLOCK, "-c", 'run="x"', "-c", 'run="x"', "-o", db, "--mode", "none",
                  "-l", "m")  # fmt: skip
        assert run.code == 1
        assert "reproduced" not in run.out
        assert "after 1 of 2 call(s)" in run.err


class TestJsonWithAPrintingHost:
    """Under --json a host's prints go to stderr: stdout stays one JSON document."""

    def test_record_all_and_once(self, cli: Invoke, tmp_path: Path) -> None:
        host = tmp_path / "printing.py"
        host.write_text(PRINTING_HOST)
        for mode in ("all", "once"):
            run = cli("record", CLOCK, "--host", f"{host}:register", "-c", 'run="Ada"', "-o",
                      tmp_path / f"{mode}.db", "--mode", mode, "-l", "p", "--json")  # fmt: skip
            assert run.code == 0, run.err
            assert json.loads(run.out)["calls"][0]["export"] == "run"
            assert "guest: clock-actor: run Ada" in run.err

    def test_without_json_prints_stay_on_stdout(self, cli: Invoke, tmp_path: Path) -> None:
        host = tmp_path / "printing.py"
        host.write_text(PRINTING_HOST)
        run = cli("record", CLOCK, "--host", f"{host}:register", "-c", 'run="Ada"', "-o",
                  tmp_path / "t.db")  # fmt: skip
        assert "guest: clock-actor: run Ada" in run.out


class TestRedactCount:
    """bundle --redact counts the host calls redacted."""

    def test_counts_calls(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        run = cli("bundle", f"{recorded}#first", "-o", tmp_path / "r.db", "--redact",
                  "demo:host/*", "--json")  # fmt: skip
        data = json.loads(run.out)
        with TraceStore(recorded, readonly=True) as store:
            imports = list(store.trace("first").events(kind="import"))
        assert data["redacted_events"] == len(imports) == 10


class TestDiffAcrossModules:
    """diff says when the two traces ran different modules."""

    def test_note_and_json(self, cli: Invoke, tmp_path: Path) -> None:
        db = tmp_path / "d.db"
        assert cli("record", ECHO, "-c", "echo=1s64", "-o", db).code == 0
        assert cli("record", GUESTS / "hostile.wasm", "--host", "demo", "-c",
                   "import_echo=1s64", "-o", db).code == 0  # fmt: skip
        run = cli("diff", f"{db}#1", f"{db}#2")
        assert run.code == 1
        assert "note: the traces ran different modules: a ran echo (sha256 " in run.out
        assert ", b ran hostile (sha256 " in run.out
        data = json.loads(cli("diff", f"{db}#1", f"{db}#2", "--json").out)
        assert data["modules_differ"] is True
        assert "the modules differ" in data["summary"]["text"]

    def test_same_module_no_note(self, cli: Invoke, recorded: Path) -> None:
        run = cli("diff", f"{recorded}#first", f"{recorded}#second")
        assert "different modules" not in run.out
        assert (
            json.loads(cli("diff", f"{recorded}#1", f"{recorded}#2", "--json").out)[
                "modules_differ"
            ]
            is False
        )
