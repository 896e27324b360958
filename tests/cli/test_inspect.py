"""``show``, ``info``, ``verify`` and ``roundtrip``: looking at files and values."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from packr_replay.abi import parse_value
from tests.cli.conftest import Invoke


class TestShow:
    """Traces, events (streamed, filtered, paged) and one event in full."""

    def test_lists_traces_of_a_file(self, cli: Invoke, recorded: Path) -> None:
        run = cli("show", recorded)
        assert run.code == 0
        assert "2 traces in" in run.out
        assert "first" in run.out
        assert "second" in run.out
        assert f"packr-replay show {recorded}#ID" in run.out

    def test_events(self, cli: Invoke, recorded: Path) -> None:
        run = cli("show", f"{recorded}#first")
        lines = run.out.splitlines()
        assert lines[0].startswith(f"trace 1 'first' in {recorded}: 14 events, complete")
        assert lines[2].split() == ["0", "1", "export", "run", '"Ada"']
        assert lines[4].split()[:4] == ["2", "1", "import", "demo:host/clock.now"]
        assert lines[4].endswith("() → 1700000000000000000u64")
        assert len(lines) == 2 + 14

    def test_filters(self, cli: Invoke, recorded: Path) -> None:
        run = cli("show", f"{recorded}#first", "--kind", "import", "--function", "now")
        assert [line.split()[0] for line in run.out.splitlines()[2:]] == ["2", "9"]
        run = cli("show", f"{recorded}#first", "--interface", "demo:host/env", "--call", "2")
        assert [line.split()[0] for line in run.out.splitlines()[2:]] == ["11"]
        run = cli("show", f"{recorded}#first", "--kind", "nope")
        assert run.code == 2

    def test_pages(self, cli: Invoke, recorded: Path) -> None:
        run = cli("show", f"{recorded}#first", "--limit", "5", "--start", "3")
        body = run.out.splitlines()[2:]
        assert [line.split()[0] for line in body[:5]] == ["3", "4", "5", "6", "7"]
        assert body[5].startswith("... more events: --start 8 for the next page")

    def test_one_event_in_full(self, cli: Invoke, recorded: Path) -> None:
        run = cli("show", f"{recorded}#first", "6")
        assert run.code == 0
        assert "event #6 of trace 1 'first'" in run.out
        assert "  kind      return" in run.out
        assert "input: -" in run.out
        output = run.out.split("output (")[1].split("\n", 1)[1]
        assert str(parse_value(output)).startswith('report{greeting: "Hello, Ada"')

    def test_one_event_indented_when_narrow(
        self, cli: Invoke, recorded: Path, monkeypatch: object
    ) -> None:
        import pytest

        assert isinstance(monkeypatch, pytest.MonkeyPatch)
        monkeypatch.setenv("COLUMNS", "40")
        run = cli("show", f"{recorded}#first", "6")
        assert '  report{\n    greeting: "Hello, Ada",\n' in run.out

    def test_no_such_event(self, cli: Invoke, recorded: Path) -> None:
        run = cli("show", f"{recorded}#first", "99")
        assert run.code == 2
        assert "trace 1 'first' has no event 99 (it has 14)" in run.err

    def test_seq_with_filters_is_refused(self, cli: Invoke, recorded: Path) -> None:
        assert cli("show", f"{recorded}#first", "3", "--kind", "import").code == 2

    def test_json_shapes(self, cli: Invoke, recorded: Path) -> None:
        listing = json.loads(cli("show", recorded, "--json").out)
        assert set(listing) == {"store", "traces"}
        assert [t["label"] for t in listing["traces"]] == ["first", "second"]
        assert set(listing["traces"][0]) == {
            "id", "uuid", "label", "status", "end_reason", "events", "created_at", "completed_at", "host",
            "module_sha256", "replay_of", "replay_of_uuid", "tool_version", "format_version",
            "head_hash", "meta",
        }  # fmt: skip
        events = json.loads(cli("show", f"{recorded}#first", "--json", "--limit", "3").out)
        assert set(events) == {"store", "trace", "events", "next_start"}
        assert events["next_start"] == 3
        assert set(events["events"][1]) == {
            "seq", "call", "kind", "interface", "function", "name", "depth", "status",
            "outcome", "error_kind", "error", "duration_ns", "input", "input_bytes",
            "output", "output_bytes", "input_value", "output_value", "package",
        }  # fmt: skip
        assert events["events"][1]["input"] == '"clock-actor: run Ada"'
        one = json.loads(cli("show", f"{recorded}#first", "2", "--json").out)
        assert set(one) == {"store", "trace", "event"}
        assert one["event"]["output"] == "1700000000000000000u64"
        everything = json.loads(cli("show", f"{recorded}#first", "--json", "--limit", "0").out)
        assert (len(everything["events"]), everything["next_start"]) == (14, None)


class TestInfo:
    """Header, module (imports, exports, declared types), counts."""

    def test_text(self, cli: Invoke, recorded: Path) -> None:
        run = cli("info", f"{recorded}#second")
        assert run.code == 0
        assert f"trace 2 'second' in {recorded} (2 traces in the file)" in run.out
        assert "module clock_actor (sha256 " in run.out
        assert "declared import demo:host/random.next(bound: u64) -> u64" in run.out
        assert "declared export run(input: value) -> report" in run.out
        assert "events 14 (2 export calls, 10 host calls" in run.out
        assert "outcomes ok 14" in run.out

    def test_json(self, cli: Invoke, recorded: Path) -> None:
        data = json.loads(cli("info", recorded, "--json").out)
        assert set(data) == {
            "store", "traces_in_file", "trace", "module", "packages", "wires", "counts", "notes"
        }  # fmt: skip
        module = data["module"]
        assert module["name"] == "clock_actor"
        assert {"module": "demo:host/clock", "name": "now", "kind": "func",
                "signature": "(i32, i32, i32, i32) -> (i32)"} in module["imports"]  # fmt: skip
        assert "demo:host/env.get(name: string) -> option<string>" in module["metadata"]["imports"]
        counts = data["counts"]
        assert counts["by_kind"] == {"export": 2, "import": 10, "return": 2}
        assert counts["calls"]["import demo:host/log.write"] == {"count": 4, "failed": 0}


    def test_stored_count_only(self, cli: Invoke, recorded: Path) -> None:
        """--no-calls (the default above a million events) decodes nothing."""
        run = cli("info", f"{recorded}#second", "--no-calls")
        assert run.code == 0
        assert "events 14\n" in run.out
        assert "per-call counts skipped for 14 events" in run.out
        data = json.loads(cli("info", f"{recorded}#second", "--no-calls", "--json").out)
        assert data["counts"] == {
            "events": 14, "bytes": None, "by_kind": None, "outcomes": None, "calls": None,
        }

    def test_large_traces_skip_the_breakdown(
        self, cli: Invoke, recorded: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from packr_replay.cli import inspect

        monkeypatch.setattr(inspect, "_COUNT_LIMIT", 10)
        assert json.loads(cli("info", f"{recorded}#second", "--json").out)["counts"]["calls"] is None
        counts = json.loads(cli("info", f"{recorded}#second", "--json", "--calls").out)["counts"]
        assert counts["by_kind"] == {"export": 2, "import": 10, "return": 2}


class TestVerify:
    """Exit 0 intact, 1 tampered naming the first bad seq."""

    def test_intact(self, cli: Invoke, recorded: Path) -> None:
        run = cli("verify", recorded)
        assert run.code == 0
        assert run.out.count("hash chain intact") == 2

    def test_tampered(self, cli: Invoke, recorded: Path) -> None:
        with closing(sqlite3.connect(recorded)) as conn:
            rows = conn.execute("SELECT first_seq, data FROM segments WHERE trace_id = 2")
            first, data = next((f, d) for f, d in rows if b"clock-actor: run world" in d)
            forged = data.replace(b"clock-actor: run world", b"clock-actor: run WORLD")
            conn.execute(
                "UPDATE segments SET data = ? WHERE trace_id = 2 AND first_seq = ?", [forged, first]
            )
            conn.commit()
        run = cli("verify", recorded)
        assert run.code == 1
        assert "ok       trace 1 'first'" in run.out
        assert "TAMPERED trace 2 'second' at event #8: " in run.out
        data = json.loads(cli("verify", f"{recorded}#second", "--json").out)
        assert data["ok"] is False
        assert data["traces"] == [{"id": 2, "label": "second", "ok": False, "events": 8,
                                   "first_bad_seq": 8, "message": data["traces"][0]["message"],
                                   "head": data["traces"][0]["head"],
                                   "header_covered": True}]  # fmt: skip
        assert "altered" in data["traces"][0]["message"]

    def test_expect_pins_a_trace_out_of_band(self, cli: Invoke, recorded: Path) -> None:
        """info prints the head hash; verify --expect checks a copy against it."""
        info = json.loads(cli("info", f"{recorded}#first", "--json").out)
        head = info["trace"]["head_hash"]
        assert head in cli("info", f"{recorded}#first").out
        run = cli("verify", f"{recorded}#first", "--expect", head)
        assert run.code == 0, run.err
        assert "head as expected" in run.out
        assert cli("verify", f"{recorded}#first", "--expect", head[:16]).code == 0
        run = cli("verify", f"{recorded}#second", "--expect", head)
        assert run.code == 1
        assert "not the trace that was pinned" in run.out

    def test_expect_survives_a_recomputed_chain_only_by_its_hash(
        self, cli: Invoke, recorded: Path
    ) -> None:
        """An edited header breaks the chain; the head pins a copy whatever was done."""
        head = json.loads(cli("info", f"{recorded}#first", "--json").out)["trace"]["head_hash"]
        with closing(sqlite3.connect(recorded)) as conn:
            conn.execute("UPDATE traces SET label = 'reproduced' WHERE id = 1")
            conn.commit()
        run = cli("verify", f"{recorded}#1", "--expect", head)
        assert run.code == 1
        assert "TAMPERED" in run.out

    @pytest.mark.parametrize("value", ["zz", "12ab", "0" * 65])
    def test_expect_needs_a_hash(self, cli: Invoke, recorded: Path, value: str) -> None:
        run = cli("verify", f"{recorded}#first", "--expect", value)
        assert run.code == 2
        assert "--expect" in run.err

    def test_expect_needs_one_trace(self, cli: Invoke, recorded: Path) -> None:
        run = cli("verify", recorded, "--expect", "0" * 64)
        assert run.code == 2
        assert "FILE#REF" in run.err


class TestRoundtrip:
    """A value through the Graph ABI and back."""

    def test_text_and_json(self, cli: Invoke) -> None:
        run = cli("roundtrip", "point{x: 1s32, y: [1u8, 2u8]}")
        assert run.code == 0
        assert run.out.splitlines()[0] == "value: point{x: 1s32, y: [1u8, 2u8]}"
        assert run.out.splitlines()[2] == "back:  point{x: 1s32, y: [1u8, 2u8]}"
        data = json.loads(cli("roundtrip", "[1u8]", "--json").out)
        assert data == {"value": "[1u8]", "cgrf": data["cgrf"], "bytes": len(data["cgrf"]) // 2,
                        "back": "[1u8]", "equal": True}  # fmt: skip

    def test_bad_text(self, cli: Invoke) -> None:
        run = cli("roundtrip", "[1u8")
        assert run.code == 2
        assert run.err.startswith("packr-replay: error: bad value text: parse error at")
