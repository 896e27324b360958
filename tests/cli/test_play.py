"""``packr-replay play``: reproduced / diverged, --until, --pdb, --save, --module,
--host, --debug-info, --json."""

from __future__ import annotations

import json
import pdb
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from packr_replay.abi import String
from packr_replay.replay.matchers import CallKey
from packr_replay.storage import Event, TraceStore
from tests.cli.conftest import GUESTS, Invoke

PLAY_KEYS = {"store", "trace", "verdict", "reproduced", "exports", "events_replayed",
             "events_total", "duration_s", "divergence", "stopped", "capped", "module_mismatch",
             "redacted", "redacted_served", "trace_incomplete", "ended_early",
             "recorded_failure", "raw_access_served", "saved_trace", "package", "packages",
             "stopped_after_end"}  # fmt: skip
ECHO = GUESTS / "echo.wasm"

#: Another build of clock_actor's ``run``: it echoes its input without calling the host,
#: so a replay of a clock_actor trace diverges at the first host call (#1).
OTHER_BUILD = """(module (memory (export "memory") 1)
  (func (export "run") (param i32 i32 i32 i32) (result i32)
    (i32.store (local.get 2) (local.get 0)) (i32.store (local.get 3) (local.get 1)) (i32.const 0)))
"""


@pytest.fixture
def other(tmp_path: Path) -> Path:
    path = tmp_path / "other.wat"
    path.write_text(OTHER_BUILD)
    return path


class TestVerdicts:
    """Exit 0 reproduced, 1 diverged with the full report."""

    def test_reproduced(self, cli: Invoke, recorded: Path) -> None:
        run = cli("play", f"{recorded}#first")
        assert run.code == 0, run.err
        assert "reproduced: 2 export call(s), 14 event(s) replayed" in run.out
        assert run.out.count("✓") == 2

    def test_newest_trace_by_default_and_trace_option(self, cli: Invoke, recorded: Path) -> None:
        assert "trace 2 'second'" in cli("play", recorded).out
        assert "trace 1 'first'" in cli("play", recorded, "--trace", "1").out
        assert cli("play", f"{recorded}#1", "--trace", "1").code == 2

    def test_diverged_with_another_build(self, cli: Invoke, recorded: Path, other: Path) -> None:
        run = cli("play", f"{recorded}#first", "--module", other)
        assert run.code == 1
        assert "note: module other (sha256" in run.out
        assert "replay diverged at event #1" in run.out
        assert 'expected: #1 import demo:host/log.write("clock-actor: run Ada")' in run.out
        assert "nearest recorded calls:" in run.out

    def test_json(self, cli: Invoke, recorded: Path, other: Path) -> None:
        ok = json.loads(cli("play", recorded, "--json").out)
        assert set(ok) == PLAY_KEYS
        assert ok["stopped_after_end"] is None
        assert (ok["verdict"], ok["reproduced"], ok["divergence"]) == ("reproduced", True, None)
        assert [e["function"] for e in ok["exports"]] == ["run", "run"]
        assert set(ok["exports"][0]) == {"seq", "call", "function", "reproduced", "output",
                                     "output_value", "error"}  # fmt: skip
        run = cli("play", recorded, "--module", other, "--json")
        bad = json.loads(run.out)
        assert (run.code, bad["verdict"]) == (1, "diverged")
        assert set(bad["divergence"]) == {"seq", "type", "report", "expected", "actual",
                                          "differences", "failed_matchers"}  # fmt: skip
        assert bad["divergence"]["expected"]["name"] == "demo:host/log.write"
        assert bad["module_mismatch"].startswith("module other")


class TestUntil:
    """--until SEQ stops there and shows where the guest is."""

    def test_stops_and_shows_the_call(self, cli: Invoke, recorded: Path) -> None:
        run = cli("play", f"{recorded}#first", "--until", "3")
        assert run.code == 0
        assert "stopped after event #3 as asked (--until)" in run.out
        assert "the guest is inside export call 1 at depth 1:" in run.out
        assert "  > #3 import demo:host/random.next(10u64) -> 0u64" in run.out
        assert 'next: #4 import demo:host/env.get("USER") -> some<string>("ada")' in run.out

    def test_json(self, cli: Invoke, recorded: Path) -> None:
        data = json.loads(cli("play", recorded, "--until", "8", "--json").out)
        assert data["verdict"] == "stopped"
        stopped = data["stopped"]
        assert set(stopped) == {"seq", "where", "call_events", "next"}
        assert [e["seq"] for e in stopped["call_events"]] == [7, 8]
        assert stopped["next"]["seq"] == 9


class TestPdb:
    """--pdb opens the debugger at a divergence with the values in scope."""

    def test_names_in_scope(
        self, cli: Invoke, recorded: Path, other: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        seen: dict[str, Any] = {}
        monkeypatch.setattr(pdb, "set_trace", lambda: seen.update(sys._getframe(1).f_locals))
        run = cli("play", f"{recorded}#first", "--module", other, "--pdb")
        assert run.code == 1
        assert "--pdb: the replay diverged" in run.err
        assert isinstance(seen["expected_event"], Event)
        assert isinstance(seen["actual_call"], CallKey)
        assert seen["expected"] == String("clock-actor: run Ada")  # the recorded call's input
        assert seen["actual"] is None  # the guest returned instead of calling
        assert seen["divergence"].seq == 1
        assert seen["report"].reproduced is False

    def test_output_divergence_puts_both_outputs_in_scope(
        self, cli: Invoke, recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A redacted reply changes the export's result: expected/actual are the outputs."""
        bundle = tmp_path / "r.db"
        assert (
            cli("bundle", f"{recorded}#first", "-o", bundle, "--redact", "demo:host/env.get").code
            == 0
        )
        seen: dict[str, Any] = {}
        monkeypatch.setattr(pdb, "set_trace", lambda: seen.update(sys._getframe(1).f_locals))
        assert cli("play", bundle, "--pdb").code == 1
        assert seen["expected"]["user"] != seen["actual"]["user"]
        assert [str(d) for d in seen["differences"]] == ['.user.some: "ada" → "<redacted>"']

    def test_no_divergence_no_debugger(
        self, cli: Invoke, recorded: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(pdb, "set_trace", lambda: pytest.fail("debugger opened"))
        assert cli("play", recorded, "--pdb").code == 0

    def test_real_debugger_in_a_subprocess(
        self, sh: Callable[..., subprocess.CompletedProcess[str]], recorded: Path, other: Path
    ) -> None:
        commands = "p expected\np actual_call.name\nq\n"
        done = sh("play", f"{recorded}#first", "--module", other, "--pdb", input=commands)
        assert done.returncode == 1
        assert "(Pdb)" in done.stdout
        assert '<String "clock-actor: run Ada">' in done.stdout
        assert "'run'" in done.stdout


class TestOptions:
    """--save, --host, --debug-info."""

    def test_save(self, cli: Invoke, recorded: Path) -> None:
        data = json.loads(cli("play", f"{recorded}#first", "--save", "--json").out)
        assert data["saved_trace"] == 3
        with TraceStore(recorded, readonly=True) as store:
            saved = store.trace(3).info
        assert (saved.replay_of, saved.status) == (1, "complete")
        assert cli("diff", f"{recorded}#1", f"{recorded}#3").code == 0
        assert (
            "saved the replay run as trace 4 (replay of 1)"
            in cli("play", f"{recorded}#1", "--save").out
        )

    def test_raw_imports_are_replayed_without_a_host(self, cli: Invoke, tmp_path: Path) -> None:
        db = tmp_path / "raw.db"
        assert cli("record", GUESTS / "bench.wasm", "--host", "demo", "-c", "raw_calls=3s64",
                   "-o", db).code == 0  # fmt: skip
        run = cli("play", db)
        assert run.code == 0, run.err
        assert "reproduced" in run.out

    def test_a_trace_without_raw_events_needs_a_host(self, cli: Invoke, tmp_path: Path) -> None:
        """As traces from before format 5 (or recorded with raw_imports="host") do."""
        from packr_replay import api
        from packr_replay.abi import S64
        from packr_replay.runtime.demo import DemoHost

        db = tmp_path / "raw.db"
        api.record_run(GUESTS / "bench.wasm", [("raw_calls", S64(3))], host=DemoHost(),
                       store=db, raw_imports="host")  # fmt: skip
        run = cli("play", db)
        assert run.code == 2
        assert "raw import bench:host/raw.noop is not recorded" in run.err
        assert cli("play", db, "--host", "demo").code == 0

    def test_debug_info(self, cli: Invoke, recorded: Path) -> None:
        assert cli("play", recorded, "--debug-info").code == 0


class TestCaps:
    """--max-fuel, --max-time, --max-memory: the replay's own limits; a cut run exits 1
    naming the cap."""

    def spinning(self, tmp_path: Path) -> Path:
        from packr_replay.abi import UNIT, encode
        from packr_replay.runtime import Runtime
        from packr_replay.storage import EventKind

        wat = ('(module (memory (export "memory") 1) (func (export "run") '
               "(param i32 i32 i32 i32) (result i32) (loop $l (br $l)) (i32.const 0)))")  # fmt: skip
        db = tmp_path / "spin.db"
        with TraceStore(db, create=True) as store:
            sha = store.add_module(Runtime().load_module(wat).wasm, "spin")
            meta = {"fuel": None, "timeout": None, "memory_limit": None}
            with store.begin_trace(sha, meta=meta) as writer:
                writer.append(1, EventKind.EXPORT, "", "run", encode(UNIT))
                writer.append(1, EventKind.RETURN, "", "run", encode(UNIT), encode(UNIT), 0)
        return db

    def test_time(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("play", self.spinning(tmp_path), "--max-time", "0.3", "--max-fuel", "none")
        assert run.code == 1
        assert "time cap (seconds for the whole replay) of 0.3 s in export 'run'" in run.out
        assert "cut by --max-time" in run.out

    def test_fuel_json(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("play", self.spinning(tmp_path), "--max-fuel", "100000", "--json")
        assert run.code == 1
        data = json.loads(run.out)
        assert set(data) == PLAY_KEYS
        assert data["verdict"] == "capped"
        assert (data["capped"]["cap"], data["capped"]["option"]) == ("fuel", "--max-fuel")
        assert data["capped"]["limit"] == 100000

    @pytest.mark.parametrize(
        ("option", "value"),
        [("--max-fuel", "0"), ("--max-time", "soon"), ("--max-memory", "lots")],
    )
    def test_bad_values_are_usage_errors(
        self, cli: Invoke, recorded: Path, option: str, value: str
    ) -> None:
        run = cli("play", recorded, option, value)
        assert run.code == 2
        assert option in run.err

    def test_generous_caps_reproduce(self, cli: Invoke, recorded: Path) -> None:
        run = cli("play", recorded, "--max-time", "none", "--max-memory", "64MiB")
        assert run.code == 0, run.err


class TestSaveTo:
    """--save-to: the replay is stored elsewhere and the trace's file only read."""

    def test_save_to(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        other = tmp_path / "replays.db"
        run = cli("play", f"{recorded}#first", "--save-to", other)
        assert run.code == 0, run.err
        with TraceStore(other, readonly=True) as store:
            assert [i.label for i in store.traces()] == ["replay of first"]
        with TraceStore(recorded, readonly=True) as store:
            assert len(store.traces()) == 2

    def test_not_into_the_trace_itself(self, cli: Invoke, recorded: Path) -> None:
        assert cli("play", recorded, "--save-to", recorded).code == 2
        assert cli("play", recorded, "--save", "--save-to", recorded.with_name("x.db")).code == 2


class TestStoredModule:
    """A stored module whose bytes no longer match their SHA-256 is never run."""

    def test_refused_unless_another_build_is_given(self, cli: Invoke, recorded: Path) -> None:
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(recorded)) as conn:
            wasm = conn.execute("SELECT wasm FROM modules").fetchone()[0]
            conn.execute("UPDATE modules SET wasm = ?", [wasm[:-1] + bytes([wasm[-1] ^ 1])])
            conn.commit()
        run = cli("play", recorded)
        assert run.code == 2
        assert "does not match its SHA-256" in run.err
        assert "replaying anyway" not in run.out + run.err
        assert cli("verify", recorded).code == 1
        assert cli("play", recorded, "--module", GUESTS / "clock_actor.wasm").code == 0


def test_long_replays_list_their_first_and_last_calls(cli: Invoke, tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    calls.write_text("".join(f'{{"export": "echo", "value": "{i}s64"}}\n' for i in range(25)))
    assert cli("record", ECHO, "--calls", calls, "-o", tmp_path / "e.db", "-q").code == 0
    run = cli("play", tmp_path / "e.db")
    assert run.code == 0
    assert "… 5 more export call(s) reproduced" in run.out
    assert run.out.count("✓") == 20
    assert "✓ #48 echo → 24s64" in run.out


class TestDamagedTrace:
    """An event altered in the file stops the replay at that event with the chain error
    (exit 2, like every refused input), never a replay of the altered value."""

    def alter_an_import_output(self, path: Path) -> int:
        import sqlite3
        from contextlib import closing

        import msgpack

        with closing(sqlite3.connect(path)) as conn:
            trace_id, first, data = conn.execute(
                "SELECT s.trace_id, s.first_seq, s.data FROM segments s JOIN traces t "
                "ON t.id = s.trace_id WHERE t.label = 'first' ORDER BY s.first_seq LIMIT 1"
            ).fetchone()
            unpacker = msgpack.Unpacker(raw=False, use_list=True)
            unpacker.feed(data)
            out, altered = bytearray(), -1
            for fields, digest in zip(unpacker, unpacker, strict=True):
                if altered < 0 and fields[2] == "import" and fields[4] == "now":
                    fields[6] = bytes(fields[6][:-1]) + bytes([fields[6][-1] ^ 1])  # the clock
                    altered = fields[0]
                out += msgpack.packb(fields, use_bin_type=True) + msgpack.packb(digest, use_bin_type=True)
            conn.execute("UPDATE segments SET data = ? WHERE trace_id = ? AND first_seq = ?",
                         (bytes(out), trace_id, first))  # fmt: skip
            conn.commit()
        assert altered > 0
        return altered

    def test_play_refuses_the_altered_event(self, cli: Invoke, recorded: Path) -> None:
        seq = self.alter_an_import_output(recorded)
        run = cli("play", f"{recorded}#first")
        assert run.code == 2, run.out + run.err
        assert f"event {seq} does not match its hash: it was altered after recording" in run.err
        assert "reproduced" not in run.out


class TestProgressBar:
    """The bar follows a sampled counter (no per-event callback on the replay)."""

    def test_follow(self) -> None:
        import time

        from packr_replay.cli.render import LazyProgress

        count = [0]
        with LazyProgress("x", 10, enabled=False) as bar:
            bar.follow(lambda: count[0], interval=0.005)
            count[0] = 7
            deadline = time.monotonic() + 5
            while bar.done != 7 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert bar.done == 7
        count[0] = 9
        time.sleep(0.02)
        assert bar.done == 7  # stopped with the block
